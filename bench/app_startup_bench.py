#!/usr/bin/env python3
"""Benchmark: time from launching `dockfix` (the app) to the first screen with findings on it.

Runs the real program in a real terminal (tmux, 120x40) as a separate process, and reads the pane
until a findings row (a status word and a severity word) is on screen; also notes when the scan
is complete ("Scanned N checks"). The CPU time is read from /proc at that moment: the app's
process (all its threads) and, apart, its scan process (the child it forks for the first scan).
Two cases, with issue 17's targets (medians, on an idle machine):

* files only (`--no-engine`) on a failing host tree: 0.5 s;
* a private dockerd with 100 containers (tests/private_engine.py: its own data root and socket
  under /tmp; the machine's default daemon is never touched): 0.8 s.

By default it launches this checkout (`python3 -m dockfix`, bytecode compiled first); with
`--installed PREFIX` it installs the checkout as the README's first command does (scripts/install:
a venv of /usr/bin/python3) into PREFIX and launches PREFIX/bin/dockfix, the program users run.

Not a test: run it by hand (as root, with tmux, dockerd and busybox-static installed):

    python3 bench/app_startup_bench.py               # both cases, 5 runs each
    python3 bench/app_startup_bench.py --no-engine-only --runs 3
    python3 bench/app_startup_bench.py --installed /tmp/dfx-bench-prefix
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # dockfix itself, when it is not installed in this Python
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

TARGETS = {"no-engine": 0.5, "100 containers": 0.8}
#: what is launched: this checkout with the running Python, or (--installed) an installed copy
PROGRAM = [sys.executable, "-m", "dockfix"]
ROW = re.compile(r"\b(FAIL|PASS|MANUAL|ERROR)\s+(info|low|medium|high|critical)\b")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU time (user + system) used so far by a process (all its threads), and by its child
    processes (the app's scan runs in one: live ones, and those it has waited for)."""
    tick = os.sysconf("SC_CLK_TCK")

    def stat(p: int) -> list[int]:
        with open(f"/proc/{p}/stat") as f:
            return [int(x) for x in f.read().rsplit(")", 1)[1].split()[11:15]]

    def children(p: int) -> list[int]:
        out: list[int] = []
        for task in os.listdir(f"/proc/{p}/task"):
            try:
                with open(f"/proc/{p}/task/{task}/children") as f:
                    out += [int(c) for c in f.read().split()]
            except OSError:
                pass
        return out

    utime, stime, cutime, cstime = stat(pid)
    kids = cutime + cstime
    todo = children(pid)
    while todo:
        c = todo.pop()
        try:
            kids += sum(stat(c))
            todo += children(c)
        except OSError:  # ended meanwhile
            pass
    return (utime + stime) / tick, kids / tick


def launch(tree: Path, sock: Path, extra: list[str], env: dict) -> tuple[float, float, tuple[float, float]]:
    """(seconds to the first findings row, seconds to the completed scan, CPU seconds the app and
    its scan process had used when the first findings showed) of one launch."""
    tmux = ["tmux", "-S", str(sock)]
    envs = " ".join(f"{k}={v}" for k, v in env.items())
    cmd = f"exec env {envs} {' '.join(PROGRAM)} --root {tree} {' '.join(extra)}"
    # the terminal is already there (tmux's server runs a keeper session, started in measure()): the
    # time counted is the program's, not a terminal's start-up
    t0 = time.perf_counter()
    subprocess.run(tmux + ["new-session", "-d", "-s", "bench", "-x", "120", "-y", "40", cmd], check=True)
    first = done = cpu = None
    pid = int(subprocess.run(tmux + ["display", "-p", "-t", "bench", "#{pane_pid}"], capture_output=True,
                             text=True).stdout.strip() or 0)
    try:
        while time.perf_counter() - t0 < 60:
            pane = subprocess.run(tmux + ["capture-pane", "-p", "-t", "bench"], capture_output=True,
                                  text=True).stdout
            now = time.perf_counter() - t0
            if first is None and ROW.search(pane):
                first = now
                cpu = cpu_seconds(pid)
            if first is not None and "Scanned" in pane:
                done = now
                break
            # every capture-pane is a tmux client and server round trip (≈5 ms of CPU): polling
            # faster would take the second core from the app and its scan process
            time.sleep(0.010)
    finally:
        subprocess.run(tmux + ["kill-session", "-t", "bench"], capture_output=True)
        time.sleep(0.3)
    if first is None or done is None:
        raise SystemExit(f"no findings on screen within 60 s; last pane:\n{pane}")
    return first, done, cpu


def measure(name: str, tree: Path, extra: list[str], runs: int, env: dict) -> tuple:
    sock = Path(tempfile.mkdtemp(prefix="dfx-appbench-")) / "tmux.sock"
    subprocess.run(["tmux", "-S", str(sock), "new-session", "-d", "-s", "keeper", "sleep 3600"], check=True)
    try:
        launch(tree, sock, extra, env)  # warm-up: bytecode and page cache, as an installed dockfix
        firsts, dones, cpus = [], [], []
        for _ in range(runs):
            first, done, cpu = launch(tree, sock, extra, env)
            firsts.append(first)
            dones.append(done)
            cpus.append(cpu)
    finally:
        subprocess.run(["tmux", "-S", str(sock), "kill-server"], capture_output=True)
    row = (name, statistics.median(firsts), min(firsts), max(firsts), statistics.median(dones),
           statistics.median(c[0] for c in cpus), statistics.median(c[1] for c in cpus), os.getloadavg()[0])
    print(f"  {name:15s}: first findings median {row[1]:.3f} s (min {row[2]:.3f}, max {row[3]:.3f}), "
          f"app CPU by then {row[5]:.3f} s (its scan process {row[6]:.3f} s); scan complete median {row[4]:.3f} s; "
          f"load {row[7]:.1f}", flush=True)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--containers", type=int, default=100)
    ap.add_argument("--no-engine-only", action="store_true", help="skip the case with the private engine")
    ap.add_argument("--installed", metavar="PREFIX",
                    help="install this checkout with scripts/install into PREFIX (a venv of /usr/bin/python3, as "
                         "the README's first command makes it) and time PREFIX/bin/dockfix instead of "
                         "`python3 -m dockfix` from the checkout")
    args = ap.parse_args()
    global PROGRAM
    if args.installed:
        prefix = Path(args.installed).resolve()
        subprocess.run([str(REPO / "scripts/install")], check=True, stdout=subprocess.DEVNULL,
                       env=dict(os.environ, DOCKFIX_PREFIX=str(prefix), DOCKFIX_BINDIR=str(prefix / "links")))
        PROGRAM = [str(prefix / "bin/dockfix")]
    if not shutil.which("tmux"):
        raise SystemExit("tmux is not installed (apt-get install tmux)")

    from app_helpers import failing_tree

    env = {"TERM": "xterm-256color"} if args.installed else {"PYTHONPATH": str(REPO), "TERM": "xterm-256color"}
    # As an installed dockfix: its bytecode compiled. The warm-up launch cannot do it where
    # PYTHONDONTWRITEBYTECODE is set (it is on the development machines): every launch would then
    # compile dockfix's ~50 modules again, ~0.3 s of CPU that no installed copy pays.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "dockfix")], check=True,
                   env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
                   stdout=subprocess.DEVNULL)
    work = Path(tempfile.mkdtemp(prefix="dfx-appbench-", dir="/tmp"))
    tree = failing_tree(work / "root")
    print(f"{os.cpu_count()} CPUs; {' '.join(PROGRAM)}; {args.runs} runs per case", flush=True)
    rows = [measure("no-engine", tree, ["--no-engine"], args.runs, env)]
    if not args.no_engine_only:
        from private_engine import PrivateEngine
        from scan_bench import empty, grow

        eng = PrivateEngine(work / "engine")
        try:
            eng.start()
            grow(eng, 0, args.containers)
            rows.append(measure(f"{args.containers} containers", tree, ["--docker-host", eng.url], args.runs, env))
        finally:
            print("stopping the private engine (removing the containers)...", flush=True)
            try:
                empty(eng)
            finally:
                eng.stop()
    shutil.rmtree(work, ignore_errors=True)
    ok = True
    print("\n| case | first findings on screen (median) | target | app CPU by then | scan process CPU | scan complete | load |")
    print("|---|---|---|---|---|---|---|")
    for name, med, lo, hi, done, cpu, scan_cpu, load in rows:
        target = TARGETS.get(name)
        verdict = "" if target is None else (" ✓" if med < target else " ✗")
        ok &= target is None or med < target
        print(f"| {name} | {med:.2f} s (min {lo:.2f}, max {hi:.2f}){verdict} | "
              f"{'< %.1f s' % target if target else '-'} | {cpu:.2f} s | {scan_cpu:.2f} s | {done:.2f} s | {load:.1f} |")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
