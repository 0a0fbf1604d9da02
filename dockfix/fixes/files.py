"""Section 3: owner and mode of the daemon's files, directories and sockets.

One owner fix and one mode fix per row of :data:`dockfix.checks.files.FILES`. The finding's data
carries the path and what it must be; the fix is a single ``Chown`` or ``Chmod`` of that path
itself. A path that is a symbolic link is never changed (the plan item becomes manual and names
the link and its target): see the link policy in dockfix/fsops.py.
"""

from __future__ import annotations

from dockfix.changes import Chmod, Chown
from dockfix.checks.files import FILES
from dockfix.fixes import item
from dockfix.model import get_check
from dockfix.plan import PlanItem

SOCKET_NOTES = {
    "docker-sock": "dockerd (or systemd's docker.socket) creates the socket again when it restarts; to keep this, "
    "set SocketUser=root, SocketGroup=docker and SocketMode=0660 in docker.socket",
    "containerd-sock": "containerd creates its socket again when it restarts; the socket's group and mode come from "
    "the [grpc] section (uid, gid) of /etc/containerd/config.toml",
}


def _owner_fix(prefix: str):
    def build(ctx, finding) -> PlanItem:
        d = finding.data
        return item(finding, [Chown(path=d["path"], uid=d["want_uid"], gid=d["want_gid"])],
                    [SOCKET_NOTES[prefix]] if prefix in SOCKET_NOTES else [])

    return build


def _mode_fix(prefix: str):
    def build(ctx, finding) -> PlanItem:
        d = finding.data
        return item(finding, [Chmod(path=d["path"], mode=d["want_mode"])],
                    [SOCKET_NOTES[prefix]] if prefix in SOCKET_NOTES else [])

    return build


for _row in FILES:
    get_check(f"{_row[0]}-owner").fix(_owner_fix(_row[0]))
    get_check(f"{_row[0]}-mode").fix(_mode_fix(_row[0]))
