"""CIS section 1: the host around the daemon (partition, docker group, audit rules, versions).

The audit items (1.1.3-1.1.18) are one table, :data:`AUDIT_TARGETS`; the fix that writes an
audit rules file is generated from the same table.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Callable

from dockfix.model import INFO, LOW, MEDIUM, CheckError, Fix, Location, Result, Safety, Undetermined, check
from dockfix.context import Context, NotApplicable

DEFAULT_DATA_ROOT = "/var/lib/docker"
AUDIT_RULE_FILES_DIR = "/etc/audit/rules.d"
AUDIT_RULES = "/etc/audit/audit.rules"

#: (CIS number, path as the benchmark names it) of every file or folder the audit items watch.
#: On a real host some paths are found elsewhere (dockerd in /usr/sbin on Debian, the unit in
#: /lib/systemd/system, a moved data root): :func:`audit_target_path` finds the one to watch.
AUDIT_TARGETS: list[tuple[str, str]] = [
    ("1.1.3", "/usr/bin/dockerd"),
    ("1.1.4", "/run/containerd"),
    ("1.1.5", "/var/lib/docker"),
    ("1.1.6", "/etc/docker"),
    ("1.1.7", "/lib/systemd/system/docker.service"),
    ("1.1.8", "/run/containerd/containerd.sock"),
    ("1.1.9", "/lib/systemd/system/docker.socket"),
    ("1.1.10", "/etc/default/docker"),
    ("1.1.11", "/etc/docker/daemon.json"),
    ("1.1.12", "/etc/containerd/config.toml"),
    ("1.1.13", "/etc/sysconfig/docker"),
    ("1.1.14", "/usr/bin/containerd"),
    ("1.1.15", "/usr/bin/containerd-shim"),
    ("1.1.16", "/usr/bin/containerd-shim-runc-v1"),
    ("1.1.17", "/usr/bin/containerd-shim-runc-v2"),
    ("1.1.18", "/usr/bin/runc"),
]

BIN_DIRS = ("/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin", "/bin", "/sbin")


# ---------------------------------------------------------------------- the data root
def data_root(ctx: Context) -> tuple[str, str]:
    """(the daemon's data root, where it was learnt)."""
    if ctx.engine is not None:
        try:
            d = ctx.info().get("DockerRootDir")
            if d:
                return str(d), "docker info DockerRootDir"
        except CheckError:
            pass
    d = ctx.daemon()
    for key in ("data-root", "graph"):
        s = d.get(key)
        if s is not None and isinstance(s.value, str):
            return s.value, f"{key} in {s.location or s.source}"
    if ctx.rootless is not None:  # a rootless daemon's default: the user's ~/.local/share/docker
        return ctx.rootless.data_root, f"the {ctx.rootless.describe()}'s default: no data-root in {d.sources()}"
    if d.unknown:
        raise Undetermined(f"no data-root in {d.json_path}, and dockerd's command line is unknown: {d.unknown}")
    return DEFAULT_DATA_ROOT, f"the default: no data-root in {d.sources()}"


def _unescape_mount(s: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def mount_points(mountinfo: str) -> list[tuple[str, str, str]]:
    """(mount point, filesystem type, source) of every line of /proc/self/mountinfo."""
    out = []
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        f = left.split()
        r = right.split()
        if not sep or len(f) < 5:
            continue
        out.append((_unescape_mount(f[4]), r[0] if r else "?", _unescape_mount(r[1]) if len(r) > 1 else "?"))
    return out


def _covering_mount(path: str, mounts: list[tuple[str, str, str]]) -> tuple[str, str, str]:
    best = ("/", "?", "?")
    for mp, fstype, src in mounts:
        if (path == mp or path.startswith(mp.rstrip("/") + "/")) and len(mp) >= len(best[0]):
            best = (mp, fstype, src)
    return best


def judge_partition(root: str, real: str, where: str, mounts: list[tuple[str, str, str]]) -> Result:
    """Verdict of 1.1.1 from the mount table: its own mount point passes, the root filesystem fails,
    another partition (/var, say) is for the admin to judge."""
    mp, fstype, src = _covering_mount(real, mounts)
    ev = f"data root {root} ({where})"
    subject, data = root, {"path": root}
    if mp == real:
        return Result.ok(f"{ev} is a mount point of its own ({fstype} on {src})", subject=subject, data=data)
    if mp == "/":
        return Result.fail(f"{ev} is on the root filesystem ({fstype} on {src})", subject=subject, data=data)
    return Result.manual(f"{ev} is on the {mp} partition ({fstype} on {src}), shared with whatever else lives "
                         f"there: decide whether that is separate enough", subject=subject, data=data)


@check(
    "data-root-partition", cis="1.1.1", severity=LOW, subject="data-root",
    title="The Docker data root is on a separate partition",
    explanation="Images, containers and volumes live under the daemon's data root (/var/lib/docker by default). "
    "If it shares the root filesystem, a container that writes without limit, or a pile of old images, fills the "
    "disk the whole host depends on, and logins, logging and the daemon itself start failing. A partition of its "
    "own keeps that damage contained.",
    manual="mountpoint -- \"$(docker info -f '{{ .DockerRootDir }}')\"; findmnt --target /var/lib/docker",
    remediation="Give the data root its own partition or logical volume: stop dockerd, mount the new volume at the "
    "data root (copy the old content over), add it to /etc/fstab and start dockerd again.",
)
def data_root_partition(ctx: Context) -> Result:
    root, where = data_root(ctx)
    subject = root
    data = {"path": root}
    if ctx.host.is_live:
        try:
            with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
                mounts = mount_points(f.read())
        except OSError as e:
            raise CheckError(f"/proc/self/mountinfo: {e.strerror}") from None
        return judge_partition(root, os.path.realpath(root), where, mounts)
    fstab = ctx.host.read_text("/etc/fstab")
    for n, line in enumerate((fstab or "").splitlines(), 1):
        f = line.split()
        if len(f) >= 2 and not f[0].startswith("#") and _unescape_mount(f[1]).rstrip("/") == root.rstrip("/"):
            return Result.ok(f"data root {root} ({where}) has its own entry in /etc/fstab", subject=subject,
                             location=Location("/etc/fstab", n), data=data)
    raise NotApplicable(f"data root {root} ({where}): the mounts of a host tree under --root cannot be seen "
                        "(no /etc/fstab entry for it either)")


# ---------------------------------------------------------------------- the docker group
def _group_of_socket(ctx: Context) -> str:
    d = ctx.daemon()
    s = d.get("group")
    if s is None and d.unknown:
        raise Undetermined(f"the socket's group is not set in {d.json_path}, and dockerd's command line (-G) is "
                           f"unknown: {d.unknown}")
    return str(s.value) if s is not None and isinstance(s.value, str) else "docker"


@check(
    "docker-group-members", cis="1.1.2", severity=MEDIUM, subject="group:docker",
    title="Only trusted users can control the Docker daemon",
    explanation="Whoever can write to the Docker socket can start a privileged container with the host's / mounted, "
    "which is root on the host without a password. Membership of the docker group is therefore the same as root "
    "access, and every member should be someone the admin would give root to.",
    manual="getent group docker; awk -F: -v g=\"$(getent group docker | cut -d: -f3)\" '$4 == g {print $1}' /etc/passwd",
    remediation="Remove untrusted users from the docker group (gpasswd -d USER docker); give others sudo rules for "
    "the specific docker commands they need, or rootless Docker.",
)
def docker_group_members(ctx: Context) -> Result:
    group = _group_of_socket(ctx)
    if ctx.host.lstat("/etc/group") is None:
        raise NotApplicable("/etc/group does not exist on this host: group members cannot be listed")
    text = ctx.memo("etc_group", lambda: ctx.host.read_text("/etc/group") or "")
    entry = None
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split(":")
        if len(parts) >= 4 and parts[0] == group:
            entry = (n, parts)
            break
    if entry is None:
        return Result.ok(f"/etc/group has no {group} group: only root can use the Docker socket",
                         subject=f"group:{group}")
    n, parts = entry
    members = [m for m in parts[3].strip().split(",") if m]
    gid = parts[2]
    passwd = ctx.host.read_text("/etc/passwd") or ""
    primary = [p.split(":")[0] for p in passwd.splitlines() if len(p.split(":")) > 3 and p.split(":")[3] == gid]
    everyone = list(dict.fromkeys(members + primary))
    loc = Location("/etc/group", n)
    data = {"group": group, "gid": int(gid) if gid.isdigit() else None, "members": everyone}
    if not everyone:
        return Result.ok(f"the {group} group (gid {gid}) has no members", subject=f"group:{group}", location=loc, data=data)
    extra = f" ({', '.join(primary)} by primary group in /etc/passwd)" if primary else ""
    return Result.manual(f"members of {group} (gid {gid}): {', '.join(everyone)}{extra}; each of them is effectively "
                         f"root on this host: confirm every one is trusted", subject=f"group:{group}", location=loc, data=data)


# ---------------------------------------------------------------------- audit rules
@dataclass(frozen=True)
class AuditRule:
    """One line of audit rules, as auditctl reads it."""

    path: str  # the path watched or filtered ("" for -D)
    perms: str | None  # -p / -F perm= value, None = all
    location: Location | None  # None when read from auditctl -l
    text: str
    kind: str = "watch"  # "watch" (-w, recursive on a directory), "path" (-F path=, that file), "dir" (-F dir=, recursive)
    action: str = "always"  # "never" suppresses what it matches
    op: str = "add"  # "add" (-w, -a: appended), "prepend" (-A), "remove" (-W), "delete" (-D: every rule so far)
    syscalls: tuple[str, ...] = ()

    def covers(self, target: str) -> bool:
        if self.kind == "path":
            return self.path == target
        return self.path == target or (self.path != "/" and target.startswith(self.path + "/")) or self.path == "/"

    def audits_writes(self) -> bool:
        """A change to the file is recorded: perms include w (or are not limited), or a write syscall."""
        if self.perms is not None:
            return "w" in self.perms
        if self.syscalls and not set(self.syscalls) & WRITE_SYSCALLS:
            return False
        return True


#: System calls that change a file (a syscall rule naming none of these does not audit changes).
WRITE_SYSCALLS = {"all", "open", "openat", "openat2", "creat", "write", "pwrite64", "writev", "truncate", "ftruncate",
                  "rename", "renameat", "renameat2", "unlink", "unlinkat", "chmod", "fchmod", "fchmodat", "chown",
                  "fchown", "fchownat", "lchown", "setxattr", "lsetxattr", "fsetxattr", "link", "linkat", "symlink",
                  "symlinkat", "mknod", "mknodat", "mkdir", "mkdirat", "rmdir"}


def _norm(path: str) -> str:
    p = os.path.normpath(path)
    return "/run" + p[len("/var/run"):] if p == "/var/run" or p.startswith("/var/run/") else p


def parse_audit_rules(text: str, path: str | None) -> list[AuditRule]:
    """Audit rule lines as auditctl reads them: ``-w PATH [-p PERMS]``, ``-W PATH`` (removes a
    watch), ``-a|-A action,list ... -F path=|dir= [-F perm=] [-S call]`` (either order of action
    and list; ``never`` suppresses), ``-D`` (deletes every rule before it)."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        s = line.split("#", 1)[0].strip()
        if not s:
            continue
        words = []
        for w in s.split():  # auditctl takes "-w/etc/docker" and "-pwa" as well as "-w /etc/docker"
            if len(w) > 2 and w[0] == "-" and w[1] in "wWpFkaAS" and w[1:2] != "-":
                words += [w[:2], w[2:]]
            else:
                words.append(w)
        loc = Location(path, n) if path else None
        if words[0] == "-D":
            out.append(AuditRule("", None, loc, s, kind="all", op="delete"))
            continue
        perms = None
        action, op = "always", "add"
        syscalls: list[str] = []
        for i, w in enumerate(words):
            nxt = words[i + 1] if i + 1 < len(words) else ""
            if w == "-p" and nxt:
                perms = nxt
            elif w == "-F" and nxt.startswith("perm="):
                perms = nxt.split("=", 1)[1]
            elif w in ("-a", "-A") and nxt:
                parts = nxt.split(",")
                action = "never" if "never" in parts else "always"
                op = "prepend" if w == "-A" else "add"
            elif w == "-S" and nxt:
                syscalls += nxt.split(",")
        if words[0] == "-W":
            op = "remove"
        for i, w in enumerate(words):
            nxt = words[i + 1] if i + 1 < len(words) else ""
            if w in ("-w", "-W") and nxt:
                out.append(AuditRule(_norm(nxt), perms, loc, s, "watch", action, op, tuple(syscalls)))
            elif w == "-F" and re.match(r"(path|dir)=", nxt):
                kind, target = nxt.split("=", 1)
                out.append(AuditRule(_norm(target), perms, loc, s, kind, action, op, tuple(syscalls)))
    return out


def rule_list(rules: list[AuditRule], removed: list | None = None) -> list[AuditRule]:
    """The kernel's rule list after loading ``rules`` in order: -D empties it, -W takes out the
    matching watch, -A puts a rule first, -w/-a append. ``removed`` collects (rule, what removed it)."""
    current: list[AuditRule] = []
    gone = removed if removed is not None else []
    for r in rules:
        if r.op == "delete":
            gone += [(c, r) for c in current]
            current = []
        elif r.op == "remove":
            hit = [c for c in current if c.kind == "watch" and c.path == r.path and (r.perms is None or c.perms == r.perms)]
            gone += [(c, r) for c in hit]
            current = [c for c in current if c not in hit]
        elif r.op == "prepend":
            current.insert(0, r)
        else:
            current.append(r)
    return current


def _version_key(name: str) -> list:
    """``ls -v`` order (augenrules lists rules.d with ls -1v): digit runs compare as numbers."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", name)]


@dataclass
class AuditRules:
    rules: list[AuditRule]  # the effective rule list, in the kernel's order
    source: str  # "auditctl -l", or the files read
    note: str = ""
    removed: list = field(default_factory=list)  # (rule, the -W or -D that took it out)


def audit_rules(ctx: Context) -> AuditRules:
    """The rules the kernel has (live: ``auditctl -l``), else as auditd loads them at boot:
    augenrules' assembly of /etc/audit/rules.d/*.rules (files in ``ls -v`` order; augenrules moves
    -D to the top, so it deletes none of them; audit.rules is its output), or audit.rules alone
    when rules.d has no rules (loaded by auditctl -R in order: a -D deletes what came before)."""
    def load() -> AuditRules:
        note = ""
        if ctx.host.is_live and shutil.which("auditctl"):
            try:
                r = subprocess.run(["auditctl", "-l"], capture_output=True, text=True, timeout=10)
                if r.returncode == 0:
                    text = "" if r.stdout.strip() == "No rules" else r.stdout
                    return AuditRules(rule_list(parse_audit_rules(text, None)), "auditctl -l")
                note = f"auditctl -l failed ({(r.stderr or r.stdout).strip().splitlines()[0] if (r.stderr or r.stdout).strip() else r.returncode}); "
            except (OSError, subprocess.TimeoutExpired) as e:
                note = f"auditctl -l could not run ({e}); "
        files = sorted(ctx.host.glob(AUDIT_RULE_FILES_DIR, "*.rules"), key=lambda p: _version_key(p.rsplit("/", 1)[-1]))
        rules: list[AuditRule] = []
        if files:
            for f in files:
                rules.extend(r for r in parse_audit_rules(ctx.host.read_text(f) or "", f) if r.op != "delete")
            if ctx.host.lstat(AUDIT_RULES) is not None:
                note += f"{AUDIT_RULES} is generated from {AUDIT_RULE_FILES_DIR} by augenrules; "
        elif ctx.host.lstat(AUDIT_RULES) is not None:
            files = [AUDIT_RULES]
            rules = parse_audit_rules(ctx.host.read_text(AUDIT_RULES) or "", AUDIT_RULES)
        removed: list = []
        return AuditRules(rule_list(rules, removed), ", ".join(files), note, removed)

    return ctx.memo("audit_rules", load)


def _binary(name: str) -> Callable[[Context], str]:
    def find(ctx: Context) -> str:
        for d in BIN_DIRS:
            p = f"{d}/{name}"
            if ctx.host.lstat(p) is not None:
                return p
        raise NotApplicable(f"{name} is not installed on this host (looked in {', '.join(BIN_DIRS)})")

    return find


def _fixed(path: str) -> Callable[[Context], str]:
    def find(ctx: Context) -> str:
        if ctx.host.lstat(path) is None:
            raise NotApplicable(f"{path} does not exist on this host")
        return path

    return find


def _unit(name: str) -> Callable[[Context], str]:
    def find(ctx: Context) -> str:
        p = ctx.host.unit_file(name)
        if p is None:
            raise NotApplicable(f"{name} is not installed on this host (looked in the systemd unit folders)")
        return p

    return find


def _data_root_target(ctx: Context) -> str:
    root, where = data_root(ctx)
    if ctx.host.lstat(root) is None:
        raise NotApplicable(f"the data root {root} ({where}) does not exist on this host")
    return root


def _daemon_json_target(ctx: Context) -> str:
    return _fixed(ctx.daemon_json_path())(ctx)


#: CIS number -> (check id, what, how to find it on this host).
_AUDIT_ITEMS: dict[str, tuple[str, str, Callable[[Context], str]]] = {
    "1.1.3": ("audit-dockerd", "the Docker daemon binary", _binary("dockerd")),
    "1.1.4": ("audit-run-containerd", "/run/containerd", _fixed("/run/containerd")),
    "1.1.5": ("audit-data-root", "the Docker data root", _data_root_target),
    "1.1.6": ("audit-etc-docker", "/etc/docker", _fixed("/etc/docker")),
    "1.1.7": ("audit-docker-service", "the docker.service unit", _unit("docker.service")),
    "1.1.8": ("audit-containerd-sock", "the containerd socket", _fixed("/run/containerd/containerd.sock")),
    "1.1.9": ("audit-docker-socket-unit", "the docker.socket unit", _unit("docker.socket")),
    "1.1.10": ("audit-etc-default-docker", "/etc/default/docker", _fixed("/etc/default/docker")),
    "1.1.11": ("audit-daemon-json", "daemon.json", _daemon_json_target),
    "1.1.12": ("audit-containerd-config", "/etc/containerd/config.toml", _fixed("/etc/containerd/config.toml")),
    "1.1.13": ("audit-etc-sysconfig-docker", "/etc/sysconfig/docker", _fixed("/etc/sysconfig/docker")),
    "1.1.14": ("audit-containerd", "the containerd binary", _binary("containerd")),
    "1.1.15": ("audit-containerd-shim", "the containerd-shim binary", _binary("containerd-shim")),
    "1.1.16": ("audit-containerd-shim-runc-v1", "the containerd-shim-runc-v1 binary", _binary("containerd-shim-runc-v1")),
    "1.1.17": ("audit-containerd-shim-runc-v2", "the containerd-shim-runc-v2 binary", _binary("containerd-shim-runc-v2")),
    "1.1.18": ("audit-runc", "the runc binary", _binary("runc")),
}
if [c for c, _ in AUDIT_TARGETS] != list(_AUDIT_ITEMS):
    raise RuntimeError("AUDIT_TARGETS and _AUDIT_ITEMS must list the same items")


def audit_check_id(cis: str) -> str:
    """The id of audit item ``cis`` (``1.1.6`` -> ``audit-etc-docker``)."""
    return _AUDIT_ITEMS[cis][0]


def audit_target_path(ctx: Context, cis: str) -> str:
    """The host path audit item ``cis`` should watch on this host (NotApplicable when it is absent)."""
    return _AUDIT_ITEMS[cis][2](ctx)


def audit_rule(cis: str) -> Callable[[Context], Result]:
    check_id, what, find = _AUDIT_ITEMS[cis]

    def run(ctx: Context) -> Result:
        path = find(ctx)
        rules = audit_rules(ctx)
        data = {"path": path, "cis": cis}
        if not rules.source:
            return Result.fail(f"no audit rules on this host: {rules.note}neither {AUDIT_RULE_FILES_DIR}/*.rules nor "
                               f"{AUDIT_RULES} exists (is auditd installed?)", subject=path, data=data)
        want = _norm(path)
        resolved = _norm(ctx.host.resolve(path))
        is_dir = ctx.host.is_dir(path)
        weak = None
        dir_path = None
        for r in rules.rules:  # the kernel's order: the first rule that matches decides
            if not (r.covers(want) or r.covers(resolved)):
                continue
            at = f" ({r.location})" if r.location else f" ({rules.source})"
            if r.action == "never":
                return Result.fail(f"{path}: the 'never' rule {r.text}{at} suppresses its events", subject=path,
                                   location=r.location, data=data)
            if not r.audits_writes():
                weak = weak or (r, at)
                continue
            exact = r.path in (want, resolved)
            how = "watched" if exact else f"covered by the {'watch' if r.kind == 'watch' else 'dir= rule'} on {r.path} (recursive)"
            if is_dir and r.kind == "path":
                dir_path = dir_path or (r, at)
                continue  # -F path= on a directory audits the directory entry, not what is inside
            return Result.ok(f"{path} is {how}: {r.text}{at}", subject=path, location=r.location, data=data)
        if weak:
            r, at = weak
            return Result.fail(f"{path} is watched only for '{r.perms or ','.join(r.syscalls)}' (no writes): {r.text}{at}",
                               subject=path, location=r.location, data=data)
        gone = [(r, by) for r, by in rules.removed if r.covers(want) or r.covers(resolved)]
        if gone:
            r, by = gone[-1]
            return Result.fail(f"no audit rule watches {path}: {r.text} ({r.location or rules.source}) is removed by "
                               f"{by.text} ({by.location or rules.source})", subject=path, location=by.location, data=data)
        if dir_path:
            r, at = dir_path
            return Result.fail(f"no audit rule watches what is in {path}: {r.text}{at} names the directory with path=, "
                               "which audits the directory itself only (dir= is recursive)", subject=path,
                               location=r.location, data=data)
        return Result.fail(f"no audit rule watches {path} (read {rules.note}{rules.source})", subject=path, data=data)

    return run


def _declare_audit(cis: str) -> None:
    check_id, what, _ = _AUDIT_ITEMS[cis]
    default = dict(AUDIT_TARGETS)[cis]
    check(
        check_id, cis=cis, severity=LOW, subject=default,
        fix=Fix(Safety.SAFE, "The kernel records every write and attribute change to this path in the audit log "
                "(key 'docker'); the log grows a little, nothing else changes."),
        title=f"Auditing is configured for {what}" + (f" ({default})" if not what.startswith("/") else ""),
        explanation=f"The Linux audit system records who touched {what} and when. The Docker daemon runs as root, and "
        "changes to its binaries, configuration, sockets and data are exactly what an investigation needs to see "
        "after an incident; without a watch rule nothing is recorded.",
        manual=f"auditctl -l | grep -- '{default}'   # or: grep -rn -- '{default}' /etc/audit/rules.d /etc/audit/audit.rules",
        remediation=f"Add '-w <path> -p wa -k docker' for {what} to a file in /etc/audit/rules.d/ and load the rules "
        "(augenrules --load). Needs auditd; watches add to the audit log's volume.",
    )(audit_rule(cis))


for _cis, _ in AUDIT_TARGETS:
    _declare_audit(_cis)


# ---------------------------------------------------------------------- general hardening and versions
check(
    "host-hardened", cis="1.2.1", severity=INFO, subject="host",
    title="The container host has been hardened",
    explanation="Containers share the host's kernel, so every weakness of the host is a weakness of every "
    "container. The benchmark leaves the host's hardening to the operating system's own guide.",
    manual="Compare the host with its OS hardening guide (e.g. the CIS benchmark for the distribution); lynis audit system",
    remediation="Harden the host with the distribution's benchmark: minimal packages, patched kernel, no extra services, "
    "restricted SSH, firewall.",
)(lambda ctx: Result.manual("hardening of the host itself is outside this scan: review it against the operating "
                            "system's hardening guide (for example with lynis audit system)"))


@check(
    "docker-version", cis="1.2.2", severity=MEDIUM, subject="dockerd",
    title="The Docker engine is up to date",
    explanation="Each Docker release fixes security bugs, and old release lines stop getting those fixes. Running a "
    "current engine closes known holes, including container escapes.",
    manual="docker version --format '{{.Server.Version}}'; apt list --upgradable 2>/dev/null | grep -E 'docker|containerd|runc'",
    remediation="Upgrade the engine (and containerd and runc) from the distribution or Docker's repository, after "
    "testing on a staging host.",
)
def docker_version(ctx: Context) -> Result:
    if ctx.engine is None:
        raise NotApplicable("the engine was not scanned (--no-engine, or a --root tree without --docker-host): its version is unknown")
    info = ctx.info()  # one shared request: docker info carries the server version
    version = str(info.get("ServerVersion") or "unknown")
    parts = [f"engine {version} (docker info)"]
    for name in ("Containerd", "Runc"):
        commit = (info.get(f"{name}Commit") or {}).get("ID")
        if commit:
            parts.append(f"{name.lower()} commit {commit[:12]}")
    m = re.match(r"(\d+)\.(\d+)", version)
    old = ""
    if m and int(m.group(1)) < 23:
        old = "; the 20.10 line and older stopped receiving updates from Docker in 2023"
    return Result.manual(f"{', '.join(parts)}{old}: compare with the current release of the host's source of "
                         "packages", data={"version": version})
