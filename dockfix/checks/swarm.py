"""CIS section 7: swarm configuration. Every check here is `skip` on an engine that is not a swarm
manager; the engine's swarm objects come from the one fetch per scan in dockfix.engine."""

from __future__ import annotations

import os
from typing import Any

from dockfix.engine import daemon_argv_for
from dockfix.model import INFO, LOW, MEDIUM, Result, check
from dockfix.context import Context, NotApplicable

NS_PER_DAY = 86_400 * 10**9


def manager(ctx: Context) -> dict[str, Any]:
    """The engine's swarm info; NotApplicable unless it is an active swarm manager."""
    sw = ctx.info().get("Swarm") or {}
    if sw.get("LocalNodeState") != "active":
        raise NotApplicable(f"swarm mode is {sw.get('LocalNodeState') or 'inactive'} on this engine")
    if not sw.get("ControlAvailable"):
        raise NotApplicable("this node is a swarm worker: the swarm's settings are only visible on a manager")
    return sw


@check(
    "swarm-managers", cis="7.1", severity=LOW, subject="swarm",
    title="The minimum number of manager nodes has been created in a swarm",
    explanation="Managers hold the swarm's state and secrets; each one is a high-value target. An odd number "
    "between 1 and 7 gives the fault tolerance wanted; an even number adds a target without adding tolerance, "
    "and more than 7 slows the Raft consensus.",
    manual="docker node ls --filter role=manager",
    remediation="Demote managers that are not needed (docker node demote NODE), keeping an odd number.",
)
def swarm_managers(ctx: Context) -> Result:
    manager(ctx)
    nodes = ctx.need_engine().nodes()
    mgrs = [n for n in nodes if n.get("ManagerStatus")]
    names = ", ".join(sorted((n.get("Description") or {}).get("Hostname", n.get("ID", "")[:12]) for n in mgrs))
    ev = f"{len(mgrs)} manager(s) among {len(nodes)} node(s): {names}"
    if len(mgrs) > 7:
        return Result.fail(ev + "; more than 7 slows consensus without need")
    if len(mgrs) % 2 == 0:
        return Result.fail(ev + "; an even number adds no fault tolerance over one fewer")
    return Result.ok(ev)


def _listening(pid: int) -> list[tuple[str, int]]:
    """(address, port) of the TCP sockets process ``pid`` listens on (from /proc)."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    except OSError:
        return []
    out = []
    for table, v6 in (("tcp", False), ("tcp6", True)):
        try:
            with open(f"/proc/{pid}/net/{table}") as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) < 10 or cols[3] != "0A" or cols[9] not in inodes:
                continue
            hexaddr, hexport = cols[1].split(":")
            out.append((_addr(hexaddr, v6), int(hexport, 16)))
    return out


def _addr(hexaddr: str, v6: bool) -> str:
    import ipaddress

    raw = bytes.fromhex(hexaddr)
    if not v6:
        return str(ipaddress.IPv4Address(raw[::-1]))
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    return str(ipaddress.IPv6Address(words))


@check(
    "swarm-listen-addr", cis="7.2", severity=MEDIUM, subject="swarm",
    title="Swarm services are bound to a specific host interface",
    explanation="The swarm's management port (2377 by default) accepts joins and manager traffic. Listening on "
    "every interface exposes it on networks that have no business reaching it.",
    manual="ss -lntp | grep dockerd    # look for 0.0.0.0:2377 or [::]:2377",
    remediation="Re-create the swarm (or re-join this node) with --listen-addr IP:2377 on the management interface.",
)
def swarm_listen_addr(ctx: Context) -> Result:
    sw = manager(ctx)
    port = 2377
    for m in sw.get("RemoteManagers") or []:
        if m.get("NodeID") == sw.get("NodeID") and ":" in str(m.get("Addr", "")):
            port = int(str(m["Addr"]).rsplit(":", 1)[1])
    if not (ctx.host.docker_host or "").startswith("unix://"):
        return Result.manual(f"the engine is remote: check on it what listens on port {port} (ss -lntp)")
    found = daemon_argv_for(ctx.host.docker_host or "")
    if found is None:
        return Result.manual(f"the dockerd process of {ctx.host.docker_host} is not visible here: check what listens "
                             f"on port {port} (ss -lntp)")
    socks = [(a, p) for a, p in _listening(found[0]) if p == port]
    if not socks:
        return Result.manual(f"dockerd (pid {found[0]}) listens on no TCP port {port}: check ss -lntp")
    wide = [f"{a}:{p}" for a, p in socks if a in ("0.0.0.0", "::")]
    if wide:
        return Result.fail(f"the swarm management port listens on every interface ({', '.join(wide)})")
    return Result.ok("the swarm management port listens on " + ", ".join(f"{a}:{p}" for a, p in socks))


@check(
    "overlay-encrypted", cis="7.3", severity=MEDIUM,
    title="Swarm overlay networks are encrypted",
    explanation="Traffic between containers on different nodes crosses the physical network inside VXLAN. Without "
    "the encrypted option anyone on that network can read it; with it, nodes exchange it over IPsec.",
    manual="docker network ls --filter driver=overlay -q | xargs docker network inspect --format '{{.Name}} {{.Options}}'",
    remediation="Create overlay networks with --opt encrypted and move services onto them (networks cannot be "
    "changed in place; recreating ingress interrupts published ports).",
)
def overlay_encrypted(ctx: Context) -> list[Result]:
    manager(ctx)
    out = []
    for n in ctx.need_engine().networks():
        if n.get("Driver") != "overlay":
            continue
        subject = f"network:{n.get('Name')}"
        if "encrypted" in (n.get("Options") or {}):
            out.append(Result.ok("encrypted", subject=subject))
        else:
            out.append(Result.fail("not encrypted (no encrypted option)", subject=subject))
    return out


@check(
    "swarm-secrets", cis="7.4", severity=INFO, subject="swarm",
    title="Docker's secret management is used for secrets in a swarm",
    explanation="Swarm secrets are stored encrypted in the managers' Raft log and given only to the tasks that need "
    "them, as files in memory. Passwords in environment variables or images are visible to anyone who can inspect "
    "the service.",
    manual="docker secret ls",
    remediation="Move passwords and keys into swarm secrets (docker secret create) and have services read them from "
    "/run/secrets/NAME.",
)
def swarm_secrets(ctx: Context) -> Result:
    manager(ctx)
    secrets = ctx.need_engine().secrets()
    if secrets:
        return Result.ok(f"{len(secrets)} secret(s) managed by swarm")
    return Result.manual("no swarm secrets: check whether the services get their passwords some other way "
                         "(environment variables, files in images)")


def _spec(ctx: Context) -> dict[str, Any]:
    manager(ctx)
    return (ctx.need_engine().swarm() or {}).get("Spec") or {}


@check(
    "swarm-autolock", cis="7.5", severity=MEDIUM, subject="swarm",
    title="Swarm managers run in auto-lock mode",
    explanation="Without auto-lock, the keys that decrypt the Raft log (with every secret in it) sit on the "
    "manager's disk: a stolen disk or backup gives away the secrets. With auto-lock a restarted manager needs the "
    "unlock key, kept elsewhere.",
    manual="docker info --format '{{.Swarm.Cluster.Spec.EncryptionConfig.AutoLockManagers}}'",
    remediation="docker swarm update --autolock=true, and store the unlock key safely: every manager restart then "
    "needs `docker swarm unlock`.",
)
def swarm_autolock(ctx: Context) -> Result:
    on = ((_spec(ctx).get("EncryptionConfig") or {}).get("AutoLockManagers")) is True
    return Result.ok("auto-lock is on") if on else Result.fail("auto-lock is off")


@check(
    "autolock-key-rotation", cis="7.6", severity=LOW, subject="swarm",
    title="The swarm manager auto-lock key is rotated periodically",
    explanation="An unlock key that never changes stays valid for whoever once saw it. The engine does not record "
    "when the key was last rotated, so this is for the team's records to show.",
    manual="docker swarm unlock-key --rotate (and store the new key)",
    remediation="Rotate the key on a schedule with docker swarm unlock-key --rotate and store the new key where the "
    "old one was.",
)
def autolock_key_rotation(ctx: Context) -> Result:
    on = ((_spec(ctx).get("EncryptionConfig") or {}).get("AutoLockManagers")) is True
    if not on:
        raise NotApplicable("auto-lock is off, so there is no unlock key to rotate (see 7.5)")
    return Result.manual("the engine keeps no record of key rotations: check the team's records of when "
                         "`docker swarm unlock-key --rotate` last ran")


@check(
    "node-cert-rotation", cis="7.7", severity=LOW, subject="swarm",
    title="Node certificates are rotated as appropriate",
    explanation="Each node proves its identity with a certificate the swarm CA issues; a short lifetime limits how "
    "long a stolen node certificate stays useful. The right lifetime is a site decision.",
    manual="docker info --format '{{.Swarm.Cluster.Spec.CAConfig.NodeCertExpiry}}'",
    remediation="docker swarm update --cert-expiry DURATION (e.g. 720h) to the lifetime the site's policy wants.",
)
def node_cert_rotation(ctx: Context) -> Result:
    ns = (_spec(ctx).get("CAConfig") or {}).get("NodeCertExpiry") or 90 * NS_PER_DAY
    days = ns / NS_PER_DAY
    return Result.manual(f"node certificates expire after {days:g} days"
                         + (" (the default)" if ns == 90 * NS_PER_DAY else "")
                         + ": confirm this lifetime fits the site's policy")


@check(
    "ca-cert-rotation", cis="7.8", severity=LOW, subject="swarm",
    title="CA certificates are rotated as appropriate",
    explanation="The swarm's root CA signs every node certificate. Rotating it from time to time (and at once after "
    "a suspected compromise of a manager) limits what a stolen CA key can do.",
    manual="docker info --format '{{.Swarm.Cluster.TLSInfo.CertIssuerSubject}}'; docker swarm ca --rotate",
    remediation="Rotate the root CA with docker swarm ca --rotate on the schedule the site's policy sets.",
)
def ca_cert_rotation(ctx: Context) -> Result:
    manager(ctx)
    sw = ctx.need_engine().swarm() or {}
    created = str(sw.get("CreatedAt", "?"))[:10]
    rotating = " (a root rotation is in progress)" if sw.get("RootRotationInProgress") else ""
    return Result.manual(f"the swarm was created on {created}{rotating}; the engine does not say when the CA was "
                         "last rotated: check the team's records")


@check(
    "data-plane-separation", cis="7.9", severity=LOW, subject="swarm",
    title="Management plane traffic is separated from data plane traffic",
    explanation="When manager traffic and container traffic share one interface, a flood of container traffic can "
    "starve the swarm's control messages, and the two cannot be firewalled apart.",
    manual="docker node inspect self --format '{{.Status.Addr}}'; ip -brief address",
    remediation="Initialise or join nodes with --advertise-addr on a management interface and --data-path-addr on "
    "a separate data interface.",
)
def data_plane_separation(ctx: Context) -> Result:
    sw = manager(ctx)
    return Result.manual(f"manager traffic uses {sw.get('NodeAddr', '?')}: check whether container traffic was "
                         "given another interface (swarm init/join --data-path-addr)")
