"""Journal housekeeping (issue 15): a rollback is recorded (who, when, what), --force keeps a copy
of what it overwrites, `journal prune` never removes an incomplete transaction, line endings are
kept in edited files and a rollback puts back the modification time."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from helpers import run_dockfix
from test_safety_disk import small_tree, tree_state

ONLY = ["--only", "3.17,3.18,2.2", "--include-disruptive"]


def apply(root: Path, *extra: str, env: dict | None = None):
    return run_dockfix("--apply", "--yes", "--root", str(root), "--no-engine", *ONLY, *extra, env=env)


def journal(root: Path) -> list[dict]:
    r = run_dockfix("journal", "--format", "json", "--root", str(root), "--no-engine")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_a_rollback_is_recorded_with_who_when_and_what(tmp_path: Path) -> None:
    root = small_tree(tmp_path / "root")
    assert apply(root).returncode in (0, 1)
    r = run_dockfix("rollback", "--last", "--root", str(root), "--no-engine")
    assert r.returncode == 0, r.stderr
    (tx,) = journal(root)
    rb = tx["rollback"]
    assert tx["state"] == "rolled back" and rb["user"].startswith("root") and rb["finished"] >= rb["started"] > 0
    assert "/etc/docker/daemon.json" in rb["restored"]
    text = run_dockfix("journal", "--root", str(root), "--no-engine").stdout
    assert "rolled back by root" in text and "/etc/docker/daemon.json" in text, text


def test_force_keeps_a_copy_of_what_it_overwrites(tmp_path: Path) -> None:
    root = small_tree(tmp_path / "root")
    before = tree_state(root)
    assert apply(root).returncode in (0, 1)
    edited = b'{"icc": false, "debug": true}\n'
    (root / "etc/docker/daemon.json").write_bytes(edited)  # a later hand edit
    r = run_dockfix("rollback", "--last", "--root", str(root), "--no-engine")
    assert r.returncode == 3 and "daemon.json" in r.stderr
    r = run_dockfix("rollback", "--last", "--force", "--root", str(root), "--no-engine")
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stdout.splitlines() if "kept a copy" in ln)
    copy = line.split(" -> ", 1)[1].strip()
    assert line.split(": ", 1)[1].startswith("/etc/docker/daemon.json")
    assert (root / copy.lstrip("/")).read_bytes() == edited
    assert tree_state(root) == before
    assert journal(root)[0]["rollback"]["kept"] == [line.split(": ", 1)[1]]


def test_prune_keeps_what_a_rollback_needs(tmp_path: Path) -> None:
    root = small_tree(tmp_path / "root")
    for _ in range(3):
        assert apply(root).returncode in (0, 1)
        assert run_dockfix("rollback", "--last", "--root", str(root), "--no-engine").returncode == 0
    r = apply(root, env={"DOCKFIX_FAULT_KILL_AFTER": "apply:1"})
    assert r.returncode == -signal.SIGKILL
    ids = [t["txid"] for t in journal(root)]
    assert len(ids) == 4
    r = run_dockfix("journal", "prune", "--keep", "2", "--root", str(root), "--no-engine")
    assert r.returncode == 0, r.stderr
    assert [t["txid"] for t in journal(root)] == ids[2:]
    r = run_dockfix("journal", "prune", "--older-than", "0", "--root", str(root), "--no-engine")
    assert r.returncode == 0 and f"kept {ids[3]} (incomplete" in r.stdout, r.stdout
    assert [t["txid"] for t in journal(root)] == ids[3:]
    assert run_dockfix("rollback", "--last", "--root", str(root), "--no-engine").returncode == 0
    r = run_dockfix("journal", "prune", "--root", str(root), "--no-engine")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


def test_crlf_is_kept_and_rollback_restores_the_mtime(tmp_path: Path) -> None:
    root = small_tree(tmp_path / "root")
    daemon = root / "etc/docker/daemon.json"
    original = b'{\r\n    "icc": true,\r\n    "log-level": "info"\r\n}\r\n'
    daemon.write_bytes(original)
    os.utime(daemon, ns=(1_600_000_000_000_000_000, 1_600_000_000_123_456_789))
    assert apply(root).returncode in (0, 1)
    data = daemon.read_bytes()
    assert data != original and b'"icc": false' in data
    assert data.count(b"\n") == data.count(b"\r\n"), data
    assert run_dockfix("rollback", "--last", "--root", str(root), "--no-engine").returncode == 0
    assert daemon.read_bytes() == original
    assert os.lstat(daemon).st_mtime_ns == 1_600_000_000_123_456_789


def test_prune_that_cannot_remove_a_transaction_is_one_line(tmp_path: Path) -> None:
    """A file in an old transaction that cannot be removed (immutable, read-only filesystem) stops
    the prune with one line and exit 3, never a traceback; the transactions it did not reach stay."""
    import subprocess

    root = small_tree(tmp_path / "root")
    for _ in range(2):
        assert apply(root).returncode in (0, 1)
        assert run_dockfix("rollback", "--last", "--root", str(root), "--no-engine").returncode == 0
    ids = [t["txid"] for t in journal(root)]
    jdir = root / "var/lib/dockfix/journal"
    subprocess.run(["chattr", "+i", str(jdir / ids[0] / "log")], check=True)
    try:
        r = run_dockfix("journal", "prune", "--keep", "0", "--root", str(root))
    finally:
        for log in jdir.glob(f"*{ids[0]}/log"):
            subprocess.run(["chattr", "-i", str(log)], check=True)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 3 and len(r.stderr.strip().splitlines()) == 1, (r.returncode, r.stderr)
    assert ids[0] in r.stderr and "Operation not permitted" in r.stderr, r.stderr
    assert [t["txid"] for t in journal(root)] == ids[1:], "the transactions it did not reach stay"


def test_a_rollback_the_journal_cannot_record_says_so(tmp_path: Path) -> None:
    """A rollback goes on when its records cannot be written (restores are idempotent), but it must
    not pass in silence: the journal would still say `applied`, with no one named as rolling it back."""
    import subprocess

    root = small_tree(tmp_path / "root")
    before = tree_state(root)
    assert apply(root).returncode in (0, 1)
    (txid,) = [t["txid"] for t in journal(root)]
    log = root / "var/lib/dockfix/journal" / txid / "log"
    subprocess.run(["chattr", "+i", str(log)], check=True)
    try:
        r = run_dockfix("rollback", "--last", "--root", str(root), "--no-engine")
    finally:
        subprocess.run(["chattr", "-i", str(log)], check=True)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 0, r.stderr
    assert tree_state(root) == before
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "could not record" in lines[0] and txid in lines[0], r.stderr
