"""The team's own notes, shown beside dockfix's explanation of each finding.

A notes file is ordinary Markdown. A section belongs to a check when it is *tagged*:

* its heading starts with a check id or a CIS number::

      ## etc-docker-owner
      ## 3.5 Who owns /etc/docker

* or it holds an HTML comment naming one or more checks (invisible when the Markdown is
  rendered elsewhere)::

      ## Our registry
      <!-- dockfix: registry-s3-encrypt, registry-http -->

A section runs from its heading to the next heading of the same or a higher level, so
sub-headings stay inside it. A comment placed before the first heading tags the text from the
comment to the next heading. An untagged level-1 heading is the document's title; it and the
text under it up to the next heading are not a note. Every other untagged section, every tag
that names no check of this dockfix, and every tagged section with nothing in it is reported
(``path:line: problem``), never dropped in silence.

Where the notes file comes from, first found wins: ``--notes FILE``; ``notes = "..."`` in
``~/.config/dockfix/config.toml`` (a path relative to that file's folder); ``notes = "..."`` in
``/etc/dockfix/config.toml`` of the scanned host (below ``--root``; the path is a host path).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Iterable

#: Largest notes file read: 1 MiB.
MAX_NOTES = 1024 * 1024

HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$")
FENCE = re.compile(r"^ {0,3}(```+|~~~+)")
COMMENT_TAG = re.compile(r"<!--\s*dockfix\s*:\s*(.*?)\s*-->", re.IGNORECASE)
CIS_NUMBER = re.compile(r"^\d+(\.\d+)+$")
INLINE_CODE = re.compile(r"(`+).*?\1")
SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)+$")

USER_CONFIG = "~/.config/dockfix/config.toml"
HOST_CONFIG = "/etc/dockfix/config.toml"


class NotesError(Exception):
    """A notes or config file that cannot be used: one line naming the file."""


@dataclass
class Problem:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass
class Note:
    """One tagged section: the checks it is for, where it is, and its Markdown."""

    tags: list[str]
    line: int
    text: str
    check_ids: set[str] = field(default_factory=set)


@dataclass
class TeamNotes:
    path: str
    notes: list[Note]
    problems: list[Problem]

    def for_check(self, check_id: str) -> list[str]:
        """The Markdown of every note tagged for ``check_id`` (by id or CIS number), in file order."""
        return [n.text for n in self.notes if check_id in n.check_ids]

    def attach(self, findings: Iterable) -> None:
        """Fill ``Finding.team_notes`` of every finding whose check has notes."""
        for f in findings:
            f.team_notes = self.for_check(f.id)

    @property
    def tagged_checks(self) -> set[str]:
        return set().union(*(n.check_ids for n in self.notes)) if self.notes else set()

    def warnings(self) -> list[str]:
        return [str(p) for p in self.problems]


# ---------------------------------------------------------------------- parsing
def _checks_by_tag() -> tuple[set[str], dict[str, set[str]]]:
    import dockfix.checks  # noqa: F401  (registers every check)
    from dockfix.model import REGISTRY

    ids = set(REGISTRY)
    by_cis: dict[str, set[str]] = {}
    for c in REGISTRY.values():
        if c.cis:
            by_cis.setdefault(c.cis, set()).add(c.id)
    return ids, by_cis


def _resolve(tag: str, ids: set[str], by_cis: dict[str, set[str]]) -> set[str]:
    if tag in ids:
        return {tag}
    if tag in by_cis:
        return set(by_cis[tag])
    if CIS_NUMBER.match(tag):  # a group such as 1.1 stands for 1.1.x
        return {i for cis, found in by_cis.items() if cis.startswith(tag + ".") for i in found}
    return set()


def _heading_tag(title: str, ids: set[str]) -> str | None:
    first = title.split(None, 1)[0] if title.split() else ""
    first = first.strip("`[]():,").lower()
    if CIS_NUMBER.match(first) or SLUG.match(first) or first in ids:
        return first
    return None


def _split_tags(text: str) -> list[str]:
    return [t.strip().strip("`").lower() for t in re.split(r"[,\s]+", text) if t.strip()]


@dataclass
class _Section:
    level: int  # 0: text before the first heading
    line: int
    title: str
    tags: list[tuple[str, int]] = field(default_factory=list)  # (tag, line)
    body: list[str] = field(default_factory=list)
    children_text: bool = False


def parse_notes(text: str, path: str) -> TeamNotes:
    """Split Markdown ``text`` into tagged notes and problems (``path`` is used in messages)."""
    ids, by_cis = _checks_by_tag()
    sections: list[_Section] = []
    current = _Section(level=0, line=1, title="")
    owner: _Section | None = None  # the tagged section the current lines belong to
    fence: str | None = None

    def close() -> None:
        sections.append(current)

    for n, line in enumerate(text.splitlines(), start=1):
        if fence is None:
            m = FENCE.match(line)
            if m:
                fence = m.group(1)[0] * 3
        elif line.lstrip().startswith(fence):
            fence = None
            (owner or current).body.append(line)
            continue
        h = HEADING.match(line) if fence is None else None
        if h:
            level, title = len(h.group(1)), h.group(2)
            if owner is not None and owner.level and level > owner.level:
                owner.body.append(line)  # a sub-heading inside a tagged section
                continue
            close()
            current = _Section(level=level, line=n, title=title)
            owner = None
            tag = _heading_tag(title, ids)
            if tag:
                current.tags.append((tag, n))
                owner = current
            continue
        target = owner or current
        if fence is None:
            tags = COMMENT_TAG.findall(INLINE_CODE.sub("", line))
            if tags:
                for t in tags:
                    target.tags.extend((x, n) for x in _split_tags(t))
                if owner is None:
                    owner = current
                line = COMMENT_TAG.sub(lambda m: m.group(0) if "`" in line else "", line)
                if not line.strip():
                    continue
        target.body.append(line)
    close()

    notes: list[Note] = []
    problems: list[Problem] = []
    for s in sections:
        body = "\n".join(s.body).strip("\n")
        if not s.tags:
            if s.level == 1 or (s.level == 0 and not body.strip()):
                continue  # the document's title and introduction
            what = f"section {s.title!r}" if s.level else "text before the first heading"
            problems.append(Problem(path, s.line, f"{what} has no dockfix tag (a check id or CIS number "
                                    "as the heading, or <!-- dockfix: ID -->): it is not shown"))
            continue
        found: set[str] = set()
        good: list[str] = []
        for tag, line in s.tags:
            hit = _resolve(tag, ids, by_cis)
            if hit:
                found |= hit
                good.append(tag)
            else:
                kind = "CIS number" if CIS_NUMBER.match(tag) else "check id"
                problems.append(Problem(path, line, f"unknown {kind} {tag!r}: no check of dockfix has it"))
        if not found:
            continue
        title = s.title
        heading_tag = _heading_tag(title, ids) if s.level else None
        if heading_tag:
            title = title.split(None, 1)[1] if len(title.split(None, 1)) > 1 else ""
            title = title.lstrip(":-– ").strip()
        if not body.strip():
            problems.append(Problem(path, s.line, f"section tagged {', '.join(good)} is empty"))
            continue
        md = (f"**{title}**\n\n" if title else "") + body.strip()
        notes.append(Note(tags=good, line=s.line, text=md, check_ids=found))
    return TeamNotes(path=path, notes=notes, problems=problems)


def load_team_notes(path: str, host=None) -> TeamNotes:
    """Read and parse a notes file. ``host`` given: ``path`` is a host path read through it.

    NotesError (one line naming the file) when it cannot be read or is not UTF-8 text.
    """
    if host is not None:
        from dockfix.model import CheckError

        try:
            data = host.read_bytes(path, limit=MAX_NOTES)
        except CheckError as e:
            raise NotesError(f"notes file {e}") from None
        if data is None:
            raise NotesError(f"{path}: notes file not found")
    else:
        from dockfix.fsops import FsError, read_named_file

        try:
            data = read_named_file(path, "notes file", MAX_NOTES)
        except FsError as e:
            raise NotesError(str(e)) from None
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise NotesError(f"{path}: line {line}: not valid UTF-8") from None
    return parse_notes(text, path)


# ---------------------------------------------------------------------- configuration
def _read_config(text: str, where: str) -> dict:
    import tomllib

    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise NotesError(f"{where}: {e}") from None
    notes = doc.get("notes")
    if notes is not None and (not isinstance(notes, str) or not notes.strip()):
        raise NotesError(f"{where}: notes must be a non-empty string (a path to a Markdown file)")
    return doc


def notes_from_config(root: str = "/", home: str | None = None) -> tuple[str, object | None] | None:
    """(path, host or None) of the notes file named by a config file, or None.

    The user's config (``~/.config/dockfix/config.toml``) wins over the host's
    (``/etc/dockfix/config.toml`` below ``root``).
    """
    user = os.path.join(home, ".config/dockfix/config.toml") if home else os.path.expanduser(USER_CONFIG)
    if os.path.isfile(user):
        try:
            with open(user, encoding="utf-8") as f:
                doc = _read_config(f.read(), user)
        except (OSError, UnicodeDecodeError) as e:
            raise NotesError(f"{user}: cannot read config file: {e}") from None
        if doc.get("notes"):
            p = os.path.expanduser(doc["notes"])
            return os.path.join(os.path.dirname(user), p), None
    from dockfix.host import Host
    from dockfix.model import CheckError

    host = Host(root=root, engine=False)
    try:
        text = host.read_text(HOST_CONFIG, limit=MAX_NOTES)
    except CheckError as e:
        raise NotesError(f"config file {e}") from None
    if text is not None:
        where = host.real(HOST_CONFIG) if root != "/" else HOST_CONFIG
        doc = _read_config(text, where)
        if doc.get("notes"):
            p = doc["notes"]
            if not p.startswith("/"):
                p = os.path.join(os.path.dirname(HOST_CONFIG), p)
            return os.path.normpath(p), host
    return None


def load_for_args(notes: str | None, root: str = "/") -> TeamNotes | None:
    """The team notes for a command line: ``--notes`` or the config files; None when none."""
    if notes:
        return load_team_notes(notes)
    found = notes_from_config(root)
    if found is None:
        return None
    path, host = found
    tn = load_team_notes(path, host=host)
    if host is not None and host.root != "/":
        tn.path = host.real(path)
        for p in tn.problems:
            p.path = tn.path
    return tn


# ---------------------------------------------------------------------- for front ends
def with_notes(notes: TeamNotes | None) -> dict:
    """Keyword arguments for DockfixApp: scan and rescan functions that attach ``notes``.

    Empty when there are no notes (the app then uses its defaults).
    """
    if notes is None:
        return {}
    from dockfix import scan as scan_mod

    def scan(ctx, *a, **kw):
        result = scan_mod.scan(ctx, *a, **kw)
        notes.attach(result.findings)
        return result

    def rescan(ctx, check_ids):
        from dockfix.workflow import rescan as rescan_checks

        found = rescan_checks(ctx, check_ids)
        notes.attach(found)
        return found

    return {"scan": scan, "rescan": rescan}
