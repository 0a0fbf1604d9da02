"""The storage-driver move (CIS v1.8.0 2.7): always by hand, because the data stays with the old driver."""

from __future__ import annotations

from dockfix.checks.storage import devicemapper
from dockfix.fixes import ManualFix


@devicemapper.fix
def move_to_overlay2(ctx, finding):
    raise ManualFix(
        "A new storage driver does not see the old driver's data, so dockfix never switches it. By hand: list what "
        "runs (docker ps -a; docker volume ls), save the images you cannot pull again (docker save -o images.tar "
        "IMAGE...), back up the volumes, stop the containers, set \"storage-driver\": \"overlay2\" in "
        "/etc/docker/daemon.json (check it with dockerd --validate), restart dockerd, load or pull the images "
        "again and recreate the containers; remove the old devicemapper pool once everything runs.")
