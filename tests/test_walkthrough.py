"""`dockfix walkthrough`: every step reached, each fix applied and rolled back on the demo host,
progress saved and resumed, team notes shown; through the lesson core and through the screen."""

from __future__ import annotations

import json

import pytest

from dockfix.model import REGISTRY, Safety
from dockfix.demo.host import DEMO_SECRETS, build_demo
from dockfix.team_notes import parse_notes
from dockfix.demo.walkthrough import APPLIED, ROLLED_BACK, TOPICS, Walkthrough, read_progress
from helpers import manifest

NOTES = ("## etc-docker-owner\n\nAnsible owns /etc/docker here.\n\n"
         "## sensitive-file-in-image\n\nCustomer data never goes into an image: ticket SEC-12.\n\n"
         "## Our registry\n<!-- dockfix: registry-s3-encryption -->\n\nThe bucket key is in Vault.\n")


def fixable(f) -> bool:
    """The finding's check has a fix dockfix applies (not only advice)."""
    spec = REGISTRY[f.id].fix_spec
    return spec is not None and spec.safety != Safety.MANUAL


def host_files(demo) -> dict:
    """Manifest of the demo's host tree, without dockfix's own journal."""
    return {k: v for k, v in manifest(demo.root).items() if not k.startswith("var/lib/dockfix")}


@pytest.fixture
def demo():
    d = build_demo(engine=False)
    yield d
    d.close()
    assert not d.folder.exists()


@pytest.fixture
def notes():
    tn = parse_notes(NOTES, "team.md")
    assert tn.warnings() == []
    return tn


def test_every_topic_of_the_notes_is_a_step(demo):
    wt = Walkthrough(demo, str(demo.folder / "p.json"))
    assert [s.key for s in wt.steps] == [t.key for t in TOPICS]
    assert wt.left_out == []


def test_core_walks_every_step_applies_and_rolls_back(demo, notes, tmp_path):
    progress = tmp_path / "walkthrough.json"
    wt = Walkthrough(demo, str(progress), notes=notes)
    fixed = 0
    for i, step in enumerate(wt.steps):
        assert wt.index == i
        wt.look()
        assert step.findings, f"{step.key}: the demo host has no failing finding for this topic"
        assert str(demo.root) in wt.hand_check()
        before = host_files(demo)
        wt.show_diff()
        if step.key == "content-trust":
            # the demo host runs no notary of its own: setting DOCKER_CONTENT_TRUST is refused, and the
            # lesson says why and what replaces it
            assert not step.can_fix
            assert "2026-12-08" in wt.lesson() and "image-digest" in wt.lesson()
        else:
            assert step.can_fix == any(fixable(f) for f in step.findings), step.key
        if step.can_fix:
            wt.apply()
            assert step.stage == APPLIED
            assert step.passing and all(f.status.value == "pass" for f in step.passing if fixable(f)), step.message
            assert host_files(demo) != before
            wt.rollback()
            assert step.stage == ROLLED_BACK
            assert host_files(demo) == before  # byte for byte, owners and modes included
            assert step.findings, "after the rollback the fault is back"
            fixed += 1
        else:
            wt.mark_done()
        assert step.state == "done"
        text = wt.lesson()
        for s in DEMO_SECRETS:
            assert s not in text
        wt.next()
    assert wt.finished
    assert fixed >= 2  # at least the two ownership lessons
    summary = wt.summary()
    assert all(s.title in summary for s in wt.steps)


def test_team_notes_are_in_the_lesson(demo, notes, tmp_path):
    wt = Walkthrough(demo, str(tmp_path / "p.json"), notes=notes)
    wt.look()
    assert "Ansible owns /etc/docker here." in wt.lesson()
    wt.goto([s.key for s in wt.steps].index("image-secrets"))
    wt.look()
    assert "ticket SEC-12" in wt.lesson()
    wt.goto([s.key for s in wt.steps].index("registry-s3"))
    wt.look()
    assert "The bucket key is in Vault." in wt.lesson()


def test_progress_is_saved_and_resumed(demo, tmp_path):
    progress = tmp_path / "state" / "walkthrough.json"
    wt = Walkthrough(demo, str(progress))
    wt.look()
    wt.mark_done()
    wt.skip()  # step 1 done -> step 2
    wt.skip()  # step 2 skipped -> step 3
    doc = read_progress(str(progress))
    assert doc["current"] == wt.steps[2].key
    again = Walkthrough(demo, str(progress))
    assert again.index == 2
    assert [s.state for s in again.steps[:3]] == ["done", "skipped", "new"]
    fresh = Walkthrough(demo, str(progress), restart=True)
    assert fresh.index == 0 and all(s.state == "new" for s in fresh.steps)
    progress.write_text("{not json")
    assert Walkthrough(demo, str(progress)).index == 0  # a damaged file starts over


# ---------------------------------------------------------------------- through the screen
async def settle(pilot) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def shown(app) -> str:
    from textual.widgets import Markdown

    return app.screen.query_one("#wt-markdown", Markdown).source


@pytest.mark.slow
async def test_pilot_walks_the_whole_walkthrough_and_resumes(demo, notes, tmp_path):
    from dockfix.tui.demo_app import WalkthroughApp
    from dockfix.screens.walkthrough_screen import SummaryScreen, WalkthroughScreen

    progress = tmp_path / "walkthrough.json"
    stop_after = 3
    wt = Walkthrough(demo, str(progress), notes=notes)
    app = WalkthroughApp(wt)
    seen: list[str] = []
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        for i, step in enumerate(wt.steps[:stop_after]):
            await _do_step(pilot, wt, step, i, seen)
            await pilot.press("n")
            await settle(pilot)
        await pilot.press("q")
    # stopped; progress on disk; a new session resumes at the next step
    doc = json.loads(progress.read_text())
    assert doc["current"] == wt.steps[stop_after].key
    wt2 = Walkthrough(demo, str(progress), notes=notes)
    assert wt2.index == stop_after
    assert [s.state for s in wt2.steps[:stop_after]] == ["done"] * stop_after
    app2 = WalkthroughApp(wt2)
    async with app2.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert f"# Step {stop_after + 1} of" in shown(app2)
        for i, step in enumerate(wt2.steps[stop_after:], start=stop_after):
            await _do_step(pilot, wt2, step, i, seen)
            await pilot.press("n")
            await settle(pilot)
        assert isinstance(app2.screen, SummaryScreen)
        from textual.widgets import Markdown

        summary = app2.screen.query_one("#wt-summary", Markdown).source
        assert all(f"**{s.title}**: done" in summary for s in wt2.steps)
        await pilot.press("b")
        assert isinstance(app2.screen, WalkthroughScreen)
    assert seen == [t.key for t in TOPICS]
    assert "Ansible owns /etc/docker here." in "".join(seen_notes(wt2))


def seen_notes(wt) -> list[str]:
    return [n for s in wt.steps for n in wt.team_notes(s)]


async def _do_step(pilot, wt, step, i, seen) -> None:
    app = pilot.app
    assert wt.index == i
    text = shown(app)
    assert f"# Step {i + 1} of {len(wt.steps)}: {step.title}" in text
    assert "## Why it matters" in text and "## Check it by hand" in text
    assert str(wt.demo.root) in text
    seen.append(step.key)
    if step.key == "etc-docker-owner":
        assert "Ansible owns /etc/docker here." in text
    before = host_files(wt.demo)
    await pilot.press("d")
    await settle(pilot)
    text = shown(app)
    assert "## The fix" in text
    if step.can_fix:
        assert "```diff" in text
        await pilot.press("a")
        await settle(pilot)
        assert step.stage == APPLIED, app.screen.query_one("#wt-status").render()
        assert "## The fix is applied" in shown(app)
        assert all(f.status.value == "pass" for f in step.passing if fixable(f))
        await pilot.press("r")
        await settle(pilot)
        assert step.stage == ROLLED_BACK
        assert "## Rolled back" in shown(app)
        assert host_files(wt.demo) == before
    else:
        await pilot.press("m")
        await settle(pilot)
    assert step.state == "done"
    for s in DEMO_SECRETS:
        assert s not in shown(app)


def test_cli_lists_steps_and_saved_progress(demo, tmp_path):
    from helpers import run_dockfix

    progress = tmp_path / "wt.json"
    wt = Walkthrough(demo, str(progress))
    wt.mark_done()
    wt.skip()
    r = run_dockfix("walkthrough", "--list", "--progress", str(progress))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"progress file: {progress}"
    assert lines[1] == "  1. Who owns /etc/docker  [done]"
    assert lines[2] == "> 2. Who owns docker.service  [new]"
    assert len(lines) == 1 + len(TOPICS)


async def test_pilot_leaves_one_fix_out_and_shows_the_replanned_diff_before_applying(demo, tmp_path):
    """`l` on a step with several fixes asks which to leave out; the others are planned again and
    the lesson shows their diff as it is now (the workflow's rule: a declined fix -> the re-planned
    diff shown again) before `a` applies them; with one fix, `l` leaves it out at once."""
    from textual.widgets import OptionList
    from textual.widgets._footer import FooterKey

    from dockfix.tui.demo_app import WalkthroughApp
    from dockfix.screens.walkthrough_screen import LeaveOutModal

    daemon_json = demo.root / "etc/docker/daemon.json"
    daemon_json.write_text('{"icc": true, "log-level": "debug"}\n')  # log-level's diff is built on icc's
    before = daemon_json.read_bytes()
    wt = Walkthrough(demo, str(tmp_path / "p.json"))
    app = WalkthroughApp(wt)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert "l" in [k.key for k in app.screen.query(FooterKey)]  # discoverable in the footer
        app.screen.query_one("#wt-steps", OptionList).highlighted = [s.key for s in wt.steps].index("daemon-json")
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("d")
        await settle(pilot)
        assert "icc" in [cid for cid, _ in wt.fixes()] and '"icc": false' in shown(app)
        await pilot.press("l")
        await settle(pilot)
        modal = app.screen
        assert isinstance(modal, LeaveOutModal)
        modal.query_one(OptionList).highlighted = [cid for cid, _ in modal.fixes].index("icc")
        await pilot.press("enter")
        await settle(pilot)
        step = wt.step
        assert [cid for cid, _ in step.left_out] == ["icc"]
        assert "icc" not in [cid for cid, _ in wt.fixes()]
        assert "log-level" in [cid for cid, _ in step.changed]
        text = shown(app)
        assert "Left out: `icc`" in text and "`log-level`" in text and "```diff" in text
        diff = text.split("```diff", 1)[1].split("```", 1)[0]
        assert '"log-level": "info"' in diff and '"icc": false' not in diff  # built on the file as it is
        assert str(app.screen.query_one("#wt-status").render()).startswith("left out icc: without it, these fixes change")
        assert daemon_json.read_bytes() == before  # nothing applied yet
        await pilot.press("a")
        await settle(pilot)
        assert step.stage == APPLIED
        doc = json.loads(daemon_json.read_text())
        assert doc["icc"] is True and doc["log-level"] == "info"  # icc left as it was
        await pilot.press("l")  # applied: refused, without asking which
        await settle(pilot)
        assert not isinstance(app.screen, LeaveOutModal) and step.stage == APPLIED
        assert "already applied" in str(app.screen.query_one("#wt-status").render())
        await pilot.press("r")
        await settle(pilot)
        assert daemon_json.read_bytes() == before
        # A step with one fix: `l` leaves it out without asking; nothing is left to apply.
        app.screen.query_one("#wt-steps", OptionList).highlighted = 0
        await pilot.press("enter")
        await settle(pilot)
        assert len(wt.fixes()) == 1
        await pilot.press("l")
        await settle(pilot)
        assert not isinstance(app.screen, LeaveOutModal)
        assert wt.fixes() == [] and wt.step.left_out
        assert "no fix is left to apply" in str(app.screen.query_one("#wt-status").render())
        # choosing the step again plans every fix
        await pilot.press("enter")
        await settle(pilot)
        assert len(wt.fixes()) == 1 and not wt.step.left_out


def test_a_fix_cannot_be_left_out_once_applied(demo, tmp_path):
    """`l` after `a`: the change is on disk, so "left out …: no fix is left to apply" would be untrue
    (and `a` then said "this step has no automatic fix"). It is refused, pointing at `r`."""
    from dockfix.demo.walkthrough import WalkthroughError

    wt = Walkthrough(demo, str(tmp_path / "p.json"))
    wt.goto(0)
    wt.look()
    fixes = wt.fixes()
    wt.apply()
    txid = wt.step.txid
    with pytest.raises(WalkthroughError, match="already applied.*roll"):
        wt.decline(fixes)
    assert wt.step.stage == APPLIED and wt.step.txid == txid and not wt.step.left_out
    wt.rollback()
    assert wt.step.stage == ROLLED_BACK
