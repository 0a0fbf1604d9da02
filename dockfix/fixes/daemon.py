"""Section 2: daemon.json hardening, for the settings a host can take without site-specific values.

Each fix edits one key of daemon.json (the file dockerd reads: ``--config-file`` or
/etc/docker/daemon.json) and keeps the rest of the file as it was: key order, indentation and
spacing (see dockfix/sources/jsonedit.py). A missing daemon.json is created root:root 0644 (a
rootless daemon's ~/.config/docker/daemon.json, and the folders made for it, belong to its user
instead: never root). When the
setting comes from dockerd's command line or /etc/default/docker instead, the fix is manual:
dockerd refuses to start when one option is given both as a flag and in daemon.json.

When dockerd picks a change up (Docker's documented reload list: debug, labels, live-restore,
insecure-registries, registry-mirrors, max-concurrent-*, shutdown-timeout, runtimes,
authorization-plugins, features): ``reload`` (SIGHUP, ``systemctl reload docker``). Every other
key needs a ``restart``. dockfix reloads or restarts only with ``--restart-daemon``, through systemd.

Not fixed here, on purpose: 2.1 rootless, 2.5's registry TLS, 2.7 TLS certificates, 2.8 ulimits,
2.9 userns-remap (existing images and volumes change owner), 2.12 authorization plugins,
2.13 remote logging, 2.17 a custom seccomp profile: each needs the site's own values or a
migration. 2.10 cgroup-parent is a confirmation (the check is manual), not a fix.
"""

from __future__ import annotations

from typing import Any

from dockfix.checks import daemon as daemon_checks
from dockfix.fixes import ManualFix, item
from dockfix.sources.jsonedit import JsonEditError, remove_member, set_member
from dockfix.changes import WriteFile, parents_to_make, staged_state, staged_text
from dockfix.plan import PlanItem

#: daemon.json keys dockerd applies on reload (SIGHUP); anything else needs a restart.
RELOADABLE = {"debug", "labels", "live-restore", "insecure-registries", "registry-mirrors", "max-concurrent-downloads",
              "max-concurrent-uploads", "max-download-attempts", "shutdown-timeout", "runtimes", "default-runtime",
              "authorization-plugins", "features"}


def daemon_action(key: str) -> str:
    return "reload" if key in RELOADABLE else "restart"


def _where_else(ctx, key: str) -> str | None:
    d = ctx.daemon()
    for src in (d.from_cmdline, d.from_files):
        if key in src:
            s = src[key]
            return f"{s.location}" if s.location else s.source
    return None


def edit_daemon_json(ctx, finding, key: str, value: Any = None, remove: bool = False, notes: list[str] | None = None) -> PlanItem:
    """A plan item that sets (or removes) one key of daemon.json and nothing else."""
    other = _where_else(ctx, key)
    if other:
        raise ManualFix(f"{key} is set by dockerd's command line or options file ({other}); change it there. Setting it "
                        f"in daemon.json as well would stop dockerd from starting (an option may be given only once).")
    path = ctx.daemon_json_path()
    text = staged_text(ctx, path)
    try:
        if remove:
            if text is None:
                raise ManualFix(f"{path} does not exist; {key} is not set there")
            new = remove_member(text, key)
        else:
            new = set_member(text, key, value, default_indent=_indent(text))
    except JsonEditError as e:
        raise ManualFix(f"{path}: cannot edit ({e})") from None
    changes: list = []
    if text is None:
        r = ctx.rootless
        uid, gid = (r.uid, r.gid) if r is not None and r.owns(path) else (0, 0)
        parents = parents_to_make(ctx, path)
        for d in parents:
            if r is not None and r.owns(d.path):
                d.uid, d.gid = uid, gid
        changes += parents
        changes.append(WriteFile(path=path, after=new.encode(), mode=0o644, uid=uid, gid=gid))
    else:
        st = staged_state(ctx, path)
        changes.append(WriteFile(path=path, after=new.encode(), mode=st.mode, uid=st.uid, gid=st.gid))
    action = daemon_action(key)
    return item(finding, changes, notes, daemon_action=action)


def _indent(text: str | None) -> str:
    if text:
        for line in text.splitlines()[1:]:
            stripped = line.lstrip(" \t")
            if stripped.startswith('"'):
                return line[: len(line) - len(stripped)]
    return "  "


@daemon_checks.icc.fix
def _icc(ctx, finding):
    return edit_daemon_json(ctx, finding, "icc", False)


@daemon_checks.log_level.fix
def _log_level(ctx, finding):
    return edit_daemon_json(ctx, finding, "log-level", "info")


@daemon_checks.iptables.fix
def _iptables(ctx, finding):
    return edit_daemon_json(ctx, finding, "iptables", True)


@daemon_checks.insecure_registries.fix
def _insecure(ctx, finding):
    return edit_daemon_json(ctx, finding, "insecure-registries", remove=True)


@daemon_checks.dm_basesize.fix
def _dm_basesize(ctx, finding):
    opts = (ctx.daemon().from_json.get("storage-opts"))
    keep = [o for o in (opts.value if opts else []) if not str(o).startswith("dm.basesize")]
    if keep:
        return edit_daemon_json(ctx, finding, "storage-opts", keep)
    return edit_daemon_json(ctx, finding, "storage-opts", remove=True)


@daemon_checks.no_new_privileges.fix
def _nnp(ctx, finding):
    return edit_daemon_json(ctx, finding, "no-new-privileges", True)


def _in_swarm(ctx) -> bool:
    return ctx.host.lstat("/var/lib/docker/swarm/docker-state.json") is not None


@daemon_checks.live_restore.fix
def _live_restore(ctx, finding):
    if _in_swarm(ctx):
        raise ManualFix("this host is a swarm node (/var/lib/docker/swarm/docker-state.json): live-restore cannot be "
                        "used with swarm mode")
    return edit_daemon_json(ctx, finding, "live-restore", True)


@daemon_checks.userland_proxy.fix
def _userland_proxy(ctx, finding):
    return edit_daemon_json(ctx, finding, "userland-proxy", False)


@daemon_checks.seccomp_profile.fix
def _seccomp(ctx, finding):
    if ctx.daemon().get("seccomp-profile") is None:
        raise ManualFix("seccomp is reported missing by the engine, not disabled in daemon.json: the kernel or the "
                        "dockerd build lacks seccomp support")
    return edit_daemon_json(ctx, finding, "seccomp-profile", remove=True)


@daemon_checks.experimental.fix
def _experimental(ctx, finding):
    return edit_daemon_json(ctx, finding, "experimental", False)
