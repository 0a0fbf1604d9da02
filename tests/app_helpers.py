"""A failing host tree and an app rooted in it, shared by the app's pilot, snapshot and tmux tests."""

from __future__ import annotations

import functools
from pathlib import Path

from helpers import put

#: daemon.json of the failing tree: icc on (2.2), no live-restore (2.15); the file is 0666 (3.18).
DAEMON_JSON = '{\n  "icc": true,\n  "log-level": "info"\n}\n'

#: A fixed set of checks for the snapshots, so that new checks elsewhere do not change them.
SNAPSHOT_CHECKS = ["2.2", "2.3", "2.15", "3.5", "3.6", "3.17", "3.18", "3.19", "3.20"]


def failing_tree(root: Path) -> Path:
    put(root, "etc/docker/", mode=0o755)
    put(root, "etc/docker/daemon.json", DAEMON_JSON, mode=0o666)
    put(root, "etc/default/docker", 'DOCKER_OPTS=""\n', mode=0o644, owner=(1000, 1000))
    put(root, "etc/group", "root:x:0:\ndocker:x:998:\n")
    return root


def make_app(root: Path, only: list[str] | None = None, engine: str | None = None, engine_timeout: float = 5.0,
             **kw):
    from dockfix.app import DockfixApp
    from dockfix.host import Host
    from dockfix.scan import Context, scan

    def context() -> Context:
        return Context(host=Host(root=str(root), docker_host=engine, engine=engine is not None,
                                 engine_timeout=engine_timeout))

    kw.setdefault("host_label", "test host")
    if only:
        kw.setdefault("scan", functools.partial(scan, only=only))
    return DockfixApp(context, **kw)


async def settle(app, pilot) -> None:
    """Wait until every worker is done and the screen has caught up."""
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause(0.05)
    await pilot.pause(0.1)
