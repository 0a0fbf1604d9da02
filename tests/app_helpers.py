"""A failing host tree and an app rooted in it, shared by the app's pilot, snapshot and tmux tests."""

from __future__ import annotations

import functools
from pathlib import Path

from helpers import put

#: daemon.json of the failing tree: icc on (2.2), no live-restore (2.15); the file is 0666 (3.18).
DAEMON_JSON = '{\n  "icc": true,\n  "log-level": "info"\n}\n'

#: A fixed set of checks for the snapshots, so that new checks elsewhere do not change them.
SNAPSHOT_CHECKS = ["2.2", "2.3", "2.16", "3.5", "3.6", "3.17", "3.18", "3.19", "3.20"]


def failing_tree(root: Path) -> Path:
    put(root, "etc/docker/", mode=0o755)
    put(root, "etc/docker/daemon.json", DAEMON_JSON, mode=0o666)
    put(root, "etc/default/docker", 'DOCKER_OPTS=""\n', mode=0o644, owner=(1000, 1000))
    put(root, "etc/group", "root:x:0:\ndocker:x:998:\n")
    return root


def make_app(root: Path, only: list[str] | None = None, engine: str | None = None, engine_timeout: float = 5.0,
             **kw):
    from dockfix.tui.app import DockfixApp
    from dockfix.host import Host
    from dockfix.scan import Context, scan

    def context() -> Context:
        return Context(host=Host(root=str(root), docker_host=engine, engine=engine is not None,
                                 engine_timeout=engine_timeout))

    kw.setdefault("host_label", "test host")
    if only:
        kw.setdefault("scan", functools.partial(scan, only=only))
    return DockfixApp(context, **kw)


async def settle(app, pilot, timeout: float = 30) -> None:
    """Wait until the workers are done (but for confirmations waiting on the user) and the screen
    has caught up."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        await pilot.pause(0.05)
        busy = [w for w in app.workers if not w.is_finished and w.group != "confirm"]
        if not busy:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"workers still busy after {timeout} s: {busy}")
    await pilot.pause(0.1)


async def select(pilot, check_id: str, subject: str | None = None) -> None:
    """Put the findings cursor on a finding (the filter must show it), as arrow keys would."""
    screen = pilot.app.screen
    table = screen.query_one("#table")
    for f in screen.visible():
        if f.id == check_id and (subject is None or f.subject == subject):
            from dockfix.screens.findings_screen import row_key_of

            table.move_cursor(row=table.get_row_index(row_key_of(f)), animate=False)
            await pilot.pause(0.1)
            assert screen.finding_at_cursor() is f
            return
    raise AssertionError(f"{check_id} is not in the table")


def screen_name(app) -> str:
    return type(app.screen).__name__


async def markdown_ready(pilot) -> None:
    """Wait until the Markdown on screen has been parsed and laid out (it renders asynchronously)."""
    from textual.widgets import Markdown

    for _ in range(100):
        docs = list(pilot.app.screen.query(Markdown))
        if docs and all(len(d.children) > 0 for d in docs if d.source):
            break
        await pilot.pause(0.05)
    await pilot.pause(0.2)


async def stable(pilot, tries: int = 40) -> None:
    """Wait until two screenshots in a row are the same (Markdown lays itself out in steps)."""
    import re

    def shot() -> str:
        return re.sub(r"terminal-\d+", "terminal", pilot.app.export_screenshot())

    last = shot()
    for _ in range(tries):
        await pilot.pause(0.1)
        now = shot()
        if now == last:
            return
        last = now
