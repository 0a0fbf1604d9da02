"""Minimal edits of a JSON object's top-level members, keeping everything else byte for byte.

Used for daemon.json: a member's value is replaced in place, a new member is added after the last
one with the file's own indentation, a removed member takes its comma with it. Key order,
indentation, spacing and the final newline of the rest of the file stay as they were.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_dec = json.JSONDecoder()
_WS = re.compile(r"[ \t\r\n]*")


class JsonEditError(ValueError):
    pass


@dataclass
class Member:
    key: str
    key_start: int  # index of the opening quote of the key
    value_start: int
    value_end: int


def _ws(text: str, i: int) -> int:
    return _WS.match(text, i).end()  # type: ignore[union-attr]


def members(text: str) -> tuple[int, int, list[Member]]:
    """(index of '{', index of the matching '}', members) of the top-level object."""
    i = _ws(text, 0)
    if i >= len(text) or text[i] != "{":
        raise JsonEditError("expected a JSON object")
    start = i
    i = _ws(text, i + 1)
    out: list[Member] = []
    if text[i:i + 1] == "}":
        return start, i, out
    while True:
        if text[i:i + 1] != '"':
            raise JsonEditError(f"expected a key at offset {i}")
        key, j = _dec.raw_decode(text, i)
        j = _ws(text, j)
        if text[j:j + 1] != ":":
            raise JsonEditError(f"expected ':' at offset {j}")
        vs = _ws(text, j + 1)
        _, ve = _dec.raw_decode(text, vs)
        out.append(Member(key, i, vs, ve))
        i = _ws(text, ve)
        if text[i:i + 1] == ",":
            i = _ws(text, i + 1)
            continue
        if text[i:i + 1] == "}":
            return start, i, out
        raise JsonEditError(f"expected ',' or '}}' at offset {i}")


def _dump(value: Any) -> str:
    return json.dumps(value)


def _indent_of(text: str, m: Member) -> str | None:
    """Whitespace before the member on its own line, or None when it shares a line with '{'."""
    line_start = text.rfind("\n", 0, m.key_start) + 1
    prefix = text[line_start:m.key_start]
    return prefix if prefix.strip() == "" and line_start > 0 else None


def set_member(text: str | None, key: str, value: Any, default_indent: str = "  ") -> str:
    """``text`` with top-level ``key`` set to ``value`` (added at the end when missing)."""
    if text is None or not text.strip():
        return "{\n" + f'{default_indent}{_dump(key)}: {_dump(value)}\n' + "}\n"
    start, end, ms = members(text)
    for m in ms:
        if m.key == key:
            new = _dump(value)
            old = text[m.value_start:m.value_end]
            indent = _indent_of(text, m)
            if "\n" in old and isinstance(value, (list, dict)) and value and indent:
                # the old value spread over lines: so does the new one, one level deeper than the key
                unit = indent if len(ms) and indent.strip() == "" else "  "
                body = json.dumps(value, indent=unit)
                new = body.replace("\n", "\n" + indent)
            return text[:m.value_start] + new + text[m.value_end:]
    if not ms:
        return text[:start] + "{\n" + f"{default_indent}{_dump(key)}: {_dump(value)}\n" + "}" + text[end + 1:]
    last = ms[-1]
    indent = _indent_of(text, last)
    sep = ": "
    between = text[text.index(":", last.key_start + len(_dump(last.key))) + 1:last.value_start]
    if between == "":
        sep = ":"
    if indent is None:  # a one-line object: {"a": 1}
        return text[:last.value_end] + f", {_dump(key)}{sep}{_dump(value)}" + text[last.value_end:]
    return text[:last.value_end] + f",\n{indent}{_dump(key)}{sep}{_dump(value)}" + text[last.value_end:]


def remove_member(text: str, key: str) -> str:
    """``text`` without top-level ``key`` (unchanged when it is not there)."""
    start, end, ms = members(text)
    for n, m in enumerate(ms):
        if m.key != key:
            continue
        if n > 0:  # from the end of the previous value: takes the comma before it
            return text[:ms[n - 1].value_end] + text[m.value_end:]
        if len(ms) > 1:  # the first of several: up to the next key
            return text[:m.key_start] + text[ms[1].key_start:]
        # the only member: keep the braces and what follows the object
        return text[:start + 1] + text[end:] if "\n" not in text[start:end] else text[:start] + "{}" + text[end + 1:]
    return text
