"""Benchmark items about the daemon's storage driver that came with CIS Docker Benchmark v1.8.0.

Kept apart from checks/daemon.py (the daemon's settings) so that a benchmark item added later is a
one-file change; the driver itself is found by :func:`dockfix.checks.daemon.storage_driver`.
"""

from __future__ import annotations

from dockfix.checks.daemon import storage_driver
from dockfix.context import Context, NotApplicable
from dockfix.model import MEDIUM, Fix, Result, Safety, check

DEVICEMAPPER_IMPACT = (
    "Changing the storage driver leaves every image, container and volume stored by the old driver behind: "
    "the engine starts empty, so images must be pulled or rebuilt and containers recreated.")


@check(
    "devicemapper", cis=None, section="2", severity=MEDIUM, subject="dockerd",
    fix=Fix(Safety.MANUAL, DEVICEMAPPER_IMPACT),
    title="The devicemapper storage driver is not used",
    explanation="devicemapper keeps image layers in thin-provisioned block devices. It was deprecated for years "
    "in favour of overlay2 and Docker Engine 25.0 dropped it, so a daemon that still uses it runs an old engine "
    "that cannot be upgraded in place, with the driver's known problems (loop-device mode, pool exhaustion). "
    "Mapped to item 2.7 of CIS Docker Benchmark v1.8.0; earlier versions have no such item.",
    manual="docker info --format '{{.Driver}}'; grep -n storage-driver /etc/docker/daemon.json",
    remediation="Plan a move to overlay2: save what must be kept (docker save, volume backups), set "
    "\"storage-driver\": \"overlay2\" in daemon.json, restart dockerd, then pull or rebuild the images and "
    "recreate the containers.",
)
def devicemapper(ctx: Context) -> Result:
    driver, where = storage_driver(ctx)
    if driver is None:
        raise NotApplicable("the storage driver is only known from the engine (docker info) or a storage-driver "
                            "setting; neither is available")
    ev = f"storage driver {driver} ({where})"
    if driver == "devicemapper":
        return Result.fail(ev + ": removed from Docker Engine 25.0 and later", subject="dockerd", data={"driver": driver})
    return Result.ok(ev, subject="dockerd", data={"driver": driver})
