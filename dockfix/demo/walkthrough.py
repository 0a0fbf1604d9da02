"""The guided lesson on the demo host (`dockfix walkthrough`), free of any user interface.

One step per topic of the team's Docker notes. Each step goes through the same stages:

1. **look**     - the finding and where it is, why it matters, and a shell command to check it by
                  hand (written against the demo folder, to copy into another terminal);
2. **diff**     - the fix dockfix would make, as a diff;
3. **applied**  - the fix is applied through the rollback journal and the check is run again;
4. **rolled back** - the change is undone from the journal and the check fails again, as before.

Steps can be skipped and revisited in any order. Progress (which steps are done or skipped, and
where the trainee is) is saved as JSON after every stage, by default in
``$XDG_STATE_HOME/dockfix/walkthrough.json`` (``~/.local/state/dockfix/walkthrough.json``), so a
trainee can stop and resume; a new demo host is built each time (unless ``--at`` keeps one), so a
step left half-way starts again from "look". The screen (dockfix/screens/walkthrough_screen.py) only
shows what this module returns.
"""

from __future__ import annotations

import fnmatch
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

PROGRESS_VERSION = 1

LOOK, DIFF, APPLIED, ROLLED_BACK = "look", "diff", "applied", "rolled back"


@dataclass(frozen=True)
class Topic:
    """One lesson: which checks it is about (ids, CIS numbers, or patterns of either)."""

    key: str
    title: str
    checks: tuple[str, ...]
    why: str
    hand_check: str  # shell command; {root} is the demo's host tree, {project} the shop project
    learnt: str


TOPICS: list[Topic] = [
    Topic(
        "etc-docker-owner", "Who owns /etc/docker", ("etc-docker-owner",),
        why="/etc/docker holds the daemon's settings (daemon.json, registry certificates). The daemon runs as "
        "root and believes whatever it finds there. On the demo host the folder belongs to the ordinary user "
        "'deploy' (uid 1000), so deploy could, for example, add a registry or turn off protections, and the "
        "next restart of the daemon would obey: a quiet way from an ordinary account to root.",
        hand_check="stat -c '%U:%G (%u:%g) %n' {root}/etc/docker",
        learnt="Files that steer a root service must belong to root; chown fixes it and the journal can undo it.",
    ),
    Topic(
        "docker-service-owner", "Who owns docker.service", ("docker-service-owner", "3.1"),
        why="docker.service tells systemd how to start dockerd: the program and every option. Whoever can edit "
        "it decides what runs as root at the next boot or restart. Here it belongs to 'deploy'.",
        hand_check="stat -c '%U:%G (%u:%g) %n' {root}/lib/systemd/system/docker.service",
        learnt="A unit file is a root command line in disguise: keep it root:root.",
    ),
    Topic(
        "content-trust", "Image trust after content trust", ("content-trust", "disable-content-trust-flag", "4.5"),
        why="An image pulled from a registry should be the one its publisher built, not one swapped on the way. "
        "The benchmark's item 4.5 and the team's notes ask for DOCKER_CONTENT_TRUST=1, which made the docker "
        "client pull only images signed through Docker's notary. That is over: docker CLI 29.0 no longer looks at "
        "the variable, Docker Official Images' signing certificates have been expiring since August 2025, and "
        "notary.docker.io shuts down on 2026-12-08. So dockfix reads the CLI's version first. On 29.0 or later the "
        "finding is manual and says the setting does nothing; on an older CLI the fix that sets it is refused "
        "unless DOCKER_CONTENT_TRUST_SERVER names a notary you run, because pointed at Docker Hub it would break "
        "every pull. What replaces it: pin each image to the digest you tested (the image-digest check and fix) "
        "and verify its signature with cosign or Notation before it runs (image-signature, with a trust policy in "
        "/etc/dockfix/trust.yaml). Close 4.5 with a waiver that names those as the compensating control. And never "
        "switch verification off in scripts: the demo's deploy.sh pulls with --disable-content-trust, and "
        "/etc/profile.d/docker.sh sets DOCKER_CONTENT_TRUST=0.",
        hand_check="docker --version; grep -rn 'CONTENT_TRUST\\|disable-content-trust' {root}/etc/profile.d "
        "{root}/etc/environment {project}/deploy.sh; grep -n 'image:' {project}/compose.yaml   # tags or digests?",
        learnt="DOCKER_CONTENT_TRUST protects nothing on a current CLI and breaks Docker Hub pulls on an old one: "
        "pin images by digest and verify signatures with cosign or Notation instead.",
    ),
    Topic(
        "env-password", "A password in an environment variable", ("env-password*", "*env-password*"),
        why="The MySQL exporter in compose.yaml gets its password as a plain environment variable. Anyone who can "
        "read the compose file, the git history, `docker inspect` or the process environment sees it. A Docker "
        "secret is stored by the engine and shows up only as a file under /run/secrets inside the container.",
        hand_check="grep -n -o -i '[a-z_]*password[a-z_]*' {project}/compose.yaml   # names only, not the values",
        learnt="Secrets go to Docker secrets (files under /run/secrets), never into environment variables.",
    ),
    Topic(
        "registry-s3", "A registry on S3 without encryption", ("registry-s3*", "registry-*encrypt*"),
        why="The shop's registry keeps every image layer in an S3 bucket with REGISTRY_STORAGE_S3_ENCRYPT=false. "
        "Images often hold code, configuration and sometimes keys; without encryption at rest, anyone who gets "
        "at the bucket (a leaked key, a wrong bucket policy) reads them as they are.",
        hand_check="grep -n 'REGISTRY_STORAGE' {project}/compose.yaml",
        learnt="A registry on S3 needs REGISTRY_STORAGE_S3_ENCRYPT=true (encryption at rest).",
    ),
    Topic(
        "registry-http", "A registry over plain HTTP", ("registry-http*", "registry-tls*", "insecure-registries"),
        why="The registry listens on plain HTTP (no REGISTRY_HTTP_TLS_* settings), and daemon.json lists it under "
        "insecure-registries so the daemon agrees to talk to it. Anyone on the network path can read the images "
        "or hand the host a different image than the one asked for.",
        hand_check="grep -n 'REGISTRY_HTTP\\|5000' {project}/compose.yaml; grep -n -A2 insecure-registries "
        "{root}/etc/docker/daemon.json",
        learnt="Registries speak HTTPS with a trusted certificate; insecure-registries stays empty.",
    ),
    Topic(
        "image-secrets", "Customer data and a .env baked into an image",
        ("sensitive-file-in-image*", "*sensitive-file*", "4.10"),
        why="The Dockerfile copies customers.csv and .env into the image. Everything copied stays in an image "
        "layer for good (even if a later step deletes it) and travels to every registry and host the image "
        "goes to. Data belongs in a volume mounted when the container starts; settings and passwords come from "
        "secrets or the environment at run time.",
        hand_check="grep -n 'COPY\\|ADD' {project}/app/Dockerfile",
        learnt="Never COPY data or secrets into an image: mount data as a volume, pass secrets at run time.",
    ),
    Topic(
        "daemon-json", "A weak daemon.json", ("icc", "log-level", "live-restore", "experimental", "no-new-privileges"),
        why="daemon.json sets the daemon's defaults for every container. On the demo host containers on the "
        "default bridge may talk freely to each other (icc), the log level is 'debug' (noisy, and it can write "
        "request details to the log), experimental features are on, and containers stop whenever the daemon "
        "restarts (no live-restore).",
        hand_check="cat {root}/etc/docker/daemon.json",
        learnt="Review daemon.json against the benchmark: icc off, log-level info, no experimental, live-restore on.",
    ),
    Topic(
        "audit", "No audit rules for Docker", ("1.1.3", "1.1.4", "1.1.5", "1.1.6", "1.1.7", "1.1.8", "1.1.9",
                                               "1.1.1[0-8]", "audit-*"),
        why="The Linux audit system can record every change to Docker's files and every run of its programs: "
        "who changed daemon.json, when docker.service was edited. The demo host has auditd rules, but none that "
        "watch Docker, so such a change would leave no trace.",
        hand_check="grep -rn docker {root}/etc/audit/rules.d/ || echo 'no audit rule mentions docker'",
        learnt="Watch Docker's files and programs with audit rules (-w PATH -k docker) so changes leave a trace.",
    ),
]


def default_progress_path() -> str:
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, "dockfix", "walkthrough.json")


def _matches(pattern: str, check_id: str, cis: str | None) -> bool:
    return fnmatch.fnmatchcase(check_id, pattern) or (cis is not None and fnmatch.fnmatchcase(cis, pattern))


@dataclass
class Step:
    topic: Topic
    check_ids: list[str]
    stage: str = LOOK
    state: str = "new"  # new | seen | done | skipped
    findings: list = field(default_factory=list)  # failing findings of this step, as last scanned
    passing: list = field(default_factory=list)  # the same checks after the fix
    plan: Any = None
    diff: str = ""
    txid: str | None = None
    message: str = ""  # what happened last (an error, or what to look at)
    #: Fixes whose diff changed when others were left out (shown again before applying).
    changed: list = field(default_factory=list)
    #: Fixes left out of the plan (check id, subject); looking at the step again plans them all.
    left_out: list = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.topic.key

    @property
    def title(self) -> str:
        return self.topic.title

    @property
    def can_fix(self) -> bool:
        return self.plan is not None and bool(self.plan.changes)


class WalkthroughError(Exception):
    """A stage could not run (one line for the trainee)."""


class Walkthrough:
    """The lesson: steps, the current one, and the stages of each, on a built demo host."""

    def __init__(self, demo, progress_path: str, notes=None, restart: bool = False):
        import dockfix.checks  # noqa: F401  (registers every check)
        from dockfix.model import REGISTRY

        self.demo = demo
        self.progress_path = progress_path
        self.notes = notes
        self.left_out: list[str] = []  # topics with no check in this build
        self.steps: list[Step] = []
        for t in TOPICS:
            ids = [c.id for c in REGISTRY.values() if any(_matches(p, c.id, c.cis) for p in t.checks)]
            if ids:
                self.steps.append(Step(t, ids))
            else:
                self.left_out.append(t.title)
        self.index = 0
        self.started = time.time()
        if not restart:
            self._load()

    # ------------------------------------------------------------------ navigation
    @property
    def step(self) -> Step:
        return self.steps[self.index]

    def goto(self, i: int) -> Step:
        if not 0 <= i < len(self.steps):
            raise WalkthroughError(f"there is no step {i + 1} (1 to {len(self.steps)})")
        self.index = i
        self.save()
        return self.step

    def next(self) -> Step | None:
        """Move to the next step; None when this was the last one."""
        if self.index + 1 >= len(self.steps):
            return None
        return self.goto(self.index + 1)

    def prev(self) -> Step:
        return self.goto(max(0, self.index - 1))

    def skip(self) -> Step | None:
        if self.step.state != "done":
            self.step.state = "skipped"
        self.save()
        return self.next()

    @property
    def finished(self) -> bool:
        return all(s.state in ("done", "skipped") for s in self.steps)

    # ------------------------------------------------------------------ stages
    def _ctx(self):
        return self.demo.context()

    def look(self, step: Step | None = None) -> Step:
        """Scan this step's checks on the demo host and plan the fix (nothing is changed)."""
        from dockfix.model import Status
        from dockfix.scan import scan

        step = step or self.step
        ctx = self._ctx()
        found = scan(ctx, only=step.check_ids).findings
        if self.notes is not None:
            self.notes.attach(found)
        step.findings = [f for f in found if f.status == Status.FAIL]
        step.passing = []
        step.plan, step.diff = None, ""
        step.changed, step.left_out = [], []
        if step.findings:
            step.plan = self._session().plan(step.findings, include_disruptive=True)
            step.diff = step.plan.diff() if step.plan.changes else ""
            if step.plan.waived:  # an accepted risk is not fixed: say why it is not in the diff
                step.message = "left out, waived: " + "; ".join(
                    f"{w['check_id']} {w['subject']} until {w['expires']} ({w['reason']})" for w in step.plan.waived)
        if step.state == "new":
            step.state = "seen"
        if step.stage not in (APPLIED,):
            step.stage = LOOK
        self.save()
        return step

    def show_diff(self, step: Step | None = None) -> Step:
        step = step or self.step
        if step.plan is None:
            self.look(step)
        step.stage = DIFF
        self.save()
        return step

    def apply(self, step: Step | None = None) -> Step:
        """Apply the step's fix through the journal, then run its checks again."""
        step = step or self.step
        if step.plan is None:
            self.look(step)
        if not step.can_fix:
            raise WalkthroughError("this step has no automatic fix: follow the advice shown and mark it done")
        session = self._session()
        result = session.apply(step.plan)
        if result.error or not result.txid:
            raise WalkthroughError(f"the fix was not applied: {result.error or 'nothing to do'}"
                                   + (" (every change was rolled back)" if result.rolled_back else ""))
        step.txid = result.txid
        verdicts = session.verify(step.plan)
        step.passing = self._rescan(step)
        step.stage = APPLIED
        still = [v for v in verdicts if not v.fixed]
        step.message = ("the check passes now" if not still else
                        f"{len(still)} finding(s) not fixed: "
                        + "; ".join(f"{v.check_id} {v.subject} ({v.status})" for v in still))
        self.save()
        return step

    def rollback(self, step: Step | None = None) -> Step:
        """Undo the step's transaction from the journal; the finding is back as it was."""
        step = step or self.step
        if not step.txid:
            raise WalkthroughError("nothing to roll back: apply the fix first")
        result = self._session().rollback(step.txid)
        if result.refused_paths:
            raise WalkthroughError("rollback refused for " + ", ".join(result.refused_paths)
                                   + ": they were changed after the fix")
        after = self._rescan(step)
        step.findings = [f for f in after if f.status.value == "fail"]
        if self.notes is not None:
            self.notes.attach(step.findings)
        step.txid = None
        step.stage = ROLLED_BACK
        step.state = "done"
        step.message = "rolled back: the files are byte for byte as before, owner and mode included"
        self.save()
        return step

    def decline(self, declined: list[tuple[str, str]], step: Step | None = None) -> Step:
        """Leave some of the step's fixes out (keys ``(check_id, subject)``): the others are planned
        again, and when their diff changed, the new diff is shown again before anything is applied."""
        step = step or self.step
        if step.stage == APPLIED and step.txid:
            raise WalkthroughError(f"this step's fixes are already applied (transaction {step.txid}): r rolls them "
                                   "back, then a fix can be left out before applying again")
        if step.plan is None:
            self.look(step)
        declined = list(declined)
        replan = self._session().decline(step.plan, declined)
        step.plan = replan.plan
        step.diff = replan.plan.diff() if replan.plan.changes else ""
        step.changed = [(it.check_id, it.subject) for it in replan.changed]
        step.left_out += [d for d in declined if d not in step.left_out]
        step.stage = DIFF
        left = "left out " + ", ".join(cid for cid, _ in declined) + ": "
        step.message = left + ("without it, these fixes change: " + ", ".join(cid for cid, _ in step.changed)
                               + " (the diff shows them as they are now)" if step.changed else
                               "the other fixes are unchanged" if replan.plan.changes else "no fix is left to apply")
        self.save()
        return step

    def fixes(self, step: Step | None = None) -> list[tuple[str, str]]:
        """The fixes the step's plan would apply, as (check id, subject): what decline() takes."""
        step = step or self.step
        if step.plan is None:
            return []
        return [(it.check_id, it.subject) for it in step.plan.applicable()]

    def mark_done(self, step: Step | None = None) -> Step:
        """For a step without an automatic fix: the trainee has read it and moves on."""
        step = step or self.step
        step.state = "done"
        self.save()
        return step

    def _session(self):
        from dockfix.workflow import FixSession

        return FixSession(self._ctx())

    def _rescan(self, step: Step) -> list:
        found = self._session().rescan(step.check_ids)
        subjects = {f.key for f in step.findings}
        return [f for f in found if f.key in subjects] or found

    # ------------------------------------------------------------------ words for the screen
    def hand_check(self, step: Step | None = None) -> str:
        step = step or self.step
        return step.topic.hand_check.format(root=self.demo.root, project=self.demo.project)

    def team_notes(self, step: Step | None = None) -> list[str]:
        step = step or self.step
        if self.notes is None:
            return []
        out: list[str] = []
        for cid in step.check_ids:
            for n in self.notes.for_check(cid):
                if n not in out:
                    out.append(n)
        return out

    def by_hand(self, step: Step | None = None) -> list[str]:
        """Advice for the findings of the step that dockfix does not fix itself."""
        step = step or self.step
        planned = {(it.check_id, it.subject) for it in (step.plan.items if step.plan else []) if it.changes}
        out: list[str] = []
        for it in (step.plan.items if step.plan else []):
            if not it.changes:
                out += [f"`{it.check_id}`: {n}" for n in it.notes]
        for f in step.findings:
            if (f.id, f.subject) in planned or any(a.startswith(f"`{f.id}`") for a in out):
                continue
            out.append(f"`{f.id}`: {f.remediation}")
        return list(dict.fromkeys(out))

    def where(self, step: Step | None = None) -> list[str]:
        """Where each failing finding is, as machine paths of the demo folder, with its evidence."""
        step = step or self.step
        out = []
        for f in step.findings:
            loc = f.location or None
            path = loc.path if loc else (f.subject if f.subject.startswith("/") else None)
            shown = (self.demo.path(path) + (f":{loc.line}" if loc and loc.line else "")) if path else f.subject
            out.append(f"{f.id}: {shown} - {f.evidence}")
        return out

    def lesson(self, step: Step | None = None) -> str:
        """The step as Markdown, for the stage it is at."""
        step = step or self.step
        n = self.steps.index(step) + 1
        out = [f"# Step {n} of {len(self.steps)}: {step.title}", ""]
        if step.stage in (APPLIED,) and step.passing:
            out += ["## The fix is applied", "", step.message, ""]
            out += [f"- `{f.id}` {f.subject}: **{f.status.value}** - {f.evidence}" for f in step.passing]
            out += ["", "Run the command again in your other terminal and see the difference:", "",
                    "```sh", self.hand_check(step), "```", "",
                    "Now undo it: press **r** to roll back. dockfix restores the files from its journal."]
            return "\n".join(out)
        if step.stage == ROLLED_BACK:
            out += ["## Rolled back", "", step.message, ""]
            out += [f"- `{f.id}` {f.subject}: **fail** again - {f.evidence}" for f in step.findings] or [
                "- (nothing failing: was the fix already undone?)"]
            out += ["", "On a real host you would keep the fix; here the next trainee needs the fault.",
                    "", "Press **n** for the next step."]
            return "\n".join(out)
        if not step.findings:
            out += ["Nothing fails for this topic on the demo host right now "
                    "(the fix may already be in place). Press **n** for the next step.", ""]
        else:
            out += ["## What dockfix found", ""] + [f"- {w}" for w in self.where(step)] + [""]
        out += ["## Why it matters", "", step.topic.why, ""]
        out += ["## Check it by hand", "", "Copy this into another terminal (press **c** to copy):", "",
                "```sh", self.hand_check(step), "```", ""]
        notes = self.team_notes(step)
        if notes:
            out += ["## Your team's notes", ""]
            for note in notes:
                out += [note, ""]
        if step.stage == DIFF:
            out += ["## The fix", ""]
            if step.left_out:
                out += ["Left out: " + ", ".join(f"`{cid}` {subject}" for cid, subject in step.left_out)
                        + ". " + ("These fixes changed without it and are shown as they are now: "
                                  + ", ".join(f"`{cid}`" for cid, _ in step.changed) + ". " if step.changed else "")
                        + "Choose this step in the list again (Enter) to plan every fix.", ""]
            if step.can_fix:
                out += ["This is exactly what will change (secret values are never shown):", "",
                        "```diff", step.diff.rstrip(), "```", ""]
            by_hand = self.by_hand(step)
            if by_hand:
                out += ["dockfix has no automatic fix for " + ("the rest" if step.can_fix else "this one")
                        + ". What to do by hand:", ""] + [f"- {a}" for a in by_hand] + [""]
            out += ["Press **a** to apply it." if step.can_fix else "Press **m** to mark this step as done."]
        elif step.findings:
            out += ["Press **d** to see the fix as a diff."]
        return "\n".join(out)

    def summary(self) -> str:
        done = [s for s in self.steps if s.state == "done"]
        skipped = [s for s in self.steps if s.state == "skipped"]
        seen = [s for s in self.steps if s.state not in ("done", "skipped", "new")]
        todo = [s for s in self.steps if s.state == "new"]
        lines = ["# What you did", ""]
        lines += [f"- **{s.title}**: done. {s.topic.learnt}" for s in done] or ["- nothing yet"]
        if skipped:
            lines += ["", "# Skipped (come back any time)", ""] + [f"- {s.title}" for s in skipped]
        if seen:
            lines += ["", "# Visited, not finished", ""] + [f"- {s.title}" for s in seen]
        if todo:
            lines += ["", "# Not visited yet", ""] + [f"- {s.title}" for s in todo]
        if self.left_out:
            lines += ["", "# Not part of this build", ""] + [f"- {t}" for t in self.left_out]
        lines += ["", "# What to remember", "",
                  "- Every fix dockfix makes is shown as a diff first and written to a journal before it happens.",
                  "- `dockfix rollback --last` (or the journal screen) puts files back byte for byte, owner and mode included.",
                  "- On a real host: `sudo dockfix scan`, read the findings, then `sudo dockfix` to fix them."]
        return "\n".join(lines)

    # ------------------------------------------------------------------ progress
    def to_json(self) -> dict:
        return {
            "version": PROGRESS_VERSION,
            "saved": time.time(),
            "demo": str(self.demo.folder),
            "current": self.step.key if self.steps else None,
            "steps": {s.key: {"state": s.state, "stage": s.stage, "txid": s.txid} for s in self.steps},
        }

    def save(self) -> None:
        """Save progress atomically (fsops.write_named_file: ``--progress /dev/null`` keeps none, and
        never replaces the device). WalkthroughError naming the file when it cannot be written."""
        from dockfix.fsops import FsError, write_named_file

        try:
            os.makedirs(os.path.dirname(self.progress_path) or ".", exist_ok=True)
            write_named_file(self.progress_path, json.dumps(self.to_json(), indent=2).encode(), 0o666)
        except FsError as e:
            raise WalkthroughError(str(e)) from None
        except OSError as e:
            raise WalkthroughError(f"{self.progress_path}: cannot write: {e.strerror}") from None

    def _load(self) -> None:
        doc = read_progress(self.progress_path)
        if not doc:
            return
        same_demo = doc.get("demo") == str(self.demo.folder)
        keys = [s.key for s in self.steps]
        for s in self.steps:
            saved = doc.get("steps", {}).get(s.key) or {}
            if saved.get("state") in ("seen", "done", "skipped"):
                s.state = saved["state"]
            if same_demo and saved.get("txid"):  # a kept demo host still has the applied fix
                s.txid, s.stage = saved["txid"], APPLIED
        if doc.get("current") in keys:
            self.index = keys.index(doc["current"])

    @staticmethod
    def describe_progress(path: str) -> str:
        doc = read_progress(path) or {}
        steps = doc.get("steps", {})
        lines = [f"progress file: {path}" + ("" if doc else " (none saved yet)")]
        for i, t in enumerate(TOPICS, 1):
            st = (steps.get(t.key) or {}).get("state", "new")
            mark = ">" if doc.get("current") == t.key else " "
            lines.append(f"{mark} {i}. {t.title}  [{st}]")
        return "\n".join(lines)


def read_progress(path: str) -> dict | None:
    """The saved progress, or None (a damaged file is ignored: the lesson starts over)."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("version") != PROGRESS_VERSION:
        return None
    return doc
