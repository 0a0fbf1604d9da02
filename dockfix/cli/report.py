"""`dockfix report`: merge per-host scan results into one fleet report (see dockfix.fleet)."""

from __future__ import annotations

import argparse
import sys

from dockfix.cli.common import UsageError, write_output
from dockfix.fleet import RENDERERS, ReportInputError, load_scan, merge


def cmd_report(args: argparse.Namespace) -> int:
    try:
        scans = [load_scan(path) for path in args.files]
        fleet = merge(scans)
    except ReportInputError as e:
        raise UsageError(str(e)) from None
    fail_on = None
    if args.fail_on:
        from dockfix.model import Severity

        try:
            fail_on = Severity.parse(args.fail_on)
        except ValueError as e:
            raise UsageError(str(e)) from None
    text = RENDERERS[args.format](fleet)
    if args.output:
        write_output(args.output, text)
    else:
        sys.stdout.write(text)
    for d in fleet["duplicates"]:
        print(f"dockfix: warning: duplicate scans of {d['host']}: kept {d['kept']}, ignored {', '.join(d['ignored'])}",
              file=sys.stderr)
    return fleet_exit_code(scans_kept(fleet, scans), fail_on, args.allow_errors)


def scans_kept(fleet: dict, scans: list) -> list:
    kept = {h["file"] for h in fleet["hosts"]}
    return [s for s in scans if s.file in kept]


def fleet_exit_code(scans: list, fail_on, allow_errors: bool) -> int:
    """Like `dockfix scan` over every host: 1 when an unwaived finding fails at or above --fail-on
    on some host, else 3 when some check could not be evaluated somewhere (unless --allow-errors),
    else 0. Without --fail-on the report always exits 0."""
    from dockfix.model import Severity

    if fail_on is None:
        return 0
    counted = [f for s in scans for f in s.doc["findings"] if not isinstance(f.get("waiver"), dict)]

    def severity(f) -> int:
        try:
            return Severity.parse(str(f.get("severity") or "info"))
        except ValueError:
            return Severity.CRITICAL  # an unknown severity is not silently below the bar
    if any(f["status"] == "fail" and severity(f) >= fail_on for f in counted):
        return 1
    if not allow_errors and any(f["status"] == "error" for f in counted):
        return 3
    return 0


def build_report_parser(sub) -> None:
    p = sub.add_parser(
        "report",
        help="merge per-host scan results (dockfix scan --format json) into one fleet report",
        description="Merge per-host `dockfix scan --format json` files into one fleet view: for each check "
        "how many hosts fail it and which, for each host its counts. The host name comes from each file's "
        "host.hostname, else from the file name; of several scans of one host the newest counts.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="a scan result per host (JSON)")
    p.add_argument("--format", choices=list(RENDERERS), default="text")
    p.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE")
    p.add_argument("--fail-on", metavar="SEVERITY",
                   help="exit 1 when an unwaived finding at or above SEVERITY fails on some host, 3 when "
                        "checks could not be evaluated somewhere and nothing failed (default: always exit 0)")
    p.add_argument("--allow-errors", action="store_true", help="with --fail-on: exit 0, not 3, on errors")
    p.set_defaults(func=cmd_report)

