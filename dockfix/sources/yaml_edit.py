"""Edit a YAML file in place, touching only the text that has to change.

A round-trip dump of a whole document rewrites lines that did not change (indentation, quotes,
flow style, long lines). Instead, :class:`YamlText` parses the text once with ruamel's composer,
which gives every node its exact start and end in the text, and records small text splices:
replace this scalar, drop this item, add this key after that one. :meth:`YamlText.result`
applies them; :func:`verify` then parses the result and compares it with the data the caller
expects, so a splice that would change the meaning of anything else is refused rather than
written.
"""

from __future__ import annotations

from dockfix.sources.yaml_errors import yaml_problem

import json
import re
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from dockfix.model import CheckError


class EditError(CheckError):
    """The file cannot be edited safely in place (one line, names the file)."""


@dataclass
class Splice:
    start: int
    end: int
    text: str


_PLAIN = re.compile(r"^[A-Za-z0-9_/.~+@%^][A-Za-z0-9_/.~+@%^=:,\- ]*$")


def _safe_load(text: str) -> Any:
    y = YAML(typ="safe", pure=True)
    return y.load(text)


def render_scalar(value: str, style: str | None = None) -> str:
    """``value`` as a YAML string scalar, plain when that reads back as the same string."""
    if style == "'" and "\n" not in value:
        return "'" + value.replace("'", "''") + "'"
    if style == '"':
        return json.dumps(value, ensure_ascii=False)
    if (_PLAIN.match(value) and not value.endswith((" ", ":")) and ": " not in value and " #" not in value):
        try:
            if _safe_load(value) == value:
                return value
        except YAMLError:
            pass
    return json.dumps(value, ensure_ascii=False)


class YamlText:
    """One YAML document's text, its composed node tree, and the splices planned on it."""

    def __init__(self, text: str, path: str):
        self.text = text
        self.path = path
        self.nl = "\r\n" if "\r\n" in text else "\n"
        try:
            self.root: Node | None = YAML().compose(text)
        except MarkedYAMLError as e:
            raise CheckError(f"{path}: {yaml_problem(e)}") from None
        except YAMLError as e:
            raise CheckError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
        self.splices: list[Splice] = []
        self._line_starts = [0] + [m.end() for m in re.finditer(r"\n", text)]

    # ------------------------------------------------------------------ reading
    @staticmethod
    def get(mapping: Node | None, key: str) -> tuple[ScalarNode, Node] | None:
        if not isinstance(mapping, MappingNode):
            return None
        for k, v in mapping.value:
            if isinstance(k, ScalarNode) and k.value == key:
                return k, v
        return None

    def node_at(self, *keys: str) -> Node | None:
        node = self.root
        for key in keys:
            hit = self.get(node, key)
            if hit is None:
                return None
            node = hit[1]
        return node

    def line_text(self, line: int) -> str:
        start = self._line_starts[line]
        end = self._line_starts[line + 1] if line + 1 < len(self._line_starts) else len(self.text)
        return self.text[start:end]

    def last_line(self, node: Node) -> int:
        """0-based line of the last character that belongs to ``node``."""
        if isinstance(node, (MappingNode, SequenceNode)) and not node.flow_style and node.value:
            last = node.value[-1]
            return self.last_line(last[1] if isinstance(last, tuple) else last)
        end = node.end_mark
        line = end.line - 1 if end.column == 0 and end.line > node.start_mark.line else end.line
        if isinstance(node, ScalarNode) and node.style in ("|", ">"):
            while line > node.start_mark.line and not self.line_text(line).strip():
                line -= 1
        return line

    def after_line(self, line: int) -> int:
        """Offset just after the end of 0-based ``line`` (its newline included)."""
        if line + 1 < len(self._line_starts):
            return self._line_starts[line + 1]
        return len(self.text)

    def starts_line(self, node: Node) -> bool:
        """True when only blanks (or a sequence dash) precede ``node`` on its line."""
        m = node.start_mark
        return not self.line_text(m.line)[: m.column].strip()

    def _shared(self, node: Node) -> bool:
        """True when ``node`` is reached through an alias from more than one place."""
        seen = 0

        def walk(n: Node, stack: set[int]) -> None:
            nonlocal seen
            if n is node:
                seen += 1
            if id(n) in stack:
                return
            stack = stack | {id(n)}
            if isinstance(n, MappingNode):
                for k, v in n.value:
                    walk(k, stack)
                    walk(v, stack)
            elif isinstance(n, SequenceNode):
                for v in n.value:
                    walk(v, stack)

        if self.root is not None:
            walk(self.root, set())
        return seen > 1

    def check_editable(self, node: Node, what: str) -> None:
        if node.anchor or self._shared(node):
            raise EditError(f"{self.path}: line {node.start_mark.line + 1}: {what} is shared through a YAML anchor; "
                            "edit it by hand")
        if isinstance(node, MappingNode) and any(isinstance(k, ScalarNode) and k.value == "<<" for k, _ in node.value):
            raise EditError(f"{self.path}: line {node.start_mark.line + 1}: {what} uses a merge key (<<); edit it by hand")

    # ------------------------------------------------------------------ indentation
    def key_indent(self, mapping: MappingNode) -> int:
        return mapping.value[0][0].start_mark.column if mapping.value else 0

    def step(self) -> int:
        """Indentation step of nested mappings in this document (2 when it cannot tell)."""
        found: list[int] = []

        def walk(n: Node) -> None:
            if isinstance(n, MappingNode) and not n.flow_style:
                for k, v in n.value:
                    if isinstance(v, MappingNode) and not v.flow_style and v.value:
                        d = v.value[0][0].start_mark.column - k.start_mark.column
                        if d > 0:
                            found.append(d)
                    walk(v)
            elif isinstance(n, SequenceNode):
                for v in n.value:
                    walk(v)

        if self.root is not None:
            walk(self.root)
        return min(found) if found else 2

    def seq_offset(self, near: Node | None = None) -> int:
        """Column of a block sequence's dash relative to its parent key (0 or more), as the
        sequences below ``near`` are written (else the first in the document)."""
        found: list[int] = []

        def walk(n: Node) -> None:
            if isinstance(n, MappingNode):
                for k, v in n.value:
                    if isinstance(v, SequenceNode) and not v.flow_style and v.value:
                        found.append(max(0, v.start_mark.column - k.start_mark.column))
                    walk(v)
            elif isinstance(n, SequenceNode):
                for v in n.value:
                    walk(v)

        if near is not None:
            walk(near)
            if found:
                return found[0]
        if self.root is not None:
            walk(self.root)
        return found[0] if found else self.step()

    # ------------------------------------------------------------------ splices
    def _add(self, start: int, end: int, text: str) -> None:
        for s in self.splices:
            if start < s.end and s.start < end or (start == end == s.start == s.end):
                if not (start == end == s.start == s.end):
                    raise EditError(f"{self.path}: two edits overlap; edit it by hand")
        self.splices.append(Splice(start, end, text))

    def replace(self, node: Node, text: str) -> None:
        self._add(node.start_mark.index, node.end_mark.index, text)

    def set_scalar(self, node: Node, value: str) -> None:
        """Replace a one-line scalar by ``value``, keeping its quote style."""
        if not isinstance(node, ScalarNode) or node.style in ("|", ">") or node.start_mark.line != node.end_mark.line:
            raise EditError(f"{self.path}: line {node.start_mark.line + 1}: value spans several lines; edit it by hand")
        self.replace(node, render_scalar(value, node.style))

    def remove_item(self, coll: Node, index: int) -> None:
        """Drop item ``index`` of a mapping or sequence (whole lines in block style)."""
        items = coll.value
        item = items[index]
        first, last = (item if isinstance(item, tuple) else (item, item))
        if len(items) == 1:
            self._add(coll.start_mark.index, self.after_line(self.last_line(coll)) if not coll.flow_style
                      else coll.end_mark.index, ("{}" if isinstance(coll, MappingNode) else "[]")
                      + (self.nl if not coll.flow_style else ""))
            return
        if coll.flow_style:
            if index > 0:
                prev = items[index - 1]
                prev_end = (prev[1] if isinstance(prev, tuple) else prev).end_mark.index
                self._add(prev_end, last.end_mark.index, "")
            else:
                nxt = items[1]
                nxt_start = (nxt[0] if isinstance(nxt, tuple) else nxt).start_mark.index
                self._add(first.start_mark.index, nxt_start, "")
            return
        start_line = first.start_mark.line
        if isinstance(coll, SequenceNode):
            prefix = self.line_text(start_line)[: first.start_mark.column]
            if prefix.strip() != "-":
                raise EditError(f"{self.path}: line {start_line + 1}: unusual list layout; edit it by hand")
        elif not self.starts_line(first):
            raise EditError(f"{self.path}: line {start_line + 1}: unusual mapping layout; edit it by hand")
        end_line = self.last_line(last)
        if index + 1 < len(items):
            nxt = items[index + 1]
            nxt_line = (nxt[0] if isinstance(nxt, tuple) else nxt).start_mark.line
            if nxt_line <= end_line:
                raise EditError(f"{self.path}: line {start_line + 1}: unusual layout; edit it by hand")
        self._add(self._line_starts[start_line], self.after_line(end_line), "")

    def append_to_seq(self, seq: SequenceNode, items: list[str]) -> None:
        """Add items (already rendered) at the end of a sequence."""
        if seq.flow_style:
            close = seq.end_mark.index - 1
            if self.text[close] != "]":
                raise EditError(f"{self.path}: line {seq.start_mark.line + 1}: unusual list layout; edit it by hand")
            self._add(close, close, (", " if seq.value else "") + ", ".join(items))
            return
        dash_col = seq.start_mark.column
        line = self.last_line(seq)
        self._add(self.after_line(line), self.after_line(line), self._line_break_before(line)
                  + "".join(" " * dash_col + "- " + it + self.nl for it in items))

    def _line_break_before(self, line: int) -> str:
        """A newline when ``line`` is the file's last line and has none."""
        return "" if self.line_text(line).endswith("\n") else self.nl

    def add_key(self, mapping: MappingNode, after: Node, lines: list[str]) -> None:
        """Insert ``lines`` (already indented relative to the mapping's keys) after the item whose
        value is ``after``, in a block mapping."""
        if mapping.flow_style:
            raise EditError(f"{self.path}: line {mapping.start_mark.line + 1}: flow-style mapping; edit it by hand")
        ind = " " * self.key_indent(mapping)
        line = self.last_line(after)
        at = self.after_line(line)
        self._add(at, at, self._line_break_before(line) + "".join(ind + ln + self.nl for ln in lines))

    def append_document(self, lines: list[str]) -> None:
        """Add top-level lines at the end of the document."""
        at = len(self.text)
        lead = "" if self.text.endswith("\n") or not self.text else self.nl
        if self.text.rstrip().endswith("..."):
            raise EditError(f"{self.path}: ends with a document end marker (...); edit it by hand")
        self._add(at, at, lead + "".join(ln + self.nl for ln in lines))

    def result(self) -> str:
        out = self.text
        # last first, so that offsets stay valid; at one offset, what was added first ends up first
        order = sorted(enumerate(self.splices), key=lambda p: (p[1].start, p[1].end, p[0]), reverse=True)
        for _, s in order:
            out = out[: s.start] + s.text + out[s.end:]
        return out


def plain(text: str, path: str) -> Any:
    """The data of a YAML text (no round-trip objects), for comparisons."""
    try:
        return _safe_load(text)
    except YAMLError as e:
        raise EditError(f"{path}: the edited text does not parse ({str(e).splitlines()[0]})") from None


def verify(new_text: str, expected: Any, path: str) -> None:
    """Refuse an edit whose result does not read back as ``expected``."""
    got = plain(new_text, path)
    if got != expected:
        raise EditError(f"{path}: an in-place edit would change more than intended; edit it by hand")
