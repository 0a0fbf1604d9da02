"""`dockfix demo`: the practice host, with and without its private engine, and its cleanup."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dockfix.demo.host import DEMO_SECRETS, MARKER
from dockfix.demo.private_engine import mounts_below, processes_mentioning, why_no_engine
from helpers import REPO, run_dockfix

NO_DOCKERD_PATH = "/usr/bin:/bin"  # dockerd lives in /usr/sbin: a PATH without it


def demo_folder(stderr: str) -> Path:
    m = re.search(r"the demo host is in (\S+)", stderr)
    assert m, stderr
    return Path(m.group(1))


def assert_gone(folder: Path) -> None:
    assert not folder.exists(), f"{folder} was left behind"
    assert processes_mentioning(str(folder)) == [], "a process of the demo is still running"
    assert mounts_below(folder) == []


def assert_no_secret(*texts: str) -> None:
    for t in texts:
        for s in DEMO_SECRETS:
            assert s not in t


def by_id(doc: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for f in doc["findings"]:
        out.setdefault(f["id"], []).append(f)
    return out


def test_files_only_when_dockerd_is_missing_says_what_it_leaves_out(tmp_path):
    notes = tmp_path / "notes.md"
    notes.write_text("## etc-docker-owner\n\nAsk #platform first.\n\n## icc\n\nOff since 2024.\n\n"
                     "## 3.1\n\nWe ship an override.\n\n## no-such-check\n\nx\n")
    r = run_dockfix("demo", "--scan", "--format", "json", "--notes", str(notes),
                    env={"PATH": NO_DOCKERD_PATH, "HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    folder = demo_folder(r.stderr)
    assert "runs on files alone because dockerd is not installed" in r.stderr
    assert "Left out: the checks that need a running engine" in r.stderr
    doc = json.loads(r.stdout)
    assert doc["host"]["engine"] is None
    assert "dockerd is not installed" in doc["host"]["demo"]["left_out"]
    found = by_id(doc)
    # the file faults of the notes are there
    assert found["etc-docker-owner"][0]["status"] == "fail"
    assert found["docker-service-owner"][0]["status"] == "fail"
    assert found["icc"][0]["status"] == "fail"
    assert found["log-level"][0]["status"] == "fail"
    assert found["insecure-registries"][0]["status"] == "fail"
    # team notes travel into the JSON; the unknown tag is reported with file and line
    assert found["etc-docker-owner"][0]["team_notes"] == ["Ask #platform first."]
    assert found["icc"][0]["team_notes"] == ["Off since 2024."]
    assert found["docker-service-owner"][0]["team_notes"] == ["We ship an override."]
    assert f"{notes}:13: unknown check id 'no-such-check'" in r.stderr
    assert_no_secret(r.stdout, r.stderr)
    assert_gone(folder)


def test_at_dir_is_kept_and_reused_and_a_foreign_folder_is_refused(tmp_path):
    at = tmp_path / "practice"
    r = run_dockfix("demo", "--scan", "--no-engine", "--at", str(at), env={"HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert "the private engine was not asked for" in r.stdout + r.stderr
    assert (at / MARKER).is_file() and (at / "host/srv/shop/compose.yaml").is_file()
    st = os.stat(at / "host/etc/docker")
    assert (st.st_uid, st.st_gid) == (1000, 1000)
    # the trainee fixes something by hand; the next run keeps it
    os.chown(at / "host/etc/docker", 0, 0)
    r = run_dockfix("demo", "--scan", "--no-engine", "--at", str(at), "--format", "json", env={"HOME": str(tmp_path)})
    assert "reusing the demo host" in r.stderr
    assert by_id(json.loads(r.stdout))["etc-docker-owner"][0]["status"] == "pass"
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    r = run_dockfix("demo", "--scan", "--no-engine", "--at", str(foreign))
    assert r.returncode == 2
    assert r.stderr == f"dockfix: {foreign}: not empty and not a dockfix demo folder (no {MARKER}); choose another --at\n"
    assert sorted(os.listdir(foreign)) == ["precious.txt"]


needs_engine = pytest.mark.skipif(why_no_engine() is not None and os.environ.get("CI") != "true",
                                  reason=f"no private engine here: {why_no_engine()}")


@pytest.mark.slow
@pytest.mark.engine
@needs_engine
def test_with_dockerd_shows_runtime_findings_and_stops_its_engine():
    r = run_dockfix("demo", "--scan", "--format", "json", timeout=300)
    assert r.returncode == 0, r.stderr
    folder = demo_folder(r.stderr)
    doc = json.loads(r.stdout)
    assert doc["host"]["engine"]["url"] == f"unix://{folder}/engine/docker.sock"
    assert doc["host"]["demo"]["left_out"] is None
    found = by_id(doc)
    runtime = {(f["id"], f["subject"]) for f in doc["findings"] if f["status"] == "fail" and "shop-" in f["subject"]}
    assert any(i == "privileged" and "shop-debug" in s for i, s in runtime), runtime
    assert any(i == "docker-socket-mount" and "shop-agent" in s for i, s in runtime), runtime
    assert found["swarm-mode"][0]["status"] in ("fail", "manual")
    # the swarm task is up before the scan reports: its service's faults are found every time
    assert any("shop-registry" in f["subject"] and f["status"] == "fail" for f in doc["findings"]), runtime
    # the engine's own sandbox flags (--iptables=false, --bridge=none) are not the demo host's faults
    assert not any("command line" in f["evidence"] for f in found["iptables"] if f["status"] == "fail")
    assert "sandbox flags are not counted" in r.stderr
    # quitting says what it cleans up
    assert "cleaning up: stopping the demo's private dockerd" in r.stderr and "cleaned up." in r.stderr
    assert_no_secret(r.stdout, r.stderr)
    assert_gone(folder)


@pytest.mark.slow
@pytest.mark.engine
@needs_engine
def test_sigterm_stops_the_engine_and_removes_everything():
    env = dict(os.environ, PYTHONPATH=str(REPO), NO_COLOR="1")
    env.pop("DOCKER_HOST", None)
    p = subprocess.Popen([sys.executable, "-m", "dockfix", "demo", "--hold"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = p.stdout.readline()
        assert line.startswith("READY "), p.stderr.read() if p.poll() is not None else line
        folder = Path(line.split(None, 1)[1].strip())
        ours = processes_mentioning(str(folder))
        assert ours, "the demo's dockerd is not running"
        assert mounts_below(folder)  # the engine's mounts exist while it runs
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=120) == 128 + signal.SIGTERM
    finally:
        if p.poll() is None:
            p.kill()
    assert_gone(folder)
