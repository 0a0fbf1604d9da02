"""What every subcommand shares: host and selection options, the scan context they describe, one-line
usage errors, and writing a report file safely."""

from __future__ import annotations

import argparse
import os
import sys


EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit 2."""


def add_host_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("host")
    g.add_argument("--root", default="/", metavar="P", help="scan the host tree below P (default /)")
    e = g.add_mutually_exclusive_group()
    e.add_argument("--docker-host", metavar="URL", help="engine to scan (default with --root /: $DOCKER_HOST, else the "
                                                        "default socket; with another --root: none unless given)")
    e.add_argument("--no-engine", action="store_true", help="leave the engine out: files only")
    g.add_argument("--path", action="append", default=[], metavar="DIR",
                   help="folder with Dockerfiles, compose files and scripts to scan (repeatable)")
    g.add_argument("--compose", action="append", default=[], metavar="FILE", help="compose file to scan (repeatable)")
    g.add_argument("--notes", metavar="FILE", help="team notes (Markdown) shown beside findings")
    g.add_argument("--offline", action="store_true",
                   help="contact nothing but the engine: image signatures are checked from bundles stored beside "
                   "the trust policy, or skipped")


def add_selection_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--only", action="append", default=[], metavar="IDS", help="check ids or CIS numbers, comma-separated")
    p.add_argument("--skip", action="append", default=[], metavar="IDS", help="check ids or CIS numbers to leave out")
    p.add_argument("--benchmark", default="1.8.0", metavar="VERSION",
                   help="CIS Docker Benchmark version whose numbers are used in output, --only and --skip "
                   "(1.6.0, 1.7.0 or 1.8.0; default 1.8.0)")


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
    engine = not args.no_engine and (live or bool(args.docker_host))
    host = Host(root=args.root, docker_host=args.docker_host, engine=engine)
    paths = [host_path(args.root, p) for p in args.path]
    for given, p in zip(args.path, paths):
        if not host.is_dir(p):
            raise UsageError(f"{given}: --path is not a directory")
    compose = [host_path(args.root, p) for p in args.compose]
    for given, p in zip(args.compose, compose):
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
    """Write a report atomically. The temporary file is created fresh (O_EXCL, random name) in the
    target's folder, so a link planted at a guessable name (``report.json.tmp -> /etc/shadow``) is
    never followed by a root-run dockfix; the rename then replaces ``path`` itself, not a link's target."""
    import stat
    import tempfile

    # Never rename over something that is not a file: `-o /dev/null` as root would otherwise replace
    # the machine's /dev/null with a regular file (and `-o /dev/stdout` the link in /dev).
    try:
        st = os.lstat(path)
    except OSError:
        st = None
    if st is not None and not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3):
            return  # /dev/null: the report is discarded, the device stays a device
        from dockfix.host import kind_of

        raise UsageError(f"{path}: is a {kind_of(st.st_mode)}, not a file: dockfix writes reports and plans to "
                         f"regular files only (leave out -o to print it)")
    parent = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    in_dev = parent == "/dev" or parent.startswith("/dev/")
    if in_dev and st is None:
        raise UsageError(f"{path}: dockfix creates no file in /dev (leave out -o to print it)")
    if st is not None and stat.S_ISLNK(st.st_mode):
        try:
            target = os.stat(path)
        except OSError:
            target = None
        if target is not None and (in_dev or not stat.S_ISREG(target.st_mode)):
            # /dev/stdout, /dev/stderr: the link leads to one of our own outputs; write there, never
            # replace the link (it belongs to /dev)
            for fd in (1, 2):
                try:
                    if os.path.samestat(target, os.fstat(fd)):
                        os.write(fd, text.encode("utf-8", "backslashreplace"))
                        return
                except OSError:
                    pass
            raise UsageError(f"{path}: leads to something that is not a file: dockfix writes reports and plans to "
                             f"regular files only (leave out -o to print it)")
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
