"""Parse errors that name file, line and column, never content.

A YAML parser's message quotes the file (a duplicate key's values, the token it found), and a
quoted part may be a password; these helpers keep the position and the kind of problem only.
"""

from __future__ import annotations

import re


def yaml_problem(e) -> str:
    """A YAML parser's error as ``line L, column C: problem``, without any content of the file: the
    problem's quoted parts (a duplicate key's values, the token found) are left out."""
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = str(getattr(e, "problem", None) or getattr(e, "context", None) or "malformed YAML").strip()
    problem = problem.splitlines()[0] if problem else "malformed YAML"
    problem = re.sub(r"\s+with value\b.*", "", problem, flags=re.S)
    problem = re.sub(r"\"[^\"]*\"|'[^']*'", "…", problem) if not problem.startswith("found duplicate key") else \
        re.sub(r"(found duplicate key )(.*)", lambda m: m.group(1) + _key_only(m.group(2)), problem)
    return where + problem


def _key_only(text: str) -> str:
    key = text.strip().strip('"')
    return repr(key) if re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", key) else "(a key)"
