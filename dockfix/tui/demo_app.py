"""Opening the app on the demo host, and the walkthrough app. Imports Textual: used only when a
terminal app is started (never by `dockfix demo --scan`)."""

from __future__ import annotations

import asyncio

from textual.app import App
from textual.binding import Binding


def make_demo_app(demo, notes=None):
    """The dockfix app on the demo host, team notes attached, the left-out engine explained."""
    from dockfix.tui.app import DockfixApp

    class DemoApp(DockfixApp):
        BINDINGS = [Binding("w", "walkthrough", "Lesson", tooltip="the walkthrough: a guided lesson on this demo host; Esc comes back")]

        def on_mount(self) -> None:
            super().on_mount()
            self.sub_title = "demo host"
            if demo.left_out():
                self.notify(demo.left_out(), title="Files only", timeout=12)
            notify_notes_problems(self, notes)

        def check_action(self, action: str, parameters) -> bool | None:
            if action == "walkthrough":  # offered on the findings page, not from inside the lesson
                from dockfix.screens.findings_screen import FindingsScreen

                return isinstance(self.screen, FindingsScreen)
            return super().check_action(action, parameters)

        def action_walkthrough(self) -> None:
            from dockfix.screens.walkthrough_screen import WalkthroughScreen
            from dockfix.demo.walkthrough import Walkthrough, default_progress_path

            self.clear_notifications()  # the lesson's first step must not sit under a toast
            self.push_screen(WalkthroughScreen(Walkthrough(demo, default_progress_path(), notes=notes)),
                             self._back_from_walkthrough)

        def _back_from_walkthrough(self, _result=None) -> None:
            # The lesson changed the demo's files: scan again so the findings are the host's.
            from dockfix.screens.findings_screen import FindingsScreen

            if isinstance(self.screen, FindingsScreen):
                self.screen.start_scan()

    from dockfix.team_notes import with_notes

    return DemoApp(demo.context, host_label=f"demo host {demo.folder}", **with_notes(notes))


class WalkthroughApp(App[int]):
    TITLE = "dockfix walkthrough"
    CSS_PATH = "app.tcss"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("question_mark", "help", "Help", key_display="?", tooltip="every key of this page"),
        Binding("q", "quit", "Quit", tooltip="leave (progress is saved; the demo host is removed)"),
    ]

    def __init__(self, wt) -> None:
        super().__init__()
        self.wt = wt

    def on_mount(self) -> None:
        from dockfix.screens.walkthrough_screen import WalkthroughScreen

        self.push_screen(WalkthroughScreen(self.wt))
        # The files-only notice is part of the summary (f) and of `dockfix walkthrough`'s output:
        # a toast here would cover the first step.
        notify_notes_problems(self, self.wt.notes)

    def action_help(self) -> None:
        from dockfix.screens.help_screen import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen, self.focused))


def notify_notes_problems(app: App, notes) -> None:
    """Untagged sections and unknown tags of the team notes, shown as warnings (file:line: problem)."""
    for problem in (notes.warnings() if notes is not None else []):
        app.notify(problem, title="Team notes", severity="warning", timeout=30)


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
