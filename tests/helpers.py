"""Helpers shared by the tests: run dockfix as a process, build host trees, take manifests."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BUSYBOX_IMAGE = "dockfix-test/busybox:latest"


def run_dockfix(*args: str, env: dict | None = None, input: str | None = None, timeout: float = 120,
                cwd: str | None = None) -> subprocess.CompletedProcess:
    """Run `python -m dockfix ARGS` from this checkout as its own process."""
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    e.pop("DOCKER_HOST", None)
    e.setdefault("NO_COLOR", "1")
    if env:
        e.update(env)
    return subprocess.run([sys.executable, "-m", "dockfix", *args], capture_output=True, text=True,
                          env=e, input=input, timeout=timeout, cwd=cwd)


def scan_json(root: str | Path, *args: str, **kw) -> dict[str, Any]:
    r = run_dockfix("scan", "--root", str(root), "--format", "json", *args, **kw)
    assert r.returncode in (0, 1, 3), f"scan exited {r.returncode}: {r.stderr}"
    return json.loads(r.stdout)


def statuses(doc: dict) -> dict[tuple[str, str], str]:
    """{(id, subject): status} of a JSON scan document."""
    return {(f["id"], f["subject"]): f["status"] for f in doc["findings"]}


def by_id(doc: dict, check_id: str) -> list[dict]:
    return [f for f in doc["findings"] if f["id"] == check_id or f["cis"] == check_id]


def status_of(doc: dict, check_id: str) -> set[str]:
    return {f["status"] for f in by_id(doc, check_id)}


def put(root: Path, rel: str, content: str | bytes | None = None, mode: int = 0o644, owner: tuple[int, int] = (0, 0)) -> Path:
    """Create a file (or, with content None and a trailing /, a directory) with owner and mode."""
    p = root / rel.strip("/")
    if rel.endswith("/"):
        p.mkdir(parents=True, exist_ok=True)
    else:
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode()
        p.write_bytes(content or b"")
    os.chown(p, *owner)
    os.chmod(p, mode)
    return p


#: Debian 12's docker.io units (trimmed to what dockerd's configuration depends on).
DEBIAN_SERVICE = """\
[Unit]
Description=Docker Application Container Engine
Requires=docker.socket

[Service]
Type=notify
EnvironmentFile=-/etc/default/docker
ExecStart=/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock $DOCKER_OPTS
ExecReload=/bin/kill -s HUP $MAINPID
"""
DEBIAN_SOCKET = "[Socket]\nListenStream=/run/docker.sock\nSocketMode=0660\nSocketGroup=docker\n"


def put_units(root: Path, service: str = DEBIAN_SERVICE, socket: str = DEBIAN_SOCKET) -> None:
    """docker.service and docker.socket in /lib/systemd/system, root:root 0644 (Debian's by default)."""
    put(root, "lib/systemd/system/docker.service", service)
    put(root, "lib/systemd/system/docker.socket", socket)


def manifest(root: str | Path) -> dict[str, tuple]:
    """Every path below root with its type, owner, mode and content hash (links not followed)."""
    out = {}
    root = Path(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = os.lstat(p)
            rel = str(p.relative_to(root))
            if stat.S_ISREG(st.st_mode):
                digest = hashlib.sha256(p.read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                digest = "->" + os.readlink(p)
            else:
                digest = None
            out[rel] = (stat.S_IFMT(st.st_mode), st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), digest)
    return out


def wait_until(what: str, fn, timeout: float = 90.0):
    """fn()'s first true result, asked every 0.5 s; AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def service_secret(engine, service: str, file: str) -> str | None:
    """What a running task of swarm ``service`` reads at /run/secrets/``file`` (None: no task yet)."""
    for cid in engine.cli("ps", "-q", "--filter", f"label=com.docker.swarm.service.name={service}",
                          "--filter", "status=running").stdout.split():
        r = engine.cli("exec", cid, "cat", f"/run/secrets/{file}", check=False)
        if r.returncode == 0:
            return r.stdout
    return None
