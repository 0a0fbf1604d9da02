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

import os
import shutil
import subprocess
import tempfile
from typing import Any

from dockfix.checks import daemon as daemon_checks
from dockfix.fixes import ManualFix, item
from dockfix.sources.jsonedit import JsonEditError, remove_member, set_member
from dockfix.changes import WriteFile, parents_to_make, staged_state, staged_text
from dockfix.model import CheckError, Undetermined
from dockfix.sources.daemon_config import parse_daemon_json
from dockfix.plan import PlanItem

#: daemon.json keys dockerd applies on reload (SIGHUP); anything else needs a restart.
RELOADABLE = {"debug", "labels", "live-restore", "insecure-registries", "registry-mirrors", "max-concurrent-downloads",
              "max-concurrent-uploads", "max-download-attempts", "shutdown-timeout", "runtimes", "default-runtime",
              "authorization-plugins", "features"}


def daemon_action(key: str) -> str:
    return "reload" if key in RELOADABLE else "restart"


def _where_else(ctx, key: str) -> str | None:
    s = ctx.daemon().flag_setting(key)
    if s is None:
        return None
    return s.source if s.source else f"{s.location}"


def edit_daemon_json(ctx, finding, key: str, value: Any = None, remove: bool = False, notes: list[str] | None = None) -> PlanItem:
    """A plan item that sets (or removes) one key of daemon.json and nothing else."""
    other = _where_else(ctx, key)
    if other:
        raise ManualFix(f"{key} is set by a flag on dockerd's command line ({other}); change it there. Setting it "
                        f"in daemon.json as well would stop dockerd from starting (an option may be given only once).")
    d = ctx.daemon()
    if d.unknown:
        raise ManualFix(f"dockerd's command line is unknown ({d.unknown}): a flag may already set {key}, and "
                        f"setting it in daemon.json as well would stop dockerd from starting")
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
    refused = check_staged(ctx, path, new)
    if refused:
        raise ManualFix(refused)
    action = daemon_action(key)
    return item(finding, changes, notes, daemon_action=action)


def check_staged(ctx, path: str, new: str) -> str | None:
    """Why dockerd would refuse the changed daemon.json (None: it would take it).

    dockfix's own checks first (types dockerd insists on, a key also given as a flag); then, where
    the dockerd at hand has ``--validate`` (Docker Engine 23 and newer), that dockerd itself on a
    staged copy, with the effective command line's flags, so it sees flag conflicts too."""
    try:
        staged = parse_daemon_json(new, path)
    except CheckError as e:
        return f"the changed {path} would not be accepted: {e}"
    d = ctx.daemon()
    both = sorted(k for k in staged if k in d.from_cmdline and k != "config-file")
    if both:
        return (f"{', '.join(both)} would be set both as a flag ({d.from_cmdline[both[0]].source}) and in {path}: "
                "dockerd would refuse to start")
    def after(key: str):
        s = staged.get(key) or d.from_cmdline.get(key)
        return s.value if s is not None else None

    if after("icc") is False and after("iptables") is False:
        return ("icc would be false while iptables is false: dockerd refuses to start (\"ICC=false uses iptables to "
                "function\"); enable iptables first (2.4)")
    exe = validating_dockerd(ctx)
    if exe is None:
        return None
    flags: list[str] = []
    skip = False
    for a in (x.text for x in d.cmd.args) if d.cmd else ():
        if skip:
            skip = False
            continue
        if a == "--config-file":
            skip = True
            continue
        if a.startswith("--config-file="):
            continue
        flags.append(a)
    with tempfile.TemporaryDirectory(prefix="dockfix-validate-") as tmp:
        staged_path = os.path.join(tmp, "daemon.json")
        with open(staged_path, "w", encoding="utf-8") as f:
            f.write(new)
        try:
            r = subprocess.run([exe, "--validate", "--config-file", staged_path, *flags], capture_output=True,
                               text=True, timeout=30, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"{exe} --validate could not be run ({e}); not changing {path} unvalidated"
    if r.returncode != 0:
        msg = (r.stderr.strip() or r.stdout.strip()).splitlines()
        why = (msg[-1] if msg else f"exit {r.returncode}").replace(staged_path, path)
        return f"dockerd --validate refuses the changed {path}: {why}"
    return None


_VALIDATES: dict[str, bool] = {}


def validating_dockerd(ctx) -> str | None:
    """The dockerd that can validate daemon.json for this host, or None.

    On the live host, the installed dockerd when it has ``--validate`` (Engine 23+; Debian 12's 20.10
    has not). ``DOCKFIX_DOCKERD`` names another dockerd binary (tests use Docker 28 on trees)."""
    exe = os.environ.get("DOCKFIX_DOCKERD") or (shutil.which("dockerd") if ctx.host.is_live else None)
    if not exe:
        return None
    if exe not in _VALIDATES:
        try:
            r = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
            _VALIDATES[exe] = "--validate" in r.stdout + r.stderr
        except (OSError, subprocess.TimeoutExpired):
            _VALIDATES[exe] = False
    return exe if _VALIDATES[exe] else None


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
    if (finding.data or {}).get("key") == "debug":  # debug mode (-D or "debug": true) is what fails
        return edit_daemon_json(ctx, finding, "debug", remove=True)
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


@daemon_checks.live_restore.fix
def _live_restore(ctx, finding):
    try:
        swarm = daemon_checks.swarm_node(ctx)
    except Undetermined as e:
        raise ManualFix(f"cannot tell whether this host is a swarm node: {e}") from None
    if swarm:
        raise ManualFix(f"this host is a swarm node ({swarm}): live-restore cannot be used with swarm mode")
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
