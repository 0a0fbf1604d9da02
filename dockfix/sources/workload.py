"""What a container asks of the host, whichever way it was described.

A running container (its inspect document), a swarm service (its spec) and a compose service (what
the file asks for) are turned into the same :class:`Workload`, so each runtime rule of CIS section
5 is written once and applied to all three. A source that cannot express a setting leaves it out
of ``Workload.has`` (a swarm service cannot be privileged), and the rule then says nothing about
that subject.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from dockfix.model import Location

#: Capabilities a container has by default; adding one of these changes nothing.
DEFAULT_CAPS = frozenset(
    "CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID SETUID SETFCAP SETPCAP NET_BIND_SERVICE "
    "SYS_CHROOT KILL AUDIT_WRITE".split()
)

#: Host directories whose mounting hands a container control of (or secrets of) the host.
SENSITIVE_DIRS = ("/", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc", "/sys", "/usr")  # /lib64: since v1.7.0

#: Where the engine's socket lives on a host (mounting the folder mounts the socket).
DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")


@dataclass
class Mount:
    source: str  # host path for binds, volume name for volumes
    target: str
    type: str = "bind"  # bind | volume | tmpfs | npipe
    rw: bool = True
    propagation: str = ""
    key: str = "volumes"  # compose key that holds it (for the line)
    index: int | None = None


@dataclass
class Port:
    container_port: str  # "80/tcp"
    host_ip: str = ""  # "" and 0.0.0.0 / :: mean every interface
    host_port: int | None = None  # None: an ephemeral port chosen by the engine
    index: int | None = None

    @property
    def all_interfaces(self) -> bool:
        return self.host_ip in ("", "0.0.0.0", "::", "[::]")

    def __str__(self) -> str:
        ip = self.host_ip or "0.0.0.0"
        return f"{ip}:{self.host_port if self.host_port is not None else '(any)'}->{self.container_port}"


@dataclass
class Workload:
    kind: str  # container | service | compose
    subject: str  # container:NAME, service:NAME, compose:PATH#SERVICE
    name: str
    #: Names of the settings this source can express; rules skip the others.
    has: frozenset[str]
    running: bool = True
    image: str = ""
    image_id: str = ""
    privileged: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    network_mode: str = ""
    pid_mode: str = ""
    ipc_mode: str = ""
    uts_mode: str = ""
    userns_mode: str = ""
    devices: list[str] = field(default_factory=list)
    mounts: list[Mount] = field(default_factory=list)
    ports: list[Port] = field(default_factory=list)
    memory: int = 0
    cpu: dict[str, Any] = field(default_factory=dict)  # the non-zero CPU settings
    read_only: bool = False
    restart: tuple[str, int] = ("no", 0)  # (policy, max retries; 0 = no limit)
    security_opt: list[str] = field(default_factory=list)
    cgroup_parent: str = ""
    pids_limit: int = 0  # 0 or negative: no limit
    healthcheck: bool | None = None  # None: decided by the image
    ulimits: list[str] = field(default_factory=list)
    user: str = ""
    apparmor: str = ""
    networks: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    pid: int = 0  # host pid of a running container's first process
    #: Where a setting is written (compose file and line), by compose key; None when unknown.
    where: Callable[..., Location | None] = field(default=lambda *keys: None, repr=False)
    data: dict[str, Any] = field(default_factory=dict)

    def location(self, *keys: Any) -> Location | None:
        return self.where(*keys)


# ---------------------------------------------------------------------- containers
CONTAINER_HAS = frozenset(
    "privileged cap_add network_mode pid_mode ipc_mode uts_mode userns_mode devices mounts ports memory cpu "
    "read_only restart security_opt cgroup_parent pids_limit healthcheck ulimits user apparmor networks".split()
)


def container_name(c: dict[str, Any]) -> str:
    return (c.get("Name") or c.get("Id", "")[:12]).lstrip("/")


def from_container(c: dict[str, Any]) -> Workload:
    hc = c.get("HostConfig") or {}
    cfg = c.get("Config") or {}
    state = c.get("State") or {}
    mounts = [
        Mount(
            source=m.get("Source") or m.get("Name") or "",
            target=m.get("Destination") or "",
            type=m.get("Type") or "bind",
            rw=bool(m.get("RW", True)),
            propagation=m.get("Propagation") or "",
            index=i,
        )
        for i, m in enumerate(c.get("Mounts") or [])
    ]
    ports = []
    for cport, binds in sorted((hc.get("PortBindings") or {}).items()):
        for b in binds or [{}]:
            hp = (b or {}).get("HostPort") or ""
            ports.append(Port(cport, (b or {}).get("HostIp") or "", _first_port(hp)))
    health = cfg.get("Healthcheck")
    healthcheck = None if health is None else _health_enabled(health.get("Test"))
    return Workload(
        kind="container",
        subject=f"container:{container_name(c)}",
        name=container_name(c),
        has=CONTAINER_HAS,
        running=bool(state.get("Running")),
        image=cfg.get("Image") or "",
        image_id=c.get("Image") or "",
        privileged=bool(hc.get("Privileged")),
        cap_add=[_cap(x) for x in hc.get("CapAdd") or []],
        cap_drop=[_cap(x) for x in hc.get("CapDrop") or []],
        network_mode=hc.get("NetworkMode") or "",
        pid_mode=hc.get("PidMode") or "",
        ipc_mode=hc.get("IpcMode") or "",
        uts_mode=hc.get("UTSMode") or "",
        userns_mode=hc.get("UsernsMode") or "",
        devices=[f"{d.get('PathOnHost')}:{d.get('PathInContainer')}" for d in hc.get("Devices") or []],
        mounts=mounts,
        ports=ports,
        memory=int(hc.get("Memory") or 0),
        cpu={k: hc[k] for k in ("CpuShares", "NanoCpus", "CpuQuota", "CpusetCpus") if hc.get(k)},
        read_only=bool(hc.get("ReadonlyRootfs")),
        restart=((hc.get("RestartPolicy") or {}).get("Name") or "no",
                 int((hc.get("RestartPolicy") or {}).get("MaximumRetryCount") or 0)),
        security_opt=list(hc.get("SecurityOpt") or []),
        cgroup_parent=hc.get("CgroupParent") or "",
        pids_limit=int(hc.get("PidsLimit") or 0),
        healthcheck=healthcheck,
        ulimits=[f"{u.get('Name')}={u.get('Soft')}:{u.get('Hard')}" for u in hc.get("Ulimits") or []],
        user=cfg.get("User") or "",
        apparmor=c.get("AppArmorProfile") or "",
        networks=sorted(((c.get("NetworkSettings") or {}).get("Networks") or {}).keys()),
        labels=dict(cfg.get("Labels") or {}),
        pid=int(state.get("Pid") or 0),
        data={"id": c.get("Id", ""), "health": (state.get("Health") or {}).get("Status"), "state": state.get("Status")},
    )


# ---------------------------------------------------------------------- swarm services
SERVICE_HAS = frozenset("cap_add mounts ports memory cpu read_only restart pids_limit healthcheck user ulimits".split())


def from_service(s: dict[str, Any]) -> Workload:
    spec = s.get("Spec") or {}
    task = spec.get("TaskTemplate") or {}
    cs = task.get("ContainerSpec") or {}
    limits = (task.get("Resources") or {}).get("Limits") or {}
    rp = task.get("RestartPolicy") or {}
    condition = rp.get("Condition") or "any"
    mounts = [
        Mount(
            source=m.get("Source") or "",
            target=m.get("Target") or "",
            type=m.get("Type") or "volume",
            rw=not m.get("ReadOnly"),
            propagation=(m.get("BindOptions") or {}).get("Propagation") or "",
            index=i,
        )
        for i, m in enumerate(cs.get("Mounts") or [])
    ]
    ports = [
        Port(f"{p.get('TargetPort')}/{p.get('Protocol', 'tcp')}", "", p.get("PublishedPort"), index=i)
        for i, p in enumerate((spec.get("EndpointSpec") or {}).get("Ports") or [])
    ]
    health = cs.get("Healthcheck")
    name = spec.get("Name") or s.get("ID", "")[:12]
    return Workload(
        kind="service",
        subject=f"service:{name}",
        name=name,
        has=SERVICE_HAS,
        image=(cs.get("Image") or "").split("@")[0],
        cap_add=[_cap(x) for x in cs.get("CapabilityAdd") or []],
        cap_drop=[_cap(x) for x in cs.get("CapabilityDrop") or []],
        mounts=mounts,
        ports=ports,
        memory=int(limits.get("MemoryBytes") or 0),
        cpu={"NanoCPUs": limits["NanoCPUs"]} if limits.get("NanoCPUs") else {},
        read_only=bool(cs.get("ReadOnly")),
        restart=("no", 0) if condition == "none" else (condition, int(rp.get("MaxAttempts") or 0)),
        pids_limit=int(limits.get("Pids") or 0),
        healthcheck=None if health is None else _health_enabled(health.get("Test")),
        ulimits=[f"{u.get('Name')}={u.get('Soft')}:{u.get('Hard')}" for u in cs.get("Ulimits") or []],
        user=cs.get("User") or "",
        labels=dict(spec.get("Labels") or {}),
        data={"id": s.get("ID", "")},
    )


# ---------------------------------------------------------------------- helpers
def _cap(name: str) -> str:
    name = str(name).upper()
    return name[4:] if name.startswith("CAP_") else name


def _first_port(text: str) -> int | None:
    m = re.match(r"\d+", str(text or ""))
    return int(m.group()) if m else None


def _health_enabled(test: Any) -> bool:
    if isinstance(test, str):
        test = [test]
    return bool(test) and str(test[0]).upper() != "NONE"


def is_sensitive(path: str) -> bool:
    """True when ``path`` is a sensitive host directory or lies below one (other than /)."""
    p = "/" + path.strip("/")
    return any(p == d or (d != "/" and p.startswith(d + "/")) for d in SENSITIVE_DIRS)


def is_docker_socket(path: str) -> bool:
    p = "/" + path.strip("/")
    return p in DOCKER_SOCKETS or p in ("/run", "/var/run") or p.endswith("/docker.sock")


def has_opt(opts: list[str], name: str, value: str | None = None) -> bool:
    """security_opt contains ``name`` (``name=value`` or ``name:value`` forms; bare name = true)."""
    for o in opts:
        m = re.match(r"\s*([^=:]+)(?:[=:](.*))?$", str(o))
        if not m or m.group(1).strip() != name:
            continue
        if value is None or (m.group(2) or "true").strip().lower() == value:
            return True
    return False


# ---------------------------------------------------------------------- gathering, once per scan
KINDS = ("container", "service", "compose")
