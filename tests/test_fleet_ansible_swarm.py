"""The Ansible plays move a swarm service's password into a Docker secret from a reviewed plan.

The managed host is this machine (``ansible_connection=local``), but dockfix works on a host tree
under tmp (role variable ``dockfix_root``) and on the private swarm engine (``dockfix_docker_host``):
nothing of this machine's own daemon or files is touched. dockfix is run from this checkout (the
role's ``dockfix_bin`` points at a small wrapper): installing it is test_fleet_ansible.py's subject.

The flow is the fleet's: plan.yml (the reviewed text plan never shows the password, nor does
Ansible's output or log) -> apply.yml with the reviewed JSON plan (the service reads the password
from a secret, its variable is gone) -> rollback.yml (the spec is back, the secret gone). A plan
edited after review is refused by the apply play and nothing changes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import BUSYBOX_IMAGE, REPO, manifest, put, service_secret, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.engine, pytest.mark.timeout(1200)]

PLAYBOOKS = REPO / "contrib" / "ansible"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook") \
    if (Path(sys.executable).parent / "ansible-playbook").exists() else (shutil.which("ansible-playbook") or "ansible-playbook")
HOST = "swarm-1"



class Controller:
    def __init__(self, work: Path, env: dict[str, str]):
        self.work, self.env = work, env
        self.fleet = work / "fleet"
        self.outputs: list[str] = []

    def playbook(self, name: str, ok: bool = True) -> subprocess.CompletedProcess:
        started = time.monotonic()
        # -v: every task's result (stdout and stderr of dockfix) is in Ansible's output and log
        r = subprocess.run([ANSIBLE_PLAYBOOK, "-v", "-i", str(self.work / "inventory.ini"), str(PLAYBOOKS / name)],
                           capture_output=True, text=True, env=self.env, cwd=self.work, timeout=600)
        print(f"ansible-playbook {name}: {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
        self.outputs.append(r.stdout + r.stderr)
        if ok:
            assert r.returncode == 0, f"{name} failed:\n{r.stdout[-6000:]}\n{r.stderr[-3000:]}"
        return r


@pytest.fixture
def controller(swarm_engine, tmp_path: Path) -> Controller:
    if not os.access(ANSIBLE_PLAYBOOK, os.X_OK):
        pytest.fail("ansible-playbook is not installed (pip install -e '.[test]' installs ansible-core)")
    root = tmp_path / "root"
    put(root, "var/lib/")
    hostwork = tmp_path / "hostwork"  # the role's dockfix_workdir on the managed host
    hostwork.mkdir(mode=0o700)
    wrapper = tmp_path / "bin" / "dockfix"
    wrapper.parent.mkdir()
    wrapper.write_text(f"#!/bin/sh\nPYTHONPATH={REPO} NO_COLOR=1 exec {sys.executable} -m dockfix \"$@\"\n")
    wrapper.chmod(0o755)
    work = tmp_path / "controller"
    work.mkdir()
    (work / "inventory.ini").write_text("\n".join([
        "[docker_hosts]",
        f"{HOST} ansible_connection=local",
        "",
        "[docker_hosts:vars]",
        f"ansible_python_interpreter={sys.executable}",
        f"dockfix_bin={wrapper}",
        f"dockfix_workdir={hostwork}",
        f"dockfix_root={root}",
        f"dockfix_docker_host={swarm_engine.url}",
        "dockfix_plan_args=--only env-password --include-disruptive",
        f"dockfix_fleet_dir={work / 'fleet'}",
        f"dockfix_controller_cmd={sys.executable} -m dockfix",
    ]) + "\n")
    env = dict(os.environ)
    env.pop("DOCKER_HOST", None)
    env.update({
        "ANSIBLE_CONFIG": str(PLAYBOOKS / "ansible.cfg"),
        "ANSIBLE_HOME": str(work / ".ansible"),
        "ANSIBLE_LOCAL_TEMP": str(work / ".ansible" / "tmp"),
        "ANSIBLE_LOG_PATH": str(work / "ansible.log"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "PYTHONPATH": str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
        "NO_COLOR": "1",
    })
    c = Controller(work, env)
    c.root = root  # type: ignore[attr-defined]
    return c


def test_apply_play_moves_a_swarm_password_into_a_secret_from_the_reviewed_plan(swarm_engine, controller) -> None:
    pw = "Fleet-" + os.urandom(8).hex()
    swarm_engine.cli("tag", BUSYBOX_IMAGE, "mysql:8.0")
    swarm_engine.cli("service", "create", "-d", "--no-resolve-image", "--name", "db", "-e", f"MYSQL_PASSWORD={pw}",
                     "-e", "TZ=UTC", "mysql:8.0", "sleep", "3600")
    # another service, which a plan edited after review points at
    swarm_engine.cli("service", "create", "-d", "--no-resolve-image", "--name", "web", "-e", "TZ=UTC",
                     "mysql:8.0", "sleep", "3600")
    # the plan sees the service's task container too: wait until it runs, or the re-plan at apply differs
    wait_until("the service's task", lambda: swarm_engine.cli(
        "ps", "-q", "--filter", "label=com.docker.swarm.service.name=db", "--filter", "status=running").stdout.strip())
    root: Path = controller.root  # type: ignore[attr-defined]

    def spec(name: str = "db") -> str:
        return json.dumps(json.loads(swarm_engine.cli("service", "inspect", name).stdout)[0]["Spec"], sort_keys=True)

    def secrets() -> list[str]:
        return swarm_engine.cli("secret", "ls", "--format", "{{.Name}}").stdout.split()

    web_id = swarm_engine.cli("service", "inspect", "--format", "{{.ID}}", "web").stdout.strip()
    web = spec("web")
    untouched = (spec(), secrets())
    assert untouched[1] == []

    # 1. plan.yml: the plan comes to the controller for review; the password is in none of it
    controller.playbook("plan.yml")
    text = (controller.fleet / "plans" / f"{HOST}.txt").read_text()
    reviewed = (controller.fleet / "plans" / f"{HOST}.json").read_bytes()
    assert f"-env MYSQL_PASSWORD=<secret, {len(pw)} bytes>" in text, text
    assert "+env MYSQL_PASSWORD_FILE=/run/secrets/db_MYSQL_PASSWORD" in text, text
    doc = json.loads(reviewed)
    assert doc["engine"] == swarm_engine.url
    assert [c["kind"] for it in doc["items"] for c in it["changes"]] == ["create-secret", "update-service"]
    assert pw not in text and pw.encode() not in reviewed
    assert (spec(), secrets()) == untouched  # planning changed nothing but dockfix's key (made for plan files)
    assert sorted(p.name for p in (root / "var/lib/dockfix").iterdir()) == ["journal", "plan.key"]
    before = (*untouched, manifest(root))

    # 2. a plan edited after review is refused by the apply play, and nothing changes
    plan_file = controller.fleet / "plans" / f"{HOST}.json"

    def swarm_changes(d: dict) -> list[dict]:
        return next(it["changes"] for it in d["items"] if it["changes"])

    def other_service(d: dict) -> None:  # the spec's name: the update would rename the service
        swarm_changes(d)[1]["new_spec"]["Name"] = "db2"

    def other_service_id(d: dict) -> None:  # the update aimed at another service
        swarm_changes(d)[1]["service_id"] = web_id

    def resign(d: dict) -> None:  # as if the host key had leaked: only the fresh plan can tell
        from dockfix.plan import sign

        d["hmac"] = sign(d, (root / "var/lib/dockfix/plan.key").read_bytes())

    # Two edits through the play (≈5 s each): one its signature gives away, one re-signed that only
    # planning again can tell. Every other edit of a swarm change (name, image, ...), as edited and
    # re-signed, is refused through the CLI the play runs: test_safety_plans.py, on both engines.
    for how, edit, signed, words in [
        ("another service name", other_service, False, "signature does not match"),
        # the other service is not as the plan recorded it: named in the refusal
        ("another service, re-signed", other_service_id, True, "web_id"),
    ]:
        d = json.loads(reviewed)
        edit(d)
        if signed:
            resign(d)
        plan_file.write_text(json.dumps(d))
        r = controller.playbook("apply.yml", ok=False)
        assert r.returncode != 0 and "failed=1" in r.stdout, (how, r.stdout[-3000:])
        assert (web_id if words == "web_id" else words) in r.stdout, (how, r.stdout[-3000:])
        assert "nothing was applied" in r.stdout.lower(), (how, r.stdout[-3000:])
        assert (spec(), secrets(), manifest(root)) == before and spec("web") == web, how
        assert not (controller.fleet / "journal" / f"{HOST}.txid").exists(), how

    # 3. apply.yml with the reviewed plan as it was: the password moves into a secret
    plan_file.write_bytes(reviewed)
    controller.playbook("apply.yml")
    txid = (controller.fleet / "journal" / f"{HOST}.txid").read_text().strip()
    assert txid
    cs = json.loads(spec())["TaskTemplate"]["ContainerSpec"]
    assert not any(e.startswith("MYSQL_PASSWORD=") for e in cs["Env"]), cs["Env"]
    assert "TZ=UTC" in cs["Env"]
    (ref,) = cs["Secrets"]
    assert f"MYSQL_PASSWORD_FILE=/run/secrets/{ref['File']['Name']}" in cs["Env"]
    assert secrets() == [ref["SecretName"]]


    # a task of the updated service reads the secret's file
    got = wait_until("a task of the updated service", lambda: service_secret(swarm_engine, "db", ref["File"]["Name"]))
    assert got == pw
    applied = json.loads((controller.fleet / "journal" / f"{HOST}.apply.json").read_text())
    assert applied["txid"] == txid and applied["error"] is None
    assert {(a["check_id"], a["subject"]) for a in applied["applied"]} == {("env-password", "service:db")}, applied

    # 4. rollback.yml: the service spec is back as it was, the secret is gone
    controller.playbook("rollback.yml")
    assert spec() == before[0] and spec("web") == web
    wait_until("the secret's removal", lambda: secrets() == [])
    assert not (controller.fleet / "journal" / f"{HOST}.txid").exists()

    # the password was never shown: not by Ansible (verbose), not in its log, not in any file the
    # controller keeps (plans, scans, reports, apply output)
    for out in controller.outputs:
        assert pw not in out
    assert pw not in (controller.work / "ansible.log").read_text()
    for p in controller.fleet.rglob("*"):
        if p.is_file():
            assert pw.encode() not in p.read_bytes(), p
