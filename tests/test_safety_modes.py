"""Modes and ownership of what dockfix creates, whatever the umask: the journal's folders 0700 and
files 0600 (before-images hold old file content, secrets included), secret files 0600 in a 0700
folder, every other created file exactly as planned; and a journal location that someone else
could tamper with is refused."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO, manifest, put

pytestmark = pytest.mark.slow


def tree(root: Path) -> Path:
    put(root, "/var/lib/", mode=0o755)
    put(root, "/etc/docker/daemon.json", '{"icc": true}\n', mode=0o666)
    put(root, "/srv/app/compose.yaml",
        "services:\n  db:\n    image: mysql:8\n    environment:\n      MYSQL_ROOT_PASSWORD: correct-horse-battery\n")
    return root


def dockfix(umask: int, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), NO_COLOR="1")
    env.pop("DOCKER_HOST", None)
    return subprocess.run([sys.executable, "-m", "dockfix", *args], capture_output=True, text=True, env=env,
                          timeout=120, preexec_fn=lambda: os.umask(umask))


def mode(p: Path) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


@pytest.mark.parametrize("umask", [0o000, 0o077])
def test_created_modes_do_not_depend_on_the_umask(umask: int, tmp_path: Path) -> None:
    root = tree(tmp_path / "root")
    before = manifest(root)
    plan = tmp_path / "plan.json"
    r = dockfix(umask, "plan", "-o", str(plan), "--include-disruptive", "--root", str(root), "--path", "/srv/app",
                "--no-engine")
    assert r.returncode == 0, r.stderr
    r = dockfix(umask, "--apply", "--yes", "--plan", str(plan), "--root", str(root), "--path", "/srv/app", "--no-engine")
    assert r.returncode in (0, 1), r.stderr
    # the journal and the plan key
    journal = root / "var/lib/dockfix"
    dirs = [journal] + [p for p in journal.rglob("*") if p.is_dir()]
    files = [p for p in journal.rglob("*") if p.is_file()]
    assert len(files) >= 5 and any(p.name.startswith("blob-") for p in files)
    for d in dirs:
        assert mode(d) == 0o700 and os.lstat(d).st_uid == 0, (d, oct(mode(d)))
    for f in files:
        assert mode(f) == 0o600 and os.lstat(f).st_uid == 0, (f, oct(mode(f)))
    # the secrets fix: the folder private, the secret file root's and readable by mysql's group (999) only
    secrets = root / "srv/app/secrets"
    assert secrets.is_dir() and mode(secrets) == 0o700
    secret_files = list(secrets.iterdir())
    assert secret_files and all(mode(f) == 0o640 and (os.lstat(f).st_uid, os.lstat(f).st_gid) == (0, 999)
                                for f in secret_files)
    assert (secret_files[0].read_text().strip() == "correct-horse-battery")
    # everything else created: exactly the planned modes (0755 folders, 0640 audit rules)
    assert mode(root / "etc/audit") == 0o755 and mode(root / "etc/audit/rules.d") == 0o755
    assert mode(root / "etc/audit/rules.d/docker.rules") == 0o640
    assert mode(root / "etc/docker/daemon.json") == 0o644
    # and the rollback under the same umask restores the tree exactly
    r = dockfix(umask, "rollback", "--last", "--root", str(root), "--no-engine")
    assert r.returncode == 0, r.stderr
    assert {k: v for k, v in manifest(root).items() if not k.startswith("var/lib/dockfix")} == before


@pytest.mark.parametrize("bad", ["owned by another user", "world-writable parent", "a link"])
def test_a_journal_others_could_tamper_with_is_refused(bad: str, tmp_path: Path) -> None:
    """Rollback writes before-images from the journal as root: a journal folder another user
    owns, one below a world-writable folder, or a link elsewhere is refused before any change."""
    root = tree(tmp_path / "root")
    if bad == "owned by another user":
        put(root, "/var/lib/dockfix/", mode=0o700, owner=(1000, 1000))
    elif bad == "world-writable parent":
        os.chmod(root / "var/lib", 0o777)
    else:
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        os.symlink(str(elsewhere), root / "var/lib/dockfix")
    before = manifest(root)
    r = dockfix(0o022, "--apply", "--yes", "--root", str(root), "--no-engine")
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "/var/lib" in r.stderr
    assert manifest(root) == before
    # `dockfix journal` only reads: it lists, but says the journal is not trusted
    r = dockfix(0o022, "journal", "--root", str(root))
    assert "Traceback" not in r.stderr, r.stderr
    assert "warning" in r.stderr and "/var/lib" in r.stderr and "refuse" in r.stderr, (r.returncode, r.stderr)
    assert manifest(root) == before
