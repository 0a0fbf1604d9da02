"""`dockfix` with no subcommand: start the scan, then the app (Textual is imported here, late).

Kept apart from dockfix/tui/app.py so that the scan is already running — its engine requests in
flight — while Textual is imported and the interface starts.
"""

from __future__ import annotations

import argparse
import functools
import os


def run_app(args: argparse.Namespace) -> int:
    """Open the app on the host given by the host options; returns the exit status."""
    from dockfix.tui.background_scan import BackgroundScan
    from dockfix.cli.common import UsageError, load_notes, make_context, split_ids
    from dockfix.scan import scan, selected_checks
    from dockfix.team_notes import with_notes

    ctx = make_context(args)  # bad options fail here, before the terminal is taken over
    only, skip = split_ids(getattr(args, "only", []) or []), split_ids(getattr(args, "skip", []) or [])
    try:
        selected_checks(only, skip, ctx.benchmark)
    except ValueError as e:
        raise UsageError(str(e)) from None
    notes = load_notes(args)  # team notes (--notes or the config file), shown beside each finding
    kw = with_notes(notes)
    if only or skip:
        kw["scan"] = functools.partial(kw.get("scan", scan), only=only, skip=skip)
    if getattr(args, "waivers", None):
        kw["waivers"] = os.path.abspath(args.waivers)
    early = BackgroundScan(kw.get("scan", scan), ctx)
    from dockfix.tui.app import DockfixApp

    app = DockfixApp(lambda: make_context(args), background_scan=early, **kw)
    app.run()
    return app.return_code or 0
