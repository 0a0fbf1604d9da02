#!/usr/bin/env python3
"""Benchmark: an owner-only fix of a huge file keeps neither its content in memory nor a copy in
the journal (issue 15).

Builds a host tree whose docker.service is a sparse file of SIZE MiB (a few KiB on disk) owned
by uid 1000 with mode 0644, then runs `dockfix --apply --yes --only docker-service-owner --root TREE --no-engine`
(the fix is a chown) as its own process, and `dockfix rollback --last`. Prints the wall time and
peak RSS of each process and the size of the journal. Targets: peak RSS under 100 MiB, journal
under 1 MiB. Run as root (the tree's files are chowned):

    python3 bench/sparse_unit_bench.py              # 512 MiB
    python3 bench/sparse_unit_bench.py --size 1024
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGETS = {"rss_mb": 100.0, "journal_mb": 1.0}


def run(cmd: list[str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall seconds and peak RSS (MiB) of one child process."""
    env = dict(os.environ, PYTHONPATH=str(REPO), NO_COLOR="1")
    env.pop("DOCKER_HOST", None)
    t = time.monotonic()
    # a fresh process per measurement: ru_maxrss of RUSAGE_CHILDREN is the largest child so far
    code = ("import resource, subprocess, sys, json; r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
            "print(json.dumps([r.returncode, r.stdout, r.stderr, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))")
    out = subprocess.run([sys.executable, "-c", code, *cmd], capture_output=True, text=True, env=env, check=True)
    import json

    rc, stdout, stderr, maxrss = json.loads(out.stdout)
    return time.monotonic() - t, maxrss / 1024, subprocess.CompletedProcess(cmd, rc, stdout, stderr)


def du(path: Path) -> int:
    total = 0
    for p in path.rglob("*"):
        if p.is_file() and not p.is_symlink():
            total += p.lstat().st_blocks * 512
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512, help="size of the sparse docker.service in MiB")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="dockfix-sparse-") as tmp:
        root = Path(tmp) / "root"
        unit = root / "lib/systemd/system/docker.service"
        unit.parent.mkdir(parents=True)
        (root / "var/lib").mkdir(parents=True)
        with open(unit, "wb") as f:
            f.write(b"[Service]\nExecStart=/usr/bin/dockerd\n")
            f.truncate(args.size * 1024 * 1024)
        os.chown(unit, 1000, 1000)
        os.chmod(unit, 0o644)
        print(f"docker.service: {args.size} MiB apparent, {unit.stat().st_blocks * 512 // 1024} KiB on disk, owned by 1000:1000")
        base = [sys.executable, "-m", "dockfix"]
        secs, rss, r = run([*base, "--apply", "--yes", "--only", "docker-service-owner", "--root", str(root), "--no-engine"])
        if r.returncode != 0 or unit.stat().st_uid != 0:
            print(f"apply failed ({r.returncode}): {r.stderr.strip()}")
            return 2
        journal = du(root / "var/lib/dockfix/journal")
        print(f"apply:    {secs:6.1f} s   peak RSS {rss:6.1f} MiB   journal {journal / 1024:.1f} KiB")
        secs2, rss2, r = run([*base, "rollback", "--last", "--root", str(root), "--no-engine"])
        if r.returncode != 0 or unit.stat().st_uid != 1000:
            print(f"rollback failed ({r.returncode}): {r.stderr.strip()}")
            return 2
        print(f"rollback: {secs2:6.1f} s   peak RSS {rss2:6.1f} MiB")
        ok = max(rss, rss2) < TARGETS["rss_mb"] and journal / 2**20 < TARGETS["journal_mb"]
        print(f"targets: peak RSS < {TARGETS['rss_mb']:.0f} MiB, journal < {TARGETS['journal_mb']:.0f} MiB: "
              + ("met" if ok else "NOT MET"))
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
