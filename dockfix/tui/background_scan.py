"""A scan started before the interface is up (no Textual here).

`dockfix` with no subcommand starts the scan first and imports Textual while it runs, so that the
engine's answers and the interface's start-up overlap. Progress is buffered until the findings
page listens; from then on it is handed over as it comes, in order.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

Listener = Callable[[str, Any], None]


class BackgroundScan:
    def __init__(self, scan: Callable[..., Any], ctx: Any) -> None:
        self.ctx = ctx
        self._scan = scan
        self._lock = threading.RLock()
        self._backlog: list[tuple[str, Any]] = []
        self._listener: Listener | None = None
        self.thread = threading.Thread(target=self._run, name="dockfix-scan", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            result = self._scan(self.ctx, on_progress=lambda done, total, found: self._emit(
                "progress", (done, total, list(found))))
        except Exception as e:  # reported on the page, never a crash
            self._emit("failed", f"{type(e).__name__}: {e}")
        else:
            self._emit("completed", result)

    def _emit(self, kind: str, payload: Any) -> None:
        with self._lock:
            if self._listener is None:
                self._backlog.append((kind, payload))
            else:
                self._listener(kind, payload)

    def listen(self, listener: Listener) -> None:
        """Hand over what happened so far, then every later event (the listener must not block)."""
        with self._lock:
            for kind, payload in _collapsed(self._backlog):
                listener(kind, payload)
            self._backlog.clear()
            self._listener = listener


def _collapsed(backlog: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """The backlog as few events as say the same: a finished scan as its result alone, progress
    so far as one event (each event is a message and a repaint for the page, before its first paint)."""
    if any(kind != "progress" for kind, _ in backlog):
        return [e for e in backlog if e[0] != "progress"]
    if not backlog:
        return []
    done, total, _ = backlog[-1][1]
    found = [f for _, (_, _, fs) in backlog for f in fs]
    return [("progress", (done, total, found))]
