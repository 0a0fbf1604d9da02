"""`dockfix scan`: scan and report. Never imports the fix core or Textual."""

from __future__ import annotations

import argparse
import os
import sys

from dockfix.cli.common import (
    EXIT_ERRORS,
    EXIT_FINDINGS,
    EXIT_OK,
    UsageError,
    add_host_options,
    add_selection_options,
    add_waiver_option,
    load_notes,
    load_waivers,
    make_context,
    split_ids,
    write_output,
)


def exit_code(findings, fail_on, allow_errors: bool) -> int:
    """0 nothing failed, 1 a failure at or above ``fail_on``, 3 some checks could not be evaluated
    and nothing failed (unless ``allow_errors``). Waived findings never count."""
    from dockfix.model import Status

    counted = [f for f in findings if f.waiver is None]
    if any(f.status == Status.FAIL and f.severity >= fail_on for f in counted):
        return EXIT_FINDINGS
    if not allow_errors and any(f.status == Status.ERROR for f in counted):
        return EXIT_ERRORS
    return EXIT_OK


def _utc(t: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def cmd_scan(args: argparse.Namespace) -> int:
    import time

    from dockfix.model import Severity, Status
    from dockfix.report import RENDERERS, render_text
    from dockfix.scan import scan, scan_rootless

    started = time.time()
    try:
        fail_on = Severity.parse(args.fail_on)
    except ValueError as e:
        raise UsageError(str(e)) from None
    ctx = make_context(args)
    notes = load_notes(args)
    waivers = load_waivers(args)
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
    expired = waivers.apply(result.findings) if waivers is not None else []
    ended = time.time()
    code = exit_code(result.findings, fail_on, args.allow_errors)
    roots = []
    for p in list(ctx.paths) + sorted({os.path.dirname(c) or "/" for c in ctx.compose} - set(ctx.paths)):
        base = "SRCROOT" if not roots else f"SRCROOT{len(roots) + 1}"
        roots.append((base, p, ctx.host.real(p)))
    meta = {
        "started_at": _utc(started),
        "scanned_at": _utc(ended),
        "duration_s": round(ended - started, 3),
        "waivers": waivers.to_json() if waivers is not None else None,
        "waivers_expired": [w.to_json() for w in expired],
        "roots": roots,
        "exit_code": code,
    }
    if args.format == "text":
        to_tty = args.output is None and sys.stdout.isatty()
        colour = to_tty and not os.environ.get("NO_COLOR")
        text = render_text(result.findings, result.host, colour=colour, verbose=args.verbose, meta=meta,
                           quiet=args.quiet, benchmark=result.benchmark)
    else:
        text = RENDERERS[args.format](result.findings, result.host, meta=meta, benchmark=result.benchmark)
    if args.output:
        write_output(args.output, text)
    else:
        sys.stdout.write(text)
    from dockfix.report import safe_text

    for w in expired:
        print(safe_text(f"dockfix: warning: {w.where()}: waiver for {w.check} expired on {w.expires.isoformat()}"),
              file=sys.stderr)
    if code == EXIT_ERRORS:
        n = sum(1 for f in result.findings if f.status == Status.ERROR and f.waiver is None)
        print(f"dockfix: {n} findings could not be evaluated (exit 3; --allow-errors accepts that)", file=sys.stderr)
    return code


def build_scan_parser(sub) -> None:
    p = sub.add_parser(
        "scan", help="scan the host and report findings",
        description="Scan the host against the CIS Docker Benchmark 1.6.0 and the team's notes. Exit codes: "
        "0 nothing failed at or above --fail-on, 1 something did, 2 usage or input error, 3 some checks could "
        "not be evaluated and nothing failed (see --allow-errors). Waived findings never count.")
    add_host_options(p)
    add_selection_options(p)
    add_waiver_option(p)
    p.add_argument("--format", choices=["text", "json", "sarif", "junit"], default="text")
    p.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE")
    p.add_argument("--fail-on", default="low", metavar="SEVERITY",
                   help="exit 1 when a finding at or above SEVERITY fails (default low)")
    p.add_argument("--allow-errors", action="store_true",
                   help="exit 0, not 3, when some checks could not be evaluated and nothing failed")
    out = p.add_mutually_exclusive_group()
    out.add_argument("-v", "--verbose", action="store_true", help="show details of passing checks and the team's notes")
    out.add_argument("-q", "--quiet", action="store_true", help="text: print only the summary")
    p.set_defaults(func=cmd_scan)
