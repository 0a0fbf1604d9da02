"""CIS section 3: ownership and permissions of the daemon's configuration files and sockets.

Each item is one row of a table: which file (a function of the context that finds it the way a
real host keeps it), who must own it, and the most permissive mode allowed. A mode requirement
means "no permission bit beyond it": 0640 meets 0644, 0733 does not meet 0755.

A rootless daemon (``ctx.rootless``, sources/rootless.py) keeps its files in its user's folders:
the unit is the user's ``~/.config/systemd/user/docker.service``, /etc/docker is
``~/.config/docker``, the socket ``/run/user/UID/docker.sock``; a file in the user's home or
runtime folder must belong to that user (and the user's group), not to root. The option files of
init scripts (/etc/default/docker, /etc/sysconfig/docker) and docker.socket do not apply to it.
"""

from __future__ import annotations

import stat as stat_mod
from typing import Callable, Iterable

from dockfix.model import HIGH, MEDIUM, CheckError, Fix, Result, Safety, check
from dockfix.context import Context, NotApplicable
from dockfix.host import kind_of

Finder = Callable[[Context], Iterable[str]]


# ---------------------------------------------------------------------- where the files are
def unit(name: str) -> Finder:
    def find(ctx: Context) -> list[str]:
        r = ctx.rootless
        if r is not None:
            dirs = r.unit_dirs()
            for d in dirs:
                if ctx.host.lstat(f"{d}/{name}") is not None:
                    return [f"{d}/{name}"]
            if name == "docker.socket":
                raise NotApplicable(f"the {r.describe()} has no docker.socket unit: dockerd-rootless.sh makes its "
                                    f"socket {r.socket} itself")
            raise NotApplicable(f"{name}: no user unit of {r.user} in {', '.join(dirs)} (the {r.describe()} is "
                                "started by hand or by another service manager)")
        path = ctx.host.unit_file(name)
        if path is None:
            raise NotApplicable(f"{name} not found in /etc/systemd/system, /lib/systemd/system or /usr/lib/systemd/system")
        return [path]

    return find


#: What a rootless daemon has instead of root's paths (None: nothing, it does not apply).
ROOTLESS_INSTEAD = {"/etc/docker": "config_dir", "/etc/default/docker": None, "/etc/sysconfig/docker": None}


def fixed(path: str) -> Finder:
    def find(ctx: Context) -> list[str]:
        r = ctx.rootless
        if r is not None and path in ROOTLESS_INSTEAD:
            attr = ROOTLESS_INSTEAD[path]
            if attr is None:
                raise NotApplicable(f"the {r.describe()} does not read {path} (init scripts' options are for root's "
                                    f"daemon): its options come from {r.daemon_json} and its user unit")
            mine = getattr(r, attr)
            if ctx.host.lstat(mine) is None:
                raise NotApplicable(f"{mine} (the {r.describe()}'s {path}) does not exist on this host")
            return [mine]
        if ctx.host.lstat(path) is None:
            raise NotApplicable(f"{path} does not exist on this host")
        return [path]

    return find


def daemon_json(ctx: Context) -> list[str]:
    path = ctx.daemon_json_path()
    if ctx.host.lstat(path) is None:
        raise NotApplicable(f"{path} does not exist on this host")
    return [path]


def registry_certs(ctx: Context) -> list[str]:
    top = f"{ctx.rootless.config_dir}/certs.d" if ctx.rootless is not None else "/etc/docker/certs.d"
    if not ctx.host.is_dir(top):
        raise NotApplicable(f"{top} does not exist: no registry certificates")
    found = [p for p in ctx.host.walk(top) if p.endswith((".crt", ".cert"))]
    if not found:
        raise NotApplicable(f"no certificate files (*.crt, *.cert) under {top}")
    return found


def tls_file(key: str) -> Finder:
    def find(ctx: Context) -> list[str]:
        setting = ctx.daemon().get(key)
        if setting is None or not isinstance(setting.value, str):
            raise NotApplicable(f"the daemon is not configured with {key} ({ctx.daemon().sources()})")
        path = setting.value
        if ctx.host.lstat(path) is None:
            raise CheckError(f"{path}: named by {key} ({setting.source}) but does not exist")
        return [path]

    return find


def docker_socket(ctx: Context) -> list[str]:
    paths = []
    setting = ctx.daemon().get("hosts")
    for h in (setting.value if setting else []):
        if isinstance(h, str) and h.startswith("unix://"):
            paths.append(h[len("unix://"):])
    if not paths:
        paths = [ctx.rootless.socket] if ctx.rootless is not None else ["/var/run/docker.sock"]
    present = [p for p in paths if ctx.host.lstat(p) is not None]
    if not present:
        raise NotApplicable(f"{', '.join(paths)}: no Docker socket on this host (is dockerd running?)")
    return present


def containerd_sockets(ctx: Context) -> list[str]:
    if ctx.rootless is not None:  # the containerd dockerd-rootless.sh starts, in the user's exec root
        candidates = [ctx.rootless.containerd_socket]
    else:
        candidates = ["/run/containerd/containerd.sock", "/run/docker/containerd/containerd.sock"]
    argv = ctx.daemon_argv() or []
    for i, a in enumerate(argv):
        if a.startswith("--exec-root"):
            root = a.split("=", 1)[1] if "=" in a else (argv[i + 1] if i + 1 < len(argv) else "")
            if root:
                candidates.append(f"{root.rstrip('/')}/containerd/containerd.sock")
    present = [p for p in dict.fromkeys(candidates) if ctx.host.lstat(p) is not None]
    if not present and ctx.rootless is not None:
        raise NotApplicable(f"no containerd socket at {ctx.rootless.containerd_socket}")
    if not present:
        raise NotApplicable("no containerd socket at /run/containerd/containerd.sock or /run/docker/containerd/containerd.sock")
    return present


# ---------------------------------------------------------------------- the two kinds of rule
def group_id(ctx: Context, name: str) -> int | None:
    text = ctx.memo("etc_group", lambda: ctx.host.read_text("/etc/group") or "")
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 3 and parts[0] == name and parts[2].isdigit():
            return int(parts[2])
    return None


def _stat(ctx: Context, path: str):
    st = ctx.host.stat(path)
    if st is None:
        raise CheckError(f"{path}: dangling symbolic link")
    link = ctx.host.lstat(path)
    note = f" (through the link {path} -> {ctx.host.resolve(path)})" if link and stat_mod.S_ISLNK(link.st_mode) else ""
    return st, note


def owner_rule(find: Finder, group: str = "root") -> Callable[[Context], list[Result]]:
    def run(ctx: Context) -> list[Result]:
        want_gid = 0 if group == "root" else group_id(ctx, group)
        results = []
        for path in find(ctx):
            st, note = _stat(ctx, path)
            ok_gids = {want_gid} if want_gid is not None else {0}
            want = f"root:{group if want_gid is not None else 'root'}"
            want_uid, want_g = 0, want_gid if want_gid is not None else 0
            r = ctx.rootless
            if r is not None and r.owns(path):  # the user's own file: the user's, never root's
                want_uid, want_g, ok_gids = r.uid, r.gid, {r.gid}
                want = f"{r.owner} (the user of the {r.describe()})"
            data = {"path": path, "uid": st.st_uid, "gid": st.st_gid, "want_uid": want_uid, "want_gid": want_g}
            ev = f"owned by {st.st_uid}:{st.st_gid}{note}"
            if r is not None and r.owns(path) and st.st_uid == want_uid and r.is_subgid(st.st_gid):
                # made inside the user's namespace with one of its groups (the socket's "docker"):
                # a subordinate gid of the user, which no one on the host has
                ok_gids = {st.st_gid}
                ev += f" (a subordinate gid of {r.user}: a group inside its namespace)"
            if st.st_uid == want_uid and st.st_gid in ok_gids:
                results.append(Result.ok(f"{ev}, as required ({want})", subject=path, data=data))
            else:
                results.append(Result.fail(f"{ev}; must be {want}", subject=path, data=data))
        return results

    return run


def mode_rule(find: Finder, most: int, exact: bool = False, kind: str | None = None) -> Callable[[Context], list[Result]]:
    def run(ctx: Context) -> list[Result]:
        results = []
        for path in find(ctx):
            st, note = _stat(ctx, path)
            if kind == "socket" and not stat_mod.S_ISSOCK(st.st_mode):
                results.append(Result.error(f"{path} is a {kind_of(st.st_mode)}, not a socket", subject=path))
                continue
            mode = stat_mod.S_IMODE(st.st_mode)
            extra = mode & ~most
            data = {"path": path, "mode": mode, "want_mode": (mode & most) if not exact else most}
            ev = f"mode {mode:04o}{note}"
            if exact and mode != most:
                results.append(Result.fail(f"{ev}; must be {most:04o}", subject=path, data=data))
            elif extra:
                results.append(Result.fail(f"{ev}; allows {extra:04o} beyond {most:04o}", subject=path, data=data))
            else:
                results.append(Result.ok(f"{ev}, within {most:04o}", subject=path, data=data))
        return results

    return run


def _owner_text(what: str, owner: str) -> dict:
    return dict(
        explanation=f"{what} decides how the Docker daemon runs, and the daemon runs as root. If another user "
        f"owns it, that user can change the daemon's behaviour, and through it gain root on the host. Only root "
        f"should own it ({owner}).",
        remediation=f"Give {what} to {owner} with chown.",
    )


def _mode_text(what: str, mode: str) -> dict:
    return dict(
        explanation=f"{what} must not be writable by users other than its owner: whoever can change it changes "
        f"what the root-owned daemon does. Keep its mode at {mode} or more restrictive.",
        remediation=f"Remove the extra permission bits from {what} with chmod (at most {mode}).",
    )


# ---------------------------------------------------------------------- the table
FILES: list[tuple] = [
    # id prefix, owner CIS, mode CIS, description, finder, owner group, max mode, exact mode, severity
    ("docker-service", "3.1", "3.2", "the docker.service unit file", unit("docker.service"), "root", 0o644, False, HIGH),
    ("docker-socket-unit", "3.3", "3.4", "the docker.socket unit file", unit("docker.socket"), "root", 0o644, False, HIGH),
    ("etc-docker", "3.5", "3.6", "the /etc/docker directory", fixed("/etc/docker"), "root", 0o755, False, HIGH),
    ("registry-certs", "3.7", "3.8", "registry certificate files under /etc/docker/certs.d", registry_certs, "root", 0o444, False, MEDIUM),
    ("tls-ca-cert", "3.9", "3.10", "the daemon's TLS CA certificate", tls_file("tlscacert"), "root", 0o444, False, HIGH),
    ("tls-server-cert", "3.11", "3.12", "the daemon's TLS server certificate", tls_file("tlscert"), "root", 0o444, False, HIGH),
    ("tls-server-key", "3.13", "3.14", "the daemon's TLS server key", tls_file("tlskey"), "root", 0o400, True, HIGH),
    ("docker-sock", "3.15", "3.16", "the Docker socket", docker_socket, "docker", 0o660, False, HIGH),
    ("daemon-json", "3.17", "3.18", "daemon.json", daemon_json, "root", 0o644, False, HIGH),
    ("etc-default-docker", "3.19", "3.20", "/etc/default/docker", fixed("/etc/default/docker"), "root", 0o644, False, MEDIUM),
    ("etc-sysconfig-docker", "3.22", "3.21", "/etc/sysconfig/docker", fixed("/etc/sysconfig/docker"), "root", 0o644, False, MEDIUM),
    ("containerd-sock", "3.23", "3.24", "the containerd socket", containerd_sockets, "root", 0o660, False, HIGH),
]


_MODE_IMPACT = {
    "docker-sock": "Users outside the docker group can no longer talk to the daemon through the socket (which gave "
                   "them root); members of the docker group keep access.",
}


def _declare(prefix, cis_owner, cis_mode, what, find, group, most, exact, severity) -> None:
    owner = f"root:{group}"
    mode = f"{most:03o}" if most > 0o77 else f"{most:04o}"
    ls = "ls -ld" if prefix == "etc-docker" else "ls -l"
    manual_stat = f"stat -c '%U:%G %a %n' <path>   # {ls} works too"
    check(
        f"{prefix}-owner", cis=cis_owner, severity=severity, subject=_SUBJECTS[prefix],
        fix=Fix(Safety.SAFE, f"Only root (and the group the benchmark names) can change {what}; nothing the daemon "
                "does changes."),
        title=f"Ownership of {what} is {owner}",
        manual=manual_stat.replace("<path>", _manual_path(prefix)),
        **_owner_text(what, owner),
    )(owner_rule(find, group))
    check(
        f"{prefix}-mode", cis=cis_mode, severity=severity, subject=_SUBJECTS[prefix],
        fix=Fix(Safety.SAFE, _MODE_IMPACT.get(prefix, f"Users other than the owner lose the extra access to {what}; "
                                                      "the daemon keeps working as before.")),
        title=f"Permissions of {what} are {'exactly' if exact else 'at most'} {mode}",
        manual=manual_stat.replace("<path>", _manual_path(prefix)),
        **_mode_text(what, mode),
    )(mode_rule(find, most, exact, kind="socket" if prefix.endswith("-sock") else None))


#: Subject of a skip or error that has no file to name (the file was not found).
_SUBJECTS = {
    "docker-service": "docker.service", "docker-socket-unit": "docker.socket", "etc-docker": "/etc/docker",
    "registry-certs": "/etc/docker/certs.d", "tls-ca-cert": "tlscacert", "tls-server-cert": "tlscert",
    "tls-server-key": "tlskey", "docker-sock": "/var/run/docker.sock", "daemon-json": "/etc/docker/daemon.json",
    "etc-default-docker": "/etc/default/docker", "etc-sysconfig-docker": "/etc/sysconfig/docker",
    "containerd-sock": "/run/containerd/containerd.sock",
}


def _manual_path(prefix: str) -> str:
    return {
        "docker-service": "$(systemctl show -p FragmentPath --value docker.service)",
        "docker-socket-unit": "$(systemctl show -p FragmentPath --value docker.socket)",
        "etc-docker": "/etc/docker",
        "registry-certs": "/etc/docker/certs.d/*/*.crt",
        "tls-ca-cert": "<tlscacert from daemon.json or dockerd's command line>",
        "tls-server-cert": "<tlscert from daemon.json or dockerd's command line>",
        "tls-server-key": "<tlskey from daemon.json or dockerd's command line>",
        "docker-sock": "/var/run/docker.sock",
        "daemon-json": "/etc/docker/daemon.json",
        "etc-default-docker": "/etc/default/docker",
        "etc-sysconfig-docker": "/etc/sysconfig/docker",
        "containerd-sock": "/run/containerd/containerd.sock /run/docker/containerd/containerd.sock",
    }[prefix]


for _row in FILES:
    _declare(*_row)
