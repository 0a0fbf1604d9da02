"""CIS section 6: security operations (image and container sprawl)."""

from __future__ import annotations

from dockfix.model import INFO, Result, check
from dockfix.context import Context


@check(
    "image-sprawl", cis="6.1", severity=INFO, subject="images",
    title="Image sprawl is avoided",
    explanation="Images nobody uses still sit on disk with their old, unpatched packages, and can be started again "
    "by mistake. Keeping only the images in use makes the host easier to audit.",
    manual="docker image ls -q | wc -l; docker ps -aq | xargs docker inspect --format '{{.Image}}' | sort -u | wc -l",
    remediation="Remove images no container uses (docker image prune -a, after checking none is needed for a rollback).",
)
def image_sprawl(ctx: Context) -> Result:
    eng = ctx.need_engine()
    images = eng.images()
    used = {c.get("Image") for c in eng.containers()}
    unused = [img for img in images if img["Id"] not in used]
    if not unused:
        return Result.ok(f"{len(images)} image(s), all used by a container")
    from dockfix.checks.images import image_ref

    names = ", ".join(image_ref(i) for i in unused[:10]) + (", ..." if len(unused) > 10 else "")
    return Result.manual(f"{len(unused)} of {len(images)} image(s) are not used by any container ({names}): "
                         "decide which can go", data={"unused": [i["Id"] for i in unused]})


@check(
    "container-sprawl", cis="6.2", severity=INFO, subject="containers",
    title="Container sprawl is avoided",
    explanation="Stopped containers keep their filesystem changes, logs and configuration (sometimes secrets) on "
    "disk, and can be restarted with their old settings. Removing those that are no longer needed keeps the host "
    "tidy and auditable.",
    manual="docker ps -a --filter status=exited --filter status=created",
    remediation="Remove stopped containers that are no longer needed (docker container prune, after checking).",
)
def container_sprawl(ctx: Context) -> Result:
    conts = ctx.need_engine().containers()
    running = [c for c in conts if (c.get("State") or {}).get("Running")]
    stopped = [c for c in conts if not (c.get("State") or {}).get("Running")]
    if not stopped:
        return Result.ok(f"{len(conts)} container(s), all running")
    names = ", ".join(c.get("Name", "").lstrip("/") for c in stopped[:10]) + (", ..." if len(stopped) > 10 else "")
    return Result.manual(f"{len(stopped)} of {len(conts)} container(s) are not running ({names}); {len(running)} "
                         "running: decide which stopped ones can go")
