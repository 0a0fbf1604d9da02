"""Fixes: each builds a plan for one failing finding and touches nothing.

A check declares that it has a fix, and what kind (``fix=Fix(Safety.SAFE, "impact")`` in its
``@check``), so that a scan can say so without loading any fix. The fix module attaches the plan
builder to the check object — the one way a fix joins its check::

    from dockfix.checks.files import etc_docker_owner

    @etc_docker_owner.fix
    def _(ctx, finding):
        return [Chown(finding.data["path"], 0, 0)]

The builder gets the scan context and the failing finding and returns a list of changes
(:mod:`dockfix.changes`) or a whole item made with :func:`item`. It raises :class:`ManualFix` with
the commands to run when the fix cannot be made safely here. :func:`load_all` imports every module
of this package; the scan never does.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Iterable

from dockfix.model import Finding, get_check
from dockfix.plan import PlanItem


class ManualFix(Exception):
    """Raised by a fix builder: this fix must be done by hand; the message says how."""


def item(finding: Finding, changes: Iterable = (), notes: Iterable[str] = (), *, daemon_action: str | None = None,
         post: Iterable[list[str]] = ()) -> PlanItem:
    """A plan item for ``finding``, with the safety and impact its check declares."""
    spec = get_check(finding.id).fix_spec
    assert spec is not None, f"{finding.id} declares no fix"
    return PlanItem(finding.id, finding.subject, finding.title, spec.safety, spec.impact, list(changes), list(notes or ()),
                    daemon_action=daemon_action, post=[list(p) for p in post])


_loaded = False


def load_all() -> None:
    """Import every fix module (attaching each builder to its check). Safe to call more than once."""
    global _loaded
    if _loaded:
        return
    import dockfix.checks  # noqa: F401  (every check declared first)

    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")
    _loaded = True
