"""Pure helpers the screens share: ordering, filtering and wording of findings.

Nothing here draws on the terminal; it turns findings (and plans, transactions) into rich Text
or Markdown so that the screens stay thin.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterable

from rich.text import Text

from dockfix.model import SECTIONS, STATUS_ORDER, Finding, Safety, Severity, Status  # noqa: F401 (SECTIONS re-exported)

#: Status filters, in the order the `f` key cycles through them. "todo" is what needs a look.
FILTERS: dict[str, tuple[Status, ...]] = {
    "todo": (Status.FAIL, Status.ERROR, Status.MANUAL),
    "fail": (Status.FAIL,),
    "manual": (Status.MANUAL,),
    "error": (Status.ERROR,),
    "pass": (Status.PASS,),
    "all": tuple(Status),
}
FILTER_LABELS = {
    "todo": "to do",
    "fail": "fail",
    "manual": "manual",
    "error": "error",
    "pass": "pass",
    "all": "all",
}



STATUS_STYLE = {
    Status.FAIL: "bold red",
    Status.ERROR: "bold magenta",
    Status.MANUAL: "yellow",
    Status.PASS: "green",
    Status.SKIP: "dim",
}
SEVERITY_STYLE = {
    Severity.CRITICAL: "bold reverse red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}
#: Without colour (NO_COLOR) the words carry the meaning; weight marks what is urgent.
STATUS_STYLE_PLAIN = {
    Status.FAIL: "bold",
    Status.ERROR: "bold",
    Status.MANUAL: "",
    Status.PASS: "",
    Status.SKIP: "",
}
SEVERITY_STYLE_PLAIN = {
    Severity.CRITICAL: "bold reverse",
    Severity.HIGH: "bold",
    Severity.MEDIUM: "",
    Severity.LOW: "",
    Severity.INFO: "",
}
SAFETY_STYLE = {Safety.SAFE.value: "green", Safety.DISRUPTIVE.value: "bold red", Safety.MANUAL.value: "yellow"}

_SECTION_ORDER = {s: i for i, s in enumerate(SECTIONS)}


def order_key(f: Finding) -> tuple:
    """Report order: section, CIS number, check id, subject."""
    cis = tuple(int(x) for x in f.cis.split(".")) if f.cis else (999,)
    return (_SECTION_ORDER.get(f.section, 99), cis, f.id, f.subject)


#: Section titles short enough for the table's Check column (the detail and the README use the full ones).
SHORT_SECTIONS = {"1": "Host", "2": "Daemon", "3": "Daemon files", "4": "Images and build files",
                  "5": "Container runtime", "6": "Security operations", "7": "Swarm", "notes": "Team notes"}


def section_summary(findings: Iterable[Finding], statuses: tuple[Status, ...], width: int) -> str:
    """A section's counts for the statuses shown, fitting width (short words when needed)."""
    c = Counter(f.status for f in findings)
    shown = [s for s in STATUS_ORDER if c[s] and s in statuses]
    text = " · ".join(f"{c[s]} {s.value}" for s in shown)
    if len(text) > width:
        text = " ".join(f"{c[s]} {s.value[:4]}" for s in shown)
    return text


_STATUS_RANK = {s: i for i, s in enumerate(STATUS_ORDER)}

#: Sort orders, in the order the `s` key cycles through them ("section" groups by CIS section).
SORTS = {
    "section": order_key,
    "severity": lambda f: (-int(f.severity), order_key(f)),
    "status": lambda f: (_STATUS_RANK.get(f.status, 99), order_key(f)),
    "check": lambda f: (f.id, f.subject),
    "subject": lambda f: (f.subject, order_key(f)),
}

#: Severity filters, in the order the `v` key cycles through them: the lowest severity shown.
SEVERITY_FILTERS: list[Severity | None] = [None, Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW]


def ellipsize(text: str, width: int) -> str:
    """The start of text, cut with … to fit width."""
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def tail(text: str, width: int) -> str:
    """The end of text (the part that names the thing: the file, the service), cut with … at the start."""
    if len(text) <= width:
        return text
    kept = text[len(text) - max(0, width - 1):]
    cut = kept.find("/", 1)
    if 0 < cut < len(kept) - 4 and "/" in kept[cut + 1:] or 0 < cut < len(kept) // 2:
        kept = kept[cut:]  # start at a whole path component: …/docker/daemon.json
    return "…" + kept


def section_title(section: str) -> str:
    title = SECTIONS.get(section, section)
    return f"{section} {title}" if section != "notes" else title


def status_text(status: Status, plain: bool = False) -> Text:
    return Text(status.value.upper(), style=(STATUS_STYLE_PLAIN if plain else STATUS_STYLE)[status])


def severity_text(sev: Severity, plain: bool = False) -> Text:
    return Text(str(sev), style=(SEVERITY_STYLE_PLAIN if plain else SEVERITY_STYLE)[sev])


def safety_text(safety: str, plain: bool = False) -> Text:
    return Text(safety, style="bold" if plain and safety == Safety.DISRUPTIVE.value else "" if plain else SAFETY_STYLE.get(safety, ""))


def matches(f: Finding, statuses: tuple[Status, ...], search: str) -> bool:
    if f.status not in statuses:
        return False
    if not search:
        return True
    hay = " ".join([f.id, f.cis or "", f.title, f.subject, f.evidence, f.status.value, str(f.severity)]).lower()
    return all(word in hay for word in search.lower().split())


def counts_text(findings: Iterable[Finding], current: str, search: str, marked: int, plain: bool = False,
                shown: int | None = None, severity: Severity | None = None, sort: str = "section") -> Text:
    """The findings (not checks: one check can find several subjects) per status, and what is shown."""
    findings = list(findings)
    c = Counter(f.status for f in findings)
    t = Text("findings ", style="" if plain else "dim")
    for s in STATUS_ORDER:
        t.append(f"{s.value.upper()} ", style=(STATUS_STYLE_PLAIN if plain else STATUS_STYLE)[s])
        t.append(f"{c[s]}  ")
    t.append("│ showing ", style="" if plain else "dim")
    if shown is not None:
        t.append(f"{shown} ", style="bold")
    t.append(FILTER_LABELS[current], style="bold")
    if severity is not None:
        t.append(f" {severity}+", style="bold")
    if sort != "section":
        t.append(" by ", style="" if plain else "dim")
        t.append(sort, style="bold")
    if search:
        t.append(" matching ", style="" if plain else "dim")
        t.append(f"“{search}”", style="bold")
    waived = sum(1 for f in findings if getattr(f, "waiver", None))
    if waived:
        t.append(f" │ {waived} waived", style="" if plain else "dim")
    if marked:
        t.append(f"  │ {marked} marked", style="bold")
    return t


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")


def md_escape(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", safe_text(text))


def safe_text(text: str) -> str:
    """Host text made safe for the screen: control characters (ESC ...) shown as visible escapes.
    Textual passes them through to the terminal, so a daemon.json value or a file name holding an
    escape sequence would otherwise repaint or retitle the admin's terminal."""
    from dockfix.report import safe_text as _safe

    return _safe(text, keep_newlines=True)


def finding_markdown(f: Finding) -> str:
    """The detail of one finding, as Markdown."""
    num = f"{f.cis} " if f.cis else ""
    parts = [f"## {num}{md_escape(f.title)}", ""]
    where = f" at `{safe_text(str(f.location))}`" if f.location else ""
    parts.append(
        f"**{f.status.value.upper()}** · severity **{f.severity}** · check `{f.id}` · subject `{safe_text(f.subject)}`{where}"
    )
    w = getattr(f, "waiver", None)
    if w:
        parts += ["", f"**Waived** until {w.get('expires')}: {md_escape(str(w.get('reason', '')))} "
                      f"(`{safe_text(str(w.get('file', '')))}:{w.get('line', '')}`)"]
    parts += ["", "### Evidence", "", md_escape(f.evidence) if f.evidence else "_none recorded_"]
    parts += ["", "### Why it matters", "", md_escape(f.explanation)]
    if f.manual_check:
        parts += ["", "### Check it by hand", "", "```sh", f.manual_check, "```"]
    parts += ["", "### Remediation", "", md_escape(f.remediation)]
    parts += ["", "### Fix", ""]
    if f.fix:
        parts.append(f"**{f.fix['safety']}**: {md_escape(f.fix['impact'])}")
        if f.fix["safety"] != Safety.MANUAL.value:
            parts += ["", "Press `d` to review the change, `space` to mark it, `a` to apply (`x` waives it)."]
    elif f.status == Status.FAIL:
        parts.append("dockfix has no automatic fix for this finding: follow the remediation above.")
    else:
        parts.append("Nothing to fix.")
    for note in getattr(f, "team_notes", None) or []:
        parts += ["", "### Team notes", "", md_escape(note)]
    return "\n".join(parts) + "\n"


def section_markdown(section: str, findings: list[Finding]) -> str:
    c = Counter(f.status for f in findings)
    summary = ", ".join(f"{c[s]} {s.value}" for s in STATUS_ORDER if c[s]) or "no findings yet"
    return f"## {md_escape(section_title(section))}\n\n{summary}\n\nMove down to a finding to read its detail.\n"


def diff_text(diff: str, plain: bool = False) -> Text:
    """A unified diff (with dockfix's owner/mode lines) coloured line by line."""
    out = Text()
    for line in safe_text(diff).splitlines():
        if plain:
            bold = line.startswith(("+++", "---", "@@")) or line.lstrip().startswith(("owner", "mode"))
            out.append(line + "\n", style="bold" if bold else "")
            continue
        if line.startswith(("+++", "---")):
            style = "bold"
        elif line.startswith("@@"):
            style = "cyan"
        elif line.startswith("+"):
            style = "green"
        elif line.startswith("-"):
            style = "red"
        elif line.lstrip().startswith(("owner ", "mode ", "owner\t", "mode\t")):
            style = "bold yellow"
        elif line.startswith("#"):
            style = "bold blue"
        else:
            style = ""
        out.append(line + "\n", style=style)
    return out


def split_words(text: str, width: int) -> tuple[str, str]:
    """Split text at a word boundary so that the head fits in width."""
    if len(text) <= width:
        return text, ""
    cut = text.rfind(" ", 0, width + 1)
    if cut <= 0:
        return text[:width], text[width:]
    return text[:cut], text[cut + 1:]


def plural(n: int, word: str) -> str:
    if n == 1:
        return f"{n} {word}"
    return f"{n} {word}{'es' if word.endswith(('x', 's', 'sh', 'ch')) else 's'}"

