"""`dockfix waive CHECK --subject S --reason R --until DATE`: add a waiver (an accepted risk with a
reason and an expiry date) to the waiver file, keeping its comments and layout."""

from __future__ import annotations

import argparse
import os
import sys

from dockfix.cli.common import UsageError


def cmd_waive(args: argparse.Namespace) -> int:
    import datetime as dt

    from dockfix.waivers import WaiverError, append_waiver, parse_date, target_path

    if not os.path.isdir(args.root):
        raise UsageError(f"{args.root}: --root is not a directory")
    path = args.file or target_path(args.root)
    try:
        until = parse_date(args.until, "--until")
        w = append_waiver(path, args.check, subject=args.subject, reason=args.reason, expires=until,
                          approved_by=args.approved_by, compensating_control=args.compensating_control)
    except WaiverError as e:
        raise UsageError(str(e)) from None
    days = (w.expires - dt.datetime.now(dt.timezone.utc).date()).days
    print(f"waived {w.check} {w.subject or '(every subject)'} until {w.expires.isoformat()} ({days} days): "
          f"{w.where()}", file=sys.stdout)
    return 0


def build_waive_parser(sub) -> None:
    p = sub.add_parser(
        "waive", help="accept a risk: add a waiver with a reason and an expiry date",
        description="Add a waiver to the waiver file (default /etc/dockfix/waivers.yaml below --root; created "
        "when missing; comments and layout kept). A waived finding keeps its status, is shown as waived and no "
        "longer counts for `dockfix scan`'s exit code, until the waiver expires.")
    p.add_argument("check", metavar="CHECK", help="check id or CIS number (see `dockfix checks`)")
    p.add_argument("--subject", metavar="GLOB",
                   help="only findings whose subject matches (e.g. 'container:ci-*'; default: every subject)")
    p.add_argument("--reason", required=True, help="why the risk is accepted")
    p.add_argument("--until", required=True, metavar="DATE", help="expiry date, YYYY-MM-DD (the waiver holds through it)")
    p.add_argument("--approved-by", metavar="WHO", help="who accepted the risk")
    p.add_argument("--compensating-control", metavar="TEXT", help="what limits the risk meanwhile")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--file", metavar="FILE", help="the waiver file to add to (a path on this machine)")
    g.add_argument("--root", default="/", metavar="P", help="the host tree whose /etc/dockfix/waivers.yaml to use")
    p.set_defaults(func=cmd_waive)
