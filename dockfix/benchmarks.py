"""CIS Docker Benchmark versions: the number every check has in each of them.

dockfix maps its checks to CIS Docker Benchmark v1.6.0, v1.7.0 and v1.8.0 (the default). A check is
keyed by its id; its number depends on the version chosen with ``--benchmark``, and so does every
output, ``--only``/``--skip`` and anything else that names checks by number (waivers: call
:func:`resolve`). The facts come from the item lists of the three versions; every word here is ours.

What moved between the versions:

* 1.6.0 -> 1.7.0: no item added, removed or renumbered. /run/containerd's audit rule (1.1.4) became
  a manual assessment; the audit rules for containerd-shim, containerd-shim-runc-v2 and runc
  (1.1.15, 1.1.17, 1.1.18) became automated. 5.6 added /lib64 to the sensitive host folders.
* 1.7.0 -> 1.8.0: a new 2.7 (the devicemapper storage driver is not used) pushes the old 2.7-2.18
  down to 2.8-2.19. 1.1.5 names a custom data-root; 4.1 reads the effective UID of the container's
  first process.

This module imports nothing of dockfix: the scan, the reports, the app and the waivers all use it.
"""

from __future__ import annotations

from typing import Iterable

NAME = "CIS Docker Benchmark"
VERSIONS = ("1.6.0", "1.7.0", "1.8.0")
DEFAULT = "1.8.0"

#: The explicit "this check has no item in this version" (a team finding, or an item added later).
NOT_IN = None

#: check id -> its number in each of :data:`VERSIONS`, in that order. Every check has a row
#: (tests/test_benchmarks.py): a number, or :data:`NOT_IN`.
NUMBERS: dict[str, tuple[str | None, str | None, str | None]] = {
    "data-root-partition": ("1.1.1", "1.1.1", "1.1.1"),
    "docker-group-members": ("1.1.2", "1.1.2", "1.1.2"),
    "audit-dockerd": ("1.1.3", "1.1.3", "1.1.3"),
    "audit-run-containerd": ("1.1.4", "1.1.4", "1.1.4"),
    "audit-data-root": ("1.1.5", "1.1.5", "1.1.5"),
    "audit-etc-docker": ("1.1.6", "1.1.6", "1.1.6"),
    "audit-docker-service": ("1.1.7", "1.1.7", "1.1.7"),
    "audit-containerd-sock": ("1.1.8", "1.1.8", "1.1.8"),
    "audit-docker-socket-unit": ("1.1.9", "1.1.9", "1.1.9"),
    "audit-etc-default-docker": ("1.1.10", "1.1.10", "1.1.10"),
    "audit-daemon-json": ("1.1.11", "1.1.11", "1.1.11"),
    "audit-containerd-config": ("1.1.12", "1.1.12", "1.1.12"),
    "audit-etc-sysconfig-docker": ("1.1.13", "1.1.13", "1.1.13"),
    "audit-containerd": ("1.1.14", "1.1.14", "1.1.14"),
    "audit-containerd-shim": ("1.1.15", "1.1.15", "1.1.15"),
    "audit-containerd-shim-runc-v1": ("1.1.16", "1.1.16", "1.1.16"),
    "audit-containerd-shim-runc-v2": ("1.1.17", "1.1.17", "1.1.17"),
    "audit-runc": ("1.1.18", "1.1.18", "1.1.18"),
    "host-hardened": ("1.2.1", "1.2.1", "1.2.1"),
    "docker-version": ("1.2.2", "1.2.2", "1.2.2"),
    "daemon-rootless": ("2.1", "2.1", "2.1"),
    "icc": ("2.2", "2.2", "2.2"),
    "log-level": ("2.3", "2.3", "2.3"),
    "iptables": ("2.4", "2.4", "2.4"),
    "insecure-registries": ("2.5", "2.5", "2.5"),
    "aufs": ("2.6", "2.6", "2.6"),
    "devicemapper": (NOT_IN, NOT_IN, "2.7"),  # new in 1.8.0
    "daemon-tls": ("2.7", "2.7", "2.8"),
    "default-ulimit": ("2.8", "2.8", "2.9"),
    "userns-remap": ("2.9", "2.9", "2.10"),
    "cgroup-parent": ("2.10", "2.10", "2.11"),
    "dm-basesize": ("2.11", "2.11", "2.12"),
    "authorization-plugins": ("2.12", "2.12", "2.13"),
    "remote-logging": ("2.13", "2.13", "2.14"),
    "no-new-privileges": ("2.14", "2.14", "2.15"),
    "live-restore": ("2.15", "2.15", "2.16"),
    "userland-proxy": ("2.16", "2.16", "2.17"),
    "seccomp-profile": ("2.17", "2.17", "2.18"),
    "experimental": ("2.18", "2.18", "2.19"),
    "docker-service-owner": ("3.1", "3.1", "3.1"),
    "docker-service-mode": ("3.2", "3.2", "3.2"),
    "docker-socket-unit-owner": ("3.3", "3.3", "3.3"),
    "docker-socket-unit-mode": ("3.4", "3.4", "3.4"),
    "etc-docker-owner": ("3.5", "3.5", "3.5"),
    "etc-docker-mode": ("3.6", "3.6", "3.6"),
    "registry-certs-owner": ("3.7", "3.7", "3.7"),
    "registry-certs-mode": ("3.8", "3.8", "3.8"),
    "tls-ca-cert-owner": ("3.9", "3.9", "3.9"),
    "tls-ca-cert-mode": ("3.10", "3.10", "3.10"),
    "tls-server-cert-owner": ("3.11", "3.11", "3.11"),
    "tls-server-cert-mode": ("3.12", "3.12", "3.12"),
    "tls-server-key-owner": ("3.13", "3.13", "3.13"),
    "tls-server-key-mode": ("3.14", "3.14", "3.14"),
    "docker-sock-owner": ("3.15", "3.15", "3.15"),
    "docker-sock-mode": ("3.16", "3.16", "3.16"),
    "daemon-json-owner": ("3.17", "3.17", "3.17"),
    "daemon-json-mode": ("3.18", "3.18", "3.18"),
    "etc-default-docker-owner": ("3.19", "3.19", "3.19"),
    "etc-default-docker-mode": ("3.20", "3.20", "3.20"),
    "etc-sysconfig-docker-mode": ("3.21", "3.21", "3.21"),
    "etc-sysconfig-docker-owner": ("3.22", "3.22", "3.22"),
    "containerd-sock-owner": ("3.23", "3.23", "3.23"),
    "containerd-sock-mode": ("3.24", "3.24", "3.24"),
    "container-user": ("4.1", "4.1", "4.1"),
    "trusted-base-images": ("4.2", "4.2", "4.2"),
    "minimal-packages": ("4.3", "4.3", "4.3"),
    "image-patching": ("4.4", "4.4", "4.4"),
    "content-trust": ("4.5", "4.5", "4.5"),
    "image-healthcheck": ("4.6", "4.6", "4.6"),
    "update-alone": ("4.7", "4.7", "4.7"),
    "setuid-removed": ("4.8", "4.8", "4.8"),
    "copy-not-add": ("4.9", "4.9", "4.9"),
    "image-env-secrets": ("4.10", "4.10", "4.10"),
    "sensitive-file-in-image": ("4.10", "4.10", "4.10"),
    "verified-packages": ("4.11", "4.11", "4.11"),
    "signed-artifacts": ("4.12", "4.12", "4.12"),
    "swarm-mode": ("5.1", "5.1", "5.1"),
    "apparmor-profile": ("5.2", "5.2", "5.2"),
    "selinux-options": ("5.3", "5.3", "5.3"),
    "capabilities": ("5.4", "5.4", "5.4"),
    "privileged": ("5.5", "5.5", "5.5"),
    "sensitive-mounts": ("5.6", "5.6", "5.6"),
    "sshd": ("5.7", "5.7", "5.7"),
    "privileged-ports": ("5.8", "5.8", "5.8"),
    "needed-ports": ("5.9", "5.9", "5.9"),
    "host-network": ("5.10", "5.10", "5.10"),
    "memory-limit": ("5.11", "5.11", "5.11"),
    "cpu-priority": ("5.12", "5.12", "5.12"),
    "read-only-rootfs": ("5.13", "5.13", "5.13"),
    "port-bind-interface": ("5.14", "5.14", "5.14"),
    "restart-policy": ("5.15", "5.15", "5.15"),
    "host-pid": ("5.16", "5.16", "5.16"),
    "host-ipc": ("5.17", "5.17", "5.17"),
    "host-devices": ("5.18", "5.18", "5.18"),
    "ulimit-override": ("5.19", "5.19", "5.19"),
    "mount-propagation": ("5.20", "5.20", "5.20"),
    "host-uts": ("5.21", "5.21", "5.21"),
    "seccomp-unconfined": ("5.22", "5.22", "5.22"),
    "exec-privileged": ("5.23", "5.23", "5.23"),
    "exec-root": ("5.24", "5.24", "5.24"),
    "container-cgroup": ("5.25", "5.25", "5.25"),
    "container-no-new-privileges": ("5.26", "5.26", "5.26"),
    "container-health": ("5.27", "5.27", "5.27"),
    "image-current": ("5.28", "5.28", "5.28"),
    "pids-limit": ("5.29", "5.29", "5.29"),
    "default-bridge": ("5.30", "5.30", "5.30"),
    "host-userns": ("5.31", "5.31", "5.31"),
    "docker-socket-mount": ("5.32", "5.32", "5.32"),
    "image-sprawl": ("6.1", "6.1", "6.1"),
    "container-sprawl": ("6.2", "6.2", "6.2"),
    "swarm-managers": ("7.1", "7.1", "7.1"),
    "swarm-listen-addr": ("7.2", "7.2", "7.2"),
    "overlay-encrypted": ("7.3", "7.3", "7.3"),
    "swarm-secrets": ("7.4", "7.4", "7.4"),
    "swarm-autolock": ("7.5", "7.5", "7.5"),
    "autolock-key-rotation": ("7.6", "7.6", "7.6"),
    "node-cert-rotation": ("7.7", "7.7", "7.7"),
    "ca-cert-rotation": ("7.8", "7.8", "7.8"),
    "data-plane-separation": ("7.9", "7.9", "7.9"),
    # the team's findings and the image-trust checks: in no version of the benchmark
    "disable-content-trust-flag": (NOT_IN, NOT_IN, NOT_IN),
    "env-password": (NOT_IN, NOT_IN, NOT_IN),
    "image-digest": (NOT_IN, NOT_IN, NOT_IN),
    "image-signature": (NOT_IN, NOT_IN, NOT_IN),
    "registry-https": (NOT_IN, NOT_IN, NOT_IN),
    "registry-s3-encryption": (NOT_IN, NOT_IN, NOT_IN),
    "storage-driver": (NOT_IN, NOT_IN, NOT_IN),
}

#: Items the benchmark assesses as "Automated" in each version (all others are "Manual"), in that
#: version's own numbering.
_AUTOMATED_COMMON = {"1.1.3", "1.1.6", "1.1.7", "1.1.8", "1.1.9", "1.1.10", "1.1.11", "1.1.12", "1.1.13", "1.1.14",
                     "3.1", "3.2", "3.3", "3.4", "3.5", "3.6", "3.15", "3.16", "3.23", "3.24"}
AUTOMATED: dict[str, frozenset[str]] = {
    "1.6.0": frozenset(_AUTOMATED_COMMON | {"1.1.4"}),
    "1.7.0": frozenset(_AUTOMATED_COMMON | {"1.1.15", "1.1.17", "1.1.18"}),
    "1.8.0": frozenset(_AUTOMATED_COMMON | {"1.1.15", "1.1.17", "1.1.18"}),
}


class UnknownBenchmark(ValueError):
    pass


def check_version(version: str) -> str:
    """``version`` when dockfix knows it; otherwise a one-line error naming the known ones."""
    if version not in VERSIONS:
        raise UnknownBenchmark(f"unknown benchmark version {version!r} (choose from {', '.join(VERSIONS)})")
    return version


def number(check_id: str, version: str = DEFAULT) -> str | None:
    """The number of ``check_id`` in ``version``, or None when that version has no such item."""
    row = NUMBERS.get(check_id)
    return None if row is None else row[VERSIONS.index(check_version(version))]


def assessment(check_id: str, version: str = DEFAULT) -> str | None:
    """"automated" or "manual" as the benchmark ``version`` assesses the check's item; None outside it."""
    n = number(check_id, version)
    if n is None:
        return None
    return "automated" if n in AUTOMATED[version] else "manual"


def section(num: str) -> str:
    return num.split(".")[0]


def matches(check_id: str, section_: str, name: str, version: str = DEFAULT) -> bool:
    """Whether ``name`` (a check id, a number, a section or a group such as ``1.1``) names the check."""
    n = number(check_id, version)
    return name == check_id or name == section_ or (n is not None and (name == n or n.startswith(name + ".")))


def known_names(version: str = DEFAULT) -> set[str]:
    """Every number and group of numbers of ``version`` (``2``, ``1.1``, ``2.19``)."""
    out: set[str] = set()
    for row in NUMBERS.values():
        n = row[VERSIONS.index(check_version(version))]
        if n is None:
            continue
        parts = n.split(".")
        out.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return out


def resolve(names: Iterable[str], version: str = DEFAULT, sections: dict[str, str] | None = None) -> list[str]:
    """The check ids that ``names`` (ids, numbers of ``version``, sections, groups) select, in table
    order. ValueError naming the first name that selects nothing. For --only/--skip and waivers.

    ``sections`` maps check id -> its section, for checks whose section is not their number's
    (the team's findings, ``notes``); the scan passes it from the registry."""
    sections = sections or {}
    ids = list(dict.fromkeys(list(NUMBERS) + list(sections)))
    out: list[str] = []
    for name in names:
        hits = [i for i in ids if matches(i, sections.get(i) or section(number(i, version) or "notes"), name, version)]
        if not hits:
            raise ValueError(f"unknown check id {name!r} (in {NAME} v{version})")
        out += [h for h in hits if h not in out]
    return out
