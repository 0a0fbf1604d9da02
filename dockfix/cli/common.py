"""What every subcommand shares: host and selection options, the scan context they describe, one-line
usage errors, and writing a report file safely."""

from __future__ import annotations

import argparse
import os
import sys


EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_ERRORS = 0, 1, 2, 3

NO_TERMINAL = ("no terminal: the app needs one; use `dockfix scan` for a report, "
               "or `dockfix --apply --yes` to fix without one")


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit 2."""


def add_host_options(p: argparse.ArgumentParser, only: tuple[str, ...] | None = None) -> None:
    """The host options. ``only`` names those the command uses ("root", "engine", "files", "notes",
    "offline");
    the others are still accepted (scripts pass one set of host options to every command) but do
    nothing there, so the command's help does not list them."""
    want = set(only or ("root", "engine", "files", "notes", "offline"))

    def h(kind: str, text: str) -> str:
        return text if kind in want else argparse.SUPPRESS

    g = p.add_argument_group("host")
    g.add_argument("--root", default="/", metavar="P", help=h("root", "scan the host tree below P (default /)"))
    e = g.add_mutually_exclusive_group()
    e.add_argument("--docker-host", metavar="URL",
                   help=h("engine", "engine to scan (default with --root /: $DOCKER_HOST, else the default socket; "
                          "with another --root: none unless given)"))
    e.add_argument("--no-engine", action="store_true", help=h("engine", "leave the engine out: files only"))
    g.add_argument("--path", action="append", default=[], metavar="DIR",
                   help=h("files", "folder with Dockerfiles, compose files and scripts to scan (repeatable)"))
    g.add_argument("--compose", action="append", default=[], metavar="FILE",
                   help=h("files", "compose file to scan (repeatable)"))
    g.add_argument("--notes", metavar="FILE", help=h("notes", "team notes (Markdown) shown beside findings"))
    g.add_argument("--offline", action="store_true",
                   help=h("offline", "contact nothing but the engine: image signatures are checked from bundles "
                          "stored beside the trust policy, or skipped"))


def add_selection_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--only", action="append", default=[], metavar="IDS", help="check ids or CIS numbers, comma-separated")
    p.add_argument("--skip", action="append", default=[], metavar="IDS", help="check ids or CIS numbers to leave out")
    p.add_argument("--benchmark", default="1.8.0", metavar="VERSION",
                   help="CIS Docker Benchmark version whose numbers are used in output, --only and --skip "
                   "(1.6.0, 1.7.0 or 1.8.0; default 1.8.0)")


def require_terminal() -> None:
    """The app (and demo, walkthrough) need a terminal: without one (cron, CI, `dockfix > out.txt`)
    they would wait forever and write escape codes into a file. Exit 2 at once instead."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(NO_TERMINAL)


def add_waiver_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--waivers", metavar="FILE",
                   help="accepted risks, each with a reason and an expiry date (default: "
                        "/etc/dockfix/waivers.yaml on the scanned host, if it exists)")


def load_waivers(args: argparse.Namespace):
    """The waiver file given with --waivers (a path on this machine), else the scanned host's
    /etc/dockfix/waivers.yaml when it exists, else None. UsageError "FILE:LINE: problem"."""
    from dockfix.waivers import WaiverError, load_for

    try:
        return load_for(getattr(args, "root", "/"), getattr(args, "waivers", None))
    except WaiverError as e:
        raise UsageError(str(e)) from None


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
    from dockfix.benchmarks import UnknownBenchmark, check_version
    from dockfix.host import Host
    from dockfix.context import Context

    try:
        benchmark = check_version(getattr(args, "benchmark", None) or "1.8.0")
    except UnknownBenchmark as e:
        raise UsageError(f"--benchmark: {e}") from None

    if not os.path.isdir(args.root):
        raise UsageError(f"{args.root}: --root is not a directory")
    # Engines are named, never assumed: a tree (--root other than /) is not this machine, so its
    # engine is not $DOCKER_HOST or this machine's socket; only --docker-host names one for it.
    live = os.path.abspath(args.root) == "/"
    docker_host = getattr(args, "docker_host", None)
    engine = not getattr(args, "no_engine", False) and (live or bool(docker_host))
    host = Host(root=args.root, docker_host=docker_host, engine=engine)
    given_paths, given_compose = getattr(args, "path", []) or [], getattr(args, "compose", []) or []
    paths = [host_path(args.root, p) for p in given_paths]
    for given, p in zip(given_paths, paths):
        if not host.is_dir(p):
            raise UsageError(f"{given}: --path is not a directory")
    compose = [host_path(args.root, p) for p in given_compose]
    for given, p in zip(given_compose, compose):
        if not host.is_file(p):
            raise UsageError(f"{given}: --compose file not found")
    return Context(host=host, paths=paths, compose=compose, benchmark=benchmark,
                   offline=bool(getattr(args, "offline", False)))


def load_notes(args: argparse.Namespace):
    """Team notes from --notes (or the config file), or None."""
    from dockfix.team_notes import NotesError, load_for_args

    try:
        notes = load_for_args(getattr(args, "notes", None), getattr(args, "root", "/"))
    except NotesError as e:
        raise UsageError(str(e)) from None
    for w in notes.warnings() if notes else ():
        print(f"dockfix: warning: {w}", file=sys.stderr)
    return notes


def write_output(path: str, text: str, mode: int = 0o666) -> None:
    """Write a report or plan to the file ``-o`` names, atomically and never over anything but a
    regular file (fsops.write_named_file: ``-o /dev/null`` discards, a device or FIFO is refused).
    ``-o /dev/stdout`` (a link in /dev to one of our own outputs) is written to, never replaced."""
    import stat

    from dockfix.fsops import FsError, write_named_file

    data = text.encode("utf-8", "backslashreplace")
    out = None
    try:
        if stat.S_ISLNK(os.lstat(path).st_mode):
            target = os.stat(path)
            out = next((fd for fd in (1, 2) if os.path.samestat(target, os.fstat(fd))), None)
    except OSError:
        pass
    if out is not None:
        try:
            from dockfix.fsops import write_all

            write_all(out, data)
        except OSError as e:
            raise UsageError(f"{path}: cannot write: {e.strerror}") from None
        return
    try:
        write_named_file(path, data, mode)
    except FsError as e:
        raise UsageError(f"{e} (leave out -o to print it)") from None
