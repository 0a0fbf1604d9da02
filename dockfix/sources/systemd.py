"""systemd units as systemd itself reads them: lookup order, drop-ins, ExecStart and the environment.

What is modelled (systemd.unit(5), systemd.service(5), systemd.exec(5)):

* the unit search path of the system manager, in ``systemd-analyze unit-paths`` order; on a
  merged-/usr host ``/lib`` is a link to ``usr/lib`` and the two folders are one;
* a unit file that is a link to ``/dev/null`` (or empty) is masked;
* drop-ins: ``NAME.d/*.conf`` and the type-wide ``service.d/*.conf`` in every unit folder; a
  drop-in file name in an earlier folder hides the same name in later ones; all are applied after
  the main file, in file-name order;
* an empty assignment (``ExecStart=``, ``Environment=``, ``EnvironmentFile=``) resets the list;
* ``ExecStart`` prefixes (``-@:+!``), quoting, ``$VAR`` (a word of its own: split at blanks) and
  ``${VAR}`` (kept one word) expanded only where the command line references them, ``$$``;
* ``Environment=`` and ``EnvironmentFile=`` (``-`` prefix: a missing file is ignored); files
  override ``Environment=``; later files override earlier ones.

Every value keeps where it came from (file and line), so evidence can say "docker.service.d/x.conf:3
via $DOCKER_OPTS from /etc/default/docker:2".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dockfix.host import SYSTEMD_DIRS
from dockfix.model import CheckError, Location, Undetermined

#: The system manager's unit search path, highest priority first (systemd-analyze unit-paths).
UNIT_PATHS = SYSTEMD_DIRS

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class Assignment:
    section: str
    key: str
    value: str
    location: Location


@dataclass
class Unit:
    name: str
    fragment: str | None  # host path of the main file
    dropins: list[str] = field(default_factory=list)
    assignments: list[Assignment] = field(default_factory=list)
    masked: bool = False

    def values(self, section: str, key: str) -> list[Assignment]:
        """Assignments of a list setting, after the last empty one (which resets the list)."""
        out: list[Assignment] = []
        for a in self.assignments:
            if a.section == section and a.key == key:
                if a.value == "":
                    out = []
                else:
                    out.append(a)
        return out

    def last(self, section: str, key: str) -> Assignment | None:
        found = [a for a in self.assignments if a.section == section and a.key == key]
        return found[-1] if found else None


def unit_dirs(host) -> list[str]:
    """The unit folders of ``host`` in priority order; two names of one folder count once."""
    seen: set[str] = set()
    out = []
    for d in UNIT_PATHS:
        real = host.resolve(d)
        if real in seen:
            continue
        seen.add(real)
        out.append(d)
    return out


def parse_unit_text(text: str, path: str) -> list[Assignment]:
    """``[Section]`` / ``Key=Value`` lines; ``#``/``;`` comments; a trailing backslash continues."""
    out = []
    section = ""
    lines = text.splitlines()
    n = 0
    while n < len(lines):
        start = n
        line = lines[n].strip()
        n += 1
        if not line or line[0] in "#;":
            continue
        while line.endswith("\\") and n < len(lines):
            nxt = lines[n].strip()
            n += 1
            if nxt[:1] in ("#", ";"):
                continue
            line = line[:-1] + " " + nxt
        if line.endswith("\\"):
            line = line[:-1]
        if line.startswith("["):
            if not line.endswith("]"):
                raise CheckError(f"{path}: line {start + 1}: malformed section header {line[:60]!r}")
            section = line[1:-1]
            continue
        if "=" not in line:
            raise CheckError(f"{path}: line {start + 1}: expected Key=Value, found {line[:60]!r}")
        key, value = line.split("=", 1)
        out.append(Assignment(section, key.strip(), value.strip(), Location(path, start + 1)))
    return out


def load_unit(host, name: str) -> Unit | None:
    """The unit as systemd would load it, or None when no folder holds it.

    Raises CheckError (naming the file) when a file that systemd would read cannot be read."""
    dirs = unit_dirs(host)
    fragment = None
    for d in dirs:
        p = f"{d}/{name}"
        if host.lstat(p) is not None:
            fragment = p
            break
    if fragment is None:
        return None
    unit = Unit(name, fragment)
    if host.resolve(fragment) == "/dev/null":
        unit.masked = True
        return unit
    text = host.read_text(fragment)
    if text is None:
        raise CheckError(f"{fragment}: a link to a file that does not exist")
    if not text.strip():
        unit.masked = True  # systemd treats an empty unit file as masked
        return unit
    unit.assignments = parse_unit_text(text, fragment)
    kind = name.rsplit(".", 1)[-1]
    chosen: dict[str, str] = {}
    for d in dirs:
        for folder in (f"{d}/{kind}.d", f"{d}/{name}.d"):
            for entry in host.listdir(folder):
                if entry.endswith(".conf") and entry not in chosen:
                    chosen[entry] = f"{folder}/{entry}"
    for entry in sorted(chosen):
        p = chosen[entry]
        if host.resolve(p) == "/dev/null":
            continue  # a drop-in masked by a link to /dev/null
        t = host.read_text(p)
        if t is None:
            continue
        unit.dropins.append(p)
        unit.assignments += parse_unit_text(t, p)
    return unit


# ---------------------------------------------------------------------- words and environment
@dataclass(frozen=True)
class Word:
    """One argument of a command line and where it came from."""

    text: str
    origin: str  # "docker.service:12" or "docker.service:12 via $DOCKER_OPTS from /etc/default/docker:1"
    location: Location


def split_words(text: str, where: str) -> list[tuple[str, bool]]:
    """systemd's word splitting: blanks separate, "..." and '...' quote, C escapes. (word, was_quoted)."""
    out: list[tuple[str, bool]] = []
    i, n = 0, len(text)
    escapes = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'", " ": " ", "r": "\r", "a": "\a"}
    while i < n:
        while i < n and text[i] in " \t\n":
            i += 1
        if i >= n:
            break
        buf: list[str] = []
        quoted = False
        while i < n and text[i] not in " \t\n":
            c = text[i]
            if c in "\"'":
                quoted = True
                end = i + 1
                while end < n and text[end] != c:
                    if text[end] == "\\" and c == '"' and end + 1 < n:
                        buf.append(escapes.get(text[end + 1], "\\" + text[end + 1]))
                        end += 2
                        continue
                    buf.append(text[end])
                    end += 1
                if end >= n:
                    raise CheckError(f"{where}: unbalanced quotes")
                i = end + 1
            elif c == "\\" and i + 1 < n:
                buf.append(escapes.get(text[i + 1], "\\" + text[i + 1]))
                i += 2
            else:
                buf.append(c)
                i += 1
        out.append(("".join(buf), quoted))
    return out


def parse_environment(assignments: list[Assignment]) -> dict[str, tuple[str, Location]]:
    """``Environment=`` lines -> {NAME: (value, where)}; later ones win."""
    env: dict[str, tuple[str, Location]] = {}
    for a in assignments:
        for word, _ in split_words(a.value, str(a.location)):
            if "=" in word:
                k, v = word.split("=", 1)
                if _ENV_NAME.match(k):
                    env[k] = (v, a.location)
    return env


def parse_env_file(text: str, path: str) -> dict[str, tuple[str, Location]]:
    """An ``EnvironmentFile=`` as systemd reads it: KEY=VALUE lines, # and ; comments, quotes,
    a trailing backslash continues the line. No ``export``, no expansion."""
    env: dict[str, tuple[str, Location]] = {}
    lines = text.splitlines()
    n = 0
    while n < len(lines):
        start = n
        line = lines[n]
        n += 1
        while line.endswith("\\") and n < len(lines):
            line = line[:-1] + lines[n]
            n += 1
        s = line.strip()
        if not s or s[0] in "#;" or "=" not in s:
            continue
        k, v = s.split("=", 1)
        k, v = k.strip(), v.strip()
        if not _ENV_NAME.match(k):
            continue  # systemd ignores an invalid name (e.g. "export X=...")
        if v[:1] in ("'", '"'):
            try:
                words = split_words(v, f"{path}: line {start + 1}")
            except CheckError:
                raise CheckError(f"{path}: line {start + 1}: No closing quotation") from None
            v = " ".join(w for w, _ in words) if words else ""
        env[k] = (v, Location(path, start + 1))
    return env


@dataclass
class ServiceCommand:
    """The command line a service unit starts, with where each word came from."""

    unit: Unit
    words: list[Word]
    exec_start: Assignment
    used_env: dict[str, Location]  # variables referenced and where their values came from
    notes: list[str] = field(default_factory=list)


def service_command(host, unit: Unit) -> ServiceCommand:
    """The effective ``ExecStart`` of a service, expanded as systemd does.

    Raises CheckError (one line naming the file) when a file cannot be read, Undetermined when
    systemd would not start the service as written."""
    starts = unit.values("Service", "ExecStart")
    if not starts:
        raise Undetermined(f"{unit.fragment}: {unit.name} has no ExecStart (after resets)")
    stype = unit.last("Service", "Type")
    if len(starts) > 1 and not (stype and stype.value == "oneshot"):
        raise Undetermined(f"{starts[-1].location}: {unit.name} has {len(starts)} ExecStart= lines; systemd refuses "
                         "more than one for a service that is not Type=oneshot")
    a = starts[-1]
    env: dict[str, tuple[str, Location]] = parse_environment(unit.values("Service", "Environment"))
    for ef in unit.values("Service", "EnvironmentFile"):
        for word, _ in split_words(ef.value, str(ef.location)):
            optional = word.startswith("-")
            path = word[1:] if optional else word
            try:
                text = host.read_text(path)
            except CheckError as e:
                raise CheckError(f"{e} (EnvironmentFile= at {ef.location})") from None
            if text is None:
                if optional:
                    continue
                raise Undetermined(f"{path}: does not exist, and {ef.location} requires it (no '-'): systemd would not "
                                 f"start {unit.name}")
            env.update(parse_env_file(text, path))
    cmd = a.value
    while cmd[:1] in ("-", "@", ":", "+", "!"):
        cmd = cmd[1:]
    here = str(a.location)
    words: list[Word] = []
    used: dict[str, Location] = {}
    for raw, _quoted in split_words(cmd, here):
        m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", raw)
        if m:
            name = m.group(1)
            value, loc = env.get(name, ("", None))
            if loc is not None:
                used[name] = loc
            origin = f"{here} via ${name}" + (f" from {loc}" if loc else " (not set: empty)")
            for w, _ in split_words(value, f"${name}"):
                words.append(Word(w, origin, loc or a.location))
            continue

        def sub(mm: re.Match) -> str:
            if mm.group(0) == "$$":
                return "$"
            name = mm.group(1)
            value, loc = env.get(name, ("", None))
            if loc is not None:
                used[name] = loc
            return value

        text = re.sub(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}", sub, raw)
        words.append(Word(text, here, a.location))
    return ServiceCommand(unit, words, a, used)


def listen_streams(unit: Unit) -> list[Assignment]:
    """``ListenStream=`` of a socket unit (after resets)."""
    return unit.values("Socket", "ListenStream")


def listen_is_tcp(value: str) -> bool:
    """A ListenStream that is not a path (/x), an abstract socket (@x) or vsock is a TCP port."""
    return not value.startswith(("/", "@", "vsock:"))
