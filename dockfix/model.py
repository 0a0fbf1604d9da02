"""Findings, statuses, severities, fix safety, and the check registry.

A check is one small declaration: a function decorated with :func:`check` that looks at the
host through a :class:`~dockfix.scan.Context` and returns one :class:`Result` or several (one per
subject). The scanner adds the declared metadata (id, CIS number, title, explanation, ...) to
each result to make a :class:`Finding`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable


class Severity(enum.IntEnum):
    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    def __str__(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> "Severity":
        try:
            return cls[text.upper()]
        except KeyError:
            raise ValueError(f"unknown severity {text!r} (choose from {', '.join(str(s) for s in cls)})") from None


INFO, LOW, MEDIUM, HIGH, CRITICAL = Severity.INFO, Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL


class Status(str, enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    MANUAL = "manual"
    SKIP = "skip"
    ERROR = "error"

    def __str__(self) -> str:
        return self.value

    @property
    def rank(self) -> int:
        """Position in :data:`STATUS_ORDER`: 0 is the worst (fail)."""
        return STATUS_ORDER.index(self)


#: The one order of statuses, worst first: every report, count and sort uses it.
STATUS_ORDER = (Status.FAIL, Status.ERROR, Status.MANUAL, Status.SKIP, Status.PASS)


class Safety(str, enum.Enum):
    """How a fix may be applied: SAFE in bulk; DISRUPTIVE (restarts a service or changes what users
    notice) only on request and confirmed one by one; MANUAL shown with what to do, never applied."""

    SAFE = "safe"
    DISRUPTIVE = "disruptive"
    MANUAL = "manual"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Location:
    """Where in a file a finding points: the path as on the host, and a 1-based line."""

    path: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path


@dataclass
class Result:
    """What a check saw about one subject."""

    status: Status
    evidence: str = ""
    subject: str | None = None
    location: Location | None = None
    # Free-form facts for the fix builder (never secret values).
    data: dict[str, Any] = field(default_factory=dict)
    #: Overrides the check's severity for this one subject (e.g. vfs is a low-severity storage-driver fail).
    severity: "Severity | None" = None

    @classmethod
    def ok(cls, evidence: str = "", **kw: Any) -> "Result":
        return cls(Status.PASS, evidence, **kw)

    @classmethod
    def fail(cls, evidence: str, **kw: Any) -> "Result":
        return cls(Status.FAIL, evidence, **kw)

    @classmethod
    def manual(cls, evidence: str, **kw: Any) -> "Result":
        return cls(Status.MANUAL, evidence, **kw)

    @classmethod
    def skip(cls, reason: str, **kw: Any) -> "Result":
        return cls(Status.SKIP, reason, **kw)

    @classmethod
    def error(cls, reason: str, **kw: Any) -> "Result":
        return cls(Status.ERROR, reason, **kw)


class CheckError(Exception):
    """Raised by a source (a file, the engine) that cannot be evaluated; the check becomes `error`.

    The message names the file (or the engine) and the problem, on one line. ``subject``, when
    given, is the subject of the resulting `error` finding (e.g. the daemon.json that is malformed).
    """

    def __init__(self, message: str = "", subject: str | None = None):
        super().__init__(message)
        self.subject = subject


class NotApplicable(Exception):
    """Raised by a check (or a source it uses) when it does not apply here; becomes `skip`."""


CheckFn = Callable[[Any], "Result | Iterable[Result]"]


@dataclass
class Check:
    id: str
    cis: str | None
    title: str
    severity: Severity
    section: str
    explanation: str
    manual_check: str
    remediation: str
    fn: CheckFn
    #: What the check's fix is (its safety and impact), declared with the check so that a scan can
    #: say so without loading any fix; the plan builder is attached by the fix module.
    fix_spec: "Fix | None" = None
    builder: Callable[..., Any] | None = None
    #: Subject used when the function returns a Result with no subject.
    subject: str | None = None

    def fix(self, builder: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator: attach the plan builder ``builder(ctx, finding)`` (see dockfix.fixes). The one way
        a fix joins its check; the check must declare ``fix=Fix(...)``."""
        if self.fix_spec is None:
            raise TypeError(f"check {self.id!r} declares no fix: add fix=Fix(safety, impact) to its @check")
        if self.builder is not None:
            raise TypeError(f"check {self.id!r} has a plan builder already")
        self.builder = builder
        return builder


@dataclass(frozen=True)
class Fix:
    """A check's fix, as the check declares it: how it may be applied and what it changes for users."""

    safety: Safety
    impact: str

    def __post_init__(self) -> None:
        if not isinstance(self.safety, Safety):
            raise TypeError(f"fix safety must be a Safety, not {self.safety!r}")
        object.__setattr__(self, "impact", " ".join(self.impact.split()))

    def to_json(self) -> dict[str, str]:
        return {"safety": self.safety.value, "impact": self.impact}


REGISTRY: dict[str, Check] = {}


def get_check(check_id: str) -> Check:
    """The check with this id (a fix module naming a check that does not exist fails at import)."""
    try:
        return REGISTRY[check_id]
    except KeyError:
        raise KeyError(f"no check {check_id!r} is declared") from None

#: Sections, in report order, keyed by the CIS section number ("notes" for the team's findings).
SECTIONS = {
    "1": "Host configuration",
    "2": "Docker daemon configuration",
    "3": "Docker daemon configuration files",
    "4": "Container images and build files",
    "5": "Container runtime",
    "6": "Docker security operations",
    "7": "Docker swarm configuration",
    "notes": "Team security notes",
}


def section_of(cis: str | None) -> str:
    return cis.split(".")[0] if cis else "notes"


def check(
    id: str,
    *,
    cis: str | None,
    title: str,
    severity: Severity,
    explanation: str,
    manual: str,
    remediation: str,
    subject: str | None = None,
    section: str | None = None,
    fix: Fix | None = None,
) -> Callable[[CheckFn], Check]:
    """Declare a check. The decorated function becomes a :class:`Check` in :data:`REGISTRY`."""

    def deco(fn: CheckFn) -> Check:
        if id in REGISTRY:
            raise ValueError(f"duplicate check id {id!r}")
        c = Check(
            id=id,
            cis=cis,
            title=title,
            severity=severity,
            section=section or section_of(cis),
            explanation=" ".join(explanation.split()),
            manual_check=manual.strip(),
            remediation=" ".join(remediation.split()),
            fn=fn,
            subject=subject,
            fix_spec=fix,
        )
        REGISTRY[id] = c
        return c

    return deco


@dataclass
class Finding:
    id: str
    cis: str | None
    title: str
    severity: Severity
    section: str
    subject: str
    status: Status
    evidence: str
    explanation: str
    manual_check: str
    remediation: str
    location: Location | None = None
    fix: dict[str, Any] | None = None
    data: dict[str, Any] = field(default_factory=dict, repr=False)
    team_notes: list[str] = field(default_factory=list)
    #: "automated" or "manual" as the chosen CIS Docker Benchmark version assesses the item; None outside it.
    assessment: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.id, self.subject)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "cis": self.cis,
            "assessment": self.assessment,
            "title": self.title,
            "severity": str(self.severity),
            "section": self.section,
            "subject": self.subject,
            "status": str(self.status),
            "evidence": self.evidence,
            "location": (
                {"path": self.location.path, "line": self.location.line} if self.location else None
            ),
            "explanation": self.explanation,
            "manual_check": self.manual_check,
            "remediation": self.remediation,
            "fix": self.fix,
            "team_notes": self.team_notes,
        }
