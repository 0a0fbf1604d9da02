#!/usr/bin/env python3
"""Benchmark: how long a whole `dockfix scan --format json` takes as the number of containers grows.

Starts a private dockerd of its own (tests/private_engine.py: its own data root and socket under
/tmp; the machine's default daemon is never touched), fills it with N running busybox `sleep`
containers (--network none, a mix of settings), and for each N runs the scan as a separate process
several times. Prints the median wall time, the peak RSS of the scan process, and the marginal cost
per container. Not a test: run it by hand (as root, on a machine with dockerd and busybox-static):

    python3 bench/scan_bench.py                 # N = 0, 100, 500; 5 runs each
    python3 bench/scan_bench.py --sizes 0,100 --runs 3

Bytecode: an installed dockfix has its .pyc files compiled at install time. A checkout run with
PYTHONDONTWRITEBYTECODE=1 would recompile every module on every run instead, so the benchmark lets
Python write the bytecode cache (one untimed warm-up run) and reports the "cold" first run apart.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from private_engine import BUSYBOX_IMAGE, ENGINES, PrivateEngine, make_engine  # noqa: E402

#: Targets of issue 3 on a 2-core machine.
TARGETS = {"n100_median_s": 1.5, "marginal_ms": 5.0, "n500_median_s": 4.0, "n500_rss_mb": 150.0}


def settings(i: int) -> dict:
    """A mix of container settings, so that every rule has passing and failing subjects."""
    kw: dict = {"network_mode": "none", "labels": {"bench": "1", "app": f"svc{i % 7}"}}
    if i % 4 == 0:
        kw.update(user="1000", read_only=True, mem_limit="32m", pids_limit=50, cpu_shares=256,
                  security_opt=["no-new-privileges"], cap_drop=["ALL"],
                  healthcheck={"test": ["CMD", "true"], "interval": 3_600_000_000_000})
    if i % 5 == 1:
        kw.update(cap_add=["NET_ADMIN"], restart_policy={"Name": "always"})
    if i % 9 == 2:
        kw.update(volumes={"/tmp": {"bind": "/host-tmp", "mode": "ro"}})
    if i % 11 == 3:
        kw.update(security_opt=["seccomp=unconfined"], ulimits=[{"Name": "nofile", "Soft": 1024, "Hard": 2048}])
    return kw


def grow(eng: PrivateEngine, have: int, want: int) -> None:
    """Start containers have..want-1 concurrently (docker SDK: writes are not on the scan's path)."""
    import docker
    from docker.types import Ulimit

    client = docker.DockerClient(base_url=eng.url, timeout=120)

    def one(i: int) -> None:
        kw = settings(i)
        if "ulimits" in kw:
            kw["ulimits"] = [Ulimit(name=u["Name"], soft=u["Soft"], hard=u["Hard"]) for u in kw["ulimits"]]
        client.containers.run(BUSYBOX_IMAGE, ["sleep", "1000000"], name=f"bench{i}", detach=True, **kw)

    t = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, range(have, want)))
    if want > have:
        print(f"  started containers {have}..{want - 1} in {time.monotonic() - t:.1f} s", flush=True)


def empty(eng: PrivateEngine) -> None:
    """Remove every container, several at a time (one `docker rm -f` of 500 takes minutes)."""
    import docker

    client = docker.DockerClient(base_url=eng.url, timeout=300)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda c: c.remove(force=True), client.containers.list(all=True)))


def run_scan(eng: PrivateEngine, root: str, env: dict) -> tuple[float, float, dict, float]:
    """(wall seconds, peak RSS MiB, JSON document, CPU seconds) of one `dockfix scan` process."""
    out = tempfile.NamedTemporaryFile(prefix="dfx-bench-", suffix=".json", delete=False)
    out.close()
    cmd = [sys.executable, "-m", "dockfix", "scan", "--root", root, "--docker-host", eng.url, "--format", "json",
           "-o", out.name]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode not in (0, 1):
        raise SystemExit(f"scan failed ({proc.returncode}): {err}")
    with open(out.name) as f:
        doc = json.load(f)
    os.unlink(out.name)
    return wall, usage.ru_maxrss / 1024, doc, usage.ru_utime + usage.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="0,100,500", help="numbers of running containers (ascending)")
    ap.add_argument("--runs", type=int, default=5, help="timed scans per size")
    ap.add_argument("--root", default="/", help="--root given to the scan (default /: the whole scan)")
    ap.add_argument("--engine", choices=ENGINES, default="20.10",
                    help="the private engine: the machine's dockerd 20.10 (default) or Docker 28 (scripts/newer-debs)")
    args = ap.parse_args()
    sizes = sorted(int(x) for x in args.sizes.split(","))

    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: bytecode cached (see the docstring)
    env.pop("DOCKER_HOST", None)

    base = Path(tempfile.mkdtemp(prefix="dfx-bench-", dir="/tmp"))
    eng = make_engine(args.engine, base)
    print(f"private engine {args.engine} {eng.url}; {os.cpu_count()} CPUs; python {sys.version.split()[0]}", flush=True)
    rows: list[tuple] = []
    cold = None
    try:
        eng.start()
        have = 0
        for n in sizes:
            grow(eng, have, n)
            have = n
            if cold is None:
                cold_env = dict(env, PYTHONDONTWRITEBYTECODE="1")
                cold = run_scan(eng, args.root, cold_env)[0]
            run_scan(eng, args.root, env)  # warm-up: page cache, bytecode cache
            walls, rss, cpus = [], [], []
            for _ in range(args.runs):
                wall, peak, doc, cpu = run_scan(eng, args.root, env)
                walls.append(wall)
                rss.append(peak)
                cpus.append(cpu)
            seen = len([f for f in doc["findings"] if f["cis"] == "5.5" and f["subject"].startswith("container:")])
            if seen != n:
                raise SystemExit(f"the scan saw {seen} containers, expected {n}")
            rows.append((n, statistics.median(walls), min(walls), max(walls), max(rss), len(doc["findings"]),
                         statistics.median(cpus), os.getloadavg()[0]))
            print(f"  N={n:4d}: median {rows[-1][1]:.3f} s (min {rows[-1][2]:.3f}, max {rows[-1][3]:.3f}), "
                  f"peak RSS {rows[-1][4]:.1f} MiB, CPU {rows[-1][6]:.3f} s, {rows[-1][5]} findings, "
                  f"load {rows[-1][7]:.1f}", flush=True)
        report(rows, cold, sizes)
    finally:
        print("stopping the private engine (removing the containers)...", flush=True)
        try:
            empty(eng)
        finally:
            eng.stop()
    return 0 if rows and all(ok for *_, ok in verdicts(rows)) else 1


def verdicts(rows: list[tuple]) -> list[tuple]:
    by_n = {r[0]: r for r in rows}
    out = []
    if 100 in by_n:
        out.append(("N=100 median", by_n[100][1], TARGETS["n100_median_s"], "s"))
    if 500 in by_n:
        out.append(("N=500 median", by_n[500][1], TARGETS["n500_median_s"], "s"))
        out.append(("N=500 peak RSS", by_n[500][4], TARGETS["n500_rss_mb"], "MiB"))
        if 0 in by_n:
            out.append(("marginal 0->500", (by_n[500][1] - by_n[0][1]) / 500 * 1000, TARGETS["marginal_ms"], "ms"))
    return [(name, value, limit, unit, value <= limit) for name, value, limit, unit in out]


def report(rows: list[tuple], cold: float | None, sizes: list[int]) -> None:
    print()
    try:
        load = os.getloadavg()
        print(f"load average during the run: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} (1/5/15 min)")
    except OSError:
        pass
    print(f"{'N':>5} {'median s':>9} {'min s':>7} {'max s':>7} {'peak RSS MiB':>13} {'CPU s':>6} {'findings':>9} {'load':>5}")
    for n, med, lo, hi, peak, nf, cpu, load1 in rows:
        print(f"{n:>5} {med:>9.3f} {lo:>7.3f} {hi:>7.3f} {peak:>13.1f} {cpu:>6.3f} {nf:>9} {load1:>5.1f}")
    base_row = rows[0]
    for n, med, *_ in rows[1:]:
        marginal = (med - base_row[1]) / (n - base_row[0]) * 1000
        print(f"marginal cost N={base_row[0]}->{n}: {marginal:.2f} ms per container")
    if cold is not None:
        print(f"cold first run (no bytecode cache) at N={sizes[0]}: {cold:.3f} s")
    for name, value, limit, unit, ok in verdicts(rows):
        print(f"target {name}: {value:.2f} {unit} <= {limit} {unit}: {'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    sys.exit(main())
