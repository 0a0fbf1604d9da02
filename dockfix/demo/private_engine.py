"""A dockerd of our own, for the demo host (and reusable by the tests).

It never touches the machine's default daemon: its data root, exec root, pidfile, config file and
unix socket all live under one folder of its own, and it runs with no bridge, no iptables and no
IP masquerading, so it changes nothing in the machine's network. Images come from
``docker import`` of a static busybox (no registry needed).

A newer engine than the machine's own (Docker 28 from Debian's newer suite, unpacked in a cache
folder) runs the same way: ``bin_dirs`` names the folders whose dockerd, containerd and docker come
first (they are put first on dockerd's PATH, so its shims are found there too), and
``own_containerd`` starts a private containerd with a configuration of its own (containerd 2 would
otherwise read the machine's /etc/containerd/config.toml; its CRI plugins are left out), which
dockerd is pointed at with ``--containerd``. ``daemon_json`` is written to the engine's config
file (``{}`` by default), e.g. ``{"features": {"containerd-snapshotter": true}}`` for the
containerd image store.

Stopping it leaves nothing behind: the swarm is left, every container removed, dockerd (and the
containerd it started) stopped, and every mount below the folder unmounted. The folder itself is
removed only when no mount is left below it.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import stat as stat_mod
import subprocess
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BUSYBOX_IMAGE = "dockfix-demo/busybox:latest"
BUSYBOX_COMMANDS = ("sh", "sleep", "cat", "env", "ls", "ps", "echo", "true", "nc", "id", "test", "grep")
#: A unix socket path must fit in sun_path (108 bytes with the NUL).
MAX_SOCKET_PATH = 100


class EngineError(Exception):
    """The private engine could not be started or used (one line)."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


#: the port of a swarm node's network gossip (libnetwork's NetworkDB, TCP and UDP): fixed, not configurable
GOSSIP_PORT = 7946


def swarm_address() -> str:
    """A loopback address of its own for a private swarm node (127.x.y.z, all local on Linux) on which
    nothing holds the gossip port. Every node binds NetworkDB to 7946 on its listen address; a second
    swarm on 127.0.0.1 (another private engine, a test's or a colleague's) fails "Error in agentInit
    ... Failed to start TCP listener", its overlay driver never learns the data-path address, and every
    task on an overlay network is rejected: "the local data-plane address is not currently known"."""
    import random

    for _ in range(50):
        addr = f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
        try:
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                with socket.socket(socket.AF_INET, kind) as s:
                    s.bind((addr, GOSSIP_PORT))
        except OSError:
            continue
        return addr
    raise EngineError(f"no loopback address with port {GOSSIP_PORT} free for a private swarm")


def why_no_engine(dockerd: str | None = "") -> str | None:
    """Why a private engine cannot run here, or None when it can (``dockerd``: the one to use)."""
    if os.geteuid() != 0:
        return "dockfix is not running as root (dockerd needs root)"
    if not (dockerd if dockerd != "" else shutil.which("dockerd")):
        return "dockerd is not installed (not found on PATH; Debian: apt-get install docker.io)"
    if not busybox_path():
        return "busybox is not installed (Debian: apt-get install busybox-static); it is needed for the demo image"
    return None


def busybox_path() -> str | None:
    for p in (shutil.which("busybox"), "/bin/busybox", "/usr/bin/busybox"):
        if p and os.path.isfile(p):
            return p
    return None


def mounts_below(path: Path) -> list[str]:
    """Mount points at or below ``path`` (deepest first), from /proc/self/mountinfo."""
    top = str(path).rstrip("/")
    found = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            for line in f:
                mp = line.split()[4].encode().decode("unicode_escape")
                if mp == top or mp.startswith(top + "/"):
                    found.append(mp)
    except OSError:
        return []
    return sorted(set(found), key=len, reverse=True)


#: Flags that keep the demo's engine off this machine's network. They are the sandbox's, not faults
#: of the demo host: the demo's scans leave them out (see DemoHost.context).
SANDBOX_FLAGS = ("--bridge=none", "--iptables=false", "--ip-masq=false")


def unmount_below(path: Path) -> list[str]:
    """Unmount everything at or below ``path`` (deepest first) and return what is still mounted.
    A mount point whose path now leads elsewhere (a link swapped in along the way: ``umount``
    follows links) is never unmounted: unmounting, say, a bind mount of /dev through such a path
    would leave /dev/null as a missing name that the next ``> /dev/null`` creates as a file."""
    top = os.path.realpath(path)
    for lazy in (False, True):
        for mp in mounts_below(path):
            real = os.path.realpath(mp)
            if real != mp or not (real == top or real.startswith(top + "/")):
                continue
            subprocess.run(["umount", *(["-l"] if lazy else []), "--no-canonicalize", mp], capture_output=True)
    return mounts_below(path)


def remove_own_tree(path: Path) -> list[str]:
    """Remove the folder ``path`` and what is in it, but never anything that is not ours: nothing
    on another filesystem or behind a mount point (a /dev, /proc or bind mount left by a container
    is left alone and named, a file bind-mounted from /dev included), and no link followed (every step is relative to an
    ``O_NOFOLLOW`` directory descriptor). Returns what was left, one line each."""
    left: list[str] = []
    try:
        top = os.lstat(path)
    except FileNotFoundError:
        return []
    if not stat_mod.S_ISDIR(top.st_mode):
        return [f"{path}: not a directory; left alone"]
    mounted = set(mounts_below(path))

    def rm(dirfd: int, name: str, where: str) -> None:
        try:
            st = os.lstat(name, dir_fd=dirfd)
        except FileNotFoundError:
            return
        if stat_mod.S_ISDIR(st.st_mode):
            if st.st_dev != top.st_dev or where in mounted:
                left.append(f"{where}: a mount point (another filesystem); left alone")
                return
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)
            try:
                if os.fstat(fd).st_dev != top.st_dev:
                    left.append(f"{where}: mounted over while being removed; left alone")
                    return
                for entry in os.listdir(fd):
                    rm(fd, entry, f"{where}/{entry}")
            finally:
                os.close(fd)
            try:
                os.rmdir(name, dir_fd=dirfd)
            except OSError as e:
                left.append(f"{where}: {e.strerror}")
        elif st.st_dev != top.st_dev or where in mounted:
            # a file bind-mounted here (runc binds /dev/null onto a rootfs's dev/null): not ours
            left.append(f"{where}: a mount point (another filesystem); left alone")
        else:
            # a name on our own filesystem, even a device node (dockerd's backingFsBlockDev, overlay
            # whiteouts): removing the name never touches the device itself
            try:
                os.unlink(name, dir_fd=dirfd)
            except OSError as e:
                left.append(f"{where}: {e.strerror}")

    parent = os.open(os.path.dirname(os.path.abspath(path)) or "/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        rm(parent, os.path.basename(os.path.abspath(path)), str(path))
    finally:
        os.close(parent)
    return left


@dataclass
class PrivateEngine:
    """A dockerd under ``base``. ``url`` is what dockfix gets with --docker-host."""

    base: Path
    swarm: bool = False
    #: the loopback address the swarm (if any) listens, advertises and carries data on (see swarm_address)
    swarm_addr: str = ""
    proc: subprocess.Popen | None = None
    #: folders searched before PATH for dockerd, containerd and docker (a newer engine's binaries)
    bin_dirs: tuple[str, ...] = ()
    #: start a private containerd for dockerd (``--containerd``) instead of letting dockerd start one
    own_containerd: bool = False
    #: settings written to the engine's daemon.json
    daemon_json: dict | None = None
    containerd_proc: subprocess.Popen | None = None
    log: Path = field(init=False)
    #: The command line it was started with.
    argv: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.base = Path(self.base)
        self.log = self.base / "dockerd.log"

    @property
    def sock(self) -> str:
        return str(self.base / "docker.sock")

    @property
    def url(self) -> str:
        return f"unix://{self.sock}"

    @property
    def path_env(self) -> str:
        return os.pathsep.join([*self.bin_dirs, os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")])

    def which(self, name: str) -> str | None:
        """``name`` from ``bin_dirs`` first, then from PATH."""
        return shutil.which(name, path=self.path_env)

    def client(self, timeout: int = 60):
        import docker

        return docker.DockerClient(base_url=self.url, version="auto", timeout=timeout)

    # ------------------------------------------------------------------ start
    def start(self, timeout: float = 60) -> None:
        reason = why_no_engine(self.which("dockerd"))
        if reason:
            raise EngineError(reason)
        if len(self.sock) > MAX_SOCKET_PATH:
            raise EngineError(f"{self.sock}: socket path too long for a unix socket (keep the folder short)")
        self.base.mkdir(parents=True, exist_ok=True)
        import json

        (self.base / "daemon.json").write_text(json.dumps(self.daemon_json or {}) + "\n")
        deadline = time.monotonic() + timeout
        extra: list[str] = []
        if self.own_containerd:
            extra = ["--containerd", self._start_containerd(deadline)]
        cmd = [
            self.which("dockerd") or "dockerd",
            "--data-root", str(self.base / "data"),
            "--exec-root", str(self.base / "exec"),
            "--pidfile", str(self.base / "dockerd.pid"),
            "--host", self.url,
            *SANDBOX_FLAGS,
            "--config-file", str(self.base / "daemon.json"),
            *extra,
        ]
        self.argv = list(cmd)
        with open(self.log, "wb") as logf:
            # its own session: a Ctrl-C in the terminal reaches us, and we stop it in order
            self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True, env={**os.environ, "PATH": self.path_env})
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise EngineError(f"dockerd exited with {self.proc.returncode}: {self._log_tail()}")
            if os.path.exists(self.sock) and self._pings():
                break
            time.sleep(0.2)
        else:
            raise EngineError(f"dockerd did not answer within {timeout:.0f} s: {self._log_tail()}")
        self.import_busybox()
        if self.swarm:
            addr = swarm_address()  # not 127.0.0.1: the gossip port must be this swarm's own
            self.swarm_addr = addr
            self.client().swarm.init(advertise_addr=addr, listen_addr=f"{addr}:{free_port(addr)}",
                                     data_path_addr=addr)

    def _start_containerd(self, deadline: float) -> str:
        """A containerd of our own under ``base`` (its own config, root, state and socket)."""
        conf = self.base / "containerd.toml"
        conf.write_text('version = 3\ndisabled_plugins = ["io.containerd.grpc.v1.cri", '
                        '"io.containerd.cri.v1.runtime", "io.containerd.cri.v1.images"]\n')
        sock = str(self.base / "containerd.sock")
        cmd = [self.which("containerd") or "containerd", "--config", str(conf),
               "--root", str(self.base / "containerd" / "root"), "--state", str(self.base / "containerd" / "state"),
               "--address", sock]
        with open(self.base / "containerd.log", "wb") as logf:
            self.containerd_proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                    start_new_session=True, env={**os.environ, "PATH": self.path_env})
        while time.monotonic() < deadline:
            if self.containerd_proc.poll() is not None:
                raise EngineError(f"containerd exited with {self.containerd_proc.returncode}: "
                                  f"{self._log_tail(self.base / 'containerd.log')}")
            if os.path.exists(sock):
                return sock
            time.sleep(0.1)
        raise EngineError(f"containerd did not start: {self._log_tail(self.base / 'containerd.log')}")

    def _pings(self) -> bool:
        try:
            c = self.client(timeout=5)
            try:
                return bool(c.ping())
            finally:
                c.close()
        except Exception:  # noqa: BLE001 - not up yet
            return False

    def _log_tail(self, log: Path | None = None) -> str:
        try:
            return " | ".join((log or self.log).read_text(errors="replace").strip().splitlines()[-3:])[-600:]
        except OSError:
            return "(no log)"

    def import_busybox(self, tag: str = BUSYBOX_IMAGE) -> None:
        """Make a tiny image from the machine's static busybox with ``docker import``."""
        busybox = busybox_path()
        if not busybox:
            raise EngineError("busybox is not installed (apt-get install busybox-static)")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            def add_dir(name: str) -> None:
                ti = tarfile.TarInfo(name)
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(ti)

            for d in ("bin", "tmp", "etc"):
                add_dir(d)
            tar.add(busybox, arcname="bin/busybox")
            for c in BUSYBOX_COMMANDS:
                ti = tarfile.TarInfo(f"bin/{c}")
                ti.type, ti.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(ti)
            passwd = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n"
            ti = tarfile.TarInfo("etc/passwd")
            ti.size = len(passwd)
            tar.addfile(ti, io.BytesIO(passwd))
        repo, _, t = tag.rpartition(":")
        try:
            self.client().api.import_image_from_data(buf.getvalue(), repository=repo, tag=t)
        except Exception as e:  # noqa: BLE001
            raise EngineError(f"docker import of busybox failed: {e}") from None

    # ------------------------------------------------------------------ stop
    def stop(self, remove: bool = True) -> list[str]:
        """Stop everything and (``remove``) delete the folder. Returns problems left (empty: clean)."""
        problems: list[str] = []
        if self.proc is not None and self.proc.poll() is None:
            try:
                c = self.client(timeout=30)
                if self.swarm:
                    try:
                        c.swarm.leave(force=True)
                    except Exception:  # noqa: BLE001 - not in a swarm any more
                        pass
                for ctr in c.containers.list(all=True):
                    try:
                        ctr.remove(force=True)
                    except Exception:  # noqa: BLE001
                        pass
                c.close()
            except Exception:  # noqa: BLE001 - the engine is going down anyway
                pass
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        elif self.proc is not None:
            self.proc.wait()
        cp = self.containerd_proc
        if cp is not None and cp.poll() is None:  # after dockerd: it still talks to containerd on its way out
            cp.send_signal(signal.SIGTERM)
            try:
                cp.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(cp.pid, signal.SIGKILL)
                cp.wait(timeout=10)
        self._kill_leftovers()
        left = unmount_below(self.base)
        if left:
            problems.append(f"still mounted: {', '.join(left)}")
        elif remove:
            problems += remove_own_tree(self.base)[:5]
        return problems

    def _kill_leftovers(self) -> None:
        """A dockerd/containerd process still naming our folder (a shim, say) is ours: end it."""
        for pid in processes_mentioning(str(self.base) + "/"):
            try:
                exe = os.path.basename(os.readlink(f"/proc/{pid}/exe"))
            except OSError:
                continue
            if not exe.startswith(("dockerd", "containerd", "docker-", "runc")):
                continue
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def processes_mentioning(text: str) -> list[int]:
    """Ids of processes whose command line contains ``text``."""
    found = []
    me = {os.getpid(), os.getppid()}
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in me:
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd:
            found.append(int(name))
    return found
