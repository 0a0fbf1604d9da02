"""`?`: the keys, and what the words on screen mean."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# dockfix — keys

| Key | Findings page |
|---|---|
| ↑ ↓ PgUp PgDn | move through the findings |
| Enter | open the finding on its own page |
| Space | mark / unmark a finding to fix (several make one transaction) |
| d | review the diff of the marked findings' fixes (or the selected one) |
| a | apply them, after a confirmation that lists every change |
| f | cycle the filter: to do → fail → manual → error → pass → all |
| 1 … 6 | the same filters directly |
| / | search (id, title, subject, evidence); Esc clears |
| r | scan again |
| j | the journal: past transactions, roll one back |
| Esc | clear the search, then the marks |
| ? | this help · q quits |

| Key | Diff, detail and journal pages |
|---|---|
| a | apply what is shown (diff page) |
| u | roll back the selected transaction (journal page) |
| Esc | back |

**Statuses**: FAIL — the host does not meet the check; ERROR — it could not be evaluated
(the message names the file); MANUAL — a person must judge; PASS; SKIP — not applicable here.

**Fix safety**: *safe* fixes change a file's content, owner or mode and are applied together;
*disruptive* fixes change how running things behave and are confirmed one by one; *manual*
fixes are shown, never applied.

Every apply is one transaction in the write-ahead journal and can be rolled back byte for byte,
owner and mode included. A rollback refuses when a file changed since; the message names it.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Markdown(HELP)

    def on_mount(self) -> None:
        self.query_one("#help").focus()

    def action_close(self) -> None:
        self.dismiss(None)
