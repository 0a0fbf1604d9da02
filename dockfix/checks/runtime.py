"""CIS section 5: the container runtime.

Each rule looks at one :class:`~dockfix.sources.workload.Workload` at a time — a container of the engine,
a swarm service, or a service of a compose file — and the same rule serves all three. Everything
comes from one fetch of the engine per scan (see dockfix.engine); no rule talks to the engine.
"""

from __future__ import annotations

import re
from typing import Callable, Iterable

from dockfix.model import CRITICAL, HIGH, INFO, LOW, MEDIUM, CheckError, Location, Result, Severity, Status, check
from dockfix.context import Context, NotApplicable
from dockfix.sources.gather import gather
from dockfix.sources.workload import DEFAULT_CAPS, KINDS, Workload, has_opt, is_docker_socket, is_sensitive, opt_bool

#: A rule's verdict: (status, evidence, compose keys that locate the setting).
Verdict = tuple[Status, str, tuple]


def ok(evidence: str, *keys) -> Verdict:
    return Status.PASS, evidence, keys


def bad(evidence: str, *keys) -> Verdict:
    return Status.FAIL, evidence, keys


def judge(evidence: str, *keys) -> Verdict:
    return Status.MANUAL, evidence, keys


Rule = Callable[[Context, Workload], "Verdict | None"]


def workload_check(id: str, *, cis: str, title: str, severity: Severity, explanation: str, manual: str,
                   remediation: str, needs: str | None = None, kinds: Iterable[str] = KINDS,
                   running_only: bool = False, gate: Callable[[Context], None] | None = None):
    """Declare a section-5 check from a rule over one workload: one finding per subject."""
    kinds = tuple(kinds)

    def deco(rule: Rule):
        def run(ctx: Context) -> list[Result]:
            return run_workloads(ctx, rule, kinds, needs, running_only, gate)

        return check(id, cis=cis, title=title, severity=severity, explanation=explanation, manual=manual,
                     remediation=remediation)(run)

    return deco


def run_workloads(ctx: Context, rule: Rule, kinds: tuple, needs: str | None = None, running_only: bool = False,
                  gate: Callable[[Context], None] | None = None) -> list[Result]:
    """One result per workload of ``kinds`` that ``rule`` judges."""
    if gate is not None:
        gate(ctx)
    workloads, errors = gather(ctx, kinds)
    results = list(errors)
    for w in workloads:
        if needs is not None and needs not in w.has:
            continue
        if running_only and w.kind == "container" and not w.running:
            continue
        v = rule(ctx, w)
        if v is None:
            continue
        status, evidence, keys = v
        if w.kind == "container" and not w.running:
            evidence += f" (container is not running: {w.data.get('state') or 'created or stopped'})"
        results.append(Result(status, evidence, subject=w.subject, location=w.location(*keys),
                              data={"kind": w.kind, "name": w.name, **({"compose": w.data["compose"]} if "compose" in w.data else {})}))
    return results


RECREATE = "Recreate the container (docker run / compose file / service spec) without it."


# ---------------------------------------------------------------------- 5.1
@check(
    "swarm-mode", cis="5.1", severity=LOW, subject="engine",
    title="Swarm mode is not enabled, if not needed",
    explanation="A swarm node opens management ports, keeps a Raft store of secrets and accepts work from the "
    "managers. On a host that does not take part in a swarm that is attack surface with no purpose.",
    manual="docker info --format '{{.Swarm.LocalNodeState}}'",
    remediation="If the host does not need swarm, run `docker swarm leave` (on a manager: --force). This removes "
    "its services and secrets from this node, so check first what runs there.",
)
def swarm_mode(ctx: Context) -> Result:
    sw = ctx.info().get("Swarm") or {}
    state = sw.get("LocalNodeState") or "inactive"
    if state == "inactive":
        return Result.ok("swarm mode is inactive")
    role = "manager" if sw.get("ControlAvailable") else "worker"
    return Result.manual(f"swarm mode is {state} (this node is a {role}, node id {sw.get('NodeID', '?')}): "
                         "confirm the host is meant to be part of a swarm")


# ---------------------------------------------------------------------- 5.2, 5.3
def _machine_file(ctx: Context, path: str) -> str | None:
    """A kernel file of the machine running the engine (only readable when that is this machine)."""
    local = ctx.host.is_live or (ctx.engine is not None and (ctx.host.docker_host or "").startswith("unix://"))
    if not local:
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return None


def _lsm(ctx: Context, name: str) -> tuple[bool, str]:
    """(the kernel enforces the LSM ``name``, how we know)."""
    opts: list[str] = []
    if ctx.engine is not None:
        try:
            opts = ctx.info().get("SecurityOptions") or []
        except CheckError:
            opts = []
    if any(o == f"name={name}" or o.startswith(f"name={name},") for o in opts):
        return True, "docker info lists it under SecurityOptions"
    if name == "apparmor":
        value = _machine_file(ctx, "/sys/module/apparmor/parameters/enabled")
        if value == "Y":
            return True, "/sys/module/apparmor/parameters/enabled is Y"
        return False, ("the kernel has no AppArmor: /sys/module/apparmor/parameters/enabled is "
                       f"{'absent' if value is None else repr(value)} and docker info lists no name=apparmor")
    value = _machine_file(ctx, "/sys/fs/selinux/enforce")
    if value is not None:
        return True, f"/sys/fs/selinux is mounted (enforce={value})"
    return False, "the kernel has no SELinux: /sys/fs/selinux is absent and docker info lists no name=selinux"


@workload_check(
    "apparmor-profile", cis="5.2", severity=MEDIUM, needs="security_opt",
    kinds=("container", "compose"),
    title="An AppArmor profile is applied to each container, where the kernel has AppArmor",
    explanation="AppArmor confines what files, capabilities and mounts a process may use. Docker applies its "
    "docker-default profile unless a container is started with apparmor=unconfined, which removes that layer of "
    "protection.",
    manual="docker inspect --format '{{.Name}} {{.AppArmorProfile}}' $(docker ps -q)",
    remediation="Start the container without --security-opt apparmor=unconfined (or with a custom profile "
    "loaded through apparmor_parser). " + RECREATE,
)
def apparmor_profile(ctx: Context, w: Workload):
    if has_opt(w.security_opt, "apparmor", "unconfined"):  # apparmor=unconfined or apparmor:unconfined
        return bad("security_opt sets apparmor=unconfined", "security_opt")
    present, why = _lsm(ctx, "apparmor")
    if not present:
        return Status.SKIP, why, ()
    if w.kind == "container" and w.running and w.apparmor in ("", "unconfined"):
        return bad(f"runs with AppArmor profile {w.apparmor or '(none)'}")
    return ok(f"AppArmor profile {w.apparmor or 'docker-default (applied at start)'}")


@workload_check(
    "selinux-options", cis="5.3", severity=MEDIUM, needs="security_opt",
    kinds=("container", "compose"),
    title="SELinux security options are set, where the kernel has SELinux",
    explanation="With SELinux the daemon labels each container's processes and files so that one container cannot "
    "touch another's or the host's. label=disable switches this off for the container.",
    manual="docker inspect --format '{{.Name}} {{.HostConfig.SecurityOpt}} {{.ProcessLabel}}' $(docker ps -q)",
    remediation="Run dockerd with --selinux-enabled and start containers without --security-opt label=disable "
    "(use label=type:... for a specific type). " + RECREATE,
)
def selinux_options(ctx: Context, w: Workload):
    if has_opt(w.security_opt, "label", "disable"):  # label=disable or label:disable
        return bad("security_opt sets label=disable", "security_opt")
    present, why = _lsm(ctx, "selinux")
    if not present:
        return Status.SKIP, why, ()
    return ok("SELinux labelling is not disabled" + (f" ({', '.join(w.security_opt)})" if w.security_opt else ""))


# ---------------------------------------------------------------------- 5.4 - 5.6
@workload_check(
    "capabilities", cis="5.4", severity=HIGH, needs="cap_add",
    title="Linux kernel capabilities are restricted within containers",
    explanation="Capabilities split root's power into pieces. Docker already drops the dangerous ones; adding "
    "them back (SYS_ADMIN, NET_ADMIN, SYS_PTRACE, ALL, ...) gives the container powers that often lead straight "
    "to the host.",
    manual="docker inspect --format '{{.Name}} add={{.HostConfig.CapAdd}} drop={{.HostConfig.CapDrop}}' $(docker ps -aq)",
    remediation="Remove the added capabilities (--cap-add / cap_add) that the application does not need; better, "
    "drop all and add back only the needed ones. " + RECREATE,
)
def capabilities(ctx: Context, w: Workload):
    extra = sorted(c for c in w.cap_add if c not in DEFAULT_CAPS)
    if extra:
        return bad(f"adds capabilities beyond the default set: {', '.join(extra)}", "cap_add")
    dropped = f"; drops {', '.join(sorted(w.cap_drop))}" if w.cap_drop else ""
    added = f"adds only default capabilities ({', '.join(sorted(w.cap_add))})" if w.cap_add else "adds no capabilities"
    return ok(added + dropped)


@workload_check(
    "privileged", cis="5.5", severity=CRITICAL, needs="privileged",
    title="Privileged containers are not used",
    explanation="A privileged container gets every capability, every device of the host and no seccomp, AppArmor "
    "or cgroup device restrictions. Root in it is, for practical purposes, root on the host.",
    manual="docker inspect --format '{{.Name}} {{.HostConfig.Privileged}}' $(docker ps -aq)",
    remediation="Run the container without --privileged (privileged: true); grant the one capability or device it "
    "really needs instead. " + RECREATE,
)
def privileged(ctx: Context, w: Workload):
    if not w.privileged:
        return ok("not privileged")
    r = ctx.rootless
    if r is not None and w.kind == "container":  # still a fail: it is the user's whole namespace
        return bad(f"runs privileged (on the {r.describe()}: every capability and device of that user's namespace, "
                   "not root on the host)", "privileged")
    return bad("runs privileged", "privileged")


@workload_check(
    "sensitive-mounts", cis="5.6", severity=HIGH, needs="mounts",
    title="Sensitive host system directories are not mounted into containers",
    explanation="Mounting /, /etc, /usr, /lib, /lib64, /boot, /dev, /proc or /sys (or a folder under them) lets the "
    "container read host secrets such as /etc/shadow and, when writable, change the host's programs and "
    "configuration.",
    manual="docker inspect --format '{{.Name}} {{range .Mounts}}{{.Source}}:{{.Destination}}:{{.RW}} {{end}}' $(docker ps -aq)",
    remediation="Remove the bind mount of the host directory, or mount only the specific file the application "
    "needs, read-only. " + RECREATE,
)
def sensitive_mounts(ctx: Context, w: Workload):
    hits = [m for m in w.mounts if m.type == "bind" and is_sensitive(m.source) and not is_docker_socket(m.source)]
    if hits:
        desc = ", ".join(f"{m.source} -> {m.target} ({'read-write' if m.rw else 'read-only'})" for m in hits)
        return bad(f"mounts sensitive host directories: {desc}", "volumes", hits[0].target)
    binds = [m.source for m in w.mounts if m.type == "bind"]
    return ok(f"no sensitive host directory mounted (bind mounts: {', '.join(binds) or 'none'})")


# ---------------------------------------------------------------------- 5.7 sshd, from the host's process table
def _ppid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("utf-8", "replace")
    except OSError:
        return 0
    rest = raw[raw.rfind(")") + 2:].split()
    return int(rest[1]) if len(rest) > 1 else 0


def _cgroups(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def sshd_processes(ctx: Context) -> dict[int, dict]:
    """{pid: {"name", "cgroup", "ancestors"}} of the sshd processes on this machine (memoised).

    One pass reads every process's name; only the few named sshd are looked at further: their
    cgroups and their chain of parents, which tell the container they belong to.
    """

    def find() -> dict[int, dict]:
        if not (ctx.host.docker_host or "").startswith("unix://"):
            raise NotApplicable(f"the engine {ctx.host.docker_host} is remote: its process table is not visible here")
        from dockfix.engine import process_names

        found = {}
        for pid, name in process_names().items():
            if not name.startswith("sshd"):
                continue
            chain, p = [], pid
            while p > 1 and len(chain) < 64:
                chain.append(p)
                p = _ppid(p)
            found[pid] = {"name": name, "cgroup": _cgroups(pid), "ancestors": chain}
        return found

    return ctx.memo("sshd_processes", find)


@check(
    "sshd", cis="5.7", severity=MEDIUM,
    title="sshd is not run within containers",
    explanation="An SSH daemon inside a container is one more service to patch, more credentials to manage, and a "
    "way in that bypasses the engine's own access control and audit. `docker exec` already gives a shell when one "
    "is needed. dockfix finds sshd in the host's process table (nothing is executed inside the containers) and in "
    "the Dockerfiles it scans (an openssh-server installed or sshd started).",
    manual="ps -eo pid,comm | grep sshd; then cat /proc/PID/cgroup to see which container it belongs to; "
    "grep -nE 'openssh-server|sshd' Dockerfile",
    remediation="Remove sshd from the image and its start command; use docker exec for maintenance.",
)
def sshd(ctx: Context) -> list[Result]:
    from dockfix.checks.images import dockerfiles

    results: list[Result] = []
    if ctx.engine is not None:
        results += run_workloads(ctx, _sshd_container, ("container",), running_only=True)
    for path, ins in dockerfiles(ctx):
        if isinstance(ins, CheckError):
            results.append(Result.error(str(ins), subject=f"dockerfile:{path}"))
            continue
        hits = [i for i in ins if i.cmd in ("RUN", "CMD", "ENTRYPOINT") and _SSHD.search(i.original)]
        subject = f"dockerfile:{path}"
        if hits:
            i = hits[0]
            results.append(Result.fail(f"line {i.line}: {i.cmd} {'installs' if 'openssh' in i.original else 'starts'} "
                                       f"sshd: {i.original[:120]}", subject=subject, location=Location(path, i.line)))
        else:
            results.append(Result.ok("no sshd installed or started", subject=subject, location=Location(path)))
    if not results and ctx.engine is None:
        raise NotApplicable("the engine was not scanned (--no-engine) and no Dockerfile was given with --path")
    return results


_SSHD = re.compile(r"\bopenssh-server\b|\bopenssh\b(?!-client)|(^|[\s/\"'\[])sshd\b")


def _sshd_container(ctx: Context, w: Workload):
    cid = w.data.get("id", "")
    hits = [(pid, p["name"]) for pid, p in sshd_processes(ctx).items()
            if (cid and cid in p["cgroup"]) or (w.pid and w.pid in p["ancestors"])]
    if hits:
        return bad("sshd runs in the container: " + ", ".join(f"host pid {p} ({n})" for p, n in sorted(hits)))
    if not w.pid:
        return None
    return ok(f"no sshd among its processes (first process host pid {w.pid})")


# ---------------------------------------------------------------------- 5.8, 5.9, 5.14 ports
@workload_check(
    "privileged-ports", cis="5.8", severity=MEDIUM, needs="ports",
    title="Privileged ports are not mapped within containers",
    explanation="Host ports below 1024 are reserved for services the administrator runs on purpose. Publishing a "
    "container on one lets it stand in for a system service such as SSH, DNS or a web server on that port.",
    manual="docker ps --format '{{.Names}} {{.Ports}}'",
    remediation="Publish the container on a host port of 1024 or higher (-p 8080:80), or put a reverse proxy in "
    "front. " + RECREATE,
)
def privileged_ports(ctx: Context, w: Workload):
    low = [p for p in w.ports if p.host_port is not None and 0 < p.host_port < 1024]
    if low:
        return bad("publishes privileged host ports: " + ", ".join(map(str, low)), "ports", low[0].container_port)
    if not w.ports:
        return ok("publishes no ports")
    return ok("published host ports are all 1024 or higher: " + ", ".join(map(str, w.ports)))


@workload_check(
    "needed-ports", cis="5.9", severity=LOW, needs="ports",
    title="Only needed ports are open on the container",
    explanation="Every published port is a way into the container from the network. Whether a port is needed is "
    "something only the people who run the application know, so each published port is listed for review.",
    manual="docker port CONTAINER",
    remediation="Stop publishing ports the application does not need (drop -p / ports entries). " + RECREATE,
)
def needed_ports(ctx: Context, w: Workload):
    if not w.ports:
        return ok("publishes no ports")
    return judge("publishes " + ", ".join(map(str, w.ports)) + ": confirm each is needed", "ports")


@workload_check(
    "port-bind-interface", cis="5.14", severity=MEDIUM, needs="ports",
    title="Incoming container traffic is bound to a specific host interface",
    explanation="A port published without an address listens on every interface of the host, including public "
    "ones, even when the service was meant only for the local network or for a proxy on the same host.",
    manual="docker ps --format '{{.Names}} {{.Ports}}' | grep 0.0.0.0",
    remediation="Publish on a chosen address (-p 127.0.0.1:8080:80 or the internal interface's IP). " + RECREATE,
)
def port_bind_interface(ctx: Context, w: Workload):
    if not w.ports:
        return ok("publishes no ports")
    wide = [p for p in w.ports if p.all_interfaces]
    if w.kind == "service":
        return bad("swarm publishes through the ingress mesh on every interface of every node: "
                   + ", ".join(map(str, wide)), "ports")
    if wide:
        return bad("publishes on every host interface: " + ", ".join(map(str, wide)), "ports", wide[0].container_port)
    return ok("published ports are bound to specific addresses: " + ", ".join(map(str, w.ports)))


# ---------------------------------------------------------------------- namespaces 5.10 5.16 5.17 5.21 5.31
def _namespace_rule(id: str, cis: str, attr: str, compose_key: str, what: str, flag: str, why: str,
                    severity: Severity = HIGH):
    @workload_check(
        id, cis=cis, severity=severity, needs=attr,
        title=f"The host's {what} namespace is not shared",
        explanation=why,
        manual=f"docker inspect --format '{{{{.Name}}}} {{{{.HostConfig.{flag}}}}}' $(docker ps -aq)",
        remediation=f"Remove --{'network' if attr == 'network_mode' else compose_key}=host ({compose_key}: host). " + RECREATE,
    )
    def rule(ctx: Context, w: Workload):
        mode = getattr(w, attr)
        if mode == "host":
            return bad(f"shares the host's {what} namespace ({compose_key}: host)", compose_key)
        return ok(f"{what} namespace: {mode or 'private (default)'}")

    return rule


_namespace_rule("host-network", "5.10", "network_mode", "network_mode", "network", "NetworkMode",
                "With the host's network namespace the container sees every interface of the host, can bind any "
                "port on it and can reach services listening only on localhost.")
_namespace_rule("host-pid", "5.16", "pid_mode", "pid", "process", "PidMode",
                "Sharing the host's process namespace lets the container see every process of the host and, as root, "
                "signal or trace them and read their environment.")
_namespace_rule("host-ipc", "5.17", "ipc_mode", "ipc", "IPC", "IpcMode",
                "Sharing the host's IPC namespace exposes the host's shared memory segments and semaphores, which "
                "other programs may use to pass data they assume private.", MEDIUM)
_namespace_rule("host-uts", "5.21", "uts_mode", "uts", "UTS", "UTSMode",
                "Sharing the host's UTS namespace lets the container change the host's hostname and domain name.",
                MEDIUM)
_namespace_rule("host-userns", "5.31", "userns_mode", "userns_mode", "user", "UsernsMode",
                "When the daemon remaps users, --userns=host turns that protection off for the container: its root "
                "is the host's root again.", MEDIUM)


# ---------------------------------------------------------------------- limits 5.11 5.12 5.29
@workload_check(
    "memory-limit", cis="5.11", severity=MEDIUM, needs="memory",
    title="The memory usage of containers is limited",
    explanation="A container without a memory limit can use all of the host's memory, and the kernel's OOM killer "
    "may then kill other containers or host services instead of the one at fault.",
    manual="docker inspect --format '{{.Name}} {{.HostConfig.Memory}}' $(docker ps -aq)    # 0 means no limit",
    remediation="Set a memory limit suited to the application (--memory 512m; compose mem_limit or "
    "deploy.resources.limits.memory; `docker update --memory` works on a running container).",
)
def memory_limit(ctx: Context, w: Workload):
    if w.memory > 0:
        return ok(f"memory limited to {w.memory // (1024 * 1024)} MiB")
    return bad("no memory limit", "mem_limit")


@workload_check(
    "cpu-priority", cis="5.12", severity=LOW, needs="cpu",
    title="CPU priority is set appropriately on containers",
    explanation="Without CPU shares or a CPU limit every container competes equally for the processors, so one busy "
    "container can slow every other workload on the host.",
    manual="docker inspect --format '{{.Name}} shares={{.HostConfig.CpuShares}} cpus={{.HostConfig.NanoCpus}}' $(docker ps -aq)",
    remediation="Give the container CPU shares or a CPU limit (--cpu-shares 512, --cpus 1.5; compose cpu_shares, "
    "cpus or deploy.resources.limits.cpus; `docker update` works live).",
)
def cpu_priority(ctx: Context, w: Workload):
    # the benchmark: CPU shares of 0 or 1024 mean none are in place (1024 is the default weight)
    default = {k: v for k, v in w.cpu.items() if k in ("CpuShares", "cpu_shares") and str(v) in ("0", "1024")}
    cpu = {k: v for k, v in w.cpu.items() if k not in default}
    if cpu:
        return ok("CPU settings: " + ", ".join(f"{k}={v}" for k, v in sorted(cpu.items())))
    shown = f" ({', '.join(f'{k}={v}' for k, v in default.items())} is the default weight)" if default else ""
    return bad(f"no CPU shares or CPU limit{shown}", "cpu_shares" if default else "cpus")


@workload_check(
    "pids-limit", cis="5.29", severity=MEDIUM, needs="pids_limit",
    title="The PIDs cgroup limit is used",
    explanation="Without a PIDs limit a process in the container can fork until the host runs out of process ids "
    "(a fork bomb), which stops every service on the host from starting processes.",
    manual="docker inspect --format '{{.Name}} {{.HostConfig.PidsLimit}}' $(docker ps -aq)",
    remediation="Set --pids-limit (compose pids_limit or deploy.resources.limits.pids) to a value the application "
    "never reaches in normal work; `docker update --pids-limit` works live.",
)
def pids_limit(ctx: Context, w: Workload):
    if w.pids_limit > 0:
        return ok(f"PIDs limited to {w.pids_limit}")
    return bad("no PIDs limit", "pids_limit")


# ---------------------------------------------------------------------- 5.13 read-only rootfs
@workload_check(
    "read-only-rootfs", cis="5.13", severity=LOW, needs="read_only",
    title="The container's root filesystem is mounted read-only",
    explanation="With a read-only root filesystem an intruder cannot change the container's programs or drop tools "
    "into it, and the places the application writes to are explicit volumes or tmpfs mounts.",
    manual="docker inspect --format '{{.Name}} {{.HostConfig.ReadonlyRootfs}}' $(docker ps -aq)",
    remediation="Run with --read-only (compose read_only: true) and give the application volumes or tmpfs for the "
    "paths it writes. " + RECREATE,
)
def read_only_rootfs(ctx: Context, w: Workload):
    return ok("root filesystem is read-only") if w.read_only else bad("root filesystem is writable", "read_only")


# ---------------------------------------------------------------------- 5.15 restart policy
@workload_check(
    "restart-policy", cis="5.15", severity=LOW, needs="restart",
    title="The restart policy is 'on-failure' with at most 5 retries",
    explanation="A container that restarts forever hides a crash loop, and an attacker who can crash it gets endless "
    "fresh attempts. 'on-failure' with a small maximum keeps a transient failure recoverable but stops a loop.",
    manual="docker inspect --format '{{.Name}} {{.HostConfig.RestartPolicy}}' $(docker ps -aq)",
    remediation="Use --restart on-failure:5 (`docker update --restart on-failure:5` works live; compose restart: "
    "on-failure:5; swarm: --restart-condition on-failure --restart-max-attempts 5).",
)
def restart_policy(ctx: Context, w: Workload):
    if w.kind == "container" and "com.docker.swarm.task.id" in w.labels:
        return None  # a swarm task: its service's policy is what counts (reported for the service)
    name, retries = w.restart
    key = "restart" if w.kind != "service" else "deploy"
    if name in ("no", "", "none"):
        return ok("no restart policy")
    if name in ("on-failure", "any") and 0 < retries <= 5:
        return ok(f"restart policy {name} with at most {retries} retries")
    if retries == 0:
        return bad(f"restart policy {name} restarts without limit", key)
    return bad(f"restart policy {name} allows {retries} retries (more than 5)", key)


# ---------------------------------------------------------------------- 5.18 devices, 5.19 ulimits
@workload_check(
    "host-devices", cis="5.18", severity=MEDIUM, needs="devices",
    title="Host devices are not directly exposed to containers",
    explanation="A host device passed into a container (a disk, /dev/mem, a USB device) can be read, written or "
    "reconfigured from inside it, below every filesystem permission of the host.",
    manual="docker inspect --format '{{.Name}} {{.HostConfig.Devices}}' $(docker ps -aq)",
    remediation="Remove --device (compose devices) unless the device is required, and then grant only the access "
    "needed (e.g. :r). " + RECREATE,
)
def host_devices(ctx: Context, w: Workload):
    if w.devices:
        return bad("host devices exposed: " + ", ".join(w.devices), "devices")
    return ok("no host devices")


@workload_check(
    "ulimit-override", cis="5.19", severity=INFO, needs="ulimits",
    title="The default ulimit is overwritten at runtime only if needed",
    explanation="Per-container ulimits replace the daemon's defaults. That is right when an application needs "
    "different limits, but an override raised without reason lets one container hold more files or processes than "
    "the host's policy intends.",
    manual="docker inspect --format '{{.Name}} {{.HostConfig.Ulimits}}' $(docker ps -aq)",
    remediation="Remove --ulimit overrides that are not needed; set host-wide defaults in daemon.json default-ulimits.",
)
def ulimit_override(ctx: Context, w: Workload):
    if w.ulimits:
        return judge("overrides ulimits: " + ", ".join(w.ulimits) + "; confirm they are needed", "ulimits")
    return ok("uses the daemon's default ulimits")


# ---------------------------------------------------------------------- 5.20 mount propagation
@workload_check(
    "mount-propagation", cis="5.20", severity=MEDIUM, needs="mounts",
    title="Mount propagation mode is not set to shared",
    explanation="With shared propagation, mounts made inside the container appear on the host (and the other way "
    "round), so a container can change what the host sees mounted.",
    manual="docker inspect --format '{{.Name}} {{range .Mounts}}{{.Destination}}:{{.Propagation}} {{end}}' $(docker ps -aq)",
    remediation="Mount the volume with private or slave propagation (drop :shared / :rshared). " + RECREATE,
)
def mount_propagation(ctx: Context, w: Workload):
    shared = [m for m in w.mounts if m.propagation in ("shared", "rshared")]
    if shared:
        return bad("shared mount propagation: " + ", ".join(f"{m.source} -> {m.target} ({m.propagation})" for m in shared),
                   "volumes", shared[0].target)
    return ok("no mount uses shared propagation")


# ---------------------------------------------------------------------- 5.22 seccomp, 5.26 nnp
@workload_check(
    "seccomp-unconfined", cis="5.22", severity=HIGH, needs="security_opt",
    title="The default seccomp profile is not disabled",
    explanation="Seccomp blocks system calls containers have no business making (keyctl, kexec, mount, ...). "
    "seccomp=unconfined removes that filter and exposes the whole kernel interface to the container.",
    manual="docker inspect --format '{{.Name}} {{.HostConfig.SecurityOpt}}' $(docker ps -aq) | grep seccomp",
    remediation="Start the container without --security-opt seccomp=unconfined, or with a custom profile that allows "
    "just what it needs. " + RECREATE,
)
def seccomp_unconfined(ctx: Context, w: Workload):
    if has_opt(w.security_opt, "seccomp", "unconfined"):
        return bad("security_opt sets seccomp=unconfined", "security_opt")
    if w.privileged:
        return bad("runs privileged, which turns seccomp off", "privileged")
    custom = [o for o in w.security_opt if o.startswith("seccomp")]
    return ok("seccomp profile: " + (custom[0] if custom else "the engine's default"))


def _daemon_nnp(ctx: Context) -> bool:
    try:
        s = ctx.daemon().get("no-new-privileges")
    except CheckError:
        return False
    return s is not None and s.value is True


@workload_check(
    "container-no-new-privileges", cis="5.26", severity=MEDIUM, needs="security_opt",
    title="Containers are restricted from acquiring additional privileges",
    explanation="no-new-privileges stops a process from gaining privileges through setuid or setgid programs, so an "
    "intruder who lands as an ordinary user in the container cannot climb to root through them.",
    manual="docker inspect --format '{{.Name}} {{.HostConfig.SecurityOpt}}' $(docker ps -aq) | grep no-new-privileges",
    remediation="Start containers with --security-opt no-new-privileges (compose security_opt: "
    "[\"no-new-privileges:true\"]), or set \"no-new-privileges\": true in daemon.json for all new containers.",
)
def container_nnp(ctx: Context, w: Workload):
    # the container's value overrides the daemon's default, in both directions
    value = opt_bool(w.security_opt, "no-new-privileges")
    if value is True:
        return ok("security_opt sets no-new-privileges")
    if value is False:
        return bad("security_opt sets no-new-privileges to false, overriding any daemon default", "security_opt")
    if _daemon_nnp(ctx):
        return ok("no-new-privileges is set daemon-wide")
    return bad("no-new-privileges is not set (neither on the container nor daemon-wide)", "security_opt")


# ---------------------------------------------------------------------- 5.23 5.24 exec
_EXEC_MANUAL = ("dockfix cannot see past `docker exec` calls: the engine keeps no history of them. Look at the "
                "daemon's log in debug mode or an auditd rule on the docker binary (-w /usr/bin/docker -k docker) "
                "for exec calls made with {flag}.")


@check(
    "exec-privileged", cis="5.23", severity=MEDIUM, subject="engine",
    title="docker exec is not used with --privileged",
    explanation="`docker exec --privileged` gives the new process every capability even in a container that was "
    "started without them, undoing the container's confinement for that command.",
    manual="auditctl -w /usr/bin/docker -k docker; ausearch -k docker | grep -- 'exec.*--privileged'",
    remediation="Do not use --privileged with docker exec; an authorization plugin can refuse such requests.",
)
def exec_privileged(ctx: Context) -> Result:
    return Result.manual(_EXEC_MANUAL.format(flag="--privileged"))


@check(
    "exec-root", cis="5.24", severity=LOW, subject="engine",
    title="docker exec is not used with --user=root",
    explanation="`docker exec --user root` runs the command as root inside a container whose application was "
    "deliberately run as an ordinary user.",
    manual="auditctl -w /usr/bin/docker -k docker; ausearch -k docker | grep -- 'exec.*--user'",
    remediation="Do not use --user root with docker exec; an authorization plugin can refuse such requests.",
)
def exec_root(ctx: Context) -> Result:
    return Result.manual(_EXEC_MANUAL.format(flag="--user root (or -u 0)"))


# ---------------------------------------------------------------------- 5.25 cgroup, 5.27 health
@workload_check(
    "container-cgroup", cis="5.25", severity=LOW, needs="cgroup_parent",
    title="cgroup usage is confirmed",
    explanation="--cgroup-parent moves a container out from under the cgroup the daemon manages, and so out from "
    "under the limits set for all containers. That is only right when done on purpose.",
    manual="docker inspect --format '{{.Name}} {{.HostConfig.CgroupParent}}' $(docker ps -aq)",
    remediation="Remove --cgroup-parent (compose cgroup_parent) unless the other parent cgroup is intended.",
)
def container_cgroup(ctx: Context, w: Workload):
    if w.cgroup_parent:
        return judge(f"runs under cgroup parent {w.cgroup_parent}: confirm this is intended", "cgroup_parent")
    return ok("default cgroup parent")


def _image_health(ctx: Context, image: str) -> bool | None:
    """Whether the local image (by reference or id) declares a HEALTHCHECK; None when unknown."""
    from dockfix.checks.images import image_index

    try:
        img = image_index(ctx).get(image) or image_index(ctx).get(image.split("@")[0])
    except CheckError:
        return None
    if img is None:
        return None
    h = (img.get("Config") or {}).get("Healthcheck")
    return bool(h and h.get("Test") and str(h["Test"][0]).upper() != "NONE")


@workload_check(
    "container-health", cis="5.27", severity=LOW, needs="healthcheck",
    title="Container health is checked at runtime",
    explanation="A health check lets the engine (and swarm) tell a container that runs from one that works, so a "
    "hung application is noticed and restarted or taken out of service instead of silently failing.",
    manual="docker inspect --format '{{.Name}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' $(docker ps -q)",
    remediation="Add a HEALTHCHECK to the image, or --health-cmd (compose healthcheck:) to the container.",
)
def container_health(ctx: Context, w: Workload):
    if w.healthcheck is False:
        return bad("the health check is disabled", "healthcheck")
    if w.healthcheck:
        status = w.data.get("health")
        return ok("health check configured" + (f" (status: {status})" if status else ""))
    image = w.image_id if w.kind == "container" else w.image
    from_image = _image_health(ctx, image) if ctx.engine is not None else None
    if from_image:
        return ok(f"health check inherited from the image {w.image}")
    unknown = " (the image is not on this engine)" if from_image is None and w.kind != "container" else ""
    return bad(f"no health check (neither set here nor in the image {w.image}){unknown}", "healthcheck")


# ---------------------------------------------------------------------- 5.28 current image
@workload_check(
    "image-current", cis="5.28", severity=LOW, kinds=("container",),
    title="Containers run the current version of their image",
    explanation="A container keeps the image it was created from. When the tag has since been updated (for a "
    "security fix, say), the container still runs the old layers until it is recreated.",
    manual="docker inspect --format '{{.Name}} {{.Config.Image}} {{.Image}}' $(docker ps -q); docker image inspect --format '{{.Id}}' IMAGE",
    remediation="Pull the image, then recreate the container so that it runs what the tag points to now.",
)
def image_current(ctx: Context, w: Workload):
    from dockfix.checks.images import image_index

    ref = w.image
    if not ref or ref.startswith("sha256:") or ref == w.image_id:
        return judge(f"created from the image id {ref[:19]}, not a tag: confirm it is the version wanted")
    now = image_index(ctx).get(ref) or image_index(ctx).get(ref + ":latest")
    if now is None:
        return judge(f"the tag {ref} no longer names an image on this engine; the container runs {w.image_id[:19]}")
    if now.get("Id") != w.image_id:
        return bad(f"runs {w.image_id[:19]} but {ref} now points to {now.get('Id', '')[:19]}")
    return ok(f"runs the image {ref} currently points to ({w.image_id[:19]})")


# ---------------------------------------------------------------------- 5.30 default bridge, 5.32 socket
@workload_check(
    "default-bridge", cis="5.30", severity=LOW, needs="networks", kinds=("container", "compose"),
    title="Docker's default bridge docker0 is not used",
    explanation="On the default bridge every container can reach every other one, and names do not resolve. "
    "User-defined networks isolate groups of containers from each other and give them DNS.",
    manual="docker network inspect bridge --format '{{range .Containers}}{{.Name}} {{end}}'",
    remediation="Create a user-defined network (docker network create app) and attach the container to it instead "
    "of the default bridge. " + RECREATE,
)
def default_bridge(ctx: Context, w: Workload):
    if w.network_mode in ("bridge", "default") or "bridge" in w.networks:
        return bad("attached to the default bridge network", "network_mode")
    return ok("networks: " + (", ".join(w.networks) or w.network_mode or "the project's own network"))


@workload_check(
    "docker-socket-mount", cis="5.32", severity=CRITICAL, needs="mounts",
    title="The Docker socket is not mounted inside any container",
    explanation="Whoever can talk to the Docker socket can start a privileged container with the host's root "
    "filesystem mounted: a container holding the socket, even read-only, controls the host.",
    manual="docker inspect --format '{{.Name}} {{range .Mounts}}{{.Source}} {{end}}' $(docker ps -aq) | grep docker.sock",
    remediation="Remove the mount of docker.sock (or /run, /var/run). If a tool needs the API, give it a "
    "filtering proxy that allows only the calls it needs. " + RECREATE,
)
def docker_socket_mount(ctx: Context, w: Workload):
    hits = [m for m in w.mounts if m.type == "bind" and is_docker_socket(m.source)]
    if hits:
        return bad("mounts the Docker socket: " + ", ".join(f"{m.source} -> {m.target}" for m in hits),
                   "volumes", hits[0].target)
    return ok("does not mount the Docker socket")
