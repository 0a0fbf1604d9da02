"""Compose v2 as the oracle for the ``env-password`` conversion of compose files.

Compose v2 (the Go implementation; compose-go holds its rules for interpolation, ``.env``,
``env_file``, overrides, ``extends``, ``include`` and profiles) is what runs these stacks, so it
decides, not dockfix's own reading:

* :func:`find_compose_v2` finds it (``DOCKFIX_COMPOSE`` names a binary; else ``docker-compose``
  on PATH when it says version 2 or later; else the ``docker compose`` plugin);
* :class:`Project` mirrors every file compose would read for a project into a private temporary
  folder (0700, removed afterwards) at the same path below it, twice: as the host is now and as
  the planned changes leave it, and runs ``config --format json`` on each with a clean
  environment (no variable of the shell that runs dockfix leaks in);
* :func:`differences` compares the two models and names every difference that is not one of the
  planned ones (moved variables, new secrets, their ``_FILE`` pointers, the exporter's flag):
  names only, never values.

Nothing here prints a value: compose's own error output is reduced to its first line, with the
temporary folder taken out and every secret-looking part masked by the one detector.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import Any

from dockfix.sources.secrets import mask_line

#: Default compose file names, in compose-go's order (cli/options.go DefaultFileNames), and overrides.
DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
OVERRIDE_FILES = ("compose.override.yml", "compose.override.yaml", "docker-compose.override.yml",
                  "docker-compose.override.yaml")
MAX_FILES = 400
MAX_BYTES = 4 << 20
TIMEOUT = 30


class OracleError(Exception):
    """Compose could not answer (one line, no value)."""


def _version(cmd: list[str]) -> str | None:
    try:
        r = subprocess.run([*cmd, "version", "--short"], capture_output=True, text=True, timeout=TIMEOUT,
                           env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent"})
    except (OSError, subprocess.TimeoutExpired):
        return None
    v = r.stdout.strip().lstrip("v")
    return v if r.returncode == 0 and v[:1].isdigit() else None


def find_compose_v2() -> tuple[list[str], str] | None:
    """The command that runs compose v2 here and its version, or None."""
    named = os.environ.get("DOCKFIX_COMPOSE")
    candidates = [[named]] if named else []
    if shutil.which("docker-compose"):
        candidates.append([shutil.which("docker-compose")])
    if shutil.which("docker"):
        candidates.append([shutil.which("docker"), "compose"])
    for cmd in candidates:
        v = _version(cmd)
        if v and int(v.split(".", 1)[0]) >= 2:
            return cmd, v
    return None


def find_compose_v1() -> tuple[list[str], str] | None:
    """docker-compose 1.x (Python; Debian 12 ships 1.29), when installed: only to find where it and v2 disagree.
    ``DOCKFIX_COMPOSE_V1`` names it (empty: do not compare with 1.x)."""
    named = os.environ.get("DOCKFIX_COMPOSE_V1")
    exe = named if named is not None else shutil.which("docker-compose")
    if not exe:
        return None
    try:
        r = subprocess.run([exe, "version", "--short"], capture_output=True, text=True, timeout=TIMEOUT,
                           env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent"})
    except (OSError, subprocess.TimeoutExpired):
        return None
    v = r.stdout.strip()
    return ([exe], v) if r.returncode == 0 and v.startswith("1.") else None


def _refs(doc: Any) -> list[str]:
    """Paths a compose document names that compose reads: env_file, extends.file, include, secret and config files."""
    out: list[str] = []
    if not isinstance(doc, dict):
        return out
    inc = doc.get("include")
    for entry in inc if isinstance(inc, list) else []:
        if isinstance(entry, str):
            out.append(entry)
        elif isinstance(entry, dict):
            for k in ("path", "env_file"):
                v = entry.get(k)
                out.extend([v] if isinstance(v, str) else [x for x in v or [] if isinstance(x, str)])
    for svc in (doc.get("services") or {}).values() if isinstance(doc.get("services"), dict) else []:
        if not isinstance(svc, dict):
            continue
        ef = svc.get("env_file")
        for e in ef if isinstance(ef, list) else [ef]:
            if isinstance(e, str):
                out.append(e)
            elif isinstance(e, dict) and isinstance(e.get("path"), str):
                out.append(e["path"])
        ext = svc.get("extends")
        if isinstance(ext, dict) and isinstance(ext.get("file"), str):
            out.append(ext["file"])
    for top in ("secrets", "configs"):
        for v in (doc.get(top) or {}).values() if isinstance(doc.get(top), dict) else []:
            if isinstance(v, dict) and isinstance(v.get("file"), str):
                out.append(v["file"])
    return out


@dataclass
class Project:
    """The files of one compose project, as the host has them (``read``) and as planned (``planned``)."""

    compose_path: str  # the compose file the fix edits (a host path below --root)
    read: Any  # callable(host_path) -> bytes | None (staged content: earlier planned changes included)
    planned: dict[str, bytes | None] = field(default_factory=dict)  # host path -> new content (None: removed)
    files: dict[str, bytes] = field(default_factory=dict, repr=False)

    @property
    def folder(self) -> str:
        return os.path.dirname(self.compose_path) or "/"

    def args(self) -> list[str]:
        """``-f`` when compose would not pick the file by itself (overrides and COMPOSE_FILE then as compose does)."""
        name = os.path.basename(self.compose_path)
        present = [n for n in DEFAULT_FILES if os.path.join(self.folder, n) in self.files]
        if name in OVERRIDE_FILES or (present and present[0] == name):
            return []
        return ["-f", name]

    def collect(self) -> None:
        """Every file compose may read: the folder's compose files and .env, then what they name, transitively."""
        todo = [os.path.join(self.folder, n) for n in (*DEFAULT_FILES, *OVERRIDE_FILES, ".env")]
        todo.append(self.compose_path)
        seen: set[str] = set()
        from dockfix.sources.compose import load_yaml_bounded
        from dockfix.model import CheckError

        while todo:
            p = os.path.normpath(todo.pop(0))
            if p in seen or len(seen) > MAX_FILES:
                continue
            seen.add(p)
            data = self.read(p)
            if data is None:
                continue
            self.files[p] = data
            if os.path.basename(p) == ".env" or not p.endswith((".yaml", ".yml")):
                continue
            try:
                doc = load_yaml_bounded(data.decode("utf-8", "replace").lstrip("\ufeff"), p)
            except CheckError:
                continue  # compose will say what is wrong with it
            for ref in _refs(doc):
                if "$" in ref:
                    continue
                todo.append(ref if ref.startswith("/") else os.path.join(os.path.dirname(p), ref))
        total = sum(len(v) for v in self.files.values())
        if total > MAX_BYTES:
            raise OracleError(f"the compose project of {self.compose_path} is larger than {MAX_BYTES >> 20} MiB")

    def model(self, cmd: list[str]) -> dict:
        """compose's model of the project with the ``planned`` contents in place of the host's."""
        if not self.files:
            self.collect()
        with tempfile.TemporaryDirectory(prefix="dockfix-compose-") as tmp:
            os.chmod(tmp, 0o700)
            base = os.path.join(tmp, "p")
            for p, data in {**self.files, **self.planned}.items():
                if data is None:
                    continue
                dst = base + p
                os.makedirs(os.path.dirname(dst), mode=0o700, exist_ok=True)
                fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
            return _strip(self._config(cmd, base, tmp), base)

    def _config(self, cmd: list[str], base: str, tmp: str) -> dict:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp, "DOCKER_CONFIG": os.path.join(tmp, "cfg")}
        try:
            # every profile: a service of an inactive profile is still part of the project
            r = subprocess.run([*cmd, *self.args(), "--profile", "*", "config", "--format", "json"], cwd=base + self.folder,
                               capture_output=True, env=env, timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            raise OracleError(f"docker compose config did not answer within {TIMEOUT} s") from None
        except OSError as e:
            raise OracleError(f"cannot run docker compose: {e.strerror}") from None
        if r.returncode != 0:
            first = next((ln for ln in r.stderr.decode("utf-8", "replace").splitlines() if ln.strip()), "")
            # compose quotes the offending text (an interpolation, a value): keep the rest only
            first = re.sub(r"\"[^\"]*\"?|'[^']*'?|`[^`]*`?", "…", first.replace(base, ""))
            raise OracleError("docker compose cannot load the project: " + mask_line(first[:300]))
        try:
            return json.loads(r.stdout)
        except ValueError:
            raise OracleError("docker compose config gave no JSON") from None


def _strip(v: Any, base: str) -> Any:
    if isinstance(v, str):
        return v.replace(base, "")
    if isinstance(v, list):
        return [_strip(x, base) for x in v]
    if isinstance(v, dict):
        return {k: _strip(x, base) for k, x in v.items()}
    return v


@dataclass(frozen=True)
class Move:
    """One planned conversion, as the models must show it."""

    service: str
    var: str
    secret: str
    file_var: str | None  # None: the exporter's option file (a command flag instead)
    flag: str | None = None


def differences(before: dict, after: dict, moves: list[Move], secrets_dir: str) -> list[str]:
    """Every difference between the two models that is not a planned one (names only, never values)."""
    diffs: list[str] = []
    bs, as_ = before.get("services") or {}, after.get("services") or {}
    if set(bs) != set(as_):
        diffs.append(f"services {sorted(set(bs) ^ set(as_))} appear or disappear")
    new_secrets = {m.secret for m in moves}
    for name in sorted(set(bs) & set(as_)):
        b, a = dict(bs[name]), dict(as_[name])
        mine = [m for m in moves if m.service == name]
        benv, aenv = dict(b.pop("environment", None) or {}), dict(a.pop("environment", None) or {})
        want = dict(benv)
        for m in mine:
            want.pop(m.var, None)
            if m.file_var:
                want[m.file_var] = f"/run/secrets/{m.secret}"
        for k in sorted(set(want) | set(aenv)):
            if k not in aenv:
                diffs.append(f"service {name}: {k} is no longer set")
            elif k not in want:
                diffs.append(f"service {name}: {k} is still set" if k in benv else f"service {name}: {k} appears")
            elif want[k] != aenv[k]:
                diffs.append(f"service {name}: the value of {k} changes")
        bsec, asec = list(b.pop("secrets", None) or []), list(a.pop("secrets", None) or [])
        added = [s for s in asec if s not in bsec]
        if [s for s in bsec if s not in asec]:
            diffs.append(f"service {name}: secrets it had are gone")
        if sorted(str(s.get("source")) for s in added if isinstance(s, dict)) != sorted(m.secret for m in mine) or \
                any(isinstance(s, dict) and s.get("target") not in (None, f"/run/secrets/{s.get('source')}")
                    for s in added):
            diffs.append(f"service {name}: its secrets are not the planned ones")
        bcmd, acmd = b.pop("command", None), a.pop("command", None)
        flags = [m.flag for m in mine if m.flag]
        if (list(bcmd or []) + flags) != list(acmd or []):
            diffs.append(f"service {name}: its command changes otherwise than planned")
        for k in sorted(set(b) | set(a)):
            if b.get(k) != a.get(k):
                diffs.append(f"service {name}: {k} changes")
    btop, atop = dict(before.get("secrets") or {}), dict(after.get("secrets") or {})
    for n in new_secrets:
        got = atop.pop(n, None)
        if not isinstance(got, dict) or got.get("file") != os.path.join(secrets_dir, n):
            diffs.append(f"secret {n} is not declared as the file {os.path.join(secrets_dir, n)}")
    if btop != atop:
        diffs.append("other top-level secrets change")
    for k in sorted((set(before) | set(after)) - {"services", "secrets"}):
        if before.get(k) != after.get(k):
            diffs.append(f"top-level {k} changes")
    return diffs


def v1_environment(cmd: list[str], project: Project) -> dict | None:
    """docker-compose 1.x's view of each service's environment (YAML out), or None when it cannot load the project."""
    from dockfix.sources.compose import load_yaml_bounded
    from dockfix.model import CheckError

    if not project.files:
        project.collect()
    with tempfile.TemporaryDirectory(prefix="dockfix-compose1-") as tmp:
        base = os.path.join(tmp, "before")
        for p, data in project.files.items():
            dst = base + p
            os.makedirs(os.path.dirname(dst), mode=0o700, exist_ok=True)
            fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp}
        try:
            r = subprocess.run([*cmd, *project.args(), "config"], cwd=base + project.folder, capture_output=True,
                               env=env, timeout=TIMEOUT)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if r.returncode != 0:
            return None
        try:
            doc = load_yaml_bounded(r.stdout.decode("utf-8", "replace"), "docker-compose config")
        except CheckError:
            return None
    out = {}
    for name, svc in ((doc or {}).get("services") or {}).items():
        env_ = (svc or {}).get("environment") or {}
        out[name] = {str(k): (None if v is None else str(v)) for k, v in env_.items()} if isinstance(env_, dict) else {}
    return out
