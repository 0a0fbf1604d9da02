"""Without root: the scan still works and reports what it could not read as `error`
(permission denied); fixing refuses before anything is planned.

The interpreter lives under /root (pyenv), which an unprivileged user cannot enter, so the
child process starts as root, imports what the scan needs, scans a small warm-up tree once (so
every lazily imported module is loaded), then drops to nobody (65534:65534, no supplementary
groups: setgroups, setgid, setuid — after which it holds no capabilities) and runs dockfix. All
file access of the scan under test happens as nobody.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from helpers import REPO, put

NOBODY = 65534

DRIVER = r"""
import io, os, sys, contextlib, tempfile
from dockfix.cli import main, build_parser
warm, *argv = sys.argv[1:]
# Warm up as root on a throw-away tree only (never the command under test: that one may be an
# apply on / ): every module the scan, the report writers and the fix commands use gets loaded.
with contextlib.redirect_stdout(io.StringIO()):
    main(["scan", "--root", warm, "--no-engine", "--format", "json"])
    main(["scan", "--root", warm, "--no-engine"])
    build_parser()
    import dockfix.cli.apply, dockfix.workflow, dockfix.journal, dockfix.plan, dockfix.fixes  # noqa
os.setgroups([])
os.setgid(65534)
os.setuid(65534)
assert os.geteuid() == 65534 and os.getegid() == 65534 and os.getgroups() == []
try:
    open("/etc/shadow").close()
    sys.exit("still privileged: /etc/shadow was readable")
except PermissionError:
    pass
sys.exit(main(list(argv)))  # the run under test, as nobody
"""


def run_as_nobody(*argv: str, warm: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), NO_COLOR="1", HOME="/nonexistent")
    env.pop("DOCKER_HOST", None)
    return subprocess.run([sys.executable, "-c", DRIVER, str(warm), *argv], capture_output=True, text=True,
                          env=env, timeout=120, cwd="/")


@pytest.fixture
def world_tmp():
    """A temporary folder nobody can enter (pytest's own tmp_path is private to root)."""
    d = Path(tempfile.mkdtemp(prefix="dockfix-nonroot-", dir="/tmp"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def locked_host(base: Path) -> Path:
    root = base / "root"
    root.mkdir()
    os.chmod(root, 0o755)
    put(root, "/etc/", mode=0o755)
    put(root, "/etc/docker/", mode=0o700)  # as on many hosts: root only
    put(root, "/etc/docker/daemon.json", '{"icc": false, "log-level": "info"}\n', mode=0o644)
    put(root, "/etc/default/docker", 'DOCKER_OPTS="--icc=false"\n', mode=0o600)
    put(root, "/etc/group", "root:x:0:\ndocker:x:999:\n")
    put(root, "/lib/systemd/system/docker.service", "[Service]\nExecStart=/usr/bin/dockerd\n", mode=0o644)
    put(root, "/srv/app/", mode=0o700)
    put(root, "/srv/app/compose.yaml", "services:\n  web:\n    image: busybox\n    privileged: true\n", mode=0o600)
    return root


def test_scan_as_nobody_reports_permission_denied(world_tmp: Path) -> None:
    root = locked_host(world_tmp)
    warm = world_tmp / "warm"
    put(warm, "/etc/docker/daemon.json", "{}\n")
    out = world_tmp / "out"
    out.mkdir()
    os.chown(out, NOBODY, NOBODY)
    r = run_as_nobody("scan", "--root", str(root), "--no-engine", "--path", "/srv/app", "--format", "json",
                      "-o", str(out / "r.json"), warm=warm)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode in (0, 1, 3), r.stderr
    doc = json.loads((out / "r.json").read_text())
    by = {f["id"]: f for f in doc["findings"]}
    # daemon.json sits in a 0700 folder: every check that needs it says so, naming the file
    for cid in ("icc", "log-level", "daemon-json-owner", "daemon-json-mode"):
        f = by[cid]
        assert f["status"] == "error", f
        assert "permission denied" in f["evidence"] and "/etc/docker" in f["evidence"], f
    # /etc/docker itself can be looked at from /etc: its owner and mode are checked as usual
    assert by["etc-docker-owner"]["status"] == "pass"
    assert by["etc-docker-mode"]["status"] == "pass"
    # the unit file is world-readable: checked as usual
    assert by["docker-service-owner"]["status"] == "pass"
    assert not [f for f in doc["findings"] if "internal error" in f["evidence"]]
    # the 0700 project folder is reported, not taken for an empty one
    assert by["env-password"]["status"] == "error", by["env-password"]
    assert "/srv/app: permission denied" in by["env-password"]["evidence"]


def test_text_scan_as_nobody(world_tmp: Path) -> None:
    """The default text report as nobody, with a project folder nobody cannot read."""
    root = locked_host(world_tmp)
    warm = world_tmp / "warm"
    put(warm, "/etc/docker/daemon.json", "{}\n")
    r = run_as_nobody("scan", "--root", str(root), "--no-engine", warm=warm)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode in (0, 1, 3), r.stderr
    assert "permission denied" in r.stdout
    assert "ERROR" in r.stdout


@pytest.mark.parametrize("command", [["--apply", "--yes"], ["rollback", "--last"]])
def test_fixing_the_real_host_without_root_refuses_before_planning(command: list[str], world_tmp: Path) -> None:
    """As nobody, `dockfix --apply` (and rollback) on the real host (--root /) refuses at once:
    one line, exit 2, nothing scanned or planned (no plan is printed), nothing written."""
    warm = world_tmp / "warm"
    put(warm, "/etc/docker/daemon.json", "{}\n")
    r = run_as_nobody(*command, "--root", "/", "--no-engine", warm=warm)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "needs root" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert r.stdout == ""
