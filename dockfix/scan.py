"""Run the checks against a host and collect findings."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Iterable

from dockfix.sources.daemon_config import DAEMON_JSON, DaemonConfig, parse_daemon_json, parse_env_file, parse_flags
from dockfix.engine import Engine, daemon_argv_for, dockerd_processes
from dockfix.host import Host
from dockfix.model import REGISTRY, Check, CheckError, Finding, Result, Status


class NotApplicable(Exception):
    """Raised by a check (or a source it uses) when it does not apply here; becomes `skip`."""


@dataclass
class Context:
    """Everything a check may look at. Sources are read once and shared by every check."""

    host: Host
    paths: list[str] = field(default_factory=list)  # host paths given with --path
    compose: list[str] = field(default_factory=list)  # host paths given with --compose
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)
    _key_locks: dict[str, threading.RLock] = field(default_factory=dict, repr=False)

    def memo(self, name: str, compute: Callable[[], Any]) -> Any:
        """Compute a shared source once; a CheckError is cached and re-raised to every caller.

        Each source has its own lock, so a slow source (the engine) never holds up the others.
        """
        with self._lock:
            key_lock = self._key_locks.setdefault(name, threading.RLock())
        with key_lock:
            if name not in self._memo:
                try:
                    self._memo[name] = compute()
                except (CheckError, NotApplicable) as e:
                    self._memo[name] = e
            value = self._memo[name]
        if isinstance(value, (CheckError, NotApplicable)):
            raise value
        return value

    # ------------------------------------------------------------------ engine
    @cached_property
    def engine(self) -> Engine | None:
        if not self.host.engine:
            return None
        return Engine(lambda: self.host.docker, self.host.docker_host or "", timeout=self.host.engine_timeout)

    def need_engine(self) -> Engine:
        if self.engine is None:
            raise NotApplicable("the engine was not scanned (--no-engine)")
        return self.engine

    def info(self) -> dict[str, Any]:
        return self.need_engine().info()

    # ------------------------------------------------------------------ daemon
    def daemon_argv(self) -> list[str] | None:
        """argv of the dockerd serving the scanned socket; None when unknown (or --no-engine)."""

        def find() -> list[str] | None:
            # The processes are this machine's: only the daemon behind the scanned socket counts.
            if self.engine is None:
                return None
            found = daemon_argv_for(self.host.docker_host or "", dockerd_processes())
            return found[1] if found else None

        return self.memo("daemon_argv", find)

    def daemon_json_path(self) -> str:
        # --config-file names a path on this machine: it only counts when scanning this machine.
        argv = (self.daemon_argv() or []) if self.host.is_live else []
        for i, a in enumerate(argv):
            if a == "--config-file" and i + 1 < len(argv):
                return argv[i + 1]
            if a.startswith("--config-file="):
                return a.split("=", 1)[1]
        return DAEMON_JSON

    def daemon_json(self) -> dict:
        """Settings of daemon.json ({} when absent). CheckError when malformed."""

        def load():
            path = self.daemon_json_path()
            try:
                text = self.host.read_text(path)
                return {} if text is None else parse_daemon_json(text, path)
            except CheckError as e:
                e.subject = e.subject or path  # the error finding is about this file
                raise

        return self.memo("daemon_json", load)

    def daemon(self) -> DaemonConfig:
        def build() -> DaemonConfig:
            from_json = self.daemon_json()
            files: dict = {}
            for path, var in (("/etc/sysconfig/docker", "OPTIONS"), ("/etc/default/docker", "DOCKER_OPTS")):
                try:
                    text = self.host.read_text(path)
                    if text:
                        files.update(parse_env_file(text, var, path))
                except CheckError as e:
                    e.subject = e.subject or path
                    raise
            argv = self.daemon_argv()
            cmd = parse_flags(argv[1:], "dockerd command line") if argv else {}
            info = None
            if self.engine is not None:
                try:
                    info = self.engine.info()
                except CheckError:
                    info = None
            return DaemonConfig(self.daemon_json_path(), from_json, files, cmd, argv is not None, info)

        return self.memo("daemon", build)


@dataclass
class ScanResult:
    findings: list[Finding]
    host: dict[str, Any]


def selected_checks(only: Iterable[str] = (), skip: Iterable[str] = ()) -> list[Check]:
    """Checks chosen by id or CIS number (``--only``/``--skip``). ValueError on an unknown id."""
    import dockfix.checks  # noqa: F401  (registers every check)

    only, skip = list(only), list(skip)
    known = set(REGISTRY) | {c.cis for c in REGISTRY.values() if c.cis} | {c.section for c in REGISTRY.values()}
    for name in only + skip:
        if name not in known and not any((c.cis or "").startswith(name + ".") for c in REGISTRY.values()):
            raise ValueError(f"unknown check id {name!r}")

    def matches(c: Check, names: list[str]) -> bool:
        return any(n == c.id or n == c.cis or n == c.section or (c.cis or "").startswith(n + ".") for n in names)

    checks = [c for c in REGISTRY.values() if (not only or matches(c, only)) and not matches(c, skip)]
    return sorted(checks, key=sort_key)


def sort_key(c: Check) -> tuple:
    if c.cis:
        return (0, tuple(int(x) for x in c.cis.split(".")), c.id)
    return (1, (), c.id)


def run_check(check: Check, ctx: Context) -> list[Finding]:
    try:
        out = check.fn(ctx)
        results = [out] if isinstance(out, Result) else list(out)
    except CheckError as e:
        results = [Result.error(str(e), subject=e.subject)]
    except NotApplicable as e:
        results = [Result.skip(str(e))]
    except Exception as e:  # a bug in a check must not end the scan
        results = [Result.error(f"internal error in check {check.id}: {type(e).__name__}: {e}")]
    if not results:
        results = [Result.skip("nothing of this kind on this host")]
    return [to_finding(check, r) for r in results]


def to_finding(check: Check, r: Result) -> Finding:
    fix = None
    if check.fixer is not None and r.status == Status.FAIL:
        fix = {"safety": check.fixer.safety, "impact": check.fixer.impact}
    return Finding(
        id=check.id,
        cis=check.cis,
        title=check.title,
        severity=r.severity if r.severity is not None else check.severity,
        section=check.section,
        subject=r.subject or check.subject or "host",
        status=r.status,
        evidence=r.evidence,
        explanation=check.explanation,
        manual_check=check.manual_check,
        remediation=check.remediation,
        location=r.location,
        fix=fix,
        data=r.data,
    )


def scan(
    ctx: Context,
    only: Iterable[str] = (),
    skip: Iterable[str] = (),
    on_progress: Callable[[int, int, list[Finding]], None] | None = None,
    workers: int = 8,
) -> ScanResult:
    """Run the selected checks (concurrently: engine fetches overlap) and return their findings."""
    checks = selected_checks(only, skip)
    total = len(checks)
    by_check: dict[str, list[Finding]] = {}
    done = 0
    lock = threading.Lock()

    def one(c: Check) -> None:
        nonlocal done
        found = run_check(c, ctx)
        with lock:
            by_check[c.id] = found
            done += 1
            n = done
        if on_progress:
            on_progress(n, total, found)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, checks))
    findings = [f for c in checks for f in by_check[c.id]]
    return ScanResult(findings, host_summary(ctx))


def host_summary(ctx: Context) -> dict[str, Any]:
    h: dict[str, Any] = {"root": ctx.host.root, "engine": None}
    if ctx.engine is not None:
        h["engine"] = {"url": ctx.host.docker_host}
        try:
            v = ctx.engine.version()
            h["engine"]["server_version"] = v.get("Version")
        except CheckError as e:
            h["engine"]["error"] = str(e)
    h["hostname"] = os.uname().nodename if ctx.host.is_live else None
    return h
