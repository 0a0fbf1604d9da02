"""A scan started before the interface is up (no Textual here).

`dockfix` with no subcommand starts the scan first and imports Textual while it runs, so that the
scan and the interface's start-up overlap. Where the system can fork, the scan runs in a child
process (:class:`ProcessScan`): the checks' imports, the engine's answers (HTTP, JSON) and the
checks themselves then take the machine's second core instead of competing for the app's one
(Python threads share one). Otherwise, and whenever the child cannot hand its findings back, the
scan runs in a thread of the app (:class:`BackgroundScan`). Either way the findings page gets the
same events: progress is buffered until the page listens; from then on it is handed over as it
comes, in order.
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
import threading
from typing import Any, Callable

Listener = Callable[[str, Any], None]
#: Checks --only/--skip against the checks (run before the scan): the problem as one line, or None.
Validate = Callable[[], "str | None"]


class BackgroundScan:
    """The scan in a thread of this process."""

    def __init__(self, scan: Callable[..., Any], ctx: Any, validate: Validate | None = None) -> None:
        self.ctx = ctx
        self._scan = scan
        self._lock = threading.RLock()
        self._backlog: list[tuple[str, Any]] = []
        self._listener: Listener | None = None
        self._problem = validate() if validate is not None else None
        self.thread = threading.Thread(target=self._run, name="dockfix-scan", daemon=True)
        if self._problem is None:
            self.thread.start()

    def selection_problem(self) -> str | None:
        """What is wrong with --only/--skip (then nothing is scanned), or None."""
        return self._problem

    def _run(self) -> None:
        try:
            result = self._scan(self.ctx, on_progress=lambda done, total, found: self._emit(
                "progress", (done, total, list(found))))
        except Exception as e:  # reported on the page, never a crash
            self._emit("failed", describe(e))
        else:
            self._emit("completed", list(result.findings))

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

    def close(self) -> None:
        """Nothing to end: the thread is a daemon."""


def describe(e: BaseException) -> str:
    """A failed scan, as the findings page shows it."""
    return f"{type(e).__name__}: {e}"


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


# ---------------------------------------------------------------------- the scan in a child process
#: Message kinds on the pipe: one byte, then the length (4 bytes) and the pickled payload.
KINDS = {b"s": "selection", b"p": "progress", b"c": "completed", b"f": "failed", b"x": "fallback"}
CODES = {v: k for k, v in KINDS.items()}
HEADER = struct.Struct("!cI")


class _Raw:
    """A payload still pickled: decoded only if it is handed over (a finished scan's progress never is)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class ProcessScan(BackgroundScan):
    """The scan in a child process forked now, before Textual is imported. The child (this
    process's copy: the context, the scan function, the team notes) validates the selection, scans,
    and sends its events back through a pipe, pickled; this process reads them in a thread. The
    child ends with this process (PR_SET_PDEATHSIG), is killed by :meth:`close` if it still runs
    when the app quits, and is always waited for (no zombie). If the findings cannot be pickled,
    the child says so and the scan is run here, in a thread, as :class:`BackgroundScan` does."""

    def __init__(self, scan: Callable[..., Any], ctx: Any, validate: Validate | None = None) -> None:
        self.ctx = ctx
        self._scan = scan
        self._lock = threading.RLock()
        self._backlog: list[tuple[str, Any]] = []
        self._listener: Listener | None = None
        self._problem: str | None = None
        self._selected = threading.Event()
        self._reaped = False
        self._ended = False  # a completed, failed or fallback event came
        parent = os.getpid()
        for stream in _std_streams():
            stream.flush()  # nothing buffered here may be written twice
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(r)
            _child(scan, ctx, validate, w, parent)
        os.close(w)
        self.pid = pid
        self._pipe = os.fdopen(r, "rb")
        self.thread = threading.Thread(target=self._read, name="dockfix-scan-reader", daemon=True)
        self.thread.start()

    def selection_problem(self) -> str | None:
        self._selected.wait()
        return self._problem

    def _read(self) -> None:
        problem = None
        try:
            while True:
                head = self._pipe.read(HEADER.size)
                if len(head) < HEADER.size:
                    break
                code, size = HEADER.unpack(head)
                data = self._pipe.read(size)
                if len(data) < size:
                    break
                kind = KINDS.get(code)
                if kind == "selection":
                    self._problem = pickle.loads(data)
                    self._selected.set()
                elif kind == "fallback":
                    self._ended = True
                    # the findings could not be pickled: scan here (the page gets a fresh start)
                    threading.Thread(target=self._run, name="dockfix-scan", daemon=True).start()
                elif kind is not None:
                    self._ended |= kind != "progress"
                    self._emit(kind, _Raw(data))
        except Exception as e:  # noqa: BLE001 (a broken pipe or message: the scan is reported failed)
            problem = describe(e)
        finally:
            self._pipe.close()
            status = self._reap()
            self._selected.set()
            if not self._ended:
                self._emit("failed", problem or f"the scan process ended before it was done ({status})")

    def _reap(self) -> str:
        with self._lock:
            if self._reaped:
                return "ended"
            try:  # it has ended, or stopped talking: never wait on a child that still runs
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _, status = os.waitpid(self.pid, 0)
            self._reaped = True
        if os.WIFSIGNALED(status):
            return f"killed by signal {os.WTERMSIG(status)}"
        return f"exit status {os.waitstatus_to_exitcode(status)}"

    def _emit(self, kind: str, payload: Any) -> None:
        with self._lock:
            if self._listener is None:
                self._backlog.append((kind, payload))
            else:
                self._listener(kind, _decoded(payload))

    def listen(self, listener: Listener) -> None:
        with self._lock:
            backlog = self._backlog
            if any(kind != "progress" for kind, _ in backlog):
                backlog = [e for e in backlog if e[0] != "progress"]  # never decoded
            for kind, payload in _collapsed([(k, _decoded(p)) for k, p in backlog]):
                listener(kind, payload)
            self._backlog = []
            self._listener = listener

    def close(self) -> None:
        """End the child if it still runs (a hanging engine) and wait for it."""
        with self._lock:
            if not self._reaped:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.thread.join(timeout=5)


def _decoded(payload: Any) -> Any:
    return pickle.loads(payload.data) if isinstance(payload, _Raw) else payload


def _std_streams() -> list:
    import sys

    return [s for s in (sys.stdout, sys.stderr) if s is not None]


def _child(scan: Callable[..., Any], ctx: Any, validate: Validate | None, w: int, parent: int) -> None:
    """The child process's whole life: it ends with os._exit and never returns to the caller."""
    try:
        _end_with_parent(parent)
        null = os.open(os.devnull, os.O_RDWR)  # the terminal is the app's: no key read, nothing written
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        lock = threading.Lock()

        def send(kind: str, payload: Any) -> bool:
            try:
                data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:  # an unpicklable finding's data
                return False
            with lock:
                _write_all(w, HEADER.pack(CODES[kind], len(data)) + data)
            return True

        problem = validate() if validate is not None else None
        send("selection", problem)
        if problem is None:
            try:
                result = scan(ctx, on_progress=lambda done, total, found: send("progress", (done, total, list(found))))
            except Exception as e:
                send("failed", describe(e))
            else:
                if not send("completed", list(result.findings)):
                    send("fallback", None)
    except BaseException:  # noqa: BLE001 (the parent reports a child that ended early)
        pass
    finally:
        os._exit(0)


def _end_with_parent(parent: int) -> None:
    """Linux: the child is killed when the app ends, however it ends (SIGTERM, SIGHUP, a crash)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent ended before the line above
        os._exit(0)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def scan_host(ctx: Any, **kw: Any) -> Any:
    """dockfix.scan.scan, imported on the first call: the checks are loaded by the scan (at start,
    in the child process), not by the app before its first paint."""
    from dockfix.scan import scan

    return scan(ctx, **kw)


def start_scan(scan: Callable[..., Any], ctx: Any, validate: Validate | None = None) -> BackgroundScan:
    """The scan in a child process where this system can fork, else in a thread."""
    if hasattr(os, "fork") and os.environ.get("DOCKFIX_SCAN_IN_THREAD") != "1":
        try:
            return ProcessScan(scan, ctx, validate)
        except OSError:
            pass
    return BackgroundScan(scan, ctx, validate)
