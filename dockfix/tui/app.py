"""The Textual app: scan, read why, review the diff, apply, roll back — from the keyboard.

The app is a thin shell over the core. It is handed a factory of scan Contexts (and, for the
team's notes, scan and rescan functions), and it fixes through the same FixSession as the headless
commands, so that tests can run it on a host tree under a temporary folder. Slow work (files, the
Docker API) runs in thread workers; the results come back as messages.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from textual.app import App
from textual.binding import Binding

from dockfix.context import Context
from dockfix.tui.background_scan import scan_host

if TYPE_CHECKING:
    from dockfix.workflow import FixSession


@dataclass
class Core:
    """What the app calls: a factory of fresh scan contexts, the scan, and the fix workflow
    (:class:`dockfix.workflow.FixSession`, made for a context when the app plans, applies, rescans,
    lists or rolls back)."""

    context: Callable[[], Context]
    scan: Callable[..., Any]
    session: Callable[[Context], FixSession]
    #: Findings of a rescan, with the team's notes attached (default: the session's rescan).
    rescan: Callable[[Context, list[str]], list] | None = None

    def rescan_checks(self, ctx: Context, check_ids: list[str]) -> list:
        return list(self.rescan(ctx, check_ids) if self.rescan else self.session(ctx).rescan(check_ids))

    #: The waiver file (a path on this machine); findings it covers are shown as waived.
    waivers_path: str | None = None

    def mark_waived(self, findings: list) -> str | None:
        """Set ``finding.waiver`` from the waiver file (read anew each time); the problem with the
        file, if any, as one line (FILE:LINE: problem), or the expired waivers."""
        if not self.waivers_path or not os.path.lexists(self.waivers_path):
            return None
        from dockfix.waivers import WaiverError, load_waivers

        try:
            expired = load_waivers(self.waivers_path).apply(findings)
        except WaiverError as e:
            return str(e)
        if expired:
            return "; ".join(f"{w.where()}: waiver for {w.check} expired on {w.expires.isoformat()}" for w in expired)
        return None

    def add_waiver(self, finding: Any, reason: str, expires: Any) -> Any:
        """Add a waiver for this finding's check and subject (WaiverError when it cannot)."""
        from dockfix.waivers import append_waiver

        if not self.waivers_path:
            raise ValueError("no waiver file for this host")
        os.makedirs(os.path.dirname(self.waivers_path), exist_ok=True)
        return append_waiver(self.waivers_path, finding.id, subject=finding.subject, reason=reason, expires=expires)


def fix_refusal(ctx: Context, euid: int) -> str | None:
    """Why this session can read but not fix the host (None when it can fix)."""
    root = ctx.host.root
    if euid != 0 and ctx.host.is_live:
        return (
            f"running as uid {euid}, not root: dockfix can read this host but cannot fix it, because "
            "the files it changes (/etc/docker, the docker unit files, the socket) belong to root "
            "and its rollback journal lives in /var/lib/dockfix. Start it with sudo to apply fixes."
        )
    if euid != 0:
        return (
            f"running as uid {euid}, not root: dockfix can read the tree under {root} but cannot fix it, "
            "because its fixes give files to root and its journal must be written as root."
        )
    if not os.access(root, os.W_OK):
        return f"the tree under {root} is read-only here: findings can be read, not fixed."
    return None


class DockfixApp(App[int]):
    """dockfix's interactive app. ``context`` builds a fresh scan Context for each operation."""

    CSS_PATH = "app.tcss"
    TITLE = "dockfix"
    ENABLE_COMMAND_PALETTE = False
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    BINDINGS = [
        Binding("question_mark", "help", "Help", key_display="?", tooltip="every key of this page"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        context: Callable[[], Context],
        *,
        scan: Callable[..., Any] | None = None,
        rescan: Callable[..., Any] | None = None,
        host_label: str | None = None,
        euid: int | None = None,
        time_format: Callable[[Any], str] | None = None,
        background_scan: Any = None,
        waivers: str | None = None,
        gc_paused: bool = False,
    ) -> None:
        super().__init__()
        self.core = Core(context, scan or scan_host, _fix_session, rescan)
        #: A scan already running (dockfix.tui.background_scan), taken over by the findings page.
        self.background_scan = background_scan
        first = background_scan.ctx if background_scan is not None else context()
        self.host = first.host
        self.first_context: Context | None = None if background_scan is not None else first
        self.euid = os.geteuid() if euid is None else euid
        self.refusal = fix_refusal(first, self.euid)
        if host_label is None:
            host_label = os.uname().nodename if self.host.is_live else self.host.root
        self.host_label = host_label
        if waivers is None:  # the scanned host's own file (below --root), as `dockfix scan` reads it
            waivers = os.path.join(str(self.host.root), "etc/dockfix/waivers.yaml")
        elif self.core.session is _fix_session:  # fixes leave out what this file waives, as the table shows
            self.core.session = functools.partial(_fix_session, waivers=waivers)
        self.core.waivers_path = waivers
        self.time_format = time_format or _default_time
        #: The launcher turned the garbage collector off until the first findings are painted.
        self.gc_paused = gc_paused

    def new_context(self) -> Context:
        """A fresh Context (its sources read anew): the first call reuses the one made at start."""
        if self.first_context is not None:
            ctx, self.first_context = self.first_context, None
            return ctx
        return self.core.context()

    def on_mount(self) -> None:
        from dockfix.screens.findings_screen import FindingsScreen

        self.push_screen(FindingsScreen())
        if self.gc_paused:
            self.set_timer(3, self.first_paint_done)  # at the latest (an engine that hangs: no rows yet)

    def first_paint_done(self) -> None:
        """The first findings are on screen: the garbage collector (off since the launcher, ≈0.05 s
        of collections saved before the first paint) runs again. What start-up made (modules,
        classes, styles: long-lived) is frozen out of its later full collections."""
        if self.gc_paused:
            import gc

            self.gc_paused = False
            gc.freeze()
            gc.enable()

    def action_help(self) -> None:
        from dockfix.screens.help_screen import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen, self.focused))


def _fix_session(ctx: Context, waivers: str | None = None) -> FixSession:
    """A FixSession for ctx. The fix core (workflow, plans, changes, journal: ~0.1 s of imports) is
    loaded when the first plan, journal listing or rescan needs it, after the first paint."""
    from dockfix.workflow import FixSession

    return FixSession(ctx, waivers=waivers)


def _default_time(value: Any) -> str:
    """Times in UTC, as the headless `dockfix journal` shows them (the column says so)."""
    import datetime as dt

    if isinstance(value, (int, float)):
        value = dt.datetime.fromtimestamp(value, dt.timezone.utc)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
    return str(value)


