"""`dockfix demo` opens the app on the demo host: through Pilot, and in a real terminal (tmux),
exactly as the README's first command does. Team notes show beside the findings."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dockfix.demo.host import DEMO_SECRETS, build_demo
from dockfix.demo.private_engine import processes_mentioning
from dockfix.team_notes import parse_notes
from helpers import REPO

NOTES = ("## etc-docker-owner\n\nAnsible owns /etc/docker here.\n\n"
         "## env-password\n\nExporter passwords live in Vault.\n\n"
         "## 2.2\n\nicc has been off since 2024.\n\n"
         "## no-such-check\n\nA typo in a tag.\n")


async def settle(pilot) -> None:
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.05)
    await pilot.pause(0.1)


def detail_of(screen, check_id: str) -> str:
    """Move the table's cursor to the first finding of ``check_id`` and return the detail text."""
    from textual.widgets import DataTable, Markdown

    from dockfix.screens.findings_screen import row_key_of

    f = next(f for f in screen.findings.values() if f.id == check_id and f.status.value == "fail")
    table = screen.query_one(DataTable)
    table.move_cursor(row=table.get_row_index(row_key_of(f)))
    screen.show_detail()
    return screen.query_one("#detail-md", Markdown).source


async def test_demo_app_shows_the_demo_findings_with_team_notes():
    from dockfix.tui.demo_app import make_demo_app
    from dockfix.screens.findings_screen import FindingsScreen

    demo = build_demo(engine=False)
    try:
        notes = parse_notes(NOTES, "team.md")
        assert len(notes.warnings()) == 1
        app = make_demo_app(demo, notes)
        async with app.run_test(size=(160, 50)) as pilot:
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, FindingsScreen)
            failing = {f.id for f in screen.findings.values() if f.status.value == "fail"}
            assert {"etc-docker-owner", "docker-service-owner", "icc", "env-password", "registry-s3-encryption",
                    "registry-https", "sensitive-file-in-image", "audit-etc-docker"} <= failing
            assert "Ansible owns /etc/docker here." in detail_of(screen, "etc-docker-owner")
            assert "Exporter passwords live in Vault." in detail_of(screen, "env-password")
            assert "icc has been off since 2024." in detail_of(screen, "icc")
            for text in (detail_of(screen, "env-password"), detail_of(screen, "registry-s3-encryption")):
                assert not any(s in text for s in DEMO_SECRETS)
            # the files-only demo says what it leaves out
            messages = [str(n.message) for n in app._notifications]
            assert any("runs on files alone" in m for m in messages)
            # the unknown tag is reported in the app, with file and line
            assert "team.md:13: unknown check id 'no-such-check': no check of dockfix has it" in messages
            await settle(pilot)
    finally:
        demo.close()
    assert not demo.folder.exists()


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("tmux"), reason="tmux is not installed (scripts/test installs it)")
def test_readme_first_command_opens_the_demo_app_in_a_terminal(tmp_path):
    """`dockfix demo` in a real terminal: the app comes up on the demo host; q leaves and cleans up."""
    session = f"dockfix-demo-test-{os.getpid()}"
    env = {**os.environ, "PYTHONPATH": str(REPO), "HOME": str(tmp_path), "TERM": "xterm-256color"}
    env.pop("DOCKER_HOST", None)
    cmd = f"{sys.executable} -m dockfix demo --no-engine ; echo EXITED $? > {tmp_path}/rc"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "50", cmd], env=env, check=True)
    try:
        screen = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True,
                                    text=True).stdout
            if "etc-docker-owner" in screen and "demo host" in screen:
                break
            time.sleep(0.5)
        assert "etc-docker-owner" in screen, screen
        assert "/tmp/dockfix-demo-" in screen
        folder = Path(next(w for w in screen.split() if w.startswith("/tmp/dockfix-demo-")).rstrip("·"))
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (tmp_path / "rc").exists():
            time.sleep(0.2)
        assert (tmp_path / "rc").read_text().strip() == "EXITED 0"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    assert not folder.exists()
    assert processes_mentioning(str(folder)) == []
