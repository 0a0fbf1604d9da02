"""Every workload in scope: the engine's containers and services, and the services of the compose
files in scope, each traced back to the compose service that asked for it."""

from __future__ import annotations

from typing import Any

from dockfix.model import CheckError, NotApplicable, Result
from dockfix.sources.compose_scope import compose_service_for
from dockfix.sources.compose_scope import compose_workloads as scoped_compose_workloads
from dockfix.sources.workload import KINDS, Workload, from_container, from_service


def engine_workloads(ctx) -> list[Workload]:
    """Every container and swarm service of the scanned engine, as workloads (memoised)."""

    eng = ctx.need_engine()
    # fetched outside ctx.memo, whose lock would otherwise hold up every other check meanwhile
    containers, services = eng.containers(), eng.services()

    def build() -> list[Workload]:
        out = [from_container(c) for c in containers]
        out += [from_service(s) for s in services]
        trace_to_compose(ctx, out)
        return out

    return ctx.memo("workloads:engine", build)


def compose_workloads(ctx) -> tuple[list[Workload], list[Any]]:
    """(services of every compose file in scope, CheckErrors of files that could not be read)."""
    if ctx.engine is not None:  # the compose labels of containers name files: fetch them outside the memo lock
        try:
            ctx.engine.containers()
        except CheckError:
            pass
    return ctx.memo("workloads:compose", lambda: scoped_compose_workloads(ctx))


def gather(ctx, kinds=KINDS) -> tuple[list[Workload], list[Any]]:
    """(workloads of the wanted kinds, error Results for sources that could not be read).

    Raises NotApplicable when there is nothing at all to look at (no engine, no compose file).
    """
    out: list[Workload] = []
    errors: list[Result] = []
    if ctx.engine is not None and ("container" in kinds or "service" in kinds):
        try:
            out += [w for w in engine_workloads(ctx) if w.kind in kinds]
        except CheckError as e:
            errors.append(Result.error(str(e), subject="engine"))
    if "compose" in kinds:
        found, bad = compose_workloads(ctx)
        out += found
        for e in bad:
            path = str(e).split(":", 1)[0]
            errors.append(Result.error(str(e), subject=f"compose:{path}"))
    if ctx.engine is None and not out and not errors:
        raise NotApplicable("the engine was not scanned (--no-engine) and no compose file was given or found")
    return out, errors


def trace_to_compose(ctx, workloads: list[Workload]) -> None:
    """Point containers and stack services back at the compose service that asked for them."""
    for w in workloads:
        try:
            svc = compose_service_for(ctx, w)
        except Exception:  # a broken compose file is reported by the compose findings
            svc = None
        if svc is not None:
            w.where = svc.where
            w.data["compose"] = svc.subject
