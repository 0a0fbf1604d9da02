"""Pilot tests of the app: what a user sees and what changes on disk."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path

import pytest
from textual.widgets import DataTable, Markdown

from app_helpers import DAEMON_JSON, failing_tree, make_app, settle
from dockfix.model import Status


def rows(app) -> list[str]:
    """The findings table as the user reads it: one line of cell texts per row."""
    table = app.screen.query_one("#table", DataTable)
    return [" ".join(str(c) for c in table.get_row_at(i)).split("\x1f")[0] for i in range(table.row_count)]


def detail_text(app) -> str:
    md = app.screen.query_one("#detail-md", Markdown)
    return md.source


async def test_scan_fills_table_grouped_with_counts_and_detail(tmp_path: Path) -> None:
    app = make_app(failing_tree(tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        screen = app.screen
        lines = rows(app)
        # Grouped: a section row comes before its findings.
        assert any(" Daemon " in line for line in lines)
        assert lines.index(next(l for l in lines if l.strip().startswith("2 "))) < lines.index(
            next(l for l in lines if " icc " in l))
        # Status and severity are words, not just colours.
        icc = next(l for l in lines if " icc " in l)
        assert "FAIL" in icc and "medium" in icc
        counts = str(screen.query_one("#counts").render())
        assert "FAIL" in counts and "PASS" in counts
        n_fail = sum(1 for f in screen.findings.values() if f.status == Status.FAIL)
        assert f"FAIL {n_fail}" in counts
        # Default filter shows what needs a look: no passing findings in the table.
        assert not any("PASS" in l for l in lines)
        # Select icc: its detail is shown, with evidence, explanation, the manual command, remediation.
        while screen.finding_at_cursor() is None or screen.finding_at_cursor().id != "icc":
            await pilot.press("down")
        await pilot.pause(0.1)
        text = detail_text(app)
        assert "/etc/docker/daemon.json" in text
        assert "icc is true" in text
        assert "Why it matters" in text and "Check it by hand" in text and "Remediation" in text


async def test_filters_and_search(tmp_path: Path) -> None:
    app = make_app(failing_tree(tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("5")  # pass
        lines = [l for l in rows(app) if "PASS" in l or "FAIL" in l]
        assert lines and all("PASS" in l for l in lines)
        await pilot.press("2")  # fail
        lines = [l for l in rows(app) if "PASS" in l or "FAIL" in l or "MANUAL" in l]
        assert lines and all("FAIL" in l for l in lines)
        await pilot.press("f")  # cycles on to manual
        assert app.screen.filter == "manual"
        await pilot.press("6")  # all
        await pilot.press("slash")
        await pilot.press(*"live-restore")
        await pilot.pause(0.1)
        found = [l for l in rows(app) if "FAIL" in l or "PASS" in l]
        assert len(found) == 1 and "live-restore" in found[0]
        assert "live-restore" in str(app.screen.query_one("#counts").render())
        await pilot.press("escape")
        assert len([l for l in rows(app) if "FAIL" in l]) > 1


async def test_enter_opens_detail_page_and_help_lists_keys(tmp_path: Path) -> None:
    app = make_app(failing_tree(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("down", "enter")
        await pilot.pause(0.1)
        assert type(app.screen).__name__ == "DetailScreen"
        md = app.screen.query_one(Markdown).source
        assert "Evidence" in md and "Remediation" in md
        await pilot.press("escape")
        assert type(app.screen).__name__ == "FindingsScreen"
        await pilot.press("question_mark")
        assert type(app.screen).__name__ == "HelpScreen"
        keys = dict(app.screen.rows)
        assert keys["t"].startswith("Journal") and "roll" in keys["t"]
        await pilot.press("escape")
        assert type(app.screen).__name__ == "FindingsScreen"


async def test_not_root_on_a_live_host_says_read_only_at_once(tmp_path: Path) -> None:
    """Started by an ordinary user on / the app says it can read but not fix, and why."""
    from dockfix.tui.app import DockfixApp
    from dockfix.host import Host
    from dockfix.scan import Context

    # Never scans the machine: the scan function is replaced; only the warning is under test.
    from dockfix.scan import ScanResult

    app = DockfixApp(lambda: Context(host=Host(root="/", engine=False)), euid=1000,
                     scan=lambda ctx, **kw: ScanResult([], {}))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0)
        banner = str(app.screen.query_one("#readonly").render())
        assert "READ-ONLY" in banner and "uid 1000" in banner and "not root" in banner
        assert "sudo" in banner


@pytest.mark.slow
async def test_never_freezes_on_a_slow_engine(tmp_path: Path) -> None:
    """An engine socket that accepts but never answers: file findings show, keys work, the bar moves."""
    sock_path = tmp_path / "slow.sock"
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(sock_path))
    srv.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])  # never answers
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    root = failing_tree(tmp_path / "root")
    try:
        app = make_app(root, engine=f"unix://{sock_path}", engine_timeout=4)
        async with app.run_test(size=(100, 30)) as pilot:
            start = time.monotonic()
            lags: list[float] = []
            partial = None
            await pilot.pause(0)
            # Sample the event loop for the whole scan: it must never stall while the engine hangs,
            # and findings must show (with the bar part-way) before the scan is over.
            while app.screen.scanning and time.monotonic() - start < 30:
                t = time.monotonic()
                await asyncio.sleep(0.02)
                lags.append(time.monotonic() - t - 0.02)
                if partial is None and rows(app) and app.screen.scanning:
                    partial = str(app.screen.query_one("#progress-label").render())
                    await pilot.press("question_mark")  # keys work meanwhile
                    assert type(app.screen).__name__ == "HelpScreen"
                    await pilot.press("escape")
            assert partial is not None, "no finding on screen before the scan ended"
            assert "Scanning:" in partial
            assert max(lags) < 0.25, f"the event loop stalled for {max(lags):.2f} s"
            assert not app.screen.scanning
            # The engine checks end as errors that name the engine; the file checks are there.
            assert any(" icc " in l for l in rows(app))
            errors = [f for f in app.screen.findings.values() if f.status == Status.ERROR]
            assert errors and all("slow.sock" in f.evidence for f in errors)
            assert "Scanned" in str(app.screen.query_one("#progress-label").render())
    finally:
        stop.set()
        for c in held:
            c.close()
        srv.close()
