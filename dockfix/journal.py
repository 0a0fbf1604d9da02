"""The write-ahead rollback journal: apply a plan as one transaction, roll it back later.

Layout under ``<root>/var/lib/dockfix/journal/`` (directories 0700, files 0600, whatever the umask):

* ``lock`` — an flock held for the whole of an apply or a rollback: a second one is refused.
* ``<txid>/tx.json`` — id, time, user, root and the plan (as in a plan file: no secret content).
* ``<txid>/log`` — one record per line: ``<sha256 of the JSON> <JSON>``. A line whose checksum does
  not match (a journal cut short mid-write) ends the trusted part of the log; it is reported,
  never trusted.
* ``<txid>/blob-<n>`` — before-images (file content, a service spec), checked against the sha256
  recorded with them.

Order of an apply, per step: the before-image blob is written and fsynced, then the ``before``
record (with the state the step is expected to leave) is appended and fsynced — only then is the
change made, and an ``after`` record (the state actually left) appended. A crash anywhere leaves
enough on disk for :func:`rollback` to put every target back: a step with a ``before`` record
and no ``after`` record may or may not have happened, and both states are accepted.

Rollback restores each target touched by the transaction to its first before-image: content byte
for byte, owner, mode; files and directories the transaction created are removed. It is idempotent
(a crashed rollback is simply run again) and refuses, naming the paths, when a target has changed
since the transaction (unless forced).

Engine targets (swarm secrets and services) are read before anything is restored: a rollback that
cannot reach their engine restores nothing (EngineUnreachable). The automatic rollback of a failed
apply restores every file and stops short only of the engine's objects, naming them; the
transaction stays open until `dockfix rollback` finishes it.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import pwd
import signal
import stat as stat_mod
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol

from dockfix.changes import Change, PlanError, TargetError, target_label
from dockfix.changes.base import target_kind
from dockfix.fsops import FsError, sha256, write_all
from dockfix.host import Host


class Plan(Protocol):
    """What the journal needs of a plan (dockfix.plan.Plan): its changes in order, how to compare a
    target's state with a change's precondition, and its JSON form (kept in the transaction). A
    plan's ``engine`` (when it has one) names the engine its engine changes were planned on."""

    @property
    def changes(self) -> list[Change]: ...

    def same_pre(self, kind: Any, now: dict, pre: dict | None) -> bool: ...

    def to_json(self) -> dict: ...

JOURNAL_DIR = "/var/lib/dockfix/journal"


class JournalError(Exception):
    """The journal cannot be used (busy, damaged, unknown transaction). Names the file."""


class JournalBusy(JournalError):
    pass


class JournalWriteError(JournalError):
    """The journal could not be written (no space, read-only, not permitted) before the first
    change: nothing was applied. Names the journal folder and the reason, in one line."""


class EngineUnreachable(JournalError):
    """A rollback needs the engine (the transaction changed swarm secrets or services) and cannot
    reach it, or the engine refused to be read. One line naming the engine and what is left on it."""


class Interrupted(Exception):
    pass


# ---------------------------------------------------------------------- fault injection (tests)
def _fault(phase: str, step: int) -> None:
    """Fault injection, for tests of crash recovery only.

    DOCKFIX_FAULT_KILL_AFTER=apply:3 kills the process with SIGKILL right after step 3 of an apply
    is done and recorded; apply-inflight:3 after the change is made but before it is recorded;
    rollback:2 after the second target is restored. DOCKFIX_FAULT_FAIL_AT=apply:3 makes step 3 of
    an apply fail (as a failed write would) after its before-image is recorded; apply:3:ENOSPC
    fails it with that errno (ENOSPC, EROFS, EPERM, ...); rollback:2:EIO fails the restore of the
    second target of a rollback."""
    slow = os.environ.get("DOCKFIX_FAULT_SLOW")
    if slow and phase in ("apply", "rollback"):
        # DOCKFIX_FAULT_SLOW=0.5 waits that many seconds after each step, so that a test can send
        # SIGINT/SIGTERM while an apply is half-way.
        time.sleep(float(slow))
    var = "DOCKFIX_FAULT_FAIL_AT" if phase.endswith("-fail") else "DOCKFIX_FAULT_KILL_AFTER"
    for part in (os.environ.get(var) or "").split(","):
        name, _, n = part.partition(":")
        n, _, err = n.partition(":")  # apply:3:ENOSPC fails step 3 with that errno
        if name == phase.removesuffix("-fail") and n.isdigit() and int(n) == step:
            if var == "DOCKFIX_FAULT_KILL_AFTER":
                os.kill(os.getpid(), signal.SIGKILL)
            if err:
                code = getattr(errno, err)
                raise OSError(code, os.strerror(code))
            raise FsError(f"step {step}: injected failure ({var})")


def _kind(target: str):
    try:
        return target_kind(target)
    except TargetError as e:
        raise JournalError(str(e)) from None


# ---------------------------------------------------------------------- the journal on disk
def _user() -> str:
    try:
        name = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        name = str(os.geteuid())
    sudo = os.environ.get("SUDO_USER")
    return f"{name} (sudo by {sudo})" if sudo and sudo != name else name


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_private(path: str, data: bytes) -> None:
    """Write a 0600 file atomically and durably."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)  # ENOSPC half-way: no stray temporary file is left behind
        except OSError:
            pass
        raise
    _fsync_dir(os.path.dirname(path))


def _record_line(rec: dict) -> bytes:
    body = json.dumps(rec, sort_keys=True, separators=(",", ":"))
    return f"{sha256(body.encode())} {body}\n".encode()


@dataclass
class Log:
    """The trusted records of a transaction log, and what (if anything) could not be trusted."""

    records: list[dict]
    damaged: str | None = None


def read_log(path: str) -> Log:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return Log([], None)
    records: list[dict] = []
    lines = raw.split(b"\n")
    tail = lines.pop()  # text after the last newline: a record cut short
    for n, line in enumerate(lines, 1):
        digest, _, body = line.partition(b" ")
        try:
            ok = sha256(body) == digest.decode("ascii")
            rec = json.loads(body) if ok else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            ok, rec = False, None
        if not ok or not isinstance(rec, dict):
            rest = len(lines) - n
            return Log(records, f"{path}: record {n} is damaged (checksum mismatch)"
                       + (f"; {rest} later record(s) not trusted" if rest else ""))
        records.append(rec)
    if tail:
        return Log(records, f"{path}: the last record was cut short while being written (ignored)")
    return Log(records, None)


class Journal:
    def __init__(self, host: Host):
        self.host = host
        self.dir = host.real(JOURNAL_DIR)

    # -------------------------------------------------------------- setup and lock
    def ensure(self) -> None:
        path = self.host.root
        for part in JOURNAL_DIR.strip("/").split("/"):
            path = os.path.join(path, part)
            try:
                os.mkdir(path, 0o700)
                private = part in ("dockfix", "journal")
                os.chmod(path, 0o700 if private else 0o755)
            except FileExistsError:
                pass
            problem = self._folder_problem(path)
            if problem:
                raise JournalError(problem)
        os.chmod(self.dir, 0o700)
        os.chmod(os.path.dirname(self.dir), 0o700)

    def _folder_problem(self, path: str) -> str | None:
        """Why a folder on the way to the journal makes it untrustworthy, or None. Whoever else can
        write a folder on the way can swap the journal for one of their own, and rollback writes
        before-images from it as root."""
        if os.path.islink(path):
            return f"{self.host.unreal(path)}: is a symbolic link; the journal will not follow it"
        st = os.lstat(path)
        if not stat_mod.S_ISDIR(st.st_mode):
            return f"{self.host.unreal(path)}: is not a directory"
        if st.st_uid not in (0, os.geteuid()):
            return (f"{self.host.unreal(path)}: is owned by uid {st.st_uid}, not root; dockfix will not "
                    f"keep (or trust) its journal there")
        if st.st_mode & 0o002 and not st.st_mode & stat_mod.S_ISVTX:
            return (f"{self.host.unreal(path)}: is writable by everyone; dockfix will not keep (or "
                    f"trust) its journal there")
        return None

    def trust_problem(self) -> str | None:
        """What :meth:`ensure` would refuse in the folders that exist, without creating any (for a
        listing, which only reads)."""
        path = self.host.root
        for part in JOURNAL_DIR.strip("/").split("/"):
            path = os.path.join(path, part)
            if not os.path.lexists(path):
                return None
            problem = self._folder_problem(path)
            if problem:
                return problem
        return None

    @contextmanager
    def lock(self) -> Iterator[None]:
        path = os.path.join(self.dir, "lock")
        try:
            self.ensure()
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise JournalWriteError(f"{self.host.unreal(self.dir)}: cannot keep the journal: {e.strerror}; "
                                    f"nothing was changed") from None
        os.fchmod(fd, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
                raise JournalBusy(f"another dockfix apply or rollback is running on this host "
                                  f"({self.host.unreal(path)} is locked{', by ' + holder if holder else ''})") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.close(fd)  # releases the flock

    # -------------------------------------------------------------- transactions
    def new_txid(self) -> str:
        """Sortable by time (microseconds), so that --last is the latest; unique in the journal."""
        while True:
            t = time.time_ns()
            txid = time.strftime("%Y%m%dT%H%M%S", time.gmtime(t // 10**9)) + f".{t // 1000 % 10**6:06d}Z"
            if not os.path.exists(os.path.join(self.dir, txid)):
                return txid

    def txids(self) -> list[str]:
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if not n.startswith(".") and os.path.isfile(os.path.join(self.dir, n, "tx.json")))

    def open(self, txid: str) -> "Tx":
        if not txid or "/" in txid or txid.startswith("."):
            raise JournalError(f"{txid!r} is not a transaction id")
        d = os.path.join(self.dir, txid)
        if not os.path.isfile(os.path.join(d, "tx.json")):
            raise JournalError(f"no transaction {txid} in {self.host.unreal(self.dir)}")
        return Tx(self, txid)

    def begin(self, plan: Plan) -> "Tx":
        txid = self.new_txid()
        d = os.path.join(self.dir, txid)
        os.mkdir(d, 0o700)
        os.chmod(d, 0o700)
        _fsync_dir(self.dir)
        header = {"id": txid, "time": time.time(), "user": _user(), "root": self.host.root, "plan": plan.to_json()}
        _write_private(os.path.join(d, "tx.json"), json.dumps(header, indent=1).encode())
        tx = Tx(self, txid)
        tx.append({"type": "begin"})
        return tx


class Tx:
    def __init__(self, journal: Journal, txid: str):
        self.journal = journal
        self.id = txid
        self.dir = os.path.join(journal.dir, txid)
        self._log_fd: int | None = None
        #: Why a record could not be written (a rollback goes on without it; see _try_append).
        self.unrecorded: str | None = None

    @property
    def log_path(self) -> str:
        return os.path.join(self.dir, "log")

    def header(self) -> dict:
        try:
            with open(os.path.join(self.dir, "tx.json"), encoding="utf-8") as f:
                return json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise JournalError(f"{self.journal.host.unreal(self.dir)}/tx.json: unreadable ({e})") from None

    def append(self, rec: dict) -> None:
        rec = {**rec, "at": time.time()}
        new = not os.path.exists(self.log_path)
        fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            data = _record_line(rec)
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        if new:
            _fsync_dir(self.dir)

    def put_blob(self, n: int, data: bytes) -> str:
        return self.put_blob_named(f"blob-{n}", data)

    def put_blob_named(self, name: str, data: bytes) -> str:
        _write_private(os.path.join(self.dir, name), data)
        return name

    def get_blob(self, name: str | None, digest: str | None) -> bytes | None:
        if not name:
            return None
        try:
            with open(os.path.join(self.dir, os.path.basename(name)), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        if digest and sha256(data) != digest:
            return None
        return data

    def log(self) -> Log:
        return read_log(self.log_path)


# ---------------------------------------------------------------------- state of a transaction
@dataclass
class Step:
    n: int
    target: str
    change: dict
    before: dict
    expected: dict | None
    blob: str | None
    blob_sha256: str | None
    after: dict | None = None


@dataclass
class TxState:
    txid: str
    header: dict
    steps: list[Step]
    state: str  # applied | rolled back | incomplete | rolling back | failed (rolled back)
    error: str | None
    damaged: str | None
    restored: set[str] = field(default_factory=set)
    #: Who rolled it back, when, what was restored and kept (from the rollback's own records).
    rollback: dict | None = None


def tx_state(tx: Tx) -> TxState:
    header = tx.header()
    log = tx.log()
    steps: dict[int, Step] = {}
    types = []
    error = None
    restored: set[str] = set()
    rb: dict | None = None
    for rec in log.records:
        t = rec.get("type")
        types.append(t)
        if t == "before":
            steps[rec["step"]] = Step(rec["step"], rec["target"], rec.get("change") or {}, rec["state"],
                                      rec.get("expected"), rec.get("blob"), rec.get("blob_sha256"))
        elif t == "after" and rec.get("step") in steps:
            steps[rec["step"]].after = rec["state"]
        elif t == "abort":
            error = rec.get("error")
        elif t == "restored":
            restored.add(rec["target"])
        elif t == "rollback-begin":
            rb = {"user": rec.get("user", "?"), "started": rec.get("at"), "force": bool(rec.get("force"))}
        elif t == "rollback-end":
            rb = {**(rb or {}), "finished": rec.get("at"), "restored": rec.get("restored", []),
                  "kept": rec.get("kept", [])}
    if "rollback-end" in types:
        state = "failed (rolled back)" if "abort" in types else "rolled back"
    elif "rollback-begin" in types:
        state = "rolling back"
    elif "commit" in types:
        state = "applied"
    else:
        state = "incomplete"
    return TxState(tx.id, header, [steps[k] for k in sorted(steps)], state, error, log.damaged, restored, rb)


# ---------------------------------------------------------------------- apply
@dataclass
class Progress:
    step: int
    total: int
    change: Change


class _Signals:
    """SIGINT/SIGTERM/SIGHUP (a closed terminal or SSH session) during an apply set a flag; the apply
    stops between steps and rolls back."""

    def __init__(self):
        self.got: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame):
        self.got = signum

    def check(self) -> None:
        if self.got is not None:
            raise Interrupted(f"interrupted by {signal.Signals(self.got).name}")

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)
        return False


def _describe(kind, state: dict) -> str:
    text = kind.describe({k: (None if isinstance(v, str) and v.startswith("hmac:") else v) for k, v in state.items()})
    return text.replace(" sha256 None", "")


def stale_targets(host: Host, plan: Plan) -> list[str]:
    """Targets whose state is not the one the plan was made against (first change per target)."""
    seen: set[str] = set()
    out = []
    for c in plan.changes:
        if c.target in seen:
            continue
        seen.add(c.target)
        kind, name = _kind(c.target)
        try:
            now = kind.state(host, name)
        except (FsError, JournalError, TargetError) as e:
            out.append(f"{target_label(c.target)} ({e})")
            continue
        if c.pre is None:
            out.append(f"{target_label(c.target)} (the plan recorded no precondition)")
        elif not plan.same_pre(kind, now, c.pre):
            if hasattr(kind, "changes"):
                pre = dict(c.pre)
                if not plan.same_pre(kind, {**now, "uid": pre.get("uid"), "gid": pre.get("gid"), "mode": pre.get("mode"),
                                            "kind": pre.get("kind")}, pre):
                    pre["sha256"] = "(differs)"
                else:
                    pre["sha256"] = now.get("sha256")
                what = kind.changes(pre, now)
            else:
                what = f"planned against: {_describe(kind, c.pre)}; now: {kind.describe(now)}"
            out.append(f"{target_label(c.target)} ({what})")
    return out


def engine_problems(host: Host, plan: Plan) -> list[str]:
    """A plan's engine changes (swarm secrets, services) go to the engine the plan names, and that
    engine can take them now (reachable, a swarm manager): checked before anything else."""
    targets: dict[type, list[str]] = {}
    for c in plan.changes:
        kind, _ = _kind(c.target)
        if kind.on_engine and c.target not in targets.setdefault(kind, []):
            targets[kind].append(c.target)
    if not targets:
        return []
    named = getattr(plan, "engine", None)
    now = host.docker_host if host.engine else None
    if named is not None and named != now:
        some = [target_label(t) for ts in targets.values() for t in ts][:3]
        return [f"the plan's engine changes ({', '.join(some)}) are for the engine {named}, but this apply talks to "
                f"{now or 'no engine (--no-engine, or --root without --docker-host)'}"]
    for kind in targets:
        problem = kind.engine_problem(host)
        if problem:
            return [problem]
    return []


def preflight(host: Host, journal: Journal, changes: list[Change]) -> list[str]:
    """What would make the transaction fail half-way, found before its first change: per target
    (immutable or append-only attributes, hard links, a read-only filesystem, content too large,
    no room for new content) and for the journal (room for every before-image)."""
    by_target: dict[str, list[Change]] = {}
    for c in changes:
        by_target.setdefault(c.target, []).append(c)
    out: list[str] = []
    need = 65536 * (len(changes) + 4)  # records, tx.json, slack
    for t, cs in by_target.items():
        kind, name = _kind(t)
        try:
            problems, kept = kind.preflight(host, name, cs)
        except (FsError, OSError, TargetError) as e:
            problems, kept = [f"{target_label(t)}: {getattr(e, 'strerror', None) or e}"], 0
        out += problems
        need += kept
    try:
        vfs = os.statvfs(journal.dir)
    except OSError as e:
        return out + [f"{host.unreal(journal.dir)}: {e.strerror}"]
    free = vfs.f_bavail * vfs.f_frsize
    if vfs.f_flag & os.ST_RDONLY:
        out.append(f"{host.unreal(journal.dir)}: the journal's filesystem is read-only")
    elif free < need:
        out.append(f"{host.unreal(journal.dir)}: not enough free space for the journal's before-images "
                   f"({need} bytes needed, {free} free)")
    return out


def _errtext(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        where = f"{e.filename}: " if e.filename else ""
        return f"{where}{e.strerror}"
    return str(e) or type(e).__name__


def apply(host: Host, plan: Plan, on_step: Callable[[Progress], None] | None = None) -> tuple[str | None, list[str], bool, str | None]:
    """Apply the plan's changes as one transaction. Returns (txid, applied targets, rolled_back, error).

    Raises JournalBusy when another apply or rollback holds the lock, PlanError when the host
    changed since the plan was made (nothing is touched then)."""
    journal = Journal(host)
    changes = plan.changes
    engine = engine_problems(host, plan)
    if engine:
        raise PlanError("refused before the first change (nothing was applied): " + "; ".join(engine))
    # checked before the journal is created (a refused plan leaves no trace), and again under the lock
    stale = stale_targets(host, plan)
    if stale:
        raise PlanError("the host changed since the plan was made; nothing was applied. Changed: " + "; ".join(stale))
    if not changes:
        return None, [], False, None
    with journal.lock():
        unfinished = unfinished_tx(journal)
        if unfinished:
            raise JournalBusy(f"transaction {unfinished} was interrupted and is not rolled back: run "
                              f"`dockfix rollback {unfinished}` first")
        stale = stale_targets(host, plan)
        if stale:
            raise PlanError("the host changed since the plan was made; nothing was applied. Changed: " + "; ".join(stale))
        if not changes:
            return None, [], False, None
        if os.environ.get("DOCKFIX_FAULT_NO_PREFLIGHT") != "1":  # tests of real faults mid-apply only
            problems = preflight(host, journal, changes)
            if problems:
                raise PlanError("refused before the first change (nothing was applied): " + "; ".join(problems))
        try:
            tx = journal.begin(plan)
        except OSError as e:
            _remove_partial_tx(journal)
            raise JournalWriteError(f"{host.unreal(journal.dir)}: cannot write the transaction: {e.strerror}; "
                                    f"nothing was applied") from None
        content_targets = {c.target for c in changes if c.touches_content}
        done: list[str] = []
        c = None
        with _Signals() as sig:
            try:
                for n, c in enumerate(changes, 1):
                    sig.check()
                    kind, name = _kind(c.target)
                    first = c.target not in done
                    # a copy of the content is kept only when the transaction changes content
                    state, blob = kind.capture(host, name, content=first and c.target in content_targets)
                    # Checked before the step is recorded: a target that changed under us is never
                    # touched, so the rollback must not try to "restore" it either.
                    if first and not plan.same_pre(kind, state, c.pre):
                        raise PlanError(f"{target_label(c.target)}: changed while the plan was being applied")
                    blob_name = tx.put_blob(n, blob) if blob is not None else None
                    tx.append({"type": "before", "step": n, "target": c.target, "change": _change_summary(c),
                               "state": state, "expected": c.expected(state), "blob": blob_name,
                               "blob_sha256": sha256(blob) if blob is not None else None})
                    _fault("apply-fail", n)
                    c.perform(host)
                    _fault("apply-inflight", n)
                    tx.append({"type": "after", "step": n, "target": c.target, "state": kind.state(host, name)})
                    if first:
                        done.append(c.target)
                    if on_step:
                        on_step(Progress(n, len(changes), c))
                    _fault("apply", n)
                sig.check()
                tx.append({"type": "commit"})
                return tx.id, done, False, None
            except (Exception, Interrupted) as e:
                msg = _errtext(e)
                if isinstance(e, OSError) and not isinstance(e, FsError) and c is not None:
                    msg = f"{target_label(c.target)}: {msg}"
                _try_append(tx, {"type": "abort", "error": msg})
                try:
                    _rollback_tx(host, tx, force=True, partial=True)
                except EngineUnreachable as e2:
                    return tx.id, done, False, f"{msg}; {e2}"
                except Exception as e2:  # noqa: BLE001 — report both
                    return tx.id, done, False, f"{msg}; rolling back failed too: {_errtext(e2)} (run `dockfix rollback {tx.id}`)"
                return tx.id, done, True, msg


def _try_append(tx: Tx, rec: dict) -> bool:
    """Append a record if the disk lets us (a full or read-only disk must not stop a rollback:
    restores are idempotent, so a rollback whose records are missing is simply run again)."""
    try:
        tx.append(rec)
        return True
    except OSError as e:
        tx.unrecorded = tx.unrecorded or (e.strerror or str(e))
        return False


def _remove_partial_tx(journal: Journal) -> None:
    """A transaction whose header could not be written (no change made yet): remove what exists."""
    # the newest transaction folder (not `lock`, which sorts after every id)
    names = [n for n in os.listdir(journal.dir) if not n.startswith(".")
             and stat_mod.S_ISDIR(os.lstat(os.path.join(journal.dir, n)).st_mode)]
    for txid in sorted(names)[-1:]:
        d = os.path.join(journal.dir, txid)
        if os.path.isdir(d) and not os.path.exists(os.path.join(d, "log")):
            for f in os.listdir(d):
                try:
                    os.unlink(os.path.join(d, f))
                except OSError:
                    pass
            try:
                os.rmdir(d)
            except OSError:
                pass


def unfinished_tx(journal: Journal) -> str | None:
    """The latest transaction if a crash left it half applied (or half rolled back)."""
    ids = journal.txids()
    if not ids:
        return None
    st = tx_state(journal.open(ids[-1]))
    return ids[-1] if st.state in ("incomplete", "rolling back") else None


def _change_summary(c: Change) -> dict:
    """What the journal listing shows about a change: never content."""
    return {"kind": c.kind, "summary": " ".join(c.summary().split())}


# ---------------------------------------------------------------------- rollback
@dataclass
class RollbackOutcome:
    txid: str
    restored: list[str]
    refused: list[str]
    already: bool = False
    damaged: str | None = None
    #: With --force: copies kept of files changed since the transaction ("path -> journal file").
    kept: list[str] = field(default_factory=list)
    #: Why the journal could not record the rollback (it was done all the same), or None.
    unrecorded: str | None = None


def find_tx(journal: Journal, txid: str | None) -> Tx:
    ids = journal.txids()
    if not ids:
        raise JournalError(f"no transactions in {journal.host.unreal(journal.dir)}")
    if txid in (None, "last", "--last"):
        return journal.open(ids[-1])
    if txid not in ids:
        matches = [i for i in ids if i.startswith(txid)]  # type: ignore[arg-type]
        if len(matches) != 1:
            raise JournalError(f"no transaction {txid} in {journal.host.unreal(journal.dir)}")
        txid = matches[0]
    return journal.open(txid)


def _left_on_engine(unreachable: dict[str, str], last: dict[str, Step]) -> str:
    """What the transaction left on an engine it cannot reach: "secret X (created), service Y (updated)"."""
    words = {"create-secret": "created", "update-service": "updated"}
    out = []
    for target in unreachable:
        s = last[target]
        did = words.get(s.change.get("kind", ""), "changed")
        out.append(f"{target_label(target)} ({did if s.after is not None else 'perhaps ' + did})")
    return ", ".join(out)


def _when_back(engine_error: str) -> str:
    return "once the engine is back" if "cannot be reached" in engine_error else "once the engine takes it"


def rollback(host: Host, txid: str | None = None, force: bool = False) -> RollbackOutcome:
    journal = Journal(host)
    with journal.lock():
        tx = find_tx(journal, txid)
        with _Signals():  # a rollback runs to its end; signals are noted, not obeyed mid-way
            return _rollback_tx(host, tx, force)


def _rollback_tx(host: Host, tx: Tx, force: bool, partial: bool = False) -> RollbackOutcome:
    """Roll a transaction back. ``partial`` (the automatic rollback of a failed apply): when the
    engine cannot be reached, restore everything else and raise EngineUnreachable naming what is
    left on the engine; otherwise a rollback that needs an unreachable engine restores nothing."""
    st = tx_state(tx)
    if st.state in ("rolled back", "failed (rolled back)"):
        return RollbackOutcome(tx.id, [], [], already=True, damaged=st.damaged)
    if st.damaged and "is damaged" in st.damaged and not force:
        # not a record cut short by a crash: the log itself was changed; do not act on it blindly
        return RollbackOutcome(tx.id, [], [f"{st.damaged} (--force rolls back what the trusted records cover)"],
                               damaged=st.damaged)
    # per target: the original before-image (first step) and what may be there now
    first: dict[str, Step] = {}
    last: dict[str, Step] = {}
    for s in st.steps:
        first.setdefault(s.target, s)
        last[s.target] = s
    refused = []
    keep_dirs: set[str] = set()  # created directories that now hold files of others (kept with --force)
    #: engine objects the transaction created that now belong to others (kept with --force): why
    kept_objects: dict[str, str] = {}
    #: engine targets whose engine cannot be reached (or refuses to be read): its one line
    unreachable: dict[str, str] = {}
    created = {t for t, s0 in first.items() if not s0.before.get("existed")}
    tx_names = [t.partition(":")[2] for t in first]  # what the transaction changed, by name
    for target, s0 in first.items():
        kind, name = _kind(target)
        if s0.blob and tx.get_blob(s0.blob, s0.blob_sha256) is None:
            refused.append(f"{target_label(target)} (its before-image in the journal is missing or damaged)")
            continue
        try:
            now = kind.state(host, name)
        except TargetError as e:
            if not kind.on_engine:
                raise JournalError(str(e)) from None
            unreachable[target] = str(e)
            continue
        sl = last[target]
        ok = [s0.before]
        ok.append(sl.after if sl.after is not None else sl.expected)
        if sl.after is None:
            ok.append(sl.before)
        matches = any(kind.same(now, o) for o in ok if o is not None)
        if kind.on_engine and target in created and (matches or force):
            try:
                why = kind.kept_on_rollback(host, name, now, s0.after, tx_names)
            except TargetError as e:
                unreachable[target] = str(e)
                continue
            if why and force:
                kept_objects[target] = why
                continue
            if why:
                refused.append(f"{target_label(target)} ({why}; --force keeps it)")
                continue
        if not matches:
            if not force:
                ref = sl.after if sl.after is not None else (sl.expected or s0.before)
                what = kind.changes(ref, now) if hasattr(kind, "changes") else f"now {kind.describe(now)}"
                if kind.on_engine:
                    what = what.replace("since the plan was made", "since the transaction")
                refused.append(f"{target_label(target)} (changed since the transaction: {what})")
        elif target in created and now.get("kind") == "dir":
            ours = {t.partition(":")[2].rsplit("/", 1)[-1] for t in created
                    if t.startswith("file:") and t.partition(":")[2].rsplit("/", 1)[0] == name}
            try:
                entries = set(os.listdir(host.real(name)))
            except OSError:
                entries = set()
            # what an apply killed mid-write leaves beside one of our files is ours too (removed on restore)
            others = sorted(e for e in entries - ours
                            if not any(e.startswith(f".{n}.dockfix-") and e.endswith(".tmp") for n in ours))
            if others:
                if force:
                    keep_dirs.add(target)
                else:
                    refused.append(f"{target_label(target)} (created by the transaction, now holds other files: "
                                   f"{', '.join(others[:5])}{' ...' if len(others) > 5 else ''}; --force keeps it)")
    if unreachable and not partial:
        first_err = next(iter(unreachable.values()))
        raise EngineUnreachable(f"cannot roll back {tx.id} now: {first_err}; this transaction's "
                                f"{_left_on_engine(unreachable, last)} are there. Nothing was restored: run "
                                f"`dockfix rollback {tx.id}` again {_when_back(first_err)}")
    if refused:
        return RollbackOutcome(tx.id, [], refused, damaged=st.damaged)
    _try_append(tx, {"type": "rollback-begin", "force": force, "user": _user(), "pid": os.getpid()})
    kept: list[str] = []
    if force:
        # --force overwrites what changed since the transaction: keep a copy of each such file first
        for n, (target, s0) in enumerate(first.items(), 1):
            if target in unreachable or target in kept_objects:
                continue
            kind, name = _kind(target)
            sl = last[target]
            try:
                now = kind.state(host, name)
            except TargetError:
                continue  # the engine went away: its restore below says so
            unsure = (sl.expected, sl.before) if sl.after is None else ()  # a step whose answer was lost
            if any(kind.same(now, o) for o in (s0.before, sl.after, *unsure) if o is not None):
                continue
            try:
                _state, blob = kind.capture(host, name, content=True)
            except (FsError, OSError, TargetError):
                blob = None
            if blob is None:
                continue
            fname = f"overwritten-{n}"
            try:
                tx.put_blob_named(fname, blob)
            except OSError as e:
                raise JournalError(f"{target_label(target)}: cannot keep a copy before --force overwrites it "
                                   f"({e.strerror}); nothing was rolled back") from None
            _try_append(tx, {"type": "kept", "target": target, "blob": fname, "blob_sha256": sha256(blob)})
            kept.append(f"{target_label(target)} -> {host.unreal(os.path.join(tx.dir, fname))}")
    restored = []
    for i, target in enumerate(reversed(list(first)), 1):
        s0 = first[target]
        kind, name = _kind(target)
        blob = tx.get_blob(s0.blob, s0.blob_sha256)
        if target in keep_dirs:
            _try_append(tx, {"type": "restored", "target": target, "kept": True})
            continue
        if target in unreachable:
            continue
        if target in kept_objects:
            _try_append(tx, {"type": "restored", "target": target, "kept": True})
            kept.append(f"{target_label(target)}: left as it is, {kept_objects[target]}")
            continue
        try:
            _fault("rollback-fail", i)
            kind.restore(host, name, s0.before, blob)
        except TargetError as e:
            if partial and kind.on_engine:
                unreachable[target] = str(e)
                continue
            raise JournalError(f"rollback of {tx.id} stopped at {target_label(target)}: {_errtext(e)}; put it right "
                               f"and run `dockfix rollback {tx.id}` again") from None
        except (FsError, OSError) as e:
            raise JournalError(f"rollback of {tx.id} stopped at {target_label(target)}: {_errtext(e)}; put it right "
                               f"and run `dockfix rollback {tx.id}` again") from None
        _try_append(tx, {"type": "restored", "target": target})
        restored.append(target_label(target))
        _fault("rollback", i)
    if unreachable:  # partial: no rollback-end, so the transaction stays to be finished
        first_err = next(iter(unreachable.values()))
        raise EngineUnreachable(f"everything else is rolled back, but {first_err}: left there "
                                f"{_left_on_engine(unreachable, last)}; run `dockfix rollback {tx.id}` "
                                f"{_when_back(first_err)}")
    _try_append(tx, {"type": "rollback-end", "user": _user(), "restored": restored, "kept": kept})
    return RollbackOutcome(tx.id, restored, [], damaged=st.damaged, kept=kept, unrecorded=tx.unrecorded)


# ---------------------------------------------------------------------- housekeeping
def prune(host: Host, keep: int | None = None, older_than_days: float | None = None) -> tuple[list[str], list[str]]:
    """Remove old transactions: all but the ``keep`` latest, or those older than the given number of
    days. A transaction that is incomplete or half rolled back is never removed (it is what a
    rollback needs). Returns (removed, kept back with the reason)."""
    import shutil

    journal = Journal(host)
    removed: list[str] = []
    held: list[str] = []
    with journal.lock():
        ids = journal.txids()
        if keep is not None:
            candidates = ids[:max(len(ids) - keep, 0)]
        else:
            limit = time.time() - (older_than_days or 0) * 86400
            candidates = []
            for txid in ids:
                try:
                    when = journal.open(txid).header().get("time", 0)
                except JournalError:
                    when = 0
                if when < limit:
                    candidates.append(txid)
        for txid in candidates:
            tx = journal.open(txid)
            try:
                state = tx_state(tx).state
            except (JournalError, KeyError, TypeError):
                state = "damaged"
            if state in ("incomplete", "rolling back", "damaged"):
                held.append(f"{txid} ({state}: roll it back first)")
                continue
            # out of the journal's names first (one rename), then removed: a file that cannot be
            # removed (immutable, read-only filesystem) leaves no half transaction behind
            gone = os.path.join(journal.dir, f".pruning-{txid}")
            try:
                os.rename(tx.dir, gone)
                shutil.rmtree(gone)
            except OSError as e:
                where = host.unreal(gone if not os.path.exists(tx.dir) else tx.dir)
                raise JournalWriteError(
                    f"journal prune: cannot remove transaction {txid} ({where}: {e.strerror})"
                    + (f"; removed before it: {', '.join(removed)}" if removed else "; nothing was removed")
                ) from None
            removed.append(txid)
        if removed:
            _fsync_dir(journal.dir)
    return removed, held
