"""`dockfix checks`: every check id `--only`, `--skip` and waivers accept, with its CIS number,
title, severity and fix safety."""

from __future__ import annotations

import argparse
import json
import sys


def check_rows(benchmark: str | None = None) -> list[dict]:
    import dockfix.checks  # noqa: F401  (registers every check)
    from dockfix import benchmarks
    from dockfix.model import REGISTRY
    from dockfix.scan import sort_key

    version = benchmarks.check_version(benchmark or benchmarks.DEFAULT)
    return [{"id": c.id, "cis": benchmarks.number(c.id, version), "benchmark": version, "section": c.section,
             "title": c.title, "severity": str(c.severity), "fix": str(c.fix_spec.safety) if c.fix_spec else None}
            for c in sorted(REGISTRY.values(), key=lambda c: sort_key(c, version))]


def cmd_checks(args: argparse.Namespace) -> int:
    from dockfix import benchmarks
    from dockfix.cli.common import UsageError

    try:
        rows = check_rows(args.benchmark)
    except benchmarks.UnknownBenchmark as e:
        raise UsageError(f"--benchmark: {e}") from None
    if args.format == "json":
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return 0
    wid = max(len(r["id"]) for r in rows)
    sys.stdout.write(f"{'CIS':7} {'ID':{wid}}  {'SEVERITY':8}  {'FIX':10}  TITLE\n")
    for r in rows:
        sys.stdout.write(f"{r['cis'] or '-':7} {r['id']:{wid}}  {r['severity']:8}  {r['fix'] or '-':10}  {r['title']}\n")
    sys.stdout.write(f"{len(rows)} checks, numbered as in CIS Docker Benchmark v{rows[0]['benchmark']}; "
                     "`--only`/`--skip` and waivers take an id or a CIS number (`--only` also a section such as "
                     "3 or 1.1, or notes)\n")
    return 0


def build_checks_parser(sub) -> None:
    p = sub.add_parser("checks", help="list every check: id, CIS number, title, severity, fix safety",
                       description="List every check dockfix runs: its id and CIS number (what --only, --skip "
                       "and waivers accept), title, severity and whether a fix exists (safe, disruptive, manual).")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("--benchmark", default="1.8.0", metavar="VERSION",
                   help="CIS Docker Benchmark version whose numbers to show (1.6.0, 1.7.0 or 1.8.0; default 1.8.0)")
    p.set_defaults(func=cmd_checks)
