"""Changes to files: write, change owner, change mode, make a directory; and the file target
the journal captures and restores (content byte for byte, owner, mode, "did not exist").

Every change acts through :mod:`dockfix.fsops`, which walks from the root with ``O_NOFOLLOW``: a
link is never followed, and a path that is itself a link makes the fix manual (see the link policy
in fsops).
"""

from __future__ import annotations

import base64
import difflib
import os
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from dockfix import fsops
from dockfix.changes.base import (
    Change,
    PlanError,
    PlanRefused,
    Target,
    TargetError,
    change_kind,
    is_keyed,
    mode_text,
    owner_text,
    target_kind_of,
)
from dockfix.changes.staging import Staging, canonical, staged_state
from dockfix.fsops import FileState, FsError, chmod, chown, make_dir, read_file, sha256, state_of, write_file
from dockfix.host import Host
from dockfix.sources.secrets import has_secret_lines, mask_file_text, mask_line


# ---------------------------------------------------------------------- diffs of file content
def _masked_diff(path: str, before: bytes | None, after: bytes, existed: bool) -> str | None:
    try:
        a = (before or b"").decode("utf-8") if existed else ""
        b = after.decode("utf-8")
    except UnicodeDecodeError:
        return None
    ma, mb = (mask_file_text(path, a) if existed else ""), mask_file_text(path, b)
    if ma is None or mb is None:
        return None
    lines = list(difflib.unified_diff(ma.splitlines(keepends=True), mb.splitlines(keepends=True),
                                      "/dev/null" if not existed else path, path, n=3))
    return "".join(ln if ln.endswith("\n") else ln + "\n\\ No newline at end of file\n" for ln in lines)


def content_diff(path: str, before: bytes | None, after: bytes, existed: bool, secret: bool, mask: bool) -> str:
    if mask and mask_file_text(path, "") is not None:  # a compose or .env file: show lines, hide values
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


#: The largest file dockfix rewrites or keeps a before-image of (configuration files are small;
#: a bigger one is refused before the first change, with a clear message).
MAX_CONTENT = 32 * 1024 * 1024


# ---------------------------------------------------------------------- the file target
def _fs(d: dict) -> FileState:
    """A FileState from a target state (journal states also carry ``mtime_ns``)."""
    return FileState(**{k: v for k, v in d.items() if k != "mtime_ns"})


@target_kind_of
class FileTarget(Target):
    prefix = "file"

    @classmethod
    def state(cls, host: Host, path: str) -> dict:
        return state_of(host, path).to_json()

    @classmethod
    def capture(cls, host: Host, path: str, content: bool = True) -> tuple[dict, bytes | None]:
        st = state_of(host, path)
        blob = read_file(host, path) if content and st.existed and st.kind == "file" else None
        if blob is not None and sha256(blob) != st.sha256:  # changed between stat and read
            st = FileState(True, "file", st.uid, st.gid, st.mode, sha256(blob), len(blob))
        out = st.to_json()
        if blob is not None:
            out["mtime_ns"] = fsops.mtime_ns(host, path)  # put back when the content is restored
        return out, blob

    @classmethod
    def preflight(cls, host: Host, path: str, changes: list[Change]) -> tuple[list[str], int]:
        try:
            st = state_of(host, path)
            at = path  # a path below folders the same transaction creates: look at the nearest one that exists
            while True:
                try:
                    ob = fsops.obstacles(host, at)
                    break
                except FsError as e:
                    if "does not exist" not in str(e) or os.path.dirname(at) == at:
                        raise
                    at = os.path.dirname(at)
        except FsError as e:
            return [str(e)], 0
        out: list[str] = []
        content = any(c.touches_content for c in changes)
        creates = not st.existed
        if ob.read_only:
            out.append(f"{path}: is on a read-only filesystem")
        if ob.immutable or ob.append_only:
            out.append(f"{path}: has the {'immutable' if ob.immutable else 'append-only'} attribute "
                       f"(chattr +{'i' if ob.immutable else 'a'}; see lsattr): dockfix cannot change it; "
                       f"remove the attribute first if the change is meant")
        if ob.parent_immutable and (content or creates or any(isinstance(c, MakeDir) for c in changes)):
            out.append(f"{os.path.dirname(path)}: has the immutable or append-only attribute (lsattr): dockfix "
                       f"cannot replace or create {path} in it")
        if st.existed and st.kind == "file" and ob.nlink > 1:
            names = fsops.other_names(host, path)
            out.append(f"{path}: has {ob.nlink} hard links ({', '.join(names) or 'other names outside the root'}): "
                       f"a change would change them all; fix it by hand")
        kept = 0
        if content:
            if st.existed and st.kind == "file":
                kept = st.size or 0
                if kept > MAX_CONTENT:
                    out.append(f"{path}: is {kept} bytes, more than dockfix rewrites ({MAX_CONTENT} bytes)")
            new = max((len(c.after) for c in changes if isinstance(c, WriteFile) and c.after is not None), default=0)
            if new > MAX_CONTENT:
                out.append(f"{path}: the new content is {new} bytes, more than dockfix writes ({MAX_CONTENT} bytes)")
            elif ob.free is not None and new + 65536 > ob.free:
                out.append(f"{path}: not enough free space on its filesystem for the new content "
                           f"({new} bytes, {ob.free} free)")
        return out, kept

    @staticmethod
    def same(a: dict | None, b: dict | None) -> bool:
        if a is None or b is None:
            return False
        return _fs(a).same_as(_fs(b))

    @staticmethod
    def describe(state: dict) -> str:
        return _fs(state).describe()

    @classmethod
    def changes(cls, old: dict, now: dict) -> str:
        return _fs(now).changes_from(_fs(old))

    @classmethod
    def restore(cls, host: Host, path: str, state: dict, blob: bytes | None) -> None:
        fsops.remove_stale_temporaries(host, path)  # an apply killed in the middle of writing this file
        want = _fs(state)
        mtime = state.get("mtime_ns")
        now = state_of(host, path)
        if not want.existed:
            if not now.existed:
                return
            if now.kind == "dir":
                fsops.remove_dir(host, path)
            else:
                fsops.remove_file(host, path)
            return
        if want.kind == "file":
            if now.existed and now.kind not in ("file",):
                raise TargetError(f"{path}: is now a {now.kind}; not replacing it with the old file")
            # no before-image: the transaction changed only owner or mode, so content is left alone
            if not now.existed or (now.sha256 != want.sha256 and blob is not None):
                if blob is None or sha256(blob) != want.sha256:
                    raise TargetError(f"{path}: the before-image in the journal is missing or damaged")
                fsops.write_file(host, path, blob, want.uid, want.gid, want.mode)  # type: ignore[arg-type]
                if isinstance(mtime, int):
                    fsops.set_mtime(host, path, mtime)
                return
        elif want.kind == "dir":
            if not now.existed:
                fsops.make_dir(host, path, want.uid, want.gid, want.mode)  # type: ignore[arg-type]
                return
        elif not now.existed:
            raise TargetError(f"{path}: was a {want.kind} and is gone; dockfix cannot recreate it")
        # only what the transaction changed is touched: an untouched attribute is never re-applied
        # (an immutable file the apply could not change stays as it is, and so does the rollback)
        chowned = (now.uid, now.gid) != (want.uid, want.gid)
        if chowned:
            fsops.chown(host, path, want.uid, want.gid)  # type: ignore[arg-type]
        if chowned or now.mode != want.mode:
            fsops.chmod(host, path, want.mode)  # type: ignore[arg-type]  (also puts back set-id bits chown cleared)

# ---------------------------------------------------------------------- file changes
def keep_line_endings(before: bytes | None, after: bytes) -> bytes:
    """A file whose every line ended in CRLF keeps CRLF in the lines an edit adds (an editor that
    writes LF would otherwise leave it with mixed line endings)."""
    if not before or b"\r\n" not in before or before.count(b"\n") != before.count(b"\r\n"):
        return after
    return after.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _file_pre(host: Host, stage: Staging, path: str, change: str) -> FileState:
    st = stage.state(path)
    if st.existed and st.kind == "link":
        raise PlanRefused(f"{path} is a symbolic link to {host.resolve(path)}; dockfix does not {change} through "
                          f"links (the link policy is in dockfix/fsops.py): fix the target by hand if it is meant")
    if st.existed and st.kind == "file":
        try:
            nlink = os.lstat(host.real(path)).st_nlink
        except OSError:
            nlink = 1
        if nlink > 1:
            # owner, mode and content belong to the inode: a change would reach every other name too
            # (perhaps outside the root), and a rollback could not give the names back their inode
            names = fsops.other_names(host, path)
            where = ", ".join(names) if names else "no other name under the root: the others are outside it"
            raise PlanRefused(f"{path} has {nlink} hard links ({where}); dockfix does not {change} a file with "
                              f"several names: fix it by hand, or replace the extra links")
    return st


@dataclass
class FileChange(Change):
    path: str = ""

    target_type: ClassVar[type[Target]] = FileTarget

    @property
    def target(self) -> str:
        return f"file:{self.path}"

    def _canon(self, host: Host) -> None:
        self.path = canonical(host, self.path)

    def pre_state(self) -> FileState:
        return FileState.from_json(self.pre) or FileState(False)

    def validate(self, bad) -> None:
        if not isinstance(self.path, str) or not self.path.startswith("/") or "\0" in self.path:
            raise bad(f"{self.path!r} is not an absolute path")
        for attr, top in (("mode", 0o7777), ("uid", 2**32 - 2), ("gid", 2**32 - 2)):
            v = getattr(self, attr, 0)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= top):
                raise bad(f"{self.path}: {attr} {v!r} is out of range")
        if self.pre is not None and not _file_state_ok(self.pre):
            raise bad(f"{self.path}: precondition is not a file state")


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
        self.after = keep_line_endings(self.before, self.after)
        self.after_sha256 = sha256(self.after)
        if not self.secret:
            self.secret_lines = self.secret_lines or has_secret_lines(self.after) or has_secret_lines(self.before)
        stage.set(self.path, FileState(True, "file", self.uid, self.gid, self.mode, self.after_sha256, len(self.after)),
                  self.after)

    def expected(self, before: dict | None = None) -> dict:
        digest = sha256(self.after) if self.after is not None else self.after_sha256
        return FileState(True, "file", self.uid, self.gid, self.mode, digest).to_json()

    def perform(self, host: Host) -> None:
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
    touches_content: ClassVar[bool] = False
    kind: ClassVar[str] = "chown"
    uid: int = 0
    gid: int = 0

    def bind(self, host: Host, stage: Staging) -> None:
        self._canon(host)
        pre = _file_pre(host, stage, self.path, "change owners")
        if not pre.existed:
            raise PlanRefused(f"{self.path} does not exist")
        self.pre = pre.to_json()
        stage.set_meta(self.path, replace(pre, uid=self.uid, gid=self.gid))

    def expected(self, before: dict | None = None) -> dict:
        base = FileState.from_json(before) or self.pre_state()
        return replace(base, uid=self.uid, gid=self.gid).to_json()

    def perform(self, host: Host) -> None:
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
    touches_content: ClassVar[bool] = False
    kind: ClassVar[str] = "chmod"
    mode: int = 0o644

    def bind(self, host: Host, stage: Staging) -> None:
        self._canon(host)
        pre = _file_pre(host, stage, self.path, "change modes")
        if not pre.existed:
            raise PlanRefused(f"{self.path} does not exist")
        self.pre = pre.to_json()
        stage.set_meta(self.path, replace(pre, mode=self.mode))

    def expected(self, before: dict | None = None) -> dict:
        base = FileState.from_json(before) or self.pre_state()
        return replace(base, mode=self.mode).to_json()

    def perform(self, host: Host) -> None:
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
class MakeDir(FileChange):
    touches_content: ClassVar[bool] = False
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


def _file_state_ok(d: dict) -> bool:
    types = {"existed": (bool,), "kind": (str, type(None)), "uid": (int, type(None)), "gid": (int, type(None)),
             "mode": (int, type(None)), "sha256": (str, type(None)), "size": (int, type(None))}
    return ("existed" in d and set(d) <= set(types)
            and all(isinstance(v, types[k]) and not (isinstance(v, bool) and k != "existed") for k, v in d.items()))
