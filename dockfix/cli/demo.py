"""`dockfix demo` and `dockfix walkthrough`: a practice host that is safe to break.

Only the commands live here; the host is built by dockfix.demo.host, the lesson lives in dockfix.demo.walkthrough, and
Textual is imported only when the app is opened.
"""

from __future__ import annotations

import argparse
import sys


def _say(msg: str) -> None:
    print(f"dockfix demo: {msg}", file=sys.stderr, flush=True)


def _demo_options(p: argparse.ArgumentParser, engine_default: bool = True) -> None:
    p.add_argument("--at", metavar="DIR",
                   help="build the demo host in DIR and keep it afterwards (default: a temporary folder, "
                        "removed on exit); an earlier demo folder is reused as it was left")
    if engine_default:
        p.add_argument("--no-engine", action="store_true",
                       help="do not start the demo's private dockerd: files only")
    else:  # the lessons are about files: the engine only costs start-up time unless asked for
        p.add_argument("--engine", dest="no_engine", action="store_false",
                       help="also start the demo's private dockerd (as root, with dockerd installed)")
    p.add_argument("--notes", metavar="FILE", help="team notes (Markdown) shown beside findings")


def build_demo_parser(sub) -> None:
    p = sub.add_parser(
        "demo", help="open the app on a throwaway practice host with realistic faults",
        description="Build a practice Docker host with realistic faults in a temporary folder (and, as root "
        "with dockerd installed, a private engine of its own with a few badly configured containers), open "
        "the app on it, and remove everything when you leave. Nothing of this machine is read or changed.")
    _demo_options(p)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--scan", "--no-app", dest="scan", action="store_true",
                      help="build the demo host, print its scan and exit (for scripts)")
    mode.add_argument("--hold", action="store_true",
                      help="build the demo host, print where it is, and keep it until Ctrl-C or SIGTERM "
                           "(to explore it with your own commands)")
    p.add_argument("--format", choices=["text", "json"], default="text", help="with --scan: report format")
    p.set_defaults(func=cmd_demo)


def build_walkthrough_parser(sub) -> None:
    p = sub.add_parser(
        "walkthrough", help="a guided lesson on the demo host, one step per topic",
        description="A guided lesson on the demo host: for each topic, the finding and where it is, why it "
        "matters, how to check it by hand, the fix as a diff, applying it, seeing the check pass, and rolling "
        "it back. Progress is saved, so you can stop and come back.")
    _demo_options(p, engine_default=False)
    p.add_argument("--progress", metavar="FILE",
                   help="where progress is saved (default: $XDG_STATE_HOME/dockfix/walkthrough.json, "
                        "i.e. ~/.local/state/dockfix/walkthrough.json)")
    p.add_argument("--restart", action="store_true", help="forget saved progress and start from the first step")
    p.add_argument("--list", action="store_true", help="print the steps and saved progress, and exit")
    p.set_defaults(func=cmd_walkthrough)



# ---------------------------------------------------------------------- commands
def _build(args):
    from dockfix.cli.common import UsageError
    from dockfix.demo.host import DemoError, build_demo

    try:
        return build_demo(args.at, engine=not args.no_engine, on_step=_say)
    except DemoError as e:
        raise UsageError(str(e)) from None


def _load_notes(notes_arg):
    """The team notes (--notes, or this machine's config files), read before anything is built."""
    import argparse

    from dockfix.cli.common import load_notes

    return load_notes(argparse.Namespace(notes=notes_arg, root="/"))


def describe(demo) -> str:
    lines = [f"the demo host is in {demo.folder}" + (" (kept: --at)" if demo.keep else " (removed on exit)"),
             f"  files:   {demo.root}   (scanned as / with --root)",
             f"  project: {demo.project}   (compose stack, Dockerfile, deploy script)"]
    if demo.engine is not None:
        lines.append(f"  engine:  {demo.docker_host}   (try: docker -H {demo.docker_host} ps -a)")
        lines.append("           it runs with --bridge=none --iptables=false --ip-masq=false so that it cannot touch "
                     "this machine's network; these sandbox flags are not counted as faults of the demo host")
    else:
        lines.append("  " + (demo.left_out() or ""))
    return "\n".join(lines)


def cmd_demo(args: argparse.Namespace) -> int:
    from dockfix.cli.common import require_terminal
    from dockfix.demo.host import cleanup_on_signals

    if not (args.scan or args.hold):
        require_terminal()  # before anything is built
    notes = _load_notes(args.notes)
    with cleanup_on_signals(say=_say) as guard:
        demo = guard.demo = _build(args)
        for line in describe(demo).splitlines():
            _say(line)
        if args.scan:
            return _print_scan(demo, notes, args.format)
        if args.hold:
            return _hold(demo)
        from dockfix.tui.demo_app import run_demo_app

        return run_demo_app(demo, notes, guard)
    return 0


def _print_scan(demo, notes, fmt: str) -> int:
    from dockfix.report import render_json, render_text
    from dockfix.scan import scan

    result = scan(demo.context())
    if notes is not None:
        notes.attach(result.findings)
    result.host["demo"] = {"folder": str(demo.folder), "engine": demo.docker_host, "left_out": demo.left_out()}
    text = render_json(result.findings, result.host) if fmt == "json" else render_text(result.findings, result.host)
    sys.stdout.write(text)
    if demo.left_out() and fmt == "text":
        sys.stdout.write("\n" + demo.left_out() + "\n")
    return 0


def _hold(demo) -> int:
    import threading

    _say("ready; press Ctrl-C (or send SIGTERM) to stop it and remove everything")
    print(f"READY {demo.folder}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        _say("stopping")
    return 0


def cmd_walkthrough(args: argparse.Namespace) -> int:
    from dockfix.demo.walkthrough import Walkthrough, default_progress_path

    progress = args.progress or default_progress_path()
    if args.list:
        print(Walkthrough.describe_progress(progress))
        return 0
    from dockfix.cli.common import require_terminal
    from dockfix.demo.host import cleanup_on_signals

    require_terminal()
    notes = _load_notes(args.notes)
    with cleanup_on_signals(say=_say) as guard:
        demo = guard.demo = _build(args)
        for line in describe(demo).splitlines():
            _say(line)
        wt = Walkthrough(demo, progress, notes=notes, restart=args.restart)
        from dockfix.tui.demo_app import run_walkthrough_app

        return run_walkthrough_app(wt, guard)
    return 0
