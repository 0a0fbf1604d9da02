"""Engine changes get a preflight too (issue 15): an apply whose swarm changes would fail on the
engine is refused before its first change — no file changed, no transaction begun — with one line.

A plan made from a real swarm (a service with a password in its environment, and a daemon.json
with a bad owner and mode) puts its file changes before the engine's, then the engine moves on
between plan and apply, as it does while someone reviews a plan in the app: the secret's name
gets taken, the service is updated, the engine goes away, or the apply talks to another engine.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from helpers import BUSYBOX_IMAGE, manifest, put

pytestmark = [pytest.mark.engine, pytest.mark.slow]

JOURNAL = "var/lib/dockfix"


def host_files(root: Path) -> dict:
    """The tree's manifest without dockfix's journal (which a refusal under its lock may create)."""
    return {k: v for k, v in manifest(root).items() if not (k == JOURNAL or k.startswith(JOURNAL + "/"))}


def transactions(root: Path) -> list[str]:
    journal = root / JOURNAL / "journal"
    return [n for n in os.listdir(journal) if n != "lock"] if journal.exists() else []


def _socket(url: str) -> str:
    assert url.startswith("unix://"), url
    return url[len("unix://"):]


@pytest.mark.parametrize("how", ["secret name taken", "service updated", "engine gone", "another engine",
                                 "secret source changed", "secret value differs"])
def test_engine_changes_that_would_fail_are_refused_before_the_first_change(swarm_engine, tmp_path: Path,
                                                                            how: str) -> None:
    from dockfix.context import Context
    from dockfix.host import Host
    from dockfix.workflow import FixSession, PlanError, apply_plan

    pw = "s3cr3t-" + os.urandom(6).hex()
    swarm_engine.cli("tag", BUSYBOX_IMAGE, "mysql:8.0")
    swarm_engine.cli("service", "create", "-d", "--no-resolve-image", "--name", "db", "-e", f"MYSQL_PASSWORD={pw}",
                     "mysql:8.0", "sleep", "3600")
    root = tmp_path / "root"
    put(root, "etc/docker/daemon.json", '{"icc": false}\n', mode=0o666, owner=(1000, 1000))
    put(root, "var/lib/")
    # the engine through a name of our own, so that it can "go away" without stopping it
    sock = tmp_path / "engine.sock"
    os.symlink(_socket(swarm_engine.url), sock)
    host = Host(str(root), docker_host=f"unix://{sock}", engine=True)
    plan, _ = FixSession(Context(host=host)).plan_selection(only=["3.17", "3.18", "env-password"],
                                                           include_disruptive=True)
    plan.items.sort(key=lambda it: it.check_id == "env-password")  # every file change first
    kinds = [c.kind for c in plan.changes]
    assert kinds[-2:] == ["create-secret", "update-service"] and len(kinds) > 2, kinds
    secret = plan.changes[-2].name

    def engine_state() -> tuple:
        spec = json.loads(swarm_engine.cli("service", "inspect", "db").stdout)[0]["Spec"]
        return json.dumps(spec, sort_keys=True), swarm_engine.cli("secret", "ls", "--format", "{{.Name}}").stdout

    if how == "secret name taken":
        swarm_engine.cli("secret", "create", secret, "-", input="someone else's")
        expect = [f"secret {secret}", "the name is taken"]
    elif how == "service updated":
        swarm_engine.cli("service", "update", "-d", "--env-add", "TZ=UTC", "db")
        expect = ["service", "updated since the plan was made"]
    elif how == "engine gone":
        os.unlink(sock)
        expect = [f"unix://{sock}", "cannot be reached"]
    elif how == "another engine":
        plan.engine = "unix:///run/another-engine.sock"
        expect = ["unix:///run/another-engine.sock", f"unix://{sock}"]
    elif how == "secret source changed":  # the variable the secret is made from changed
        swarm_engine.cli("service", "update", "-d", "--env-add", "MYSQL_PASSWORD=changed", "db")
        plan.changes[-2].data = None  # as from a plan file: the value is read again from the service
        expect = ["service", "updated since the plan was made"]
    else:  # the value the plan recorded (by its hash) is not the one the service holds
        from dockfix.fsops import sha256

        plan.changes[-2].data = None
        plan.changes[-2].data_ref["sha256"] = sha256(b"another value")
        expect = [f"secret {secret}", "changed since the plan was made"]
    before_files = host_files(root)
    before_engine = engine_state()
    with pytest.raises(PlanError) as e:
        apply_plan(host, plan)
    msg = str(e.value)
    assert "\n" not in msg and "nothing was applied" in msg, msg
    for word in expect:
        assert word in msg, (how, msg)
    assert host_files(root) == before_files and transactions(root) == []  # nothing changed, nothing begun
    assert engine_state() == before_engine


def test_engine_changes_on_an_engine_that_is_no_swarm_manager_are_refused_first(swarm_engine, engine,
                                                                                tmp_path: Path) -> None:
    """The plan's engine is the apply's, but that engine is not (or no longer) a swarm manager."""
    from dockfix.context import Context
    from dockfix.host import Host
    from dockfix.workflow import FixSession, PlanError, apply_plan

    swarm_engine.cli("tag", BUSYBOX_IMAGE, "mysql:8.0")
    swarm_engine.cli("service", "create", "-d", "--no-resolve-image", "--name", "db", "-e", "MYSQL_PASSWORD=pw-1234",
                     "mysql:8.0", "sleep", "3600")
    root = tmp_path / "root"
    put(root, "etc/docker/daemon.json", '{"icc": false}\n', mode=0o666, owner=(1000, 1000))
    put(root, "var/lib/")
    plan, _ = FixSession(Context(host=Host(str(root), docker_host=swarm_engine.url, engine=True))).plan_selection(
        only=["3.17", "3.18", "env-password"], include_disruptive=True)
    assert "create-secret" in [c.kind for c in plan.changes]
    plan.engine = engine.url
    before = host_files(root)
    with pytest.raises(PlanError) as e:
        apply_plan(Host(str(root), docker_host=engine.url, engine=True), plan)
    assert "is not a swarm manager" in str(e.value) and engine.url in str(e.value), str(e.value)
    assert host_files(root) == before and transactions(root) == []
