"""Engine objects shared by every check, under the cache names agreed between helpers.

``ctx.need_engine().fetch("containers", ...)`` holds the inspect dicts of all containers and
``fetch("services", ...)`` the inspect dicts of all swarm services, fetched once per scan. If the
engine layer grows its own ``containers()``/``services()`` methods, these defer to them so both
sides share one cache.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from dockfix.scan import Context


def containers(ctx: "Context") -> list[dict[str, Any]]:
    """Inspect dicts of every container (running or not). NotApplicable with --no-engine."""
    eng = ctx.need_engine()
    own = getattr(eng, "containers", None)
    if callable(own):
        return own()

    def get() -> list[dict[str, Any]]:
        import docker.errors

        api = eng.api()
        out = []
        for summary in api.containers(all=True):
            try:
                out.append(api.inspect_container(summary["Id"]))
            except docker.errors.NotFound:  # removed between the listing and the inspection
                continue
        return out

    return eng.fetch("containers", get)


def services(ctx: "Context") -> list[dict[str, Any]]:
    """Inspect dicts of every swarm service; [] when the engine is not a swarm manager."""
    eng = ctx.need_engine()
    own = getattr(eng, "services", None)
    if callable(own):
        return own()

    def get() -> list[dict[str, Any]]:
        import docker.errors

        info = eng.info()
        swarm = info.get("Swarm") or {}
        if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
            return []
        try:
            return list(eng.api().services())
        except docker.errors.APIError as e:
            if getattr(e, "status_code", None) == 503:  # not a manager
                return []
            raise

    return eng.fetch("services", get)
