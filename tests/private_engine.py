"""The private dockerd for tests and the benchmark: dockfix's own (dockfix/demo/private_engine.py, which
the demo uses too), plus what tests need — the docker CLI pointed at it, the test image, and a reset
between tests. It never touches the machine's default daemon. Used by tests/conftest.py and
bench/scan_bench.py."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from dockfix.demo import private_engine as _core
from dockfix.demo.private_engine import free_port  # noqa: F401  (re-exported for the tests)

BUSYBOX_IMAGE = "dockfix-test/busybox:latest"  # same as helpers.BUSYBOX_IMAGE
REPO = Path(__file__).resolve().parent.parent

#: The engines every engine-marked test runs against: the machine's own dockerd (Debian 12:
#: 20.10) and Docker 28 from Debian's newer suite (scripts/newer-debs), on its own containerd 2
#: with the containerd image store switched on (the default of fresh installs from Docker 29).
#: DOCKFIX_TEST_ENGINES=20.10 (or 28) runs one of them.
ENGINES = ("20.10", "28")
NEWER_PACKAGES = ("docker.io", "containerd", "docker-cli")


def test_engines() -> list[str]:
    wanted = [e.strip() for e in os.environ.get("DOCKFIX_TEST_ENGINES", ",".join(ENGINES)).split(",") if e.strip()]
    unknown = [e for e in wanted if e not in ENGINES]
    if unknown:
        raise SystemExit(f"DOCKFIX_TEST_ENGINES: unknown engine {', '.join(unknown)} (known: {', '.join(ENGINES)})")
    return wanted


def newer_bin_dirs() -> tuple[str, ...]:
    """Folders of the unpacked Docker 28 binaries (containerd, dockerd, docker), unpacking them if needed."""
    out = subprocess.run([str(REPO / "scripts" / "newer-debs"), *NEWER_PACKAGES], capture_output=True, text=True,
                         timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"scripts/newer-debs failed: {out.stderr.strip()[-400:]}")
    roots = {line.split()[0]: line.split()[2] for line in out.stdout.splitlines() if len(line.split()) == 3}
    return (f"{roots['containerd']}/usr/bin", f"{roots['docker.io']}/usr/sbin", f"{roots['docker-cli']}/usr/bin")


def make_engine(version: str, base: Path, swarm: bool = False) -> "PrivateEngine":
    """A private engine of the given version (one of ENGINES), not started."""
    if version == "20.10":
        eng = PrivateEngine(base, swarm=swarm)
    elif version == "28":
        eng = PrivateEngine(base, swarm=swarm, bin_dirs=newer_bin_dirs(), own_containerd=True,
                            daemon_json={"features": {"containerd-snapshotter": True}})
    else:
        raise ValueError(f"unknown engine {version}")
    eng.version = version
    return eng


@dataclass
class PrivateEngine(_core.PrivateEngine):
    """A dockerd of our own. ``url`` is what dockfix gets with --docker-host."""

    version: str = "20.10"  # which of ENGINES

    def cli(self, *args: str, check: bool = True, input: str | None = None, cwd: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [self.which("docker") or "docker", "-H", self.url, *args]
        r = subprocess.run(cmd, capture_output=True, text=True, input=input, cwd=cwd, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {r.stderr.strip()}")
        return r

    @property
    def server_version(self) -> str:
        return self.cli("version", "--format", "{{.Server.Version}}").stdout.strip()

    def import_busybox(self, tag: str = BUSYBOX_IMAGE) -> None:
        super().import_busybox(tag)

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

    def stop(self, remove: bool = True) -> list[str]:
        problems = super().stop(remove)
        if problems:
            print(f"private engine {self.base}: {'; '.join(problems)}")
        return problems
