"""Crashes: an apply or a rollback killed (SIGKILL, through the fault switch
DOCKFIX_FAULT_KILL_AFTER) after any step k is put right by the next `dockfix rollback --last`:
the tree is then byte for byte, owner and mode, what it was before the apply. A journal cut short
mid-write is detected and never trusted blindly; SIGINT and SIGTERM during an apply roll it back.

The plan (made in-process, applied by a `dockfix --apply --plan` process that the fault switch
kills) has 8 changes of every kind on 4 targets: two directories and a file created (audit
rules for /etc/docker), daemon.json's content rewritten, owner and mode of daemon.json and of
/etc/docker changed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import REPO, manifest, put, run_dockfix

pytestmark = pytest.mark.slow

CHECKS = ["1.1.6", "2.2", "3.5", "3.6", "3.17", "3.18"]
STEPS = 8  # changes in the plan; test_plan_has_every_kind_of_change keeps this honest
TARGETS = 5  # /etc/audit, /etc/audit/rules.d, its docker.rules, daemon.json, /etc/docker


def bad_tree(root: Path) -> Path:
    put(root, "/etc/docker/", mode=0o777, owner=(1000, 1000))
    put(root, "/etc/docker/daemon.json", '{\n  "icc": true,\n  "log-level": "info"\n}\n', mode=0o666, owner=(1000, 1000))
    put(root, "/etc/group", "root:x:0:\ndocker:x:999:\n")
    put(root, "/var/lib/", mode=0o755)
    return root


def make_plan(root: Path, out: Path):
    from dockfix.host import Host
    from dockfix.plan import host_key
    from dockfix.scan import Context
    from dockfix.workflow import FixSession

    ctx = Context(Host(str(root), engine=False))
    plan, _ = FixSession(ctx).plan_selection(only=CHECKS, include_disruptive=True)
    out.write_text(plan.dumps(host_key(ctx.host, create=True)))  # a plan file is signed with the host's key
    return plan


def tree_state(root: Path) -> dict:
    """The manifest without dockfix's own journal."""
    return {k: v for k, v in manifest(root).items() if not k.startswith("var/lib/dockfix")}


def env_with(**kw: str) -> dict:
    e = dict(os.environ, PYTHONPATH=str(REPO), NO_COLOR="1")
    e.pop("DOCKER_HOST", None)
    e.update(kw)
    return e


def apply_cmd(root: Path, plan: Path) -> list[str]:
    return [sys.executable, "-m", "dockfix", "--apply", "--yes", "--plan", str(plan), "--root", str(root), "--no-engine"]


def killed(cmd: list[str], fault: str) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env_with(DOCKFIX_FAULT_KILL_AFTER=fault))
    assert r.returncode == -signal.SIGKILL, f"the fault switch did not fire ({r.returncode}): {r.stderr}"


def crashed_apply(tmp_path: Path, fault: str) -> tuple[Path, dict]:
    root = bad_tree(tmp_path / "root")
    before = tree_state(root)
    make_plan(root, tmp_path / "plan.json")
    killed(apply_cmd(root, tmp_path / "plan.json"), fault)
    return root, before


def rollback_last(root: Path, *extra: str) -> subprocess.CompletedProcess:
    r = run_dockfix("rollback", "--last", "--root", str(root), "--no-engine", *extra)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def tx_info(root: Path):
    from dockfix.host import Host
    from dockfix.workflow import list_transactions

    (tx,) = list_transactions(Host(str(root), engine=False))
    return tx


def clone(src: Path, dst: Path) -> None:
    """Copy a tree with owners, modes and links (quicker than `cp -a` in a loop)."""
    import shutil

    shutil.copytree(src, dst, symlinks=True)
    for dirpath, dirnames, filenames in os.walk(src):
        for name in [""] + dirnames + filenames:
            s = os.path.join(dirpath, name) if name else dirpath
            d = os.path.join(dst, os.path.relpath(s, src))
            st = os.lstat(s)
            os.lchown(d, st.st_uid, st.st_gid)
            if not os.path.islink(s):
                os.chmod(d, st.st_mode & 0o7777)


def log_path(root: Path) -> Path:
    (tx,) = [p for p in (root / "var/lib/dockfix/journal").iterdir() if p.is_dir()]
    return tx / "log"


def test_plan_has_every_kind_of_change(tmp_path: Path) -> None:
    root = bad_tree(tmp_path / "root")
    plan = make_plan(root, tmp_path / "plan.json")
    kinds = [c.kind for c in plan.changes]
    assert len(kinds) == STEPS, kinds
    assert {"mkdir", "write", "chown", "chmod"} <= set(kinds), kinds
    assert len({c.target for c in plan.changes}) == TARGETS


@pytest.mark.parametrize("k", range(1, STEPS + 1))
@pytest.mark.parametrize("phase", ["apply", "apply-inflight"])
def test_crash_after_step_k_of_an_apply(phase: str, k: int, tmp_path: Path) -> None:
    """apply: killed after step k is done and recorded; apply-inflight: killed after the change
    of step k is made but before it is recorded (the worst moment for a write-ahead log)."""
    root, before = crashed_apply(tmp_path, f"{phase}:{k}")
    assert tree_state(root) != before, "the crashed apply changed nothing: the fault fired too early"
    assert tx_info(root).state == "incomplete"
    r = rollback_last(root)
    assert r.returncode == 0, r.stderr
    assert tree_state(root) == before
    assert tx_info(root).state == "rolled back"


def test_rollback_twice_is_harmless(tmp_path: Path) -> None:
    from dockfix.host import Host
    from dockfix.workflow import rollback

    root, before = crashed_apply(tmp_path, "apply:4")
    assert rollback_last(root).returncode == 0
    res = rollback(Host(str(root), engine=False), "last")
    assert res.already
    assert tree_state(root) == before


@pytest.mark.parametrize("k", range(1, TARGETS + 1))
def test_crash_after_step_k_of_a_rollback(k: int, tmp_path: Path) -> None:
    """A rollback restores the targets one by one; killed after any of them, the next rollback
    finishes the job exactly."""
    from dockfix.host import Host
    from dockfix.workflow import apply_plan, rollback

    root = bad_tree(tmp_path / "root")
    before = tree_state(root)
    plan = make_plan(root, tmp_path / "plan.json")
    res = apply_plan(Host(str(root), engine=False), plan)
    assert res.error is None, res
    applied = tree_state(root)
    killed([sys.executable, "-m", "dockfix", "rollback", "--last", "--root", str(root), "--no-engine"], f"rollback:{k}")
    assert tree_state(root) not in (before, applied) or k == TARGETS
    assert tx_info(root).state == "rolling back"
    res = rollback(Host(str(root), engine=False), "last")
    assert not res.refused_paths, res
    assert tree_state(root) == before
    assert tx_info(root).state == "rolled back"


def test_crash_during_apply_then_crash_during_its_rollback(tmp_path: Path) -> None:
    root, before = crashed_apply(tmp_path, "apply-inflight:6")
    killed([sys.executable, "-m", "dockfix", "rollback", "--last", "--root", str(root), "--no-engine"], "rollback:2")
    assert rollback_last(root).returncode == 0
    assert tree_state(root) == before


# ---------------------------------------------------------------------- a journal cut short
def test_journal_cut_short_at_every_byte_of_its_last_record(tmp_path: Path) -> None:
    """Crash after step 5, then cut the log's last record (the 'after' record of step 5) at every
    byte offset: each time the damage is reported, the cut record is not trusted, and rollback
    still restores the tree exactly (step 5's target is accepted in its before or after state)."""
    import shutil

    from dockfix.host import Host
    from dockfix.journal import Journal, find_tx, tx_state
    from dockfix.workflow import rollback

    base, before = crashed_apply(tmp_path / "b", "apply:5")
    crashed = base
    log = log_path(crashed).read_bytes()
    records = log.split(b"\n")[:-1]
    last = records[-1]
    assert b'"after"' in last
    start = len(log) - len(last) - 1
    offsets = list(range(start + 1, len(log)))  # keep 1 .. all-but-the-newline bytes of the record
    assert len(offsets) > 50
    for cut in offsets:
        work = tmp_path / f"cut-{cut}"
        clone(crashed, work)
        lp = log_path(work)
        with open(lp, "r+b") as f:
            f.truncate(cut)
        host = Host(str(work), engine=False)
        st = tx_state(find_tx(Journal(host), "last"))
        assert st.damaged and "cut short" in st.damaged, (cut, st.damaged)
        assert len(st.steps) == 5 and st.steps[-1].after is None, "the cut record was trusted"
        res = rollback(host, "last")
        assert not res.refused_paths, (cut, res.refused_paths)
        assert tree_state(work) == before, f"not restored exactly with the log cut at byte {cut}"
        shutil.rmtree(work)


def test_journal_cut_short_mid_file_is_reported_by_the_cli(tmp_path: Path) -> None:
    root, before = crashed_apply(tmp_path, "apply:3")
    lp = log_path(root)
    data = lp.read_bytes()
    lp.write_bytes(data[:-7])
    r = run_dockfix("journal", "--root", str(root), "--no-engine", "--format", "json")
    (tx,) = json.loads(r.stdout)
    assert tx["damaged"] and "cut short" in tx["damaged"]
    r = rollback_last(root)
    assert r.returncode == 0, r.stderr
    assert "cut short" in r.stderr
    assert tree_state(root) == before


def test_a_damaged_record_is_never_trusted_blindly(tmp_path: Path) -> None:
    """A record in the middle whose checksum no longer matches (the log was changed, not cut by a
    crash): rollback refuses, naming the log, until --force."""
    root, before = crashed_apply(tmp_path, "apply:6")
    lp = log_path(root)
    lines = lp.read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b'"before"', b'"BEFORE"')
    lp.write_bytes(b"\n".join(lines))
    r = rollback_last(root)
    assert r.returncode == 3, r.stderr
    assert "is damaged" in r.stderr and "log" in r.stderr
    assert tree_state(root) != before  # nothing was done on the strength of a damaged log
    # --force rolls back what the trusted records cover, and says the log is damaged
    r = rollback_last(root, "--force")
    assert r.returncode == 0, r.stderr
    assert "is damaged" in r.stderr


def test_a_damaged_before_image_is_refused(tmp_path: Path) -> None:
    root, before = crashed_apply(tmp_path, f"apply:{STEPS}")
    tx = log_path(root).parent
    blobs = sorted(tx.glob("blob-*"))
    assert blobs
    for b in blobs:
        b.write_bytes(b.read_bytes() + b"tampered")
    changed = tree_state(root)
    r = rollback_last(root)
    assert r.returncode == 3, r.stderr
    assert "damaged" in r.stderr
    assert tree_state(root) == changed


# ---------------------------------------------------------------------- SIGINT / SIGTERM
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_apply_rolls_back(sig: signal.Signals, tmp_path: Path) -> None:
    root = bad_tree(tmp_path / "root")
    before = tree_state(root)
    make_plan(root, tmp_path / "plan.json")
    p = subprocess.Popen(apply_cmd(root, tmp_path / "plan.json"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env_with(DOCKFIX_FAULT_SLOW="0.3"))
    seen = ""
    deadline = time.monotonic() + 60
    assert p.stderr is not None
    while time.monotonic() < deadline:
        line = p.stderr.readline()
        seen += line
        if line.startswith("[4/"):
            break
    else:
        p.kill()
        pytest.fail(f"the apply did not reach step 4: {seen}")
    assert tree_state(root) != before  # half-way: some steps are done
    p.send_signal(sig)
    out, err = p.communicate(timeout=60)
    err = seen + err
    assert "Traceback" not in err, err
    assert p.returncode == 130, err
    assert "rolled back" in err
    assert tree_state(root) == before
    tx = tx_info(root)
    assert tx.state == "failed (rolled back)" and "interrupted" in (tx.error or "")


@pytest.mark.parametrize("path", ["/etc/docker/daemon.json", "/etc/audit/rules.d/docker.rules"])
def test_crash_in_the_middle_of_writing_a_file(path: str, tmp_path: Path) -> None:
    """Killed after the new content is in its temporary file but before the rename: the old file
    is intact (the rename never happened), and the rollback also removes the temporary file, so
    the tree is exactly as before. (The temporary file used to be left behind in /etc/docker.)"""
    root = bad_tree(tmp_path / "root")
    before = tree_state(root)
    make_plan(root, tmp_path / "plan.json")
    r = subprocess.run(apply_cmd(root, tmp_path / "plan.json"), capture_output=True, text=True, timeout=120,
                       env=env_with(DOCKFIX_FAULT_KILL_MIDWRITE=path))
    assert r.returncode == -signal.SIGKILL, r.stderr
    folder = root / os.path.dirname(path).lstrip("/")
    assert [p.name for p in folder.iterdir() if ".dockfix-" in p.name], "no temporary file: the kill came too late"
    assert rollback_last(root).returncode == 0
    assert tree_state(root) == before
