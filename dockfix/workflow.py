"""The fix workflow, once, for every front end (the CLI, the app, the walkthrough, fleet runs).

:class:`FixSession` owns the rules; the front ends only ask and display:

* plan fixes for findings (touches nothing);
* decline some fixes -> plan the rest again, and return the items whose diff changed, so that every
  front end shows them again before applying;
* load a reviewed plan file and rebuild the content it withholds (secrets are never in a plan file);
* apply as one journaled transaction;
* rescan, and decide per fix ``fixed`` / ``not fixed`` by one rule: fixed means the check now
  *passes* for that subject (``manual``, ``error``, ``fail`` or a subject that is gone are not fixed);
* roll back, list transactions.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Callable, Iterable

from dockfix import journal as jr
from dockfix.changes import PlanError, PlanRefused, staging
from dockfix.fixes import ManualFix, load_all
from dockfix.host import Host
from dockfix.model import REGISTRY, CheckError, Finding, Safety, Status
from dockfix.plan import Plan, PlanItem, PlanStale, load_plan, plan_differences

__all__ = ["FixSession", "Verdict", "Replan", "plan_fixes", "apply_plan", "rollback", "list_transactions", "rescan",
           "fresh_context", "ApplyResult", "RollbackResult", "TxInfo", "PlanError", "PlanStale", "engine_of"]


def engine_of(host: Host) -> str | None:
    """The engine a host's engine changes go to (None with --no-engine)."""
    return host.docker_host if host.engine else None


def _matches(f: Finding, names: Iterable[str]) -> bool:
    return any(n == f.id or n == f.cis or (f.cis or "").startswith(n + ".") for n in names)


def selected(f: Finding, only: Iterable[str] = (), skip: Iterable[str] = (), include_disruptive: bool = False) -> bool:
    """Would the fix of ``f`` be planned: it fails, has a fix, is chosen by ``only``/``skip``, and
    is not disruptive unless those are included."""
    check = REGISTRY.get(f.id)
    spec = check.fix_spec if check else None
    if f.status != Status.FAIL or spec is None or check.builder is None:
        return False
    if (only and not _matches(f, only)) or (skip and _matches(f, skip)):
        return False
    return spec.safety != Safety.DISRUPTIVE or include_disruptive


def plan_fixes(ctx, findings: Iterable[Finding], only: Iterable[str] = (), skip: Iterable[str] = (),
               include_disruptive: bool = False) -> Plan:
    """A plan with one item per failing finding that has a fix (touches nothing).

    Safe fixes are planned; disruptive ones only with ``include_disruptive``; manual ones (and fixes
    that turn out not to be possible here, e.g. a file behind a symbolic link) become items with
    notes and no changes. Several fixes of one file build on each other through the staging overlay.
    """
    load_all()
    only, skip = list(only), list(skip)
    stage = staging(ctx)
    plan = Plan(root=ctx.host.root)
    for f in findings:
        if not selected(f, only, skip, include_disruptive):
            continue
        check = REGISTRY[f.id]
        spec = check.fix_spec
        item = PlanItem(check_id=f.id, subject=f.subject, title=f.title, safety=spec.safety, impact=spec.impact)
        if spec.safety == Safety.MANUAL:
            try:
                built = check.builder(ctx, f)
            except ManualFix as e:
                built = None
                item.notes.append(str(e))
            if isinstance(built, PlanItem):
                item.notes.extend(built.notes)
            plan.items.append(item)
            continue
        try:
            built = check.builder(ctx, f)
            if isinstance(built, PlanItem):
                if built.safety != spec.safety:  # a builder never decides its own safety
                    raise RuntimeError(f"the fix built a {built.safety} item, but {f.id} declares {spec.safety}")
                item = built
            else:
                item.changes = list(built or [])
            for c in item.changes:
                c.bind(ctx.host, stage)
        except (ManualFix, PlanRefused, CheckError) as e:
            item = PlanItem(check_id=f.id, subject=f.subject, title=f.title, safety=Safety.MANUAL, impact=spec.impact,
                            notes=[str(e)])
        except Exception as e:  # noqa: BLE001 — a bug in one fix must not stop the others; it is shown
            item = PlanItem(check_id=f.id, subject=f.subject, title=f.title, safety=Safety.MANUAL, impact=spec.impact,
                            notes=[f"internal error in the fix for {f.id}: {type(e).__name__}: {e}"])
        if item.safety != Safety.MANUAL and not item.changes:
            continue  # nothing to do (an earlier fix already covers it)
        plan.items.append(item)
    return plan


def fresh_context(ctx):
    """A new scan context for the same host and the same --path/--compose (nothing cached)."""
    from dockfix.context import Context

    host = ctx.host
    return Context(host=Host(host.root, host.docker_host, host.engine, host.engine_timeout),
                   paths=list(ctx.paths), compose=list(ctx.compose), benchmark=ctx.benchmark,
                   offline=ctx.offline)


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
        return dataclasses.replace(plan, items=[it for it in plan.items if id(it) in kept_ids], doc=None)
    # planned again in the kept items' order (fixes of one file build on each other in that order:
    # the same subset gives the same plan in every process)
    order = {(it.check_id, it.subject): n for n, it in enumerate(keep)}
    fresh = fresh_context(ctx)
    findings = [f for f in rescan(fresh, [it.check_id for it in keep]) if (f.id, f.subject) in order]
    findings.sort(key=lambda f: order[(f.id, f.subject)])
    sub = plan_fixes(fresh, findings, include_disruptive=True)
    return dataclasses.replace(plan, items=sub.items, doc=None)


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
    kept: list[str] = field(default_factory=list)  # --force: copies of overwritten files, in the journal
    unrecorded: str | None = None  # why the journal could not record the rollback (done all the same)


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
    rollback: dict | None = None  # who rolled it back, when, what it restored and kept
    #: What a rollback would put back, one line per target (its state before the transaction).
    restores: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"txid": self.txid, "time": self.time, "user": self.user, "items": self.items,
                "changes": self.changes, "state": self.state, "error": self.error, "damaged": self.damaged,
                "rollback": self.rollback}


def apply_plan(host: Host, plan: Plan, *, yes: bool = True, on_step: Callable[[jr.Progress], None] | None = None,
               restart_daemon: bool = False) -> ApplyResult:
    """Apply a plan as one journaled transaction; it is rolled back if any change fails.

    ``yes=False`` applies only the safe items (disruptive ones need a confirmation the caller got).
    Raises :class:`~dockfix.journal.JournalBusy` when another apply runs, PlanError when the host
    changed since the plan was made (the message names the files; nothing is changed).
    """
    if not yes:
        from dockfix.context import Context

        plan = subset_plan(Context(host=host), plan, [it for it in plan.items if it.safety == Safety.SAFE])
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
    res = RollbackResult(out.txid, out.restored, out.refused, out.already, out.damaged, kept=out.kept,
                         unrecorded=out.unrecorded)
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
                          st.error, st.damaged, st.rollback, restores=restore_lines(st.steps)))
    return out


def restore_lines(steps) -> list[str]:
    """What rolling these journal steps back restores: each target as it was before its first step."""
    from dockfix.changes.base import mode_text, owner_text

    first: dict[str, object] = {}
    for s in steps:
        first.setdefault(s.target, s)
    lines = []
    for target, s in first.items():
        label, before = jr.target_label(target), s.before or {}  # type: ignore[attr-defined]
        if "existed" not in before:
            lines.append(f"{label}: back to its state before the transaction")
        elif not before.get("existed"):
            lines.append(f"{label}: removed (it did not exist before)")
        else:
            content = ", content as before" if before.get("kind") == "file" else ""
            lines.append(f"{label}: back to owner {owner_text(before.get('uid'), before.get('gid'))}, "
                         f"mode {mode_text(before.get('mode'))}{content}")
    return lines


def rescan(ctx, check_ids: Iterable[str]) -> list[Finding]:
    """Scan the given checks again on a fresh context (nothing cached from before the apply)."""
    import dockfix.checks  # noqa: F401  (a plan loaded from a file has not scanned yet)
    from dockfix.scan import run_check

    fresh = fresh_context(ctx)
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
    # a rootless daemon is the user's unit: `systemctl --user --machine=USER@`, never root's docker
    # (a rollback has no --docker-host: the daemon.json a plan item changed names the user then)
    from dockfix.sources.rootless import rootless_for_url, rootless_of_path

    rootless = rootless_for_url(host, host.docker_host or "")
    for it in items:
        for c in it.changes if it.daemon_action and rootless is None else ():
            rootless = rootless or rootless_of_path(host, str(getattr(c, "path", "") or ""))
    systemctl = ["systemctl", "--user", f"--machine={rootless.user}@"] if rootless is not None else ["systemctl"]
    shown = " ".join(systemctl)
    if not host.is_live:
        for c in cmds:
            notes.append(f"not run (not the live host): {' '.join(c)}")
        if action:
            notes.append(f"not run (not the live host): {shown} {action} docker")
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
                         f"run `{shown} {action} docker` (or pass --restart-daemon)")
        else:
            r = subprocess.run([*systemctl, action, "docker"], capture_output=True, text=True, timeout=300)
            notes.append(f"ran {shown} {action} docker: " + ("ok" if r.returncode == 0 else f"failed ({r.stderr.strip()[:200]})"))
    return notes


# ---------------------------------------------------------------------- the session
@dataclass
class Verdict:
    """Was one applied fix fixed? One rule: its check now passes for that subject."""

    check_id: str
    subject: str
    status: str  # the status on the rescan, or "gone" when the subject is no longer found
    evidence: str
    safety: Safety

    @property
    def fixed(self) -> bool:
        return self.status == Status.PASS.value

    def to_json(self) -> dict:
        return {"check_id": self.check_id, "subject": self.subject, "status": self.status, "fixed": self.fixed,
                "evidence": self.evidence}


@dataclass
class Replan:
    """A plan made again after some fixes were declined, and the kept items whose diff changed
    (a front end shows those again and asks again before applying)."""

    plan: Plan
    changed: list[PlanItem] = field(default_factory=list)


class FixSession:
    """The fix workflow on one scan context (one host, one set of --path/--compose)."""

    def __init__(self, ctx, restart_daemon: bool = False, waivers: str | None = None):
        self.ctx = ctx
        self.restart_daemon = restart_daemon
        #: The waiver file (a path on this machine; None: the host's own /etc/dockfix/waivers.yaml
        #: below its root, when there is one). A finding it covers gets no fix.
        self.waivers = waivers

    @property
    def host(self) -> Host:
        return self.ctx.host

    def waiver_file(self):
        """The waivers that hold for this session (None when there is no file); PlanError
        ``FILE:LINE: problem`` when the file is bad."""
        from dockfix.waivers import WaiverError, load_for

        try:
            return load_for(self.host.root, self.waivers)
        except WaiverError as e:
            raise PlanError(str(e)) from None

    def plan(self, findings: Iterable[Finding], *, include_disruptive: bool = True, only: Iterable[str] = (),
             skip: Iterable[str] = ()) -> Plan:
        """Plan the fixes of ``findings``. A finding a waiver covers (``finding.waiver``, set here
        from the session's waiver file or before by the front end) is not fixed: it is listed in
        ``plan.waived`` with the waiver, so every front end can say why it was left out."""
        findings = list(findings)
        wf = self.waiver_file()
        if wf is not None:
            wf.apply(findings)
        only, skip = list(only), list(skip)
        plan = plan_fixes(fresh_context(self.ctx), [f for f in findings if not f.waiver], only, skip,
                          include_disruptive=include_disruptive)
        # named: the fixes that would have been planned without their waiver
        plan.waived = [{"check_id": f.id, "subject": f.subject, "reason": str(f.waiver.get("reason") or ""),
                        "expires": f.waiver.get("expires"), "where": f"{f.waiver.get('file')}:{f.waiver.get('line')}"}
                       for f in findings if f.waiver and selected(f, only, skip, include_disruptive)]
        return plan

    def decline(self, plan: Plan, declined: Iterable[tuple[str, str]]) -> Replan:
        """The plan without the declined items (keys ``(check_id, subject)``), planned again when a
        kept item built on a declined one; ``changed`` lists the kept items whose diff is different.
        The declined keys join the plan's selection: a plan file of the rest is planned again at
        apply time with the same fixes declined."""
        declined = {tuple(k) for k in declined}
        selection = dict(plan.selection)
        selection["declined"] = sorted({tuple(k) for k in selection.get("declined", [])} | declined)
        selection["declined"] = [list(k) for k in selection["declined"]]
        keep = [it for it in plan.applicable() if (it.check_id, it.subject) not in declined]
        if not keep:
            return Replan(dataclasses.replace(plan, items=[], selection=selection, doc=None))
        sub = subset_plan(self.ctx, plan, keep)
        sub.items = [it for it in sub.items if (it.check_id, it.subject) not in declined]
        sub.selection = selection
        before = {(it.check_id, it.subject): it.diff() for it in keep}
        changed = [it for it in sub.applicable() if before.get((it.check_id, it.subject)) != it.diff()]
        return Replan(sub, changed)

    def plan_selection(self, only: Iterable[str] = (), skip: Iterable[str] = (),
                       include_disruptive: bool = False) -> tuple[Plan, list[Finding]]:
        """Scan with --only/--skip and plan the failing checks' fixes; the plan records the selection
        and the engine (so that a plan file can be planned again, and compared, when applied).
        Raises ValueError for an unknown check id."""
        from dockfix.scan import scan

        only, skip = list(only), list(skip)
        result = scan(self.ctx, only, skip)
        plan = self.plan(result.findings, include_disruptive=include_disruptive)
        plan.selection = {"only": only, "skip": skip, "include_disruptive": bool(include_disruptive),
                          "paths": list(self.ctx.paths), "compose": list(self.ctx.compose),
                          "benchmark": self.ctx.benchmark, "offline": bool(self.ctx.offline),
                          "waivers": self.waivers}
        plan.engine = engine_of(self.host)
        return plan, result.findings

    def load(self, path: str) -> Plan:
        """A reviewed plan file, checked and then *planned again*: the plan file is a review record,
        not a program. It must be signed with this host's key (every field); dockfix then plans
        again from the host as it is now, with the plan's selection, and returns that fresh plan
        only if it equals the reviewed one change for change (kind, path, owner, mode, content hash,
        precondition, engine objects, commands). Any difference raises PlanStale naming it.
        Secret content withheld from the plan file comes from the fresh plan (checked by its hash)."""
        from dockfix.context import Context

        reviewed = load_plan(path, self.host)
        if os.path.abspath(reviewed.root) != self.host.root:
            raise PlanError(f"{path}: the plan was made for --root {reviewed.root}, not {self.host.root}")
        engine = engine_of(self.host)
        engine_targets = sorted({c.target for c in reviewed.changes_all() if not c.target.startswith("file:")})
        if engine_targets and reviewed.engine != engine:
            raise PlanStale(f"{path}: the plan changes engine objects ({', '.join(engine_targets[:3])}) of "
                            f"{reviewed.engine or 'no engine'}, but this apply talks to "
                            f"{engine or 'no engine (--no-engine, or --root without --docker-host)'}; nothing was applied")
        sel = reviewed.selection
        host = self.host
        ctx = Context(host=Host(host.root, host.docker_host, host.engine, host.engine_timeout),
                      paths=list(sel.get("paths", [])), compose=list(sel.get("compose", [])),
                      benchmark=sel.get("benchmark") or self.ctx.benchmark, offline=bool(sel.get("offline")))
        session = FixSession(ctx, self.restart_daemon, waivers=sel.get("waivers"))
        try:
            fresh, _ = session.plan_selection(sel.get("only", []), sel.get("skip", []),
                                              sel.get("include_disruptive", False))
        except ValueError as e:
            raise PlanError(f"{path}: {e}") from None
        if sel.get("declined"):  # the fixes declined before the plan was written stay declined
            fresh = session.decline(fresh, [tuple(k) for k in sel["declined"]]).plan
        diffs = plan_differences((reviewed.doc or {}).get("items") or [], fresh.to_json(reviewed.key)["items"])
        if diffs:
            stale = jr.stale_targets(self.host, reviewed)
            if stale:
                # a plan edited to name another object fails that object's preconditions too: say
                # both, so an edit is not reported as the host's change alone
                raise PlanStale("the host changed since the plan was made, or the plan names it as it is not; "
                                "nothing was applied. Not as planned: " + "; ".join(stale)
                                + ". What dockfix would do now differs: " + "; ".join(diffs[:3])
                                + (f"; and {len(diffs) - 3} more" if len(diffs) > 3 else ""))
            raise PlanStale(f"{path}: dockfix would now do something else than the reviewed plan: "
                            + "; ".join(diffs[:6]) + (f"; and {len(diffs) - 6} more" if len(diffs) > 6 else "")
                            + ". Nothing was applied: make a new plan and review it")
        fresh.created = reviewed.created
        return fresh

    def apply(self, plan: Plan, on_step: Callable[[jr.Progress], None] | None = None) -> ApplyResult:
        return apply_plan(self.host, plan, on_step=on_step, restart_daemon=self.restart_daemon)

    def verify(self, plan: Plan) -> list[Verdict]:
        """Scan the applied fixes' checks again; one verdict per applied item."""
        items = plan.applicable()
        found = {f.key: f for f in rescan(self.ctx, [it.check_id for it in items])}
        out = []
        for it in items:
            f = found.get((it.check_id, it.subject))
            out.append(Verdict(it.check_id, it.subject, f.status.value if f else "gone", f.evidence if f else "",
                               it.safety))
        return out

    def rescan(self, check_ids: Iterable[str]) -> list[Finding]:
        return rescan(self.ctx, check_ids)

    def rollback(self, txid: str | None = None, force: bool = False) -> RollbackResult:
        return rollback(self.host, txid, force, self.restart_daemon)

    def transactions(self) -> list[TxInfo]:
        return list_transactions(self.host)
