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
    text = RENDERERS[args.format](fleet)
    if args.output:
        write_output(args.output, text)
    else:
        sys.stdout.write(text)
    return 0


def build_report_parser(sub) -> None:
    p = sub.add_parser(
        "report",
        help="merge per-host scan results (dockfix scan --format json) into one fleet report",
        description="Merge per-host `dockfix scan --format json` files into one fleet view: for each check "
        "how many hosts fail it and which, for each host its counts. The host name comes from each file's "
        "host.hostname, else from the file name.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="a scan result per host (JSON)")
    p.add_argument("--format", choices=list(RENDERERS), default="text")
    p.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE")
    p.set_defaults(func=cmd_report)

