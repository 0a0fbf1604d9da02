"""Command line. The headless paths (scan, --apply, plan, rollback, journal, report) never import
Textual; only the app and the walkthrough do, and only when they are started."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable

from dockfix import __version__

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit 2."""


def add_host_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("host")
    g.add_argument("--root", default="/", metavar="P", help="scan the host tree below P (default /)")
    e = g.add_mutually_exclusive_group()
    e.add_argument("--docker-host", metavar="URL", help="engine to scan (default $DOCKER_HOST, else the default socket)")
    e.add_argument("--no-engine", action="store_true", help="leave the engine out: files only")
    g.add_argument("--path", action="append", default=[], metavar="DIR",
                   help="folder with Dockerfiles, compose files and scripts to scan (repeatable)")
    g.add_argument("--compose", action="append", default=[], metavar="FILE", help="compose file to scan (repeatable)")
    g.add_argument("--notes", metavar="FILE", help="team notes (Markdown) shown beside findings")


def add_selection_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--only", action="append", default=[], metavar="IDS", help="check ids or CIS numbers, comma-separated")
    p.add_argument("--skip", action="append", default=[], metavar="IDS", help="check ids or CIS numbers to leave out")


def split_ids(values: list[str]) -> list[str]:
    return [x.strip() for v in values for x in v.split(",") if x.strip()]


def host_path(root: str, given: str) -> str:
    """A path typed by the user -> a host path. A path inside --root is taken as a machine path."""
    root = os.path.abspath(root)
    full = os.path.abspath(given)
    if root != "/" and (full == root or full.startswith(root + "/")):
        return "/" + os.path.relpath(full, root) if full != root else "/"
    if root != "/" and os.path.isabs(given):
        return os.path.normpath(given)
    return full


def make_context(args: argparse.Namespace):
    from dockfix.host import Host
    from dockfix.scan import Context

    if not os.path.isdir(args.root):
        raise UsageError(f"{args.root}: --root is not a directory")
    host = Host(root=args.root, docker_host=args.docker_host, engine=not args.no_engine)
    paths = [host_path(args.root, p) for p in args.path]
    for given, p in zip(args.path, paths):
        if not host.is_dir(p):
            raise UsageError(f"{given}: --path is not a directory")
    compose = [host_path(args.root, p) for p in args.compose]
    for given, p in zip(args.compose, compose):
        if not host.is_file(p):
            raise UsageError(f"{given}: --compose file not found")
    return Context(host=host, paths=paths, compose=compose)


def load_notes(args: argparse.Namespace):
    """Team notes from --notes (or the config file), or None."""
    try:
        from dockfix.team_notes import NotesError, load_for_args
    except ImportError:
        if getattr(args, "notes", None):
            raise UsageError("--notes is not supported by this build") from None
        return None
    try:
        notes = load_for_args(getattr(args, "notes", None), getattr(args, "root", "/"))
    except NotesError as e:
        raise UsageError(str(e)) from None
    for w in notes.warnings() if notes else ():
        print(f"dockfix: warning: {w}", file=sys.stderr)
    return notes


def cmd_scan(args: argparse.Namespace) -> int:
    from dockfix.model import Severity, Status
    from dockfix.report import RENDERERS, render_text
    from dockfix.scan import scan

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
    if notes is not None:
        notes.attach(result.findings)
    if args.format == "text":
        to_tty = args.output is None and sys.stdout.isatty()
        colour = to_tty and not os.environ.get("NO_COLOR")
        text = render_text(result.findings, result.host, colour=colour, verbose=args.verbose)
    else:
        text = RENDERERS[args.format](result.findings, result.host)
    if args.output:
        write_output(args.output, text)
    else:
        sys.stdout.write(text)
    failing = [f for f in result.findings if f.status == Status.FAIL and f.severity >= fail_on]
    return EXIT_FINDINGS if failing else EXIT_OK


def write_output(path: str, text: str, mode: int = 0o666) -> None:
    """Write a report atomically. The temporary file is created fresh (O_EXCL, random name) in the
    target's folder, so a link planted at a guessable name (``report.json.tmp -> /etc/shadow``) is
    never followed by a root-run dockfix; the rename then replaces ``path`` itself, not a link's target."""
    import tempfile

    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".dockfix-", suffix=".tmp", dir=folder)
    except OSError as e:
        raise UsageError(f"{path}: cannot write output: {e.strerror}") from None
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, mode & ~umask)
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise UsageError(f"{path}: cannot write output: {e.strerror}") from None


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


#: Subcommand builders: each adds its parser and sets ``func``. Other modules register theirs.
SUBCOMMANDS: list[Callable] = [build_scan_parser]


def _register_optional() -> None:
    """Subcommands that live in their own modules (kept out of the scan path's imports)."""
    import importlib

    for mod in ("dockfix.cli.apply", "dockfix.fleet", "dockfix.cli.demo"):
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise
            continue
        for b in getattr(m, "SUBCOMMANDS", []):
            if b not in SUBCOMMANDS:
                SUBCOMMANDS.append(b)


def build_parser() -> argparse.ArgumentParser:
    _register_optional()
    p = argparse.ArgumentParser(
        prog="dockfix",
        description="Scan a Docker host against the CIS Docker Benchmark and apply reviewed, reversible fixes.",
    )
    p.add_argument("--version", action="version", version=f"dockfix {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for build in SUBCOMMANDS:
        build(sub)
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
        parser = build_parser()
        if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
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
