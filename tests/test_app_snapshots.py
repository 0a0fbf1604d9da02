"""SVG snapshots of the app's pages at 80×24 and 120×40 (pytest-textual-snapshot).

Deterministic by construction: a fixed host tree, a fixed set of checks, the host shown by a
label (not its temporary path), subjects as host paths, journal times and ids frozen for display.
Regenerate with `pytest tests/test_app_snapshots.py --snapshot-update` and look at the report.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app_helpers import SNAPSHOT_CHECKS, failing_tree, make_app, settle

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]


async def _settled(pilot) -> None:
    await settle(pilot.app, pilot)


async def _to_icc(pilot) -> None:
    await settle(pilot.app, pilot)
    screen = pilot.app.screen
    for _ in range(40):
        if screen.finding_at_cursor() is not None and screen.finding_at_cursor().id == "icc":
            break
        await pilot.press("down")
    else:
        raise AssertionError("icc is not in the table")
    await pilot.pause(0.2)


@pytest.mark.parametrize("size", SIZES)
def test_findings_screen(snap_compare, tmp_path: Path, size) -> None:
    app = make_app(failing_tree(tmp_path), only=SNAPSHOT_CHECKS)
    assert snap_compare(app, terminal_size=size, run_before=_to_icc)


@pytest.mark.parametrize("size", SIZES)
def test_detail_screen(snap_compare, tmp_path: Path, size) -> None:
    app = make_app(failing_tree(tmp_path), only=SNAPSHOT_CHECKS)

    async def run_before(pilot) -> None:
        await _to_icc(pilot)
        await pilot.press("enter")
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_findings_screen_no_color(snap_compare, tmp_path: Path, monkeypatch) -> None:
    """With NO_COLOR the words still carry status and severity, and the cursor shows."""
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(failing_tree(tmp_path), only=SNAPSHOT_CHECKS)
    assert snap_compare(app, terminal_size=(80, 24), run_before=_to_icc)
