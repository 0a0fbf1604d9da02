"""Headless fixing: `dockfix --apply`, `dockfix plan`, `dockfix rollback`, `dockfix journal`.

Exit codes (also in README.md, "Fixing"):
  0  done: every applied fix checks out on the rescan (or nothing to do, or --dry-run, or declined)
  1  applied, but some fixed checks still do not pass on the rescan
  2  usage: bad arguments, a bad plan file, no terminal to confirm on without --yes, not root
  3  refused: the host changed since the plan was made, another apply/rollback is running, a
     rollback found files changed since the transaction (named; --force overrides), or a rollback
     needs an engine it cannot reach (nothing restored; run it again once the engine is back)
  4  an apply failed part-way and was rolled back (nothing is left changed)
  5  an apply failed and rolling it back failed too (or could not reach the engine: the files are
     restored, the engine objects left are named): run `dockfix rollback --last`
  130 interrupted (an apply in progress is rolled back first)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from dockfix.cli.common import (UsageError, add_host_options, add_selection_options, add_waiver_option, make_context,
                                split_ids)
from dockfix.model import Safety

EXIT_OK, EXIT_NOT_FIXED, EXIT_USAGE, EXIT_REFUSED, EXIT_ROLLED_BACK, EXIT_BROKEN, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 5, 130


# ---------------------------------------------------------------------- helpers
def need_root(args: argparse.Namespace, what: str) -> None:
    """Changing the machine itself needs root: say so before anything is planned."""
    if os.path.abspath(args.root) == "/" and os.geteuid() != 0:
        raise UsageError(f"{what} changes this machine's files (--root /) and needs root: run it as root "
                         f"(for example with sudo), or give --root a copy of the host tree")


def _out(args, text: str) -> None:
    from dockfix.report import safe_text

    # diffs show lines of host files: an escape sequence in /etc/environment must not reach the terminal
    sys.stdout.write(safe_text(text, keep_newlines=True))
    sys.stdout.flush()


def _err(text: str) -> None:
    from dockfix.report import safe_text

    print(safe_text(text, keep_newlines=True), file=sys.stderr, flush=True)


def build_plan(args: argparse.Namespace, session):
    from dockfix.changes import PlanError
    from dockfix.plan import PlanStale

    if getattr(args, "plan", None):
        try:
            plan = session.load(args.plan)
        except PlanStale:
            raise
        except PlanError as e:
            raise UsageError(str(e)) from None
        return plan, []
    only, skip = split_ids(args.only), split_ids(args.skip)
    try:
        plan, findings = session.plan_selection(only, skip, getattr(args, "include_disruptive", False))
    except (ValueError, PlanError) as e:  # PlanError: a bad waiver file (FILE:LINE: problem)
        raise UsageError(str(e)) from None
    return plan, findings


def session_for(args: argparse.Namespace, ctx, **kw):
    """The FixSession of a command: its waivers are --waivers FILE, else the host's own file."""
    from dockfix.workflow import FixSession

    waivers = getattr(args, "waivers", None)
    if waivers and not getattr(args, "plan", None):
        waivers = os.path.abspath(waivers)
    return FixSession(ctx, waivers=waivers, **kw)


def waived_text(plan) -> str:
    """The fixes a waiver left out, one line each (the plan does not apply them)."""
    return "".join(f"Left out, waived: {w['check_id']}  {w['subject']}  (until {w['expires']}, {w['where']}: "
                   f"{w['reason']})\n" for w in plan.waived)


def print_plan(plan, args) -> None:
    if not plan.items:
        _out(args, "Nothing to fix: no failing check has a fix that was selected.\n" + waived_text(plan))
        return
    _out(args, plan.diff(mask_secrets=True))
    n_apply = len(plan.applicable())
    manual = [it for it in plan.items if it.safety == Safety.MANUAL]
    _out(args, f"\n{n_apply} fix(es) with {len(plan.changes)} change(s) to apply"
               + (f"; {len(manual)} to do by hand (shown above, never applied)" if manual else "") + ".\n"
               + waived_text(plan))


def confirm(plan, args, session):
    """Ask on the terminal: once for the safe fixes, once per disruptive fix. Returns the plan to apply."""
    if args.yes:
        return plan
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("no terminal to confirm on: pass --yes to apply without asking (or --dry-run to only look)")
    declined = set()
    safe = [it for it in plan.applicable() if it.safety == Safety.SAFE]
    if safe and not _ask(f"Apply the {len(safe)} safe fix(es) above?"):
        declined |= {(it.check_id, it.subject) for it in safe}
    for it in plan.applicable():
        if it.safety == Safety.DISRUPTIVE and not _ask(f"Apply disruptive fix {it.check_id} ({it.subject})? {it.impact}"):
            declined.add((it.check_id, it.subject))
    if not declined:
        return plan
    if getattr(args, "plan", None) and len(declined) < len(plan.applicable()):
        raise UsageError(f"{args.plan}: apply a reviewed plan whole (answer yes to every fix) or make a new plan")
    replan = session.decline(plan, declined)
    if replan.changed:
        # a kept fix built on a declined one: its diff changed, so it is shown and asked again
        _out(args, "\nWithout the declined fixes, the others change to:\n\n")
        _out(args, "\n".join(it.diff(mask_secrets=True) for it in replan.changed))
        if not _ask("Apply these?"):
            return type(plan)([], plan.root, plan.created)
    return replan.plan


def _ask(question: str) -> bool:
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


# ---------------------------------------------------------------------- dockfix --apply
def cmd_apply(args: argparse.Namespace) -> int:
    from dockfix.changes import PlanError
    from dockfix.journal import JournalBusy, JournalError, JournalWriteError
    from dockfix.plan import PlanStale

    if getattr(args, "plan", None) == "":
        # `--plan "$PLAN"` with PLAN unset must not become an apply of everything, unreviewed
        raise UsageError("--plan: give the reviewed plan file (an empty name was given)")
    if not args.dry_run:
        need_root(args, "dockfix --apply")
    ctx = make_context(args)
    session = session_for(args, ctx, restart_daemon=args.restart_daemon)
    try:
        plan, _ = build_plan(args, session)
    except PlanStale as e:
        _err(f"dockfix: {e}")
        if args.format == "json":
            _out(args, json.dumps({"root": ctx.host.root, "error": str(e), "txid": None}, indent=2) + "\n")
        return EXIT_REFUSED
    as_json = args.format == "json"
    doc: dict = {"root": ctx.host.root, "dry_run": args.dry_run, "plan": _plan_summary(plan), "txid": None,
                 "applied": [], "results": [], "actions": [], "error": None, "rolled_back": False,
                 "waived": plan.waived}
    if not as_json:
        print_plan(plan, args)
    if args.dry_run or not plan.applicable():
        if as_json:
            doc["diff"] = plan.diff(mask_secrets=True)
            _out(args, json.dumps(doc, indent=2) + "\n")
        elif args.dry_run and plan.applicable():
            _out(args, "Dry run: nothing was changed.\n")
        return EXIT_OK
    chosen = confirm(plan, args, session)
    if not chosen.applicable():
        _out(args, "Nothing applied.\n")
        return EXIT_OK

    def on_step(p) -> None:
        if not as_json:
            _err(f"[{p.step}/{p.total}] {p.change.summary().splitlines()[0]}")

    try:
        res = session.apply(chosen, on_step=on_step)
    except (JournalBusy, JournalWriteError, PlanError) as e:
        _err(f"dockfix: {e}")
        if as_json:
            doc["error"] = str(e)
            _out(args, json.dumps(doc, indent=2) + "\n")
        return EXIT_REFUSED
    except JournalError as e:
        raise UsageError(str(e)) from None
    doc.update(txid=res.txid, actions=res.actions, error=res.error, rolled_back=res.rolled_back)
    if res.error:
        if res.rolled_back:
            _err(f"dockfix: the apply failed and was rolled back (transaction {res.txid}): {res.error}")
            code = EXIT_INTERRUPTED if res.error.startswith("interrupted") else EXIT_ROLLED_BACK
        else:
            _err(f"dockfix: the apply failed: {res.error}")
            code = EXIT_BROKEN
        if as_json:
            _out(args, json.dumps(doc, indent=2) + "\n")
        return code
    verdicts = session.verify(chosen)
    all_fixed = all(v.fixed for v in verdicts)
    for v in verdicts:
        doc["applied"].append({"check_id": v.check_id, "subject": v.subject, "safety": v.safety.value})
        doc["results"].append(v.to_json())
    if as_json:
        _out(args, json.dumps(doc, indent=2) + "\n")
    else:
        n_changes = len([c for it in chosen.applicable() for c in it.changes])
        _out(args, f"\n{len(chosen.applicable())} fix(es) with {n_changes} change(s) applied. "
                   f"Applied as transaction {res.txid} (undo with: dockfix rollback {res.txid}"
                   + (f" --root {ctx.host.root}" if not ctx.host.is_live else "") + ")\n")
        for r in doc["results"]:
            _out(args, f"  {'fixed    ' if r['fixed'] else 'NOT FIXED'} {r['check_id']}  {r['subject']}"
                       + ("" if r["fixed"] else f"  ({r['status']}: {r['evidence']})") + "\n")
        for a in res.actions:
            _out(args, f"  {a}\n")
    return EXIT_OK if all_fixed else EXIT_NOT_FIXED


def _plan_summary(plan) -> list[dict]:
    return [{"check_id": it.check_id, "subject": it.subject, "safety": it.safety.value, "impact": it.impact,
             "notes": it.notes, "daemon_action": it.daemon_action,
             "changes": [c.summary().replace("\n", " ").strip() for c in it.changes]} for it in plan.items]


def add_apply_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-y", "--yes", action="store_true", help="apply without asking (needed when there is no terminal)")
    p.add_argument("--dry-run", action="store_true", help="print the diffs and change nothing")
    p.add_argument("--plan", metavar="FILE", help="apply exactly this plan (from `dockfix plan -o FILE`)")
    p.add_argument("--include-disruptive", action="store_true",
                   help="also plan disruptive fixes (changes users may notice; confirmed one by one)")
    p.add_argument("--restart-daemon", action="store_true",
                   help="reload or restart dockerd through systemd when daemon.json changed (live host only)")
    p.add_argument("--format", choices=["text", "json"], default="text")


# ---------------------------------------------------------------------- dockfix plan
def cmd_plan(args: argparse.Namespace) -> int:
    from dockfix.changes import PlanError
    from dockfix.plan import host_key

    ctx = make_context(args)
    plan, _ = build_plan(args, session_for(args, ctx))

    key = None
    if args.output or args.format == "json":
        try:
            key = host_key(ctx.host, create=True)  # plan files carry keyed hashes only
        except (PlanError, OSError) as e:
            raise UsageError(f"cannot create the plan key: {e}") from None
    if args.output:
        from dockfix.cli.common import write_output

        write_output(args.output, plan.dumps(key), mode=0o644)  # never writable by others: root applies it
    if args.format == "json" and not args.output:
        _out(args, plan.dumps(key))
    else:
        print_plan(plan, args)
        if args.output:
            _out(args, f"Plan written to {args.output}; apply it with: dockfix --apply --plan {args.output}"
                       + (f" --root {ctx.host.root}" if not ctx.host.is_live else "") + "\n")
    return EXIT_OK


def build_plan_parser(sub) -> None:
    p = sub.add_parser("plan", help="plan fixes for the failing checks and show their diffs (changes nothing)")
    add_host_options(p, only=("root", "engine", "files", "offline"))  # team notes are not shown in a plan
    add_selection_options(p)
    p.add_argument("-o", "--output", metavar="FILE", help="write the plan to FILE for review and `--apply --plan`")
    p.add_argument("--include-disruptive", action="store_true", help="plan disruptive fixes too")
    add_waiver_option(p)
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=cmd_plan)


# ---------------------------------------------------------------------- dockfix rollback
def cmd_rollback(args: argparse.Namespace) -> int:
    from dockfix.journal import EngineUnreachable, JournalBusy, JournalError
    from dockfix.workflow import rollback

    if args.txid and args.last:
        raise UsageError("give a transaction id or --last, not both")
    if not args.txid and not args.last:
        raise UsageError("say which transaction to roll back: a TXID (see `dockfix journal`) or --last")
    need_root(args, "dockfix rollback")
    ctx = make_context(args)
    try:
        res = rollback(ctx.host, args.txid or "last", force=args.force, restart_daemon=args.restart_daemon)
    except (JournalBusy, EngineUnreachable) as e:
        _err(f"dockfix: {e}")
        return EXIT_REFUSED
    except JournalError as e:
        if "stopped at" in str(e):
            _err(f"dockfix: {e}")
            return EXIT_BROKEN
        raise UsageError(str(e)) from None
    doc = {"txid": res.txid, "restored": res.restored, "refused": res.refused_paths, "already_rolled_back": res.already,
           "damaged": res.damaged, "actions": res.actions, "kept": res.kept, "unrecorded": res.unrecorded}
    if args.format == "json":
        _out(args, json.dumps(doc, indent=2) + "\n")
    if res.damaged:
        _err(f"dockfix: warning: {res.damaged}")
    if res.unrecorded:
        _err(f"dockfix: warning: the journal could not record this rollback of {res.txid} ({res.unrecorded}): "
             f"`dockfix journal` does not show it as rolled back; the files are restored all the same")
    if res.refused_paths:
        _err(f"dockfix: refusing to roll back {res.txid}: changed since the transaction: "
             + "; ".join(res.refused_paths) + ". Look at them; --force restores them anyway.")
        return EXIT_REFUSED
    if args.format != "json":
        if res.already:
            _out(args, f"Transaction {res.txid} is already rolled back; nothing to do.\n")
        else:
            _out(args, f"Rolled back {res.txid}: restored {len(res.restored)} path(s).\n")
            for p in res.restored:
                _out(args, f"  restored {p}\n")
            for k in res.kept:
                _out(args, f"  {_kept_text(k)}\n")
            for a in res.actions:
                _out(args, f"  {a}\n")
    return EXIT_OK


def _kept_text(k: str) -> str:
    """A line of what --force kept: a copy of an overwritten file ("path -> journal file"), or an
    engine object left as it is ("secret X: left as it is, in use by service Y ...")."""
    return k if ": left as it is" in k else f"kept a copy of what --force overwrote: {k}"


def build_rollback_parser(sub) -> None:
    p = sub.add_parser("rollback", help="undo an applied transaction (byte for byte, owners and modes)")
    p.add_argument("txid", nargs="?", help="transaction id (see `dockfix journal`)")
    p.add_argument("--last", action="store_true", help="the most recent transaction")
    p.add_argument("--force", action="store_true", help="restore even files changed since the transaction")
    p.add_argument("--restart-daemon", action="store_true", help="reload or restart dockerd after restoring daemon.json")
    p.add_argument("--format", choices=["text", "json"], default="text")
    add_host_options(p, only=("root", "engine"))  # the engine: rolling back a swarm service
    p.set_defaults(func=cmd_rollback)


# ---------------------------------------------------------------------- dockfix journal
def cmd_journal(args: argparse.Namespace) -> int:
    from dockfix.journal import JournalBusy, JournalError, JournalWriteError, prune
    from dockfix.workflow import list_transactions

    ctx = make_context(args)
    if args.action == "prune":
        if (args.keep is None) == (args.older_than is None):
            raise UsageError("journal prune: give --keep N or --older-than DAYS")
        if (args.keep is not None and args.keep < 0) or (args.older_than is not None and args.older_than < 0):
            raise UsageError("journal prune: --keep and --older-than take a number of at least 0")
        need_root(args, "dockfix journal prune")
        try:
            removed, held = prune(ctx.host, args.keep, args.older_than)
        except (JournalBusy, JournalWriteError) as e:
            _err(f"dockfix: {e}")
            return EXIT_REFUSED
        except JournalError as e:
            raise UsageError(str(e)) from None
        if args.format == "json":
            _out(args, json.dumps({"removed": removed, "kept_incomplete": held}, indent=2) + "\n")
        else:
            _out(args, f"Removed {len(removed)} transaction(s) from the journal.\n")
            for t in removed:
                _out(args, f"  removed {t}\n")
            for t in held:
                _out(args, f"  kept {t}\n")
        return EXIT_OK
    if args.keep is not None or args.older_than is not None:
        raise UsageError("--keep and --older-than go with `dockfix journal prune`")
    from dockfix.journal import Journal

    untrusted = Journal(ctx.host).trust_problem()
    if untrusted:  # listed (it only reads), but said: apply, rollback and prune refuse this journal
        _err(f"dockfix: warning: {untrusted}; listed for information only (apply, rollback and prune refuse it)")
    try:
        txs = list_transactions(ctx.host)
    except JournalError as e:
        raise UsageError(str(e)) from None
    except PermissionError:
        raise UsageError("/var/lib/dockfix/journal: permission denied "
                         "(the journal is readable by root only)") from None
    if args.format == "json":
        _out(args, json.dumps([t.to_json() for t in txs], indent=2) + "\n")
        return EXIT_OK
    if not txs:
        _out(args, "No transactions in the journal.\n")
        return EXIT_OK
    for t in txs:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t.time))
        _out(args, f"{t.txid}  {when}  {t.user}  {t.state}\n")
        for it in t.items:
            _out(args, f"  fix {it['check_id']} ({it['safety']})  {it['subject']}\n")
        for c in t.changes:
            _out(args, f"    {c['step']:>3}. {c['summary']}{'' if c['done'] else '  (not completed)'}\n")
        if t.error:
            _out(args, f"  error: {t.error}\n")
        rb = t.rollback
        if rb:
            at = rb.get("finished") or rb.get("started")
            at_text = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at)) if at else "?"
            _out(args, f"  rolled back by {rb.get('user', '?')} at {at_text}"
                       + (" (--force)" if rb.get("force") else "")
                       + (f": restored {', '.join(rb['restored'])}" if rb.get("restored") else "")
                       + ("" if rb.get("finished") else " (not finished: run the rollback again)") + "\n")
            for k in rb.get("kept") or []:
                _out(args, f"    {_kept_text(k)}\n")
        if t.damaged:
            _out(args, f"  warning: {t.damaged}\n")
    return EXIT_OK


def build_journal_parser(sub) -> None:
    p = sub.add_parser("journal", help="list applied transactions and their changes; `journal prune` removes old ones")
    p.add_argument("action", nargs="?", choices=["prune"],
                   help="prune: remove old transactions (never one that is incomplete)")
    p.add_argument("--keep", type=int, metavar="N", help="with prune: keep the N latest transactions")
    p.add_argument("--older-than", type=float, metavar="DAYS", help="with prune: remove transactions older than DAYS")
    p.add_argument("--format", choices=["text", "json"], default="text")
    add_host_options(p, only=("root",))
    p.set_defaults(func=cmd_journal)
