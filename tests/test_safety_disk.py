"""Real disk faults during an apply or a rollback (issue 15): an immutable or append-only file, a
read-only mount, a full filesystem, a hard-linked file, and a fault injected with each errno at
every step. Each time: one line naming the file and the problem, the documented exit code, and the
tree exactly as before (manifest with owners and modes; no stray temporary file)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest

from helpers import manifest, put, run_dockfix

JOURNAL = "var/lib/dockfix"


def tree_state(root: Path) -> dict:
    return {k: v for k, v in manifest(root).items() if not (k == JOURNAL or k.startswith(JOURNAL + "/"))}


def small_tree(root: Path) -> Path:
    put(root, "var/lib/")
    put(root, "etc/group", "root:x:0:\ndocker:x:998:\n")
    put(root, "etc/docker/", mode=0o733, owner=(1000, 1000))
    put(root, "etc/docker/daemon.json", '{\n    "icc": true\n}\n', mode=0o666, owner=(1000, 1000))
    put(root, "lib/systemd/system/docker.service", "[Service]\nExecStart=/usr/bin/dockerd\n", mode=0o666)
    return root


ONLY = ["--only", "3.5,3.6,3.17,3.18,2.2,3.1,3.2", "--include-disruptive"]


def apply(root: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    r = run_dockfix("--apply", "--yes", "--root", str(root), "--no-engine", *ONLY, *extra, env=env)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def last_line(r: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in r.stderr.splitlines() if not ln.startswith("[")]  # progress lines "[k/n] ..."
    assert len(lines) == 1, r.stderr
    return lines[0]


def no_temporaries(root: Path) -> None:
    assert not [p for p in root.rglob("*") if p.name.endswith(".tmp")], list(root.rglob("*.tmp"))


@contextlib.contextmanager
def chattr(path: Path, flag: str):
    subprocess.run(["chattr", f"+{flag}", str(path)], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", f"-{flag}", str(path)], check=True)


@contextlib.contextmanager
def mounted(args: list[str], where: Path):
    subprocess.run(["mount", *args, str(where)], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


# ---------------------------------------------------------------------- refused before the first change
@pytest.mark.parametrize("flag, words", [("i", "immutable"), ("a", "append-only")])
@pytest.mark.parametrize("what", ["etc/docker/daemon.json", "etc/docker"])
def test_attributes_are_found_before_the_first_change(what: str, flag: str, words: str, tmp_path: Path) -> None:
    root = small_tree(tmp_path / "root")
    before = tree_state(root)
    with chattr(root / what, flag):
        r = apply(root)
        assert r.returncode == 3, (r.returncode, r.stderr)
        line = last_line(r)
        assert f"/{what}" in line and "nothing was applied" in line, line
        assert words in line or "immutable or append-only" in line, line
        assert tree_state(root) == before
    no_temporaries(root)


def test_a_read_only_mount_is_found_before_the_first_change(tmp_path: Path) -> None:
    root = small_tree(tmp_path / "root")
    before = tree_state(root)
    target = root / "etc/docker"
    with mounted(["--bind", str(target)], target):
        subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], check=True)
        r = apply(root)
        assert r.returncode == 3, r.stderr
        line = last_line(r)
        assert "/etc/docker" in line and "read-only" in line, line
        assert tree_state(root) == before


def test_no_room_for_the_journal_is_found_before_the_first_change(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    with mounted(["-t", "tmpfs", "-o", "size=2m", "tmpfs"], root):
        small_tree(root)
        (root / "filler").write_bytes(b"\0" * (2 * 1024 * 1024 - 200 * 1024))
        before = tree_state(root)
        r = apply(root)
        assert r.returncode == 3, r.stderr
        line = last_line(r)
        assert "/var/lib/dockfix/journal" in line and "not enough free space" in line, line
        assert tree_state(root) == before
        no_temporaries(root)


def test_a_hard_linked_file_is_manual_and_names_its_other_names(tmp_path: Path) -> None:
    """daemon.json hard-linked elsewhere: a mode fix would change the other name's inode too."""
    root = small_tree(tmp_path / "root")
    put(root, "srv/")
    os.link(root / "etc/docker/daemon.json", root / "srv/copy.json")
    outside = tmp_path / "outside.json"
    os.link(root / "etc/docker/daemon.json", outside)
    r = run_dockfix("plan", "--root", str(root), "--no-engine", *ONLY)
    assert r.returncode == 0, r.stderr
    assert "has 3 hard links (/srv/copy.json)" in r.stdout, r.stdout
    before = tree_state(root)
    r = apply(root)
    assert r.returncode in (0, 1), r.stderr
    st = os.lstat(outside)
    assert (st.st_mode & 0o7777, st.st_uid, st.st_nlink) == (0o666, 1000, 3)
    after = tree_state(root)
    assert after["etc/docker/daemon.json"] == before["etc/docker/daemon.json"]


def test_a_file_swapped_for_a_hard_linked_copy_during_the_apply_is_not_changed(tmp_path: Path) -> None:
    """Between the preflight and its step, daemon.json is replaced (its folder is writable by its
    owner) by a copy with the same content, owner and mode that has a second name outside the root:
    the owner and mode fixes must not reach that other name; the apply fails and is rolled back."""
    import shutil
    import sys

    root = small_tree(tmp_path / "root")
    daemon = root / "etc/docker/daemon.json"
    outside = tmp_path / "outside.json"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent), "DOCKFIX_FAULT_SLOW": "1.0"}
    p = subprocess.Popen([sys.executable, "-m", "dockfix", "--apply", "--yes", "--root", str(root), "--no-engine",
                          "--only", "3.1,3.2,3.3,3.4,3.17,3.18"], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    first = p.stderr.readline()
    assert "docker.service" in first, first  # step 1 done; daemon.json's steps come next
    shutil.copy2(daemon, outside)
    os.chown(outside, 1000, 1000)
    os.chmod(outside, 0o666)
    os.link(outside, daemon.with_name(".swap"))
    os.rename(daemon.with_name(".swap"), daemon)
    _, err = p.communicate(timeout=120)
    assert "Traceback" not in err, err
    assert p.returncode == 4, (p.returncode, err)
    assert "hard links" in err.strip().splitlines()[-1], err
    st = os.lstat(outside)
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o666, 1000, 1000)
    assert os.lstat(root / "lib/systemd/system/docker.service").st_mode & 0o7777 == 0o666


# ---------------------------------------------------------------------- real faults in the middle
def test_a_file_made_immutable_after_the_preflight_is_rolled_back_cleanly(tmp_path: Path) -> None:
    """The apply fails on the immutable file (EPERM) and the automatic rollback must not fail too:
    it touches only what the transaction changed (exit 4, never 5)."""
    root = small_tree(tmp_path / "root")
    before = tree_state(root)
    with chattr(root / "lib/systemd/system/docker.service", "i"):
        r = apply(root, env={"DOCKFIX_FAULT_NO_PREFLIGHT": "1"})
        assert r.returncode == 4, (r.returncode, r.stderr)
        line = last_line(r)
        assert "/lib/systemd/system/docker.service" in line and "Operation not permitted" in line, line
        assert tree_state(root) == before
    no_temporaries(root)


def test_a_read_only_mount_in_the_middle_is_rolled_back_cleanly(tmp_path: Path) -> None:
    root = small_tree(tmp_path / "root")
    before = tree_state(root)
    target = root / "lib/systemd/system"
    with mounted(["--bind", str(target)], target):
        subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], check=True)
        r = apply(root, env={"DOCKFIX_FAULT_NO_PREFLIGHT": "1"})
        assert r.returncode == 4, (r.returncode, r.stderr)
        line = last_line(r)
        assert "docker.service" in line and "Read-only file system" in line, line
        assert tree_state(root) == before


def test_a_full_disk_while_writing_the_transaction_is_one_line(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    with mounted(["-t", "tmpfs", "-o", "size=2m", "tmpfs"], root):
        small_tree(root)
        (root / "etc/docker/daemon.json").write_text('{"icc": true, "x": "' + "y" * 60000 + '"}\n')
        os.chmod(root / "etc/docker/daemon.json", 0o666)
        free = os.statvfs(root).f_bavail * os.statvfs(root).f_frsize
        (root / "filler").write_bytes(b"\0" * (free - 40 * 1024))
        before = tree_state(root)
        r = apply(root, env={"DOCKFIX_FAULT_NO_PREFLIGHT": "1"})
        assert r.returncode in (3, 4), (r.returncode, r.stderr)
        line = last_line(r)
        assert "No space left on device" in line, line
        assert tree_state(root) == before
        no_temporaries(root)
        # nothing of the transaction stays in the journal (its folder was named after the newest
        # entry, which is `lock`, so it was never removed)
        assert sorted(os.listdir(root / JOURNAL / "journal")) == ["lock"]
        # the disk has room again: the same apply goes through
        (root / "filler").unlink()
        assert apply(root).returncode in (0, 1)


# ---------------------------------------------------------------------- each errno at every step
STEPS = 6  # changes in the plan of small_tree with ONLY (kept honest below)


def test_a_transaction_whose_header_was_written_but_not_its_log_is_removed(tmp_path: Path) -> None:
    """The journal could write tx.json but not the log (the disk filled up in between): what exists
    is removed, so the next apply is not refused as if a transaction had been interrupted."""
    from dockfix import journal as jr
    from dockfix.host import Host

    root = small_tree(tmp_path / "root")
    j = jr.Journal(Host(str(root), engine=False))
    with j.lock():
        pass
    partial = Path(j.dir) / "20261202T000000.000000Z"
    partial.mkdir()
    (partial / "tx.json").write_text("{}")
    jr._remove_partial_tx(j)
    assert sorted(os.listdir(j.dir)) == ["lock"]
    assert apply(root).returncode in (0, 1)


def test_the_errno_plan_has_its_steps(tmp_path: Path) -> None:
    root = small_tree(tmp_path / "root")
    r = apply(root, "--dry-run")
    assert r.stdout.count("\n") > 0 and f"with {STEPS} change(s)" in r.stdout, r.stdout


@pytest.mark.parametrize("err, text", [("ENOSPC", "No space left on device"), ("EROFS", "Read-only file system"),
                                       ("EPERM", "Operation not permitted")])
def test_each_errno_at_every_step_of_an_apply(err: str, text: str, tmp_path: Path) -> None:
    for k in range(1, STEPS + 1):
        root = small_tree(tmp_path / f"root{k}")
        before = tree_state(root)
        r = apply(root, env={"DOCKFIX_FAULT_FAIL_AT": f"apply:{k}:{err}"})
        assert r.returncode == 4, (k, r.returncode, r.stderr)
        line = last_line(r)
        assert text in line and "rolled back" in line and "/" in line, line
        assert tree_state(root) == before, k
        no_temporaries(root)


@pytest.mark.parametrize("err, text", [("ENOSPC", "No space left on device"), ("EROFS", "Read-only file system"),
                                       ("EPERM", "Operation not permitted")])
def test_each_errno_at_every_step_of_a_rollback(err: str, text: str, tmp_path: Path) -> None:
    """A rollback that fails part-way says where (exit 5) and finishes when run again."""
    for k in range(1, 6):
        root = small_tree(tmp_path / f"root{k}")
        before = tree_state(root)
        assert apply(root).returncode in (0, 1)
        r = run_dockfix("rollback", "--last", "--root", str(root), "--no-engine",
                        env={"DOCKFIX_FAULT_FAIL_AT": f"rollback:{k}:{err}"})
        assert "Traceback" not in r.stderr, r.stderr
        if r.returncode == 0:  # fewer targets than k
            assert tree_state(root) == before
            continue
        assert r.returncode == 5, (k, r.returncode, r.stderr)
        assert text in last_line(r) and "stopped at" in r.stderr, r.stderr
        r = run_dockfix("rollback", "--last", "--root", str(root), "--no-engine")
        assert r.returncode == 0, r.stderr
        assert tree_state(root) == before, k
