"""One finding on a whole page: everything there is to know about it."""

from __future__ import annotations

from typing import Protocol

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Markdown, Static

from dockfix.model import Finding
from dockfix.screens import render


class FindingActions(Protocol):
    """What the detail page asks of the findings page (which owns marks, diffs and applies)."""

    marked: set[tuple[str, str]]

    def action_diff(self, finding: Finding | None = None) -> None: ...

    def action_apply(self, finding: Finding | None = None) -> None: ...

    def toggle_mark(self, finding: Finding) -> None: ...


class DetailScreen(Screen):
    HELP_TITLE = "finding's page"
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", tooltip="back to the findings"),
        Binding("d", "diff", "Diff", tooltip="review the fix as a diff"),
        Binding("space", "mark", "Mark", tooltip="mark / unmark it for fixing with others"),
        Binding("a", "apply", "Apply", tooltip="apply its fix, after a confirmation"),
        Binding("c", "copy", "Copy", tooltip="copy the command to check it by hand (OSC 52, and written to a file)"),
    ]

    def __init__(self, finding: Finding, findings: FindingActions) -> None:
        super().__init__()
        self.finding, self.findings_screen = finding, findings

    def compose(self) -> ComposeResult:
        yield Static(f"Finding {self.finding.cis or self.finding.id} · {self.finding.subject}", id="banner")
        with VerticalScroll(id="detail-page"):
            yield Markdown(render.finding_markdown(self.finding))
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#detail-page").focus()

    def action_diff(self) -> None:
        self.findings_screen.action_diff(self.finding)

    def action_apply(self) -> None:
        self.findings_screen.action_apply(self.finding)

    def action_copy(self) -> None:
        if not self.finding.manual_check:
            self.notify("This finding has no command to check it by hand.", severity="warning")
            return
        from dockfix.screens.copy import copy_command

        self.notify(copy_command(self.app, self.finding.manual_check), title="Command copied", timeout=8)

    def action_mark(self) -> None:
        self.findings_screen.toggle_mark(self.finding)
        marked = self.finding.key in self.findings_screen.marked
        self.notify(f"{self.finding.id} {'marked' if marked else 'unmarked'}.", timeout=2)
