"""The app in a real terminal: tmux runs `dockfix`, we type keys and read the pane."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app_helpers import failing_tree
from helpers import REPO

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (scripts/test installs it)")


class Tmux:
    def __init__(self, name: str, sock: Path) -> None:
        self.name, self.sock = name, sock

    def run(self, *args: str) -> str:
        r = subprocess.run(["tmux", "-S", str(self.sock), *args], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return r.stdout

    def keys(self, *keys: str) -> None:
        for k in keys:
            self.run("send-keys", "-t", self.name, k)
            time.sleep(0.15)

    def pane(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.name)

    def wait_for(self, *texts: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.pane()
            if all(t in screen for t in texts):
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{texts} not on screen after {timeout} s:\n{screen}")


@pytest.fixture
def tmux(tmp_path: Path):
    sock = tmp_path / "tmux.sock"
    t = Tmux("dockfix", sock)
    yield t
    subprocess.run(["tmux", "-S", str(sock), "kill-server"], capture_output=True)


def test_app_in_tmux_shows_findings_and_a_diff_then_applies(tmp_path: Path, tmux: Tmux) -> None:
    root = failing_tree(tmp_path / "root")
    env = f"PYTHONPATH={REPO} TERM=xterm-256color NO_COLOR= COLUMNS= LINES="
    cmd = f"env {env} {sys.executable} -m dockfix --root {root} --no-engine; sleep 30"
    tmux.run("new-session", "-d", "-s", tmux.name, "-x", "120", "-y", "40", cmd)
    screen = tmux.wait_for("daemon-json-mode", "FAIL", "Scanned")
    assert "Daemon" in screen  # grouped by section
    assert str(root) in screen  # the banner names the tree
    # Search for the finding, open its diff.
    tmux.keys("/")
    tmux.wait_for("search: words")
    time.sleep(0.5)  # the box is drawn a moment before it has the focus; on a busy machine keys would go to the table
    tmux.run("send-keys", "-t", tmux.name, "-l", "daemon-json-mode")
    tmux.wait_for("daemon-json-mode", "search")
    tmux.keys("Enter")
    tmux.wait_for("matching")
    tmux.keys("d")
    screen = tmux.wait_for("mode  0666 -> 0644", "Review")
    assert "/etc/docker/daemon.json" in screen
    # Apply it from the diff page: the confirmation lists the change; y applies.
    tmux.keys("a")
    tmux.wait_for("as one transaction")
    tmux.keys("y")
    tmux.wait_for("Rescanned daemon-json-mode")
    assert stat.S_IMODE(os.lstat(root / "etc/docker/daemon.json").st_mode) == 0o644
    tmux.keys("q")


def test_a_whole_demo_session_in_tmux(tmp_path: Path, tmux: Tmux) -> None:
    """As a person would: demo → walkthrough via w → Esc back → mark all shown → diff → apply →
    journal → roll back → quit, the screen read at each step."""
    env = (f"PYTHONPATH={REPO} TERM=xterm-256color NO_COLOR= COLUMNS= LINES= HOME={tmp_path} "
           f"XDG_STATE_HOME={tmp_path}/state DOCKER_HOST=")
    cmd = f"env {env} {sys.executable} -m dockfix demo --no-engine; echo EXITED $?; sleep 30"
    tmux.run("new-session", "-d", "-s", tmux.name, "-x", "120", "-y", "40", cmd)
    screen = tmux.wait_for("etc-docker-owner", "demo host", "Scanned", "w Lesson")
    folder = Path(next(w for w in screen.split() if w.startswith("/tmp/dockfix-demo-")).rstrip("·"))
    # the walkthrough, and Esc back
    tmux.keys("w")
    screen = tmux.wait_for("dockfix walkthrough", "esc Back", "n Next")
    assert "Files only" not in screen  # no toast over the first step
    tmux.keys("Escape")
    tmux.wait_for("Scanned", "space Mark", "w Lesson")
    # narrow to the owner findings and mark all shown
    tmux.keys("2", "/")
    tmux.wait_for("search: words")
    time.sleep(0.5)
    tmux.run("send-keys", "-t", tmux.name, "-l", "owner")
    tmux.keys("Enter")
    tmux.wait_for("matching", "owner")
    tmux.keys("m")
    screen = tmux.wait_for("2 marked")
    # the diff of both, then apply from it
    tmux.keys("d")
    screen = tmux.wait_for("Review", "2 fixes", "/etc/docker", "docker.service")
    tmux.keys("a")
    screen = tmux.wait_for("Apply 2 fixes as one transaction?")
    tmux.keys("y")
    screen = tmux.wait_for("Applied 2 fixes with 2 changes", "Rescanned")
    assert (folder / "host/etc/docker").stat().st_uid == 0
    # the journal, and the rollback with what it restores
    tmux.keys("t")
    screen = tmux.wait_for("Journal", "applied", "Fixes")
    tmux.keys("u")
    screen = tmux.wait_for("Roll back transaction", "back to owner 1000:1000")
    tmux.keys("y")
    screen = tmux.wait_for("rolled back", "Rolled back")
    assert (folder / "host/etc/docker").stat().st_uid == 1000
    tmux.keys("Escape")
    tmux.wait_for("space Mark", "Scanned")
    # quit: the demo says what it cleans up, and does
    tmux.keys("q")
    screen = tmux.wait_for("EXITED 0", timeout=60)
    assert "cleaning up: deleting the demo host" in screen and "cleaned up." in screen
    assert not folder.exists()
