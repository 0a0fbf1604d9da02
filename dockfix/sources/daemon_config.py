"""The daemon's effective options, from every place a real host keeps them.

Sources: dockerd's command line (the running dockerd's behind the scanned socket, else the one its
systemd unit starts, read with dockfix/sources/systemd.py, with ``$DOCKER_OPTS`` from
/etc/default/docker only where the unit passes it; without a unit, an init script's options file),
parsed with dockerd's own flag grammar; and daemon.json (``--config-file`` of that command line, or
/etc/docker/daemon.json) for every key no flag sets. ``docker info`` adds what the engine reports it
is actually doing (storage and logging driver, live restore, security options).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from dockfix.model import CheckError, Location, Undetermined

DAEMON_JSON = "/etc/docker/daemon.json"

#: dockerd flag -> daemon.json key (flags not listed map to their own name without dashes).
FLAG_KEYS = {
    "insecure-registry": "insecure-registries",
    "authorization-plugin": "authorization-plugins",
    "default-ulimit": "default-ulimits",
    "host": "hosts",
    "storage-opt": "storage-opts",
    "registry-mirror": "registry-mirrors",
    "label": "labels",
    "log-opt": "log-opts",
    "exec-opt": "exec-opts",
    "dns-opt": "dns-opts",
    "add-runtime": "runtimes",
    "default-address-pool": "default-address-pools",
    "node-generic-resource": "node-generic-resources",
    "feature": "features",
    "cdi-spec-dir": "cdi-spec-dirs",
}
#: dockerd's one-letter flags (``dockerd --help``, 20.10 and 28).
SHORT_FLAGS = {"b": "bridge", "D": "debug", "G": "group", "H": "host", "l": "log-level", "p": "pidfile",
               "s": "storage-driver", "v": "version", "h": "help", "g": "graph"}
#: Keys that may be given several times and collect into a list.
LIST_KEYS = {"insecure-registries", "authorization-plugins", "hosts", "storage-opts", "registry-mirrors",
             "labels", "log-opts", "exec-opts", "dns", "dns-opts", "dns-search", "default-ulimits",
             "allow-nondistributable-artifacts", "default-address-pools", "node-generic-resources", "features",
             "cdi-spec-dirs"}
#: Boolean flags (``--icc`` alone means true; ``--icc=false``; never ``--icc false``): dockerd --help.
BOOL_KEYS = {"icc", "iptables", "ip6tables", "ip-masq", "live-restore", "userland-proxy", "no-new-privileges", "tls",
             "tlsverify", "experimental", "debug", "selinux-enabled", "ip-forward", "ipv6", "init", "raw-logs",
             "rootless", "cri-containerd", "validate", "version", "help", "allow-direct-routing", "ip-forward-no-drop"}
#: What Go's strconv.ParseBool accepts (pflag parses boolean flags with it).
GO_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
            "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}
#: Keys whose value is a string in daemon.json (dockerd refuses any other type).
STRING_KEYS = {"log-level", "log-driver", "storage-driver", "cgroup-parent", "seccomp-profile", "userns-remap",
               "tlscacert", "tlscert", "tlskey", "data-root", "exec-root", "pidfile", "group", "default-runtime",
               "bridge", "bip", "fixed-cidr", "default-gateway", "ip", "iptables-path"}
#: Where dockerd listens when no host is given.
DEFAULT_HOST = "unix:///var/run/docker.sock"


@dataclass(frozen=True)
class Setting:
    value: Any
    source: str  # "daemon.json", "dockerd command line", "/lib/systemd/system/docker.service:12", ...
    location: Location | None = None

    def describe(self, key: str) -> str:
        where = f"{self.location}" if self.location else self.source
        if self.location and self.source not in ("daemon.json", str(self.location)):
            where = self.source
        shown = json.dumps(self.value) if not isinstance(self.value, str) else self.value
        return f"{key} is {shown} ({where})"


@dataclass(frozen=True)
class Arg:
    """One dockerd argument and where it came from."""

    text: str
    source: str
    location: Location | None = None


def normalize_host(addr: str) -> str:
    """A -H/--host/hosts value as dockerd reads it (opts.ParseHost): no scheme means tcp, an
    empty host is localhost, an empty value is the default unix socket."""
    a = addr.strip()
    if not a:
        return DEFAULT_HOST
    if "://" not in a:
        a = "tcp://" + a
    scheme, rest = a.split("://", 1)
    if scheme == "tcp":
        if not rest:
            return "tcp://localhost:2375"
        hostport = rest.split("/", 1)[0]
        if hostport.startswith("["):
            host, _, port = hostport[1:].partition("]")
            port = port.lstrip(":")
        else:
            host, _, port = hostport.rpartition(":") if ":" in hostport else (hostport, "", "")
        host = host or "localhost"
        return f"tcp://{'[' + host + ']' if ':' in host else host}:{port or '2375'}"
    if scheme == "unix" and not rest:
        return DEFAULT_HOST
    return a


def parse_args(args: list[Arg]) -> tuple[dict[str, Setting], list[str]]:
    """dockerd's command line as dockerd (cobra/pflag) parses it -> ({daemon.json key: Setting}, problems).

    ``--name=value``, ``--name value`` (not for booleans), ``--bool``, ``--bool=false`` (Go's
    ParseBool: 1 t true 0 f false ...), ``-H value``, ``-Hvalue``, ``-H=value``, ``-D``, grouped
    one-letter booleans (``-Dl debug``), repeated list flags, ``--`` ends the options. A problem is
    something dockerd itself would refuse to start with."""
    out: dict[str, Setting] = {}
    problems: list[str] = []

    def put(name: str, value: Any, arg: Arg, raw_flag: str) -> None:
        key = FLAG_KEYS.get(name, name)
        if key in BOOL_KEYS:
            if value is None:
                value = True
            elif value in GO_BOOLS:
                value = GO_BOOLS[value]
            else:
                problems.append(f"{raw_flag}={value} ({arg.source}): not a boolean; dockerd would not start")
                return
        elif key in LIST_KEYS:
            prev = out.get(key)
            values = list(prev.value) if prev else []
            values.append(value)
            out[key] = Setting(values, prev.source if prev else arg.source, prev.location if prev else arg.location)
            return
        out[key] = Setting(value, arg.source, arg.location)

    i = 0
    while i < len(args):
        arg = args[i]
        a = arg.text
        i += 1
        if a == "--":
            break
        if a.startswith("--"):
            name, eq, value = a[2:].partition("=")
            if not eq:
                key = FLAG_KEYS.get(name, name)
                if key not in BOOL_KEYS:
                    if i < len(args):
                        value = args[i].text
                        i += 1
                    else:
                        problems.append(f"{a} ({arg.source}): needs an argument; dockerd would not start")
                        continue
                else:
                    value = None
            put(name, value, arg, a)
        elif a.startswith("-") and len(a) > 1:
            j = 1
            while j < len(a):
                letter = a[j]
                name = SHORT_FLAGS.get(letter, letter)
                rest = a[j + 1:]
                if name in BOOL_KEYS:
                    if rest.startswith("="):
                        put(name, rest[1:], arg, f"-{letter}")
                        break
                    put(name, None, arg, f"-{letter}")
                    j += 1
                    continue
                if rest:
                    value = rest[1:] if rest.startswith("=") else rest
                elif i < len(args):
                    value = args[i].text
                    i += 1
                else:
                    problems.append(f"-{letter} ({arg.source}): needs an argument; dockerd would not start")
                    break
                put(name, value, arg, f"-{letter}")
                break
        else:
            problems.append(f"{a!r} ({arg.source}): dockerd takes no arguments; it would not start")
    return out, problems


def parse_flags(argv: list[str], source: str, location: Location | None = None) -> dict[str, Setting]:
    """dockerd command-line arguments -> {daemon.json key: Setting}."""
    return parse_args([Arg(a, source, location) for a in argv])[0]


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


def _shell_var(text: str, var: str, path: str) -> tuple[str | None, int]:
    """(value of ``var``, line) in a shell-style file such as /etc/default/docker, or (None, 0).

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
    return value, where


def parse_env_file(text: str, var: str, path: str) -> dict[str, Setting]:
    """Options from a shell-style file such as /etc/default/docker (``DOCKER_OPTS="..."``)."""
    value, where = _shell_var(text, var, path)
    if value is None:
        return {}
    return parse_flags(value.split(), path, Location(path, where))


@dataclass
class CommandLine:
    """dockerd's effective command line: the running process's, or the one its unit starts."""

    settings: dict[str, Setting]
    source: str  # "/lib/systemd/system/docker.service:12", "dockerd command line (pid 812)", ...
    unknown: str | None = None  # why the command line could not be determined (then settings is partial)
    problems: list[str] = field(default_factory=list)  # what dockerd would refuse to start with
    socket_hosts: list[Setting] = field(default_factory=list)  # docker.socket ListenStream= behind fd://
    args: list[Arg] = field(default_factory=list)  # the arguments after "dockerd", as given
    socket_unknown: str | None = None  # why docker.socket's listeners are unknown (dockerd -H fd://)
    pid: int | None = None  # the running dockerd's, when its command line is the source


def _is_dockerd(argv0: str) -> bool:
    return argv0.rsplit("/", 1)[-1] == "dockerd"


def command_line(host, process: tuple[int, list[str]] | None = None) -> CommandLine:
    """The effective dockerd command line of ``host``.

    Live (``process`` given: the dockerd serving the scanned socket) its argv is the truth; the
    unit only lends provenance when it expands to the same argv. Offline, docker.service is read
    as systemd reads it (sources/systemd.py). Without a unit, an init script's options file
    (/etc/default/docker ``DOCKER_OPTS``, /etc/sysconfig/docker ``OPTIONS``) counts only when the
    init script exists; otherwise the command line is unknown and says why."""
    from dockfix.sources import systemd

    unit_cmd = None
    why = None
    unit = systemd.load_unit(host, "docker.service")  # CheckError: a unit file that cannot be read
    if unit is not None and unit.masked:
        why = f"docker.service is masked ({unit.fragment})"
    elif unit is not None:
        try:
            unit_cmd = systemd.service_command(host, unit)
        except Undetermined as e:
            why = str(e)
        if unit_cmd is not None and not (unit_cmd.words and _is_dockerd(unit_cmd.words[0].text)):
            prog = unit_cmd.words[0].text if unit_cmd.words else "nothing"
            why = f"{unit_cmd.exec_start.location}: docker.service starts {prog}, not dockerd: its options are unknown"
            unit_cmd = None
    if process is not None:
        pid, argv = process
        if unit_cmd is not None and [w.text for w in unit_cmd.words[1:]] == argv[1:]:
            args = [Arg(w.text, w.origin, w.location) for w in unit_cmd.words[1:]]
            source = f"dockerd (pid {pid}), started by {unit_cmd.exec_start.location}"
        else:
            args = [Arg(a, f"dockerd command line (pid {pid})") for a in argv[1:]]
            source = f"dockerd command line (pid {pid})"
        why = None
    elif unit_cmd is not None:
        args = [Arg(w.text, w.origin, w.location) for w in unit_cmd.words[1:]]
        source = str(unit_cmd.exec_start.location)
    elif unit is None and why is None:
        args, source = [], "no docker.service"
        for path, var in (("/etc/sysconfig/docker", "OPTIONS"), ("/etc/default/docker", "DOCKER_OPTS")):
            if host.is_file("/etc/init.d/docker"):
                text = host.read_text(path)
                if text:
                    args += [Arg(a, s.source, s.location) for a, s in _env_file_args(text, var, path)]
        if host.is_file("/etc/init.d/docker"):
            source = "/etc/init.d/docker and its options file"
        else:
            why = "no docker.service unit was found in the systemd unit folders (and no running dockerd was scanned)"
    else:
        args, source = [], "docker.service"
    settings, problems = parse_args(args)
    if problems and why is None:
        why = "; ".join(problems)
    cl = CommandLine(settings, source, why, problems, args=args,
                     pid=process[0] if process is not None else None)
    hosts = settings.get("hosts")
    if hosts and any(str(h).startswith("fd://") for h in hosts.value):
        try:
            sock = systemd.load_unit(host, "docker.socket")
        except CheckError as e:
            cl.socket_unknown = f"dockerd takes its sockets from systemd (fd://) and docker.socket could not be read ({e})"
            sock = None
        if sock is None and cl.socket_unknown is None:
            cl.socket_unknown = "dockerd takes its sockets from systemd (fd://) but no docker.socket unit was found"
        elif sock is not None and not sock.masked:
            cl.socket_hosts = [Setting(a.value, str(a.location), a.location) for a in systemd.listen_streams(sock)]
    return cl


def _env_file_args(text: str, var: str, path: str) -> list[tuple[str, Setting]]:
    """Words of ``VAR`` in a shell-style options file, each with the line it came from."""
    value, line = _shell_var(text, var, path)
    if value is None:
        return []
    loc = Location(path, line)
    return [(w, Setting(w, str(loc), loc)) for w in value.split()]


class DaemonConfig:
    """Effective daemon options. ``get(key)`` returns the Setting that wins, or None.

    ``unknown`` says why dockerd's command line could not be determined (a check must not pass
    on a default then); ``conflicts`` are keys set both by a flag and in daemon.json (dockerd
    refuses to start)."""

    def __init__(self, json_path: str, from_json: dict[str, Setting], from_files: dict[str, Setting],
                 from_cmdline: dict[str, Setting], cmdline_known: bool, info: dict[str, Any] | None,
                 cmd: CommandLine | None = None):
        self.json_path = json_path
        self.from_json = from_json
        self.from_files = from_files
        self.from_cmdline = from_cmdline
        self.cmdline_known = cmdline_known
        self.info = info
        self.cmd = cmd
        self.unknown = cmd.unknown if cmd else (None if cmdline_known else "dockerd's command line is unknown")
        self.socket_hosts = cmd.socket_hosts if cmd else []
        self.conflicts = sorted(k for k in from_cmdline if k in from_json and k != "config-file")
        self.problems = cmd.problems if cmd else []

    def get(self, key: str) -> Setting | None:
        for src in (self.from_cmdline, self.from_files, self.from_json):
            if key in src:
                return src[key]
        return None

    def all(self, key: str) -> list[Setting]:
        return [src[key] for src in (self.from_cmdline, self.from_files, self.from_json) if key in src]

    def flag_setting(self, key: str) -> Setting | None:
        """The Setting of ``key`` on dockerd's command line (unit, options file or process), or None."""
        return self.from_cmdline.get(key) or self.from_files.get(key)

    def sources(self) -> str:
        parts = [self.json_path]
        if self.cmd is not None and self.cmd.unknown is None:
            parts.insert(0, f"dockerd's command line ({self.cmd.source})")
        elif self.cmdline_known:
            parts.append("the dockerd command line")
        if self.from_files:
            parts.append("/etc/default/docker or /etc/sysconfig/docker")
        return ", ".join(parts)
