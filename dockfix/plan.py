"""Plans: the changes a fix wants to make, their preconditions, diffs and JSON form.

A fix builds a list of :class:`Change` objects and touches nothing. :func:`dockfix.workflow.plan_fixes`
binds each change to what the host looks like at plan time (its *precondition*: existed, sha256,
owner, mode) through a :class:`Staging` overlay, so that several fixes of the same file build on
each other and each shows its own small diff. Applying (see :mod:`dockfix.journal`) refuses when
the host no longer matches the preconditions: what was reviewed is what gets applied.

Every change names its *target* (``file:/etc/docker/daemon.json``, ``secret:db_password``,
``service:<id>``); the journal keeps a before-image per target and rollback puts it back through
the target kind's ``restore``.
"""

from __future__ import annotations

import base64
import difflib
import json
import os
import re
import stat as stat_mod
import time
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from dockfix.fsops import FileState, FsError, sha256, state_of
from dockfix.host import Host

SAFE, DISRUPTIVE, MANUAL = "safe", "disruptive", "manual"
SAFETIES = (SAFE, DISRUPTIVE, MANUAL)


class PlanError(Exception):
    """A plan cannot be built, loaded or applied. The message names the file or item."""


class PlanRefused(Exception):
    """Raised while binding a change that dockfix will not make; the item becomes `manual`."""


# ---------------------------------------------------------------------- rendering helpers
def owner_text(uid: int | None, gid: int | None) -> str:
    def name(n: int | None) -> str:
        return "?" if n is None else ("root" if n == 0 else str(n))

    return f"{name(uid)}:{name(gid)}"


def mode_text(mode: int | None) -> str:
    return "?" if mode is None else f"{mode:04o}"


_ASSIGN = re.compile(r"^(\s*[-+ ]?\s*(?:export\s+)?\"?)([A-Za-z_][A-Za-z0-9_.-]*)(\"?\s*[=:]\s*)(.+)$")
_URL_CRED = re.compile(r"://[^/\s:@]+:[^/\s@]+@")
_SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|(^|_)PWD$|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL|ACCESS_?KEY)", re.I)


def _is_secret_name(name: str) -> bool:
    try:
        from dockfix.sources.secrets import is_secret_name  # the scanner helper's word list, when present

        return bool(is_secret_name(name))
    except ImportError:
        return bool(_SECRET_NAME.search(name)) and not name.upper().endswith("_FILE")


def mask_line(line: str) -> str:
    """Hide a secret value in a ``NAME=value`` / ``"name": value`` line, keeping the name."""
    m = _ASSIGN.match(line)
    if m and (_is_secret_name(m.group(2)) or _URL_CRED.search(m.group(4))):
        return f"{m.group(1)}{m.group(2)}{m.group(3)}<secret, {len(m.group(4).encode())} bytes>"
    if _URL_CRED.search(line):
        return _URL_CRED.sub("://<secret>@", line)
    return line


#: Maskers for diffs of files that hold secrets among other settings (compose files, .env):
#: "module:function" taking (path, text) and returning the text with the values hidden, or None
#: when it does not handle that file. Loaded on first use (the plan core imports no fix module).
DIFF_MASKERS = ["dockfix.fixes.compose_secrets:diff_masker"]


def _load_ref(spec: str):
    import importlib

    mod, _, fn = spec.partition(":")
    return getattr(importlib.import_module(mod), fn)


def masked_text(path: str, text: str) -> str | None:
    """``text`` with secret values hidden by the masker for ``path``'s kind of file, or None."""
    for spec in DIFF_MASKERS:
        try:
            out = _load_ref(spec)(path, text)
        except ImportError:
            continue
        if out is not None:
            return out
    return None


def _masked_diff(path: str, before: bytes | None, after: bytes, existed: bool) -> str | None:
    try:
        a = (before or b"").decode("utf-8") if existed else ""
        b = after.decode("utf-8")
    except UnicodeDecodeError:
        return None
    ma, mb = (masked_text(path, a) if existed else ""), masked_text(path, b)
    if ma is None or mb is None:
        return None
    lines = list(difflib.unified_diff(ma.splitlines(keepends=True), mb.splitlines(keepends=True),
                                      "/dev/null" if not existed else path, path, n=3))
    return "".join(ln if ln.endswith("\n") else ln + "\n\\ No newline at end of file\n" for ln in lines)


def _has_secret_lines(data: bytes | None) -> bool:
    if not data:
        return False
    text = data.decode("utf-8", errors="replace")
    return any(mask_line(ln) != ln for ln in text.splitlines())


def content_diff(path: str, before: bytes | None, after: bytes, existed: bool, secret: bool, mask: bool) -> str:
    if mask and masked_text(path, "") is not None:  # a compose or .env file: show lines, hide values
        shown = _masked_diff(path, before, after, existed)
        if shown is not None:
            return "".join(ln + "\n" if ln.startswith(("---", "+++", "@@")) or "<secret, " in ln
                           else mask_line(ln) + "\n" for ln in shown.splitlines())
    if secret and mask:
        old = "did not exist" if not existed else f"<secret, {len(before or b'')} bytes>"
        return f"--- {path}\n+++ {path}\n  content  {old} -> <secret, {len(after)} bytes>\n"
    try:
        a = (before or b"").decode("utf-8").splitlines(keepends=True) if existed else []
        b = after.decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return f"--- {path}\n+++ {path}\n  content  {len(before or b'')} bytes -> {len(after)} bytes (binary)\n"
    lines = list(difflib.unified_diff(a, b, "/dev/null" if not existed else path, path, n=3))
    out = []
    for ln in lines:
        if not ln.endswith("\n"):
            ln += "\n\\ No newline at end of file\n"
        out.append(mask_line(ln.rstrip("\n")) + "\n" if mask and not ln.startswith(("---", "+++", "@@")) else ln)
    return "".join(out)


# ---------------------------------------------------------------------- staging (plan time)
class Staging:
    """What the host will look like after the changes planned so far (nothing is written)."""

    def __init__(self, host: Host):
        self.host = host
        self._states: dict[str, FileState] = {}
        self._content: dict[str, bytes | None] = {}

    def state(self, path: str) -> FileState:
        if path not in self._states:
            try:
                self._states[path] = state_of(self.host, path)
            except FsError as e:
                raise PlanRefused(str(e)) from None
        return self._states[path]

    def content(self, path: str) -> bytes | None:
        """Planned content of a regular file (None when absent or not a regular file)."""
        if path not in self._content:
            st = self.state(path)
            data = None
            if st.existed and st.kind == "file":
                from dockfix.fsops import read_file

                data = read_file(self.host, path)
            self._content[path] = data
        return self._content[path]

    def set(self, path: str, st: FileState, content: bytes | None = None) -> None:
        self._states[path] = st
        self._content[path] = content


def staging(ctx) -> Staging:
    """The staging overlay of a scan context (shared by every fix planned from it)."""
    return ctx.memo("dockfix.plan.staging", lambda: Staging(ctx.host))


def canonical(host: Host, path: str) -> str:
    """``path`` with links in its parent directories resolved inside the root; the last component
    is kept as it is (never followed)."""
    parent, name = os.path.split(os.path.normpath(path))
    return os.path.join(host.resolve(parent), name)


def staged_text(ctx, path: str) -> str | None:
    """Content a fix builder should edit: the file as earlier planned changes will leave it."""
    st = staging(ctx)
    p = canonical(ctx.host, path)
    state = st.state(p)
    if state.existed and state.kind == "link":
        raise PlanRefused(f"{path} is a symbolic link to {ctx.host.resolve(path)}; dockfix does not write through "
                          f"links: edit the target by hand or replace the link with a file")
    data = st.content(p)
    return None if data is None else data.decode("utf-8")


def staged_state(ctx, path: str) -> FileState:
    return staging(ctx).state(canonical(ctx.host, path))


# ---------------------------------------------------------------------- changes
CHANGE_KINDS: dict[str, type["Change"]] = {}


def change_kind(cls):
    CHANGE_KINDS[cls.kind] = cls
    return cls


@dataclass
class Change:
    """One change to one target. Subclasses define what it does and how it shows."""

    kind: ClassVar[str] = ""
    #: Target state this change was planned against (set by bind()).
    pre: dict | None = field(default=None, kw_only=True)

    # -- identity
    @property
    def target(self) -> str:
        raise NotImplementedError

    # -- plan time
    def bind(self, host: Host, stage: Staging) -> None:
        """Record the precondition (and update the staging overlay). May raise PlanRefused."""

    # -- apply time (see journal.py)
    def expected(self, before: dict | None = None) -> dict | None:
        """The target's state once this change is made on a target now in state ``before`` (for a
        crash between the change and its record)."""
        return None

    def perform(self, host: Host) -> None:
        raise NotImplementedError

    # -- showing
    def summary(self) -> str:
        raise NotImplementedError

    def diff(self, mask_secrets: bool = True) -> str:
        return self.summary() + "\n"

    # -- JSON
    def to_json(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_json(cls, d: dict) -> "Change":
        kind = d.get("kind")
        if kind not in CHANGE_KINDS:
            raise PlanError(f"unknown change kind {kind!r}")
        return CHANGE_KINDS[kind]._load(d)

    @classmethod
    def _load(cls, d: dict) -> "Change":
        raise NotImplementedError


def _file_pre(host: Host, stage: Staging, path: str, change: str) -> FileState:
    st = stage.state(path)
    if st.existed and st.kind == "link":
        raise PlanRefused(f"{path} is a symbolic link to {host.resolve(path)}; dockfix does not {change} through "
                          f"links (the link policy is in dockfix/fsops.py): fix the target by hand if it is meant")
    return st


@dataclass
class FileChange(Change):
    path: str = ""

    @property
    def target(self) -> str:
        return f"file:{self.path}"

    def _canon(self, host: Host) -> None:
        self.path = canonical(host, self.path)

    def pre_state(self) -> FileState:
        return FileState.from_json(self.pre) or FileState(False)


@change_kind
@dataclass
class WriteFile(FileChange):
    """Create or replace a regular file. mode/uid/gid None: keep the file's (root:root 0644 if new)."""

    kind: ClassVar[str] = "write"
    after: bytes | None = None
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    secret: bool = False
    after_sha256: str | None = None
    before: bytes | None = field(default=None, repr=False)  # for the diff only; never in a plan file
    #: Some lines look secret (a password variable, credentials in a URL): diffs mask those lines and
    #: the plan file leaves the content out (it is rebuilt on the host and checked against after_sha256).
    secret_lines: bool = False

    def bind(self, host: Host, stage: Staging) -> None:
        self._canon(host)
        pre = _file_pre(host, stage, self.path, "write")
        if pre.existed and pre.kind != "file":
            raise PlanRefused(f"{self.path} is a {pre.kind}, not a regular file; dockfix will not replace it")
        self.pre = pre.to_json()
        self.before = stage.content(self.path) if pre.existed else None
        if self.uid is None:
            self.uid = pre.uid if pre.existed else 0
        if self.gid is None:
            self.gid = pre.gid if pre.existed else 0
        if self.mode is None:
            self.mode = pre.mode if pre.existed else 0o644
        assert self.after is not None
        self.after_sha256 = sha256(self.after)
        if not self.secret:
            self.secret_lines = self.secret_lines or _has_secret_lines(self.after) or _has_secret_lines(self.before)
        stage.set(self.path, FileState(True, "file", self.uid, self.gid, self.mode, self.after_sha256, len(self.after)),
                  self.after)

    def expected(self, before: dict | None = None) -> dict:
        digest = sha256(self.after) if self.after is not None else self.after_sha256
        return FileState(True, "file", self.uid, self.gid, self.mode, digest).to_json()

    def perform(self, host: Host) -> None:
        from dockfix.fsops import write_file

        if self.after is None:
            raise PlanError(f"{self.path}: the new content is not available (secret content is never stored in a plan)")
        if sha256(self.after) != self.after_sha256:
            raise PlanError(f"{self.path}: the new content does not match the reviewed plan")
        write_file(host, self.path, self.after, self.uid, self.gid, self.mode)  # type: ignore[arg-type]

    def summary(self) -> str:
        pre = self.pre_state()
        size = len(self.after or b"") if self.after is not None else "?"
        if not pre.existed:
            return f"create {self.path} ({owner_text(self.uid, self.gid)} {mode_text(self.mode)}, {size} bytes)"
        return f"write {self.path} ({size} bytes)"

    def diff(self, mask_secrets: bool = True) -> str:
        pre = self.pre_state()
        if self.after is None:
            out = f"--- {self.path}\n+++ {self.path}\n  content  <secret: not kept in plan files; rebuilt on the host when applied>\n"
        else:
            out = content_diff(self.path, self.before, self.after, pre.existed, self.secret, mask_secrets)
            if not out:
                out = f"  {self.path}: content unchanged\n"
        if not pre.existed:
            out += f"  new file  owner {owner_text(self.uid, self.gid)}  mode {mode_text(self.mode)}\n"
        else:
            if (pre.uid, pre.gid) != (self.uid, self.gid):
                out += f"  owner  {owner_text(pre.uid, pre.gid)} -> {owner_text(self.uid, self.gid)}\n"
            if pre.mode != self.mode:
                out += f"  mode  {mode_text(pre.mode)} -> {mode_text(self.mode)}\n"
        return out

    def to_json(self) -> dict:
        d: dict[str, Any] = {"kind": self.kind, "path": self.path, "mode": self.mode, "uid": self.uid,
                             "gid": self.gid, "secret": self.secret, "after_sha256": self.after_sha256, "pre": self.pre}
        if self.secret_lines:
            d["secret_lines"] = True
        if not self.secret and not self.secret_lines and self.after is not None:
            try:
                d["after_text"] = self.after.decode("utf-8")
            except UnicodeDecodeError:
                d["after_b64"] = base64.b64encode(self.after).decode()
        return d

    @classmethod
    def _load(cls, d: dict) -> "WriteFile":
        after = None
        if "after_text" in d:
            after = d["after_text"].encode("utf-8")
        elif "after_b64" in d:
            after = base64.b64decode(d["after_b64"])
        if after is not None and not is_keyed(d.get("after_sha256")) and sha256(after) != d.get("after_sha256"):
            raise PlanError(f"{d.get('path')}: new content does not match its recorded sha256 (plan edited?)")
        return cls(path=d["path"], after=after, mode=d["mode"], uid=d["uid"], gid=d["gid"], secret=d.get("secret", False),
                   after_sha256=d.get("after_sha256"), pre=d.get("pre"), secret_lines=d.get("secret_lines", False))


@change_kind
@dataclass
class Chown(FileChange):
    kind: ClassVar[str] = "chown"
    uid: int = 0
    gid: int = 0

    def bind(self, host: Host, stage: Staging) -> None:
        self._canon(host)
        pre = _file_pre(host, stage, self.path, "change owners")
        if not pre.existed:
            raise PlanRefused(f"{self.path} does not exist")
        self.pre = pre.to_json()
        stage.set(self.path, replace(pre, uid=self.uid, gid=self.gid), stage.content(self.path))

    def expected(self, before: dict | None = None) -> dict:
        base = FileState.from_json(before) or self.pre_state()
        return replace(base, uid=self.uid, gid=self.gid).to_json()

    def perform(self, host: Host) -> None:
        from dockfix.fsops import chown

        chown(host, self.path, self.uid, self.gid)

    def summary(self) -> str:
        pre = self.pre_state()
        return f"owner of {self.path}  {owner_text(pre.uid, pre.gid)} -> {owner_text(self.uid, self.gid)}"

    def diff(self, mask_secrets: bool = True) -> str:
        pre = self.pre_state()
        return f"{self.path}\n  owner  {owner_text(pre.uid, pre.gid)} -> {owner_text(self.uid, self.gid)}\n"

    def to_json(self) -> dict:
        return {"kind": self.kind, "path": self.path, "uid": self.uid, "gid": self.gid, "pre": self.pre}

    @classmethod
    def _load(cls, d: dict) -> "Chown":
        return cls(path=d["path"], uid=int(d["uid"]), gid=int(d["gid"]), pre=d.get("pre"))


@change_kind
@dataclass
class Chmod(FileChange):
    kind: ClassVar[str] = "chmod"
    mode: int = 0o644

    def bind(self, host: Host, stage: Staging) -> None:
        self._canon(host)
        pre = _file_pre(host, stage, self.path, "change modes")
        if not pre.existed:
            raise PlanRefused(f"{self.path} does not exist")
        self.pre = pre.to_json()
        stage.set(self.path, replace(pre, mode=self.mode), stage.content(self.path))

    def expected(self, before: dict | None = None) -> dict:
        base = FileState.from_json(before) or self.pre_state()
        return replace(base, mode=self.mode).to_json()

    def perform(self, host: Host) -> None:
        from dockfix.fsops import chmod

        chmod(host, self.path, self.mode)

    def summary(self) -> str:
        return f"mode of {self.path}  {mode_text(self.pre_state().mode)} -> {mode_text(self.mode)}"

    def diff(self, mask_secrets: bool = True) -> str:
        return f"{self.path}\n  mode  {mode_text(self.pre_state().mode)} -> {mode_text(self.mode)}\n"

    def to_json(self) -> dict:
        return {"kind": self.kind, "path": self.path, "mode": self.mode, "pre": self.pre}

    @classmethod
    def _load(cls, d: dict) -> "Chmod":
        return cls(path=d["path"], mode=int(d["mode"]), pre=d.get("pre"))


@change_kind
@dataclass
class RemoveFile(FileChange):
    kind: ClassVar[str] = "remove"

    def bind(self, host: Host, stage: Staging) -> None:
        self._canon(host)
        pre = stage.state(self.path)
        if not pre.existed:
            raise PlanRefused(f"{self.path} does not exist")
        if pre.kind == "dir":
            raise PlanRefused(f"{self.path} is a directory; dockfix only removes files")
        self.pre = pre.to_json()
        stage.set(self.path, FileState(False), None)

    def expected(self, before: dict | None = None) -> dict:
        return FileState(False).to_json()

    def perform(self, host: Host) -> None:
        from dockfix.fsops import remove_file

        remove_file(host, self.path)

    def summary(self) -> str:
        pre = self.pre_state()
        return f"remove {self.path} ({pre.kind}, {pre.size if pre.size is not None else '?'} bytes)"

    def to_json(self) -> dict:
        return {"kind": self.kind, "path": self.path, "pre": self.pre}

    @classmethod
    def _load(cls, d: dict) -> "RemoveFile":
        return cls(path=d["path"], pre=d.get("pre"))


@change_kind
@dataclass
class MakeDir(FileChange):
    kind: ClassVar[str] = "mkdir"
    mode: int = 0o755
    uid: int = 0
    gid: int = 0

    def bind(self, host: Host, stage: Staging) -> None:
        self._canon(host)
        pre = stage.state(self.path)
        if pre.existed:
            raise PlanRefused(f"{self.path} already exists")
        self.pre = pre.to_json()
        stage.set(self.path, FileState(True, "dir", self.uid, self.gid, self.mode), None)

    def expected(self, before: dict | None = None) -> dict:
        return FileState(True, "dir", self.uid, self.gid, self.mode).to_json()

    def perform(self, host: Host) -> None:
        from dockfix.fsops import make_dir

        make_dir(host, self.path, self.uid, self.gid, self.mode)

    def summary(self) -> str:
        return f"create directory {self.path} ({owner_text(self.uid, self.gid)} {mode_text(self.mode)})"

    def to_json(self) -> dict:
        return {"kind": self.kind, "path": self.path, "mode": self.mode, "uid": self.uid, "gid": self.gid, "pre": self.pre}

    @classmethod
    def _load(cls, d: dict) -> "MakeDir":
        return cls(path=d["path"], mode=int(d["mode"]), uid=int(d["uid"]), gid=int(d["gid"]), pre=d.get("pre"))


def parents_to_make(ctx, path: str, mode: int = 0o755) -> list[MakeDir]:
    """MakeDir changes for the missing parent directories of ``path`` (outermost first)."""
    out: list[MakeDir] = []
    d = os.path.dirname(canonical(ctx.host, path))
    while d != "/" and not staged_state(ctx, d).existed:
        out.insert(0, MakeDir(path=d, mode=mode))
        d = os.path.dirname(d)
    return out


# ---------------------------------------------------------------------- engine changes
#: Where a CreateSecret's bytes come from at apply time, by data_ref kind ("module:function" taking
#: (host, data_ref) and returning the bytes; checked against the sha256 recorded at plan time).
CONTENT_SOURCES = {"service-env": "dockfix.fixes.secrets:derive_service_env"}

@change_kind
@dataclass
class CreateSecret(Change):
    """Create a swarm secret. ``data_ref`` says where its bytes come from at apply time (the plan
    never holds them): ``{"kind": "file", "path": host path, "sha256": ...}`` or
    ``{"kind": "inline"}`` with ``data`` set in memory only (never written to a plan file)."""

    kind: ClassVar[str] = "create-secret"
    name: str = ""
    data_ref: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)
    data: bytes | None = field(default=None, repr=False)
    #: The host's plan key when the plan came from a plan file (its hashes are keyed).
    key: bytes | None = field(default=None, repr=False)

    @property
    def target(self) -> str:
        return f"secret:{self.name}"

    def _matches(self, data: bytes) -> bool:
        want = self.data_ref.get("sha256")
        if is_keyed(want):
            return self.key is not None and keyed(self.key, sha256(data)) == want
        return sha256(data) == want

    def bind(self, host: Host, stage: Staging) -> None:
        self.pre = {"existed": False}
        if self.data is not None and "sha256" not in self.data_ref:
            self.data_ref = {**self.data_ref, "sha256": sha256(self.data)}

    def secret_bytes(self, host: Host) -> bytes:
        if self.data is not None:
            return self.data
        if self.data_ref.get("kind") == "file":
            from dockfix.fsops import read_file

            data = read_file(host, self.data_ref["path"])
            if data is None:
                raise PlanError(f"{self.data_ref['path']}: source of secret {self.name} is gone")
            if self.data_ref.get("sha256") and not self._matches(data):
                raise PlanError(f"{self.data_ref['path']}: changed since the plan was made (secret {self.name})")
            return data
        if self.data_ref.get("kind") in CONTENT_SOURCES:  # e.g. a variable of a service, read again now
            data = _load_ref(CONTENT_SOURCES[self.data_ref["kind"]])(host, self.data_ref)
            if not self._matches(data):
                raise PlanError(f"secret {self.name}: its source changed since the plan was made; plan again")
            return data
        raise PlanError(f"secret {self.name}: its value is not available here (it is never stored in a plan file)")

    def perform(self, host: Host) -> None:
        host.docker.secrets.create(name=self.name, data=self.secret_bytes(host), labels=self.labels or None)

    def summary(self) -> str:
        return f"create swarm secret {self.name} (<secret, value not shown>)"

    def to_json(self) -> dict:
        return {"kind": self.kind, "name": self.name, "data_ref": self.data_ref, "labels": self.labels, "pre": self.pre}

    @classmethod
    def _load(cls, d: dict) -> "CreateSecret":
        return cls(name=d["name"], data_ref=d.get("data_ref") or {}, labels=d.get("labels") or {}, pre=d.get("pre"))


@change_kind
@dataclass
class UpdateService(Change):
    """Update a swarm service to ``new_spec`` (a full ServiceSpec, as the API takes it)."""

    kind: ClassVar[str] = "update-service"
    service_id: str = ""
    new_spec: dict = field(default_factory=dict)
    #: The spec this change starts from (the live one, or an earlier change's), for the diff only;
    #: never in a plan file.
    before_spec: dict | None = field(default=None, repr=False)

    @property
    def target(self) -> str:
        return f"service:{self.service_id}"

    def bind(self, host: Host, stage: Staging) -> None:
        svc = host.docker.api.inspect_service(self.service_id)
        self.pre = {"existed": True, "version": svc["Version"]["Index"], "spec_sha256": _spec_hash(svc["Spec"])}
        if self.before_spec is None:
            self.before_spec = svc["Spec"]

    def perform(self, host: Host) -> None:
        svc = host.docker.api.inspect_service(self.service_id)
        spec = _unmask_env(self.new_spec, svc["Spec"], self.service_id)
        _resolve_secret_ids(host, spec)
        _update_service(host, self.service_id, svc["Version"]["Index"], spec)

    def summary(self) -> str:
        return f"update swarm service {self.new_spec.get('Name', self.service_id)}"

    def diff(self, mask_secrets: bool = True) -> str:
        after = _spec_outline(self.new_spec, mask_secrets)
        if self.before_spec is None:
            return self.summary() + "\n" + "".join(f"  {line}\n" for line in after)
        before = _spec_outline(self.before_spec, mask_secrets)
        shown = [ln for ln in difflib.unified_diff(before, after, "before", "after", n=2, lineterm="")
                 if not ln.startswith(("---", "+++"))]
        return self.summary() + "\n" + "".join(f"  {line}\n" for line in shown or ["(no change)"])

    def to_json(self) -> dict:
        return {"kind": self.kind, "service_id": self.service_id, "new_spec": _masked_spec(self.new_spec), "pre": self.pre}

    @classmethod
    def _load(cls, d: dict) -> "UpdateService":
        return cls(service_id=d["service_id"], new_spec=d.get("new_spec") or {}, pre=d.get("pre"))


_MASKED = re.compile(r"^<secret, (\d+) bytes>$")


def _unmask_env(new_spec: dict, live: dict, sid: str) -> dict:
    """A spec read from a plan file has its secret-looking values masked: take each back from the
    live spec (same variable, same length), or refuse."""
    spec = json.loads(json.dumps(new_spec))
    env = ((spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Env") or []
    live_env = dict(e.partition("=")[::2] for e in ((live.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Env") or [])
    for i, e in enumerate(env):
        name, _, value = e.partition("=")
        m = _MASKED.match(value)
        if m:
            old = live_env.get(name)
            if old is None or len(old.encode()) != int(m.group(1)):
                raise PlanError(f"service {sid}: {name} changed since the plan was made; plan again")
            env[i] = f"{name}={old}"
    return spec


def _resolve_secret_ids(host: Host, spec: dict) -> None:
    """Secret references planned by name (the secret is created by the same plan) get their ID."""
    refs = ((spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Secrets") or []
    for ref in refs:
        if not ref.get("SecretID"):
            found = [s for s in host.docker.secrets.list(filters={"name": ref.get("SecretName")})
                     if s.name == ref.get("SecretName")]
            if not found:
                raise PlanError(f"secret {ref.get('SecretName')} does not exist")
            ref["SecretID"] = found[0].id


def _spec_hash(spec: dict) -> str:
    return sha256(json.dumps(spec, sort_keys=True).encode())


def _masked_spec(spec: dict) -> dict:
    spec = json.loads(json.dumps(spec))
    env = (((spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Env")) or []
    for i, e in enumerate(env):
        name, _, value = e.partition("=")
        if _is_secret_name(name) or _URL_CRED.search(value):
            env[i] = f"{name}=<secret, {len(value.encode())} bytes>"
    return spec


def _spec_outline(spec: dict, mask: bool) -> list[str]:
    cs = ((spec.get("TaskTemplate") or {}).get("ContainerSpec") or {})
    out = [f"image {cs.get('Image', '?')}"]
    for e in ((_masked_spec(spec) if mask else spec).get("TaskTemplate") or {}).get("ContainerSpec", {}).get("Env") or []:
        out.append(f"env {e}")
    for s in cs.get("Secrets") or []:
        out.append(f"secret {s.get('SecretName')} -> {(s.get('File') or {}).get('Name')}")
    if cs.get("Args"):
        out.append("args " + " ".join(str(a) for a in cs["Args"]))
    return out


def _update_service(host: Host, service_id: str, version: int, spec: dict) -> None:
    api = host.docker.api
    url = api._url("/services/{0}/update", service_id)
    res = api._post_json(url, data=spec, params={"version": version})
    api._raise_for_status(res)


# ---------------------------------------------------------------------- plans
@dataclass
class PlanItem:
    check_id: str
    subject: str
    title: str
    safety: str
    impact: str
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: "reload" or "restart" when the Docker daemon must be told (done only with --restart-daemon).
    daemon_action: str | None = None
    #: Commands run after apply and after rollback, on a live host only (e.g. augenrules --load).
    post: list[list[str]] = field(default_factory=list)

    def diff(self, mask_secrets: bool = True) -> str:
        head = f"# [{self.safety}] {self.check_id}  {self.subject}\n#   {self.title}\n#   impact: {self.impact}\n"
        for n in self.notes:
            head += f"#   note: {n}\n"
        if self.daemon_action == "reload":
            head += ("#   dockerd picks this up on reload (SIGHUP, `systemctl reload docker`); dockfix reloads it only "
                     "with --restart-daemon\n")
        elif self.daemon_action:
            head += ("#   dockerd needs a restart to use this (`systemctl restart docker`: containers stop unless "
                     "live-restore is on); dockfix restarts it only with --restart-daemon\n")
        for cmd in self.post:
            head += f"#   then runs (on the live host, after apply and after rollback): {' '.join(cmd)}\n"
        return head + "".join(c.diff(mask_secrets) for c in self.changes)

    def to_json(self) -> dict:
        return {"check_id": self.check_id, "subject": self.subject, "title": self.title, "safety": self.safety,
                "impact": self.impact, "notes": self.notes, "daemon_action": self.daemon_action, "post": self.post,
                "changes": [c.to_json() for c in self.changes]}

    @classmethod
    def from_json(cls, d: dict) -> "PlanItem":
        if d.get("safety") not in SAFETIES:
            raise PlanError(f"item {d.get('check_id')}: unknown safety {d.get('safety')!r}")
        return cls(check_id=d["check_id"], subject=d["subject"], title=d.get("title", ""), safety=d["safety"],
                   impact=d.get("impact", ""), notes=list(d.get("notes") or []), daemon_action=d.get("daemon_action"),
                   post=[list(p) for p in d.get("post") or []],
                   changes=[Change.from_json(c) for c in d.get("changes") or []])


PLAN_FORMAT = "dockfix-plan"
PLAN_KEY = "/var/lib/dockfix/plan.key"


# ---------------------------------------------------------------------- keyed hashes in plan files
# A plain sha256 of a file whose other lines are known (a compose file with one password in it)
# lets anyone holding the plan file test guesses of the secret offline. Plan files therefore carry
# only HMACs of the hashes, keyed with a random key kept on the host (PLAN_KEY, 0600): the host
# that made the plan can check it; a reader of the plan file cannot test guesses.
def is_keyed(v: Any) -> bool:
    return isinstance(v, str) and v.startswith("hmac:")


def keyed(key: bytes, digest: str | None) -> str | None:
    import hmac

    if digest is None or is_keyed(digest):
        return digest
    return "hmac:" + hmac.new(key, digest.encode(), "sha256").hexdigest()


def key_hashes(obj: Any, key: bytes) -> Any:
    """A copy of ``obj`` with every ``*sha256`` value replaced by its keyed form."""
    if isinstance(obj, dict):
        return {k: (keyed(key, v) if k.endswith("sha256") and isinstance(v, str) else key_hashes(v, key))
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [key_hashes(v, key) for v in obj]
    return obj


def has_keyed(obj: Any) -> bool:
    if isinstance(obj, dict):
        return any(is_keyed(v) or has_keyed(v) for v in obj.values())
    if isinstance(obj, list):
        return any(has_keyed(v) for v in obj)
    return False


def host_key(host: Host, create: bool = False) -> bytes | None:
    """The host's plan key (created 0600 on first use when ``create``)."""
    path = host.real(PLAN_KEY)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            data = os.read(fd, 64)
        finally:
            os.close(fd)
        if len(data) == 32:
            return data
        raise PlanError(f"{PLAN_KEY}: not a dockfix plan key")
    except FileNotFoundError:
        if not create:
            return None
    except OSError as e:
        raise PlanError(f"{PLAN_KEY}: {e.strerror}") from None
    from dockfix.journal import Journal

    Journal(host).ensure()
    data = os.urandom(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return data


@dataclass
class Plan:
    items: list[PlanItem] = field(default_factory=list)
    root: str = "/"
    created: float = field(default_factory=time.time)
    #: Set when the plan came from a plan file with keyed hashes (see host_key).
    key: bytes | None = field(default=None, repr=False)

    @property
    def changes(self) -> list[Change]:
        return [c for it in self.applicable() for c in it.changes]

    def applicable(self) -> list[PlanItem]:
        """Items that would be applied (manual ones are only shown)."""
        return [it for it in self.items if it.safety != MANUAL and it.changes]

    def diff(self, mask_secrets: bool = True) -> str:
        return "\n".join(it.diff(mask_secrets) for it in self.items)

    def to_json(self, key: bytes | None = None) -> dict:
        """The plan as JSON. With ``key`` (for plan files) every content hash is keyed."""
        items = [it.to_json() for it in self.items]
        if key is not None:
            items = key_hashes(items, key)
        return {"format": PLAN_FORMAT, "version": 1, "root": self.root, "created": self.created,
                "keyed": key is not None, "items": items}

    @classmethod
    def from_json(cls, d: Any, source: str = "plan", host: Host | None = None) -> "Plan":
        if not isinstance(d, dict) or d.get("format") != PLAN_FORMAT:
            raise PlanError(f"{source}: not a dockfix plan file")
        if d.get("version") != 1:
            raise PlanError(f"{source}: plan format version {d.get('version')!r} is not supported")
        try:
            plan = cls(items=[PlanItem.from_json(i) for i in d.get("items") or []], root=d.get("root", "/"),
                       created=float(d.get("created", 0)))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise PlanError(f"{source}: malformed plan ({type(e).__name__}: {e})") from None
        except PlanError as e:
            raise PlanError(f"{source}: {e}") from None
        validate(plan, source)
        if d.get("keyed") or has_keyed(d.get("items")):
            if host is None:
                raise PlanError(f"{source}: a plan file is checked on the host that made it (give --root)")
            plan.key = host_key(host)
            if plan.key is None:
                raise PlanError(f"{source}: this host has no {PLAN_KEY}: the plan was made on another host (or the "
                                f"key was removed); make a new plan here")
            for c in plan.changes_all():
                if isinstance(c, CreateSecret):
                    c.key = plan.key
                if isinstance(c, WriteFile) and c.after is not None:
                    if keyed(plan.key, sha256(c.after)) != c.after_sha256:
                        raise PlanError(f"{source}: {c.path}: new content does not match its recorded hash (plan "
                                        f"edited, or made on another host)")
                    c.after_sha256 = sha256(c.after)
        if host is not None:
            plan.load_before(host)
        return plan

    def changes_all(self) -> list[Change]:
        return [c for it in self.items for c in it.changes]

    def same_pre(self, kind: Any, now: dict, pre: dict | None) -> bool:
        """``now`` (a live state) matches precondition ``pre`` (keyed when from a plan file)."""
        if pre is None:
            return False
        if self.key is not None and has_keyed(pre):
            now = key_hashes(now, self.key)
        return kind.same(now, pre)

    def content_matches(self, data: bytes, digest: str | None) -> bool:
        if is_keyed(digest) and self.key is not None:
            return keyed(self.key, sha256(data)) == digest
        return sha256(data) == digest

    def load_before(self, host: Host) -> None:
        """Fill the before-content of file writes from the host, for diffs (only if unchanged)."""
        from dockfix.fsops import read_file

        seen: set[str] = set()
        for c in self.changes:
            if isinstance(c, WriteFile) and c.path not in seen:
                seen.add(c.path)
                pre = c.pre_state()
                if pre.existed and pre.kind == "file":
                    try:
                        data = read_file(host, c.path)
                    except FsError:
                        data = None
                    if data is not None and self.content_matches(data, pre.sha256):
                        c.before = data
        # a later write of the same file starts from the earlier write's content
        last: dict[str, bytes | None] = {}
        for c in self.changes:
            if isinstance(c, WriteFile):
                if c.path in last:
                    c.before = last[c.path]
                last[c.path] = c.after

    def dumps(self, key: bytes | None = None) -> str:
        return json.dumps(self.to_json(key), indent=2) + "\n"


#: The only commands a plan may run after it is applied or rolled back (a plan file is input
#: to a root process: one edited to run something else is refused, not obeyed).
POST_COMMANDS = {("augenrules", "--load")}
MAX_PLAN_BYTES = 64 * 1024 * 1024


def validate(plan: "Plan", source: str) -> None:
    """Types and values a plan file must have before anything acts on it (a one-line PlanError)."""
    def bad(what: str) -> PlanError:
        return PlanError(f"{source}: {what} (plan file damaged or edited)")

    for it in plan.items:
        for name in ("check_id", "subject", "title", "impact"):
            if not isinstance(getattr(it, name), str):
                raise bad(f"item {it.check_id!r}: {name} is not text")
        if it.daemon_action not in (None, "reload", "restart"):
            raise bad(f"item {it.check_id}: unknown daemon action {it.daemon_action!r}")
        for cmd in it.post:
            if not all(isinstance(w, str) for w in cmd) or tuple(cmd) not in POST_COMMANDS:
                raise bad(f"item {it.check_id}: {' '.join(map(str, cmd))!r} is not a command dockfix runs")
        for c in it.changes:
            if isinstance(c, FileChange):
                if not isinstance(c.path, str) or not c.path.startswith("/") or "\0" in c.path:
                    raise bad(f"item {it.check_id}: {c.path!r} is not an absolute path")
                for attr, top in (("mode", 0o7777), ("uid", 2**32 - 2), ("gid", 2**32 - 2)):
                    v = getattr(c, attr, 0)
                    if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= top):
                        raise bad(f"{c.path}: {attr} {v!r} is out of range")
            if c.pre is not None and not isinstance(c.pre, dict):
                raise bad(f"item {it.check_id}: precondition is not an object")
            if isinstance(c, FileChange) and c.pre is not None and not _file_state_ok(c.pre):
                raise bad(f"{c.path}: precondition is not a file state")


def _file_state_ok(d: dict) -> bool:
    types = {"existed": (bool,), "kind": (str, type(None)), "uid": (int, type(None)), "gid": (int, type(None)),
             "mode": (int, type(None)), "sha256": (str, type(None)), "size": (int, type(None))}
    return ("existed" in d and set(d) <= set(types)
            and all(isinstance(v, types[k]) and not (isinstance(v, bool) and k != "existed") for k, v in d.items()))


def load_plan(path: str, host: Host | None = None) -> Plan:
    """Read a plan file. It must be a regular file (a FIFO would block), not writable by anyone
    but its owner (root applies it: anyone else who can write it could change it after review)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except FileNotFoundError:
        raise PlanError(f"{path}: plan file not found") from None
    except OSError as e:
        raise PlanError(f"{path}: cannot read the plan: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat_mod.S_ISREG(st.st_mode):
            from dockfix.host import kind_of

            raise PlanError(f"{path}: is a {kind_of(st.st_mode)}, not a plan file")
        if st.st_mode & 0o022:
            raise PlanError(f"{path}: is writable by other users (mode {stat_mod.S_IMODE(st.st_mode):04o}): anyone could "
                            f"have changed it after it was reviewed; chmod go-w it, or make a new plan")
        if st.st_size > MAX_PLAN_BYTES:
            raise PlanError(f"{path}: too large for a plan file ({st.st_size} bytes)")
        with os.fdopen(fd, "rb", closefd=False) as f:
            raw = f.read(MAX_PLAN_BYTES + 1)
        data = json.loads(raw.decode("utf-8"))
    except json.JSONDecodeError as e:
        raise PlanError(f"{path}: line {e.lineno}: not valid JSON ({e.msg})") from None
    except RecursionError:
        raise PlanError(f"{path}: nested too deeply to be a plan file") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise PlanError(f"{path}: cannot read the plan: {e}") from None
    finally:
        os.close(fd)
    return Plan.from_json(data, path, host)


def is_regular(st: os.stat_result | None) -> bool:
    return st is not None and stat_mod.S_ISREG(st.st_mode)
