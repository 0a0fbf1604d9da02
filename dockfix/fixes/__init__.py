"""Fixes: each builds a Plan from a finding and touches nothing.

A fix is one small plan builder attached to its check::

    @etc_docker_owner.fix(safety=SAFE, impact="Only root can change the daemon's configuration.")
    def _(ctx, finding):
        return [Chown(finding.data["path"], 0, 0)]

The builder gets the scan context and the failing finding and returns a list of
:mod:`dockfix.plan` changes (or a whole PlanItem). It raises :class:`ManualFix` with the commands to
run when the fix cannot be made safely here. Every module in this package is imported by
:func:`load_all`, which attaches the fixes to their checks.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable

SAFE, DISRUPTIVE, MANUAL = "safe", "disruptive", "manual"


@dataclass
class Fixer:
    check_id: str
    safety: str
    impact: str
    build: Callable[..., Any]


class ManualFix(Exception):
    """Raised by a fix builder: this fix must be done by hand; the message says how."""


_loaded = False


def load_all() -> None:
    """Import every fix module (attaching each fix to its check). Safe to call more than once."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_") and mod.name != "all":
            importlib.import_module(f"{__name__}.{mod.name}")
