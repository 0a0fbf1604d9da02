"""Rootless Docker daemons: whose they are, and where each keeps its socket, configuration,
data and unit.

A rootless dockerd (``dockerd-rootless.sh``, usually started by the user unit that
``dockerd-rootless-setuptool.sh install`` writes) belongs to one ordinary user and keeps
everything in that user's folders::

    socket       $XDG_RUNTIME_DIR/docker.sock            /run/user/UID/docker.sock
    daemon.json  $XDG_CONFIG_HOME/docker/daemon.json     ~/.config/docker/daemon.json
    certs.d      $XDG_CONFIG_HOME/docker/certs.d         ~/.config/docker/certs.d
    data root    $XDG_DATA_HOME/docker                   ~/.local/share/docker
    exec root    $XDG_RUNTIME_DIR/docker                 (containerd's socket below it)
    unit         ~/.config/systemd/user/docker.service   (a user unit)

They are found three ways (:func:`find_rootless`): per-user sockets ``/run/user/*/docker.sock``,
user units ``docker.service`` in the ``~/.config/systemd/user`` of ordinary users (uid 1000-59999,
homes from ``/etc/passwd``), and, on the live machine, ``dockerd-rootless.sh`` processes and dockerd
processes of ordinary users (their owner from ``/proc/PID/status``).
"""

from __future__ import annotations

import os
import re
import stat as stat_mod
from dataclasses import dataclass, field
from typing import Any

#: Where systemd looks for a user's units, the user's own folder first.
USER_UNIT_DIRS = ("{home}/.config/systemd/user", "/etc/systemd/user", "/usr/local/lib/systemd/user",
                  "/usr/lib/systemd/user", "/lib/systemd/user")
_SOCKET = re.compile(r"^/run/user/(\d+)/docker\.sock$")


@dataclass(frozen=True)
class Account:
    user: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class RootlessDaemon:
    """One user's rootless daemon and its files (host paths)."""

    uid: int
    gid: int
    user: str
    home: str | None  # None when the user is not in /etc/passwd
    group: str = ""  # name of the user's primary group (its number when unknown)
    found_by: tuple[str, ...] = field(default=(), compare=False)
    #: the user's subordinate gid ranges (start, count) from /etc/subgid: the ids its namespace's
    #: groups have on the host (the socket's group is "docker" inside the namespace, say)
    subgids: tuple[tuple[int, int], ...] = field(default=(), compare=False)

    def is_subgid(self, gid: int) -> bool:
        return any(start <= gid < start + count for start, count in self.subgids)

    @property
    def runtime_dir(self) -> str:
        return f"/run/user/{self.uid}"

    @property
    def socket(self) -> str:
        return f"{self.runtime_dir}/docker.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def config_dir(self) -> str:
        return f"{self.home}/.config/docker" if self.home else f"~{self.user}/.config/docker"

    @property
    def daemon_json(self) -> str:
        return f"{self.config_dir}/daemon.json"

    @property
    def data_root(self) -> str:
        return f"{self.home}/.local/share/docker" if self.home else f"~{self.user}/.local/share/docker"

    @property
    def exec_root(self) -> str:
        return f"{self.runtime_dir}/docker"

    @property
    def containerd_socket(self) -> str:
        return f"{self.exec_root}/containerd/containerd.sock"

    @property
    def owner(self) -> str:
        return f"{self.user}:{self.group or self.gid}"

    def describe(self) -> str:
        return f"rootless daemon of {self.user} (uid {self.uid})"

    def unit_dirs(self) -> list[str]:
        return [d.format(home=self.home) for d in USER_UNIT_DIRS if self.home or "{home}" not in d]

    def owns(self, path: str) -> bool:
        """True for the user's own paths (home and runtime folder): these must belong to the user."""
        roots = [self.runtime_dir] + ([self.home] if self.home and self.home != "/" else [])
        return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def accounts(host: Any) -> dict[int, Account]:
    """{uid: Account} from the host's /etc/passwd."""
    out: dict[int, Account] = {}
    try:
        text = host.read_text("/etc/passwd") or ""
    except Exception:  # noqa: BLE001 - unreadable: no accounts known
        return out
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 7 and parts[2].isdigit() and parts[3].isdigit():
            out.setdefault(int(parts[2]), Account(parts[0], int(parts[2]), int(parts[3]), parts[5] or "/"))
    return out


def group_names(host: Any) -> dict[int, str]:
    out: dict[int, str] = {}
    try:
        text = host.read_text("/etc/group") or ""
    except Exception:  # noqa: BLE001
        return out
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 3 and parts[2].isdigit():
            out.setdefault(int(parts[2]), parts[0])
    return out


def socket_uid(url: str) -> int | None:
    """The uid of a per-user socket URL (``unix:///run/user/1000/docker.sock``), else None."""
    if not url.startswith("unix://"):
        return None
    path = os.path.normpath(url[len("unix://"):])
    if path.startswith("/var/run/"):
        path = "/run/" + path[len("/var/run/"):]
    m = _SOCKET.match(path)
    return int(m.group(1)) if m and int(m.group(1)) != 0 else None


def subordinate_ids(host: Any, path: str, user: str, uid: int) -> tuple[tuple[int, int], ...]:
    """(start, count) ranges of ``user`` in /etc/subuid or /etc/subgid (by name or number)."""
    try:
        text = host.read_text(path) or ""
    except Exception:  # noqa: BLE001
        return ()
    out = []
    for line in text.splitlines():
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[0] in (user, str(uid)) and parts[1].isdigit() and parts[2].isdigit():
            out.append((int(parts[1]), int(parts[2])))
    return tuple(out)


def daemon_of(host: Any, uid: int, found_by: tuple[str, ...] = (),
              users: dict[int, Account] | None = None, groups: dict[int, str] | None = None) -> RootlessDaemon:
    users = accounts(host) if users is None else users
    groups = group_names(host) if groups is None else groups
    acct = users.get(uid)
    if acct is None:
        return RootlessDaemon(uid, uid, str(uid), None, str(uid), found_by,
                              subordinate_ids(host, "/etc/subgid", str(uid), uid))
    return RootlessDaemon(uid, acct.gid, acct.user, acct.home, groups.get(acct.gid, str(acct.gid)), found_by,
                          subordinate_ids(host, "/etc/subgid", acct.user, uid))


def rootless_for_url(host: Any, url: str) -> RootlessDaemon | None:
    """The rootless daemon a --docker-host URL names (a per-user socket), or None."""
    uid = socket_uid(url or "")
    return daemon_of(host, uid, ("--docker-host",)) if uid is not None else None


def rootless_of_path(host: Any, path: str) -> RootlessDaemon | None:
    """The rootless daemon whose configuration ``path`` is (``~USER/.config/docker/...``), or None."""
    users = accounts(host)
    for uid, acct in users.items():
        if uid != 0 and acct.home not in ("", "/") and path.startswith(acct.home.rstrip("/") + "/.config/docker/"):
            return daemon_of(host, uid, ("path",), users)
    return None


def find_rootless(host: Any, proc: str = "/proc") -> list[RootlessDaemon]:
    """Every rootless daemon on the host: by socket, by user unit and (live host) by process."""
    found: dict[int, list[str]] = {}
    users = accounts(host)
    for name in _listdir(host, "/run/user"):
        if name.isdigit() and int(name) != 0:
            try:
                st = host.lstat(f"/run/user/{name}/docker.sock")
            except Exception:  # noqa: BLE001 - another user's folder we may not read (scan without root)
                st = None
            if st is not None and stat_mod.S_ISSOCK(st.st_mode):
                found.setdefault(int(name), []).append(f"socket /run/user/{name}/docker.sock")
    for uid, acct in users.items():
        # ordinary users only (login.defs' UID_MIN..UID_MAX): system accounts and nobody are found by
        # socket or process if ever, and their homes (/nonexistent, /var/...) are not looked into
        if not 1000 <= uid < 60000 or not acct.home or acct.home == "/":
            continue
        unit = f"{acct.home}/.config/systemd/user/docker.service"
        try:
            st = host.lstat(unit)
        except Exception:  # noqa: BLE001 - an unreadable home is not a daemon
            st = None
        if st is not None:
            found.setdefault(uid, []).append(f"user unit {unit}")
    if getattr(host, "is_live", False):
        for pid, uid, what in rootless_processes(proc):
            found.setdefault(uid, []).append(f"{what} process {pid}")
    groups = group_names(host)
    return [daemon_of(host, uid, tuple(dict.fromkeys(how)), users, groups) for uid, how in sorted(found.items())]


def rootless_processes(proc: str = "/proc") -> list[tuple[int, int, str]]:
    """(pid, uid, what) of dockerd-rootless.sh processes and of dockerd processes of ordinary users."""
    out = []
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return out
    for pid in pids:
        try:
            with open(f"{proc}/{pid}/comm", "rb") as f:
                comm = f.read().decode("utf-8", "replace").strip()
        except OSError:
            continue
        if comm not in ("dockerd", "dockerd-rootles", "rootlesskit"):  # comm is cut at 15 characters
            continue
        uid = _uid_of(proc, pid)
        if uid is None or uid == 0:
            continue
        if comm == "dockerd":
            out.append((int(pid), uid, "dockerd"))
        elif comm == "dockerd-rootles" or b"dockerd-rootless" in _cmdline(proc, pid):
            out.append((int(pid), uid, "dockerd-rootless.sh"))
    return sorted(out)


def _uid_of(proc: str, pid: str) -> int | None:
    try:
        with open(f"{proc}/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Uid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cmdline(proc: str, pid: str) -> bytes:
    try:
        with open(f"{proc}/{pid}/cmdline", "rb") as f:
            return f.read(4096)
    except OSError:
        return b""


def _listdir(host: Any, path: str) -> list[str]:
    try:
        return host.listdir(path)
    except Exception:  # noqa: BLE001
        return []
