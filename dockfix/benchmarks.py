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

A check's numbers follow from the v1.6.0 number it declares (``cis=``); only an item new in a later
version is listed here. This module reads the check registry of dockfix.model and nothing else.
"""

from __future__ import annotations

from typing import Iterable

NAME = "CIS Docker Benchmark"
VERSIONS = ("1.6.0", "1.7.0", "1.8.0")
DEFAULT = "1.8.0"

#: The explicit "this check has no item in this version" (a team finding, or an item added later).
NOT_IN = None

#: Checks whose numbers do not follow from the v1.6.0 number they declare (``cis=``): an item new in
#: a later version. Every other check's row is derived by :func:`row`.
EXCEPTIONS: dict[str, tuple[str | None, str | None, str | None]] = {
    "devicemapper": (NOT_IN, NOT_IN, "2.7"),  # new in 1.8.0
}


def derive(cis: str | None) -> tuple[str | None, str | None, str | None]:
    """The numbers, in each of :data:`VERSIONS`, of the item that is ``cis`` in v1.6.0: 1.7.0 renumbers
    nothing; 1.8.0 inserts a new 2.7, so the old 2.7-2.18 become 2.8-2.19."""
    if cis is None:
        return (NOT_IN, NOT_IN, NOT_IN)
    parts = cis.split(".")
    new = f"2.{int(parts[1]) + 1}" if parts[0] == "2" and len(parts) == 2 and 7 <= int(parts[1]) <= 18 else cis
    return (cis, cis, new)


def row(check_id: str) -> tuple[str | None, str | None, str | None] | None:
    """``check_id``'s number in each of :data:`VERSIONS` (None for an unknown check)."""
    if check_id in EXCEPTIONS:
        return EXCEPTIONS[check_id]
    from dockfix.model import REGISTRY  # the declared checks (this module is imported by the model's users)

    check = REGISTRY.get(check_id)
    return None if check is None else derive(check.cis)


def table() -> dict[str, tuple[str | None, str | None, str | None]]:
    """Every declared check's row (a number, or :data:`NOT_IN`, per version)."""
    from dockfix.model import REGISTRY

    return {cid: row(cid) for cid in REGISTRY}  # type: ignore[misc]


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
    r = row(check_id)
    return None if r is None else r[VERSIONS.index(check_version(version))]


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
    for r in table().values():
        n = r[VERSIONS.index(check_version(version))]
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
    ids = list(dict.fromkeys(list(table()) + list(sections)))
    out: list[str] = []
    for name in names:
        hits = [i for i in ids if matches(i, sections.get(i) or section(number(i, version) or "notes"), name, version)]
        if not hits:
            raise ValueError(f"unknown check id {name!r} (in {NAME} v{version})")
        out += [h for h in hits if h not in out]
    return out
