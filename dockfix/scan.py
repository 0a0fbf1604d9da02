"""Run the checks against a host and collect findings."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import dockfix.checks  # noqa: F401  (registers every check)
from dockfix import benchmarks
from dockfix.context import Context, NotApplicable  # noqa: F401  (re-exported)
from dockfix.model import REGISTRY, Check, CheckError, Finding, Result, Status, Undetermined


@dataclass
class ScanResult:
    findings: list[Finding]
    host: dict[str, Any]
    #: The CIS Docker Benchmark version whose numbers the findings carry.
    benchmark: str = benchmarks.DEFAULT


def selected_checks(only: Iterable[str] = (), skip: Iterable[str] = (),
                    benchmark: str = benchmarks.DEFAULT) -> list[Check]:
    """Checks chosen by id, or by number, section or group in ``benchmark`` (``--only``/``--skip``).
    ValueError on a name that selects nothing, or an unknown benchmark version."""
    sections = {c.id: c.section for c in REGISTRY.values()}
    chosen = set(benchmarks.resolve(only, benchmark, sections)) if only else set(REGISTRY)
    left_out = set(benchmarks.resolve(skip, benchmark, sections))
    checks = [c for c in REGISTRY.values() if c.id in chosen and c.id not in left_out]
    return sorted(checks, key=lambda c: sort_key(c, benchmark))


def sort_key(c: Check, benchmark: str = benchmarks.DEFAULT) -> tuple:
    num = benchmarks.number(c.id, benchmark)
    if num:
        return (0, tuple(int(x) for x in num.split(".")), c.id)
    return (1, (), c.id)


def run_check(check: Check, ctx: Context, benchmark: str | None = None) -> list[Finding]:
    benchmark = benchmark or ctx.benchmark
    try:
        out = check.fn(ctx)
        results = [out] if isinstance(out, Result) else list(out)
    except CheckError as e:
        results = [Result.error(str(e), subject=e.subject)]
    except NotApplicable as e:
        results = [Result.skip(str(e))]
    except Undetermined as e:
        results = [Result.manual(str(e))]
    except Exception as e:  # a bug in a check must not end the scan
        results = [Result.error(f"internal error in check {check.id}: {type(e).__name__}: {e}")]
    if not results:
        results = [Result.skip("nothing of this kind on this host")]
    return [to_finding(check, r, benchmark) for r in results]


def to_finding(check: Check, r: Result, benchmark: str = benchmarks.DEFAULT) -> Finding:
    fix = None
    if check.fix_spec is not None and r.status == Status.FAIL:
        fix = check.fix_spec.to_json()
    return Finding(
        id=check.id,
        cis=benchmarks.number(check.id, benchmark),
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
        assessment=benchmarks.assessment(check.id, benchmark),
    )


def scan(
    ctx: Context,
    only: Iterable[str] = (),
    skip: Iterable[str] = (),
    on_progress: Callable[[int, int, list[Finding]], None] | None = None,
    workers: int = 8,
    benchmark: str | None = None,
) -> ScanResult:
    """Run the selected checks (concurrently: engine fetches overlap) and return their findings,
    numbered as in CIS Docker Benchmark ``benchmark`` (default: the context's, --benchmark)."""
    benchmark = benchmarks.check_version(benchmark or ctx.benchmark)
    checks = selected_checks(only, skip, benchmark)
    total = len(checks)
    by_check: dict[str, list[Finding]] = {}
    done = 0
    lock = threading.Lock()

    def one(c: Check) -> None:
        nonlocal done
        found = run_check(c, ctx, benchmark)
        with lock:
            by_check[c.id] = found
            done += 1
            n = done
        if on_progress:
            on_progress(n, total, found)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, checks))
    findings = [f for c in checks for f in by_check[c.id]]
    return ScanResult(findings, host_summary(ctx), benchmark)


#: Sections about a daemon: what is scanned again for each rootless daemon found.
DAEMON_SECTIONS = ("2", "3", "4", "5", "6", "7")


def scan_rootless(ctx: Context, only: Iterable[str] = (), skip: Iterable[str] = (), workers: int = 8
                  ) -> tuple[list[Finding], list[dict[str, Any]]]:
    """Scan every rootless daemon found on the host as its own subject (sections 2-7, with the
    user's files: see sources/rootless.py). Findings about a path keep it as their subject; the
    others are named ``rootless:USER:SUBJECT`` (``rootless:alice:dockerd``,
    ``rootless:alice:container:web``). Returns the findings and a summary per daemon."""
    from dataclasses import replace

    from dockfix.host import Host

    found: list[Finding] = []
    summaries: list[dict[str, Any]] = []
    checks = [c for c in selected_checks(only, skip, ctx.benchmark) if c.section in DAEMON_SECTIONS]
    ids = [c.id for c in checks]
    if not ids:
        return found, summaries
    for d in ctx.rootless_daemons():
        # its socket is only reachable when scanning this machine
        engine = ctx.engine is not None and ctx.host.is_live
        sub = Context(Host(ctx.host.root, docker_host=d.url, engine=engine, engine_timeout=ctx.host.engine_timeout),
                      benchmark=ctx.benchmark, offline=ctx.offline)
        result = scan(sub, only=ids, workers=workers)
        for f in result.findings:
            if not f.subject.startswith("/"):
                f = replace(f, subject=f"rootless:{d.user}:{f.subject}")
            found.append(f)
        summary = {"user": d.user, "uid": d.uid, "url": d.url, "found_by": list(d.found_by),
                   "engine": result.host.get("engine")}
        summaries.append(summary)
    return found, summaries


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
