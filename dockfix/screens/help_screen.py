"""`?`: every key of the page underneath, generated from its bindings (so it cannot drift), and
what the words on screen mean."""

from __future__ import annotations

from typing import Iterable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import Footer, Static

WORDS = """\
Statuses: FAIL — the host does not meet the check; ERROR — it could not be evaluated (the message
names the file); MANUAL — a person must judge; PASS; SKIP — not applicable here. The counts on top
are findings: one check finds one per subject.

Fix safety: safe fixes change a file's content, owner or mode and are applied together; disruptive
fixes change how running things behave and are confirmed one by one; manual fixes are shown, never
applied. Every apply is one transaction in the journal and can be rolled back byte for byte, owner
and mode included; a rollback refuses when a file changed since, and names it."""

_KEY_NAMES = {"space": "Space", "escape": "Esc", "enter": "Enter", "up": "↑", "down": "↓", "pageup": "PgUp",
              "pagedown": "PgDn", "home": "Home", "end": "End", "left": "←", "right": "→", "tab": "Tab",
              "question_mark": "?", "slash": "/", "ctrl+home": "Ctrl+Home", "ctrl+end": "Ctrl+End",
              "backspace": "Backspace"}


def key_text(binding: Binding) -> str:
    keys = [k.strip() for k in binding.key.split(",")]
    if binding.key_display and len(keys) == 1:
        return binding.key_display
    return " ".join(_KEY_NAMES.get(k, k) for k in keys)


def page_bindings(nodes: Iterable[Widget | type]) -> list[tuple[str, str]]:
    """(keys, what they do) for the bindings of these nodes, first node first; keys that run the
    same action with the same words are joined ("k ↑")."""
    rows: dict[tuple[str, str], list[str]] = {}
    order: list[tuple[str, str]] = []
    for node in nodes:
        cls = node if isinstance(node, type) else type(node)
        for klass in cls.__mro__:
            if not klass.__module__.startswith("dockfix"):
                continue  # Textual's own bindings (scrolling, the command palette) are not ours to list
            for b in klass.__dict__.get("BINDINGS", []):
                if not isinstance(b, Binding) or not b.description:
                    continue
                what = b.description + (f" — {b.tooltip}" if b.tooltip else "")
                ident = (b.action, what)
                if ident not in rows:
                    rows[ident] = []
                    order.append(ident)
                k = key_text(b)
                if k not in rows[ident]:
                    rows[ident].append(k)
    return [(" ".join(rows[i]), i[1]) for i in order]


def help_text(title: str, rows: list[tuple[str, str]]):
    """The keys as a two-column table: a description wraps under itself, not under the keys."""
    from rich.console import Group
    from rich.table import Table

    table = Table(box=None, show_header=False, expand=True, padding=(0, 2, 0, 0))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(ratio=1)
    for keys, what in rows:
        table.add_row(keys, what)
    return Group(Text(f"Keys of the {title}\n", style="bold"), table)


class HelpScreen(ModalScreen[None]):
    """The keys of ``page`` (and of what has its focus, and the app's), then what words mean."""

    BINDINGS = [Binding("escape,question_mark,q", "close", "Close", tooltip="back to the page")]

    def __init__(self, page: Screen, focused: Widget | None = None) -> None:
        super().__init__()
        self.page = page
        nodes: list = [page]
        if focused is not None:
            nodes.append(focused)
        self.rows = page_bindings(nodes + [page.app])
        self.title_text = getattr(page, "HELP_TITLE", None) or type(page).__name__.removesuffix("Screen").lower() + " page"

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(help_text(self.title_text, self.rows), id="help-keys")
            yield Static(WORDS, id="help-words")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#help").focus()

    def action_close(self) -> None:
        self.dismiss(None)
