"""Rootless Docker on host trees: a user's daemon is found (socket, user unit), scanned as its own
subject with the user's files and ownership, and fixed with the user's ownership, with rollback.

(tests/test_rootless_engine.py runs a real rootless dockerd where this machine allows it.)
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from helpers import manifest, put, run_dockfix
from dockfix.context import Context
from dockfix.host import Host
from dockfix.model import Status
from dockfix.scan import scan
from dockfix.sources.rootless import find_rootless, rootless_for_url, socket_uid
from dockfix.workflow import apply_plan, plan_fixes, rescan, rollback

UID, GID = 1000, 1000
URL = f"unix:///run/user/{UID}/docker.sock"
HOME = "/home/alice"


@pytest.fixture
def tree():
    # a short folder: the per-user socket below it must fit a unix socket path
    root = Path(tempfile.mkdtemp(prefix="dfx-rl-", dir="/tmp"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def unix_socket(path: Path, mode: int, owner: tuple[int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.close()
    os.chown(path, *owner)
    os.chmod(path, mode)


def rootless_host(root: Path, daemon_json: str | None = '{\n  "log-level": "debug"\n}\n',
                  json_owner: tuple[int, int] = (0, 0)) -> None:
    """A host with root's daemon (files root-owned) and alice's rootless daemon."""
    put(root, "etc/passwd", f"root:x:0:0:root:/root:/bin/bash\nalice:x:{UID}:{GID}::{HOME}:/bin/bash\n")
    put(root, "etc/group", f"root:x:0:\ndocker:x:998:\nalice:x:{GID}:\n")
    put(root, "etc/docker/", mode=0o755)
    put(root, "etc/docker/daemon.json", '{"icc": false}\n')
    put(root, "etc/default/docker", 'DOCKER_OPTS="--log-level=debug"\n')
    put(root, "lib/systemd/system/docker.service", "[Service]\nExecStart=/usr/bin/dockerd\n")
    put(root, "lib/systemd/system/docker.socket", "[Socket]\nListenStream=/run/docker.sock\n")
    alice = (UID, GID)
    for d in ("home/alice/", "home/alice/.config/", "home/alice/.config/systemd/", "home/alice/.config/systemd/user/",
              "home/alice/.local/", "home/alice/.local/share/", "home/alice/.local/share/docker/"):
        put(root, d, mode=0o755 if d != "home/alice/" else 0o700, owner=alice)
    put(root, "home/alice/.config/systemd/user/docker.service",
        "[Service]\nExecStart=/usr/bin/dockerd-rootless.sh\n", owner=alice)
    if daemon_json is not None:
        put(root, "home/alice/.config/docker/", mode=0o755, owner=alice)
        put(root, "home/alice/.config/docker/daemon.json", daemon_json, owner=json_owner)
    run = root / "run/user" / str(UID)
    put(root, f"run/user/{UID}/", mode=0o700, owner=alice)
    unix_socket(run / "docker.sock", 0o660, alice)


def manifest_without_journal(root: Path) -> dict:
    return {k: v for k, v in manifest(root).items() if not k.startswith("var")}


def ctx_for(root: Path, url: str = URL) -> Context:
    return Context(Host(str(root), docker_host=url, engine=False))


def found(findings, check_id: str) -> list:
    return [f for f in findings if f.id == check_id or f.cis == check_id]


def test_rootless_daemons_are_found_by_socket_and_user_unit(tree):
    rootless_host(tree)
    host = Host(str(tree), engine=False)
    [d] = find_rootless(host)
    assert (d.uid, d.gid, d.user, d.home, d.group) == (UID, GID, "alice", HOME, "alice")
    assert d.found_by == (f"socket /run/user/{UID}/docker.sock", f"user unit {HOME}/.config/systemd/user/docker.service")
    assert (d.socket, d.daemon_json, d.data_root) == (
        f"/run/user/{UID}/docker.sock", f"{HOME}/.config/docker/daemon.json", f"{HOME}/.local/share/docker")
    assert socket_uid("unix:///var/run/user/1000/docker.sock") == 1000
    assert socket_uid("unix:///run/docker.sock") is None and socket_uid("unix:///run/user/0/docker.sock") is None
    assert rootless_for_url(host, "tcp://127.0.0.1:2375") is None


def test_root_daemon_scan_names_the_rootless_daemons_in_2_1(tree):
    rootless_host(tree)
    r = run_dockfix("scan", "--benchmark", "1.6.0", "--root", str(tree), "--no-engine", "--format", "json", "--only", "2.1")
    [f] = [f for f in json.loads(r.stdout)["findings"] if f["subject"] == "dockerd"]
    assert f["status"] == "manual"
    assert f"alice (uid {UID}, {URL}; found by socket" in f["evidence"], f


def test_rootless_daemon_is_scanned_as_its_own_subject(tree):
    rootless_host(tree)
    # selected with --docker-host, as a user would (the engine is not reachable from a tree: its
    # findings are errors; the file and configuration checks are what this test is about)
    r = run_dockfix("scan", "--benchmark", "1.6.0", "--root", str(tree), "--docker-host", URL, "--format", "json", "--only", "2,3")
    assert r.returncode in (0, 1), r.stderr
    doc = json.loads(r.stdout)
    by = {(f["cis"], f["subject"]): f for f in doc["findings"]}
    # 2.1 passes for a rootless daemon
    assert by[("2.1", "dockerd")]["status"] == "pass" and "rootless daemon of alice" in by[("2.1", "dockerd")]["evidence"]
    # the effective configuration is the user's daemon.json, not /etc/docker/daemon.json nor /etc/default/docker
    ll = by[("2.3", f"{HOME}/.config/docker/daemon.json")]
    assert ll["status"] == "fail" and ll["location"]["path"] == f"{HOME}/.config/docker/daemon.json", ll
    assert by[("2.2", f"{HOME}/.config/docker/daemon.json")]["status"] == "fail"  # root's icc: false is not alice's
    # items that do not apply say why
    assert by[("2.9", "host")]["status"] == "skip" and "userns-remap is not supported in rootless" in by[("2.9", "host")]["evidence"]
    assert by[("3.19", "/etc/default/docker")]["status"] == "skip"
    assert "does not read /etc/default/docker" in by[("3.19", "/etc/default/docker")]["evidence"]
    assert "no docker.socket unit" in by[("3.3", "docker.socket")]["evidence"]
    # owners expected to be the user: the user unit, ~/.config/docker and the socket pass as alice's
    unit = f"{HOME}/.config/systemd/user/docker.service"
    assert by[("3.1", unit)]["status"] == "pass" and "alice:alice" in by[("3.1", unit)]["evidence"]
    assert by[("3.5", f"{HOME}/.config/docker")]["status"] == "pass"
    assert by[("3.15", f"/run/user/{UID}/docker.sock")]["status"] == "pass"
    # a root-owned file in the user's folder is wrong: the user's daemon could not manage it
    dj = by[("3.17", f"{HOME}/.config/docker/daemon.json")]
    assert dj["status"] == "fail" and "must be alice:alice" in dj["evidence"], dj
    # nothing of root's daemon is judged in this subject (a skip keeps the item's usual subject, and
    # names the user's folder in its reason)
    assert f"{HOME}/.config/docker/certs.d does not exist" in by[("3.7", "/etc/docker/certs.d")]["evidence"]
    assert not [s for (_, s), f in by.items() if f["status"] != "skip" and (
        s.startswith("/etc/docker") or s == "/lib/systemd/system/docker.service")]


def test_fixes_act_on_the_users_files_with_the_users_ownership_and_roll_back(tree):
    rootless_host(tree)
    before = manifest_without_journal(tree)
    ctx = ctx_for(tree)
    findings = scan(ctx, only=["daemon-json-owner", "log-level"]).findings
    assert {f.status for f in findings} == {Status.FAIL}
    plan = plan_fixes(ctx, findings, include_disruptive=True)
    paths = {c.path for c in plan.changes}
    assert paths == {f"{HOME}/.config/docker/daemon.json"}, paths
    res = apply_plan(ctx.host, plan)
    assert res.error is None, res.error
    st = os.lstat(tree / "home/alice/.config/docker/daemon.json")
    assert (st.st_uid, st.st_gid) == (UID, GID)  # the user's, never root's
    assert json.loads((tree / "home/alice/.config/docker/daemon.json").read_text()) == {"log-level": "info"}
    assert {f.status for f in rescan(ctx, ["daemon-json-owner", "log-level"])} == {Status.PASS}
    assert json.loads((tree / "etc/docker/daemon.json").read_text()) == {"icc": False}  # root's daemon untouched
    assert rollback(ctx.host, "last").restored
    assert manifest_without_journal(tree) == before


def test_a_missing_user_daemon_json_is_created_as_the_users(tree):
    rootless_host(tree, daemon_json=None)
    before = manifest_without_journal(tree)
    ctx = ctx_for(tree)
    findings = scan(ctx, only=["live-restore"]).findings
    plan = plan_fixes(ctx, findings)
    assert [(c.kind, c.path) for c in plan.changes] == [
        ("mkdir", f"{HOME}/.config/docker"), ("write", f"{HOME}/.config/docker/daemon.json")]
    assert apply_plan(ctx.host, plan).error is None
    for rel in ("home/alice/.config/docker", "home/alice/.config/docker/daemon.json"):
        st = os.lstat(tree / rel)
        assert (st.st_uid, st.st_gid) == (UID, GID), rel
    assert rollback(ctx.host, "last").restored
    assert manifest_without_journal(tree) == before


def test_owner_fix_gives_a_root_owned_user_file_back_to_the_user(tree):
    rootless_host(tree)
    os.chown(tree / "home/alice/.config/systemd/user/docker.service", 0, 0)
    before = manifest_without_journal(tree)
    ctx = ctx_for(tree)
    findings = scan(ctx, only=["docker-service-owner"]).findings
    [f] = findings
    assert f.status == Status.FAIL and f.subject == f"{HOME}/.config/systemd/user/docker.service"
    plan = plan_fixes(ctx, findings)
    assert [(c.kind, c.uid, c.gid) for c in plan.changes] == [("chown", UID, GID)]
    assert apply_plan(ctx.host, plan).error is None
    st = os.lstat(tree / "home/alice/.config/systemd/user/docker.service")
    assert (st.st_uid, st.st_gid) == (UID, GID)
    assert rollback(ctx.host, "last").restored
    assert manifest_without_journal(tree) == before


def test_a_scan_without_a_chosen_engine_scans_each_rootless_daemon_too(tree):
    rootless_host(tree)
    r = run_dockfix("scan", "--benchmark", "1.6.0", "--root", str(tree), "--no-engine", "--format", "json", "--only", "2.1,2.3,2.9,3.15,3.17")
    doc = json.loads(r.stdout)
    [d] = doc["host"]["rootless"]
    assert (d["user"], d["uid"], d["url"]) == ("alice", UID, URL) and d["engine"] is None
    by = {(f["cis"], f["subject"]): f["status"] for f in doc["findings"]}
    # root's daemon ...
    # root's unit runs dockerd without $DOCKER_OPTS: /etc/default/docker's --log-level=debug does not count
    assert by[("2.1", "dockerd")] == "manual" and by[("2.3", "/etc/docker/daemon.json")] == "pass"
    assert by[("3.17", "/etc/docker/daemon.json")] == "pass"
    # ... and alice's, as its own subject
    assert by[("2.1", "rootless:alice:dockerd")] == "pass"
    assert by[("2.3", f"{HOME}/.config/docker/daemon.json")] == "fail"
    assert by[("2.9", "rootless:alice:host")] == "skip"
    assert by[("3.15", f"/run/user/{UID}/docker.sock")] == "pass"
    assert by[("3.17", f"{HOME}/.config/docker/daemon.json")] == "fail"  # root-owned in alice's folder
    text = run_dockfix("scan", "--benchmark", "1.6.0", "--root", str(tree), "--no-engine", "--only", "2.1").stdout
    assert f"and the rootless daemon of alice (uid {UID}, {URL})" in text
    # choosing an engine scans that one only
    r = run_dockfix("scan", "--benchmark", "1.6.0", "--root", str(tree), "--docker-host", URL, "--format", "json", "--only", "2.1")
    assert "rootless" not in json.loads(r.stdout)["host"]


def test_daemon_reload_of_a_rootless_fix_is_the_users_unit(tree):
    """--restart-daemon on a rootless daemon's fix must never reload or restart root's docker."""
    from dockfix.workflow import run_post_actions

    rootless_host(tree)
    ctx = ctx_for(tree)
    plan = plan_fixes(ctx, scan(ctx, only=["log-level"]).findings)
    notes = run_post_actions(ctx.host, plan.items, restart_daemon=True)
    assert notes == ["not run (not the live host): systemctl --user --machine=alice@ restart docker"], notes


def test_the_data_root_of_a_rootless_daemon_is_the_users(tree):
    from dockfix.checks.host_config import data_root

    rootless_host(tree)
    path, where = data_root(ctx_for(tree))
    assert path == f"{HOME}/.local/share/docker" and "rootless daemon of alice" in where


def test_rollback_reloads_the_users_unit_too(tree):
    """A rollback is run without --docker-host: the daemon.json its plan changed names the user."""
    rootless_host(tree)
    ctx = ctx_for(tree)
    plan = plan_fixes(ctx, scan(ctx, only=["log-level"]).findings)
    assert apply_plan(ctx.host, plan).error is None
    rb = rollback(Host(str(tree), engine=False), "last", restart_daemon=True)
    assert rb.restored
    assert rb.actions == ["not run (not the live host): systemctl --user --machine=alice@ restart docker"], rb.actions
