"""Confirmation (`ModalScreen[bool]`, explicit keys) and a plain message box."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from dockfix.model import Safety

if TYPE_CHECKING:  # types only
    from dockfix.changes import Change
    from dockfix.plan import Plan, PlanItem
from dockfix.screens import render


def split_plan(plan: Plan) -> tuple[list[PlanItem], list[PlanItem]]:
    """Plan items that change something, and those that only advise (manual, or no changes)."""
    applicable, manual = [], []
    for item in plan.items:
        if item.safety == Safety.MANUAL or not item.changes:
            manual.append(item)
        else:
            applicable.append(item)
    return applicable, manual


def change_line(change: Change) -> str:
    """One line for a change: what it does and to which file."""
    for attr in ("summary", "describe"):
        fn = getattr(change, attr, None)
        if callable(fn):
            return str(fn())
        if isinstance(fn, str):
            return fn
    kind = type(change).__name__
    target = getattr(change, "path", None) or getattr(change, "name", None) or getattr(change, "service_id", "")
    return f"{kind} {target}"


def describe_plan(items: list, manual: list | None = None, waived: list | None = None) -> str:
    lines = []
    for item in items:
        lines.append(f"[{item.safety}] {item.check_id} — {item.subject}")
        for c in item.changes:
            lines.append(f"    {change_line(c)}")
    for item in manual or []:
        lines.append(f"[not applied: {item.safety}] {item.check_id} — {item.subject}")
    lines.extend(waived_lines(waived or []))
    return "\n".join(lines)


def waived_lines(waived: list) -> list[str]:
    """The fixes a waiver left out of a plan (Plan.waived), one line each."""
    return [f"[not applied: waived until {w.get('expires')}] {w.get('check_id')} — {w.get('subject')}"
            f" ({w.get('where')}: {w.get('reason')})" for w in waived]


def describe_changes(plan: Plan) -> str:
    return "\n".join(f"  {change_line(c)}" for item in plan.items for c in item.changes)


class ConfirmModal(ModalScreen[bool]):
    """Ask before doing something. `y` (or the button) confirms; `n` or Esc declines."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, title: str, body: str, yes: str = "Yes", no: str = "Cancel", danger: bool = False) -> None:
        super().__init__()
        self.title_text, self.body, self.yes, self.no, self.danger = title, body, yes, no, danger

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="danger" if self.danger else ""):
            yield Static(Text(self.title_text, style="bold"), id="dialog-title")
            with VerticalScroll(id="dialog-body"):
                yield Static(Text(self.body))
            with Horizontal(id="dialog-buttons"):
                yield Button(f"{self.yes} (y)", variant="error" if self.danger else "primary", id="yes")
                yield Button(f"{self.no} (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class MessageModal(ModalScreen[None]):
    """A message that must be read: Enter or Esc closes it."""

    BINDINGS = [Binding("escape,enter,q", "close", "Close")]

    def __init__(self, title: str, body: str, error: bool = False) -> None:
        super().__init__()
        self.title_text, self.body, self.error = title, body, error

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="danger" if self.error else ""):
            yield Static(Text(("ERROR: " if self.error else "") + self.title_text, style="bold"), id="dialog-title")
            with VerticalScroll(id="dialog-body"):
                yield Static(Text(self.body))
            with Horizontal(id="dialog-buttons"):
                yield Button("OK (Enter)", id="ok")

    def on_mount(self) -> None:
        self.query_one("#ok", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)


__all__ = ["ConfirmModal", "MessageModal", "describe_plan", "describe_changes", "split_plan", "render"]
