"""`dockfix scan`: scan and report. Never imports the fix core or Textual."""

from __future__ import annotations

import argparse
import os
import sys

from dockfix.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    UsageError,
    add_host_options,
    add_selection_options,
    load_notes,
    make_context,
    split_ids,
    write_output,
)


def cmd_scan(args: argparse.Namespace) -> int:
    from dockfix.model import Severity, Status
    from dockfix.report import RENDERERS, render_text
    from dockfix.scan import scan, scan_rootless

    try:
        fail_on = Severity.parse(args.fail_on)
    except ValueError as e:
        raise UsageError(str(e)) from None
    ctx = make_context(args)
    notes = load_notes(args)
    try:
        result = scan(ctx, split_ids(args.only), split_ids(args.skip))
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.docker_host is None and not os.environ.get("DOCKER_HOST") and ctx.rootless is None:
        # no engine chosen: root's daemon, then each rootless daemon of the host as its own subject
        more, daemons = scan_rootless(ctx, split_ids(args.only), split_ids(args.skip))
        if daemons:
            result.findings.extend(more)
            result.host["rootless"] = daemons
    if notes is not None:
        notes.attach(result.findings)
    if args.format == "text":
        to_tty = args.output is None and sys.stdout.isatty()
        colour = to_tty and not os.environ.get("NO_COLOR")
        text = render_text(result.findings, result.host, colour=colour, verbose=args.verbose,
                           benchmark=result.benchmark)
    else:
        text = RENDERERS[args.format](result.findings, result.host, benchmark=result.benchmark)
    if args.output:
        write_output(args.output, text)
    else:
        sys.stdout.write(text)
    failing = [f for f in result.findings if f.status == Status.FAIL and f.severity >= fail_on]
    return EXIT_FINDINGS if failing else EXIT_OK


def build_scan_parser(sub) -> None:
    p = sub.add_parser("scan", help="scan the host and report findings")
    add_host_options(p)
    add_selection_options(p)
    p.add_argument("--format", choices=["text", "json", "sarif"], default="text")
    p.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE")
    p.add_argument("--fail-on", default="low", metavar="SEVERITY",
                   help="exit 1 when a finding at or above SEVERITY fails (default low)")
    p.add_argument("-v", "--verbose", action="store_true", help="show details of passing checks too")
    p.set_defaults(func=cmd_scan)
