"""One case per check: a failing and a passing host tree, built with real owners and modes.

Every case is a row of :data:`CASES`: the check (id or CIS number), a tree (host path -> file,
directory, socket or link, with owner and mode), the ``--path``/``--compose`` given, and the
status expected. One parametrized test runs them all; another makes sure every check has both a
case where it reports a problem (fail or manual) and one where it does not (pass or skip).
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import dockfix.checks  # noqa: F401  (registers every check)
from dockfix.checks.host_config import AUDIT_TARGETS, _AUDIT_ITEMS
from dockfix.host import Host
from dockfix.model import REGISTRY, Check
from dockfix.scan import Context, run_check
from helpers import DEBIAN_SERVICE, DEBIAN_SOCKET


# ---------------------------------------------------------------------- tree entries
@dataclass
class F:
    content: str | bytes = ""
    mode: int = 0o644
    owner: tuple[int, int] = (0, 0)


@dataclass
class D:
    mode: int = 0o755
    owner: tuple[int, int] = (0, 0)


@dataclass
class S:  # a real unix socket
    mode: int = 0o660
    owner: tuple[int, int] = (0, 0)


@dataclass
class L:  # a symbolic link
    target: str


def J(obj: Any, mode: int = 0o644, owner: tuple[int, int] = (0, 0)) -> F:
    return F(json.dumps(obj, indent=2) + "\n", mode, owner)


def build(root: Path, tree: dict[str, Any]) -> None:
    for path, e in sorted(tree.items(), key=lambda kv: kv[0].count("/")):
        p = root / path.strip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(e, D):
            p.mkdir(exist_ok=True)
        elif isinstance(e, F):
            p.write_bytes(e.content.encode() if isinstance(e.content, str) else e.content)
        elif isinstance(e, S):
            s = socket.socket(socket.AF_UNIX)
            s.bind(str(p))
            s.close()
        elif isinstance(e, L):
            os.symlink(e.target, p)
            continue
        os.chown(p, *e.owner)
        os.chmod(p, e.mode)


@dataclass
class Case:
    check: str  # id or CIS number
    label: str
    tree: dict[str, Any]
    expect: str | dict[str, str]  # one status for every result, or {subject: status}
    paths: list[str] = field(default_factory=list)
    compose: list[str] = field(default_factory=list)
    evidence: str | None = None  # a phrase the evidence of some result must contain

    @property
    def id(self) -> str:
        return f"{self.check}/{self.label}"


def find_check(name: str) -> Check:
    if name in REGISTRY:
        return REGISTRY[name]
    hits = [c for c in REGISTRY.values() if c.cis == name]
    assert len(hits) == 1, f"{name} names {len(hits)} checks"
    return hits[0]


# ---------------------------------------------------------------------- systemd units
UNIT = {"/lib/systemd/system/docker.service": F(DEBIAN_SERVICE), "/lib/systemd/system/docker.socket": F(DEBIAN_SOCKET)}
#: The documented way to give dockerd its hosts in daemon.json: a drop-in that drops -H fd://.
NO_H = {**UNIT, "/etc/systemd/system/docker.service.d/hosts.conf": F("[Service]\nExecStart=\nExecStart=/usr/sbin/dockerd\n")}


# ---------------------------------------------------------------------- section 1
GROUP = F("root:x:0:\ndocker:x:999:alice,bob\nstaff:x:50:\n")
PASSWD = F("root:x:0:0::/root:/bin/sh\ncarol:x:1002:999::/home/carol:/bin/sh\n")


def audit_target_entry(cis: str) -> tuple[str, Any]:
    default = dict(AUDIT_TARGETS)[cis]
    if cis == "1.1.3":
        return "/usr/sbin/dockerd", F("ELF", 0o755)  # where Debian installs it
    if default in ("/run/containerd", "/var/lib/docker", "/etc/docker"):
        return default, D(0o711)
    if default == "/run/containerd/containerd.sock":
        return default, S()
    return default, F("x", 0o755 if default.startswith("/usr/") else 0o644)


def audit_cases() -> list[Case]:
    out = []
    for cis, _ in AUDIT_TARGETS:
        path, entry = audit_target_entry(cis)
        base = {**UNIT, path: entry}
        out.append(Case(cis, "fail", {**base, "/etc/audit/rules.d/other.rules": F("-w /etc/passwd -p wa -k identity\n")},
                        "fail", evidence=f"no audit rule watches {path}"))
        out.append(Case(cis, "pass", {**base, "/etc/audit/rules.d/docker.rules": F(f"# docker\n-w {path} -p wa -k docker\n")},
                        "pass", evidence="docker.rules:2"))
        out.append(Case(cis, "absent", {**({} if cis in ("1.1.7", "1.1.9") else UNIT), "/etc/audit/rules.d/docker.rules": F("-w /etc/passwd -k x\n")}, "skip"))
    return out


SECTION_1 = [
    Case("1.1.1", "fstab", {**UNIT, "/etc/fstab": F("UUID=1 / ext4 defaults 0 1\nUUID=2 /var/lib/docker xfs defaults 0 2\n")},
         "pass", evidence="own entry in /etc/fstab"),
    Case("1.1.1", "data-root-from-daemon-json", {"/etc/docker/daemon.json": J({"data-root": "/srv/docker"}),
                                                  "/etc/fstab": F("UUID=2 /srv/docker xfs defaults 0 2\n")}, "pass"),
    Case("1.1.1", "unknown", {**UNIT, "/etc/fstab": F("UUID=1 / ext4 defaults 0 1\n")}, "skip"),
    Case("1.1.2", "members", {**UNIT, "/etc/group": GROUP, "/etc/passwd": PASSWD}, "manual", evidence="alice, bob, carol"),
    Case("1.1.2", "empty", {**UNIT, "/etc/group": F("docker:x:999:\n"), "/etc/passwd": F("root:x:0:0::/root:/bin/sh\n")}, "pass"),
    Case("1.1.2", "other-group", {"/etc/group": F("dockerusers:x:998:eve\ndocker:x:999:\n"),
                                  "/etc/docker/daemon.json": J({"group": "dockerusers"})}, "manual", evidence="eve"),
    *audit_cases(),
    Case("1.1.11", "directory-watch-covers-it", {"/etc/docker/daemon.json": J({}),
                                                 "/etc/audit/audit.rules": F("-w /etc/docker -k docker\n")}, "pass",
         evidence="covered by the watch on /etc/docker"),
    Case("1.1.6", "read-only-watch", {"/etc/docker": D(), "/etc/audit/rules.d/d.rules": F("-w /etc/docker -p r\n")},
         "fail", evidence="only for 'r'"),
    Case("1.1.6", "syscall-rule", {"/etc/docker": D(),
                                   "/etc/audit/rules.d/d.rules": F("-a always,exit -F dir=/etc/docker -F perm=wa -k docker\n")},
         "pass"),
    Case("1.1.6", "no-auditd", {"/etc/docker": D()}, "fail", evidence="is auditd installed?"),
    Case("1.1.7", "override-unit", {"/etc/systemd/system/docker.service": F("[Service]\n"),
                                    "/lib/systemd/system/docker.service": F("[Service]\n"),
                                    "/etc/audit/rules.d/d.rules": F("-w /lib/systemd/system/docker.service -k docker\n")},
         {"/etc/systemd/system/docker.service": "fail"}),
    Case("1.2.1", "always", {}, "manual"),
    Case("1.2.2", "no-engine", {}, "skip"),
]


# ---------------------------------------------------------------------- audit rules as auditctl and augenrules read them
RD = "/etc/audit/rules.d"
ETC_DOCKER = {"/etc/docker": D(), "/etc/docker/daemon.json": J({})}


def rules(**files: str) -> dict[str, Any]:
    """rules.d files by name (``docker_rules`` -> docker.rules, ``_10_x`` -> 10-x.rules)."""
    return {f"{RD}/{name.lstrip('_').replace('_', '-')}.rules": F(text) for name, text in files.items()}


AUDIT = [
    Case("1.1.6", "never-first", {**ETC_DOCKER, **rules(_10_quiet="-a never,exit -F dir=/etc/docker\n",
                                                        _20_docker="-w /etc/docker -p wa -k docker\n")},
         "fail", evidence="the 'never' rule -a never,exit -F dir=/etc/docker (/etc/audit/rules.d/10-quiet.rules:1)"),
    Case("1.1.6", "never-after", {**ETC_DOCKER, **rules(_10_docker="-w /etc/docker -p wa -k docker\n",
                                                        _20_quiet="-a never,exit -F dir=/etc/docker\n")},
         "pass", evidence="10-docker.rules:1"),
    Case("1.1.6", "never-prepended", {**ETC_DOCKER, **rules(_10_docker="-w /etc/docker -p wa\n",
                                                            _20_quiet="-A exit,never -F dir=/etc/docker\n")},
         "fail", evidence="suppresses"),
    Case("1.1.6", "W-removes", {**ETC_DOCKER, **rules(_10_docker="-w /etc/docker -p wa\n", _99_local="-W /etc/docker -p wa\n")},
         "fail", evidence="is removed by -W /etc/docker -p wa (/etc/audit/rules.d/99-local.rules:1)"),
    # augenrules lists rules.d with ls -1v: 9-a before 10-b (plain lexical order would read 10-b first)
    Case("1.1.6", "W-in-version-order", {**ETC_DOCKER, **rules(_9_a="-w /etc/docker -p wa\n", _10_b="-W /etc/docker -p wa\n")},
         "fail"),
    Case("1.1.6", "W-before-watch", {**ETC_DOCKER, **rules(_9_a="-W /etc/docker -p wa\n", _10_b="-w /etc/docker -p wa\n")},
         "pass", evidence="10-b.rules:1"),
    # augenrules moves -D to the top: it deletes no rule of rules.d; in a hand-made audit.rules it does
    Case("1.1.6", "D-in-rules-d", {**ETC_DOCKER, **rules(_10_docker="-w /etc/docker -p wa\n", _20_base="-D\n-b 8192\n")},
         "pass"),
    Case("1.1.6", "D-in-audit-rules", {**ETC_DOCKER, "/etc/audit/audit.rules": F("-w /etc/docker -p wa\n-D\n")}, "fail",
         evidence="is removed by -D (/etc/audit/audit.rules:2)"),
    Case("1.1.6", "path-on-a-directory", {**ETC_DOCKER, **rules(docker="-a always,exit -F path=/etc/docker -F perm=wa\n")},
         "fail", evidence="audits the directory itself only"),
    Case("1.1.6", "audit-rules-alone", {**ETC_DOCKER, "/etc/audit/audit.rules": F("-D\n-w /etc/docker -p wa\n")}, "pass",
         evidence="/etc/audit/audit.rules:2"),
    Case("1.1.6", "audit-rules-is-generated", {**ETC_DOCKER, "/etc/audit/audit.rules": F("-w /etc/docker -p wa\n"),
                                               **rules(other="-w /etc/passwd -p wa\n")}, "fail",
         evidence="generated from /etc/audit/rules.d by augenrules"),
    # perms: a file audited for changes needs w
    Case("1.1.11", "perm-a-only", {**ETC_DOCKER, **rules(docker="-w /etc/docker/daemon.json -p a\n")}, "fail",
         evidence="only for 'a'"),
    Case("1.1.11", "perm-attached", {**ETC_DOCKER, **rules(docker="-w/etc/docker/daemon.json -pwa -kdocker\n")}, "pass"),
    Case("1.1.11", "default-perms", {**ETC_DOCKER, **rules(docker="-w /etc/docker/daemon.json\n")}, "pass"),
    # -F path= is that one file; -F dir= is recursive
    Case("1.1.11", "path-is-not-recursive", {**ETC_DOCKER, **rules(docker="-a always,exit -F path=/etc/docker -F perm=wa\n")},
         "fail", evidence="no audit rule watches /etc/docker/daemon.json"),
    Case("1.1.11", "dir-is-recursive", {**ETC_DOCKER, **rules(docker="-a exit,always -F dir=/etc/docker -F perm=wa -k d\n")},
         "pass", evidence="covered by the dir= rule on /etc/docker"),
    Case("1.1.11", "path-exact", {**ETC_DOCKER, **rules(docker="-a always,exit -F path=/etc/docker/daemon.json -F perm=w\n")},
         "pass"),
    Case("1.1.11", "syscall-read-only", {**ETC_DOCKER, **rules(docker="-a always,exit -F path=/etc/docker/daemon.json -S stat\n")},
         "fail", evidence="only for 'stat'"),
]


# ---------------------------------------------------------------------- section 2 (daemon.json)
def dj(settings: dict, **kw) -> dict[str, Any]:
    """daemon.json with these settings, beside Debian's docker.service and docker.socket."""
    return {**UNIT, "/etc/docker/daemon.json": J(settings), **kw}


SECTION_2 = [
    Case("2.1", "always", dj({}), "manual"),
    Case("2.2", "fail", dj({"icc": True}), "fail", evidence="icc is true (/etc/docker/daemon.json:2)"),
    Case("2.2", "default", dj({}), "fail", evidence="default: true"),
    Case("2.2", "pass", dj({"icc": False}), "pass"),
    Case("2.2", "default-file", {**UNIT, "/etc/default/docker": F('DOCKER_OPTS="--icc=false"\n')}, "pass",
         evidence="/etc/default/docker:1"),
    Case("2.3", "fail", dj({"log-level": "debug"}), "fail"),
    Case("2.3", "pass", dj({}), "pass"),
    Case("2.4", "fail", dj({"iptables": False}), "fail"),
    Case("2.4", "pass", dj({}), "pass"),
    Case("2.5", "fail", dj({"insecure-registries": ["10.0.0.5:5000"]}), "fail", evidence="10.0.0.5:5000"),
    Case("2.5", "pass", dj({}), "pass"),
    Case("2.6", "fail", dj({"storage-driver": "aufs"}), "fail"),
    Case("2.6", "pass", dj({"storage-driver": "overlay2"}), "pass"),
    Case("2.6", "unknown", dj({}), "skip"),
    # CIS v1.8.0 2.7 (no number in 1.6.0: named by id)
    Case("devicemapper", "fail", dj({"storage-driver": "devicemapper"}), "fail", evidence="storage driver devicemapper"),
    Case("devicemapper", "pass", dj({"storage-driver": "overlay2"}), "pass"),
    Case("devicemapper", "unknown", dj({}), "skip"),
    Case("2.7", "fail", dj({"hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2375"]}, **NO_H), "fail",
         evidence="tlsverify is not set"),
    Case("2.7", "pass", dj({"hosts": ["tcp://0.0.0.0:2376"], "tlsverify": True, "tlscacert": "/c", "tlscert": "/s",
                            "tlskey": "/k"}, **NO_H), "pass"),
    Case("2.7", "hosts-in-both", dj({"hosts": ["tcp://0.0.0.0:2375"]}), "manual", evidence="dockerd refuses to start"),
    Case("2.7", "unix-only", dj({}), "pass"),
    Case("2.8", "unset", dj({}), "manual"),
    Case("2.8", "pass", dj({"default-ulimits": {"nofile": {"Name": "nofile", "Hard": 64000, "Soft": 64000}}}), "pass"),
    Case("2.9", "fail", dj({}), "fail"),
    Case("2.9", "pass", dj({"userns-remap": "default"}), "pass"),
    Case("2.10", "changed", dj({"cgroup-parent": "/custom"}), "manual"),
    Case("2.10", "pass", dj({}), "pass"),
    Case("2.11", "fail", dj({"storage-opts": ["dm.basesize=20G"]}), "fail"),
    Case("2.11", "pass", dj({}), "pass"),
    Case("2.12", "fail", dj({}), "fail"),
    Case("2.12", "pass", dj({"authorization-plugins": ["authz-broker"]}), "pass"),
    Case("2.13", "fail", dj({}), "fail"),
    Case("2.13", "pass", dj({"log-driver": "syslog"}), "pass"),
    Case("2.14", "fail", dj({}), "fail"),
    Case("2.14", "pass", dj({"no-new-privileges": True}), "pass"),
    Case("2.15", "fail", dj({}), "fail"),
    Case("2.15", "pass", dj({"live-restore": True}), "pass"),
    Case("2.16", "fail", dj({}), "fail"),
    Case("2.16", "pass", dj({"userland-proxy": False}), "pass"),
    Case("2.17", "fail", dj({"seccomp-profile": "unconfined"}), "fail"),
    Case("2.17", "pass", dj({"seccomp-profile": "/etc/docker/seccomp.json"}), "pass"),
    Case("2.17", "default", dj({}), "manual"),
    Case("2.18", "fail", dj({"experimental": True}), "fail"),
    Case("2.18", "pass", dj({}), "pass"),
]


# ---------------------------------------------------------------------- the effective configuration
# dockerd's options as systemd and dockerd build them (dockfix/sources/systemd.py, daemon_config.py).
SVC = "/lib/systemd/system/docker.service"
CE_SERVICE = "[Service]\nType=notify\nExecStart=/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock\n"


def unit(exec_start: str, **extra) -> dict[str, Any]:
    """Debian's units, with docker.service starting ``exec_start`` (a docker-ce style unit)."""
    return {**UNIT, SVC: F(f"[Service]\nType=notify\nEnvironmentFile=-/etc/default/docker\nExecStart={exec_start}\n"),
            **extra}


def dropin(name: str, body: str, folder: str = "/etc/systemd/system") -> dict[str, Any]:
    return {f"{folder}/docker.service.d/{name}": F(body)}


def reset(exec_start: str) -> str:
    return f"[Service]\nExecStart=\nExecStart={exec_start}\n"


EFFECTIVE = [
    # flag spellings (pflag): boolean alone / =true|false|1|0; -D; -l x, -lx, -l=x, --log-level x
    Case("2.2", "flag-bare-icc", unit("/usr/sbin/dockerd -H fd:// --icc"), "fail", evidence=f"icc is true ({SVC}:4)"),
    Case("2.2", "flag-icc-false", unit("/usr/sbin/dockerd -H fd:// --icc=false"), "pass", evidence=f"{SVC}:4"),
    Case("2.2", "flag-icc-0", unit("/usr/sbin/dockerd -H fd:// --icc=0"), "pass"),
    Case("2.2", "flag-icc-F", unit("/usr/sbin/dockerd -H fd:// --icc=F"), "pass"),
    Case("2.2", "flag-icc-space-false", unit("/usr/sbin/dockerd -H fd:// --icc false"), "manual",
         evidence="dockerd takes no arguments"),
    Case("2.2", "flag-icc-yes", unit("/usr/sbin/dockerd -H fd:// --icc=yes"), "manual", evidence="not a boolean"),
    Case("2.3", "flag-D", unit("/usr/sbin/dockerd -D -H fd://"), "fail", evidence="the daemon logs at debug level"),
    Case("2.3", "flag-debug-false", unit("/usr/sbin/dockerd --debug=false -H fd://"), "pass"),
    Case("2.3", "json-debug", dj({"debug": True}), "fail", evidence="debug is true (/etc/docker/daemon.json:2)"),
    Case("2.3", "flag-l-space", unit("/usr/sbin/dockerd -H fd:// -l warn"), "fail", evidence="log-level is warn"),
    Case("2.3", "flag-l-joined", unit("/usr/sbin/dockerd -H fd:// -lwarn"), "fail", evidence="log-level is warn"),
    Case("2.3", "flag-l-equals", unit("/usr/sbin/dockerd -H fd:// -l=info"), "pass"),
    Case("2.3", "flag-grouped", unit("/usr/sbin/dockerd -H fd:// -Dl info"), "fail", evidence="debug is true"),
    # -H forms: a host without a scheme is TCP; repeated -H; fd:// takes docker.socket's ListenStream
    Case("2.7", "H-no-scheme", unit("/usr/sbin/dockerd -H fd:// -H 0.0.0.0:2375"), "fail",
         evidence="tcp://0.0.0.0:2375"),
    Case("2.7", "H-port-only", unit("/usr/sbin/dockerd -H=:2375"), "fail", evidence="tcp://localhost:2375"),
    Case("2.7", "H-joined", unit("/usr/sbin/dockerd -Htcp://10.0.0.1:2375 -H unix:///run/docker.sock"), "fail",
         evidence="tcp://10.0.0.1:2375"),
    Case("2.7", "host-long", unit("/usr/sbin/dockerd --host tcp://10.0.0.1:2375"), "fail"),
    Case("2.7", "socket-tcp", {**unit("/usr/sbin/dockerd -H fd://"),
                               "/lib/systemd/system/docker.socket": F("[Socket]\nListenStream=/run/docker.sock\nListenStream=2375\n")},
         "fail", evidence="tcp://2375 (/lib/systemd/system/docker.socket:3)"),
    Case("2.7", "socket-unix", unit("/usr/sbin/dockerd -H fd://"), "pass", evidence="unix:///run/docker.sock"),
    Case("2.7", "H-unix", unit("/usr/sbin/dockerd -H unix:///var/run/docker.sock"), "pass"),
    Case("2.7", "H-tls", unit("/usr/sbin/dockerd -H tcp://0.0.0.0:2376 --tlsverify --tlscacert=/c --tlscert=/s --tlskey=/k"),
         "pass"),
    # systemd: $DOCKER_OPTS counts only where ExecStart references it; Environment=; ${VAR} one word
    Case("2.2", "default-file-not-referenced", {**UNIT, SVC: F(CE_SERVICE), "/etc/default/docker": F('DOCKER_OPTS="--icc=false"\n')},
         "fail", evidence="default: true"),
    Case("2.2", "environment-file", {**UNIT, "/etc/default/docker": F("# opts\nDOCKER_OPTS='--icc=false --log-level=info'\n")},
         "pass", evidence="via $DOCKER_OPTS from /etc/default/docker:2"),
    Case("2.2", "environment-dropin", {**UNIT, **dropin("opts.conf", '[Service]\nEnvironment="DOCKER_OPTS=--icc=false"\n')},
         "pass", evidence="/etc/systemd/system/docker.service.d/opts.conf:2"),
    Case("2.2", "environment-file-wins", {**UNIT, **dropin("opts.conf", '[Service]\nEnvironment="DOCKER_OPTS=--icc=false"\n'),
                                          "/etc/default/docker": F("DOCKER_OPTS=--icc=true\n")}, "fail",
         evidence="/etc/default/docker:1"),
    Case("2.2", "braced-var", unit("/usr/sbin/dockerd -H fd:// ${ICC}", **dropin("icc.conf", "[Service]\nEnvironment=ICC=--icc=false\n")),
         "pass"),
    Case("2.2", "envfile-required-missing", {**UNIT, **dropin("env.conf", "[Service]\nEnvironmentFile=/etc/docker/opts\n")},
         "manual", evidence="systemd would not start docker.service"),
    # drop-ins: ExecStart= resets; name order across folders; /etc hides the same name in /lib; priority
    Case("2.2", "dropin-reset", {**UNIT, **dropin("icc.conf", reset("/usr/sbin/dockerd -H fd:// --icc=false"))}, "pass",
         evidence="/etc/systemd/system/docker.service.d/icc.conf:3"),
    Case("2.2", "dropin-later-name-wins", {**UNIT, **dropin("10-icc.conf", reset("/usr/sbin/dockerd --icc=false")),
                                           **dropin("20-plain.conf", reset("/usr/sbin/dockerd"), "/lib/systemd/system")},
         "fail", evidence="default: true"),
    Case("2.2", "dropin-same-name-hidden", {**UNIT, **dropin("icc.conf", reset("/usr/sbin/dockerd --icc=false")),
                                            **dropin("icc.conf", reset("/usr/sbin/dockerd --icc=true"), "/lib/systemd/system")},
         "pass"),
    Case("2.2", "dropin-control", {**UNIT, **dropin("icc.conf", reset("/usr/sbin/dockerd --icc=true")),
                                   **dropin("icc.conf", reset("/usr/sbin/dockerd --icc=false"), "/etc/systemd/system.control")},
         "pass", evidence="system.control"),
    Case("2.2", "no-reset-two-execstart", {**UNIT, **dropin("icc.conf", "[Service]\nExecStart=/usr/sbin/dockerd --icc=false\n")},
         "manual", evidence="2 ExecStart= lines"),
    Case("2.2", "usr-local-unit", {**UNIT, "/usr/local/lib/systemd/system/docker.service": F(reset("/usr/sbin/dockerd --icc=false"))},
         "pass", evidence="/usr/local/lib/systemd/system/docker.service"),
    Case("2.2", "merged-usr", {"/lib": L("usr/lib"), "/usr/lib/systemd/system/docker.service": F(reset("/usr/sbin/dockerd --icc=false"))},
         "pass"),
    Case("2.2", "run-unit", {**UNIT, "/run/systemd/system/docker.service": F(reset("/usr/sbin/dockerd --icc=false"))}, "pass"),
    # --config-file from the unit: that file, not /etc/docker/daemon.json
    Case("2.2", "config-file", {**unit("/usr/sbin/dockerd -H fd:// --config-file /etc/docker/prod.json"),
                                "/etc/docker/prod.json": J({"icc": False}), "/etc/docker/daemon.json": J({"icc": True})},
         "pass", evidence="/etc/docker/prod.json:2"),
    # a key set both as a flag and in daemon.json: dockerd refuses to start
    Case("2.2", "flag-and-json", {**dj({"icc": False}), **unit("/usr/sbin/dockerd -H fd:// --icc=false")}, "manual",
         evidence="dockerd refuses to start"),
    # the command line cannot be determined: manual, naming what is unknown
    Case("2.3", "no-unit", {"/etc/docker/daemon.json": J({})}, "manual", evidence="no docker.service unit was found"),
    Case("2.3", "unreadable-unit", {**UNIT, SVC: D()}, "error", evidence=f"{SVC}: is a directory"),
    Case("2.3", "malformed-unit", {**UNIT, SVC: F("[Service\nExecStart=/usr/sbin/dockerd\n")}, "error",
         evidence=f"{SVC}: line 1: malformed section header"),
    Case("2.3", "no-execstart", {**UNIT, **dropin("x.conf", "[Service]\nExecStart=\n")}, "manual", evidence="has no ExecStart"),
    Case("2.7", "no-socket-unit", {SVC: F(DEBIAN_SERVICE)}, "manual", evidence="no docker.socket unit was found"),
    Case("2.3", "masked", {**UNIT, "/etc/systemd/system/docker.service": L("/dev/null")}, "manual", evidence="masked"),
    Case("2.3", "wrapper", unit("/usr/local/bin/start-docker --debug"), "manual", evidence="not dockerd"),
    Case("2.3", "json-value-still-counts", {"/etc/docker/daemon.json": J({"log-level": "warn"})}, "fail"),
    Case("2.2", "sysvinit", {"/etc/init.d/docker": F("#!/bin/sh\n", 0o755), "/etc/default/docker": F('DOCKER_OPTS="--icc=false"\n')},
         "pass", evidence="/etc/default/docker:1"),
    # live-restore: swarm membership from the effective data root
    Case("2.15", "swarm-node", {**dj({"data-root": "/srv/docker"}), "/srv/docker/swarm/docker-state.json": F("{}")},
         "manual", evidence="/srv/docker/swarm/docker-state.json exists"),
    Case("2.15", "swarm-state-elsewhere", {**unit("/usr/sbin/dockerd -H fd:// --data-root=/srv/docker"),
                                           "/var/lib/docker/swarm/docker-state.json": F("{}")}, "fail"),
    Case("2.14", "flag", unit("/usr/sbin/dockerd -H fd:// --no-new-privileges"), "pass"),
    Case("2.5", "repeated-flag", unit("/usr/sbin/dockerd -H fd:// --insecure-registry a:5000 --insecure-registry=b:5000"),
         "fail", evidence="a:5000, b:5000"),
]


# ---------------------------------------------------------------------- runtime options as dockerd reads them (compose, offline)
def svc(*lines: str, **tree) -> dict[str, Any]:
    body = "".join(f"    {ln}\n" for ln in lines)
    return {"/srv/app/compose.yaml": F(f"services:\n  web:\n    image: nginx:1.27\n{body}"), **tree}


WEB = "compose:/srv/app/compose.yaml#web"
RUNTIME = [
    Case("5.2", "apparmor-equals", svc('security_opt: ["apparmor=unconfined"]'), {WEB: "fail"}, compose=["/srv/app/compose.yaml"],
         evidence="apparmor=unconfined"),
    Case("5.2", "apparmor-colon", svc('security_opt: ["apparmor:unconfined"]'), {WEB: "fail"}, compose=["/srv/app/compose.yaml"]),
    Case("5.2", "no-apparmor-kernel", svc('security_opt: ["apparmor=docker-default"]'), {WEB: "skip"},
         compose=["/srv/app/compose.yaml"], evidence="the kernel has no AppArmor"),
    Case("5.3", "label-equals", svc('security_opt: ["label=disable"]'), {WEB: "fail"}, compose=["/srv/app/compose.yaml"]),
    Case("5.3", "label-colon", svc('security_opt: ["label:disable"]'), {WEB: "fail"}, compose=["/srv/app/compose.yaml"]),
    Case("5.3", "label-type", svc('security_opt: ["label=type:svirt_apache_t"]'), {WEB: "skip"}, compose=["/srv/app/compose.yaml"]),
    Case("5.22", "seccomp-colon", svc('security_opt: ["seccomp:unconfined"]'), {WEB: "fail"}, compose=["/srv/app/compose.yaml"]),
    Case("5.26", "nnp-bare", svc('security_opt: ["no-new-privileges"]'), {WEB: "pass"}, compose=["/srv/app/compose.yaml"]),
    Case("5.26", "nnp-1", svc('security_opt: ["no-new-privileges=1"]'), {WEB: "pass"}, compose=["/srv/app/compose.yaml"]),
    Case("5.26", "nnp-colon-true", svc('security_opt: ["no-new-privileges:true"]'), {WEB: "pass"}, compose=["/srv/app/compose.yaml"]),
    Case("5.26", "nnp-0-overrides-daemon", svc('security_opt: ["no-new-privileges=0"]', **dj({"no-new-privileges": True})),
         {WEB: "fail"}, compose=["/srv/app/compose.yaml"], evidence="overriding any daemon default"),
    Case("5.26", "nnp-false-overrides-daemon", svc('security_opt: ["no-new-privileges:false"]', **dj({"no-new-privileges": True})),
         {WEB: "fail"}, compose=["/srv/app/compose.yaml"]),
    Case("5.26", "daemon-default", svc(**dj({"no-new-privileges": True})), {WEB: "pass"}, compose=["/srv/app/compose.yaml"]),
    Case("5.26", "daemon-flag-default", svc(**unit("/usr/sbin/dockerd -H fd:// --no-new-privileges")), {WEB: "pass"},
         compose=["/srv/app/compose.yaml"]),
    Case("5.12", "shares-1024", svc("cpu_shares: 1024"), {WEB: "fail"}, compose=["/srv/app/compose.yaml"],
         evidence="cpu_shares=1024 is the default weight"),
    Case("5.12", "shares-512", svc("cpu_shares: 512"), {WEB: "pass"}, compose=["/srv/app/compose.yaml"]),
    Case("5.12", "cpus", svc('cpus: "0.5"'), {WEB: "pass"}, compose=["/srv/app/compose.yaml"]),
]


# ---------------------------------------------------------------------- compose files as compose reads them
OV = "/srv/app/compose.override.yaml"
BASE_OK = ('user: "101"', "mem_limit: 256m", 'security_opt: ["no-new-privileges:true"]')
COMPOSE = [
    # compose.override.yaml is merged into compose.yaml: no false failures for what the base file sets
    Case("4.1", "override-keeps-base-user", svc(*BASE_OK, **{OV: F('services:\n  web:\n    ports: ["8080:80"]\n')}),
         {WEB: "pass"}, paths=["/srv/app"]),
    Case("4.1", "override-sets-root", svc(*BASE_OK, **{OV: F('services:\n  web:\n    user: root\n')}), {WEB: "fail"},
         paths=["/srv/app"]),
    Case("5.11", "override-only-file-not-its-own-project", svc(*BASE_OK, **{OV: F("services:\n  web:\n    cpus: 1\n")}),
         {WEB: "pass", "compose:/srv/app/compose.override.yaml#web": None}, paths=["/srv/app"]),
    Case("5.32", "override-adds-socket", svc(*BASE_OK, **{OV: F('services:\n  web:\n    volumes: ["/var/run:/var/run"]\n')}),
         {WEB: "fail"}, paths=["/srv/app"], evidence="/var/run -> /var/run"),
    Case("5.26", "base-file-alone", svc(*BASE_OK), {WEB: "pass"}, paths=["/srv/app"]),
    # a bind mount of / /var /run /var/run carries the socket
    *[Case("5.32", f"bind-{src.strip('/') or 'root'}", svc(f'volumes: ["{src}:/host:ro"]'), {WEB: "fail"},
           compose=["/srv/app/compose.yaml"]) for src in ("/", "/var", "/run", "/var/run")],
    Case("5.32", "bind-var-lib", svc('volumes: ["/var/lib/app:/data"]'), {WEB: "pass"}, compose=["/srv/app/compose.yaml"]),
    # --compose alone evaluates 4.1
    Case("4.1", "compose-alone", svc(), {WEB: "manual"}, compose=["/srv/app/compose.yaml"], evidence="check its USER"),
    Case("4.1", "compose-alone-user", svc('user: "1000:1000"'), {WEB: "pass"}, compose=["/srv/app/compose.yaml"]),
    # sshd installed or started by a Dockerfile (5.7), with its line
    Case("5.7", "dockerfile-installs", {"/src/img/Dockerfile": F("FROM debian:12\nRUN apt-get update && \\\n"
                                                                 "    apt-get install -y openssh-server\n")},
         {"dockerfile:/src/img/Dockerfile": "fail"}, paths=["/src/img"], evidence="line 2: RUN installs sshd"),
    Case("5.7", "dockerfile-starts", {"/src/img/Dockerfile": F('FROM alpine:3.20\nCMD ["/usr/sbin/sshd", "-D"]\n')},
         {"dockerfile:/src/img/Dockerfile": "fail"}, paths=["/src/img"], evidence="line 2: CMD starts sshd"),
    Case("5.7", "dockerfile-ssh-client", {"/src/img/Dockerfile": F("FROM debian:12\nRUN apt-get install -y openssh-client\n")},
         {"dockerfile:/src/img/Dockerfile": "pass"}, paths=["/src/img"]),
    Case("5.7", "nothing", {}, "skip"),
]


# ---------------------------------------------------------------------- section 3 (owners and modes)
ETC_GROUP = {"/etc/group": F("root:x:0:\ndocker:x:999:\n")}
TLS = {"tlscacert": "/etc/docker/tls/ca.pem", "tlscert": "/etc/docker/tls/server.pem", "tlskey": "/etc/docker/tls/server-key.pem"}


def owner_mode_cases(owner_cis: str, mode_cis: str, path: str, good: Any, bad_owner: Any, bad_mode: Any,
                     extra: dict | None = None, absent_extra: dict | None = None, mode_ev: str = "beyond") -> list[Case]:
    extra = extra or {}
    return [
        Case(owner_cis, "fail", {**extra, path: bad_owner}, {path: "fail"}, evidence="owned by 1000:1000"),
        Case(owner_cis, "pass", {**extra, path: good}, {path: "pass"}),
        Case(mode_cis, "fail", {**extra, path: bad_mode}, {path: "fail"}, evidence=mode_ev),
        Case(mode_cis, "pass", {**extra, path: good}, {path: "pass"}),
        Case(owner_cis, "absent", dict(absent_extra or {}), "skip"),
        Case(mode_cis, "absent", dict(absent_extra or {}), "skip"),
    ]


SECTION_3 = [
    *owner_mode_cases("3.1", "3.2", "/lib/systemd/system/docker.service", F("[Service]\n", 0o644),
                      F("[Service]\n", 0o644, (1000, 1000)), F("[Service]\n", 0o666)),
    *owner_mode_cases("3.3", "3.4", "/lib/systemd/system/docker.socket", F("[Socket]\n", 0o644),
                      F("[Socket]\n", 0o644, (1000, 1000)), F("[Socket]\n", 0o664)),
    *owner_mode_cases("3.5", "3.6", "/etc/docker", D(0o755), D(0o755, (1000, 1000)), D(0o733)),
    Case("3.6", "tighter", {"/etc/docker": D(0o700)}, "pass"),
    *owner_mode_cases("3.7", "3.8", "/etc/docker/certs.d/reg.example:5000/ca.crt", F("CERT", 0o444),
                      F("CERT", 0o444, (1000, 1000)), F("CERT", 0o644)),
    *owner_mode_cases("3.9", "3.10", TLS["tlscacert"], F("CA", 0o444), F("CA", 0o444, (1000, 1000)), F("CA", 0o644),
                      extra=dj(TLS)),
    *owner_mode_cases("3.11", "3.12", TLS["tlscert"], F("CERT", 0o444), F("CERT", 0o444, (1000, 1000)),
                      F("CERT", 0o640), extra=dj(TLS)),
    *owner_mode_cases("3.13", "3.14", TLS["tlskey"], F("KEY", 0o400), F("KEY", 0o400, (1000, 1000)), F("KEY", 0o440),
                      extra=dj(TLS), mode_ev="mode 0440; must be 0400"),
    Case("3.14", "stricter-is-not-400", {**dj(TLS), TLS["tlskey"]: F("KEY", 0o000)}, "fail", evidence="must be 0400"),
    Case("3.9", "named-but-missing", dj(TLS), "error", evidence="named by tlscacert"),
    *owner_mode_cases("3.15", "3.16", "/var/run/docker.sock", S(0o660, (0, 999)), S(0o660, (1000, 1000)),
                      S(0o666, (0, 999)), extra=ETC_GROUP),
    Case("3.16", "not-a-socket", {"/var/run/docker.sock": F("", 0o600)}, "error", evidence="not a socket"),
    Case("3.15", "root-group", {**ETC_GROUP, "/var/run/docker.sock": S(0o660, (0, 0))}, "fail",
         evidence="must be root:docker"),
    *owner_mode_cases("3.17", "3.18", "/etc/docker/daemon.json", J({}), J({}, owner=(1000, 1000)), J({}, mode=0o664)),
    Case("3.18", "through-a-link", {"/etc/docker/daemon.json": L("/srv/conf/daemon.json"),
                                    "/srv/conf/daemon.json": J({}, mode=0o666)}, "fail", evidence="through the link"),
    *owner_mode_cases("3.19", "3.20", "/etc/default/docker", F("", 0o644), F("", 0o644, (1000, 1000)), F("", 0o646)),
    *owner_mode_cases("3.22", "3.21", "/etc/sysconfig/docker", F("", 0o644), F("", 0o644, (1000, 1000)), F("", 0o654)),
    *owner_mode_cases("3.23", "3.24", "/run/containerd/containerd.sock", S(0o660), S(0o660, (1000, 1000)), S(0o666)),
]


# ---------------------------------------------------------------------- notes
SHOP = """\
services:
  db:
    image: mysql:8
    environment:
      MYSQL_ROOT_PASSWORD: hunter2
      MYSQL_DATABASE: shop
  app:
    image: shop/app:1
    environment:
      - DATABASE_URL=postgres://shop:${DB_PASS}@db/shop
      - DEBUG=false
  worker:
    image: shop/worker:1
    environment:
      API_TOKEN:
"""
SHOP_OK = """\
services:
  db:
    image: mysql:8
    environment:
      MYSQL_ROOT_PASSWORD_FILE: /run/secrets/db_root
      MYSQL_ALLOW_EMPTY_PASSWORD: "no"
      DATABASE_URL: postgres://shop@db/shop
    secrets: [db_root]
secrets:
  db_root:
    file: ./db_root.txt
"""

REGISTRY_S3 = """\
services:
  registry:
    image: registry:2
    ports: ["5000:5000"]
    environment:
      REGISTRY_STORAGE: s3
      REGISTRY_STORAGE_S3_REGION: eu-west-1
      REGISTRY_STORAGE_S3_BUCKET: scw_internal_registry_bucket
      REGISTRY_STORAGE_S3_ENCRYPT: "false"
"""
REGISTRY_OK = """\
services:
  registry:
    image: docker.io/library/registry:2.8
    environment:
      REGISTRY_HTTP_TLS_CERTIFICATE: /certs/domain.crt
      REGISTRY_HTTP_TLS_KEY: /certs/domain.key
    volumes:
      - ./config.yml:/etc/docker/registry/config.yml:ro
"""
REGISTRY_CONFIG_OK = "version: 0.1\nstorage:\n  s3:\n    bucket: b\n    region: eu-west-1\n    encrypt: true\n"
REGISTRY_CONFIG_TLS = "version: 0.1\nhttp:\n  addr: :5000\n  tls:\n    certificate: /c.crt\n    key: /c.key\n"
REGISTRY_MOUNTED = """\
services:
  registry:
    image: registry:2
    volumes:
      - ./config.yml:/etc/docker/registry/config.yml:ro
"""

DOCKERFILE_BAD = """\
FROM python:3.12-slim
WORKDIR /app
COPY . /app
COPY deploy/id_ed25519 /root/.ssh/id_ed25519
ARG NPM_TOKEN
ENV DB_PASSWORD=hunter2
RUN pip install -r requirements.txt
"""
DOCKERFILE_OK = """\
FROM python:3.12-slim
WORKDIR /app
COPY . /app
COPY certs/internal-ca.crt /usr/local/share/ca-certificates/
RUN --mount=type=secret,id=pip pip install -r requirements.txt
ENV PYTHONUNBUFFERED=1
"""
APP_FILES = {"/src/app/main.py": F("print('hi')\n"), "/src/app/requirements.txt": F("flask\n"),
             "/src/app/.env": F("DB_PASSWORD=hunter2\n", 0o600), "/src/app/data/customers.csv": F("id,email\n"),
             "/src/app/certs/internal-ca.crt": F("CERT")}

NOTES = [
    Case("content-trust", "set", {"/etc/environment": F('LANG=C\nDOCKER_CONTENT_TRUST="1"\n')},
         "pass", evidence="no docker CLI is installed, so the setting has no effect"),
    Case("content-trust", "profile-d", {"/etc/profile.d/dct.sh": F("export DOCKER_CONTENT_TRUST=1\n"),
                                        "/usr/bin/docker": F("ELF", 0o755)},
         "pass", evidence="the CLI version is unknown: before 29.0 the CLI enforces it"),
    Case("content-trust", "unset", {"/etc/environment": F("LANG=C\n"), "/etc/profile.d/x.sh": F("export DOCKER_CONTENT_TRUST=0\n")},
         "fail", evidence="set to 0"),
    # /etc/profile.d is read after /etc/environment: its =0 wins over the =1 before it
    Case("content-trust", "overridden", {"/etc/environment": F("DOCKER_CONTENT_TRUST=1\n"),
                                         "/etc/profile.d/zz.sh": F("export DOCKER_CONTENT_TRUST=0\n")},
         "fail", evidence="set to 0 at /etc/profile.d/zz.sh:1"),
    Case("disable-content-trust-flag", "fail", {
        "/src/ops/deploy.sh": F("#!/bin/sh\nset -e\ndocker pull --disable-content-trust shop/app:1\n", 0o755),
        "/src/ops/.gitlab-ci.yml": F("build:\n  script:\n    - docker build --disable-content-trust=true .\n"),
        "/src/ops/README.md": F("never pass --disable-content-trust\n"),
        "/src/ops/release": F("#!/bin/bash\ndocker run --rm --disable-content-trust shop/app:1\n", 0o755),
        "/src/ops/NOTES": F("docker pull --disable-content-trust (no #! line: not a script)\n")},
        {"/src/ops/deploy.sh": "fail", "/src/ops/.gitlab-ci.yml": "fail", "/src/ops/release": "fail"}, paths=["/src/ops"],
        evidence="line 3 (docker pull)"),
    Case("disable-content-trust-flag", "pass", {
        "/src/ops/deploy.sh": F("#!/bin/sh\n# docker pull --disable-content-trust was removed\ndocker pull --disable-content-trust=false a\n"),
        "/src/ops/Makefile": F("build:\n\tdocker build .\n")}, "pass", paths=["/src/ops"]),
    Case("disable-content-trust-flag", "no-path", {}, "skip"),
    Case("env-password", "fail", {"/srv/shop/compose.yaml": F(SHOP), "/srv/shop/.env": F("DB_PASS=hunter3\n", 0o600)},
         {"compose:/srv/shop/compose.yaml#db": "fail", "compose:/srv/shop/compose.yaml#app": "fail",
          "compose:/srv/shop/compose.yaml#worker": "fail"}, paths=["/srv/shop"],
         evidence="MYSQL_ROOT_PASSWORD set to a literal value (line 5)"),
    Case("env-password", "pass", {"/srv/shop/docker-compose.yml": F(SHOP_OK)},
         {"compose:/srv/shop/docker-compose.yml#db": "pass"}, compose=["/srv/shop/docker-compose.yml"]),
    Case("env-password", "env-file", {"/srv/shop/compose.yaml": F("services:\n  db:\n    image: postgres\n    env_file: [db.env]\n"),
                                       "/srv/shop/db.env": F("# db\nPOSTGRES_USER=shop\nPOSTGRES_PASSWORD=hunter2\n", 0o600)},
         "fail", paths=["/srv/shop"], evidence="POSTGRES_PASSWORD set in the env_file /srv/shop/db.env (line 3)"),
    Case("env-password", "two-variables", {"/srv/shop/compose.yaml": F("services:\n  app:\n    image: a\n    environment:\n"
                                                                        "      DSN: postgres://${U}:${P}@db/x\n"),
                                            "/srv/shop/.env": F("U=shop\nP=hunter2\n")},
         "fail", paths=["/srv/shop"], evidence="from ${U} and ${P}, defined in the .env"),
    Case("env-password", "malformed", {"/srv/shop/compose.yaml": F("services:\n  db: [\n")}, "error",
         paths=["/srv/shop"], evidence="/srv/shop/compose.yaml: line 3"),
    Case("env-password", "nothing", {}, "skip"),
    Case("registry-s3-encryption", "fail", {"/srv/reg/compose.yaml": F(REGISTRY_S3)},
         {"compose:/srv/reg/compose.yaml#registry": "fail"}, paths=["/srv/reg"],
         evidence="REGISTRY_STORAGE_S3_ENCRYPT=false (line 9)"),
    Case("registry-s3-encryption", "pass", {"/srv/reg/compose.yaml": F(REGISTRY_OK), "/srv/reg/config.yml": F(REGISTRY_CONFIG_OK)},
         {"compose:/srv/reg/compose.yaml#registry": "pass"}, paths=["/srv/reg"], evidence="storage.s3.encrypt: true"),
    Case("registry-s3-encryption", "filesystem", {"/srv/reg/compose.yaml": F(REGISTRY_MOUNTED),
                                                  "/srv/reg/config.yml": F(REGISTRY_CONFIG_TLS)}, "skip", paths=["/srv/reg"]),
    Case("registry-https", "fail", {"/srv/reg/compose.yaml": F(REGISTRY_S3)},
         {"compose:/srv/reg/compose.yaml#registry": "fail"}, paths=["/srv/reg"], evidence="serves plain HTTP"),
    Case("registry-https", "pass-env", {"/srv/reg/compose.yaml": F(REGISTRY_OK), "/srv/reg/config.yml": F(REGISTRY_CONFIG_OK)},
         "pass", paths=["/srv/reg"]),
    Case("registry-https", "pass-config", {"/srv/reg/compose.yaml": F(REGISTRY_MOUNTED),
                                           "/srv/reg/config.yml": F(REGISTRY_CONFIG_TLS)}, "pass", paths=["/srv/reg"],
         evidence="http.tls in /srv/reg/config.yml"),
    Case("registry-https", "no-registry", {"/srv/shop/compose.yaml": F(SHOP_OK)}, "skip", paths=["/srv/shop"]),
    Case("sensitive-file-in-image", "fail", {**APP_FILES, "/src/app/Dockerfile": F(DOCKERFILE_BAD),
                                             "/src/app/deploy/id_ed25519": F("KEY", 0o600)},
         {"dockerfile:/src/app/Dockerfile": "fail"}, paths=["/src/app"], evidence="line 3: COPY . takes .env"),
    Case("sensitive-file-in-image", "pass", {**APP_FILES, "/src/app/Dockerfile": F(DOCKERFILE_OK),
                                             "/src/app/.dockerignore": F(".env\ndata/\n**/*.key\n")},
         {"dockerfile:/src/app/Dockerfile": "pass"}, paths=["/src/app"]),
    Case("sensitive-file-in-image", "no-dockerfile", {"/src/app/main.py": F("")}, "skip", paths=["/src/app"]),
    Case("storage-driver", "devicemapper", dj({"storage-driver": "devicemapper"}), "fail", evidence="removed in Docker Engine 25.0"),
    Case("storage-driver", "overlay2", dj({"storage-driver": "overlay2"}), "pass"),
    Case("storage-driver", "unknown-driver", dj({"storage-driver": "something"}), "manual"),
    Case("storage-driver", "unknown", dj({}), "skip"),
]

CASES = SECTION_1 + AUDIT + SECTION_2 + EFFECTIVE + RUNTIME + COMPOSE + SECTION_3 + NOTES


def run_case(tmp_path: Path, case: Case):
    build(tmp_path, case.tree)
    ctx = Context(Host(str(tmp_path), engine=False), paths=case.paths, compose=case.compose)
    return run_check(find_check(case.check), ctx)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(tmp_path, case: Case):
    findings = run_case(tmp_path, case)
    got = {f.subject: str(f.status) for f in findings}
    if isinstance(case.expect, str):
        assert set(got.values()) == {case.expect}, got
    else:
        for subject, status in case.expect.items():
            assert got.get(subject) == status, got
    if case.evidence:
        assert any(case.evidence in f.evidence for f in findings), [f.evidence for f in findings]
    for f in findings:
        assert f.evidence, f"{f.id} {f.subject}: a result without evidence"
        assert "hunter2" not in f.evidence and "hunter3" not in f.evidence
        assert "hunter2" not in json.dumps(f.data) and "hunter3" not in json.dumps(f.data)


def test_vfs_is_a_low_severity_fail(tmp_path):
    build(tmp_path, dj({"storage-driver": "vfs"}))
    (f,) = run_check(REGISTRY["storage-driver"], Context(Host(str(tmp_path), engine=False)))
    assert (str(f.status), str(f.severity)) == ("fail", "low")


def test_every_check_has_a_problem_case_and_a_clean_case():
    problem: dict[str, set] = {}
    for c in CASES:
        chk = find_check(c.check)
        statuses = {c.expect} if isinstance(c.expect, str) else set(c.expect.values())
        problem.setdefault(chk.id, set()).update(statuses)
    missing = []
    # sections 4-7 are engine checks with their own real-engine tests (tests/test_engine_checks.py ...)
    mine = {"dockfix.checks.host_config", "dockfix.checks.daemon", "dockfix.checks.files", "dockfix.checks.notes",
            "dockfix.checks.storage"}
    checks = [c for c in REGISTRY.values() if c.fn.__module__ in mine]
    assert {c.section for c in checks} >= {"1", "2", "3", "notes"}
    for chk in checks:
        seen = problem.get(chk.id, set())
        if chk.section in ("4", "5", "6", "7") and chk.id not in problem:
            continue  # engine checks: tests/test_engine_checks.py and tests/test_swarm_checks.py
        if chk.id in ("daemon-rootless", "host-hardened", "docker-version"):
            ok = bool(seen)  # always manual (or skip without engine): one case shows it
        elif chk.id == "data-root-partition":
            ok = bool(seen & {"pass"})  # fail needs a live mount table: test_data_root_partition_verdicts
        else:
            ok = bool(seen & {"fail", "manual"}) and bool(seen & {"pass", "skip"})
        if not ok:
            missing.append(f"{chk.id} ({chk.cis}): {sorted(seen)}")
    assert not missing, "checks without a failing and a passing case:\n" + "\n".join(missing)


def test_audit_items_share_one_table():
    assert [cis for cis, _ in AUDIT_TARGETS] == [f"1.1.{n}" for n in range(3, 19)]
    assert [REGISTRY[i].cis for i, _, _ in _AUDIT_ITEMS.values()] == [cis for cis, _ in AUDIT_TARGETS]


MOUNTINFO = """\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
30 22 254:1 / /var rw,relatime shared:2 - xfs /dev/vdb1 rw
31 30 254:2 / /var/lib/docker rw,relatime shared:3 - xfs /dev/vdc1 rw
32 22 0:5 / /srv/my\\040data rw - tmpfs tmpfs rw
"""


@pytest.mark.parametrize("root,status,phrase", [
    ("/var/lib/docker", "pass", "mount point of its own (xfs on /dev/vdc1)"),
    ("/var/lib/docker/sub", "manual", "on the /var/lib/docker partition"),
    ("/var/docker", "manual", "on the /var partition"),
    ("/opt/docker", "fail", "on the root filesystem (ext4 on /dev/vda1)"),
    ("/srv/my data/docker", "manual", "on the /srv/my data partition"),
])
def test_data_root_partition_verdicts(root, status, phrase):
    from dockfix.checks.host_config import judge_partition, mount_points

    r = judge_partition(root, root, "test", mount_points(MOUNTINFO))
    assert (str(r.status), phrase in r.evidence) == (status, True), r.evidence


def test_data_root_partition_on_the_live_root_reads_the_mount_table():
    # read-only look at this machine: whatever the verdict, it names the filesystem it found
    (f,) = run_check(REGISTRY["data-root-partition"], Context(Host("/", engine=False)))
    assert str(f.status) in ("pass", "fail", "manual"), f.evidence
    assert " on " in f.evidence and "data root" in f.evidence
