"""Section 3: owner and mode of the daemon's files, directories and sockets.

One owner fix and one mode fix per row of :data:`dockfix.checks.files.FILES`. The finding's data
carries the path and what it must be; the fix is a single ``Chown`` or ``Chmod`` of that path
itself. A path that is a symbolic link is never changed (the plan item becomes manual and names
the link and its target): see the link policy in dockfix/fsops.py.
"""

from __future__ import annotations

from dockfix.checks.files import FILES
from dockfix.fixes import SAFE
from dockfix.model import REGISTRY
from dockfix.plan import Chmod, Chown, PlanItem

SOCKET_NOTES = {
    "docker-sock": "dockerd (or systemd's docker.socket) creates the socket again when it restarts; to keep this, "
    "set SocketUser=root, SocketGroup=docker and SocketMode=0660 in docker.socket",
    "containerd-sock": "containerd creates its socket again when it restarts; the socket's group and mode come from "
    "the [grpc] section (uid, gid) of /etc/containerd/config.toml",
}


def _owner_fix(prefix: str, what: str):
    def build(ctx, finding) -> PlanItem:
        d = finding.data
        item = PlanItem(finding.id, finding.subject, finding.title, SAFE, "", [Chown(path=d["path"], uid=d["want_uid"], gid=d["want_gid"])])
        if prefix in SOCKET_NOTES:
            item.notes.append(SOCKET_NOTES[prefix])
        return item

    return build


def _mode_fix(prefix: str, what: str):
    def build(ctx, finding) -> PlanItem:
        d = finding.data
        item = PlanItem(finding.id, finding.subject, finding.title, SAFE, "", [Chmod(path=d["path"], mode=d["want_mode"])])
        if prefix in SOCKET_NOTES:
            item.notes.append(SOCKET_NOTES[prefix])
        return item

    return build


def _impact(what: str, kind: str) -> str:
    if kind == "owner":
        return f"Only root (and the group the benchmark names) can change {what}; nothing the daemon does changes."
    return f"Users other than the owner lose the extra access to {what}; the daemon keeps working as before."


for _row in FILES:
    _prefix, _what = _row[0], _row[3]
    _owner, _mode = REGISTRY[f"{_prefix}-owner"], REGISTRY[f"{_prefix}-mode"]
    _impact_owner = _impact(_what, "owner")
    _impact_mode = _impact(_what, "mode")
    if _prefix == "docker-sock":
        _impact_mode = ("Users outside the docker group can no longer talk to the daemon through the socket (which "
                        "gave them root); members of the docker group keep access.")
    _owner.fix(safety=SAFE, impact=_impact_owner)(_owner_fix(_prefix, _what))
    _mode.fix(safety=SAFE, impact=_impact_mode)(_mode_fix(_prefix, _what))
