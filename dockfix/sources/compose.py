"""Compose files: found the way admins keep them, loaded so that lines are known and edits keep comments.

A compose file is parsed with ruamel.yaml in round-trip mode: every mapping remembers the line of
each key, and :attr:`ComposeFile.doc` can later be changed in place and written back with
:meth:`ComposeFile.dump` keeping comments, key order and quoting.

Interpolation (``${VAR}``, ``${VAR:-default}``, ``$VAR``, ``$$``) is resolved from the ``.env``
file beside the compose file, as ``docker compose`` does when run from that folder. Values of
variables are never put in error messages: a secret may be one.

Untrusted input is bounded: files over :data:`MAX_COMPOSE_BYTES` are refused, and a document
whose aliases would expand beyond :data:`MAX_EXPANDED_NODES` nodes (a "billion laughs" file), or
that refers to itself, is refused before anything walks it.
"""

from __future__ import annotations

from dockfix.sources.yaml_errors import yaml_problem

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

from dockfix.model import CheckError
from dockfix.sources import Scope

if TYPE_CHECKING:  # pragma: no cover
    from dockfix.host import Host

#: Largest compose file read (a real one is a few KiB).
MAX_COMPOSE_BYTES = 2 * 1024 * 1024
#: Largest number of nodes the document may have once every alias is expanded.
MAX_EXPANDED_NODES = 200_000
#: Deepest nesting accepted.
MAX_DEPTH = 200

COMPOSE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
#: Labels docker compose and docker stack put on what they create (the one place they are named).
COMPOSE_FILES_LABEL = "com.docker.compose.project.config_files"
COMPOSE_WORKDIR_LABEL = "com.docker.compose.project.working_dir"
COMPOSE_SERVICE_LABEL = "com.docker.compose.service"
STACK_LABEL = "com.docker.stack.namespace"


# ---------------------------------------------------------------------- data
@dataclass
class EnvVar:
    """One variable of a service's ``environment``.

    ``value`` is the value after interpolation (None when the variable takes its value from the
    shell running compose, or interpolates a variable that is not defined). It may be a secret:
    never print it. ``from_interpolation`` names the variable(s) the value came from (``"DB_PASS"``)
    when it was written as ``${...}``, None when the value is written literally in the file.
    """

    name: str
    value: str | None
    line: int | None
    from_interpolation: str | None = None
    #: the text as written in the file (may contain ``${...}``); also possibly secret.
    raw: str | None = None
    #: where the value comes from: "literal", ".env", "default" (a ``:-default``), "unset" (no value here).
    source: str = "literal"

    def __repr__(self) -> str:  # never show the value, not even in a traceback or pytest diff
        return (f"EnvVar(name={self.name!r}, value=<{'set' if self.value is not None else 'unset'}>, "
                f"line={self.line}, from_interpolation={self.from_interpolation!r}, source={self.source!r})")


@dataclass
class ServiceSpec:
    """One service of a compose file. ``raw`` is the round-trip mapping (edit it in place)."""

    name: str
    raw: Any  # ruamel CommentedMap
    file: "ComposeFile"
    line: int | None = None  # line of the service's key

    @property
    def image(self) -> str | None:
        v = self.get("image")
        return None if v is None else self.file.interpolate(str(v))[0]

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self.raw.get(key, default)
        except AttributeError:
            return default

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def __contains__(self, key: str) -> bool:
        return key in self.raw

    def line_of(self, *keys: Any) -> int | None:
        """1-based line of a key path below the service: ``line_of("environment", "DB_PASSWORD")``,
        ``line_of("ports", 0)``. Falls back to the nearest enclosing key that has a line."""
        return _line_of(self.raw, keys, self.line)

    @property
    def environment(self) -> list[EnvVar]:
        env = self.get("environment")
        out: list[EnvVar] = []
        if env is None:
            return out
        if _is_mapping(env):
            for i, (k, v) in enumerate(env.items()):
                line = _line_of(env, (k,), self.line_of("environment"))
                raw = None if v is None else _scalar_text(v)
                out.append(self._var(str(k), raw, line))
        elif _is_sequence(env):
            for i, item in enumerate(env):
                line = _line_of(env, (i,), self.line_of("environment"))
                text = _scalar_text(item)
                if "=" in text:
                    k, raw = text.split("=", 1)
                    out.append(self._var(k.strip(), raw, line))
                else:
                    out.append(self._var(text.strip(), None, line))
        else:
            raise CheckError(f"{self.file.path}: line {self.line_of('environment')}: environment of service "
                             f"{self.name!r} must be a mapping or a list")
        return out

    def _var(self, name: str, raw: str | None, line: int | None) -> EnvVar:
        if raw is None:
            return EnvVar(name, None, line, None, None, "unset")
        value, used, source = self.file.interpolate(raw)
        if not used:
            return EnvVar(name, value, line, None, raw, "literal")
        return EnvVar(name, value, line, ",".join(used), raw, source)

    @property
    def env_files(self) -> list[str]:
        """Host paths of the service's ``env_file`` entries (relative ones resolved beside the file)."""
        v = self.get("env_file")
        if v is None:
            return []
        items = [v] if isinstance(v, str) else list(v) if _is_sequence(v) else []
        out = []
        for it in items:
            p = it.get("path") if _is_mapping(it) else it
            if isinstance(p, str):
                out.append(self.file.resolve_path(self.file.interpolate(p)[0]))
        return out


@dataclass
class ComposeFile:
    path: str  # host path
    doc: Any  # ruamel CommentedMap (round-trip): edit in place, then dump()
    text: str
    env: dict[str, str] = field(default_factory=dict, repr=False)  # the .env beside it (values may be secret)
    env_lines: dict[str, int] = field(default_factory=dict, repr=False)
    env_path: str | None = None
    services: dict[str, ServiceSpec] = field(default_factory=dict)

    @property
    def folder(self) -> str:
        return os.path.dirname(self.path) or "/"

    def resolve_path(self, p: str) -> str:
        return os.path.normpath(p if p.startswith("/") else os.path.join(self.folder, p))

    def interpolate(self, text: str) -> tuple[str | None, list[str], str]:
        """(value, variables used, source) of a string with compose interpolation.

        source is "literal" (no variables), ".env" (every variable found in the .env file),
        "default" (some variable fell back to its default) or "unset" (a variable is not defined
        and has no default: value None)."""
        return interpolate(text, self.env)

    def top(self, key: str) -> Any:
        return self.doc.get(key) if _is_mapping(self.doc) else None

    def line_of(self, *keys: Any) -> int | None:
        return _line_of(self.doc, keys, None)

    def dump(self) -> str:
        """The document as YAML text, keeping comments and order (for in-place edits)."""
        import io

        buf = io.StringIO()
        y = _yaml()
        mapping, sequence, offset = guess_indent(self.text)
        y.indent(mapping=mapping, sequence=sequence, offset=offset)
        y.dump(self.doc, buf)
        return buf.getvalue()


# ---------------------------------------------------------------------- loading
def _yaml():
    from ruamel.yaml import YAML

    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.allow_duplicate_keys = False
    return y


def load_yaml_bounded(text: str, path: str) -> Any:
    """Round-trip load of untrusted YAML with the size, alias-expansion and depth guards.
    CheckError "path: line N: problem" when malformed."""
    if len(text.encode("utf-8", "replace")) > MAX_COMPOSE_BYTES:
        raise CheckError(f"{path}: too large (limit {MAX_COMPOSE_BYTES} bytes)")
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    _flow_depth_guard(text, path)
    y = _yaml()
    try:
        node = y.compose(text)
        _check_expansion(node, path)
        return y.load(text)
    except CheckError:
        raise
    except MarkedYAMLError as e:
        raise CheckError(f"{path}: {yaml_problem(e)}") from None
    except YAMLError as e:
        raise CheckError(f"{path}: malformed YAML: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    except RecursionError:
        raise CheckError(f"{path}: nested too deeply") from None


_FLOW_TOKEN = re.compile(r"""'[^']*'|"(?:[^"\\]|\\.)*"|#[^\n]*|[\[\]{}\n]""")


def _flow_depth_guard(text: str, path: str) -> None:
    """Refuse deeply nested flow collections ([[[[...) before the YAML parser sees them: its
    recursive descent spends seconds of CPU on a 10 kB file before giving up (a scan-time DoS)."""
    depth = line = 0
    for m in _FLOW_TOKEN.finditer(text):
        tok = m.group(0)
        if tok == "\n":
            line += 1
        elif tok in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise CheckError(f"{path}: line {line + 1}: nested too deeply (over {MAX_DEPTH} levels)")
        elif tok in "]}":
            depth = max(0, depth - 1)


def parse_compose(text: str, path: str, env: dict[str, str] | None = None) -> ComposeFile:
    """Parse compose text. CheckError "path: line N: problem" when it is not a usable compose file."""
    if len(text.encode("utf-8", "replace")) > MAX_COMPOSE_BYTES:
        raise CheckError(f"{path}: too large for a compose file (limit {MAX_COMPOSE_BYTES} bytes)")
    doc = load_yaml_bounded(text, path)
    doc_empty = doc is None
    if not doc_empty and not _is_mapping(doc):
        raise CheckError(f"{path}: line 1: a compose file must be a mapping, found {type(doc).__name__}")
    cf = ComposeFile(path=path, doc=doc if not doc_empty else _empty_map(), text=text, env=dict(env or {}))
    services = cf.doc.get("services")
    if services is None and "version" not in cf.doc and cf.doc:
        # compose file format 1: services at the top level
        if all(_is_mapping(v) and ("image" in v or "build" in v) for v in cf.doc.values()):
            services = cf.doc
    if services is None:
        return cf
    if not _is_mapping(services):
        raise CheckError(f"{path}: line {cf.line_of('services')}: services must be a mapping")
    for name, spec in services.items():
        line = _line_of(services, (name,), None)
        if spec is None:
            spec = _empty_map()
        if not _is_mapping(spec):
            raise CheckError(f"{path}: line {line}: service {str(name)!r} must be a mapping")
        cf.services[str(name)] = ServiceSpec(str(name), spec, cf, line)
    return cf


def _empty_map():
    from ruamel.yaml.comments import CommentedMap

    return CommentedMap()


def load_compose(host: "Host", path: str) -> ComposeFile:
    """Read and parse the compose file at host path ``path`` with the ``.env`` beside it."""
    text = host.read_text(path, limit=MAX_COMPOSE_BYTES)
    if text is None:
        raise CheckError(f"{path}: compose file not found")
    env_path = os.path.join(os.path.dirname(path) or "/", ".env")
    env, lines = {}, {}
    env_text = host.read_text(env_path, limit=MAX_COMPOSE_BYTES) if host.is_file(env_path) else None
    if env_text is not None:
        env, lines = parse_dotenv(env_text, env_path)
    cf = parse_compose(text, path, env)
    cf.env_lines = lines
    cf.env_path = env_path if env_text is not None else None
    return cf


def ctx_compose(ctx: Scope, path: str) -> ComposeFile:
    """The compose file at ``path``, loaded once per scan."""
    return ctx.memo(f"compose:{path}", lambda: load_compose(ctx.host, path))


def _check_expansion(node: Any, path: str) -> None:
    """Refuse documents whose aliases expand beyond MAX_EXPANDED_NODES, or that contain themselves."""
    if node is None:
        return
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(n: Any, depth: int) -> int:
        key = id(n)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise CheckError(f"{path}: line {n.start_mark.line + 1}: an alias refers to a node that contains it")
        if depth > MAX_DEPTH:
            raise CheckError(f"{path}: line {n.start_mark.line + 1}: nested too deeply (over {MAX_DEPTH} levels)")
        active.add(key)
        total = 1
        value = n.value
        if isinstance(value, list):
            for child in value:
                if isinstance(child, tuple):
                    total += size(child[0], depth + 1) + size(child[1], depth + 1)
                else:
                    total += size(child, depth + 1)
                if total > MAX_EXPANDED_NODES:
                    break
        active.discard(key)
        sizes[key] = total
        if total > MAX_EXPANDED_NODES:
            raise CheckError(f"{path}: line {n.start_mark.line + 1}: aliases expand to more than "
                             f"{MAX_EXPANDED_NODES} nodes (refusing a possible alias bomb)")
        return total

    size(node, 0)


# ---------------------------------------------------------------------- helpers
def _is_mapping(v: Any) -> bool:
    return hasattr(v, "items") and hasattr(v, "get")


def _is_sequence(v: Any) -> bool:
    return isinstance(v, list)


def _scalar_text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return ""
    return str(v)


def _line_of(container: Any, keys: tuple, fallback: int | None) -> int | None:
    line = fallback
    cur = container
    for k in keys:
        lc = getattr(cur, "lc", None)
        found = None
        try:
            if isinstance(k, int) and _is_sequence(cur):
                found = lc.item(k)[0] + 1 if lc is not None else None
                nxt = cur[k]
            else:
                found = _key_line(cur, k)
                nxt = cur[k]
        except (KeyError, IndexError, TypeError, AttributeError):
            return line
        if found is not None:
            line = found
        cur = nxt
    return line


def _key_line(mapping: Any, key: Any, _depth: int = 0) -> int | None:
    """1-based line of ``key`` in a round-trip mapping; for a key merged in with ``<<: *anchor``,
    the line where the anchored mapping writes it."""
    lc = getattr(mapping, "lc", None)
    if lc is None or _depth > 20:
        return None
    try:
        return lc.key(key)[0] + 1
    except (KeyError, TypeError):
        pass
    for src in getattr(mapping, "merge", None) or []:
        src = src[1] if isinstance(src, tuple) else src
        if _is_mapping(src) and key in src:
            return _key_line(src, key, _depth + 1)
    return None


def guess_indent(text: str) -> tuple[int, int, int]:
    """(mapping, sequence, offset) indentation of a block-style YAML text, for ruamel's dumper."""
    from collections import Counter

    maps: Counter = Counter()
    offs: Counter = Counter()
    rows = [(len(l) - len(l.lstrip(" ")), l.strip()) for l in text.splitlines()]
    rows = [r for r in rows if r[1] and not r[1].startswith("#")]
    for (ind, line), (nind, nline) in zip(rows, rows[1:]):
        if not line.endswith(":") or nind < ind:
            continue
        if nline.startswith("- "):
            offs[nind - ind] += 1
        elif nind > ind:
            maps[nind - ind] += 1
    mapping = maps.most_common(1)[0][0] if maps else 2
    offset = offs.most_common(1)[0][0] if offs else 0
    return mapping, max(offset + 2, 2), offset


# ---------------------------------------------------------------------- .env and interpolation
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?$", re.S)


def interpolate(text: str, env: dict[str, str]) -> tuple[str | None, list[str], str]:
    """Compose-style interpolation of ``text`` with ``env``; see :meth:`ComposeFile.interpolate`.

    Handles ``$$``, ``$NAME``, ``${NAME}``, ``${NAME:-default}``, ``${NAME-default}``,
    ``${NAME:+alt}``, ``${NAME+alt}``, ``${NAME:?err}``, ``${NAME?err}``, with nested defaults."""
    used: list[str] = []
    state = {"source": "literal", "unset": False}
    rank = {"literal": 0, ".env": 1, "default": 2}

    def mark(src: str) -> None:
        if rank[src] > rank[state["source"]]:
            state["source"] = src

    def braced(expr: str, depth: int) -> str | None:
        m = _BRACED.match(expr)
        if not m:
            return None
        name, op, arg = m.group("name"), m.group("op"), m.group("arg") or ""
        used.append(name)
        have, val = name in env, env.get(name)
        if op in (":-", "-") and ((op == ":-" and not val) or (op == "-" and not have)):
            mark("default")
            return expand(arg, depth + 1)
        if op in (":+", "+"):
            if (op == ":+" and val) or (op == "+" and have):
                mark(".env")
                return expand(arg, depth + 1)
            return ""
        if not have:
            state["unset"] = True
            return ""
        mark(".env")
        return val or ""

    def expand(s: str, depth: int) -> str:
        if depth > 10:
            return s
        out: list[str] = []
        i, n = 0, len(s)
        while i < n:
            c = s[i]
            if c != "$" or i + 1 >= n:
                out.append(c)
                i += 1
                continue
            nxt = s[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
            elif nxt == "{":
                level, j = 0, i + 1
                while j < n:
                    if s[j] == "{":
                        level += 1
                    elif s[j] == "}":
                        level -= 1
                        if level == 0:
                            break
                    j += 1
                if j >= n:  # unterminated: compose refuses it; keep the text
                    out.append(s[i:])
                    break
                got = braced(s[i + 2:j], depth)
                out.append(s[i:j + 1] if got is None else got)
                i = j + 1
            else:
                m = _NAME.match(s, i + 1)
                if not m:
                    out.append(c)
                    i += 1
                    continue
                got = braced(m.group(0), depth)
                out.append(got or "")
                i = m.end()
        return "".join(out)

    value = expand(text, 0)
    used = list(dict.fromkeys(used))
    if state["unset"]:
        return None, used, "unset"
    return value, used, state["source"] if used else "literal"


def parse_dotenv(text: str, path: str) -> tuple[dict[str, str], dict[str, int]]:
    """KEY=VALUE lines of a .env file -> ({name: value}, {name: line}). Values are never reported."""
    env: dict[str, str] = {}
    lines: dict[str, int] = {}
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if s.startswith("export "):
            s = s[len("export "):].lstrip()
        if "=" not in s:
            name = s.split()[0] if s.split() else s
            if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", name):
                continue  # a bare name: takes its value from the environment of compose
            raise CheckError(f"{path}: line {n}, column 1: expected NAME=VALUE")
        name, value = s.split("=", 1)
        name = name.strip()
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", name):
            col = next((i for i, ch in enumerate(line) if ch not in " \t"), 0) + 1
            bad = next((i for i, ch in enumerate(name) if not re.match(r"[A-Za-z0-9_.-]", ch) or (i == 0 and ch.isdigit())), 0)
            raise CheckError(f"{path}: line {n}, column {col + bad}: not a variable name (NAME=VALUE expected)")
        value = value.strip()
        if value[:1] in ("'", '"'):
            q = value[0]
            end = value.find(q, 1)
            while q == '"' and end > 0 and value[end - 1] == "\\":
                end = value.find(q, end + 1)
            if end < 0:
                raise CheckError(f"{path}: line {n}: unterminated quoted value of {name}")
            inner = value[1:end]
            if q == '"':
                inner = inner.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
            value = inner
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0].strip()
        env[name] = value
        lines[name] = n
    return env, lines


# ---------------------------------------------------------------------- finding compose files
def is_compose_name(name: str) -> bool:
    return name in COMPOSE_NAMES or bool(re.fullmatch(r".+\.compose\.ya?ml", name)) or \
        bool(re.fullmatch(r"(docker-)?compose\.[\w-]+\.ya?ml", name))


def _containers(ctx: Scope) -> list[dict]:
    return ctx.need_engine().containers()


def compose_files_of(labels: dict) -> list[str]:
    """The compose files (host paths) that docker compose named in a container's labels."""
    workdir = labels.get(COMPOSE_WORKDIR_LABEL) or "/"
    return [os.path.normpath(f if f.startswith("/") else os.path.join(workdir, f))
            for f in (x.strip() for x in str(labels.get(COMPOSE_FILES_LABEL) or "").split(",")) if f]


def find_compose_files(ctx: Scope) -> list[str]:
    """Host paths of compose files: ``--compose`` files, those under ``--path`` folders, and those
    named by running containers' ``com.docker.compose.project.config_files`` labels."""
    found: list[str] = list(ctx.compose)
    for top in ctx.paths:
        refused: list[tuple[str, str]] = []
        for p in ctx.host.walk(top, refused=refused):
            if is_compose_name(os.path.basename(p)):
                found.append(p)
        for link, target in refused:
            if is_compose_name(os.path.basename(link)):
                ctx.memo("compose_links_refused", list).append(
                    f"{link}: a symbolic link to {target}: not followed (links are followed inside the "
                    "root to regular files only)")
    if ctx.engine is not None:
        try:
            conts = _containers(ctx)
        except CheckError:  # a dead engine is reported by the engine checks themselves
            conts = []
        for c in conts:
            for p in compose_files_of(((c.get("Config") or {}).get("Labels")) or {}):
                try:
                    if ctx.host.is_file(p):
                        found.append(p)
                except CheckError:
                    continue
    return list(dict.fromkeys(found))


def iter_compose(ctx: Scope) -> Iterator[ComposeFile | CheckError]:
    """Every compose file to scan, loaded (or the CheckError saying why it could not be)."""
    files = ctx.memo("compose_files", lambda: find_compose_files(ctx))
    for msg in ctx.memo("compose_links_refused", list):
        yield CheckError(msg)
    for p in files:
        try:
            yield ctx_compose(ctx, p)
        except CheckError as e:
            yield e
