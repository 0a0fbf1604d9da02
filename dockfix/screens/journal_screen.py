"""The journal: past transactions and their changes; roll one back after confirmation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, VerticalScroll
from textual.coordinate import Coordinate
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from dockfix.screens import render

if TYPE_CHECKING:  # types only: the fix core is imported when the journal is opened
    from dockfix.workflow import RollbackResult, TxInfo


class TransactionsLoaded(Message):
    def __init__(self, txs: list[TxInfo], error: str | None = None) -> None:
        super().__init__()
        self.txs, self.error = txs, error


class RolledBack(Message):
    def __init__(self, txid: str, result: RollbackResult | None, error: str | None = None) -> None:
        super().__init__()
        self.txid, self.result, self.error = txid, result, error


def _count(value: Any) -> int:
    return len(value) if isinstance(value, (list, tuple, set, dict)) else int(value or 0)


def item_line(item: Any) -> str:
    if isinstance(item, dict):
        return f"[{item.get('safety', '?')}] {item.get('check_id', '?')}  {item.get('subject', '')}".rstrip()
    return str(item)


def change_line(change: Any) -> str:
    if isinstance(change, dict):
        text = change.get("summary") or f"{change.get('kind', 'change')} {change.get('target', '')}"
        step = change.get("step")
        done = "" if change.get("done", True) else "  (not done)"
        return f"{step}. {text}{done}" if step is not None else text + done
    return str(change)


def tx_text(tx: TxInfo) -> Text:
    t = Text()
    t.append(f"Transaction {tx.txid}\n", style="bold")
    t.append(f"state: {tx.state} · by {tx.user}\n")
    for label in ("error", "damaged"):
        value = getattr(tx, label, None)
        if value:
            t.append(f"{label}: {value}\n", style="bold")
    items = [item_line(i) for i in (tx.items or [])]
    if items:
        t.append("\nFixes\n", style="bold underline")
        for line in items:
            t.append(f"  {line}\n")
    changes = [change_line(c) for c in (tx.changes or [])]
    if changes:
        t.append("\nChanges\n", style="bold underline")
        for line in changes:
            t.append(f"  {line}\n")
    return t


class JournalScreen(Screen[bool]):
    """Dismisses with True when something was rolled back (the findings need a rescan)."""

    HELP_TITLE = "journal"
    BINDINGS = [
        Binding("escape", "back", "Back", tooltip="back to the findings (scanned again after a rollback)"),
        Binding("u", "rollback", "Roll back", tooltip="roll the selected transaction back, after a confirmation"),
        Binding("r", "reload", "Reload", tooltip="read the journal again"),
        Binding("j,down", "cursor_down", "Down", show=False, tooltip="next transaction"),
        Binding("k,up", "cursor_up", "Up", show=False, tooltip="previous transaction"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.txs: list[TxInfo] = []
        self.changed = False

    def compose(self) -> ComposeResult:
        yield Static(Text.assemble(("Journal", "bold"), " · transactions on ", self.app.host_label,
                                   " · u rolls back the selected one"), id="banner")
        with Container(id="journal-body"):
            yield DataTable(id="tx-table", cursor_type="row")
            with VerticalScroll(id="tx-detail-scroll"):
                yield Static("Loading the journal…", id="tx-detail")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for label, key in (("Transaction", "txid"), ("Time (UTC)", "time"), ("User", "user"),
                           ("Fixes", "items"), ("Changes", "changes"), ("State", "state")):
            table.add_column(label, key=key)
        table.focus()
        self.action_reload()

    def action_reload(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="journal")
    def _load(self) -> None:
        app = self.app
        try:
            txs = app.core.session(app.new_context()).transactions()
        except Exception as e:
            self.post_message(TransactionsLoaded([], str(e) or type(e).__name__))
            return
        self.post_message(TransactionsLoaded(txs))

    def on_transactions_loaded(self, m: TransactionsLoaded) -> None:
        table = self.query_one(DataTable)
        table.clear()
        self.txs = list(reversed(m.txs))  # newest first
        for tx in self.txs:
            state = str(tx.state)
            table.add_row(
                str(tx.txid), self.app.time_format(tx.time), str(tx.user), str(_count(tx.items)), str(_count(tx.changes)),
                Text(state, style="green" if state == "applied" else "dim" if "rolled" in state else "yellow"),
                key=str(tx.txid),
            )
        detail = self.query_one("#tx-detail", Static)
        if m.error:
            detail.update(Text(f"The journal could not be read: {m.error}", style="bold red"))
        elif not self.txs:
            detail.update("No transactions yet: nothing has been applied on this host.")
        else:
            self.show_detail()

    def selected(self) -> TxInfo | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value
        return next((t for t in self.txs if str(t.txid) == key), None)

    def show_detail(self) -> None:
        tx = self.selected()
        if tx is not None:
            self.query_one("#tx-detail", Static).update(tx_text(tx))

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_detail()

    @work(exclusive=True, group="confirm")
    async def action_rollback(self) -> None:
        from dockfix.screens.confirm_modal import ConfirmModal

        tx = self.selected()
        if tx is None:
            self.notify("No transaction selected.", severity="warning")
            return
        if self.app.refusal:
            self.notify(f"Cannot roll back: {self.app.refusal}", severity="error", timeout=8)
            return
        if "rolled" in str(tx.state):
            self.notify(f"{tx.txid} is already rolled back.", severity="warning")
            return
        if str(tx.state) == "damaged":
            self.notify(f"{tx.txid} is damaged: {tx.damaged}. Use `dockfix rollback` to look at it.",
                        severity="error", timeout=8)
            return
        restores = list(getattr(tx, "restores", None) or [])
        body = "\n".join(["It puts every target of this transaction back as it was before, byte for byte:", ""]
                         + [f"  {line}" for line in restores]
                         + ["", f"(undoing {render.plural(len(tx.changes or []), 'change')}: "
                            + "; ".join(change_line(c) for c in (tx.changes or [])) + ")"])
        ok = await self.app.push_screen_wait(ConfirmModal(f"Roll back transaction {tx.txid}?", body, yes="Roll back"))
        if ok:
            self._rollback(str(tx.txid))

    @work(thread=True, exclusive=True, group="rollback")
    def _rollback(self, txid: str) -> None:
        app = self.app
        try:
            result = app.core.session(app.new_context()).rollback(txid)
        except Exception as e:
            self.post_message(RolledBack(txid, None, str(e) or type(e).__name__))
            return
        self.post_message(RolledBack(txid, result))

    def on_rolled_back(self, m: RolledBack) -> None:
        from dockfix.screens.confirm_modal import MessageModal

        r = m.result
        refused = list(getattr(r, "refused_paths", None) or [])
        if m.error:
            self.app.push_screen(MessageModal(f"Rollback of {m.txid} failed", m.error, error=True))
        elif getattr(r, "damaged", None):
            self.app.push_screen(MessageModal(f"Rollback of {m.txid} stopped", str(r.damaged), error=True))
        elif getattr(r, "already", False):
            self.notify(f"{m.txid} was already rolled back.", severity="warning")
        elif refused:
            self.app.push_screen(MessageModal(
                f"Rollback of {m.txid} refused",
                "These files changed after the transaction, so restoring them would lose those changes:\n\n"
                + "\n".join(f"  {p}" for p in refused)
                + f"\n\nNothing was restored. Look at them first; `dockfix rollback {m.txid} --force` "
                "restores them anyway.",
                error=True,
            ))
        else:
            restored = getattr(r, "restored", []) or []
            n = _count(restored)
            self.changed = True
            actions = list(getattr(r, "actions", None) or [])
            self.notify(f"Rolled back {m.txid}: restored {render.plural(n, 'path')}."
                        + "".join(f"\n{a}" for a in actions), timeout=8)
            if getattr(r, "unrecorded", None):
                self.notify(f"The journal could not record this rollback ({r.unrecorded}): it still shows "
                            f"{m.txid} as applied.", severity="warning", timeout=12)
        self._load()

    def action_cursor_down(self) -> None:
        self.query_one(DataTable).action_cursor_down()

    def action_cursor_up(self) -> None:
        self.query_one(DataTable).action_cursor_up()

    def action_back(self) -> None:
        self.dismiss(self.changed)
