"""`dockfix` without a subcommand: headless `dockfix --apply ...`, or else the interactive app.

Textual is imported only on the app branch, and only when it is taken.
"""

from __future__ import annotations

import argparse

from dockfix.cli.common import UsageError, add_host_options, add_selection_options, add_waiver_option

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
    add_waiver_option(p)  # waived findings are shown as waived in the app and never fixed by --apply
    return p


def main(argv: list[str]) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    if args.apply:
        from dockfix.cli.apply import cmd_apply

        return cmd_apply(args)
    # `--plan ""` (an unset $PLAN) counts as given: it must not fall through to the app
    given = [f"--{name.replace('_', '-')}" for name in APPLY_ONLY if getattr(args, name) not in (None, False)]
    if given or args.format != "text":
        raise UsageError(f"{', '.join(given) or '--format'} only goes with --apply")
    from dockfix.cli.common import require_terminal

    require_terminal()  # cron, CI, `dockfix > out.txt`: one line and exit 2, never a hung app
    from dockfix.cli.app import run_app  # imports Textual, once the scan has started

    return run_app(args)
