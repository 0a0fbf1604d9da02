"""`dockfix` with no subcommand: start the scan, then the app (Textual is imported here, late).

Kept apart from dockfix/tui/app.py so that the scan is already running — in a child process, on
the machine's other core, its engine requests in flight — while Textual is imported and the
interface starts. The checks themselves are imported by the scan (in the child), not here.
"""

from __future__ import annotations

import argparse
import functools
import os


def run_app(args: argparse.Namespace) -> int:
    """Open the app on the host given by the host options; returns the exit status."""
    from dockfix.tui.background_scan import scan_host, start_scan
    from dockfix.cli.common import UsageError, load_notes, make_context, split_ids
    from dockfix.team_notes import with_notes

    ctx = make_context(args)  # bad options fail here, before the terminal is taken over
    only, skip = split_ids(getattr(args, "only", []) or []), split_ids(getattr(args, "skip", []) or [])
    notes = load_notes(args)  # team notes (--notes or the config file), shown beside each finding
    kw = with_notes(notes)
    if only or skip:
        kw["scan"] = functools.partial(kw.get("scan", scan_host), only=only, skip=skip)
    if getattr(args, "waivers", None):
        kw["waivers"] = os.path.abspath(args.waivers)
    validate = functools.partial(selection_problem, only, skip, ctx.benchmark) if only or skip else None
    early = start_scan(kw.get("scan", scan_host), ctx, validate)
    # No garbage collection until the first findings are painted (DockfixApp.first_paint_done):
    # start-up makes objects that live as long as the app, and collecting them cost ≈0.04-0.06 s.
    import gc

    gc.disable()
    try:
        from dockfix.tui.app import DockfixApp

        problem = early.selection_problem()  # an --only/--skip that selects nothing: before the terminal
        if problem is not None:
            raise UsageError(problem)
        app = DockfixApp(lambda: make_context(args), background_scan=early, gc_paused=True, **kw)
        app.run()
    finally:
        early.close()  # a scan still running (a hanging engine) ends with the app
        gc.enable()
    return app.return_code or 0


def selection_problem(only: list[str], skip: list[str], benchmark: str) -> str | None:
    """--only/--skip checked against the checks: the problem as one line, or None."""
    from dockfix.scan import selected_checks

    try:
        selected_checks(only, skip, benchmark)
    except ValueError as e:
        return str(e)
    return None
