"""The main page: findings grouped by section, filters, search, detail, marking and applying."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from typing import TYPE_CHECKING, Any, Callable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal, VerticalScroll
from textual.coordinate import Coordinate
from textual.message import Message
from textual.screen import Screen
from textual.strip import Strip
from textual.widgets import DataTable, Footer, Input, Label, ProgressBar, Static

from dockfix.model import Finding, Safety, Severity, Status
from dockfix.screens import render

if TYPE_CHECKING:  # types only: the fix core is imported when the first plan is made
    from dockfix.plan import Plan
from dockfix.screens.messages import (
    FindingsRescanned,
    FixesApplied,
    PlanBuilt,
    PlanFailed,
    ScanCompleted,
    ScanFailed,
    ScanProgressed,
)

Key = tuple[str, str]
SEP = "\x1f"


def row_key_of(f: Finding) -> str:
    return f"f{SEP}{f.id}{SEP}{f.subject}"


class FindingsTable(DataTable):
    """The findings table: j/k move as the arrows do, and the cursor never rests on a section row."""

    BINDINGS = [
        Binding("j,down", "cursor_down", "Down", show=False, tooltip="next finding (section rows are skipped)"),
        Binding("k,up", "cursor_up", "Up", show=False, tooltip="previous finding"),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("home,g", "scroll_top", "First", show=False, tooltip="first finding"),
        Binding("end,G", "scroll_bottom", "Last", show=False, tooltip="last finding"),
        Binding("enter", "select_cursor", "Open", show=False, tooltip="the finding on its own page"),
    ]

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        #: Row indexes of section headings (set by the findings page when it fills the table).
        self.section_rows: set[int] = set()
        #: Called once, after the frame that first shows rows has been drawn.
        self.after_first_rows: Callable[[], None] | None = None

    class Resized(Message):
        """The table's own size changed (the page's Resize comes before the side pane takes its
        share: column widths from then cut the Subject off at the right edge)."""

    def on_resize(self) -> None:
        self.post_message(self.Resized())

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        if self.after_first_rows is not None and self.virtual_size.height > self.header_height:
            # this frame has rows; the callback runs once it is written (the page's loop is busy
            # drawing until then)
            callback, self.after_first_rows = self.after_first_rows, None
            self.call_later(callback)
        return strip

    def _skip_sections(self, step: int) -> None:
        row = self.cursor_row
        while row in self.section_rows and 0 <= row + step < self.row_count:
            row += step
        while row in self.section_rows and 0 <= row - step < self.row_count:
            row -= step  # a heading at the very top or bottom: go back the other way
        if row != self.cursor_row:
            self.move_cursor(row=row, animate=False)

    def action_cursor_down(self) -> None:
        super().action_cursor_down()
        self._skip_sections(1)

    def action_cursor_up(self) -> None:
        super().action_cursor_up()
        self._skip_sections(-1)

    def action_page_down(self) -> None:
        super().action_page_down()
        self._skip_sections(1)

    def action_page_up(self) -> None:
        super().action_page_up()
        self._skip_sections(-1)

    def action_scroll_top(self) -> None:
        super().action_scroll_top()
        self._skip_sections(1)

    def action_scroll_bottom(self) -> None:
        super().action_scroll_bottom()
        self._skip_sections(-1)


class FindingsScreen(Screen):
    """Findings table + detail pane. Owns the scan worker and the apply flow."""

    # The footer shows the first ones (most used first, fitting 80 columns); `?` lists them all.
    BINDINGS = [
        Binding("space", "mark", "Mark", tooltip="mark / unmark the finding for fixing"),
        Binding("d", "diff", "Diff", tooltip="review the diff of the marked fixes (or the selected one)"),
        Binding("a", "apply", "Apply", tooltip="apply the marked fixes (or the selected one) after a confirmation"),
        Binding("slash", "search", "Search", key_display="/", tooltip="search id, title, subject, evidence"),
        Binding("f", "cycle_filter", "Filter", tooltip="status filter: to do → fail → manual → error → pass → all"),
        Binding("t", "journal", "Journal", tooltip="the journal of transactions: roll one back"),
        Binding("m", "mark_all", "Mark shown", show=False, tooltip="mark every fixable finding shown"),
        Binding("u", "unmark_all", "Unmark all", show=False, tooltip="clear the marks (asks when more than one)"),
        Binding("s", "cycle_sort", "Sort", show=False,
                tooltip="sort: section → severity → status → check → subject (or click a heading)"),
        Binding("v", "cycle_severity", "Severity", show=False,
                tooltip="severity filter: any → critical → high and up → medium and up → low and up"),
        Binding("x", "waive", "Waive", show=False,
                tooltip="accept the risk of this finding: a waiver with a reason and an expiry date"),
        Binding("c", "copy", "Copy command", show=False,
                tooltip="copy the command to check it by hand (OSC 52, and written to a file)"),
        Binding("r", "rescan", "Rescan", show=False, tooltip="scan again"),
        Binding("escape", "clear", "Clear search", show=False, tooltip="clear the search"),
        Binding("1", "filter('todo')", "To do", show=False, tooltip="filter: fail, error, manual"),
        Binding("2", "filter('fail')", "Fail", show=False, tooltip="filter: fail"),
        Binding("3", "filter('manual')", "Manual", show=False, tooltip="filter: manual"),
        Binding("4", "filter('error')", "Error", show=False, tooltip="filter: error"),
        Binding("5", "filter('pass')", "Pass", show=False, tooltip="filter: pass"),
        Binding("6", "filter('all')", "All", show=False, tooltip="filter: every status"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.findings: dict[Key, Finding] = {}
        self.marked: set[Key] = set()
        self.filter = "todo"
        self.search = ""
        self.sort = "section"
        self.min_severity: Severity | None = None
        self.checks_run = 0
        self.generation = 0
        self.scanning = False
        self._refresh_pending = False
        self._shown_key: str | None = None
        self._detail_timer = None
        self._markdown = None
        self._markdown_loading = self._markdown_ready = False
        self._rows_painted = False  # the first rows are not on screen yet
        self._rest_pending = False  # only the first screenful of rows is in the table

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        app = self.app
        engine = app.host.docker_host if app.host.engine else "not scanned"
        yield Static(Text.assemble(("dockfix", "bold"), " · ", app.host_label, " · engine: ", engine), id="banner")
        if app.refusal:
            yield Static(Text.assemble(("READ-ONLY ", "bold reverse"), " ", app.refusal), id="readonly")
        with Horizontal(id="progress-row"):
            yield Label("Starting the scan…", id="progress-label")
            yield ProgressBar(total=None, show_eta=False, id="progress")
        yield Static(id="counts")
        # The search box is made on the first `/` (one widget less before the first paint).
        with Container(id="body"):
            table = FindingsTable(id="table", cursor_type="row", zebra_stripes=False)
            yield table
            # The Markdown widget is made on first use, after the table's first paint: start-up
            # shows findings sooner.
            with VerticalScroll(id="detail"):
                yield Static(id="detail-note")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.focus()
        self.start_scan()

    # ------------------------------------------------------------------ the status line
    def set_status(self, text: str | Text) -> None:
        """The line under the banner, at rest (what the last scan or apply did)."""
        self._status = text
        self.query_one("#progress-label", Label).update(text)

    def set_busy(self, text: str) -> None:
        self.query_one("#progress-label", Label).update(text)

    def rest(self) -> None:
        self.query_one("#progress-label", Label).update(getattr(self, "_status", ""))

    # ------------------------------------------------------------------ scanning
    def start_scan(self) -> None:
        self.generation += 1
        self.findings = {}
        self.scanning = True
        self.set_status("Scanning…")
        bar = self.query_one(ProgressBar)
        bar.display = True
        bar.update(total=None, progress=0)
        self.refresh_table()
        early = getattr(self.app, "background_scan", None)
        if early is not None and self.generation == 1:
            self.app.background_scan = None
            self._follow(early, self.generation)
        else:
            self._scan(self.generation)

    def _follow(self, early, generation: int) -> None:
        """Take over a scan that started before the interface (see dockfix.tui.background_scan)."""

        def listener(kind: str, payload) -> None:
            if kind == "progress":
                self.post_message(ScanProgressed(*payload, generation))
            elif kind == "completed":
                self.post_message(ScanCompleted(list(payload), generation))
            else:
                self.post_message(ScanFailed(payload, generation))

        early.listen(listener)

    @work(thread=True, exclusive=True, group="scan")
    def _scan(self, generation: int) -> None:
        app = self.app
        try:
            ctx = app.new_context()

            def progressed(done: int, total: int, found: list[Finding]) -> None:
                self.post_message(ScanProgressed(done, total, list(found), generation))

            result = app.core.scan(ctx, on_progress=progressed)
        except Exception as e:  # shown, never a crash
            self.post_message(ScanFailed(f"{type(e).__name__}: {e}", generation))
            return
        self.post_message(ScanCompleted(list(result.findings), generation))

    def on_scan_progressed(self, m: ScanProgressed) -> None:
        if m.generation != self.generation:
            return
        for f in m.findings:
            self.findings[f.key] = f
        bar = self.query_one(ProgressBar)
        bar.update(total=m.total, progress=m.done)
        self.checks_run = m.total
        self.set_status(f"Scanning: {m.done}/{m.total} checks, {render.plural(len(self.findings), 'finding')}")
        self.schedule_refresh()

    def on_scan_completed(self, m: ScanCompleted) -> None:
        if m.generation != self.generation:
            return
        self.scanning = False
        self.note_waivers(m.findings)
        self.findings = {f.key: f for f in m.findings}
        self.marked &= {k for k, f in self.findings.items() if self._fixable(f)}
        checks = self.checks_run or len({f.id for f in m.findings})
        self.query_one(ProgressBar).display = False
        self.set_status(f"Scanned {render.plural(checks, 'check')}: {render.plural(len(m.findings), 'finding')} "
                        "(one per check and subject).")
        self.refresh_table()

    def on_scan_failed(self, m: ScanFailed) -> None:
        if m.generation != self.generation:
            return
        self.scanning = False
        self.query_one(ProgressBar).display = False
        self.set_status(Text(f"The scan failed: {m.error}", style="bold red"))

    def schedule_refresh(self) -> None:
        """Redraw the table now if it is empty, else at most ten times a second while scanning."""
        if self._refresh_pending:
            return
        if not self.query_one(DataTable).row_count:
            self.refresh_table()
            return
        self._refresh_pending = True

        def later() -> None:
            self._refresh_pending = False
            self.refresh_table()

        self.set_timer(0.1, later)

    # ------------------------------------------------------------------ the table
    def visible(self) -> list[Finding]:
        statuses = render.FILTERS[self.filter]
        shown = [f for f in self.findings.values() if render.matches(f, statuses, self.search)
                 and (self.min_severity is None or f.severity >= self.min_severity)
                 and not (self.filter == "todo" and f.waiver)]  # an accepted risk is not to do
        return sorted(shown, key=render.SORTS[self.sort])

    def column_widths(self) -> dict[str, int]:
        """Fit the columns to the table's width: the subject takes what is left."""
        table = self.query_one(DataTable)
        shown = self.visible() or list(self.findings.values())
        ids = [len(f.id) for f in shown] or [20]
        cis = [len(f.cis or "") for f in shown] or [4]
        w = {"status": 8, "severity": 8, "cis": max(3, max(cis)), "check": min(28, max(16, max(ids)))}
        avail = max(table.size.width, 60) - 2  # vertical scrollbar
        used = sum(w.values()) + 2 * (len(w) + 1)
        # The subject gets what is left: it gives way first, losing its start (its end names the thing).
        w["subject"] = max(14, avail - used)
        return w

    def refresh_table(self) -> None:
        table = self.query_one(FindingsTable)
        if not table.size.width and self.findings:
            # Before the first layout the width is unknown: the table's first Resize fills it
            # (filling it now as well doubled the work before the first paint).
            self.update_counts()
            return
        current = self.current_row_key()
        widths = self.column_widths()
        if (widths, self.sort) != getattr(self, "_widths", None):
            self._widths = (widths, self.sort)
            table.clear(columns=True)
            for label, key in (("Status", "status"), ("Severity", "severity"), ("CIS", "cis"),
                               ("Check", "check"), ("Subject", "subject")):
                sort_key = "section" if key == "cis" else key
                heading = label + (" ▾" if self.sort == sort_key and self.sort != "section" else "")
                table.add_column(heading, key=key, width=widths[key])
        else:
            table.clear()
        table.section_rows = set()
        shown = self.visible()
        by_section: dict[str, list[Finding]] = {}  # a section row counts the rows shown under it
        for f in shown:
            by_section.setdefault(f.section, []).append(f)
        last_section = None
        first_finding_row = None
        grouped = self.sort == "section"
        if not self._rows_painted and shown:
            # The first rows on screen: a screenful first (a host with a hundred containers has
            # hundreds of rows, each measured by the table), the rest once that frame is drawn.
            limit = self.app.size.height + 10
            self._rest_pending = len(shown) > limit
            shown = shown[:limit]
            table.after_first_rows = self._first_rows_painted
        for f in shown:
            if grouped and f.section != last_section:
                last_section = f.section
                summary = render.section_summary(by_section[f.section], render.FILTERS[self.filter],
                                                  widths["subject"])
                title = render.SECTIONS.get(f.section, f.section)
                if len(title) > widths["check"]:
                    title = render.SHORT_SECTIONS.get(f.section, title)
                table.section_rows.add(table.row_count)
                table.add_row(
                    "", "", Text(f.section if f.section != "notes" else "—", style="bold"),
                    Text(render.ellipsize(title, widths["check"]), style="bold"),
                    Text(summary, style="" if self.app.no_color else "dim"),
                    key=f"s{SEP}{f.section}",
                )
            if first_finding_row is None:
                first_finding_row = table.row_count
            table.add_row(
                self.status_cell(f),
                render.severity_text(f.severity, self.app.no_color),
                f.cis or "",
                render.ellipsize(f.id, widths["check"]),
                render.tail(render.safe_text(f.subject), widths["subject"]),
                key=row_key_of(f),
            )
        self.update_counts()
        try:
            row = table.get_row_index(current) if current is not None else None
        except Exception:  # the row is filtered out now
            row = None
        if (row is None or row in table.section_rows) and first_finding_row is not None:
            row = first_finding_row  # rest on a finding, not on a section heading
        if row is not None:
            table.move_cursor(row=row, animate=False)
        if not table.row_count:
            self._shown_key = None
            note = self.query_one("#detail-note", Static)
            note.update(self.empty_message())
            note.display = True
            if self._markdown is not None:
                self._markdown.display = False
        elif self._markdown is None:
            if self._markdown_ready:
                self.show_detail()
            elif not self._markdown_loading and self._rows_painted:
                # the table first; the Markdown widget's imports (≈0.1 s: markdown-it, pygments) in a
                # thread, once the first rows are drawn (a thread still takes the same one core)
                self._markdown_loading = True
                self._load_markdown()
        else:
            self.show_detail()

    def _first_rows_painted(self) -> None:
        self._rows_painted = True
        self.app.first_paint_done()
        if self._rest_pending:
            self._rest_pending = False
            self.refresh_table()  # the rest of the rows (and the detail pane)
        elif self._markdown is None and not self._markdown_loading:
            self._markdown_loading = True
            self._load_markdown()

    def empty_message(self) -> str:
        """What an empty table means, and how to see more."""
        if self.scanning:
            return "Scanning…"
        if not self.findings:
            return "The scan found nothing to show."
        how = []
        if self.search:
            how.append("Esc clears the search")
        if self.filter != "all":
            how.append("6 shows every status")
        if self.min_severity is not None:
            how.append("v until “any severity” shows every severity")
        shown = [f"status {render.FILTER_LABELS[self.filter]}"]
        if self.min_severity is not None:
            shown.append(f"severity {self.min_severity} and up")
        if self.search:
            shown.append(f"matching “{self.search}”")
        return (f"Nothing matches ({', '.join(shown)}): {len(self.findings)} findings are hidden. "
                + "; ".join(how) + ".")

    def update_counts(self) -> None:
        self.query_one("#counts", Static).update(render.counts_text(
            self.findings.values(), self.filter, self.search, len(self.marked), self.app.no_color,
            shown=len(self.visible()), severity=self.min_severity, sort=self.sort))

    def status_cell(self, f: Finding) -> Text:
        mark = Text("● ", style="bold") if f.key in self.marked else Text("  ")
        if f.waiver:
            return mark + Text("WAIVED", style="italic" if self.app.no_color else "italic dim")
        return mark + render.status_text(f.status, self.app.no_color)

    def note_waivers(self, findings: list[Finding]) -> None:
        problem = self.app.core.mark_waived(findings)
        if problem:
            self.notify(problem, title="Waivers", severity="warning", timeout=10)

    @work(exclusive=True, group="confirm")
    async def action_waive(self) -> None:
        """x: accept the risk of the finding under the cursor (asks for a reason and an expiry)."""
        f = self.finding_at_cursor()
        if f is None:
            return
        if f.waiver:
            self.notify(f"{f.id} is already waived until {f.waiver.get('expires')} ({f.waiver.get('file')}).",
                        severity="warning")
            return
        if f.status == Status.PASS:
            self.notify(f"{f.id} passes: nothing to waive.", severity="warning")
            return
        from dockfix.screens.waiver_modal import WaiverModal

        answer = await self.app.push_screen_wait(WaiverModal(f, self.app.core.waivers_path))
        if answer is None:
            return
        reason, expires = answer
        try:
            w = await asyncio.to_thread(self.app.core.add_waiver, f, reason, expires)
        except Exception as e:  # WaiverError, or the file cannot be written: said, nothing changed
            self.notify(str(e) or type(e).__name__, title="Not waived", severity="error", timeout=10)
            return
        self.notify(f"Waived {f.id} {f.subject} until {w.expires.isoformat()}: {w.where()}", timeout=6)
        self._rescan([f.id])

    def on_findings_table_resized(self) -> None:
        if self.findings:
            self.refresh_table()

    def current_row_key(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        try:
            return table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value
        except Exception:
            return None

    def finding_at_cursor(self) -> Finding | None:
        key = self.current_row_key()
        if not key or not key.startswith("f" + SEP):
            return None
        _, cid, subject = key.split(SEP, 2)
        return self.findings.get((cid, subject))

    def show_detail(self) -> None:
        key = self.current_row_key()
        if key is None:
            return
        if key.startswith("s" + SEP):
            section = key.split(SEP, 1)[1]
            items = [f for f in self.findings.values() if f.section == section]
            text = render.section_markdown(section, items)
        else:
            f = self.finding_at_cursor()
            if f is None:
                return
            text = render.finding_markdown(f)
        self._show_markdown(text, key=key + SEP + text)

    @work(thread=True, group="markdown")
    def _load_markdown(self) -> None:
        """Import the Markdown widget (markdown-it, pygments: ~80 modules) in a thread, so that the
        event loop keeps answering keys meanwhile; then show the detail."""
        import textual.widgets._markdown  # noqa: F401

        self._markdown_ready = True
        try:
            self.app.call_from_thread(self.show_detail)
        except RuntimeError:  # the app is closing
            pass

    def _show_markdown(self, text: str, key: str) -> None:
        if key == self._shown_key:
            return
        self._shown_key = key
        pane = self.query_one("#detail", VerticalScroll)
        self.query_one("#detail-note", Static).display = False
        if self._markdown is None:
            from textual.widgets import Markdown

            self._markdown = Markdown(text, id="detail-md")
            pane.mount(self._markdown)
        else:
            self._markdown.display = True
            self._markdown.update(text)
        pane.scroll_home(animate=False)

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        # Render the detail once the cursor rests: holding an arrow key stays smooth.
        if self._detail_timer is not None:
            self._detail_timer.stop()
        self._detail_timer = self.set_timer(0.03, self.show_detail)

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        f = self.finding_at_cursor()
        if f is not None:
            from dockfix.screens.detail_screen import DetailScreen

            self.app.push_screen(DetailScreen(f, self))

    # ------------------------------------------------------------------ filters and search
    def action_cycle_filter(self) -> None:
        names = list(render.FILTERS)
        self.action_filter(names[(names.index(self.filter) + 1) % len(names)])

    def action_filter(self, name: str) -> None:
        self.filter = name
        self.refresh_table()

    async def action_search(self) -> None:
        box = self.search_box()
        if box is None:  # made on the first `/`: one widget less before the first paint
            box = Input(placeholder="search: words in id, title, subject, evidence (Enter to keep, Esc to clear)",
                        id="search")
            await self.mount(box, before=self.query_one("#body"))
        box.display = True
        self.set_focus(box)  # at once: keys typed right after `/` go to the box

    def search_box(self) -> Input | None:
        boxes = self.query("#search")
        return boxes.first(Input) if boxes else None

    @on(Input.Changed, "#search")
    def _search_changed(self, event: Input.Changed) -> None:
        self.search = event.value.strip()
        self.refresh_table()

    @on(Input.Submitted, "#search")
    def _search_done(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            event.input.display = False
        self.set_focus(self.query_one(DataTable))

    def action_clear(self) -> None:
        """Esc clears the search; marks stay (u clears them, after asking)."""
        box = self.search_box()
        if box is not None and (box.display or self.search):
            box.value = ""
            box.display = False
            self.search = ""
            self.set_focus(self.query_one(DataTable))
            self.refresh_table()
        elif self.marked:
            self.notify(f"{render.plural(len(self.marked), 'finding')} marked: u clears the marks.", timeout=3)

    def action_cycle_sort(self, name: str | None = None) -> None:
        names = list(render.SORTS)
        self.sort = name or names[(names.index(self.sort) + 1) % len(names)]
        self.refresh_table()

    @on(DataTable.HeaderSelected)
    def _heading(self, event: DataTable.HeaderSelected) -> None:
        key = event.column_key.value or "section"
        self.action_cycle_sort("section" if key == "cis" or key == self.sort else key)

    def action_cycle_severity(self) -> None:
        levels = render.SEVERITY_FILTERS
        self.min_severity = levels[(levels.index(self.min_severity) + 1) % len(levels)]
        self.refresh_table()
        self.notify(f"Severity: {'any' if self.min_severity is None else f'{self.min_severity} and up'}.",
                    timeout=2)

    def action_copy(self) -> None:
        f = self.finding_at_cursor()
        if f is None or not f.manual_check:
            self.notify("This finding has no command to check it by hand.", severity="warning")
            return
        from dockfix.screens.copy import copy_command

        self.notify(copy_command(self.app, f.manual_check), title="Command copied", timeout=8)

    # ------------------------------------------------------------------ marking
    def _fixable(self, f: Finding) -> bool:
        return f.status == Status.FAIL and bool(f.fix) and f.fix.get("safety") != Safety.MANUAL.value

    def action_mark(self) -> None:
        f = self.finding_at_cursor()
        if f is None:
            return
        self.toggle_mark(f)
        table = self.query_one(FindingsTable)
        if table.cursor_row < table.row_count - 1:
            table.action_cursor_down()  # skips the next section heading

    def toggle_mark(self, f: Finding) -> None:
        if not self._fixable(f):
            why = "it passes" if f.status != Status.FAIL else (
                "its fix is manual: follow the remediation" if f.fix else "dockfix has no automatic fix for it")
            self.notify(f"{f.id} cannot be marked: {why}.", severity="warning")
            return
        if f.key in self.marked:
            self.marked.discard(f.key)
        else:
            self.marked.add(f.key)
        table = self.query_one(DataTable)
        try:
            table.update_cell(row_key_of(f), "status", self.status_cell(f))
        except Exception:
            pass
        self.update_counts()

    def action_mark_all(self) -> None:
        """Mark every fixable finding the table shows (filter, severity and search apply)."""
        fixable = [f for f in self.visible() if self._fixable(f)]
        if not fixable:
            self.notify("None of the findings shown has an automatic fix to mark.", severity="warning")
            return
        self.marked |= {f.key for f in fixable}
        self.refresh_table()
        self.notify(f"Marked {render.plural(len(fixable), 'finding')} shown "
                    f"({len(self.marked)} marked in all); d reviews, a applies.", timeout=4)

    @work(exclusive=True, group="confirm")
    async def action_unmark_all(self) -> None:
        if not self.marked:
            self.notify("Nothing is marked.", timeout=2)
            return
        if len(self.marked) > 1:
            from dockfix.screens.confirm_modal import ConfirmModal

            ok = await self.app.push_screen_wait(ConfirmModal(
                f"Clear all {len(self.marked)} marks?",
                "\n".join(f"  {cid} — {subject}" for cid, subject in sorted(self.marked)), yes="Clear"))
            if not ok:
                return
        self.marked.clear()
        self.refresh_table()

    def targets(self) -> list[Finding]:
        """The marked findings, or else the one under the cursor."""
        if self.marked:
            return [self.findings[k] for k in sorted(self.marked, key=lambda k: render.order_key(self.findings[k]))
                    if k in self.findings]
        f = self.finding_at_cursor()
        return [f] if f is not None else []

    # ------------------------------------------------------------------ diff and apply
    def action_diff(self, finding: Finding | None = None) -> None:
        found = [finding] if finding else self.targets()
        self._start_plan(found, "diff")

    def action_apply(self, finding: Finding | None = None) -> None:
        if self.app.refusal:
            self.notify(f"Cannot apply: {self.app.refusal}", severity="error", timeout=8)
            return
        self._start_plan([finding] if finding else self.targets(), "apply")

    def _start_plan(self, found: list[Finding], purpose: str) -> None:
        found = [f for f in found if f is not None]
        fixable = [f for f in found if self._fixable(f)]
        if not fixable:
            f = found[0] if found else None
            if f is None:
                self.notify("Select a finding first.", severity="warning")
            else:
                self.notify(
                    f"{f.id}: nothing to {'preview' if purpose == 'diff' else 'apply'} — "
                    + ("it does not fail." if f.status != Status.FAIL else
                       "its fix is manual." if f.fix else "there is no automatic fix."),
                    severity="warning")
            return
        self.set_busy(f"Planning {render.plural(len(fixable), 'fix')}…")
        self._plan(fixable, purpose)

    @work(thread=True, exclusive=True, group="plan")
    def _plan(self, found: list[Finding], purpose: str) -> None:
        app = self.app
        try:
            self.session = app.core.session(app.new_context())
            plan = self.session.plan(found, include_disruptive=True)
        except Exception as e:
            self.post_message(PlanFailed(f"{type(e).__name__}: {e}" if not str(e) else str(e)))
            return
        self.post_message(PlanBuilt(plan, found, purpose))

    def on_plan_failed(self, m: PlanFailed) -> None:
        self.rest()
        from dockfix.screens.confirm_modal import MessageModal

        self.app.push_screen(MessageModal("The fix could not be planned", m.error, error=True))

    def on_plan_built(self, m: PlanBuilt) -> None:
        self.rest()
        if m.purpose == "diff":
            from dockfix.screens.diff_screen import DiffScreen

            def done(result: Any) -> None:
                if result == "apply":
                    self.action_apply_plan(m.plan, m.findings)

            self.app.push_screen(DiffScreen(m.plan), done)
        else:
            self.action_apply_plan(m.plan, m.findings)

    def action_apply_plan(self, plan: Plan, findings: list[Finding]) -> None:
        if self.app.refusal:
            self.notify(f"Cannot apply: {self.app.refusal}", severity="error", timeout=8)
            return
        self.confirm_and_apply(plan, findings)

    @work(exclusive=True, group="confirm")
    async def confirm_and_apply(self, plan: Plan, findings: list[Finding]) -> None:
        """List what will change, confirm; confirm each disruptive fix on its own; apply as one."""
        from dockfix.screens.confirm_modal import ConfirmModal, describe_plan, split_plan, waived_lines

        applicable, manual = split_plan(plan)
        waived = list(getattr(plan, "waived", None) or [])
        if not applicable:
            notes = "; ".join([n for it in manual for n in (getattr(it, "notes", None) or [])]
                              + waived_lines(waived))
            self.notify("Nothing in this plan can be applied automatically." + (f" {notes}" if notes else ""),
                        severity="warning", timeout=8)
            return
        ok = await self.app.push_screen_wait(ConfirmModal(
            f"Apply {render.plural(len(applicable), 'fix')} as one transaction?",
            describe_plan(applicable, manual, waived)
            + "\n\nEverything is journaled: the journal (t) rolls it back byte for byte.",
            yes="Apply",
        ))
        if not ok:
            self.notify("Nothing was changed.", timeout=3)
            return
        declined: set[tuple[str, str]] = set()
        for item in applicable:
            if item.safety == Safety.DISRUPTIVE:
                ok = await self.app.push_screen_wait(ConfirmModal(
                    f"Disruptive fix: {item.check_id}",
                    f"{item.title}\nsubject: {item.subject}\n\nimpact: {item.impact}\n\n"
                    "This fix changes how running things behave. Apply it too?",
                    yes="Apply it", danger=True,
                ))
                if not ok:
                    declined.add((item.check_id, item.subject))
        if declined:
            # Fixes of one file build on each other: plan the rest again without the declined ones,
            # and show again (and ask again about) every kept fix whose diff changed.
            self.set_busy("Planning again without the declined fixes…")
            try:
                replan = await asyncio.to_thread(self.session.decline, plan, declined)
            except Exception as e:
                self.rest()
                self.post_message(PlanFailed(str(e) or type(e).__name__))
                return
            self.rest()
            plan = replan.plan
            if not split_plan(plan)[0]:
                self.notify("Nothing was changed.", timeout=3)
                return
            if replan.changed:
                from dockfix.screens.diff_screen import DiffScreen

                again = dataclasses.replace(plan, items=replan.changed)
                answer = await self.app.push_screen_wait(DiffScreen(
                    again, title="Without the declined fixes, these fixes change to"))
                if answer != "apply":
                    self.notify("Nothing was changed.", timeout=3)
                    return
        self.set_busy(f"Applying {render.plural(len(split_plan(plan)[0]), 'fix')}…")
        self._apply(plan)

    @work(thread=True, exclusive=True, group="apply")
    def _apply(self, plan: Plan) -> None:
        try:
            result = self.session.apply(plan)
            verdicts = self.session.verify(plan) if result.txid and not result.error else []
        except Exception as e:  # refused before changing anything (drift, another apply running)
            result, verdicts = _Failure(str(e) or type(e).__name__), []
        self.post_message(FixesApplied(plan, result, verdicts))

    def on_fixes_applied(self, m: FixesApplied) -> None:
        from dockfix.screens.confirm_modal import MessageModal, describe_changes

        r = m.result
        ids = sorted({item.check_id for item in m.plan.items})
        if isinstance(r, _Failure):
            self.app.push_screen(MessageModal("The fixes were not applied", f"{r.error}\n\nNothing was changed.",
                                              error=True))
            self.set_status("Apply refused; nothing was changed.")
        elif r.error or r.rolled_back:
            body = f"{r.error or 'the apply did not complete'}\n\n"
            if r.rolled_back:
                body += ("Everything it had changed was rolled back (transaction "
                         f"{r.txid}):\n" + describe_changes(m.plan) + "\n\nThe files are as they were before.")
            else:
                body += "Open the journal (t) to see what was recorded."
            self.app.push_screen(MessageModal("The fixes were not applied", body, error=True))
            self.set_status("Apply failed; rolled back." if r.rolled_back else "Apply failed.")
        else:
            self.marked -= {(i.check_id, i.subject) for i in m.plan.items}
            from dockfix.screens.confirm_modal import split_plan

            items = split_plan(m.plan)[0]
            n = sum(len(it.changes) for it in items)  # as the journal lists them: one per change
            actions = list(getattr(r, "actions", None) or [])
            not_fixed = [v for v in m.verdicts if not v.fixed]
            self.notify(f"Applied {render.plural(len(items), 'fix')} with {render.plural(n, 'change')} "
                        f"in transaction {r.txid} (t: the journal)."
                        + "".join(f"\nNOT FIXED {v.check_id} {v.subject} ({v.status}: {v.evidence})" for v in not_fixed)
                        + "".join(f"\n{a}" for a in actions), timeout=10,
                        severity="warning" if not_fixed else "information")
            self.set_status(f"Applied transaction {r.txid}; rescanning…")
        self._rescan(ids)

    @work(thread=True, exclusive=False, group="rescan")
    def _rescan(self, ids: list[str]) -> None:
        app = self.app
        try:
            ctx = app.new_context()
            found = app.core.rescan_checks(ctx, ids)
        except Exception as e:
            self.post_message(ScanFailed(f"{type(e).__name__}: {e}", self.generation))
            return
        self.post_message(FindingsRescanned(ids, found))

    def on_findings_rescanned(self, m: FindingsRescanned) -> None:
        ids = set(m.check_ids)
        self.note_waivers(m.findings)
        self.findings = {k: f for k, f in self.findings.items() if f.id not in ids}
        for f in m.findings:
            self.findings[f.key] = f
        self.marked &= {k for k, f in self.findings.items() if self._fixable(f)}
        self._shown_key = None
        self.refresh_table()
        c = Counter(f.status.value for f in m.findings)
        self.set_status(
            f"Rescanned {', '.join(m.check_ids)}: " + ", ".join(f"{n} {s}" for s, n in sorted(c.items())) + "."
        )

    # ------------------------------------------------------------------ other pages
    def action_journal(self) -> None:
        from dockfix.screens.journal_screen import JournalScreen

        def back(changed: Any) -> None:
            if changed:
                self.start_scan()

        self.app.push_screen(JournalScreen(), back)

    def action_rescan(self) -> None:
        self.start_scan()


class _Failure:
    """An apply that raised before returning a result: nothing was applied."""

    def __init__(self, error: str) -> None:
        self.error, self.rolled_back, self.applied, self.txid = error, False, [], None
