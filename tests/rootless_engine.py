"""A real rootless Docker 28 engine for the tests, run by a test user of its own.

What it needs, and where it comes from:
- ``uidmap`` (newuidmap/newgidmap, Debian 12) and a test user ``dfxrootless`` with subordinate ids
  (created here when missing: ``useradd`` gives it its /etc/subuid and /etc/subgid ranges);
- ``rootlesskit`` 2.x and Docker 28 (``dockerd``, ``dockerd-rootless.sh`` from the docker.io
  package's contrib folder, containerd 2) unpacked by ``scripts/newer-debs``; Debian 12's runc;
- unprivileged user namespaces (``user.max_user_namespaces`` > 0, and
  ``kernel.unprivileged_userns_clone`` = 1 where that Debian knob exists).

It runs as a user would run it, with one difference: rootlesskit's network is ``--net=host``
(the containers use ``--network none``) instead of slirp4netns. On the development VM
``dockerd-rootless.sh`` with slirp4netns stops with ``open: Permission denied`` on
``/dev/net/tun`` (the VM's device is ``crw------- root root``; Debian's udev would make it 0666),
so the script is entered as rootlesskit's child (``_DOCKERD_ROOTLESS_CHILD=1``) under
``rootlesskit --net=host --copy-up=/etc --copy-up=/run``; everything else is the script's.

The user's folders are the real ones a rootless daemon uses: socket /run/user/UID/docker.sock,
~/.config/docker/daemon.json, ~/.local/share/docker, the user unit
~/.config/systemd/user/docker.service (written like dockerd-rootless-setuptool.sh writes it; no
user systemd runs it here). Sessions on this machine take turns (a lock file), and stopping ends
every process of the test user and removes what the engine made.
"""

from __future__ import annotations

import fcntl
import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path

from private_engine import newer_bin_dirs

USER = "dfxrootless"
LOCK = "/run/lock/dockfix-rootless-test.lock"
UNIT = """[Unit]
Description=Docker Application Container Engine (Rootless)

[Service]
Environment=PATH={path}
ExecStart={contrib}/dockerd-rootless.sh
ExecReload=/bin/kill -s HUP $MAINPID
Type=simple

[Install]
WantedBy=default.target
"""


class RootlessError(Exception):
    pass


def newer_root(pkg: str) -> str:
    repo = Path(__file__).resolve().parent.parent
    out = subprocess.run([str(repo / "scripts" / "newer-debs"), "--print-dir", pkg], capture_output=True, text=True,
                         timeout=600)
    if out.returncode != 0:
        raise RootlessError(f"scripts/newer-debs {pkg} failed: {out.stderr.strip()[-300:]}")
    return out.stdout.strip()


def why_not() -> str | None:
    """Why a rootless engine cannot run on this machine, or None."""
    if os.geteuid() != 0:
        return "the tests do not run as root (they create the test user)"
    if not shutil.which("newuidmap") or not shutil.which("newgidmap"):
        return "newuidmap/newgidmap are missing (apt-get install uidmap)"
    try:
        if int(Path("/proc/sys/user/max_user_namespaces").read_text()) == 0:
            return "user namespaces are switched off (user.max_user_namespaces = 0)"
    except (OSError, ValueError):
        pass
    knob = Path("/proc/sys/kernel/unprivileged_userns_clone")
    if knob.exists() and knob.read_text().strip() != "1":
        return "unprivileged user namespaces are switched off (kernel.unprivileged_userns_clone = 0)"
    return None


def ensure_user() -> pwd.struct_passwd:
    try:
        pw = pwd.getpwnam(USER)
    except KeyError:
        r = subprocess.run(["useradd", "--create-home", "--shell", "/usr/sbin/nologin", "--comment",
                            "dockfix rootless test engine", USER], capture_output=True, text=True)
        if r.returncode != 0:
            raise RootlessError(f"useradd {USER}: {r.stderr.strip()}") from None
        pw = pwd.getpwnam(USER)
    for f in ("/etc/subuid", "/etc/subgid"):
        text = Path(f).read_text() if Path(f).exists() else ""
        if not any(line.split(":")[0] in (USER, str(pw.pw_uid)) for line in text.splitlines()):
            raise RootlessError(f"{USER} has no subordinate ids in {f}")
    return pw


class RootlessEngine:
    version = "28"

    def __init__(self) -> None:
        self.pw = ensure_user()
        self.uid, self.gid, self.home = self.pw.pw_uid, self.pw.pw_gid, self.pw.pw_dir
        self.runtime_dir = f"/run/user/{self.uid}"
        self.sock = f"{self.runtime_dir}/docker.sock"
        self.url = f"unix://{self.sock}"
        self.daemon_json = f"{self.home}/.config/docker/daemon.json"
        self.unit = f"{self.home}/.config/systemd/user/docker.service"
        self.proc: subprocess.Popen | None = None
        self._lock = None
        self.log = Path(f"/tmp/dfx-rootless-{os.getpid()}.log")
        bins = newer_bin_dirs()
        self.contrib = f"{newer_root('docker.io')}/usr/share/docker.io/contrib"
        self.path = os.pathsep.join([*bins, self.contrib, f"{newer_root('rootlesskit')}/usr/bin",
                                     "/usr/sbin", "/usr/bin", "/sbin", "/bin"])

    # ------------------------------------------------------------------ user files
    def _as_user(self, path: str, mode: int) -> None:
        os.chown(path, self.uid, self.gid)
        os.chmod(path, mode)

    def _mkdirs(self, path: str) -> None:
        parts = Path(path).relative_to(self.home).parts
        p = Path(self.home)
        for part in parts:
            p = p / part
            if not p.exists():
                p.mkdir()
                self._as_user(str(p), 0o755)

    def write_user_file(self, path: str, text: str, mode: int = 0o644) -> None:
        self._mkdirs(str(Path(path).parent))
        Path(path).write_text(text)
        self._as_user(path, mode)

    # ------------------------------------------------------------------ start / stop
    def start(self, daemon_json: str = '{\n  "log-level": "debug"\n}\n', timeout: float = 60) -> None:
        self._lock = open(LOCK, "w")
        deadline = time.monotonic() + 300
        while True:  # another session's rootless engine uses the same user: take turns
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RootlessError(f"{LOCK} is held by another test session for more than 300 s") from None
                time.sleep(1)
        self._clean()
        os.makedirs(self.runtime_dir, exist_ok=True)
        self._as_user(self.runtime_dir, 0o700)
        self.write_user_file(self.daemon_json, daemon_json)
        self.write_user_file(self.unit, UNIT.format(path=self.path, contrib=self.contrib))
        env = {"PATH": self.path, "HOME": self.home, "USER": USER, "XDG_RUNTIME_DIR": self.runtime_dir,
               "_DOCKERD_ROOTLESS_CHILD": "1"}
        cmd = ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups",
               "rootlesskit", f"--state-dir={self.runtime_dir}/dockerd-rootless", "--net=host",
               "--copy-up=/etc", "--copy-up=/run",
               f"{self.contrib}/dockerd-rootless.sh", "--bridge=none", "--iptables=false", "--ip6tables=false",
               "--ip-masq=false"]
        with open(self.log, "wb") as logf:
            self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=env, cwd="/", start_new_session=True)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RootlessError(f"the rootless dockerd exited with {self.proc.returncode}: {self.log_tail()}")
            if os.path.exists(self.sock) and self.cli("info", "--format", "{{.ServerVersion}}", check=False).returncode == 0:
                return
            time.sleep(0.3)
        raise RootlessError(f"the rootless dockerd did not answer within {timeout:.0f} s: {self.log_tail()}")

    def log_tail(self) -> str:
        try:
            lines = [x for x in self.log.read_text(errors="replace").splitlines() if "level=info" not in x]
            return " | ".join(lines[-4:])[-700:]
        except OSError:
            return "(no log)"

    def cli(self, *args: str, check: bool = True, input: str | bytes | None = None) -> subprocess.CompletedProcess:
        docker = shutil.which("docker", path=self.path) or "docker"
        r = subprocess.run([docker, "-H", self.url, *args], capture_output=True, input=input, timeout=120,
                           text=not isinstance(input, bytes))
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {r.stderr}")
        return r

    def import_busybox(self, tag: str) -> None:
        import io
        import tarfile

        from dockfix.demo.private_engine import BUSYBOX_COMMANDS, busybox_path

        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(busybox_path() or "/bin/busybox", arcname="bin/busybox")
            for c in BUSYBOX_COMMANDS:
                ti = tarfile.TarInfo(f"bin/{c}")
                ti.type, ti.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(ti)
        self.cli("import", "-", tag, input=buf.getvalue())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.cli("rm", "-f", *self.cli("ps", "-aq", check=False).stdout.split(), check=False)
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._kill_leftovers()
        self._clean()
        self.log.unlink(missing_ok=True)
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _kill_leftovers(self) -> None:
        """A process of the test user still naming its runtime folder or home (a shim, containerd) is
        this engine's: end it, one by one by its id."""
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                if os.stat(f"/proc/{name}").st_uid != self.uid:
                    continue
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    cmd = f.read()
            except OSError:
                continue
            if self.runtime_dir.encode() in cmd or self.home.encode() in cmd or b"rootlesskit" in cmd:
                try:
                    os.kill(int(name), signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def _clean(self) -> None:
        for p in (f"{self.home}/.local/share/docker", f"{self.home}/.config/docker",
                  f"{self.home}/.config/systemd", self.runtime_dir):
            shutil.rmtree(p, ignore_errors=True)

# Note: ``docker version`` (GET /version) makes this engine panic (moby: daemon/info_unix.go,
# fillRootlessVersion reads rootlesskit's network driver, which --net=host does not have); the
# tests ask ``docker info`` instead, and dockfix falls back to it (dockfix/engine.py, Engine.version).
