"""Messages the app's workers send back to the screens (past tense: they report what happened)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.message import Message

from dockfix.model import Finding

if TYPE_CHECKING:  # types only: the fix core is imported when the first plan is made
    from dockfix.plan import Plan
    from dockfix.workflow import Verdict


class ScanProgressed(Message):
    """One more check finished: ``done`` of ``total``, with the findings it produced."""

    def __init__(self, done: int, total: int, findings: list[Finding], generation: int) -> None:
        super().__init__()
        self.done, self.total, self.findings, self.generation = done, total, findings, generation


class ScanCompleted(Message):
    def __init__(self, findings: list[Finding], generation: int) -> None:
        super().__init__()
        self.findings, self.generation = findings, generation


class ScanFailed(Message):
    def __init__(self, error: str, generation: int) -> None:
        super().__init__()
        self.error, self.generation = error, generation


class PlanBuilt(Message):
    """A plan was built for some findings; ``purpose`` is "diff" or "apply"."""

    def __init__(self, plan: Plan, findings: list[Finding], purpose: str) -> None:
        super().__init__()
        self.plan, self.findings, self.purpose = plan, findings, purpose


class PlanFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class FixesApplied(Message):
    """The apply returned (successfully or after rolling back); ``verdicts`` say per applied fix
    whether its check now passes (the workflow's one rule), empty when nothing was applied."""

    def __init__(self, plan: Plan, result: Any, verdicts: list[Verdict] | None = None) -> None:
        super().__init__()
        self.plan, self.result, self.verdicts = plan, result, verdicts or []


class FindingsRescanned(Message):
    """The checks in ``check_ids`` were run again; ``findings`` replace theirs."""

    def __init__(self, check_ids: list[str], findings: list[Finding]) -> None:
        super().__init__()
        self.check_ids, self.findings = check_ids, findings
