"""The scan the app starts before Textual: in a child process (dockfix.tui.background_scan.ProcessScan).

The app must show the same as with the scan in a thread: the same findings (also what only the
fixes read, ``Finding.data``), the same failure text, the same --only/--skip errors; the child
must never outlive the app (quit, a hanging engine, SIGTERM) nor stay a zombie.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from app_helpers import failing_tree, make_app, settle
from helpers import REPO

from dockfix.host import Host
from dockfix.scan import Context, scan
from dockfix.tui.background_scan import BackgroundScan, ProcessScan


def context(root: Path) -> Context:
    return Context(host=Host(root=str(root), engine=False))


def events_of(early, timeout: float = 30) -> list[tuple[str, object]]:
    got: list[tuple[str, object]] = []
    done = threading.Event()

    def listener(kind, payload):
        got.append((kind, payload))
        if kind != "progress":
            done.set()

    early.listen(listener)
    assert done.wait(timeout), got
    return got


def gone(pid: int) -> bool:
    """The process no longer runs (reaped, or a zombie of someone else's)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def as_data(findings) -> list:
    return [(f.to_json(), f.data) for f in findings]


def test_child_process_scan_hands_back_what_the_thread_scan_does(tmp_path):
    root = failing_tree(tmp_path / "root")
    early = ProcessScan(scan, context(root))
    assert early.selection_problem() is None
    (kind, found), = events_of(early)[-1:]
    assert kind == "completed"
    assert as_data(found) == as_data(scan(context(root)).findings)
    early.thread.join(5)
    with pytest.raises(ChildProcessError):  # waited for: no zombie
        os.waitpid(early.pid, os.WNOHANG)


def test_progress_is_handed_over_as_it_comes_when_the_page_listens_early(tmp_path):
    root = failing_tree(tmp_path / "root")
    gate = tmp_path / "go"

    def slow_scan(ctx, on_progress=None):
        def progressed(done, total, found):
            while not gate.exists():  # the child waits until the page listens
                time.sleep(0.01)
            on_progress(done, total, found)
        return scan(ctx, on_progress=progressed)

    early = ProcessScan(slow_scan, context(root))
    got: list[str] = []
    finished = threading.Event()
    early.listen(lambda kind, payload: (got.append(kind), kind == "completed" and finished.set()))
    gate.touch()
    assert finished.wait(30)
    assert got.count("progress") > 1 and got[-1] == "completed"


def test_a_failing_scan_reads_the_same_as_in_a_thread(tmp_path):
    def broken(ctx, on_progress=None):
        raise RuntimeError("engine said no")

    texts = []
    for kind in (ProcessScan, BackgroundScan):
        texts.append(events_of(kind(broken, context(tmp_path)))[-1])
    assert texts[0] == texts[1] == ("failed", "RuntimeError: engine said no")


def test_a_scan_process_that_dies_is_reported_as_a_failed_scan(tmp_path):
    def dies(ctx, on_progress=None):
        os.kill(os.getpid(), signal.SIGKILL)

    early = ProcessScan(dies, context(tmp_path))
    assert events_of(early)[-1] == ("failed", "the scan process ended before it was done (killed by signal 9)")
    early.thread.join(5)
    assert gone(early.pid)


def test_a_selection_that_selects_nothing_is_reported_and_nothing_is_scanned(tmp_path):
    early = ProcessScan(scan, context(tmp_path), validate=lambda: "--only: no check or section 'nope'")
    assert early.selection_problem() == "--only: no check or section 'nope'"
    early.thread.join(5)
    assert not early.thread.is_alive() and gone(early.pid)


def test_findings_that_cannot_be_pickled_are_scanned_here_instead(tmp_path):
    root = failing_tree(tmp_path / "root")

    def odd_scan(ctx, on_progress=None):
        result = scan(ctx, on_progress=on_progress)
        result.findings[0].data["callback"] = lambda: None  # not picklable
        return result

    (kind, found), = events_of(ProcessScan(odd_scan, context(root)))[-1:]
    assert kind == "completed"
    assert len(found) == len(scan(context(root)).findings) and callable(found[0].data["callback"])


def test_quitting_kills_a_scan_that_hangs_and_waits_for_it(tmp_path):
    def hangs(ctx, on_progress=None):
        time.sleep(600)

    early = ProcessScan(hangs, context(tmp_path))
    assert not gone(early.pid)
    t = time.monotonic()
    early.close()
    assert time.monotonic() - t < 5
    assert gone(early.pid)
    with pytest.raises(ChildProcessError):
        os.waitpid(early.pid, os.WNOHANG)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
def test_the_child_ends_with_the_app_however_the_app_ends(tmp_path, sig):
    code = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGHUP, signal.SIG_DFL)  # as in a terminal (a test run under nohup ignores it)\n"
        "from dockfix.host import Host\nfrom dockfix.context import Context\n"
        "from dockfix.tui.background_scan import ProcessScan\n"
        "early = ProcessScan(lambda ctx, on_progress=None: time.sleep(600), Context(host=Host(root=sys.argv[1], engine=False)))\n"
        "print(early.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    child = int(p.stdout.readline())
    assert not gone(child)
    p.send_signal(sig)
    p.wait(10)
    deadline = time.monotonic() + 5
    while not gone(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(child)


async def test_the_app_shows_the_same_with_the_scan_in_a_child(tmp_path):
    """Rows, counts and the status line: a ProcessScan taken over by the findings page, as the
    launcher does, and a scan that was over before the page was laid out, against the app scanning
    in its own thread. (Findings that came before the layout were put in columns measured for the
    whole width: the side pane then cut the Subject off, in the real program only.)"""
    root = failing_tree(tmp_path / "root")
    seen = []
    over = BackgroundScan(scan, context(root))
    over.thread.join()
    for early in (None, ProcessScan(scan, context(root)), over):
        app = make_app(root, background_scan=early)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            screen = app.screen
            table = screen.query_one("#table")
            rows = [tuple(str(c) for c in table.get_row_at(i)) for i in range(table.row_count)]
            seen.append((rows, str(screen.query_one("#counts").render()),
                         str(screen.query_one("#progress-label").render())))
    assert seen[0] == seen[1] == seen[2]
    assert "Scanned" in seen[1][2]
    assert ("  FAIL", "low", "1.1.7", "audit-docker-service", "…/docker.service") in seen[1][0]


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            out += [int(c) for c in f.read().split()]
    return out


@pytest.mark.parametrize("how", ["q", "SIGTERM", "SIGHUP"])
def test_the_real_program_leaves_no_scan_process_behind(tmp_path, how):
    """`dockfix` in tmux on an engine that never answers (the scan process is still waiting): after
    q, SIGTERM or SIGHUP the app and its scan process are gone."""
    import shutil
    import socket

    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    from test_app_tmux import Tmux

    sock_path = tmp_path / "slow.sock"
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(sock_path))
    srv.listen(64)  # accepts (the kernel's backlog) and never answers
    root = failing_tree(tmp_path / "root")
    tmux = Tmux("dockfix", tmp_path / "tmux.sock")
    env = f"PYTHONPATH={REPO} TERM=xterm-256color"
    try:
        tmux.run("new-session", "-d", "-s", tmux.name, "-x", "120", "-y", "40",
                 f"exec env {env} {sys.executable} -m dockfix --root {root} --docker-host unix://{sock_path}")
        tmux.wait_for("Scanning")
        app = int(tmux.run("display", "-p", "-t", tmux.name, "#{pane_pid}").strip())
        deadline = time.monotonic() + 10
        while not _children(app) and time.monotonic() < deadline:
            time.sleep(0.05)
        (child,) = _children(app)
        if how == "q":
            tmux.keys("q")
        else:
            os.kill(app, getattr(signal, how))
        deadline = time.monotonic() + 10
        while not (gone(app) and gone(child)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gone(app) and gone(child)
    finally:
        subprocess.run(["tmux", "-S", str(tmux.sock), "kill-server"], capture_output=True)
        srv.close()
