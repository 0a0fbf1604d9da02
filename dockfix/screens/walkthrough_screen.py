"""The guided lesson: a list of steps on the left, the current step on the right.

A thin screen over dockfix.demo.walkthrough.Walkthrough: every key runs one method of the lesson in a
thread worker and shows the Markdown it returns. Nothing here knows how a fix is made.
"""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Markdown, OptionList, Static
from textual.widgets.option_list import Option

MARKS = {"new": " ", "seen": "·", "done": "✓", "skipped": "–"}


class StageFinished(Message):
    """A stage of the current step ran (``error`` is a one-line message when it failed)."""

    def __init__(self, error: str | None = None) -> None:
        super().__init__()
        self.error = error


class WalkthroughScreen(Screen):
    DEFAULT_CSS = """
    WalkthroughScreen #wt-title { height: auto; background: $panel; padding: 0 1; }
    WalkthroughScreen #wt-steps { width: 36%; max-width: 38; height: 1fr; }
    WalkthroughScreen #wt-lesson { width: 1fr; height: 1fr; padding: 0 1; }
    WalkthroughScreen #wt-status { height: auto; padding: 0 1; background: $boost; }
    """

    HELP_TITLE = "walkthrough"
    # The footer shows the first ones (fitting 80 columns); `?` lists them all.
    BINDINGS = [
        Binding("escape,backspace", "back", "Back", key_display="esc",
                tooltip="back to the app (the lesson's progress is saved)"),
        Binding("n", "next", "Next", tooltip="the next step"),
        Binding("d", "diff", "Diff", tooltip="the fix of this step as a diff"),
        Binding("a", "apply", "Apply", tooltip="apply the fix, then scan the check again"),
        Binding("l", "leave_out", "Leave out", tooltip="leave one of this step's fixes out: the others are "
                "planned again and their diff is shown before you apply"),
        Binding("r", "rollback", "Undo", tooltip="roll the applied fix back"),
        Binding("c", "copy", "Copy", tooltip="copy the command to check it by hand (OSC 52, and written to a file)"),
        Binding("p", "prev", "Previous", show=False, tooltip="the previous step"),
        Binding("s", "skip", "Skip", show=False, tooltip="skip this step"),
        Binding("m", "done", "Mark done", show=False, tooltip="mark a step without an automatic fix as done"),
        Binding("f", "finish", "Summary", show=False, tooltip="what was done and learnt"),
    ]

    def __init__(self, wt) -> None:
        super().__init__()
        self.wt = wt
        self.busy = False

    def compose(self) -> ComposeResult:
        yield Static(self._title(), id="wt-title")
        with Horizontal():
            yield OptionList(*self._options(), id="wt-steps")
            with VerticalScroll(id="wt-lesson"):
                yield Markdown("", id="wt-markdown")
        yield Static("", id="wt-status")
        yield Footer(compact=True)

    def _title(self) -> str:
        done = sum(s.state == "done" for s in self.wt.steps)
        return (f"dockfix walkthrough · demo host {self.wt.demo.folder} · {done} of {len(self.wt.steps)} done · "
                f"progress saved to {self.wt.progress_path}")

    def _options(self) -> list[Option]:
        return [Option(f"{MARKS.get(s.state, ' ')} {i}. {s.title}", id=s.key) for i, s in enumerate(self.wt.steps, 1)]

    def on_mount(self) -> None:
        self._run("look")

    # ------------------------------------------------------------------ work
    def _run(self, what: str, left_out: tuple[str, str] | None = None) -> None:
        self.busy = True
        self.query_one("#wt-status", Static).update(f"working: {what}…")
        self._stage(what, left_out)

    @work(thread=True, exclusive=True, group="walkthrough")
    def _stage(self, what: str, left_out: tuple[str, str] | None = None) -> None:
        from dockfix.demo.walkthrough import WalkthroughError

        try:
            {"look": self.wt.look, "diff": self.wt.show_diff, "apply": self.wt.apply,
             "rollback": self.wt.rollback, "done": self.wt.mark_done,
             "leave out": lambda: self.wt.decline([left_out])}[what]()
            self.post_message(StageFinished())
        except WalkthroughError as e:
            self.post_message(StageFinished(str(e)))
        except Exception as e:  # noqa: BLE001 - shown to the trainee, not a crash
            self.post_message(StageFinished(f"{type(e).__name__}: {e}"))

    @on(StageFinished)
    def _show(self, msg: StageFinished) -> None:
        self.busy = False
        self.refresh_view()
        status = self.query_one("#wt-status", Static)
        status.update(f"[b]Could not do that:[/b] {msg.error}" if msg.error else (self.wt.step.message or ""))

    def refresh_view(self) -> None:
        self.query_one("#wt-title", Static).update(self._title())
        steps = self.query_one("#wt-steps", OptionList)
        for i, option in enumerate(self._options()):
            steps.replace_option_prompt_at_index(i, option.prompt)
        steps.highlighted = self.wt.index
        self.query_one("#wt-markdown", Markdown).update(self.wt.lesson())

    # ------------------------------------------------------------------ keys
    def action_diff(self) -> None:
        self._run("diff")

    def action_apply(self) -> None:
        self._run("apply")

    def action_rollback(self) -> None:
        self._run("rollback")

    def action_done(self) -> None:
        self._run("done")

    def action_leave_out(self) -> None:
        """Leave one fix of this step out (asks which when there are several); the lesson then
        shows the others' diff as planned again, before anything is applied."""
        if self.busy:
            return
        from dockfix.demo.walkthrough import APPLIED

        fixes = self.wt.fixes()
        if len(fixes) > 1 and self.wt.step.stage == APPLIED and self.wt.step.txid:  # refused before asking which
            self._run("leave out", fixes[0])
        elif not fixes:
            self.query_one("#wt-status", Static).update("Nothing to leave out: this step has no fix to apply now.")
        elif len(fixes) == 1:
            self._run("leave out", fixes[0])
        else:
            self.app.push_screen(LeaveOutModal(fixes), lambda chosen: chosen and self._run("leave out", chosen))

    def action_next(self) -> None:
        if self.wt.next() is None:
            self.action_finish()
            return
        self._run("look")

    def action_prev(self) -> None:
        self.wt.prev()
        self._run("look")

    def action_skip(self) -> None:
        if self.wt.skip() is None:
            self.action_finish()
            return
        self._run("look")

    def action_copy(self) -> None:
        from rich.text import Text

        from dockfix.screens.copy import copy_command

        self.query_one("#wt-status", Static).update(Text("copied: " + copy_command(self.app, self.wt.hand_check())))

    def action_back(self) -> None:
        """Back to the page it was opened from (the demo app); on its own, say how to leave."""
        if len(self.app.screen_stack) > 2:
            self.dismiss(None)
        else:
            self.notify("This is the walkthrough's first page: q quits (progress is saved), f shows the summary.",
                        timeout=4)

    def action_finish(self) -> None:
        self.app.push_screen(SummaryScreen(self.wt))

    @on(OptionList.OptionSelected, "#wt-steps")
    def _pick(self, event: OptionList.OptionSelected) -> None:
        if event.option_index != self.wt.index or self.wt.step.left_out:  # again: every fix planned
            self.wt.goto(event.option_index)
            self._run("look")


class LeaveOutModal(ModalScreen):
    """Which of the step's fixes to leave out: Enter picks, Esc leaves them all in."""

    DEFAULT_CSS = """
    LeaveOutModal { align: center middle; }
    LeaveOutModal > Vertical { width: 80%; max-width: 90; height: auto; max-height: 80%;
                               border: round $accent; background: $surface; padding: 0 1; }
    LeaveOutModal OptionList { height: auto; max-height: 20; }
    """
    HELP_TITLE = "leave a fix out"
    BINDINGS = [Binding("escape", "cancel", "Cancel", key_display="esc", tooltip="leave every fix in")]

    def __init__(self, fixes: list[tuple[str, str]]) -> None:
        super().__init__()
        self.fixes = fixes

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Leave which fix out? The others are planned again and shown before you apply.")
            yield OptionList(*(Option(f"{cid}  {subject}") for cid, subject in self.fixes), id="leave-out")
            yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected, "#leave-out")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.fixes[event.option_index])

    def action_cancel(self) -> None:
        self.dismiss(None)


class SummaryScreen(Screen):
    """What was done and learnt. Esc (or b) goes back to the lesson."""

    HELP_TITLE = "walkthrough summary"
    BINDINGS = [Binding("escape,b", "back", "Back to the steps", tooltip="back to the lesson")]

    def __init__(self, wt) -> None:
        super().__init__()
        self.wt = wt

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Markdown(self.wt.summary(), id="wt-summary")
        yield Footer(compact=True)

    def action_back(self) -> None:
        self.app.pop_screen()
