"""Opening the app on the demo host, and the walkthrough app. Imports Textual: used only when a
terminal app is started (never by `dockfix demo --scan`)."""

from __future__ import annotations

import asyncio
from typing import Any

from textual.app import App
from textual.binding import Binding


def _notes_scan(notes):
    """The scan function with the team notes attached to every finding."""
    from dockfix import scan as scan_mod

    def scan(ctx, *a: Any, **kw: Any):
        result = scan_mod.scan(ctx, *a, **kw)
        if notes is not None:
            notes.attach(result.findings)
        return result

    return scan


def _notes_rescan(notes):
    try:
        from dockfix import workflow
    except ImportError:
        return None

    def rescan(ctx, check_ids):
        found = workflow.rescan(ctx, check_ids)
        if notes is not None:
            notes.attach(found)
        return found

    return rescan


def make_demo_app(demo, notes=None):
    """The dockfix app on the demo host, team notes attached, the left-out engine explained."""
    from dockfix.app import DockfixApp

    class DemoApp(DockfixApp):
        BINDINGS = [Binding("w", "walkthrough", "Walkthrough")]

        def on_mount(self) -> None:
            super().on_mount()
            self.sub_title = "demo host"
            if demo.left_out():
                self.notify(demo.left_out(), title="Files only", timeout=30)

        def action_walkthrough(self) -> None:
            from dockfix.screens.walkthrough_screen import WalkthroughScreen
            from dockfix.walkthrough import Walkthrough, default_progress_path

            self.push_screen(WalkthroughScreen(Walkthrough(demo, default_progress_path(), notes=notes)))

    return DemoApp(demo.context, scan=_notes_scan(notes), rescan=_notes_rescan(notes),
                   host_label=f"demo host {demo.folder}")


class WalkthroughApp(App[int]):
    TITLE = "dockfix walkthrough"
    BINDINGS = [Binding("q", "quit", "Quit")]

    def __init__(self, wt) -> None:
        super().__init__()
        self.wt = wt

    def on_mount(self) -> None:
        from dockfix.screens.walkthrough_screen import WalkthroughScreen

        self.push_screen(WalkthroughScreen(self.wt))
        if self.wt.demo.left_out():
            self.notify(self.wt.demo.left_out(), title="Files only", timeout=30)


def _exit_on_signal(app: App, guard) -> None:
    """SIGTERM/SIGHUP while the app runs: leave the app cleanly (the terminal restored), then clean up."""

    def stop() -> None:
        try:
            asyncio.get_running_loop().call_soon_threadsafe(app.exit)
        except RuntimeError:
            raise SystemExit(143) from None

    guard.on_signal = stop


def run_demo_app(demo, notes, guard) -> int:
    app = make_demo_app(demo, notes)
    _exit_on_signal(app, guard)
    app.run()
    return app.return_code or 0


def run_walkthrough_app(wt, guard) -> int:
    app = WalkthroughApp(wt)
    _exit_on_signal(app, guard)
    app.run()
    print(wt.summary())
    return app.return_code or 0
