"""A private dockerd for tests and the benchmark: its own data root, exec root, pidfile and unix
socket under a folder of its own, no bridge and no iptables. It never touches the machine's default
daemon. Used by tests/conftest.py (fixtures) and bench/scan_bench.py."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BUSYBOX_IMAGE = "dockfix-test/busybox:latest"  # same as helpers.BUSYBOX_IMAGE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PrivateEngine:
    """A dockerd of our own. ``url`` is what dockfix gets with --docker-host."""

    base: Path
    proc: subprocess.Popen | None = None
    swarm: bool = False
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.base / "dockerd.log"

    @property
    def sock(self) -> str:
        return str(self.base / "docker.sock")

    @property
    def url(self) -> str:
        return f"unix://{self.sock}"

    def cli(self, *args: str, check: bool = True, input: str | None = None, cwd: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [shutil.which("docker") or "docker", "-H", self.url, *args]
        r = subprocess.run(cmd, capture_output=True, text=True, input=input, cwd=cwd, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {r.stderr.strip()}")
        return r

    def client(self):
        import docker

        return docker.DockerClient(base_url=self.url, version="auto", timeout=60)

    def start(self) -> None:
        dockerd = shutil.which("dockerd")
        if not dockerd:
            raise RuntimeError("dockerd is not installed (apt-get install docker.io)")
        self.base.mkdir(parents=True, exist_ok=True)
        cmd = [
            dockerd,
            "--data-root", str(self.base / "data"),
            "--exec-root", str(self.base / "exec"),
            "--pidfile", str(self.base / "dockerd.pid"),
            "--host", self.url,
            "--bridge=none", "--iptables=false", "--ip-masq=false",
            "--config-file", str(self.base / "daemon.json"),
        ]
        (self.base / "daemon.json").write_text("{}\n")
        logf = open(self.log, "wb")
        self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            if os.path.exists(self.sock) and self.cli("version", check=False, timeout=10).returncode == 0:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"dockerd did not answer within 60 s: {self.log.read_text()[-2000:]}")
        self.import_busybox()
        if self.swarm:
            port = free_port()
            self.cli("swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", f"127.0.0.1:{port}")

    def import_busybox(self) -> None:
        busybox = shutil.which("busybox") or "/bin/busybox"
        if not os.path.exists(busybox):
            raise RuntimeError("busybox is not installed (apt-get install busybox-static)")
        with tempfile.TemporaryDirectory() as rootfs:
            os.makedirs(f"{rootfs}/bin")
            os.makedirs(f"{rootfs}/tmp")
            os.makedirs(f"{rootfs}/etc")
            shutil.copy(busybox, f"{rootfs}/bin/busybox")
            for cmd in ("sh", "sleep", "cat", "env", "ls", "ps", "echo", "true", "nc", "id", "test", "grep"):
                os.symlink("busybox", f"{rootfs}/bin/{cmd}")
            Path(f"{rootfs}/etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n")
            tar = subprocess.run(["tar", "-C", rootfs, "-c", "."], capture_output=True, check=True).stdout
            r = subprocess.run([shutil.which("docker") or "docker", "-H", self.url, "import", "-", BUSYBOX_IMAGE],
                               input=tar, capture_output=True)
            if r.returncode != 0:
                raise RuntimeError(f"docker import failed: {r.stderr.decode()}")

    def reset(self) -> None:
        """Remove every container and service, so each test starts from an empty engine."""
        if self.swarm:
            ids = self.cli("service", "ls", "-q", check=False).stdout.split()
            if ids:
                self.cli("service", "rm", *ids, check=False)
            for stack in self.cli("stack", "ls", "--format", "{{.Name}}", check=False).stdout.split():
                self.cli("stack", "rm", stack, check=False)
            secrets = self.cli("secret", "ls", "-q", check=False).stdout.split()
            # secrets still in use by a dying task cannot go yet: wait for the tasks to end
            deadline = time.monotonic() + 20
            while secrets and time.monotonic() < deadline:
                if self.cli("secret", "rm", *secrets, check=False).returncode == 0:
                    break
                time.sleep(0.5)
        ids = self.cli("ps", "-aq", check=False).stdout.split()
        if ids:
            self.cli("rm", "-f", *ids, check=False)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.swarm:
            self.cli("swarm", "leave", "--force", check=False, timeout=60)
        ids = self.cli("ps", "-aq", check=False, timeout=60).stdout.split()
        if ids:
            self.cli("rm", "-f", *ids, check=False, timeout=120)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        subprocess.run(["umount", "-R", str(self.base / "exec")], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)
