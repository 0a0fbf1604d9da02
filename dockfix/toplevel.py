"""`dockfix` without a subcommand: the app, or headless `--apply`."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    print("dockfix: the interactive app and --apply are not available yet; try `dockfix scan`", file=sys.stderr)
    return 2
