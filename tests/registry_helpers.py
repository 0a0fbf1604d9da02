"""A real registry for the tests: Debian's docker-registry (distribution 2.8) on a free 127.0.0.1 port,
with its own storage folder and configuration. dockerd treats 127.0.0.0/8 as an insecure registry by
default, so images pushed there and pulled back get real RepoDigests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from private_engine import free_port

REGISTRY_BIN = shutil.which("docker-registry")

CONFIG = """\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: {addr}
"""


class Registry:
    def __init__(self, folder: Path, host: str = "127.0.0.1"):
        self.folder = Path(folder)
        self.port = free_port()
        self.addr = f"{host}:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, argv_prefix: list[str] | None = None) -> "Registry":
        (self.folder / "storage").mkdir(parents=True, exist_ok=True)
        cfg = self.folder / "config.yml"
        cfg.write_text(CONFIG.format(storage=self.folder / "storage", addr=self.addr))
        log = open(self.folder / "registry.log", "wb")
        self.proc = subprocess.Popen([*(argv_prefix or []), REGISTRY_BIN, "serve", str(cfg)], stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {(self.folder / 'registry.log').read_text()[-500:]}")
            try:
                with urllib.request.urlopen(f"http://{self.addr}/v2/", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("docker-registry did not answer within 20 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
