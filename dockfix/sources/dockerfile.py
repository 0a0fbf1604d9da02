"""Dockerfiles: parsed into instructions with their lines, the way BuildKit reads them.

Handled: parser directives at the top (``# escape=`` changes the line-continuation character,
``# syntax=`` is kept), comment lines (also inside a continued instruction), empty continuation
lines, flags (``--from=``, ``--chown=``, ``--mount=``, ...), exec (JSON) and shell forms, and
heredocs (``RUN <<EOF``, ``<<-EOF`` strips leading tabs, ``COPY <<EOF /dest``, several per line).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
from dataclasses import dataclass, field

from dockfix.model import CheckError
from dockfix.sources import Scope

#: Largest Dockerfile read.
MAX_DOCKERFILE_BYTES = 1024 * 1024
DOCKERFILE_PATTERNS = ("Dockerfile", "Dockerfile.*", "*.Dockerfile", "*.dockerfile", "Containerfile", "Containerfile.*")

_DIRECTIVE = re.compile(r"^#\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(\S.*?)\s*$")
_HEREDOC = re.compile(r"<<(-?)(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\2")
_FLAG = re.compile(r"--([A-Za-z][A-Za-z0-9-]*)(?:=(\S*))?")
#: Instructions whose arguments may start with --flags.
_FLAGGED = {"ADD", "COPY", "RUN", "FROM", "HEALTHCHECK"}


@dataclass
class Heredoc:
    name: str
    body: str
    line: int  # line of the first body line
    expand: bool = True  # False when the delimiter was quoted


@dataclass
class Instruction:
    cmd: str  # upper case: FROM, RUN, COPY, ...
    args: str  # the arguments after the flags, continuation lines joined with a space
    line: int  # 1-based line where the instruction starts
    end_line: int  # last line of the instruction, heredoc bodies included
    flags: dict[str, str] = field(default_factory=dict)  # --from=builder -> {"from": "builder"} (last one wins)
    all_flags: list[tuple[str, str]] = field(default_factory=list)  # every flag in order (--mount may repeat)
    heredocs: list[Heredoc] = field(default_factory=list)
    original: str = ""  # the instruction's text as written (continuations joined)

    @property
    def json(self) -> list[str] | None:
        """The exec form's list (``["a", "b"]``), or None for the shell form."""
        s = self.args.strip()
        if not s.startswith("["):
            return None
        try:
            v = json.loads(s)
        except ValueError:
            return None
        return [str(x) for x in v] if isinstance(v, list) and all(isinstance(x, str) for x in v) else None

    def words(self) -> list[str]:
        """Arguments split into words: the exec form's list, else shell-like splitting."""
        j = self.json
        if j is not None:
            return j
        try:
            return shlex.split(self.args, comments=False, posix=True)
        except ValueError:
            return self.args.split()

    def key_values(self) -> list[tuple[str, str | None]]:
        """ENV/ARG/LABEL pairs: ``ENV A=1 B="2"``, the old ``ENV A 1``, ``ARG NAME`` (value None)."""
        if self.cmd == "ENV" and not self.args.split():
            return []
        if self.cmd == "ENV" and "=" not in self.args.split(None, 1)[0]:
            parts = self.args.split(None, 1)
            return [(parts[0], parts[1] if len(parts) > 1 else "")]
        out: list[tuple[str, str | None]] = []
        for w in self.words():
            if "=" in w:
                k, v = w.split("=", 1)
                out.append((k, v))
            else:
                out.append((w, None))
        return out


def parse_dockerfile(text: str, path: str = "Dockerfile") -> list[Instruction]:
    """Parse Dockerfile text into instructions. CheckError "path: line N: problem" for what BuildKit
    would refuse (an unterminated heredoc, a line that is not an instruction)."""
    if len(text) > MAX_DOCKERFILE_BYTES:
        raise CheckError(f"{path}: too large for a Dockerfile (limit {MAX_DOCKERFILE_BYTES} bytes)")
    lines = text.splitlines()
    escape = "\\"
    i = 0
    # parser directives: only at the very top, before any instruction, comment or empty line
    seen_directives: set[str] = set()
    while i < len(lines):
        m = _DIRECTIVE.match(lines[i].strip())
        if not m or m.group(1).lower() in seen_directives:
            break
        name = m.group(1).lower()
        seen_directives.add(name)
        if name == "escape":
            if m.group(2) not in ("\\", "`"):
                raise CheckError(f"{path}: line {i + 1}: invalid escape character {m.group(2)!r} (use \\ or `)")
            escape = m.group(2)
        i += 1

    out: list[Instruction] = []
    while i < len(lines):
        raw = lines[i]
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        start = i
        parts: list[str] = []
        cur = raw
        while True:
            body = cur.rstrip()
            if body.endswith(escape):
                parts.append(body[:-1])
                i += 1
                # skip comment and empty lines inside a continued instruction
                while i < len(lines) and (not lines[i].strip() or lines[i].lstrip().startswith("#")):
                    i += 1
                if i >= len(lines):
                    break
                cur = lines[i]
                continue
            parts.append(cur)
            break
        end = min(i, len(lines) - 1)
        i = end + 1
        joined = " ".join(p.strip() for p in parts).strip()
        if not joined:
            continue
        word, _, rest = joined.partition(" ")
        cmd = word.upper()
        if not re.fullmatch(r"[A-Z]+", cmd):
            raise CheckError(f"{path}: line {start + 1}, column {len(lines[start]) - len(lines[start].lstrip()) + 1}: "
                             "not a Dockerfile instruction (a line continued after the last one?)")
        rest = rest.strip()
        flags: dict[str, str] = {}
        all_flags: list[tuple[str, str]] = []
        if cmd in _FLAGGED:
            while rest.startswith("--"):
                fm = _FLAG.match(rest)
                if not fm:
                    break
                value = fm.group(2) if fm.group(2) is not None else ""
                flags[fm.group(1).lower()] = value
                all_flags.append((fm.group(1).lower(), value))
                rest = rest[fm.end():].lstrip()
        heredocs: list[Heredoc] = []
        if cmd in ("RUN", "COPY", "ADD") and "<<" in rest and not rest.lstrip().startswith("["):
            for hm in _HEREDOC.finditer(rest):
                strip_tabs, quoted, name = hm.group(1) == "-", bool(hm.group(2)), hm.group(3)
                body_start = i
                body_lines = []
                while i < len(lines):
                    candidate = lines[i].lstrip("\t") if strip_tabs else lines[i]
                    if candidate == name:
                        break
                    body_lines.append(candidate)
                    i += 1
                else:
                    raise CheckError(f"{path}: line {start + 1}: heredoc <<{name} is not terminated")
                end = i
                i += 1
                heredocs.append(Heredoc(name, "\n".join(body_lines) + ("\n" if body_lines else ""),
                                        body_start + 1, not quoted))
        out.append(Instruction(cmd, rest, start + 1, end + 1, flags, all_flags, heredocs, joined))
    return out


#: Names that match the patterns but are notes, backups or templates, not Dockerfiles.
NOT_DOCKERFILE_SUFFIXES = (".md", ".txt", ".rst", ".bak", "~", ".orig", ".rej", ".swp", ".j2", ".jinja", ".tmpl",
                           ".tpl", ".template", ".in", ".dockerignore")


def is_dockerfile_name(name: str) -> bool:
    if name.endswith(NOT_DOCKERFILE_SUFFIXES):
        return False
    return any(fnmatch.fnmatchcase(name, p) for p in DOCKERFILE_PATTERNS)


def find_dockerfiles(ctx: Scope) -> list[str]:
    """Host paths of Dockerfiles under the ``--path`` folders."""
    found = []
    for top in ctx.paths:
        for p in ctx.host.walk(top):
            if is_dockerfile_name(os.path.basename(p)):
                found.append(p)
    return list(dict.fromkeys(found))


def load_dockerfile(ctx: Scope, path: str) -> list[Instruction]:
    """The Dockerfile at host path ``path``, read and parsed once per scan."""

    def load() -> list[Instruction]:
        text = ctx.host.read_text(path, limit=MAX_DOCKERFILE_BYTES)
        if text is None:
            raise CheckError(f"{path}: not found")
        return parse_dockerfile(text, path)

    return ctx.memo(f"dockerfile:{path}", load)


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """Instructions grouped by build stage (each group starts with its FROM; ARGs before the first
    FROM form their own group)."""
    groups: list[list[Instruction]] = [[]]
    for ins in instructions:
        if ins.cmd == "FROM" and groups[-1]:
            groups.append([])
        groups[-1].append(ins)
    return [g for g in groups if g]

