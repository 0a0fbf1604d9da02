"""The diff preview of a plan: exactly what applying it would change (secrets masked)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from dockfix.plan import Plan
from dockfix.screens import render


class DiffScreen(Screen[str]):
    """Dismisses with "apply" when the user asks to apply what they see."""

    HELP_TITLE = "diff page"
    BINDINGS = [
        Binding("escape", "back", "Back", tooltip="back, nothing changed"),
        Binding("a", "apply", "Apply", tooltip="apply what is shown, after a confirmation"),
    ]

    def __init__(self, plan: Plan, title: str = "Review") -> None:
        super().__init__()
        self.plan = plan
        self.title_text = title

    def compose(self) -> ComposeResult:
        n = len(self.plan.items)
        yield Static(Text.assemble((f"{self.title_text} ", "bold"), render.plural(n, "fix"),
                                   " · secrets are masked · a applies, Esc goes back"), id="banner")
        with VerticalScroll(id="diff-page"):
            diff = self.plan.diff()
            yield Static(render.diff_text(diff, self.app.no_color) if diff.strip() else Text("(no file changes)", style="dim"),
                         id="diff", expand=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#diff-page").focus()

    def action_back(self) -> None:
        self.dismiss("back")

    def action_apply(self) -> None:
        self.dismiss("apply")
