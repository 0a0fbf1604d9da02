"""Issue 17: the app as k9s and lazydocker users expect it — a way back and a footer on every page,
help generated from the bindings, j/k, marking all shown, sorting, a severity filter, text that is
never cut, copying over SSH, and counts that agree."""

from __future__ import annotations

import re
from pathlib import Path

from textual.widgets import DataTable, Static

from app_helpers import failing_tree, make_app, screen_name, select, settle
from dockfix.model import Severity, Status


def footer_keys(app) -> list[tuple[str, int]]:
    """The keys the footer shows, each with the column where it ends on screen."""
    from textual.widgets._footer import FooterKey

    return [(k.key_display or k.key, k.region.right) for k in app.screen.query(FooterKey) if k.region.width]


def assert_footer_fits(app, width: int, first: str) -> None:
    keys = footer_keys(app)
    assert keys, f"{screen_name(app)} shows no keys in its footer"
    assert keys[0][0].lower() == first.lower(), keys
    assert all(right <= width for _, right in keys), f"{screen_name(app)}: footer cut at {width}: {keys}"


def table_rows(app) -> list[str]:
    table = app.screen.query_one("#table", DataTable)
    return [" ".join(str(c) for c in table.get_row_at(i)) for i in range(table.row_count)]


def help_rows(app) -> dict[str, str]:
    assert screen_name(app) == "HelpScreen"
    return dict(app.screen.rows)


async def test_every_page_has_esc_back_a_footer_that_fits_80_columns_and_help_from_its_bindings(tmp_path: Path):
    app = make_app(failing_tree(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert_footer_fits(app, 80, "space")
        await pilot.press("question_mark")
        keys = help_rows(app)
        # generated from the bindings: every binding of the page (and its table) is listed
        from dockfix.screens.findings_screen import FindingsScreen, FindingsTable

        for b in FindingsScreen.BINDINGS + FindingsTable.BINDINGS:
            assert any(b.description in what for what in keys.values()), b
        assert keys["j ↓"].startswith("Down") and keys["t"].startswith("Journal") and "?" in keys
        await pilot.press("escape")
        assert screen_name(app) == "FindingsScreen"

        await select(pilot, "daemon-json-mode")
        await pilot.press("enter")
        await settle(app, pilot)
        assert screen_name(app) == "DetailScreen"
        assert_footer_fits(app, 80, "esc")
        await pilot.press("question_mark")
        assert {"Esc", "d", "Space", "a", "c"} <= set(help_rows(app))
        await pilot.press("escape", "escape")
        assert screen_name(app) == "FindingsScreen"

        await pilot.press("d")
        await settle(app, pilot)
        assert screen_name(app) == "DiffScreen"
        assert_footer_fits(app, 80, "esc")
        await pilot.press("escape")
        assert screen_name(app) == "FindingsScreen"

        await pilot.press("t")
        await settle(app, pilot)
        assert screen_name(app) == "JournalScreen"
        assert_footer_fits(app, 80, "esc")
        await pilot.press("question_mark")
        keys = help_rows(app)
        assert keys["u"].startswith("Roll back") and keys["r"].startswith("Reload")
        await pilot.press("escape", "escape")
        await settle(app, pilot)
        assert screen_name(app) == "FindingsScreen"


async def test_j_k_move_and_the_cursor_skips_section_rows(tmp_path: Path):
    app = make_app(failing_tree(tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        screen, table = app.screen, app.screen.query_one("#table")
        assert table.section_rows and table.cursor_row not in table.section_rows
        seen = []
        for _ in range(table.row_count):
            await pilot.press("j")
            seen.append(table.cursor_row)
            assert screen.finding_at_cursor() is not None  # never on a section heading
        assert seen == sorted(seen) and set(seen) & set(range(max(table.section_rows) + 1, table.row_count))
        for _ in range(table.row_count):
            await pilot.press("k")
            assert screen.finding_at_cursor() is not None
        assert table.cursor_row == min(set(range(table.row_count)) - table.section_rows)
        await pilot.press("G")
        assert table.cursor_row == max(set(range(table.row_count)) - table.section_rows)
        await pilot.press("g")
        assert table.cursor_row == min(set(range(table.row_count)) - table.section_rows)
        await pilot.press("pagedown")
        assert screen.finding_at_cursor() is not None


async def test_mark_all_shown_esc_keeps_marks_and_u_clears_them_after_asking(tmp_path: Path):
    app = make_app(failing_tree(tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        screen = app.screen
        await pilot.press("2")  # fail only
        fixable = {f.key for f in screen.visible() if screen._fixable(f)}
        assert len(fixable) > 2
        await pilot.press("m")
        assert screen.marked == fixable
        assert f"{len(fixable)} marked" in str(screen.query_one("#counts").render())
        await pilot.press("escape", "escape")
        assert screen.marked == fixable  # Esc never drops marks
        await pilot.press("u")
        await settle(app, pilot)
        assert screen_name(app) == "ConfirmModal" and f"Clear all {len(fixable)} marks" in app.screen.title_text
        await pilot.press("n")
        await settle(app, pilot)
        assert screen.marked == fixable
        await pilot.press("u")
        await settle(app, pilot)
        await pilot.press("y")
        await settle(app, pilot)
        assert screen.marked == set()


async def test_sort_cycles_and_a_heading_click_sorts_and_severity_filter(tmp_path: Path):
    app = make_app(failing_tree(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        screen = app.screen
        await pilot.press("s")
        assert screen.sort == "severity"
        sevs = [f.severity for f in screen.visible()]
        assert sevs == sorted(sevs, reverse=True)
        assert not screen.query_one("#table").section_rows  # flat when not by section
        assert "by severity" in str(screen.query_one("#counts").render())
        await pilot.press("s")
        assert screen.sort == "status"
        screen.query_one("#table").post_message(
            DataTable.HeaderSelected(screen.query_one("#table"), screen.query_one("#table").ordered_columns[3].key,
                                     3, screen.query_one("#table").ordered_columns[3].label))
        await pilot.pause(0.1)
        assert screen.sort == "check"
        await pilot.press("v", "v")  # high and up
        assert screen.min_severity == Severity.HIGH
        assert screen.visible() and all(f.severity >= Severity.HIGH for f in screen.visible())
        for _ in range(3):
            await pilot.press("v")
        assert screen.min_severity is None


async def test_an_empty_filter_says_nothing_matches_and_how_to_clear_it(tmp_path: Path):
    app = make_app(failing_tree(tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("4")  # error: none on this tree
        assert app.screen.query_one("#table").row_count == 0
        note = str(app.screen.query_one("#detail-note", Static).render())
        assert note.startswith("Nothing matches") and "6 shows every status" in note
        await pilot.press("6", "slash", *"zzz-nothing", "enter")
        await pilot.pause(0.1)
        note = str(app.screen.query_one("#detail-note", Static).render())
        assert "Nothing matches" in note and "Esc clears the search" in note


async def test_subject_shows_its_end_and_commands_wrap(tmp_path: Path):
    from dockfix.screens.render import tail

    assert tail("compose:/srv/shop/compose.yaml#exporter", 18).endswith("compose.yaml#exporter"[-17:])
    assert tail("/lib/systemd/system/docker.service", 18) == "…/docker.service"
    app = make_app(failing_tree(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await select(pilot, "daemon-json-mode")
        rows = [r for r in table_rows(app) if "daemon-json-mode" in r]
        assert rows and "daemon.json" in rows[0]
        await pilot.press("enter")
        await settle(app, pilot)
        from textual.widgets._markdown import MarkdownFence

        for _ in range(50):
            fences = list(app.screen.query(MarkdownFence))
            if fences and fences[0].size.width:
                break
            await pilot.pause(0.05)
        fence = fences[0]
        # the command wraps inside the pane instead of running off it
        assert fence.virtual_size.width <= fence.size.width
        assert fence.region.right <= 80


async def test_copy_writes_the_command_to_a_file_whose_path_is_shown(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    app = make_app(failing_tree(tmp_path / "root"))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await select(pilot, "icc")
        f = app.screen.finding_at_cursor()
        await pilot.press("c")
        path = tmp_path / "state/dockfix/command.sh"
        assert path.read_text() == f.manual_check.rstrip("\n") + "\n"
        messages = [str(n.message) for n in app._notifications]
        assert any(str(path) in m and "OSC 52" in m for m in messages)


async def test_counts_agree_apply_toast_and_journal_and_rollback_shows_what_is_restored(tmp_path: Path):
    root = failing_tree(tmp_path)
    app = make_app(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        label = str(app.screen.query_one("#progress-label").render())
        assert "checks" in label and "findings" in label
        assert str(app.screen.query_one("#counts").render()).startswith("findings")
        # two fixes of one file (daemon.json) and one owner change
        for cid in ("icc", "daemon-json-mode", "etc-default-docker-owner"):
            await select(pilot, cid)
            await pilot.press("space")
        await pilot.press("a")
        await settle(app, pilot)
        await pilot.press("y")  # the transaction
        await settle(app, pilot)
        await pilot.press("y")  # icc is disruptive: confirmed on its own
        await settle(app, pilot)
        toast = next(str(n.message) for n in app._notifications if str(n.message).startswith("Applied"))
        await pilot.press("t")
        await settle(app, pilot)
        tx = app.screen.txs[0]
        assert f"with {len(tx.changes)} changes" in toast, toast
        await pilot.press("u")
        await settle(app, pilot)
        body = app.screen.body
        assert "/etc/default/docker: back to owner 1000:1000" in body
        assert "/etc/docker/daemon.json: back to owner" in body and "mode 0666, content as before" in body
        await pilot.press("y")
        await settle(app, pilot)
        assert (root / "etc/default/docker").stat().st_uid == 1000


async def test_demo_walkthrough_opened_with_w_comes_back_with_esc(tmp_path: Path, monkeypatch):
    from dockfix.demo.host import build_demo
    from dockfix.tui.demo_app import make_demo_app

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    demo = build_demo(engine=False)
    try:
        app = make_demo_app(demo)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await pilot.press("question_mark")
            assert "walkthrough" in help_rows(app)["w"]
            await pilot.press("escape")
            assert_footer_fits(app, 80, "space")
            assert "w" in [k for k, _ in footer_keys(app)]
            await pilot.press("w")
            await settle(app, pilot)
            assert screen_name(app) == "WalkthroughScreen"
            assert not app._notifications  # no toast over the first step
            assert_footer_fits(app, 80, "esc")
            await pilot.press("question_mark")
            keys = help_rows(app)
            assert {"Esc Backspace", "n", "p", "d", "a", "l", "r", "s", "m", "c", "f"} <= set(keys)
            await pilot.press("escape")
            await pilot.press("f")
            assert screen_name(app) == "SummaryScreen"
            await pilot.press("escape")
            assert screen_name(app) == "WalkthroughScreen"
            await pilot.press("backspace")
            await settle(app, pilot)
            assert screen_name(app) == "FindingsScreen"
    finally:
        steps: list[str] = []
        demo.close(on_step=steps.append)
    assert any("deleting the demo host" in s for s in steps) and steps[-1] == "cleaned up."


def test_walkthrough_summary_lists_a_visited_step_as_visited(tmp_path: Path):
    from dockfix.demo.host import build_demo
    from dockfix.demo.walkthrough import Walkthrough

    demo = build_demo(engine=False)
    try:
        wt = Walkthrough(demo, str(tmp_path / "p.json"))
        wt.look()
        first = wt.step.title
        summary = wt.summary()
        visited = summary.split("# Visited, not finished", 1)[1].split("#", 1)[0]
        assert first in visited
        assert first not in summary.split("# Not visited yet", 1)[1].split("#", 1)[0]
    finally:
        demo.close()


async def test_waived_findings_are_shown_as_such_and_x_adds_a_waiver(tmp_path: Path):
    import datetime as dt

    from helpers import put

    root = failing_tree(tmp_path)
    until = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    put(root, "etc/dockfix/waivers.yaml",
        f"# accepted risks\nwaivers:\n  - check: icc\n    reason: CI runners talk on the bridge\n    expires: {until}\n")
    app = make_app(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        screen = app.screen
        icc = next(f for f in screen.findings.values() if f.id == "icc")
        assert icc.status == Status.FAIL and icc.waiver["reason"] == "CI runners talk on the bridge"
        assert icc not in screen.visible()  # an accepted risk is not "to do"
        assert "1 waived" in str(screen.query_one("#counts").render())
        await pilot.press("2")  # fail: shown, as waived
        row = next(r for r in table_rows(app) if " icc " in r)
        assert "WAIVED" in row
        await select(pilot, "icc")
        await pilot.pause(0.2)
        from textual.widgets import Markdown

        assert "Waived" in screen.query_one("#detail-md", Markdown).source
        # x on another finding: reason and expiry asked, the file gets the entry, the finding is waived
        await select(pilot, "daemon-json-mode")
        await pilot.press("x")
        await settle(app, pilot)
        assert screen_name(app) == "WaiverModal"
        await pilot.press("enter")  # no reason yet: refused, said
        await pilot.press("enter")
        assert screen_name(app) == "WaiverModal"
        assert "needs a reason" in str(app.screen.query_one("#waiver-error").render())
        await pilot.press(*"tested elsewhere", "enter")
        await pilot.press("enter")  # the expiry offered
        await settle(app, pilot)
        assert screen_name(app) == "FindingsScreen"
        text = (root / "etc/dockfix/waivers.yaml").read_text()
        assert text.startswith("# accepted risks") and "daemon-json-mode" in text and "tested elsewhere" in text
        f = next(f for f in screen.findings.values() if f.id == "daemon-json-mode")
        assert f.waiver and f.waiver["reason"] == "tested elsewhere"
        assert "2 waived" in str(screen.query_one("#counts").render())


async def test_section_rows_count_the_findings_shown_under_them(tmp_path: Path):
    """With a severity filter or a search, a section row counts the rows under it, not the whole section
    (was: "3 Daemon files  2 fail" above one row at high and up)."""
    app = make_app(failing_tree(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        screen = app.screen
        for keys in (("v", "v"), ("v", "v", "v", "slash", *"docker", "enter")):  # high and up; then a search
            await pilot.press(*keys)
            await pilot.pause(0.1)
            table = screen.query_one("#table", DataTable)
            rows = [table.get_row_at(i) for i in range(table.row_count)]
            shown: dict[str, int] = {}
            sections = []
            for i, row in enumerate(rows):
                if i in table.section_rows:
                    sections.append((str(row[2]), str(row[4])))
                else:
                    shown[sections[-1][0]] = shown.get(sections[-1][0], 0) + 1
            assert sections
            for section, summary in sections:
                counted = sum(int(n) for n in re.findall(r"(\d+) [a-z]", summary))
                assert counted == shown[section], (keys, section, summary, shown)
