"""Waivers: accepted risks with a reason, an owner and an expiry date.

A waiver file is YAML (default ``/etc/dockfix/waivers.yaml`` on the scanned host)::

    waivers:
      - check: icc                 # check id or CIS number (2.2)
        subject: "container:ci-*"  # optional glob on the finding's subject (default: every subject)
        reason: CI runners need to talk to each other on the default bridge
        expires: 2027-03-31        # ISO date; the waiver holds through that day
        approved_by: security@example.com   # optional
        compensating_control: runners sit on an isolated VLAN   # optional

A waived finding keeps its status and gains ``finding.waiver`` (the entry as JSON); it no longer
counts for the exit code. An expired waiver waives nothing and is listed by :meth:`WaiverFile.apply`.

API (headless; no Textual, no fix core)::

    wf = load_for(root, path=None)              # --waivers FILE, else <root>/etc/dockfix/waivers.yaml, else None
    wf = load_waivers(path)                     # WaiverError "FILE:LINE: problem" when malformed
    expired = wf.apply(findings, today)         # marks finding.waiver, returns expired waivers
    w = append_waiver(target_path(root), "icc", subject=..., reason=..., expires=date(...))  # keeps comments
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import os
import re
from dataclasses import dataclass
from typing import Any, Iterable

#: Where the scanned host keeps its waivers (below --root).
DEFAULT_PATH = "/etc/dockfix/waivers.yaml"
MAX_BYTES = 1024 * 1024
FIELDS = ("check", "subject", "reason", "expires", "approved_by", "compensating_control")
REQUIRED = ("check", "reason", "expires")


class WaiverError(Exception):
    """A waiver file that cannot be used: one line, ``FILE:LINE: problem``."""


@dataclass(frozen=True)
class Waiver:
    check: str  # as written: a check id or a CIS number (of the file's benchmark version)
    reason: str
    expires: _dt.date
    subject: str | None = None
    approved_by: str | None = None
    compensating_control: str | None = None
    file: str = ""
    line: int = 0
    #: The check id ``check`` names (a number resolved in the file's benchmark version).
    check_id: str | None = None

    def expired(self, today: _dt.date | None = None) -> bool:
        """True after the expiry day (a waiver holds through the day it names)."""
        return (today or utc_today()) > self.expires

    def matches(self, finding: Any) -> bool:
        """Does this waiver cover ``finding`` (by check id or CIS number, then subject glob)?"""
        if self.check_id is not None:
            if self.check_id != finding.id:
                return False
        elif self.check != finding.id and self.check != (finding.cis or None):
            return False
        return self.subject is None or fnmatch.fnmatchcase(finding.subject, self.subject)

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "check_id": self.check_id,
            "subject": self.subject,
            "reason": self.reason,
            "expires": self.expires.isoformat(),
            "approved_by": self.approved_by,
            "compensating_control": self.compensating_control,
            "file": self.file,
            "line": self.line,
        }

    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class WaiverFile:
    path: str
    waivers: list[Waiver]
    #: The CIS Docker Benchmark version the file's numbers are in (top-level ``benchmark:``).
    benchmark: str = ""

    def apply(self, findings: Iterable[Any], today: _dt.date | None = None) -> list[Waiver]:
        """Set ``finding.waiver`` (a dict, see :meth:`Waiver.to_json`) on every finding an unexpired
        waiver covers (the first such entry wins); return the expired waivers, in file order."""
        today = today or utc_today()
        live = [w for w in self.waivers if not w.expired(today)]
        for f in findings:
            for w in live:
                if w.matches(f):
                    f.waiver = w.to_json()
                    break
        return [w for w in self.waivers if w.expired(today)]

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "entries": len(self.waivers), "benchmark": self.benchmark}


def utc_today() -> _dt.date:
    return _dt.datetime.now(_dt.timezone.utc).date()


def parse_date(value: Any, where: str) -> _dt.date:
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    try:
        return _dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise WaiverError(f"{where}: expires must be an ISO date (YYYY-MM-DD), not {str(value)[:40]!r}") from None


def resolve_check(name: str, benchmark: str) -> str | None:
    """The id of the check ``name`` names: a check id, or an item's number in ``benchmark`` (a
    section or group such as ``3`` or ``1.1`` names no single check). None when it names none."""
    import dockfix.checks  # noqa: F401  (registers every check)
    from dockfix import benchmarks
    from dockfix.model import REGISTRY

    if name in REGISTRY:
        return name
    hits = [cid for cid in REGISTRY if benchmarks.number(cid, benchmark) == name]
    return hits[0] if len(hits) == 1 else None


def _line(container: Any, index: Any, key: bool = False) -> int | None:
    try:
        lc = container.lc
        return (lc.key(index) if key else lc.item(index))[0] + 1
    except Exception:  # plain containers (no line info) or a key ruamel did not record
        return None


def parse_waivers(text: str, path: str, check_known: bool = True) -> WaiverFile:
    """Parse waiver-file text. WaiverError "path:LINE: problem" for anything that is not a valid file,
    including an entry naming a check that does not exist (``check_known``)."""
    from dockfix.model import CheckError
    from dockfix.sources.compose import load_yaml_bounded

    try:
        doc = load_yaml_bounded(text, path)
    except CheckError as e:
        msg = str(e)
        # "path: line N: problem" -> "path:N: problem"
        if msg.startswith(f"{path}: line "):
            rest = msg[len(path) + 7:]
            n, _, problem = rest.partition(": ")
            msg = f"{path}:{n}: {problem}"
        raise WaiverError(msg) from None
    if doc is None:
        return WaiverFile(path, [])
    if not hasattr(doc, "items"):
        raise WaiverError(f"{path}:1: a waiver file is a mapping with a 'waivers:' list")
    from dockfix import benchmarks

    unknown = [k for k in doc if k not in ("waivers", "benchmark")]
    if unknown:
        raise WaiverError(f"{path}:{_line(doc, unknown[0], key=True) or 1}: unknown key {str(unknown[0])!r} "
                          "(a waiver file has 'waivers' and, optionally, 'benchmark')")
    version = _source_token(text, doc, "benchmark") if isinstance(doc.get("benchmark"), (int, float)) else None
    version = str(version or doc.get("benchmark") or benchmarks.DEFAULT)
    try:
        benchmarks.check_version(version)
    except benchmarks.UnknownBenchmark as e:
        raise WaiverError(f"{path}:{_line(doc, 'benchmark', key=True) or 1}: benchmark: {e}") from None
    entries = doc.get("waivers")
    if entries is None:
        return WaiverFile(path, [], version)
    if not isinstance(entries, list):
        raise WaiverError(f"{path}:{_line(doc, 'waivers', key=True) or 1}: 'waivers' must be a list")
    out = []
    for i, e in enumerate(entries):
        line = _line(entries, i) or 1
        where = f"{path}:{line}"
        if not hasattr(e, "items"):
            raise WaiverError(f"{where}: a waiver must be a mapping (check, reason, expires, ...)")
        for k in e:
            if k not in FIELDS:
                raise WaiverError(f"{path}:{_line(e, k, key=True) or line}: unknown field {str(k)!r} "
                                  f"(fields: {', '.join(FIELDS)})")
        for k in REQUIRED:
            if e.get(k) in (None, ""):
                raise WaiverError(f"{where}: waiver without {k!r}")
        values: dict[str, Any] = {}
        for k in FIELDS:
            v = e.get(k)
            kline = _line(e, k, key=True) or line
            if k == "expires":
                values[k] = parse_date(v, f"{path}:{kline}")
            elif v is not None:
                if isinstance(v, (list, dict)) or hasattr(v, "items"):
                    raise WaiverError(f"{path}:{kline}: {k} must be text")
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    # `check: 2.10` is the number 2.1 to YAML: take what is written, not its value
                    v = _source_token(text, e, k) or v
                values[k] = " ".join(str(v).split())
        if check_known:
            values["check_id"] = resolve_check(values["check"], version)
            if values["check_id"] is None:
                raise WaiverError(f"{path}:{_line(e, 'check', key=True) or line}: unknown check {values['check']!r} "
                                  f"(a check id, or an item's number in {benchmarks.NAME} v{version})")
        out.append(Waiver(file=path, line=line, **values))
    return WaiverFile(path, out, version)


def _source_token(text: str, mapping: Any, key: str) -> str | None:
    """The value of ``key`` as written in the file (a plain scalar: up to a space or a comment)."""
    try:
        line, col = mapping.lc.value(key)
        m = re.match(r"[^\s,\]}#]+", text.splitlines()[line][col:])
    except Exception:
        return None
    return m.group(0) if m else None


def read_file(path: str) -> str:
    """Read a waiver file on this machine: a regular file only (a FIFO is never waited on)."""
    from dockfix.fsops import FsError, read_named_file

    try:
        data = read_named_file(path, "waiver file", MAX_BYTES)
    except FsError as e:
        raise WaiverError(str(e)) from None
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise WaiverError(f"{path}:{line}: not valid UTF-8") from None


def load_waivers(path: str, check_known: bool = True) -> WaiverFile:
    """Read and parse the waiver file at ``path`` (a path on this machine)."""
    return parse_waivers(read_file(path), path, check_known)


def load_for(root: str = "/", path: str | None = None) -> WaiverFile | None:
    """What `dockfix scan` uses: ``path`` (a path on this machine) if given, else the scanned host's
    /etc/dockfix/waivers.yaml below ``root`` when it exists, else None. WaiverError when bad."""
    path = path or default_file(root)
    return load_waivers(path) if path else None


def target_path(root: str = "/") -> str:
    """Where `dockfix waive` (and the app's "waive this finding") adds entries by default: the
    scanned host's /etc/dockfix/waivers.yaml, as a path on this machine (it may not exist yet)."""
    return os.path.join(os.path.abspath(root), DEFAULT_PATH.lstrip("/"))


def default_file(root: str) -> str | None:
    """``/etc/dockfix/waivers.yaml`` below ``root`` if it is there (links resolved inside the root)."""
    from dockfix.host import Host

    host = Host(root=root, engine=False)
    if not host.exists(DEFAULT_PATH):
        return None
    return host.real(host.resolve(DEFAULT_PATH))


# ---------------------------------------------------------------------- adding an entry
def _scalar(value: str) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


def entry_text(check: str, reason: str, expires: _dt.date, subject: str | None = None,
               approved_by: str | None = None, compensating_control: str | None = None, indent: str = "  ",
               comment: str = "") -> str:
    lines = [f"{indent}- check: {_scalar(check)}" + (f"  # {comment}" if comment else "")]
    pad = indent + "  "
    if subject:
        lines.append(f"{pad}subject: {_scalar(subject)}")
    lines.append(f"{pad}reason: {_scalar(reason)}")
    lines.append(f"{pad}expires: {expires.isoformat()}")
    if approved_by:
        lines.append(f"{pad}approved_by: {_scalar(approved_by)}")
    if compensating_control:
        lines.append(f"{pad}compensating_control: {_scalar(compensating_control)}")
    return "\n".join(lines) + "\n"


def append_waiver(path: str, check: str, *, reason: str, expires: _dt.date, subject: str | None = None,
                  approved_by: str | None = None, compensating_control: str | None = None,
                  today: _dt.date | None = None) -> Waiver:
    """Add an entry at the end of the file's ``waivers:`` list, keeping every comment and line as it
    was (the file is created when missing). The result is parsed again before it replaces the file
    (atomically, owner and mode kept). WaiverError, file unchanged, on bad input."""
    reason = " ".join((reason or "").split())
    if not reason:
        raise WaiverError("a waiver needs a reason (--reason)")
    if expires < (today or utc_today()):
        raise WaiverError(f"expiry {expires.isoformat()} is in the past")
    from dockfix import benchmarks

    exists = os.path.lexists(path)
    wf = parse_waivers(read_file(path), path) if exists else None
    version = wf.benchmark if wf is not None else benchmarks.DEFAULT
    check_id = resolve_check(check, version)
    if check_id is None:
        raise WaiverError(f"unknown check {check!r} (a check id, or an item's number in {benchmarks.NAME} v{version})")
    # the entry names the check by its id (stable across benchmark versions), its number as a comment
    num = benchmarks.number(check_id, version)
    comment = f"{benchmarks.NAME} v{version} {num}" if num else ""
    if exists:
        text = read_file(path)
        if any(w.check_id == check_id and w.subject == (subject or None) and not w.expired(today) for w in wf.waivers):
            raise WaiverError(f"{path}: a waiver for {check} {subject or '(every subject)'} is already there")
        new = _append_text(text, path, entry_text(check_id, reason, expires, subject, approved_by, compensating_control,
                                                  indent=_item_indent(text), comment=comment))
    else:
        new = ("# dockfix waivers: accepted risks, each with a reason and an expiry date\n"
               f"benchmark: \"{version}\"  # the version CIS numbers in this file refer to\n"
               "waivers:\n" + entry_text(check_id, reason, expires, subject, approved_by, compensating_control,
                                          comment=comment))
    wf = parse_waivers(new, path)
    _write(path, new, exists)
    return wf.waivers[-1]


def _item_indent(text: str) -> str:
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        if stripped.startswith("- "):
            return line[: len(line) - len(stripped)]
    return "  "


def _append_text(text: str, path: str, entry: str) -> str:
    lines = text.splitlines(keepends=True)
    top = [i for i, ln in enumerate(lines) if ln[:1] not in (" ", "\t", "#", "-", "\n", "\r", "") and ln.strip()]
    waivers_at = [i for i in top if lines[i].startswith("waivers:")]
    if not waivers_at:
        sep = "" if not text or text.endswith("\n") else "\n"
        return text + sep + "waivers:\n" + entry
    head = lines[waivers_at[0]].split("#", 1)[0].strip()
    if head not in ("waivers:", "waivers: []"):
        raise WaiverError(f"{path}:{waivers_at[0] + 1}: cannot add to a 'waivers' list written in flow style; "
                          "edit the file by hand")
    if head == "waivers: []":
        lines[waivers_at[0]] = "waivers:\n"
    # insert after the last non-blank line of the list (comments after it stay after it)
    end = len(lines)
    for i in top:
        if i > waivers_at[0]:
            end = i
            break
    j = end
    while j > waivers_at[0] + 1 and (not lines[j - 1].strip() or lines[j - 1].lstrip().startswith("#")):
        j -= 1
    if j > 0 and not lines[j - 1].endswith("\n"):
        lines[j - 1] += "\n"
    return "".join(lines[:j]) + entry + "".join(lines[j:])


def _write(path: str, text: str, exists: bool) -> None:
    from dockfix.fsops import FsError, write_named_file

    folder = os.path.dirname(os.path.abspath(path))
    try:
        if not exists and not os.path.isdir(folder):
            os.makedirs(folder, mode=0o755)  # /etc/dockfix on a host that has none yet
            os.chmod(folder, 0o755)  # whatever the umask
    except OSError as e:
        raise WaiverError(f"{path}: cannot write: {e.strerror}") from None
    try:
        write_named_file(path, text.encode("utf-8"), 0o644, umask=False, keep=True)
    except FsError as e:
        raise WaiverError(str(e)) from None
