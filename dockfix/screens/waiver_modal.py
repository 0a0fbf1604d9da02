"""`x`: accept a finding's risk — ask for the reason and the expiry date of the waiver."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

#: The expiry offered: a quarter from today (a waiver is a decision to look again, not forever).
DEFAULT_DAYS = 90


class WaiverModal(ModalScreen["tuple[str, dt.date] | None"]):
    """Dismisses with (reason, expiry) or None. Enter in the date field (or the button) confirms."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", tooltip="nothing is written")]

    def __init__(self, finding: Any, path: str | None) -> None:
        super().__init__()
        self.finding, self.path = finding, path

    def compose(self) -> ComposeResult:
        f = self.finding
        today = dt.datetime.now(dt.timezone.utc).date()
        with Vertical(id="dialog"):
            yield Static(Text(f"Waive {f.id} for {f.subject}?", style="bold"), id="dialog-title")
            yield Static(Text(f"A waiver accepts the risk until it expires: the finding stays {f.status.value.upper()} "
                              f"but is shown as waived and no longer counts. Written to {self.path}."))
            yield Label("Reason (required)")
            yield Input(placeholder="why the risk is accepted", id="waiver-reason")
            yield Label("Expires (YYYY-MM-DD; the waiver holds through that day)")
            yield Input(value=(today + dt.timedelta(days=DEFAULT_DAYS)).isoformat(), id="waiver-expires")
            yield Static("", id="waiver-error")
            with Horizontal(id="dialog-buttons"):
                yield Button("Waive (Enter)", variant="primary", id="yes")
                yield Button("Cancel (Esc)", id="no")

    def on_mount(self) -> None:
        self.query_one("#waiver-reason", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "waiver-reason":
            self.query_one("#waiver-expires", Input).focus()
        else:
            self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "yes":
            self._submit()
        else:
            self.dismiss(None)

    def _submit(self) -> None:
        reason = " ".join(self.query_one("#waiver-reason", Input).value.split())
        text = self.query_one("#waiver-expires", Input).value.strip()
        error = self.query_one("#waiver-error", Static)
        if not reason:
            error.update(Text("A waiver needs a reason.", style="bold red"))
            self.query_one("#waiver-reason", Input).focus()
            return
        try:
            expires = dt.date.fromisoformat(text)
        except ValueError:
            error.update(Text(f"{text!r} is not a date: YYYY-MM-DD.", style="bold red"))
            self.query_one("#waiver-expires", Input).focus()
            return
        if expires < dt.datetime.now(dt.timezone.utc).date():
            error.update(Text("That date is in the past.", style="bold red"))
            return
        self.dismiss((reason, expires))

    def action_cancel(self) -> None:
        self.dismiss(None)
