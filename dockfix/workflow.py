"""The fix workflow for every front end (headless CLI, the app, fleet runs):
plan fixes for findings, apply a plan through the journal, roll back, list transactions, rescan."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from dockfix import journal as jr
from dockfix.fixes import DISRUPTIVE, MANUAL, SAFE, Fixer, ManualFix
from dockfix.host import Host
from dockfix.model import REGISTRY, CheckError, Finding, Status
from dockfix.plan import Plan, PlanError, PlanItem, PlanRefused

__all__ = ["plan_fixes", "apply_plan", "rollback", "list_transactions", "rescan", "ApplyResult", "RollbackResult",
           "TxInfo", "PlanError", "SAFE", "DISRUPTIVE", "MANUAL"]


def _matches(f: Finding, names: Iterable[str]) -> bool:
    return any(n == f.id or n == f.cis or (f.cis or "").startswith(n + ".") for n in names)


def plan_fixes(ctx, findings: Iterable[Finding], only: Iterable[str] = (), skip: Iterable[str] = (),
               include_disruptive: bool = False) -> Plan:
    """A plan with one item per failing finding that has a fix (touches nothing).

    Safe fixes are planned; disruptive ones only with ``include_disruptive``; manual ones (and fixes
    that turn out not to be possible here, e.g. a file behind a symbolic link) become items with
    notes and no changes. Several fixes of one file build on each other through the staging overlay.
    """
    import dockfix.fixes.all  # noqa: F401  (attaches every fix to its check)
    from dockfix.plan import staging

    only, skip = list(only), list(skip)
    stage = staging(ctx)
    plan = Plan(root=ctx.host.root)
    for f in findings:
        check = REGISTRY.get(f.id)
        fixer: Fixer | None = getattr(check, "fixer", None)
        if f.status != Status.FAIL or fixer is None:
            continue
        if only and not _matches(f, only):
            continue
        if skip and _matches(f, skip):
            continue
        if fixer.safety == DISRUPTIVE and not include_disruptive:
            continue
        item = PlanItem(check_id=f.id, subject=f.subject, title=f.title, safety=fixer.safety, impact=fixer.impact)
        if fixer.safety == MANUAL:
            try:
                built = fixer.build(ctx, f)
            except ManualFix as e:
                built = None
                item.notes.append(str(e))
            if isinstance(built, PlanItem):
                item.notes.extend(built.notes)
            plan.items.append(item)
            continue
        try:
            built = fixer.build(ctx, f)
            if isinstance(built, PlanItem):
                built.safety = fixer.safety
                built.impact = built.impact or fixer.impact
                item = built
            else:
                item.changes = list(built or [])
            for c in item.changes:
                c.bind(ctx.host, stage)
        except (ManualFix, PlanRefused, CheckError) as e:
            item = PlanItem(check_id=f.id, subject=f.subject, title=f.title, safety=MANUAL, impact=fixer.impact,
                            notes=[str(e)])
        except Exception as e:  # noqa: BLE001 — a bug in one fix must not stop the others; it is shown
            item = PlanItem(check_id=f.id, subject=f.subject, title=f.title, safety=MANUAL, impact=fixer.impact,
                            notes=[f"internal error in the fix for {f.id}: {type(e).__name__}: {e}"])
        if item.safety != MANUAL and not item.changes:
            continue  # nothing to do (an earlier fix already covers it)
        plan.items.append(item)
    return plan


def Context_for(host: Host):
    from dockfix.scan import Context

    return Context(host=Host(host.root, host.docker_host, host.engine, host.engine_timeout))


def subset_plan(ctx, plan: Plan, keep: list[PlanItem]) -> Plan:
    """The plan with only the ``keep`` items (e.g. after the user declined some).

    Items that change the same file build on each other; when a kept item builds on a dropped
    one, the kept items are planned again from a fresh scan of their checks, so that what is
    applied is exactly what the remaining fixes do on the host as it is.
    """
    kept_ids = {id(it) for it in keep}
    dropped_targets = {c.target for it in plan.items if id(it) not in kept_ids for c in it.changes}
    chained = any(c.target in dropped_targets for it in keep for c in it.changes)
    if not chained:
        return Plan([it for it in plan.items if id(it) in kept_ids], plan.root, plan.created)
    keys = {(it.check_id, it.subject) for it in keep}
    fresh = Context_for(ctx.host)
    fresh.paths, fresh.compose = list(ctx.paths), list(ctx.compose)
    findings = [f for f in rescan(fresh, [cid for cid, _ in keys]) if (f.id, f.subject) in keys]
    return plan_fixes(fresh, findings, include_disruptive=True)


@dataclass
class ApplyResult:
    txid: str | None
    applied: list[str]
    rolled_back: bool
    error: str | None
    actions: list[str] = field(default_factory=list)  # post-apply commands run or skipped, for the report


@dataclass
class RollbackResult:
    txid: str
    restored: list[str]
    refused_paths: list[str]
    already: bool = False
    damaged: str | None = None
    actions: list[str] = field(default_factory=list)


@dataclass
class TxInfo:
    txid: str
    time: float
    user: str
    items: list[dict]
    changes: list[dict]
    state: str
    error: str | None = None
    damaged: str | None = None

    def to_json(self) -> dict:
        return {"txid": self.txid, "time": self.time, "user": self.user, "items": self.items,
                "changes": self.changes, "state": self.state, "error": self.error, "damaged": self.damaged}


def apply_plan(host: Host, plan: Plan, *, yes: bool = True, on_step: Callable[[jr.Progress], None] | None = None,
               restart_daemon: bool = False) -> ApplyResult:
    """Apply a plan as one journaled transaction; it is rolled back if any change fails.

    ``yes=False`` applies only the safe items (disruptive ones need a confirmation the caller got).
    Raises :class:`~dockfix.journal.JournalBusy` when another apply runs, PlanError when the host
    changed since the plan was made (the message names the files; nothing is changed).
    """
    if not yes:
        plan = subset_plan(Context_for(host), plan, [it for it in plan.items if it.safety == SAFE])
    for c in plan.changes:
        if c.pre is None:
            raise PlanError(f"{c.target}: change was never bound to the host's state (use plan_fixes)")
    txid, applied, rolled_back, error = jr.apply(host, plan, on_step)
    result = ApplyResult(txid, applied, rolled_back, error)
    if txid and not error:
        result.actions = run_post_actions(host, plan.applicable(), restart_daemon)
    return result


def rollback(host: Host, txid: str | None = None, force: bool = False, restart_daemon: bool = False) -> RollbackResult:
    out = jr.rollback(host, txid, force)
    res = RollbackResult(out.txid, out.restored, out.refused, out.already, out.damaged)
    if out.restored:
        tx = jr.Journal(host).open(out.txid)
        header = tx.header().get("plan") or {}
        plan = Plan([PlanItem.from_json(i) for i in header.get("items", [])], header.get("root", "/"))
        res.actions = run_post_actions(host, plan.applicable(), restart_daemon)
    return res


def list_transactions(host: Host) -> list[TxInfo]:
    j = jr.Journal(host)
    out = []
    for txid in j.txids():
        tx = j.open(txid)
        try:
            st = jr.tx_state(tx)
        except jr.JournalError as e:
            out.append(TxInfo(txid, 0, "?", [], [], "damaged", damaged=str(e)))
            continue
        plan = st.header.get("plan") or {}
        items = [{"check_id": i.get("check_id"), "subject": i.get("subject"), "safety": i.get("safety")}
                 for i in plan.get("items", []) if i.get("changes")]
        changes = [{"step": s.n, "target": jr.target_label(s.target), **s.change,
                    "done": s.after is not None} for s in st.steps]
        out.append(TxInfo(txid, st.header.get("time", 0), st.header.get("user", "?"), items, changes, st.state,
                          st.error, st.damaged))
    return out


def rescan(ctx, check_ids: Iterable[str]) -> list[Finding]:
    """Scan the given checks again on a fresh context (nothing cached from before the apply)."""
    import dockfix.checks  # noqa: F401  (a plan loaded from a file has not scanned yet)
    from dockfix.scan import Context, run_check

    fresh = Context(host=Host(ctx.host.root, ctx.host.docker_host, ctx.host.engine, ctx.host.engine_timeout),
                    paths=list(ctx.paths), compose=list(ctx.compose))
    out: list[Finding] = []
    for cid in dict.fromkeys(check_ids):
        if cid in REGISTRY:
            out.extend(run_check(REGISTRY[cid], fresh))
    return out


# ---------------------------------------------------------------------- after apply / rollback
def run_post_actions(host: Host, items: list[PlanItem], restart_daemon: bool) -> list[str]:
    """Commands the changes need on a live host: rule reloads always, daemon reload/restart only
    when asked (``--restart-daemon``). On a tree (``--root`` other than /) nothing is run."""
    notes: list[str] = []
    cmds: list[list[str]] = []
    for it in items:
        for p in it.post:
            if p not in cmds:
                cmds.append(p)
    action = None
    if any(it.daemon_action == "restart" for it in items):
        action = "restart"
    elif any(it.daemon_action == "reload" for it in items):
        action = "reload"
    if not host.is_live:
        for c in cmds:
            notes.append(f"not run (not the live host): {' '.join(c)}")
        if action:
            notes.append(f"not run (not the live host): systemctl {action} docker")
        return notes
    for c in cmds:
        if shutil.which(c[0]) is None:
            notes.append(f"skipped: {c[0]} is not installed")
            continue
        r = subprocess.run(c, capture_output=True, text=True, timeout=120)
        notes.append(f"ran {' '.join(c)}: " + ("ok" if r.returncode == 0 else f"failed ({r.stderr.strip()[:200]})"))
    if action:
        if not restart_daemon:
            notes.append(f"the Docker daemon needs a {action} to use the new daemon.json: "
                         f"run `systemctl {action} docker` (or pass --restart-daemon)")
        else:
            r = subprocess.run(["systemctl", action, "docker"], capture_output=True, text=True, timeout=300)
            notes.append(f"ran systemctl {action} docker: " + ("ok" if r.returncode == 0 else f"failed ({r.stderr.strip()[:200]})"))
    return notes


def summarize(plan: Plan) -> dict[str, Any]:
    return {"items": len(plan.items), "applicable": len(plan.applicable()), "changes": len(plan.changes)}
