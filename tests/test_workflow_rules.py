"""The fix workflow's rules, run through every front end — the CLI, the app (Pilot) and the
walkthrough — which must reach the same verdict, because all three ask the same FixSession:

1. declining a fix re-plans the others, and a kept fix whose diff changed is shown again before
   anything is applied;
2. a fix whose check ends ``manual`` (not ``pass``) is reported as not fixed.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app_helpers import make_app, screen_name, select, settle
from helpers import REPO, put, put_units, run_dockfix

#: icc (disruptive) and log-level edit the same daemon.json: log-level's diff is built on icc's.
CHAINED = '{"icc": true, "log-level": "debug"}\n'
#: The checks of the walkthrough's daemon.json step that fail on CHAINED (icc and no-new-privileges
#: are disruptive; log-level and live-restore safe; experimental passes).
DAEMON_STEP = ("icc", "log-level", "no-new-privileges", "live-restore")  # by id: numbers depend on --benchmark
#: The seccomp fix removes "unconfined"; the check then asks for a judgment (manual), not a pass.
UNCONFINED = '{"seccomp-profile": "unconfined"}\n'


def host(root: Path, daemon_json: str) -> Path:
    put_units(root)  # Debian's docker.service: the command line is known, so daemon.json is where settings live
    put(root, "var/lib/")
    put(root, "etc/docker/", mode=0o755)
    put(root, "etc/docker/daemon.json", daemon_json, mode=0o644)
    return root


def replanned_diff_lines(diff: str) -> list[str]:
    return [ln for ln in diff.splitlines() if ln.startswith(("+", "-")) and not ln.startswith(("+++", "---"))]


# ---------------------------------------------------------------------- rule 1: declined -> shown again
def cli_decline_icc(root: Path) -> tuple[list[str], str]:
    master, slave = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "dockfix", "--apply", "--include-disruptive", "--root", str(root),
                          "--no-engine", "--only", ",".join(DAEMON_STEP)], stdin=slave, stdout=slave, stderr=slave,
                         env={**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}, close_fds=True)
    os.close(slave)
    seen = b""

    def until(text: bytes) -> None:
        nonlocal seen
        end = time.time() + 60
        while text not in seen and time.time() < end:
            try:
                seen += os.read(master, 4096)
            except OSError:
                break
        assert text in seen, seen.decode(errors="replace")

    until(b"Apply the 2 safe fix(es) above? [y/N]")
    os.write(master, b"y\n")
    for _ in range(2):  # icc and no-new-privileges, each asked on its own: decline icc only
        until(b"Apply disruptive fix")
        question = seen.rsplit(b"Apply disruptive fix", 1)[1]
        seen = seen.replace(b"Apply disruptive fix", b"(asked)")
        os.write(master, b"n\n" if question.startswith(b" icc ") else b"y\n")
    until(b"Apply these? [y/N]")
    shown_again = seen.split(b"the others change to")[1].split(b"Apply these?")[0].decode()
    os.write(master, b"n\n")
    p.wait(timeout=60)
    os.close(master)
    items = [ln.split()[2] for ln in shown_again.splitlines() if ln.startswith("# [")]
    return items, shown_again


async def app_decline_icc(root: Path) -> tuple[list[str], str]:
    app = make_app(root, only=list(DAEMON_STEP))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        for cid in ("icc", "log-level", "no-new-privileges", "live-restore"):
            await select(pilot, cid)
            await pilot.press("space")
        await pilot.press("a")
        await settle(app, pilot)
        await pilot.press("y")  # the whole plan
        await settle(app, pilot)
        for _ in range(2):  # each disruptive fix on its own: decline icc only
            assert "Disruptive" in app.screen.title_text
            await pilot.press("n" if app.screen.title_text.endswith(" icc") else "y")
            await settle(app, pilot)
        assert screen_name(app) == "DiffScreen"
        plan = app.screen.plan
        items, diff = [it.check_id for it in plan.items], plan.diff()
        await pilot.press("escape")  # and do not apply
        await settle(app, pilot)
    return items, diff


def walkthrough_decline_icc(tmp_path: Path) -> tuple[list[str], str]:
    from dockfix.demo.host import build_demo
    from dockfix.demo.walkthrough import Walkthrough

    demo = build_demo(at=str(tmp_path / "demo"), engine=False)
    try:
        (demo.root / "etc/docker/daemon.json").write_text(CHAINED)
        wt = Walkthrough(demo, str(tmp_path / "progress.json"))
        step = next(s for s in wt.steps if s.key == "daemon-json")
        wt.look(step)
        step = wt.decline([("icc", f.subject) for f in step.findings if f.id == "icc"], step)
        return [cid for cid, _ in step.changed], step.diff
    finally:
        demo.close()


async def test_declined_fix_shows_the_replanned_diff_again_in_every_front_end(tmp_path):
    cli_items, cli_diff = cli_decline_icc(host(tmp_path / "cli", CHAINED))
    app_items, app_diff = await app_decline_icc(host(tmp_path / "app", CHAINED))
    wt_items, wt_diff = walkthrough_decline_icc(tmp_path / "wt")
    assert sorted(cli_items) == sorted(app_items) == sorted(wt_items) == ["live-restore", "log-level", "no-new-privileges"]
    for diff in (cli_diff, app_diff, wt_diff):
        changed = replanned_diff_lines(diff)
        assert any('"log-level": "info"' in ln for ln in changed), diff
        assert not any('"icc": false' in ln for ln in changed), diff  # built on the file as it is, icc untouched
    # nothing was applied anywhere: the CLI was answered no, the app's diff dismissed
    assert (tmp_path / "cli/etc/docker/daemon.json").read_text() == CHAINED
    assert (tmp_path / "app/etc/docker/daemon.json").read_text() == CHAINED


# ---------------------------------------------------------------------- rule 2: ends manual -> not fixed
def cli_apply_seccomp(root: Path) -> dict:
    r = run_dockfix("--apply", "--yes", "--include-disruptive", "--format", "json", "--root", str(root),
                    "--no-engine", "--only", "seccomp-profile")
    assert r.returncode == 1, r.stderr  # applied, but the check does not pass
    (result,) = json.loads(r.stdout)["results"]
    return result


async def app_apply_seccomp(root: Path) -> str:
    app = make_app(root, only=["seccomp-profile"])
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await select(pilot, "seccomp-profile")
        await pilot.press("a")
        await settle(app, pilot)
        await pilot.press("y")
        await settle(app, pilot)
        await pilot.press("y")  # the disruptive fix, on its own
        await settle(app, pilot)
        return "\n".join(n.message for n in app._notifications)


def walkthrough_apply_seccomp(tmp_path: Path) -> str:
    from dockfix.demo.host import build_demo
    from dockfix.demo.walkthrough import Step, Topic, Walkthrough

    demo = build_demo(at=str(tmp_path / "demo"), engine=False)
    try:
        (demo.root / "etc/docker/daemon.json").write_text(UNCONFINED)
        wt = Walkthrough(demo, str(tmp_path / "progress.json"))
        topic = Topic("seccomp", "seccomp", ("seccomp-profile",), why="-", hand_check="-", learnt="-")
        step = Step(topic, ["seccomp-profile"])
        wt.steps.append(step)
        wt.look(step)
        assert step.can_fix
        return wt.apply(step).message
    finally:
        demo.close()


async def test_a_fix_whose_check_ends_manual_is_not_fixed_in_every_front_end(tmp_path):
    cli = cli_apply_seccomp(host(tmp_path / "cli", UNCONFINED))
    assert cli["fixed"] is False and cli["status"] == "manual"
    assert "seccomp-profile" not in json.loads((tmp_path / "cli/etc/docker/daemon.json").read_text())  # it did apply
    app_note = await app_apply_seccomp(host(tmp_path / "app", UNCONFINED))
    assert "NOT FIXED seccomp-profile" in app_note and "(manual:" in app_note
    wt_message = walkthrough_apply_seccomp(tmp_path / "wt")
    assert "not fixed" in wt_message and "seccomp-profile" in wt_message and "(manual)" in wt_message


# ---------------------------------------------------------------------- rule 3: waived -> never fixed
#: An accepted risk in the host's own waiver file: icc (and no other check) is waived.
WAIVERS = "waivers:\n  - check: icc\n    reason: the CI runners talk over the default bridge\n    expires: 2999-12-31\n"


def waived_host(root: Path) -> Path:
    host(root, CHAINED)
    put(root, "etc/dockfix/waivers.yaml", WAIVERS)
    return root


def cli_apply_waived(root: Path) -> tuple[list[str], str]:
    r = run_dockfix("--apply", "--yes", "--include-disruptive", "--root", str(root), "--no-engine",
                    "--only", "icc,log-level")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Left out, waived: icc" in r.stdout and "the CI runners talk over the default bridge" in r.stdout, r.stdout
    assert "etc/dockfix/waivers.yaml:2" in r.stdout, r.stdout
    r = run_dockfix("journal", "--root", str(root), "--format", "json")
    (tx,) = json.loads(r.stdout)
    return [it["check_id"] for it in tx["items"]], ""


async def app_apply_waived(root: Path) -> tuple[list[str], str]:
    app = make_app(root, only=["icc", "log-level"])
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("2")  # fail: the waived finding is shown too (it is not "to do")
        await settle(app, pilot)
        for cid in ("icc", "log-level"):
            await select(pilot, cid)
            await pilot.press("space")
        await pilot.press("a")
        await settle(app, pilot)
        body = app.screen.body
        await pilot.press("y")  # no disruptive fix is asked about: icc, the only one, is waived
        await settle(app, pilot)
        assert screen_name(app) != "ConfirmModal"
    txs = json.loads(run_dockfix("journal", "--root", str(root), "--format", "json").stdout)
    (tx,) = txs
    return [it["check_id"] for it in tx["items"]], body


def walkthrough_waived(tmp_path: Path) -> tuple[list[str], str]:
    from dockfix.demo.host import build_demo
    from dockfix.demo.walkthrough import Walkthrough

    demo = build_demo(at=str(tmp_path / "demo"), engine=False)
    try:
        (demo.root / "etc/docker/daemon.json").write_text(CHAINED)
        put(demo.root, "etc/dockfix/waivers.yaml", WAIVERS)
        wt = Walkthrough(demo, str(tmp_path / "progress.json"))
        step = next(s for s in wt.steps if s.key == "daemon-json")
        wt.look(step)
        assert any(f.id == "icc" for f in step.findings)  # it fails, and is waived
        planned, message = [it.check_id for it in step.plan.applicable()], step.message
        wt.apply(step)
        assert json.loads((demo.root / "etc/docker/daemon.json").read_text())["icc"] is True
        return planned, message
    finally:
        demo.close()


async def test_a_waived_finding_is_never_fixed_in_every_front_end(tmp_path):
    """icc fails and has a (disruptive) fix, but the host's waiver file accepts it: --apply, the app
    and the walkthrough all leave it out and say so; the other fix of the same file is applied."""
    cli_items, _ = cli_apply_waived(waived_host(tmp_path / "cli"))
    app_items, app_body = await app_apply_waived(waived_host(tmp_path / "app"))
    wt_items, wt_note = walkthrough_waived(tmp_path / "wt")
    assert cli_items == app_items == ["log-level"]
    assert "icc" not in wt_items and "log-level" in wt_items
    assert "[not applied: waived until 2999-12-31] icc" in app_body, app_body
    assert "left out, waived: icc" in wt_note and "the CI runners talk over the default bridge" in wt_note, wt_note
    for side in ("cli", "app"):
        assert json.loads((tmp_path / side / "etc/docker/daemon.json").read_text()) == {"icc": True, "log-level": "info"}


def test_a_plan_file_leaves_a_waived_fix_out_and_applies_without_it(tmp_path):
    """`plan -o` names the waived fix and leaves it out; `--apply --plan` plans again with the same
    waivers and applies the rest. A waiver that expired (or was removed) after the review makes the
    fresh plan differ: refused, nothing changed. A bad waiver file: one line naming it, exit 2."""
    root = waived_host(tmp_path / "root")
    plan = tmp_path / "plan.json"
    r = run_dockfix("plan", "--include-disruptive", "--root", str(root), "--no-engine", "--only", "icc,log-level",
                    "-o", str(plan))
    assert r.returncode == 0, r.stderr
    assert "Left out, waived: icc" in r.stdout, r.stdout
    doc = json.loads(plan.read_text())
    assert [it["check_id"] for it in doc["items"]] == ["log-level"]
    assert [(w["check_id"], w["expires"]) for w in doc["waived"]] == [("icc", "2999-12-31")]
    # a bad waiver file: refused before anything, naming the file and line
    good = (root / "etc/dockfix/waivers.yaml").read_text()
    (root / "etc/dockfix/waivers.yaml").write_text(good.replace("2999-12-31", "someday"))
    before = (root / "etc/docker/daemon.json").read_bytes()
    for args in (["--plan", str(plan)], ["--include-disruptive", "--only", "icc,log-level"]):
        r = run_dockfix("--apply", "--yes", "--root", str(root), "--no-engine", *args)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "etc/dockfix/waivers.yaml:4" in r.stderr and "expires" in r.stderr, r.stderr
        assert (root / "etc/docker/daemon.json").read_bytes() == before
    # the waiver gone after review: dockfix would now fix icc too -> refused
    (root / "etc/dockfix/waivers.yaml").write_text("waivers: []\n")
    r = run_dockfix("--apply", "--yes", "--root", str(root), "--no-engine", "--plan", str(plan))
    assert r.returncode == 3 and "icc" in r.stderr, r.stderr
    assert (root / "etc/docker/daemon.json").read_bytes() == before
    # as reviewed: applied without icc
    (root / "etc/dockfix/waivers.yaml").write_text(good)
    r = run_dockfix("--apply", "--yes", "--root", str(root), "--no-engine", "--plan", str(plan))
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads((root / "etc/docker/daemon.json").read_text()) == {"icc": True, "log-level": "info"}
