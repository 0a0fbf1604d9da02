"""Plans: the items a fix wants applied, and plan files.

A fix builds a list of changes (:mod:`dockfix.changes`) and touches nothing.
:func:`dockfix.workflow.FixSession` binds each change to what the host looks like at plan time (its
*precondition*: existed, sha256, owner, mode), so that applying (:mod:`dockfix.journal`) can refuse
when the host no longer matches: what was reviewed is what gets applied. A :class:`PlanItem` is
what one fix wants for one finding; a :class:`Plan` is the list of them, with its JSON form (plan
files, whose hashes are keyed with a per-host key and which never hold secret content).
"""

from __future__ import annotations

import hmac
import json
import os
import stat as stat_mod
import time
from dataclasses import dataclass, field
from typing import Any

from dockfix.changes import Change, CreateSecret, PlanError, WriteFile
from dockfix.changes.base import is_keyed, keyed
from dockfix.fsops import FsError, read_file, sha256
from dockfix.host import Host, kind_of
from dockfix.journal import Journal
from dockfix.model import Safety


# ---------------------------------------------------------------------- plans
@dataclass
class PlanItem:
    check_id: str
    subject: str
    title: str
    safety: Safety
    impact: str
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: "reload" or "restart" when the Docker daemon must be told (done only with --restart-daemon).
    daemon_action: str | None = None
    #: Commands run after apply and after rollback, on a live host only (e.g. augenrules --load).
    post: list[list[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.safety = Safety(self.safety)  # "safe" and Safety.SAFE alike; anything else is refused

    def diff(self, mask_secrets: bool = True) -> str:
        head = f"# [{self.safety.value}] {self.check_id}  {self.subject}\n#   {self.title}\n#   impact: {self.impact}\n"
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
        return {"check_id": self.check_id, "subject": self.subject, "title": self.title, "safety": self.safety.value,
                "impact": self.impact, "notes": self.notes, "daemon_action": self.daemon_action, "post": self.post,
                "changes": [c.to_json() for c in self.changes]}

    @classmethod
    def from_json(cls, d: dict) -> "PlanItem":
        try:
            safety = Safety(d.get("safety"))
        except ValueError:
            raise PlanError(f"item {d.get('check_id')}: unknown safety {d.get('safety')!r}") from None
        return cls(check_id=d["check_id"], subject=d["subject"], title=d.get("title", ""), safety=safety,
                   impact=d.get("impact", ""), notes=list(d.get("notes") or []), daemon_action=d.get("daemon_action"),
                   post=[list(p) for p in d.get("post") or []],
                   changes=[Change.from_json(c) for c in d.get("changes") or []])


PLAN_FORMAT = "dockfix-plan"
PLAN_KEY = "/var/lib/dockfix/plan.key"


class PlanStale(PlanError):
    """A reviewed plan no longer describes what dockfix would do on this host (the host changed,
    or the plan names another engine): refused, nothing is changed (exit 3)."""


# ---------------------------------------------------------------------- the whole plan, authenticated
# A plan file is a review record: every field of it (not only content hashes) is covered by an
# HMAC with the host's key over its canonical JSON, so an added chmod, an edited owner or a
# removed key field is refused before anything looks at the plan's changes.
def canonical_json(doc: dict) -> bytes:
    return json.dumps({k: v for k, v in doc.items() if k != "hmac"}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True, allow_nan=False).encode()


def sign(doc: dict, key: bytes) -> str:
    return "hmac-sha256:" + hmac.new(key, canonical_json(doc), "sha256").hexdigest()


def authenticate(doc: Any, source: str, host: Host) -> bytes:
    """The host key, once the plan document ``doc`` is shown to be signed with it (else PlanError)."""
    if not isinstance(doc, dict) or doc.get("format") != PLAN_FORMAT:
        raise PlanError(f"{source}: not a dockfix plan file")
    mac = doc.get("hmac")
    key = host_key(host)
    if key is None:
        raise PlanError(f"{source}: this host has no {PLAN_KEY}: the plan was made on another host (or the key was "
                        f"removed); make a new plan here")
    if not isinstance(mac, str):
        raise PlanError(f"{source}: the plan is not signed with this host's key (edited, or made by an older "
                        f"dockfix); make a new plan and review it")
    try:
        good = hmac.compare_digest(mac.encode("ascii", "replace"), sign(doc, key).encode())
    except (TypeError, ValueError, RecursionError):
        good = False
    if not good:
        raise PlanError(f"{source}: the plan's signature does not match this host's key: the plan was edited after "
                        f"it was made (or made on another host); nothing was applied")
    return key


# ---------------------------------------------------------------------- keyed hashes in plan files
# A plain sha256 of a file whose other lines are known (a compose file with one password in it)
# lets anyone holding the plan file test guesses of the secret offline. Plan files therefore carry
# only HMACs of the hashes, keyed with a random key kept on the host (PLAN_KEY, 0600): the host
# that made the plan can check it; a reader of the plan file cannot test guesses.
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
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            # whoever can write the key (or read it) can sign any plan: such a key is not the host's
            st = os.fstat(fd)
            if not stat_mod.S_ISREG(st.st_mode):
                raise PlanError(f"{PLAN_KEY}: is a {kind_of(st.st_mode)}, not a dockfix plan key")
            if st.st_uid not in (0, os.geteuid()):
                raise PlanError(f"{PLAN_KEY}: is owned by uid {st.st_uid}, not root: not trusted to sign or check "
                                f"plans; remove it and make a new plan")
            if st.st_mode & 0o077:
                raise PlanError(f"{PLAN_KEY}: is readable or writable by others (mode "
                                f"{stat_mod.S_IMODE(st.st_mode):04o}): not trusted to sign or check plans; remove it "
                                f"and make a new plan")
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
    #: What was asked for (--only, --skip, --include-disruptive, --path, --compose): a reviewed
    #: plan is planned again with it at apply time and applied only if nothing differs.
    selection: dict = field(default_factory=dict)
    #: The engine whose objects the plan's engine changes target (None: no engine).
    engine: str | None = None
    #: Fixes left out because a waiver covers their finding: check_id, subject, reason, expires, where.
    waived: list[dict] = field(default_factory=list)
    #: The document a plan file was read from (compared with a fresh plan at apply time).
    doc: dict | None = field(default=None, repr=False, compare=False)

    @property
    def changes(self) -> list[Change]:
        return [c for it in self.applicable() for c in it.changes]

    def applicable(self) -> list[PlanItem]:
        """Items that would be applied (manual ones are only shown)."""
        return [it for it in self.items if it.safety != Safety.MANUAL and it.changes]

    def diff(self, mask_secrets: bool = True) -> str:
        return "\n".join(it.diff(mask_secrets) for it in self.items)

    def to_json(self, key: bytes | None = None) -> dict:
        """The plan as JSON. With ``key`` (for plan files) every content hash is keyed."""
        items = [it.to_json() for it in self.items]
        if key is not None:
            items = key_hashes(items, key)
        return {"format": PLAN_FORMAT, "version": 1, "root": self.root, "created": self.created,
                "keyed": key is not None, "selection": self.selection, "engine": self.engine, "items": items,
                "waived": self.waived}

    @classmethod
    def from_json(cls, d: Any, source: str = "plan", host: Host | None = None) -> "Plan":
        if not isinstance(d, dict) or d.get("format") != PLAN_FORMAT:
            raise PlanError(f"{source}: not a dockfix plan file")
        if d.get("version") != 1:
            raise PlanError(f"{source}: plan format version {d.get('version')!r} is not supported")
        try:
            plan = cls(items=[PlanItem.from_json(i) for i in d.get("items") or []], root=d.get("root", "/"),
                       created=float(d.get("created", 0)), selection=d.get("selection") or {},
                       engine=d.get("engine"), waived=d.get("waived") or [])
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
        """The plan file: with ``key``, content hashes keyed and the whole document signed."""
        doc = self.to_json(key)
        if key is not None:
            doc["hmac"] = sign(doc, key)
        return json.dumps(doc, indent=2) + "\n"


#: The only commands a plan may run after it is applied or rolled back (a plan file is input
#: to a root process: one edited to run something else is refused, not obeyed).
POST_COMMANDS = {("augenrules", "--load")}
MAX_PLAN_BYTES = 64 * 1024 * 1024


def validate(plan: "Plan", source: str) -> None:
    """Types and values a plan file must have before anything acts on it (a one-line PlanError).
    Each change kind checks its own fields (a kind cannot be registered without that check)."""
    def bad(what: str) -> PlanError:
        return PlanError(f"{source}: {what} (plan file damaged or edited)")

    sel = plan.selection
    if not isinstance(sel, dict) or not set(sel) <= {"only", "skip", "include_disruptive", "paths", "compose",
                                                     "benchmark", "offline", "waivers", "declined"}:
        raise bad("the selection is not an object of known options")
    if not isinstance(sel.get("waivers"), (str, type(None))):
        raise bad("selection waivers is not a path")
    declined = sel.get("declined", [])
    if not isinstance(declined, list) or not all(
            isinstance(k, list) and len(k) == 2 and all(isinstance(v, str) for v in k) for k in declined):
        raise bad("selection declined is not a list of [check, subject]")
    if not isinstance(plan.waived, list) or not all(
            isinstance(w, dict) and all(isinstance(v, (str, type(None))) for v in w.values()) for w in plan.waived):
        raise bad("waived is not a list of waived fixes")
    if not isinstance(sel.get("benchmark", ""), str) or not isinstance(sel.get("offline", False), bool):
        raise bad("selection benchmark or offline has the wrong type")
    for name in ("only", "skip", "paths", "compose"):
        if not isinstance(sel.get(name, []), list) or not all(isinstance(v, str) for v in sel.get(name, [])):
            raise bad(f"selection {name} is not a list of text")
    if not isinstance(sel.get("include_disruptive", False), bool):
        raise bad("selection include_disruptive is not true or false")
    if plan.engine is not None and not isinstance(plan.engine, str):
        raise bad("engine is not text")
    if not isinstance(plan.root, str) or not plan.root.startswith("/"):
        raise bad("root is not an absolute path")
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
            if c.pre is not None and not isinstance(c.pre, dict):
                raise bad(f"item {it.check_id}: precondition is not an object")
            c.validate(bad)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    """A JSON object, refusing a key given twice: the parser keeps the last, so the text of the first
    would be covered by no signature while a reader of the file (or another parser) may take it."""
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"the key {k!r} is given more than once in an object")
        out[k] = v
    return out


def _check_folders(path: str) -> None:
    """Every folder on the way to the plan file (and to the link naming it) must be writable only by
    root or the user applying it: whoever else can write one can swap the reviewed plan for another
    plan signed on this host (one the reviewer turned down), owner and mode intact."""
    here = os.path.dirname(os.path.abspath(path))
    for start in {os.path.realpath(here), os.path.dirname(os.path.realpath(path))}:
        d = start
        while True:
            try:
                st = os.stat(d)
            except OSError as e:
                raise PlanError(f"{path}: cannot look at its folder {d}: {e.strerror}") from None
            sticky = bool(st.st_mode & stat_mod.S_ISVTX)
            if st.st_uid not in (0, os.geteuid()):
                raise PlanError(f"{path}: its folder {d} is owned by uid {st.st_uid}, who could swap the plan after it "
                                f"was reviewed; keep plans in a folder of root's")
            if not sticky and (st.st_mode & 0o002 or (st.st_mode & 0o020 and st.st_gid != 0)):
                raise PlanError(f"{path}: its folder {d} is writable by other users (mode "
                                f"{stat_mod.S_IMODE(st.st_mode):04o}), who could swap the plan after it was reviewed; "
                                f"keep plans in a folder of root's")
            if d == "/":
                break
            d = os.path.dirname(d)


def load_plan(path: str, host: Host | None = None) -> Plan:
    """Read a plan file. It must be a regular file (a FIFO would block), owned by root or the user
    applying it and writable by no one else (root applies it: anyone else who can write it could
    change it after review), in folders no one else can write, and signed with this host's key
    (every field, see :func:`sign`)."""
    if os.path.lexists(path):
        _check_folders(path)
        lst = os.lstat(path)
        if stat_mod.S_ISLNK(lst.st_mode) and lst.st_uid not in (0, os.geteuid()):
            raise PlanError(f"{path}: is a link owned by uid {lst.st_uid}, who could point it at another plan; "
                            f"give the plan file itself")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except FileNotFoundError:
        raise PlanError(f"{path}: plan file not found") from None
    except OSError as e:
        raise PlanError(f"{path}: cannot read the plan: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat_mod.S_ISREG(st.st_mode):
            raise PlanError(f"{path}: is a {kind_of(st.st_mode)}, not a plan file")
        if st.st_uid not in (0, os.geteuid()):
            raise PlanError(f"{path}: is owned by uid {st.st_uid}, not by root or the user applying it: its owner could "
                            f"have changed it after it was reviewed; make a new plan")
        if st.st_mode & 0o022:
            raise PlanError(f"{path}: is writable by other users (mode {stat_mod.S_IMODE(st.st_mode):04o}): anyone could "
                            f"have changed it after it was reviewed; chmod go-w it, or make a new plan")
        if st.st_size > MAX_PLAN_BYTES:
            raise PlanError(f"{path}: too large for a plan file ({st.st_size} bytes)")
        with os.fdopen(fd, "rb", closefd=False) as f:
            raw = f.read(MAX_PLAN_BYTES + 1)
        data = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as e:
        raise PlanError(f"{path}: line {e.lineno}: not valid JSON ({e.msg})") from None
    except RecursionError:
        raise PlanError(f"{path}: nested too deeply to be a plan file") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise PlanError(f"{path}: cannot read the plan: {e}") from None
    finally:
        os.close(fd)
    if host is None:
        raise PlanError(f"{path}: a plan file is checked on the host that made it (give --root)")
    authenticate(data, path, host)
    plan = Plan.from_json(data, path, host)
    plan.doc = data
    return plan



# ---------------------------------------------------------------------- reviewed plan vs fresh plan
def _change_label(c: Any) -> str:
    if not isinstance(c, dict):
        return repr(c)[:60]
    what = c.get("path") or c.get("name") or c.get("service_id") or "?"
    return f"{c.get('kind')} {what}"


def _field_diff(a: Any, b: Any, where: str = "") -> str | None:
    """The first field (dotted) where two JSON values differ, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return f"{where}{k}"
            d = _field_diff(a[k], b[k], f"{where}{k}.")
            if d is not None:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{where.rstrip('.')} (length)" if where else "(length)"
        for i, (x, y) in enumerate(zip(a, b)):
            d = _field_diff(x, y, f"{where}{i}.")
            if d is not None:
                return d
        return None
    return None if a == b and type(a) is type(b) else (where.rstrip(".") or "(value)")


def plan_differences(reviewed: list, fresh: list) -> list[str]:
    """What differs, change for change, between the items of a reviewed plan file and those of a
    plan made again now (both in plan-file form, hashes keyed): item added or missing, and per
    change the kind, path, owner, mode, content hash, precondition, engine objects or commands."""
    out: list[str] = []

    def key(it: Any) -> tuple:
        return (it.get("check_id"), it.get("subject")) if isinstance(it, dict) else ("?", "?")

    rv = {key(it): it for it in reviewed}
    fr = {key(it): it for it in fresh}
    seen: set[tuple] = set()
    for it in reviewed:  # a fix listed twice is not what dockfix would do (the dicts keep one)
        if key(it) in seen:
            out.append(f"{key(it)[0]} ({key(it)[1]}) is in the plan more than once")
        seen.add(key(it))
    for k in rv:
        if k not in fr:
            out.append(f"{k[0]} ({k[1]}) is in the plan but dockfix would not do it now")
    for k in fr:
        if k not in rv:
            out.append(f"{k[0]} ({k[1]}) would be done now but is not in the plan")
    if [k for k in rv if k in fr] != [k for k in fr if k in rv]:
        out.append("the fixes are in another order")
    for k, a in rv.items():
        b = fr.get(k)
        if b is None:
            continue
        ca, cb = a.get("changes") or [], b.get("changes") or []
        for i in range(max(len(ca), len(cb))):
            if i >= len(ca):
                out.append(f"{k[0]}: change {i + 1} ({_change_label(cb[i])}) is not in the plan")
            elif i >= len(cb):
                out.append(f"{k[0]}: change {i + 1} ({_change_label(ca[i])}) would not be made now")
            else:
                d = _field_diff(ca[i], cb[i])
                if d is not None:
                    out.append(f"{k[0]}: change {i + 1} ({_change_label(ca[i])}): {d} differs")
        rest = {f: a.get(f) for f in a if f != "changes"}
        d = _field_diff(rest, {f: b.get(f) for f in b if f != "changes"})
        if d is not None:
            out.append(f"{k[0]}: {d} differs")
    return out
