"""CIS section 2: the daemon's configuration (daemon.json, dockerd's command line, docker info)."""

from __future__ import annotations

from typing import Any

from dockfix.sources.daemon_config import Setting, normalize_host
from dockfix.model import HIGH, INFO, LOW, MEDIUM, CheckError, Fix, Location, Result, Safety, Undetermined, check
from dockfix.context import Context, NotApplicable


def option(ctx: Context, key: str, default: Any) -> tuple[Any, str, Location | None]:
    """(effective value, evidence, location) of a daemon option.

    Raises Undetermined (-> manual) when the value would be a default but dockerd's command line
    is unknown, and when a flag and daemon.json both set it (dockerd refuses to start)."""
    d = ctx.daemon()
    s: Setting | None = d.get(key)
    if d.problems:
        raise Undetermined(f"dockerd would not start with its command line: {'; '.join(d.problems)}")
    if key in d.conflicts:
        flag, js = d.from_cmdline[key], d.from_json[key]
        raise Undetermined(f"{key} is set both on dockerd's command line ({flag.source}) and in daemon.json "
                           f"({js.location}): dockerd refuses to start with this configuration")
    if s is None:
        if d.unknown:
            raise Undetermined(f"{key} is not set in {d.json_path}, and dockerd's command line is unknown: {d.unknown}; "
                               f"look at how dockerd is started (ps -o args= -C dockerd)")
        return default, f"{key} is not set in {d.sources()} (default: {_show(default)})", None
    return s.value, s.describe(key), s.location


def _show(v: Any) -> str:
    import json

    return v if isinstance(v, str) else json.dumps(v)


def _result(ok: bool, evidence: str, loc: Location | None, subject: str, **data) -> Result:
    r = Result.ok if ok else Result.fail
    return r(evidence, location=loc, subject=subject, data=data)


def _daemon_subject(ctx: Context) -> str:
    return ctx.daemon_json_path()


def engine_version(ctx: Context) -> tuple[tuple[int, int] | None, str]:
    """((major, minor), as reported) of the scanned engine's version, or (None, "") when unknown."""
    if ctx.engine is None:
        return None, ""
    try:
        shown = str(ctx.info().get("ServerVersion") or "")
    except CheckError:
        return None, ""
    import re

    m = re.match(r"v?(\d+)\.(\d+)", shown)
    return ((int(m.group(1)), int(m.group(2))) if m else None), shown


def bool_option(key: str, want: bool, default: bool):
    def run(ctx: Context) -> Result:
        value, ev, loc = option(ctx, key, default)
        return _result(value is want, ev, loc, _daemon_subject(ctx), key=key, want=want)

    return run


@check(
    "daemon-rootless", cis="2.1", severity=INFO, subject="dockerd",
    title="The Docker daemon runs as a non-root user, if possible",
    explanation="A daemon running as root turns any escape from a container into root on the host. Rootless "
    "mode runs dockerd and its containers inside a user namespace of an ordinary user, which limits the damage, "
    "but it changes paths, networking and storage, so it is a decision for the admin rather than a setting to flip.",
    manual="ps -o user= -C dockerd    # root means the daemon is not rootless",
    remediation="Consider rootless mode (dockerd-rootless-setuptool.sh install) for hosts whose workloads allow it.",
)
def daemon_rootless(ctx: Context) -> Result:
    r = ctx.rootless
    if r is not None:
        return Result.ok(f"{r.describe()}: socket {r.socket}, configuration {r.daemon_json}", subject="dockerd")
    if ctx.engine is not None:
        try:
            if any("name=rootless" in str(o) for o in ctx.info().get("SecurityOptions") or []):
                return Result.ok("the engine reports rootless mode (docker info SecurityOptions: name=rootless)",
                                 subject="dockerd")
        except CheckError:
            pass
    others = ctx.rootless_daemons()
    also = ""
    if others:
        also = "; rootless daemons on this host (each is its own subject: dockfix scan covers them when no engine " \
               "is chosen, --docker-host URL selects one): " + ", ".join(
            f"{d.user} (uid {d.uid}, {d.url}; found by {', '.join(d.found_by)})" for d in others)
    return Result.manual("whether rootless mode fits this host's workloads is a judgment: look at who runs dockerd "
                         f"(ps -o user= -C dockerd){also}", subject="dockerd")


@check(
    "icc", cis="2.2", severity=MEDIUM,
    fix=Fix(Safety.DISRUPTIVE,
        "After dockerd restarts, containers on the default bridge can no longer reach each other "
        "unless linked; containers on user-defined networks are not affected."),
    title="Traffic between containers on the default bridge is restricted (icc: false)",
    explanation="By default every container on the default bridge can reach every other one on any port. A "
    "compromised container can then probe and attack its neighbours. With icc off, containers talk only over "
    "links or user-defined networks that were set up on purpose.",
    manual="grep -n '\"icc\"' /etc/docker/daemon.json; ps -o args= -C dockerd | grep -o -- '--icc=[a-z]*'",
    remediation='Set "icc": false in /etc/docker/daemon.json and restart dockerd; put containers that must talk '
    "to each other on a user-defined network.",
)
def icc(ctx: Context) -> Result:
    return bool_option("icc", False, True)(ctx)


@check(
    "log-level", cis="2.3", severity=LOW,
    fix=Fix(Safety.SAFE,
        "The daemon logs at 'info' after it restarts: the events an investigation needs, without "
        "debug output; no container is affected."),
    title="The daemon's logging level is 'info'",
    explanation="At 'info' the daemon records the events an investigation needs without the volume of 'debug', "
    "which can also write sensitive request details to the logs. Lower levels ('warn', 'error') drop events that "
    "matter after an incident.",
    manual="grep -n log-level /etc/docker/daemon.json; ps -o args= -C dockerd | grep -o -- '--log-level[= ][a-z]*'",
    remediation='Remove log-level or set "log-level": "info" in daemon.json (the daemon reloads it on SIGHUP).',
)
def log_level(ctx: Context) -> Result:
    d = ctx.daemon()
    debug = d.get("debug")
    if debug is not None and debug.value is True and "debug" not in d.conflicts:
        return Result.fail(f"{debug.describe('debug')}: the daemon logs at debug level", location=debug.location,
                           subject=_daemon_subject(ctx), data={"key": "debug"})
    value, ev, loc = option(ctx, "log-level", "info")
    return _result(value == "info", ev, loc, _daemon_subject(ctx), key="log-level", want="info")


@check(
    "iptables", cis="2.4", severity=MEDIUM,
    fix=Fix(Safety.DISRUPTIVE,
        "After dockerd restarts it writes its own iptables rules again; a firewall managed "
        "by hand or by another tool may need to make room for them."),
    title="Docker is allowed to manage iptables",
    explanation="When dockerd manages iptables, the network rules always match the containers that run. With "
    "iptables turned off, someone must keep the rules in step by hand, and published ports or isolation between "
    "networks are easily left wrong.",
    manual="grep -n iptables /etc/docker/daemon.json; ps -o args= -C dockerd | grep -o -- '--iptables=[a-z]*'",
    remediation='Remove "iptables": false from daemon.json (or --iptables=false from dockerd\'s command line) and restart dockerd.',
)
def iptables(ctx: Context) -> Result:
    result = bool_option("iptables", True, True)(ctx)
    backend, swarm = _firewall(ctx)
    if backend:
        result.evidence += f"; firewall backend {backend}"
    if result.status.value == "pass" and backend.startswith("nftables") and swarm:
        return Result.fail(f"{result.evidence}: the nftables firewall backend does not support swarm mode, which is "
                           "active (Docker 29; use the iptables backend on swarm nodes)", location=result.location,
                           subject=result.subject, data=result.data)
    return result


def _firewall(ctx: Context) -> tuple[str, bool]:
    """(firewall backend and where it was seen, whether swarm mode is active). Engines before 28.2 report
    no backend (they only know iptables): ("", ...)."""
    backend, swarm = "", False
    if ctx.engine is not None:
        try:
            info = ctx.info()
            fb = info.get("FirewallBackend") or {}
            if isinstance(fb, dict) and fb.get("Driver"):
                backend = f"{fb['Driver']} (docker info)"
            swarm = (info.get("Swarm") or {}).get("LocalNodeState") == "active"
        except CheckError:
            pass
    if not backend:
        s = ctx.daemon().get("firewall-backend")
        if s is not None:
            backend = f"{s.value} ({s.location or s.source})"
    return backend, swarm


@check(
    "insecure-registries", cis="2.5", severity=HIGH,
    fix=Fix(Safety.DISRUPTIVE,
        "Pulls and pushes to the registries removed from insecure-registries fail "
        "until they serve a certificate the host trusts."),
    title="No insecure registries are used",
    explanation="An insecure registry is reached over plain HTTP or with an unchecked certificate. Anyone on the "
    "path can then read the images or, worse, hand the host a different image than the one asked for.",
    manual="docker info --format '{{json .RegistryConfig.IndexConfigs}}'; grep -n insecure-registries /etc/docker/daemon.json",
    remediation="Remove the entries from insecure-registries in daemon.json (or --insecure-registry flags) and give "
    "those registries a trusted TLS certificate; restart dockerd.",
)
def insecure_registries(ctx: Context) -> Result:
    value, ev, loc = option(ctx, "insecure-registries", [])
    entries = [str(v) for v in (value or [])]
    if entries:
        return Result.fail(f"insecure registries configured: {', '.join(entries)} ({loc or 'command line'})",
                           location=loc, subject=_daemon_subject(ctx), data={"key": "insecure-registries"})
    return Result.ok(ev, location=loc, subject=_daemon_subject(ctx))


def storage_driver(ctx: Context) -> tuple[str | None, str]:
    """(driver, where it was seen): the engine's report first, then the configuration."""
    if ctx.engine is not None:
        try:
            info = ctx.info()
            return info.get("Driver"), "docker info"
        except CheckError:
            pass
    s = ctx.daemon().get("storage-driver")
    if s is not None:
        return str(s.value), s.describe("storage-driver")
    return None, "storage driver unknown"


@check(
    "aufs", cis="2.6", severity=MEDIUM, subject="dockerd",
    title="The aufs storage driver is not used",
    explanation="aufs is an old out-of-tree filesystem that recent kernels and Docker releases no longer support; "
    "it has known bugs that can crash the host. overlay2 is the supported driver.",
    manual="docker info --format '{{.Driver}}'",
    remediation="Move to overlay2: export what must be kept, set \"storage-driver\": \"overlay2\", restart dockerd, "
    "and rebuild or re-pull images (existing images and containers are not carried over).",
)
def aufs(ctx: Context) -> Result:
    driver, where = storage_driver(ctx)
    if driver is None:
        raise NotApplicable("the storage driver is only known from the engine or a storage-driver setting; neither is available")
    if where == "docker info" and containerd_store(ctx):
        where += "; a snapshotter of the containerd image store"
    ev = f"storage driver {driver} ({where})"
    return Result.fail(ev, subject="dockerd") if driver == "aufs" else Result.ok(ev, subject="dockerd")


def containerd_store(ctx: Context) -> bool:
    """True when the engine keeps images in the containerd image store (Docker 24+ with the feature,
    the default of fresh installs from 29.0): docker info's Driver then names a containerd
    snapshotter (overlayfs, native, ...), not a graph driver."""
    try:
        status = ctx.info().get("DriverStatus") or []
    except CheckError:
        return False
    return any(isinstance(x, list) and x[:2] == ["driver-type", "io.containerd.snapshotter.v1"] for x in status)


@check(
    "daemon-tls", cis="2.7", severity=HIGH,
    title="TLS authentication is configured for a daemon reachable over TCP",
    explanation="A daemon listening on TCP without verified TLS gives anyone who can reach the port full control of "
    "the host: running a privileged container is root. TLS with client certificates (tlsverify) lets in only clients "
    "holding a certificate signed by the daemon's CA.",
    manual="ps -o args= -C dockerd; grep -nE 'hosts|tls' /etc/docker/daemon.json; ss -ltnp | grep dockerd",
    remediation='Listen only on the unix socket, or set "tlsverify": true with tlscacert, tlscert and tlskey and '
    "issue client certificates.",
)
def daemon_tls(ctx: Context) -> Result:
    d = ctx.daemon()
    subject = _daemon_subject(ctx)
    if "hosts" in d.conflicts:
        option(ctx, "hosts", None)  # raises: dockerd would not start
    listeners: list[tuple[str, str]] = []  # (normalized address, where)
    for s in d.all("hosts"):
        for h in (s.value if isinstance(s.value, list) else [s.value]):
            listeners.append((normalize_host(str(h)), s.source if s.source != "daemon.json" else str(s.location)))
    if listeners and all(h.startswith("fd://") for h, _ in listeners):
        listeners += [(("tcp://" if _tcp_stream(x.value) else "unix://") + x.value, x.source) for x in d.socket_hosts]
    tcp = [f"{h} ({w})" for h, w in listeners if h.startswith("tcp://")]
    if not tcp and d.cmd is not None and d.cmd.socket_unknown and any(h.startswith("fd://") for h, _ in listeners):
        raise Undetermined(f"{d.cmd.socket_unknown}: whether it listens on TCP is unknown")
    if not tcp:
        if not listeners and d.unknown:
            option(ctx, "hosts", None)  # raises Undetermined naming what is unknown
        seen = ", ".join(h for h, _ in listeners) or "none configured: the default unix socket"
        return Result.ok(f"no TCP listener (hosts: {seen}; looked at {d.sources()})", subject=subject)
    verify = d.get("tlsverify")
    missing = [k for k in ("tlscacert", "tlscert", "tlskey") if d.get(k) is None]
    if verify and verify.value is True and not missing:
        return Result.ok(f"listens on {', '.join(tcp)} with tlsverify and certificates", subject=subject)
    why = "tlsverify is not set" if not (verify and verify.value is True) else f"missing {', '.join(missing)}"
    return Result.fail(f"listens on {', '.join(tcp)} and {why}", subject=subject)


def _tcp_stream(listen: str) -> bool:
    from dockfix.sources.systemd import listen_is_tcp

    return listen_is_tcp(listen)


@check(
    "default-ulimit", cis="2.8", severity=LOW,
    title="The default ulimit is configured appropriately",
    explanation="Default ulimits bound how many files and processes a container may use, so one runaway container "
    "cannot exhaust the host. The right numbers depend on the workloads.",
    manual="grep -n default-ulimits /etc/docker/daemon.json",
    remediation='Set "default-ulimits" in daemon.json (for example nofile and nproc) to values suited to the workloads.',
)
def default_ulimit(ctx: Context) -> Result:
    value, ev, loc = option(ctx, "default-ulimits", None)
    if value:
        return Result.ok(ev, location=loc, subject=_daemon_subject(ctx))
    return Result.manual(f"{ev}: decide whether this host needs default ulimits", subject=_daemon_subject(ctx))


@check(
    "userns-remap", cis="2.9", severity=MEDIUM,
    title="User namespace support is enabled",
    explanation="Without user namespace remapping, root inside a container is root on the host: a container escape "
    "lands with full privileges. userns-remap maps container root to an unprivileged range of host ids.",
    manual="docker info --format '{{.SecurityOptions}}' | grep -o userns; grep -n userns-remap /etc/docker/daemon.json",
    remediation='Set "userns-remap": "default" in daemon.json and restart dockerd; existing images and volumes are '
    "seen with new ownership, so plan the change.",
)
def userns_remap(ctx: Context) -> Result:
    if ctx.rootless is not None:
        raise NotApplicable(f"the {ctx.rootless.describe()} already runs every container in that user's namespace "
                            "(root in a container is the user's subordinate id on the host); userns-remap is not "
                            "supported in rootless mode")
    value, ev, loc = option(ctx, "userns-remap", None)
    return _result(bool(value), ev, loc, _daemon_subject(ctx))


@check(
    "cgroup-parent", cis="2.10", severity=LOW,
    title="The default cgroup parent is confirmed",
    explanation="Containers are placed under a parent cgroup whose limits apply to all of them. Changing it moves "
    "every container under another set of limits, which is only right when someone intended it.",
    manual="grep -n cgroup-parent /etc/docker/daemon.json; ps -o args= -C dockerd | grep -o -- '--cgroup-parent[= ][^ ]*'",
    remediation="Remove cgroup-parent unless a different parent cgroup is wanted on purpose.",
)
def cgroup_parent(ctx: Context) -> Result:
    value, ev, loc = option(ctx, "cgroup-parent", None)
    if value:
        return Result.manual(f"{ev}: confirm this parent cgroup is intended", location=loc, subject=_daemon_subject(ctx))
    return Result.ok(ev, location=loc, subject=_daemon_subject(ctx))


@check(
    "dm-basesize", cis="2.11", severity=LOW,
    fix=Fix(Safety.DISRUPTIVE,
        "New containers on devicemapper get the default base size after dockerd restarts; "
        "existing ones keep theirs."),
    title="The base device size is not changed until needed",
    explanation="dm.basesize grows the devicemapper base device for every container; raised without need it wastes "
    "space and can fill the pool. devicemapper itself is removed from current Docker releases.",
    manual="grep -n storage-opts /etc/docker/daemon.json",
    remediation="Remove dm.basesize from storage-opts (and move off devicemapper).",
)
def dm_basesize(ctx: Context) -> Result:
    value, ev, loc = option(ctx, "storage-opts", [])
    opts = [str(o) for o in (value or [])]
    hits = [o for o in opts if o.startswith("dm.basesize")]
    version, shown = engine_version(ctx)
    gone = version is not None and version >= (25, 0)
    if hits:
        why = (f"; devicemapper was removed in Docker Engine 25.0 (this engine: {shown}), so it does nothing"
               if gone else "")
        return Result.fail(f"storage-opts sets {', '.join(hits)}{why}", location=loc, subject=_daemon_subject(ctx))
    if gone:
        raise NotApplicable(f"devicemapper was removed in Docker Engine 25.0 (this engine: {shown}): there is no "
                            "base device to size")
    return Result.ok(ev if not opts else f"storage-opts: {', '.join(opts)}", location=loc, subject=_daemon_subject(ctx))


@check(
    "authorization-plugins", cis="2.12", severity=MEDIUM,
    title="Authorization for Docker client commands is enabled",
    explanation="Without an authorization plugin, anyone who can reach the socket may do anything the daemon can. "
    "A plugin can allow or deny each API request by user and action.",
    manual="grep -n authorization-plugins /etc/docker/daemon.json; docker info --format '{{.Plugins.Authorization}}'",
    remediation="Install an authorization plugin that fits the site's policy and list it in authorization-plugins.",
)
def authorization_plugins(ctx: Context) -> Result:
    value, ev, loc = option(ctx, "authorization-plugins", [])
    return _result(bool(value), ev, loc, _daemon_subject(ctx))


@check(
    "remote-logging", cis="2.13", severity=LOW,
    title="Centralized and remote logging is configured",
    explanation="Container logs kept only on the host are lost with it and can be erased by whoever compromised it. "
    "A remote log driver (syslog, journald forwarded, fluentd, gelf, ...) keeps a copy elsewhere.",
    manual="docker info --format '{{.LoggingDriver}}'",
    remediation='Set "log-driver" (and "log-opts") in daemon.json to a driver that ships logs to a central collector.',
)
def remote_logging(ctx: Context) -> Result:
    local = {"json-file", "local", "none"}
    driver, where = None, ""
    if ctx.engine is not None:
        try:
            driver, where = ctx.info().get("LoggingDriver"), "docker info"
        except CheckError:
            pass
    loc = None
    if driver is None:
        driver, where, loc = option(ctx, "log-driver", "json-file")
    ev = f"logging driver {driver} ({where})"
    return _result(driver not in local, ev, loc, _daemon_subject(ctx))


@check(
    "no-new-privileges", cis="2.14", severity=MEDIUM,
    fix=Fix(Safety.DISRUPTIVE,
        "Containers created after dockerd restarts cannot gain privileges through "
        "setuid or setgid programs; images that rely on sudo or su inside the container stop working that way."),
    title="Containers are restricted from acquiring new privileges",
    explanation="With no-new-privileges set daemon-wide, a process in a container cannot gain privileges through "
    "setuid or setgid binaries, which closes a common path from a foothold to root inside the container.",
    manual="grep -n no-new-privileges /etc/docker/daemon.json; docker info --format '{{.SecurityOptions}}'",
    remediation='Set "no-new-privileges": true in daemon.json and restart dockerd; it applies to containers created afterwards.',
)
def no_new_privileges(ctx: Context) -> Result:
    return bool_option("no-new-privileges", True, False)(ctx)


@check(
    "live-restore", cis="2.15", severity=LOW,
    fix=Fix(Safety.SAFE,
        "Running containers keep running while dockerd is stopped, restarted or upgraded; "
        "dockerd picks the setting up on reload."),
    title="Live restore is enabled",
    explanation="With live restore, containers keep running while dockerd is stopped or upgraded, so security updates "
    "to the daemon do not have to wait for a maintenance window.",
    manual="docker info --format '{{.LiveRestoreEnabled}}'",
    remediation='Set "live-restore": true in daemon.json; the daemon picks it up on reload (SIGHUP). Not available in swarm mode.',
)
def live_restore(ctx: Context) -> Result:
    swarm = swarm_node(ctx)
    if swarm:
        return Result.manual(f"this host is a swarm node ({swarm}): dockerd refuses live-restore in swarm mode "
                             "(\"live-restore daemon configuration is incompatible with swarm mode\"); decide whether "
                             "the node should leave the swarm", subject=_daemon_subject(ctx))
    if ctx.engine is not None:
        try:
            if ctx.info().get("LiveRestoreEnabled"):
                return Result.ok("live restore enabled (docker info)", subject=_daemon_subject(ctx))
        except CheckError:
            pass
    return bool_option("live-restore", True, False)(ctx)


DEFAULT_DATA_ROOT = "/var/lib/docker"


def effective_data_root(ctx: Context) -> tuple[str, str]:
    """(data root, where it was learnt) from the effective configuration (Undetermined when unknown)."""
    d = ctx.daemon()
    for key in ("data-root", "graph"):
        s = d.get(key)
        if s is not None and isinstance(s.value, str):
            return s.value, s.describe(key)
    value, ev, _ = option(ctx, "data-root", DEFAULT_DATA_ROOT)
    return value, ev


def swarm_node(ctx: Context) -> str | None:
    """Why this host is a swarm node (docker info, or <data-root>/swarm/docker-state.json), or None."""
    if ctx.engine is not None:
        try:
            state = (ctx.info().get("Swarm") or {}).get("LocalNodeState")
            if state in ("active", "pending", "locked"):
                return f"docker info: swarm {state}"
            if state is not None:
                return None
        except CheckError:
            pass
    root, where = effective_data_root(ctx)
    state_file = f"{root.rstrip('/')}/swarm/docker-state.json"
    if ctx.host.lstat(state_file) is not None:
        return f"{state_file} exists; data root from {where}"
    return None


@check(
    "userland-proxy", cis="2.16", severity=LOW,
    fix=Fix(Safety.DISRUPTIVE,
        "After dockerd restarts, published ports are served by iptables NAT alone; "
        "reaching a published port from the host itself through localhost may stop working on some setups."),
    title="The userland proxy is disabled",
    explanation="The userland proxy starts a docker-proxy process per published port; with iptables NAT it is not "
    "needed, and every extra listening process is more code exposed to the network.",
    manual="grep -n userland-proxy /etc/docker/daemon.json; pgrep -a docker-proxy",
    remediation='Set "userland-proxy": false in daemon.json and restart dockerd (hairpin access to published ports '
    "from the host itself then relies on iptables).",
)
def userland_proxy(ctx: Context) -> Result:
    return bool_option("userland-proxy", False, True)(ctx)


@check(
    "seccomp-profile", cis="2.17", severity=LOW,
    fix=Fix(Safety.DISRUPTIVE,
        "Containers created after dockerd restarts get Docker's default seccomp "
        "profile instead of none; programs making blocked system calls fail."),
    title="A daemon-wide custom seccomp profile is applied, if appropriate",
    explanation="Seccomp limits the system calls a container may make. Docker's default profile already blocks "
    "dozens of dangerous calls; a custom profile can narrow it further for a known set of workloads.",
    manual="docker info --format '{{.SecurityOptions}}'; grep -n seccomp-profile /etc/docker/daemon.json",
    remediation='If the workloads are known, set "seccomp-profile" in daemon.json to a tighter profile; otherwise keep the default.',
)
def seccomp_profile(ctx: Context) -> Result:
    value, ev, loc = option(ctx, "seccomp-profile", None)
    if value in ("unconfined",):
        return Result.fail(f"{ev}: seccomp is disabled for every container", location=loc, subject=_daemon_subject(ctx))
    if value:
        return Result.ok(ev, location=loc, subject=_daemon_subject(ctx))
    if ctx.engine is not None:
        try:
            opts = ctx.info().get("SecurityOptions") or []
            if not any("seccomp" in o for o in opts):
                return Result.fail("the engine reports no seccomp support (docker info SecurityOptions)", subject=_daemon_subject(ctx))
            prof = next((o for o in opts if "seccomp" in o), "")
            return Result.manual(f"default seccomp profile in use ({prof}): decide whether a custom profile is appropriate",
                                 subject=_daemon_subject(ctx))
        except CheckError:
            pass
    return Result.manual(f"{ev}: decide whether a custom profile is appropriate", subject=_daemon_subject(ctx))


@check(
    "experimental", cis="2.18", severity=MEDIUM,
    fix=Fix(Safety.DISRUPTIVE,
        "Experimental features are switched off after dockerd restarts; anything using "
        "them (e.g. checkpoints) stops working."),
    title="Experimental features are not enabled in production",
    explanation="Experimental features are unfinished and may change or carry bugs, including security bugs, that "
    "stable features have had fixed.",
    manual="docker version --format '{{.Server.Experimental}}'",
    remediation='Remove "experimental": true from daemon.json (or --experimental) and restart dockerd.',
)
def experimental(ctx: Context) -> Result:
    return bool_option("experimental", False, False)(ctx)
