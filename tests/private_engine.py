"""The private dockerd for tests and the benchmark: dockfix's own (dockfix/demo/private_engine.py, which
the demo uses too), plus what tests need — the docker CLI pointed at it, the test image, and a reset
between tests. It never touches the machine's default daemon. Used by tests/conftest.py and
bench/scan_bench.py."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass

from dockfix.demo import private_engine as _core
from dockfix.demo.private_engine import free_port  # noqa: F401  (re-exported for the tests)

BUSYBOX_IMAGE = "dockfix-test/busybox:latest"  # same as helpers.BUSYBOX_IMAGE


@dataclass
class PrivateEngine(_core.PrivateEngine):
    """A dockerd of our own. ``url`` is what dockfix gets with --docker-host."""

    def cli(self, *args: str, check: bool = True, input: str | None = None, cwd: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [shutil.which("docker") or "docker", "-H", self.url, *args]
        r = subprocess.run(cmd, capture_output=True, text=True, input=input, cwd=cwd, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {r.stderr.strip()}")
        return r

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
