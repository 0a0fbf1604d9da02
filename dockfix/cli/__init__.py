"""Command line. The headless paths (scan, --apply, plan, rollback, journal, report) never import
Textual; only the app and the walkthrough do, and only when they are started. A subcommand's module
is imported only when that subcommand runs."""

from __future__ import annotations

import argparse
import sys

from dockfix import __version__
from dockfix.cli.common import EXIT_OK, EXIT_USAGE, UsageError

#: Every subcommand: name -> (module, parser builder, one-line help). A subcommand's module is
#: imported only when that subcommand runs (`dockfix --help` lists them from this table alone).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "scan": ("dockfix.cli.scan", "build_scan_parser", "scan the host and report findings"),
    "plan": ("dockfix.cli.apply", "build_plan_parser",
             "plan fixes for the failing checks and show their diffs (changes nothing)"),
    "rollback": ("dockfix.cli.apply", "build_rollback_parser",
                 "undo an applied transaction (byte for byte, owners and modes)"),
    "journal": ("dockfix.cli.apply", "build_journal_parser", "list applied transactions and their changes"),
    "report": ("dockfix.cli.report", "build_report_parser",
               "merge per-host scan results (dockfix scan --format json) into one fleet report"),
    "demo": ("dockfix.cli.demo", "build_demo_parser",
             "open the app on a throwaway practice host with realistic faults"),
    "walkthrough": ("dockfix.cli.demo", "build_walkthrough_parser", "a guided lesson on the demo host, one step per topic"),
    "checks": ("dockfix.cli.checks", "build_checks_parser",
               "list every check: id, CIS number, title, severity, fix safety"),
    "waive": ("dockfix.cli.waive", "build_waive_parser",
              "accept a risk: add a waiver with a reason and an expiry date"),
    "completion": ("dockfix.cli.completion", "build_completion_parser",
                   "print a shell completion script (bash, zsh or fish)"),
}

EPILOG = """without a command:
  dockfix [HOST OPTIONS]      open the interactive app on this host (needs a terminal)
  dockfix --apply [OPTIONS]   headless: scan, show the fixes as diffs, apply them after confirmation
                              (--yes, --dry-run, --plan FILE; see `dockfix --apply --help`)

exit codes of scan (and report): 0 nothing failed at or above --fail-on, 1 something did,
2 usage or input error, 3 some checks could not be evaluated and nothing failed (--allow-errors).
`dockfix COMMAND --help` shows a command's own options."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser; only ``command``'s module is imported to build its own options."""
    import importlib

    p = argparse.ArgumentParser(
        prog="dockfix",
        description="Scan a Docker host against the CIS Docker Benchmark and apply reviewed, reversible fixes. "
        "`dockfix` alone opens the interactive app; `dockfix --apply` fixes headless (see `dockfix --apply --help`).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-V", "--version", action="version", version=f"dockfix {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, builder, help_text) in COMMANDS.items():
        if name == command:
            getattr(importlib.import_module(module), builder)(sub)
        else:
            sub.add_parser(name, help=help_text, add_help=False)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from dockfix.model import CheckError

    # Text from a hostile host (a lone surrogate in daemon.json, an odd file name) must never
    # crash the output: anything the terminal's encoding cannot show is written as an escape.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")

    try:
        parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else None)
        if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version", "-V"):
            # No subcommand: `dockfix --apply ...` (headless) or the app.
            from dockfix.cli import toplevel

            return toplevel.main(argv)
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return EXIT_USAGE
        return args.func(args)
    except UsageError as e:
        print(f"dockfix: {e}", file=sys.stderr)
        return EXIT_USAGE
    except CheckError as e:
        print(f"dockfix: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("dockfix: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
