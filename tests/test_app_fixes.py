"""Pilot tests of the app's review/apply/rollback flow on a real tree with the real fix core."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from textual.widgets import DataTable, Static

from app_helpers import failing_tree, make_app, screen_name, select, settle
from helpers import manifest
from dockfix.model import Status


def mode_of(p: Path) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


def status_of(app, check_id: str, subject: str | None = None) -> Status:
    found = [f for f in app.screen.findings.values() if f.id == check_id and (subject is None or f.subject == subject)]
    assert len(found) == 1, found
    return found[0].status


def static_text(widget: Static) -> str:
    return str(widget.render())


async def test_diff_apply_see_pass_then_roll_back_from_journal(tmp_path: Path) -> None:
    root = failing_tree(tmp_path)
    daemon_json = root / "etc/docker/daemon.json"
    before = manifest(root)
    app = make_app(root)
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(app, pilot)
        assert status_of(app, "daemon-json-mode") == Status.FAIL
        await select(pilot, "daemon-json-mode")
        await pilot.press("d")
        await settle(app, pilot)
        assert screen_name(app) == "DiffScreen"
        diff = static_text(app.screen.query_one("#diff", Static))
        assert "/etc/docker/daemon.json" in diff and "mode  0666 -> 0644" in diff
        await pilot.press("a")
        await settle(app, pilot)
        assert screen_name(app) == "ConfirmModal"
        assert "0666 -> 0644" in app.screen.body and "daemon-json-mode" in app.screen.body
        await pilot.press("y")
        await settle(app, pilot)
        assert screen_name(app) == "FindingsScreen"
        # On disk: the mode changed.
        assert mode_of(daemon_json) == 0o644
        # On screen: the finding was scanned again and passes.
        assert status_of(app, "daemon-json-mode") == Status.PASS
        label = static_text(app.screen.query_one("#progress-label"))
        assert "Rescanned daemon-json-mode" in label

        # The journal lists the transaction with its change; roll it back.
        await pilot.press("t")
        await settle(app, pilot)
        assert screen_name(app) == "JournalScreen"
        table = app.screen.query_one(DataTable)
        assert table.row_count == 1
        assert "applied" in " ".join(str(c) for c in table.get_row_at(0))
        detail = static_text(app.screen.query_one("#tx-detail", Static))
        assert "mode of /etc/docker/daemon.json 0666 -> 0644" in detail
        await pilot.press("u")
        await settle(app, pilot)
        assert screen_name(app) == "ConfirmModal"
        assert "0666 -> 0644" in app.screen.body
        await pilot.press("y")
        await settle(app, pilot)
        assert mode_of(daemon_json) == 0o666
        assert "rolled" in " ".join(str(c) for c in app.screen.query_one(DataTable).get_row_at(0))
        await pilot.press("escape")  # back to the findings, which are scanned again
        await settle(app, pilot)
        assert screen_name(app) == "FindingsScreen"
        assert status_of(app, "daemon-json-mode") == Status.FAIL
    after = manifest(root)
    after = {k: v for k, v in after.items() if k.split("/")[0] != "var"}  # the journal
    assert after == before  # byte for byte, owners and modes included


async def test_marked_findings_apply_as_one_transaction_disruptive_confirmed_apart(tmp_path: Path) -> None:
    root = failing_tree(tmp_path)
    daemon_json = root / "etc/docker/daemon.json"
    app = make_app(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        for cid in ("icc", "live-restore", "daemon-json-mode", "etc-default-docker-owner"):
            await select(pilot, cid)
            await pilot.press("space")
        assert len(app.screen.marked) == 4
        await pilot.press("a")
        await settle(app, pilot)
        assert screen_name(app) == "ConfirmModal"
        body = app.screen.body
        for cid in ("icc", "live-restore", "daemon-json-mode", "etc-default-docker-owner"):
            assert cid in body
        assert "[disruptive] icc" in body
        await pilot.press("y")
        await settle(app, pilot)
        # The disruptive fix asks on its own; decline it.
        assert screen_name(app) == "ConfirmModal"
        assert "Disruptive" in app.screen.title_text and "icc" in app.screen.title_text
        assert "impact" in app.screen.body
        await pilot.press("n")
        await settle(app, pilot)
        # live-restore's edit of daemon.json built on icc's: its new diff is shown again before applying
        assert screen_name(app) == "DiffScreen"
        assert [it.check_id for it in app.screen.plan.items] == ["live-restore"]
        assert "\"icc\": false" not in app.screen.plan.diff()
        await pilot.press("a")
        await settle(app, pilot)
        assert screen_name(app) == "FindingsScreen"
        doc = json.loads(daemon_json.read_text())
        assert doc["icc"] is True  # declined: untouched
        assert doc["live-restore"] is True
        assert mode_of(daemon_json) == 0o644
        assert os.lstat(root / "etc/default/docker").st_uid == 0
        assert status_of(app, "icc") == Status.FAIL
        assert status_of(app, "live-restore") == Status.PASS
        assert status_of(app, "etc-default-docker-owner") == Status.PASS
        assert app.screen.marked == {("icc", "/etc/docker/daemon.json")}  # declined: still marked
        txs = app.core.session(app.new_context()).transactions()
        assert len(txs) == 1 and len(txs[0].items) == 3  # one transaction


async def test_failed_apply_shows_what_was_rolled_back(tmp_path: Path, monkeypatch) -> None:
    """The second change fails (a fault injected into chown): the first is rolled back, and the app says so."""
    from dockfix import changes as changes_mod

    def broken_chown(self, host):
        raise OSError(28, "No space left on device")

    root = failing_tree(tmp_path)
    daemon_json = root / "etc/docker/daemon.json"
    before = manifest(root)
    app = make_app(root)
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(app, pilot)
        for cid in ("daemon-json-mode", "etc-default-docker-owner"):
            await select(pilot, cid)
            await pilot.press("space")
        monkeypatch.setattr(changes_mod.Chown, "perform", broken_chown)
        await pilot.press("a")
        await settle(app, pilot)
        await pilot.press("y")
        await settle(app, pilot)
        assert screen_name(app) == "MessageModal"
        body = app.screen.body
        assert "rolled back" in body
        assert "/etc/docker/daemon.json" in body and "0666 -> 0644" in body
        assert mode_of(daemon_json) == 0o666
        await pilot.press("enter")
        await settle(app, pilot)
        assert status_of(app, "daemon-json-mode") == Status.FAIL
    after = {k: v for k, v in manifest(root).items() if k.split("/")[0] != "var"}  # the journal
    assert after == before


async def test_rollback_refused_after_drift_names_the_file(tmp_path: Path) -> None:
    root = failing_tree(tmp_path)
    daemon_json = root / "etc/docker/daemon.json"
    app = make_app(root)
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(app, pilot)
        await select(pilot, "daemon-json-mode")
        await pilot.press("a")
        await settle(app, pilot)
        await pilot.press("y")
        await settle(app, pilot)
        assert mode_of(daemon_json) == 0o644
        os.chmod(daemon_json, 0o600)  # someone changes it after the fix
        await pilot.press("t")
        await settle(app, pilot)
        await pilot.press("u")
        await settle(app, pilot)
        await pilot.press("y")
        await settle(app, pilot)
        assert screen_name(app) == "MessageModal"
        assert "refused" in app.screen.title_text
        assert "/etc/docker/daemon.json" in app.screen.body
        assert mode_of(daemon_json) == 0o600  # left alone


async def test_read_only_session_refuses_to_apply(tmp_path: Path) -> None:
    root = failing_tree(tmp_path)
    app = make_app(root, euid=1000)
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(app, pilot)
        assert "uid 1000, not root" in static_text(app.screen.query_one("#readonly"))
        await select(pilot, "daemon-json-mode")
        await pilot.press("a")
        await settle(app, pilot)
        assert screen_name(app) == "FindingsScreen"  # no confirmation: refused at once
        assert mode_of(root / "etc/docker/daemon.json") == 0o666
        assert not (root / "var").exists()
