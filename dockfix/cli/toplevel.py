"""`dockfix` without a subcommand: headless `dockfix --apply ...`, or else the interactive app.

Textual is imported only on the app branch, and only when it is taken.
"""

from __future__ import annotations

import argparse
import sys

from dockfix.cli import EXIT_USAGE, UsageError, add_host_options, add_selection_options

APPLY_ONLY = ("yes", "dry_run", "plan", "include_disruptive", "restart_daemon")


def build_parser() -> argparse.ArgumentParser:
    from dockfix.cli.apply import add_apply_options

    p = argparse.ArgumentParser(
        prog="dockfix",
        description="Without a command: open the app. With --apply: scan, show the fixes as diffs, apply them "
        "after confirmation (journaled; undo with `dockfix rollback`).",
    )
    p.add_argument("--apply", action="store_true", help="headless: plan, show and apply fixes for failing checks")
    add_apply_options(p)
    add_host_options(p)
    add_selection_options(p)
    return p


def main(argv: list[str]) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    if args.apply:
        from dockfix.cli.apply import cmd_apply

        return cmd_apply(args)
    given = [f"--{name.replace('_', '-')}" for name in APPLY_ONLY if getattr(args, name)]
    if given or args.format != "text":
        raise UsageError(f"{', '.join(given) or '--format'} only goes with --apply")
    try:
        from dockfix.tui.launch import run_app  # imports Textual, once the scan has started
    except ModuleNotFoundError as e:
        if e.name not in ("dockfix.tui.app", "textual"):
            raise
        print("dockfix: the interactive app is not available in this build; try `dockfix scan` or "
              "`dockfix --apply`", file=sys.stderr)
        return EXIT_USAGE
    return run_app(args)
