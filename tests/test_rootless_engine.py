"""A real rootless Docker 28 (tests/rootless_engine.py): found on the machine, scanned as its own
subject (the user's daemon.json, socket, unit and ownership), and a fix of the user's daemon.json
applied and rolled back. The apply runs in a mount namespace of its own with a fresh /var/lib, so
the machine's /var/lib (dockfix's journal) is never touched."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from helpers import BUSYBOX_IMAGE, REPO, run_dockfix

pytestmark = pytest.mark.engine


def test_rootless_daemon_is_found_on_this_machine(rootless_engine):
    from dockfix.host import Host
    from dockfix.sources.rootless import find_rootless

    mine = [d for d in find_rootless(Host("/", engine=False)) if d.uid == rootless_engine.uid]
    assert mine, find_rootless(Host("/", engine=False))
    [d] = mine
    assert d.user == "dfxrootless" and d.daemon_json == rootless_engine.daemon_json
    how = " ".join(d.found_by)
    assert f"socket {rootless_engine.sock}" in how and f"user unit {rootless_engine.unit}" in how
    assert "dockerd process" in how and "dockerd-rootless.sh process" in how, how


def test_rootless_daemon_scanned_as_its_own_subject(rootless_engine, tmp_path):
    eng = rootless_engine
    eng.cli("create", "--name", "rl-priv", "--privileged", "--network", "none", BUSYBOX_IMAGE, "true")
    try:
        r = run_dockfix("scan", "--benchmark", "1.6.0", "--root", "/", "--docker-host", eng.url, "--format", "json", "--only", "2,3,5.5")
    finally:
        eng.cli("rm", "-f", "rl-priv", check=False)
    assert r.returncode in (0, 1), r.stderr
    doc = json.loads(r.stdout)
    assert doc["host"]["engine"]["server_version"].startswith("28.")
    by = {(f["cis"], f["subject"]): f for f in doc["findings"]}
    assert by[("2.1", "dockerd")]["status"] == "pass"
    ll = by[("2.3", eng.daemon_json)]
    assert ll["status"] == "fail" and ll["location"]["path"] == eng.daemon_json  # "log-level": "debug", the user's
    # the rootless dockerd's command line, found by its owner (it has no -H)
    assert by[("2.4", eng.daemon_json)]["evidence"].startswith("iptables is false (dockerd command line (pid ")
    assert by[("2.9", "host")]["status"] == "skip"
    assert by[("3.1", eng.unit)]["status"] == "pass"
    assert by[("3.15", eng.sock)]["status"] == "pass", by[("3.15", eng.sock)]
    assert "dfxrootless:dfxrootless" in by[("3.15", eng.sock)]["evidence"]
    if os.lstat(eng.sock).st_gid != eng.gid:  # dockerd gave it the namespace's "docker" group
        assert "a subordinate gid of dfxrootless" in by[("3.15", eng.sock)]["evidence"]
    assert by[("3.17", eng.daemon_json)]["status"] == "pass"
    ctr = by[("3.23", f"{eng.runtime_dir}/docker/containerd/containerd.sock")]
    assert ctr["status"] == "pass", ctr
    assert by[("3.19", "/etc/default/docker")]["status"] == "skip"
    priv = by[("5.5", "container:rl-priv")]
    assert priv["status"] == "fail" and "rootless daemon of dfxrootless" in priv["evidence"]


def test_fix_of_the_users_daemon_json_and_rollback(rootless_engine):
    eng = rootless_engine
    path = Path(eng.daemon_json)
    before = (path.read_bytes(), os.lstat(path).st_uid, os.lstat(path).st_gid, os.lstat(path).st_mode)
    out = Path(tempfile.mkdtemp(prefix="dfx-rlfix-"))
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    env.pop("DOCKER_HOST", None)
    dockfix = f"{sys.executable} -m dockfix"
    # a private mount namespace with an empty /var/lib: the journal lives there for this test only
    script = (f"mount -t tmpfs -o mode=0755 dfx-varlib /var/lib && "
              f"{dockfix} --apply --yes --root / --docker-host {eng.url} --only log-level --format json > {out}/apply.json; "
              f"echo $? > {out}/apply.rc; stat -c '%u %g' {eng.daemon_json} > {out}/owner; cp {eng.daemon_json} {out}/after; "
              f"{dockfix} rollback --last > {out}/rollback.txt 2>&1; echo $? > {out}/rollback.rc")
    try:
        r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script], env=env,
                           capture_output=True, text=True, timeout=300)
        results = {name: (out / name).read_text() if (out / name).exists() else "" for name in
                   ("apply.json", "apply.rc", "owner", "after", "rollback.txt", "rollback.rc")}
    finally:
        shutil.rmtree(out, ignore_errors=True)
    assert r.returncode == 0, r.stderr
    assert results["apply.rc"].strip() == "0", results["apply.json"]
    assert json.loads(results["after"]) == {"log-level": "info"}
    assert results["owner"].split() == [str(eng.uid), str(eng.gid)]  # the user's, never root's
    assert results["rollback.rc"].strip() == "0", results["rollback.txt"]
    st = os.lstat(path)
    assert (path.read_bytes(), st.st_uid, st.st_gid, st.st_mode) == before
    assert not os.path.exists("/var/lib/dockfix")  # the machine's /var/lib was never written


def test_a_scan_of_roots_daemon_names_the_rootless_one(rootless_engine):
    r = run_dockfix("scan", "--benchmark", "1.6.0", "--root", "/", "--no-engine", "--format", "json", "--only", "2.1")
    doc = json.loads(r.stdout)
    [f] = [f for f in doc["findings"] if f["subject"] == "dockerd"]
    assert f["status"] == "manual"
    assert f"dfxrootless (uid {rootless_engine.uid}, {rootless_engine.url}; found by socket" in f["evidence"], f
    # and scanned as its own subject in the same run
    assert [x["status"] for x in doc["findings"] if x["subject"] == "rootless:dfxrootless:dockerd"] == ["pass"]

