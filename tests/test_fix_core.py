"""The fix core: plans, the write-ahead journal, apply/rollback, and headless `dockfix --apply`.

Everything runs on host trees under a temp dir (real files, real chown/chmod as root)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO, manifest, put, run_dockfix

JOURNAL = "var/lib/dockfix"


def tree_manifest(root) -> dict:
    """The manifest of a host tree, without dockfix's own journal (which is kept on purpose)."""
    return {k: v for k, v in manifest(root).items() if not (k == JOURNAL or k.startswith(JOURNAL + "/"))}


def faulty_tree(root: Path) -> Path:
    """Section 3 faults of the scanner issue, and a few more."""
    put(root, "var/lib/")
    put(root, "etc/group", "root:x:0:\ndocker:x:998:\n")
    put(root, "etc/docker/", mode=0o733, owner=(1000, 1000))
    put(root, "etc/docker/daemon.json", '{\n    "icc": true,\n    "insecure-registries": ["reg.example:5000"]\n}\n',
        mode=0o666, owner=(1000, 1000))
    put(root, "lib/systemd/system/docker.service", "[Service]\nExecStart=/usr/bin/dockerd\n", mode=0o666)
    put(root, "lib/systemd/system/docker.socket", "[Socket]\nListenStream=/run/docker.sock\n", mode=0o664, owner=(0, 1000))
    put(root, "etc/default/docker", 'DOCKER_OPTS=""\n', mode=0o646, owner=(1000, 0))
    put(root, "etc/docker/certs.d/reg.example:5000/ca.crt", "CERT\n", mode=0o644, owner=(1000, 1000))
    return root


SECTION3_FAILS = {"etc-docker-owner", "etc-docker-mode", "daemon-json-owner", "daemon-json-mode", "docker-service-mode",
                  "docker-socket-unit-owner", "docker-socket-unit-mode", "etc-default-docker-owner",
                  "etc-default-docker-mode", "registry-certs-owner", "registry-certs-mode"}


def failing(root, *args) -> set[str]:
    r = run_dockfix("scan", "--root", str(root), "--no-engine", "--format", "json", *args)
    assert r.returncode in (0, 1), r.stderr
    return {f["id"] for f in json.loads(r.stdout)["findings"] if f["status"] == "fail"}


def apply(root, *args, **kw):
    return run_dockfix("--apply", "--yes", "--root", str(root), "--no-engine", *args, **kw)


def rollback(root, *args, **kw):
    return run_dockfix("rollback", "--root", str(root), "--no-engine", *args, **kw)


# ---------------------------------------------------------------------- headless apply and rollback
def test_apply_fixes_section3_faults_and_rollback_undoes_them(tmp_path):
    root = faulty_tree(tmp_path)
    before = tree_manifest(root)
    assert SECTION3_FAILS <= failing(root)
    r = apply(root, "--format", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    fixed = {x["check_id"] for x in doc["results"] if x["fixed"]}
    assert SECTION3_FAILS <= fixed
    assert all(x["fixed"] for x in doc["results"])
    assert not (SECTION3_FAILS & failing(root))
    st = os.lstat(root / "etc/docker")
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (0, 0, 0o711)
    # disruptive fixes (icc, insecure registries) wait for --include-disruptive
    assert {"icc", "insecure-registries"} <= failing(root)
    assert '"icc": true' in (root / "etc/docker/daemon.json").read_text()
    assert os.lstat(root / "lib/systemd/system/docker.service").st_mode & 0o777 == 0o644

    r = rollback(root, "--last")
    assert r.returncode == 0, r.stderr
    assert tree_manifest(root) == before


def test_text_output_shows_diff_lines_and_results(tmp_path):
    root = faulty_tree(tmp_path)
    r = apply(root, "--only", "3.5,3.6,3.2")
    assert r.returncode == 0, r.stderr
    assert "owner  1000:1000 -> root:root" in r.stdout
    assert "mode  0733 -> 0711" in r.stdout
    assert "mode  0666 -> 0644" in r.stdout
    assert "fixed     etc-docker-owner" in r.stdout
    assert "Applied as transaction" in r.stdout
    # only what was asked for
    assert os.lstat(root / "etc/docker/daemon.json").st_uid == 1000


def test_dry_run_changes_nothing(tmp_path):
    root = faulty_tree(tmp_path)
    before = manifest(root)  # the full tree: no journal may appear either
    r = run_dockfix("--apply", "--dry-run", "--root", str(root), "--no-engine")
    assert r.returncode == 0, r.stderr
    assert "owner  1000:1000 -> root:root" in r.stdout and "Dry run: nothing was changed." in r.stdout
    assert manifest(root) == before


def test_without_terminal_apply_needs_yes(tmp_path):
    root = faulty_tree(tmp_path)
    before = manifest(root)
    r = run_dockfix("--apply", "--root", str(root), "--no-engine", input="y\n")
    assert r.returncode == 2
    assert "pass --yes" in r.stderr
    assert manifest(root) == before


def test_hand_edit_after_apply_refuses_rollback_naming_file_and_force_restores(tmp_path):
    root = faulty_tree(tmp_path)
    before = tree_manifest(root)
    assert apply(root).returncode == 0
    os.chmod(root / "etc/default/docker", 0o600)  # an admin's own change after the fix
    r = rollback(root, "--last")
    assert r.returncode == 3
    assert "/etc/default/docker" in r.stderr and "--force" in r.stderr
    assert "mode 0644 -> 0600" in r.stderr  # what changed, in words (never content)
    assert oct(os.lstat(root / "etc/default/docker").st_mode & 0o777) == oct(0o600)  # nothing restored
    assert os.lstat(root / "etc/docker").st_uid == 0
    r = rollback(root, "--last", "--force")
    assert r.returncode == 0, r.stderr
    assert tree_manifest(root) == before


@pytest.mark.parametrize("fault", ["apply:1", "apply:4", "apply-inflight:3", "apply-inflight:7"])
def test_sigkill_between_changes_then_rollback_last_restores_exactly(tmp_path, fault):
    root = faulty_tree(tmp_path)
    before = tree_manifest(root)
    r = apply(root, env={"DOCKFIX_FAULT_KILL_AFTER": fault})
    assert r.returncode == -signal.SIGKILL
    assert tree_manifest(root) != before  # it really stopped half-way
    j = run_dockfix("journal", "--root", str(root), "--no-engine", "--format", "json")
    assert json.loads(j.stdout)[-1]["state"] == "incomplete"
    r = rollback(root, "--last")
    assert r.returncode == 0, r.stderr
    assert tree_manifest(root) == before


def test_rollback_killed_midway_can_be_run_again(tmp_path):
    root = faulty_tree(tmp_path)
    before = tree_manifest(root)
    assert apply(root).returncode == 0
    r = rollback(root, "--last", env={"DOCKFIX_FAULT_KILL_AFTER": "rollback:2"})
    assert r.returncode == -signal.SIGKILL
    assert tree_manifest(root) != before
    r = rollback(root, "--last")
    assert r.returncode == 0, r.stderr
    assert tree_manifest(root) == before
    r = rollback(root, "--last")
    assert r.returncode == 0 and "already rolled back" in r.stdout


def test_second_apply_while_one_runs_is_refused(tmp_path):
    root = faulty_tree(tmp_path)
    # hold the journal lock the way a running apply does, from another process
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys,time; from dockfix.host import Host; from dockfix.journal import Journal\n"
         "with Journal(Host(sys.argv[1], engine=False)).lock():\n print('locked', flush=True); time.sleep(60)",
         str(root)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = tree_manifest(root)
        r = apply(root)
        assert r.returncode == 3
        assert "another dockfix apply or rollback is running" in r.stderr
        assert tree_manifest(root) == before
    finally:
        holder.kill()
        holder.wait()
    assert apply(root).returncode == 0


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP"])
def test_sigterm_during_apply_rolls_back(tmp_path, sig):
    """A real second process: apply is slowed by a step hook, gets SIGTERM (or SIGHUP: its terminal
    or SSH session closed), and rolls back."""
    root = faulty_tree(tmp_path)
    before = tree_manifest(root)
    code = (
        "import sys, time, os\n"
        "from dockfix.cli import main\n"
        "import dockfix.journal as j\n"
        "orig = j._fault\n"
        "def slow(phase, n):\n"
        "    if phase == 'apply' and n == 2:\n"
        "        print('step2', flush=True); time.sleep(5)\n"
        "j._fault = slow\n"
        "sys.exit(main(['--apply', '--yes', '--root', sys.argv[1], '--no-engine']))\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code, str(root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    line = ""
    while "step2" not in line:
        line = p.stdout.readline()
        assert line, p.stderr.read()
    p.send_signal(getattr(signal, sig))
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "rolled back" in err and sig in err
    assert tree_manifest(root) == before


# ---------------------------------------------------------------------- plans: review what gets applied
def test_plan_file_applies_exactly_and_refuses_when_host_changed(tmp_path):
    root = faulty_tree(tmp_path)
    plan = tmp_path.parent / f"{tmp_path.name}-plan.json"
    r = run_dockfix("plan", "--root", str(root), "--no-engine", "--only", "3.5,3.6", "-o", str(plan))
    assert r.returncode == 0, r.stderr
    doc = json.loads(plan.read_text())
    assert {i["check_id"] for i in doc["items"]} == {"etc-docker-owner", "etc-docker-mode"}
    # the host moves under the plan: apply refuses, naming the file, and changes nothing
    os.chmod(root / "etc/docker", 0o777)
    before = manifest(root)
    r = apply(root, "--plan", str(plan))
    assert r.returncode == 3
    assert "/etc/docker" in r.stderr and "changed since the plan" in r.stderr and "mode 0733 -> 0777" in r.stderr
    assert manifest(root) == before
    # back as it was when planned: exactly the plan is applied (nothing else)
    os.chmod(root / "etc/docker", 0o733)
    r = apply(root, "--plan", str(plan))
    assert r.returncode == 0, r.stderr
    assert os.lstat(root / "etc/docker").st_uid == 0
    assert os.lstat(root / "lib/systemd/system/docker.service").st_mode & 0o777 == 0o666  # not in the plan


def test_bad_plan_file_is_one_line_error(tmp_path):
    root = faulty_tree(tmp_path)
    bad = tmp_path.parent / f"{tmp_path.name}-bad.json"
    bad.write_text("{not json")
    r = apply(root, "--plan", str(bad))
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and str(bad) in r.stderr


# ---------------------------------------------------------------------- the journal itself
def test_journal_is_private_whatever_the_umask(tmp_path):
    root = faulty_tree(tmp_path)
    r = subprocess.run(["sh", "-c", f"umask 000; exec {sys.executable} -m dockfix --apply --yes --root {root} --no-engine"],
                       env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    jdir = root / "var/lib/dockfix/journal"
    assert os.stat(root / "var/lib/dockfix").st_mode & 0o777 == 0o700
    for p in [jdir, *jdir.rglob("*")]:
        want = 0o700 if p.is_dir() else 0o600
        assert os.stat(p).st_mode & 0o777 == want, p


def test_journal_listing_names_changes_and_state(tmp_path):
    root = faulty_tree(tmp_path)
    assert apply(root, "--only", "3.5").returncode == 0
    r = run_dockfix("journal", "--root", str(root), "--no-engine")
    assert "applied" in r.stdout and "owner of /etc/docker 1000:1000 -> root:root" in r.stdout
    txs = json.loads(run_dockfix("journal", "--root", str(root), "--no-engine", "--format", "json").stdout)
    assert txs[0]["state"] == "applied" and txs[0]["user"]
    assert rollback(root, txs[0]["txid"]).returncode == 0
    txs = json.loads(run_dockfix("journal", "--root", str(root), "--no-engine", "--format", "json").stdout)
    assert txs[0]["state"] == "rolled back"


def test_torn_journal_record_is_detected_not_trusted(tmp_path):
    root = faulty_tree(tmp_path)
    before = tree_manifest(root)
    r = apply(root, env={"DOCKFIX_FAULT_KILL_AFTER": "apply:3"})
    assert r.returncode == -signal.SIGKILL
    jdir = root / "var/lib/dockfix/journal"
    log = next(jdir.glob("*/log"))
    with open(log, "ab") as f:  # a record cut short mid-write
        f.write(b'0123abcd {"type": "before", "step": 4, "targ')
    r = run_dockfix("journal", "--root", str(root), "--no-engine")
    assert "cut short" in r.stdout
    r = rollback(root, "--last")
    assert r.returncode == 0, r.stderr
    assert "cut short" in r.stderr
    assert tree_manifest(root) == before


def test_damaged_record_in_the_middle_is_reported(tmp_path):
    from dockfix.journal import read_log

    root = faulty_tree(tmp_path)
    assert apply(root).returncode == 0
    log = next((root / "var/lib/dockfix/journal").glob("*/log"))
    lines = log.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b'"at":1', b'"at":2')
    log.write_bytes(b"\n".join(lines))
    got = read_log(str(log))
    assert len(got.records) == 2 and "record 3 is damaged" in got.damaged
    before = tree_manifest(root)
    r = rollback(root, "--last")
    assert r.returncode == 3 and "record 3 is damaged" in r.stderr
    assert tree_manifest(root) == before


# ---------------------------------------------------------------------- links and root
def test_symlinked_daemon_json_to_shadow_is_never_changed(tmp_path):
    root = faulty_tree(tmp_path)
    shadow = put(root, "etc/shadow", "root:*:19000:0:99999:7:::\n", mode=0o640, owner=(0, 42))
    (root / "etc/docker/daemon.json").unlink()
    os.symlink("/etc/shadow", root / "etc/docker/daemon.json")
    before = os.lstat(shadow)
    r = apply(root, "--only", "3.17,3.18")
    assert r.returncode == 0, r.stderr
    assert "symbolic link" in r.stdout  # shown as a manual item, not applied
    after = os.lstat(shadow)
    assert (after.st_uid, after.st_gid, after.st_mode) == (before.st_uid, before.st_gid, before.st_mode)


def test_link_swapped_in_after_planning_is_refused(tmp_path):
    from dockfix.fsops import FsError, chmod, chown
    from dockfix.host import Host
    from dockfix.scan import Context, scan
    from dockfix.workflow import apply_plan, plan_fixes

    root = faulty_tree(tmp_path)
    shadow = put(root, "etc/shadow", "x\n", mode=0o640, owner=(0, 42))
    ctx = Context(Host(str(root), engine=False))
    plan = plan_fixes(ctx, scan(ctx, only=["3.17", "3.18"]).findings)
    assert len(plan.changes) == 2
    (root / "etc/docker/daemon.json").unlink()
    os.symlink("/etc/shadow", root / "etc/docker/daemon.json")
    with pytest.raises(Exception, match="daemon.json"):
        apply_plan(ctx.host, plan)
    assert os.lstat(shadow).st_mode & 0o777 == 0o640 and os.lstat(shadow).st_gid == 42
    with pytest.raises(FsError, match="symbolic link"):
        chown(ctx.host, "/etc/docker/daemon.json", 0, 0)
    with pytest.raises(FsError, match="symbolic link"):
        chmod(ctx.host, "/etc/docker/daemon.json", 0o600)
    # a link in a parent directory is not followed either (it would leave the root)
    os.symlink("/etc", root / "etc2")
    with pytest.raises(FsError, match="etc2 is a symbolic link"):
        chmod(ctx.host, "/etc2/shadow", 0o600)
    assert os.lstat(shadow).st_mode & 0o777 == 0o640


def test_changing_the_live_host_needs_root():
    """As an unprivileged user, `dockfix --apply` on / refuses before planning anything."""
    if not Path("/usr/bin/setpriv").exists():
        pytest.skip("setpriv is not installed")
    probe = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", "1"],
                           capture_output=True)
    if probe.returncode != 0:
        pytest.skip("python is not usable by an unprivileged user here")
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m",
                        "dockfix", "--apply", "--yes", "--no-engine"], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(REPO)}, cwd="/")
    assert r.returncode == 2
    assert "needs root" in r.stderr


def slow_apply(root: Path, at_step: int = 2, seconds: float = 5) -> subprocess.Popen:
    """A real `dockfix --apply` that pauses after step ``at_step`` (prints 'paused' then)."""
    code = (
        "import sys, time\n"
        "from dockfix.cli import main\n"
        "import dockfix.journal as j\n"
        "def slow(phase, n):\n"
        f"    if phase == 'apply' and n == {at_step}:\n"
        f"        print('paused', flush=True); time.sleep({seconds})\n"
        "j._fault = slow\n"
        "sys.exit(main(['--apply', '--yes', '--root', sys.argv[1], '--no-engine']))\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code, str(root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    line = ""
    while "paused" not in line:
        line = p.stdout.readline()
        assert line, p.stderr.read()
    return p


def test_second_dockfix_apply_while_one_runs_is_refused(tmp_path):
    root = faulty_tree(tmp_path)
    first = slow_apply(root)
    try:
        mid = tree_manifest(root)
        r = apply(root)
        assert r.returncode == 3 and "another dockfix apply or rollback is running" in r.stderr
        r = rollback(root, "--last")
        assert r.returncode == 3 and "another dockfix apply or rollback is running" in r.stderr
        assert tree_manifest(root) == mid
    finally:
        out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err


def test_apply_after_a_crash_asks_for_the_rollback_first(tmp_path):
    root = faulty_tree(tmp_path)
    before = tree_manifest(root)
    assert apply(root, env={"DOCKFIX_FAULT_KILL_AFTER": "apply:2"}).returncode == -signal.SIGKILL
    crashed = tree_manifest(root)
    r = apply(root)
    assert r.returncode == 3 and "was interrupted" in r.stderr and "dockfix rollback" in r.stderr
    assert tree_manifest(root) == crashed
    assert rollback(root, "--last").returncode == 0
    assert tree_manifest(root) == before
    assert apply(root).returncode == 0


@pytest.mark.parametrize("fault", ["apply:2", "apply-inflight:3"])
def test_sigkill_between_edits_of_one_daemon_json(tmp_path, fault):
    """Several fixes write daemon.json one after the other; a kill between two leaves a state that
    `dockfix rollback --last` puts back exactly."""
    put(tmp_path, "var/lib/")
    put(tmp_path, "etc/docker/daemon.json", '{\n  "icc": true,\n  "log-level": "debug",\n  "experimental": true\n}\n',
        mode=0o640)
    before = tree_manifest(tmp_path)
    r = apply(tmp_path, "--include-disruptive", "--only", "2", env={"DOCKFIX_FAULT_KILL_AFTER": fault})
    assert r.returncode == -signal.SIGKILL
    assert tree_manifest(tmp_path) != before
    assert rollback(tmp_path, "--last").returncode == 0
    assert tree_manifest(tmp_path) == before


def test_apply_failing_midway_rolls_back_what_it_did(tmp_path):
    root = faulty_tree(tmp_path)
    before = tree_manifest(root)
    r = apply(root, "--format", "json", env={"DOCKFIX_FAULT_FAIL_AT": "apply:5"})
    assert r.returncode == 4, r.stderr
    assert "failed and was rolled back" in r.stderr and "injected failure" in r.stderr
    assert json.loads(r.stdout)["rolled_back"] is True
    assert tree_manifest(root) == before
    txs = json.loads(run_dockfix("journal", "--root", str(root), "--no-engine", "--format", "json").stdout)
    assert txs[-1]["state"] == "failed (rolled back)" and "injected failure" in txs[-1]["error"]
    assert apply(root).returncode == 0  # nothing left half-done: a new apply goes through


def test_restart_daemon_is_never_run_on_a_tree(tmp_path):
    put(tmp_path, "var/lib/")
    put(tmp_path, "etc/docker/daemon.json", '{"log-level": "debug"}\n')
    r = apply(tmp_path, "--only", "2.3", "--restart-daemon")
    assert r.returncode == 0, r.stderr
    assert "not run (not the live host): systemctl restart docker" in r.stdout


def test_plan_file_holds_no_plain_hash_of_any_file(tmp_path):
    """A plain sha256 of a file whose other lines are known would let a reader of the plan test
    guesses of a secret in it: plan files carry keyed hashes, checked with the host's key."""
    import hashlib

    root = faulty_tree(tmp_path)
    put(root, "etc/docker/daemon.json", '{\n  "icc": true,\n  "proxies": {"http-proxy": "http://u:hunter2@proxy:3128"}\n}\n')
    plan = tmp_path.parent / f"{tmp_path.name}-plan.json"
    r = run_dockfix("plan", "--root", str(root), "--no-engine", "--include-disruptive", "-o", str(plan))
    assert r.returncode == 0, r.stderr
    text = plan.read_text()
    assert "hunter2" not in text and "hunter2" not in r.stdout
    for p in root.rglob("*"):
        if p.is_file() and not p.is_symlink():
            assert hashlib.sha256(p.read_bytes()).hexdigest() not in text, p
    assert '"keyed": true' in text
    assert os.stat(root / "var/lib/dockfix/plan.key").st_mode & 0o777 == 0o600
    before = tree_manifest(root)
    r = apply(root, "--include-disruptive", "--plan", str(plan))
    assert r.returncode == 0, r.stdout + r.stderr
    assert '"icc": false' in (root / "etc/docker/daemon.json").read_text()
    assert rollback(root, "--last").returncode == 0
    assert tree_manifest(root) == before
    # another host (no key) cannot use the plan
    other = faulty_tree(tmp_path.parent / f"{tmp_path.name}-other")
    r = apply(other, "--plan", str(plan))
    assert r.returncode == 2 and "another host" in r.stderr
