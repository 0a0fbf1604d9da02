"""`dockfix` without a subcommand: the app, or headless `--apply`."""

from __future__ import annotations

import argparse
import sys


def app_parser() -> argparse.ArgumentParser:
    from dockfix.cli import add_host_options

    p = argparse.ArgumentParser(prog="dockfix", description="Open the interactive app on a host.")
    add_host_options(p)
    return p


def main(argv: list[str]) -> int:
    if "--apply" in argv:
        print("dockfix: --apply is not available yet; try `dockfix scan`", file=sys.stderr)
        return 2
    args = app_parser().parse_args(argv)
    from dockfix.app import run_app

    return run_app(args)
