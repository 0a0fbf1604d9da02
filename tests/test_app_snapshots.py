"""SVG snapshots of the app's pages at 80×24 and 120×40 (pytest-textual-snapshot).

Deterministic by construction: a fixed host tree, a fixed set of checks, the host shown by a
label (not its temporary path), subjects as host paths, journal times and ids frozen for display.
Regenerate with `pytest tests/test_app_snapshots.py --snapshot-update` and look at the report.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from app_helpers import SNAPSHOT_CHECKS, failing_tree, make_app, markdown_ready, screen_name, select, settle, stable

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]


async def _settled(pilot) -> None:
    await settle(pilot.app, pilot)


async def _to_icc(pilot) -> None:
    await settle(pilot.app, pilot)
    await select(pilot, "icc")
    await markdown_ready(pilot)
    await stable(pilot)


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
        await pilot.pause(0.1)
        await markdown_ready(pilot)
        await stable(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_findings_screen_no_color(snap_compare, tmp_path: Path, monkeypatch) -> None:
    """With NO_COLOR the words still carry status and severity, and the cursor shows."""
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(failing_tree(tmp_path), only=SNAPSHOT_CHECKS)
    assert snap_compare(app, terminal_size=(80, 24), run_before=_to_icc)


@pytest.mark.parametrize("size", SIZES)
def test_diff_screen(snap_compare, tmp_path: Path, size) -> None:
    """Three marked fixes: a content diff of daemon.json, a mode line, an owner line."""
    app = make_app(failing_tree(tmp_path), only=SNAPSHOT_CHECKS)

    async def run_before(pilot) -> None:
        await settle(pilot.app, pilot)
        for cid in ("icc", "daemon-json-mode", "etc-default-docker-owner"):
            await select(pilot, cid)
            await pilot.press("space")
        await pilot.press("d")
        await settle(pilot.app, pilot)
        assert screen_name(pilot.app) == "DiffScreen"

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def frozen_journal(list_transactions):
    """The real journal listing, with its ids and times replaced by fixed ones for the picture."""

    def listing(host):
        out = []
        for n, tx in enumerate(list_transactions(host), start=1):
            out.append(dataclasses.replace(tx, txid=f"20260102T030{n}00.000000Z", time=1767322800 + 60 * n))
        return out

    return listing


@pytest.mark.parametrize("size", SIZES)
def test_journal_screen(snap_compare, tmp_path: Path, size, monkeypatch) -> None:
    """Two real transactions made by the core: one rolled back, one applied."""
    from dockfix import workflow
    from dockfix.host import Host
    from dockfix.scan import Context, scan

    root = failing_tree(tmp_path)
    host = Host(root=str(root), engine=False)
    findings = scan(Context(host=host), only=SNAPSHOT_CHECKS).findings

    def apply(ids):
        plan = workflow.plan_fixes(Context(host=Host(root=str(root), engine=False)),
                                   [f for f in findings if f.id in ids])
        return workflow.apply_plan(host, plan)

    first = apply({"daemon-json-mode"})
    workflow.rollback(host, first.txid)
    apply({"daemon-json-mode", "etc-default-docker-owner"})

    frozen = frozen_journal(workflow.list_transactions)
    monkeypatch.setattr(workflow.FixSession, "transactions", lambda self: frozen(self.host))
    app = make_app(root, only=SNAPSHOT_CHECKS)

    async def run_before(pilot) -> None:
        await settle(pilot.app, pilot)
        await pilot.press("j")
        await settle(pilot.app, pilot)
        assert screen_name(pilot.app) == "JournalScreen"

    assert snap_compare(app, terminal_size=size, run_before=run_before)
