"""Compose services as workloads, and the way back from a running container to its compose file.

The runtime rules of CIS section 5 apply to what a compose file asks for just as to what runs:
:func:`from_compose` turns one compose service into a :class:`~dockfix.sources.workload.Workload` whose
``where(key)`` gives the file and line of a setting. Containers started by ``docker compose`` name
their file in the labels ``com.docker.compose.project.config_files`` / ``working_dir``; services of
a ``docker stack deploy`` carry only ``com.docker.stack.namespace``, so they are matched to the
compose files given with ``--compose`` / ``--path`` by service name (preferring a file whose project
name is the stack's namespace).
"""

from __future__ import annotations

import os
import re
from typing import Any

from dockfix.sources.compose import COMPOSE_SERVICE_LABEL, STACK_LABEL, compose_files_of, ServiceSpec, _is_mapping, _is_sequence, ctx_compose, iter_compose
from dockfix.model import CheckError, Location
from dockfix.sources.workload import Mount, Port, Workload, _cap, _health_enabled

COMPOSE_HAS = frozenset(
    "privileged cap_add network_mode pid_mode ipc_mode uts_mode userns_mode devices mounts ports memory cpu "
    "read_only restart security_opt cgroup_parent pids_limit healthcheck ulimits user networks".split()
)

#: Where a setting may be written, in order of preference: the first path present gives the line.
ALIASES: dict[str, list[tuple]] = {
    "mem_limit": [("mem_limit",), ("deploy", "resources", "limits", "memory")],
    "cpus": [("cpus",), ("cpu_shares",), ("cpu_quota",), ("deploy", "resources", "limits", "cpus")],
    "pids_limit": [("pids_limit",), ("deploy", "resources", "limits", "pids")],
    "restart": [("restart",), ("deploy", "restart_policy")],
    "deploy": [("deploy", "restart_policy"), ("restart",)],
    "network_mode": [("network_mode",), ("networks",)],
}



# ---------------------------------------------------------------------- reading values
def _text(svc: ServiceSpec, v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    value, _, _ = svc.file.interpolate(str(v))
    return value or ""


def _get(svc: ServiceSpec, *path: str) -> Any:
    cur: Any = svc.raw
    for k in path:
        if not _is_mapping(cur) or k not in cur:
            return None
        cur = cur[k]
    return cur


def _bool(svc: ServiceSpec, v: Any) -> bool:
    return _text(svc, v).strip().lower() in ("true", "yes", "1", "on")


def _list(v: Any) -> list:
    if v is None:
        return []
    if _is_sequence(v):
        return list(v)
    if _is_mapping(v):
        return list(v.keys())
    return [v]


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)i?b?\s*$", re.I)


def parse_size(text: str) -> int:
    m = _SIZE.match(text or "")
    if not m:
        return 0
    mult = {"": 1, "b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4}[m.group(2).lower()]
    return int(float(m.group(1)) * mult)


def parse_volume(svc: ServiceSpec, item: Any) -> Mount | None:
    """A compose ``volumes`` entry (short or long syntax) as a Mount; host paths made absolute."""
    if _is_mapping(item):
        typ = _text(svc, item.get("type")) or "volume"
        src = _text(svc, item.get("source"))
        bind = item.get("bind") if _is_mapping(item.get("bind")) else {}
        m = Mount(source=src, target=_text(svc, item.get("target")), type=typ,
                  rw=not _bool(svc, item.get("read_only")), propagation=_text(svc, bind.get("propagation")))
    else:
        parts = _text(svc, item).split(":")
        if len(parts) == 1:
            return Mount(source="", target=parts[0], type="volume")
        src, target = parts[0], parts[1]
        opts = parts[2].split(",") if len(parts) > 2 else []
        typ = "bind" if src.startswith(("/", ".", "~")) else "volume"
        prop = next((o for o in opts if o in ("shared", "rshared", "slave", "rslave", "private", "rprivate")), "")
        m = Mount(source=src, target=target, type=typ, rw="ro" not in opts, propagation=prop)
    if m.type == "bind" and m.source:
        src = os.path.expanduser(m.source) if m.source.startswith("~") else m.source
        m.source = svc.file.resolve_path(src)
    return m


def parse_port(svc: ServiceSpec, item: Any) -> list[Port]:
    """A compose ``ports`` entry as Ports (a range gives one Port per published port, at most 64)."""
    if _is_mapping(item):
        published = _text(svc, item.get("published"))
        target = _text(svc, item.get("target"))
        proto = _text(svc, item.get("protocol")) or "tcp"
        return [Port(f"{target}/{proto}", _text(svc, item.get("host_ip")), _int(published))]
    text = _text(svc, item)
    proto = "tcp"
    if "/" in text:
        text, proto = text.rsplit("/", 1)
    ip = ""
    m = re.match(r"^\[([^\]]*)\]:(.*)$", text)
    if m:
        ip, text = m.group(1), m.group(2)
    parts = text.split(":")
    if len(parts) == 3:
        ip, host, cont = parts
    elif len(parts) == 2:
        host, cont = parts
    else:
        host, cont = "", parts[0]
    hosts = _range(host)
    conts = _range(cont) or [None]
    if not hosts:
        return [Port(f"{c}/{proto}", ip, None) for c in conts[:64]]
    return [Port(f"{conts[i] if i < len(conts) else conts[0]}/{proto}", ip, h) for i, h in enumerate(hosts[:64])]


def _range(text: str) -> list[int]:
    text = (text or "").strip()
    if not text:
        return []
    if "-" in text:
        a, _, b = text.partition("-")
        if a.isdigit() and b.isdigit():
            return list(range(int(a), min(int(b), int(a) + 63) + 1))
    return [int(text)] if text.isdigit() else []


def _int(text: str) -> int | None:
    m = re.match(r"\d+", text or "")
    return int(m.group()) if m else None


def from_compose(svc: ServiceSpec) -> Workload:
    """What a compose service asks for, as a Workload whose ``where(key)`` is its file and line."""
    vols = []
    for i, item in enumerate(_list(svc.get("volumes"))):
        m = parse_volume(svc, item)
        if m is not None:
            m.index = i
            vols.append(m)
    ports = []
    for i, item in enumerate(_list(svc.get("ports"))):
        for p in parse_port(svc, item):
            p.index = i
            ports.append(p)
    restart = _text(svc, svc.get("restart")) or "no"
    name, _, count = restart.partition(":")
    policy = (name, int(count) if count.isdigit() else 0)
    rp = _get(svc, "deploy", "restart_policy")
    if _is_mapping(rp):
        cond = _text(svc, rp.get("condition")) or "any"
        policy = ("no", 0) if cond == "none" else (cond, _int(_text(svc, rp.get("max_attempts"))) or 0)
    limits = _get(svc, "deploy", "resources", "limits") or {}
    memory = parse_size(_text(svc, svc.get("mem_limit"))) or parse_size(_text(svc, limits.get("memory") if _is_mapping(limits) else None))
    cpu = {}
    for key in ("cpus", "cpu_shares", "cpu_quota", "cpuset"):
        if _text(svc, svc.get(key)) not in ("", "0"):
            cpu[key] = _text(svc, svc.get(key))
    if _is_mapping(limits) and _text(svc, limits.get("cpus")) not in ("", "0"):
        cpu["deploy.resources.limits.cpus"] = _text(svc, limits.get("cpus"))
    pids = _int(_text(svc, svc.get("pids_limit"))) or (_int(_text(svc, limits.get("pids"))) if _is_mapping(limits) else 0) or 0
    if _text(svc, svc.get("pids_limit")).startswith("-"):
        pids = 0
    hc = svc.get("healthcheck")
    health = None
    if _is_mapping(hc):
        health = False if _bool(svc, hc.get("disable")) else (_health_enabled(hc.get("test")) if hc.get("test") is not None else None)
    ulimits = []
    if _is_mapping(svc.get("ulimits")):
        ulimits = [f"{k}={_text(svc, v) if not _is_mapping(v) else _text(svc, v.get('soft')) + ':' + _text(svc, v.get('hard'))}"
                   for k, v in svc.get("ulimits").items()]
    devices = []
    for d in _list(svc.get("devices")):
        devices.append(_text(svc, d.get("source")) + ":" + _text(svc, d.get("target")) if _is_mapping(d) else _text(svc, d))
    networks = [str(n) for n in _list(svc.get("networks"))]
    path = svc.file.path

    def where(*keys: Any) -> Location:
        return Location(path, _line(svc, keys))

    return Workload(
        kind="compose",
        subject=f"compose:{path}#{svc.name}",
        name=svc.name,
        has=COMPOSE_HAS,
        image=svc.image or "",
        privileged=_bool(svc, svc.get("privileged")),
        cap_add=[_cap(_text(svc, c)) for c in _list(svc.get("cap_add"))],
        cap_drop=[_cap(_text(svc, c)) for c in _list(svc.get("cap_drop"))],
        network_mode=_text(svc, svc.get("network_mode")),
        pid_mode=_text(svc, svc.get("pid")),
        ipc_mode=_text(svc, svc.get("ipc")),
        uts_mode=_text(svc, svc.get("uts")),
        userns_mode=_text(svc, svc.get("userns_mode")),
        devices=devices,
        mounts=vols,
        ports=ports,
        memory=memory,
        cpu=cpu,
        read_only=_bool(svc, svc.get("read_only")),
        restart=policy,
        security_opt=[_text(svc, o) for o in _list(svc.get("security_opt"))],
        cgroup_parent=_text(svc, svc.get("cgroup_parent")),
        pids_limit=pids,
        healthcheck=health,
        ulimits=ulimits,
        user=_text(svc, svc.get("user")),
        networks=networks,
        where=where,
        data={"file": path, "service": svc.name},
    )


def _line(svc: ServiceSpec, keys: tuple) -> int | None:
    """Line of a setting: aliases tried in order; a mount or port named by its target is found in its list."""
    if not keys:
        return svc.line
    head, rest = keys[0], list(keys[1:])
    if head in ("volumes", "ports") and rest and isinstance(rest[0], str):
        rest[0] = _index_of(svc, head, rest[0])
    for path in ALIASES.get(head, [(head,)]):
        if _get(svc, *path) is not None:
            return svc.line_of(*path, *[r for r in rest if r is not None])
    return svc.line


def _index_of(svc: ServiceSpec, key: str, target: str) -> int | None:
    """Index of the volumes entry mounted at ``target`` (or the ports entry for ``80/tcp``)."""
    for i, item in enumerate(_list(svc.get(key))):
        if key == "volumes":
            m = parse_volume(svc, item)
            if m is not None and m.target.rstrip("/") == target.rstrip("/"):
                return i
        else:
            if any(p.container_port == target for p in parse_port(svc, item)):
                return i
    return None


# ---------------------------------------------------------------------- the files in scope
def compose_workloads(ctx) -> tuple[list[Workload], list[CheckError]]:
    out: list[Workload] = []
    errors: list[CheckError] = []
    for cf in iter_compose(ctx):
        if isinstance(cf, CheckError):
            errors.append(cf)
            continue
        out += [from_compose(s) for s in cf.services.values()]
    return out, errors


def compose_service_for(ctx, w: Workload) -> Workload | None:
    """The compose service a container or stack service was created from, if its file is known."""
    labels = w.labels
    files = compose_files_of(labels)
    if files and labels.get(COMPOSE_SERVICE_LABEL):
        for path in files:
            try:
                if not ctx.host.is_file(path):
                    continue
                cf = ctx_compose(ctx, path)
            except CheckError:
                continue
            svc = cf.services.get(labels[COMPOSE_SERVICE_LABEL])
            if svc is not None:
                return from_compose(svc)
        return None
    ns = labels.get(STACK_LABEL)
    if not ns:
        return None
    full = w.name if w.kind == "service" else labels.get("com.docker.swarm.service.name", "")
    if not full.startswith(ns + "_"):
        return None
    name = full[len(ns) + 1:]
    candidates = []
    for cf in iter_compose(ctx):
        if isinstance(cf, CheckError) or name not in cf.services:
            continue
        project = str(cf.top("name") or os.path.basename(cf.folder))
        candidates.append((project != ns, cf.path, cf))
    if not candidates:
        return None
    return from_compose(sorted(candidates, key=lambda c: c[:2])[0][2].services[name])
