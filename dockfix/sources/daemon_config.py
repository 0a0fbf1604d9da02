"""The daemon's effective options, from every place a real host keeps them.

Sources, in the order dockerd itself applies them: the command line of the daemon that serves the
scanned socket, the option files read by init scripts (/etc/default/docker, /etc/sysconfig/docker),
and daemon.json (``--config-file`` or /etc/docker/daemon.json). ``docker info`` adds what the
engine reports it is actually doing (storage and logging driver, live restore, security options).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from typing import Any

from dockfix.model import CheckError, Location

DAEMON_JSON = "/etc/docker/daemon.json"

#: dockerd flag -> daemon.json key (flags not listed map to their own name without dashes).
FLAG_KEYS = {
    "insecure-registry": "insecure-registries",
    "authorization-plugin": "authorization-plugins",
    "default-ulimit": "default-ulimits",
    "host": "hosts",
    "H": "hosts",
    "storage-opt": "storage-opts",
    "s": "storage-driver",
    "G": "group",
    "D": "debug",
    "l": "log-level",
    "p": "pidfile",
    "registry-mirror": "registry-mirrors",
    "label": "labels",
    "log-opt": "log-opts",
    "exec-opt": "exec-opts",
    "dns": "dns",
    "add-runtime": "runtimes",
}
#: Keys that may be given several times and collect into a list.
LIST_KEYS = {"insecure-registries", "authorization-plugins", "hosts", "storage-opts", "registry-mirrors",
             "labels", "log-opts", "exec-opts", "dns", "default-ulimits"}
#: Boolean flags (``--icc`` alone means true, ``--icc=false`` false).
BOOL_KEYS = {"icc", "iptables", "ip-masq", "live-restore", "userland-proxy", "no-new-privileges", "tls",
             "tlsverify", "experimental", "debug", "selinux-enabled", "ip-forward", "ipv6"}
#: Keys whose value is a string in daemon.json (dockerd refuses any other type).
STRING_KEYS = {"log-level", "log-driver", "storage-driver", "cgroup-parent", "seccomp-profile", "userns-remap",
               "tlscacert", "tlscert", "tlskey", "data-root", "exec-root", "pidfile", "group", "default-runtime",
               "bridge", "bip", "fixed-cidr", "default-gateway", "ip", "iptables-path"}


@dataclass(frozen=True)
class Setting:
    value: Any
    source: str  # "daemon.json", "command line", "/etc/default/docker", ...
    location: Location | None = None

    def describe(self, key: str) -> str:
        where = f"{self.location}" if self.location else self.source
        shown = json.dumps(self.value) if not isinstance(self.value, str) else self.value
        return f"{key} is {shown} ({where})"


def parse_flags(argv: list[str], source: str, location: Location | None = None) -> dict[str, Setting]:
    """dockerd command-line arguments -> {daemon.json key: Setting}."""
    out: dict[str, Setting] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("-") or arg == "-":
            continue
        name = arg.lstrip("-")
        value: Any
        if "=" in name:
            name, value = name.split("=", 1)
        else:
            value = None
        key = FLAG_KEYS.get(name, name)
        if key in BOOL_KEYS:
            if value is None:
                value = True
            else:
                value = str(value).lower() not in ("false", "0", "no")
        elif value is None:
            if i < len(argv) and not argv[i].startswith("-"):
                value = argv[i]
                i += 1
            else:
                value = True
        if key in LIST_KEYS:
            prev = out.get(key)
            values = list(prev.value) if prev else []
            values.append(value)
            out[key] = Setting(values, source, location)
        else:
            out[key] = Setting(value, source, location)
    return out


def _reject_duplicates(path: str):
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for k, v in pairs:
            if k in seen:
                raise CheckError(f"{path}: duplicate key {k!r} (dockerd would refuse or silently take one)")
            seen[k] = v
        return seen

    return hook


def parse_daemon_json(text: str, path: str = DAEMON_JSON) -> dict[str, Setting]:
    """daemon.json text -> {key: Setting with its line}. Raises CheckError naming file and line."""
    if not text.strip():
        return {}
    try:
        data = json.loads(text, object_pairs_hook=_reject_duplicates(path), parse_constant=_no_constant(path),
                          parse_int=_int_of(path), parse_float=_float_of(path))
    except json.JSONDecodeError as e:
        raise CheckError(f"{path}: line {e.lineno} column {e.colno}: {e.msg}") from None
    except RecursionError:
        raise CheckError(f"{path}: nested too deeply") from None
    if not isinstance(data, dict):
        raise CheckError(f"{path}: line 1: expected a JSON object, found {type(data).__name__}")
    lines = _top_level_key_lines(text)
    out = {}
    for key, value in data.items():
        _check_type(path, key, value, lines.get(key))
        out[key] = Setting(value, "daemon.json", Location(path, lines.get(key)))
    return out


def _check_type(path: str, key: str, value: Any, line: int | None) -> None:
    """dockerd refuses to start on a value of the wrong type; so do we, naming the key."""
    where = f"{path}: line {line}" if line else path
    if key in BOOL_KEYS and not isinstance(value, bool):
        raise CheckError(f"{where}: {key} must be true or false, found {_json_type(value)} (dockerd would not start)")
    if key in LIST_KEYS - {"log-opts", "default-ulimits"} and not isinstance(value, list):
        raise CheckError(f"{where}: {key} must be a list, found {_json_type(value)} (dockerd would not start)")
    if key in STRING_KEYS and not isinstance(value, str):
        raise CheckError(f"{where}: {key} must be a string, found {_json_type(value)} (dockerd would not start)")


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "null"


def _float_of(path: str):
    def hook(text: str) -> float:
        value = float(text)
        if value in (float("inf"), float("-inf")):
            raise CheckError(f"{path}: the number {text[:40]} is out of range")
        return value

    return hook


def _int_of(path: str):
    def hook(digits: str) -> int:
        if len(digits) > 100:
            raise CheckError(f"{path}: a number with {len(digits)} digits is too large")
        return int(digits)

    return hook


def _no_constant(path: str):
    def hook(name: str) -> Any:
        raise CheckError(f"{path}: {name} is not valid JSON")

    return hook


_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"([ \t\r]*:)?|[{}\[\]]')


def _top_level_key_lines(text: str) -> dict[str, int]:
    """{key: line} for the keys of the top-level object, in one pass over the text.

    (Looking each key up with its own search over all lines would take quadratic time on a
    large file with many keys.)
    """
    out: dict[str, int] = {}
    depth = 0
    line, counted = 1, 0
    for m in _TOKEN.finditer(text):
        tok = m.group(0)
        if tok in "{[":
            depth += 1
        elif tok in "}]":
            depth -= 1
        elif depth == 1 and m.group(1) is not None:
            raw = tok[1: tok.rindex('"')]
            if "\\" in raw:
                try:
                    raw = json.loads('"' + raw + '"')
                except ValueError:
                    continue
            if raw not in out:
                line += text.count("\n", counted, m.start())
                counted = m.start()
                out[raw] = line
    return out


def parse_env_file(text: str, var: str, path: str) -> dict[str, Setting]:
    """Options from a shell-style file such as /etc/default/docker (``DOCKER_OPTS="..."``).

    Read as the shell reads it when an init script sources the file and runs ``dockerd $VAR``:
    a backslash at the end of a line continues it, a quoted value may run over several lines,
    ``$VAR``/``${VAR}`` in a later assignment stands for the earlier value, the last assignment
    wins, and the unquoted ``$VAR`` is split on blanks only (no quote or escape processing).
    """
    lines = text.splitlines()
    value: str | None = None
    where = 0
    n = 0
    self_ref = re.compile(r"\$(?:" + re.escape(var) + r"\b|\{" + re.escape(var) + r"\})")
    while n < len(lines):
        start = n
        line = lines[n]
        n += 1
        while line.endswith("\\") and (len(line) - len(line.rstrip("\\"))) % 2 == 1 and n < len(lines):
            line = line[:-1] + lines[n]
            n += 1
        m = re.match(r"\s*(?:export\s+)?" + re.escape(var) + r"\s*=\s*(.*)$", line)
        if not m:
            continue
        raw = m.group(1)
        while True:
            try:
                words = shlex.split(raw, comments=True)
                break
            except ValueError as e:
                if "No closing quotation" in str(e) and n < len(lines) and n - start < 100:
                    raw += "\n" + lines[n]
                    n += 1
                    continue
                raise CheckError(f"{path}: line {start + 1}: {e}") from None
        earlier = value or ""
        value = self_ref.sub(lambda _m: earlier, " ".join(words))
        where = start + 1
    if value is None:
        return {}
    return parse_flags(value.split(), path, Location(path, where))


class DaemonConfig:
    """Effective daemon options. ``get(key)`` returns the Setting that wins, or None."""

    def __init__(self, json_path: str, from_json: dict[str, Setting], from_files: dict[str, Setting],
                 from_cmdline: dict[str, Setting], cmdline_known: bool, info: dict[str, Any] | None):
        self.json_path = json_path
        self.from_json = from_json
        self.from_files = from_files
        self.from_cmdline = from_cmdline
        self.cmdline_known = cmdline_known
        self.info = info

    def get(self, key: str) -> Setting | None:
        for src in (self.from_cmdline, self.from_files, self.from_json):
            if key in src:
                return src[key]
        return None

    def all(self, key: str) -> list[Setting]:
        return [src[key] for src in (self.from_cmdline, self.from_files, self.from_json) if key in src]

    def sources(self) -> str:
        parts = [self.json_path]
        if self.cmdline_known:
            parts.append("the dockerd command line")
        if self.from_files:
            parts.append("/etc/default/docker or /etc/sysconfig/docker")
        return ", ".join(parts)
