"""A plan file is a review record, not a program (issue 15).

Someone with write access to `plans/HOST.json` must not be able to make root do anything dockfix
itself would not do on that host now. Every attack below is tried twice: as written by the
attacker (the plan's signature no longer matches: refused before anything is looked at), and
re-signed with the host's own key (as if the key had leaked, or a bug let an edit through): then
the fresh plan made at apply time differs from the edited one, change for change, and the apply
is refused naming the difference. Either way the exit code is 2 or 3, stderr is one line, and the
tree (journal included) is exactly as before.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from helpers import manifest, put, run_dockfix
from test_fix_core import faulty_tree


def _tree(tmp_path: Path) -> tuple[Path, Path, dict]:
    root = faulty_tree(tmp_path / "root")
    put(root, "etc/audit/", mode=0o755)
    put(root, "etc/shadow", "root:*:1:0:99999:7:::\n", mode=0o640)
    put(root, "etc/cron.d/", mode=0o755)
    put(root, "root/", mode=0o700)
    plan = tmp_path / "plan.json"
    r = run_dockfix("plan", "--root", str(root), "--no-engine", "--include-disruptive", "-o", str(plan))
    assert r.returncode == 0, r.stderr
    return root, plan, json.loads(plan.read_text())


def _change(doc: dict, kind: str, path: str | None = None) -> dict:
    return next(c for it in doc["items"] for c in it["changes"] if c["kind"] == kind and (path is None or c["path"] == path))


def _item(doc: dict, check_id: str) -> dict:
    return next(it for it in doc["items"] if it["check_id"] == check_id)


def _new_item(doc: dict, check_id: str, change: dict) -> None:
    doc["items"].append({"check_id": check_id, "subject": change.get("path", "?"), "title": "t", "safety": "safe",
                         "impact": "", "notes": [], "daemon_action": None, "post": [], "changes": [change]})


def _edit(doc: dict, how: str) -> None:
    w = _change(doc, "write", "/etc/docker/daemon.json")
    if how == "write path":
        w["path"] = "/etc/docker/daemon2.json"
    elif how == "write mode":
        w["mode"] = 0o4777
    elif how == "write owner":
        w["uid"] = 4242
    elif how == "write group":
        w["gid"] = 4242
    elif how == "write content":
        w["after_text"] = w["after_text"].replace('"icc": false', '"icc": true')
        w.pop("after_sha256")
    elif how == "write precondition":
        w["pre"]["mode"] = 0o644
    elif how == "chown owner":
        _change(doc, "chown", "/etc/docker")["uid"] = 1000
    elif how == "chown path":
        _change(doc, "chown", "/etc/docker")["path"] = "/root"
    elif how == "chown precondition":
        _change(doc, "chown", "/etc/docker")["pre"]["uid"] = 0
    elif how == "chmod mode":
        _change(doc, "chmod", "/etc/docker")["mode"] = 0o777
    elif how == "chmod path":
        _change(doc, "chmod", "/etc/docker")["path"] = "/etc"
    elif how == "mkdir mode":
        _change(doc, "mkdir")["mode"] = 0o777
    elif how == "mkdir owner":
        _change(doc, "mkdir")["uid"] = 1000
    elif how == "mkdir path":
        _change(doc, "mkdir")["path"] = "/etc/sudoers.d"
    elif how == "post command":
        _item(doc, "audit-etc-docker")["post"] = []
    elif how == "daemon action":
        _item(doc, "icc")["daemon_action"] = None
    elif how == "safety":
        _item(doc, "icc")["safety"] = "safe"
    elif how == "added chmod /etc 0777":
        _item(doc, "etc-docker-mode")["changes"].append(
            {"kind": "chmod", "path": "/etc", "mode": 0o777, "pre": None})
    elif how == "added chown /root to 1000":
        _new_item(doc, "etc-docker-owner-2", {"kind": "chown", "path": "/root", "uid": 1000, "gid": 1000, "pre": None})
    elif how == "added chmod /etc/shadow 04666":
        _new_item(doc, "x", {"kind": "chmod", "path": "/etc/shadow", "mode": 0o4666,
                             "pre": {"existed": True, "kind": "file", "uid": 0, "gid": 0, "mode": 0o640,
                                     "sha256": None, "size": 22}})
    elif how == "added cron job":
        _new_item(doc, "y", {"kind": "write", "path": "/etc/cron.d/job", "mode": 0o644, "uid": 0, "gid": 0,
                             "secret": False, "after_text": "* * * * * root touch /tmp/pwned\n",
                             "after_sha256": None, "pre": {"existed": False}})
    elif how == "removed a fix":
        doc["items"] = [it for it in doc["items"] if it["check_id"] != "etc-docker-owner"]
    elif how == "selection":
        doc["selection"]["skip"] = ["3.5"]
    elif how == "root not text":
        doc["root"] = None
    elif how == "root a number":
        doc["root"] = 5
    elif how == "duplicated fix":
        doc["items"].append(json.loads(json.dumps(_item(doc, "etc-docker-mode"))))
    else:
        raise AssertionError(how)


EDITS = ["write path", "write mode", "write owner", "write group", "write content", "write precondition",
         "chown owner", "chown path", "chown precondition", "chmod mode", "chmod path", "mkdir mode", "mkdir owner",
         "mkdir path", "post command", "daemon action", "safety", "added chmod /etc 0777", "added chown /root to 1000",
         "added chmod /etc/shadow 04666", "added cron job", "removed a fix", "root not text", "root a number",
         "duplicated fix"]


def _resign(root: Path, doc: dict) -> None:
    from dockfix.plan import sign

    doc["hmac"] = sign(doc, (root / "var/lib/dockfix/plan.key").read_bytes())


def _refused(root: Path, plan: Path, before: dict, codes=(2, 3)) -> str:
    r = run_dockfix("--apply", "--yes", "--root", str(root), "--no-engine", "--plan", str(plan))
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode in codes, (r.returncode, r.stdout, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert manifest(root) == before
    assert not Path("/tmp/pwned").exists()
    return r.stderr


@pytest.mark.parametrize("signed", ["as edited", "re-signed"])
@pytest.mark.parametrize("how", EDITS)
def test_every_edit_of_a_plan_is_refused(how: str, signed: str, tmp_path: Path) -> None:
    root, plan, doc = _tree(tmp_path)
    _edit(doc, how)
    if signed == "re-signed":
        _resign(root, doc)
    plan.write_text(json.dumps(doc))
    os.chmod(plan, 0o600)
    before = manifest(root)
    err = _refused(root, plan, before)
    if signed == "as edited":
        assert str(plan) in err and "signature does not match" in err, err
    else:
        assert "nothing was applied" in err or str(plan) in err, err


def test_an_unchanged_plan_applies(tmp_path: Path) -> None:
    root, plan, doc = _tree(tmp_path)
    r = run_dockfix("--apply", "--yes", "--root", str(root), "--no-engine", "--plan", str(plan))
    assert r.returncode == 0, r.stdout + r.stderr
    assert os.lstat(root / "etc/docker").st_uid == 0
    assert '"icc": false' in (root / "etc/docker/daemon.json").read_text()


def test_a_reviewed_plan_is_planned_again_with_its_selection(tmp_path: Path) -> None:
    """A re-signed edit of the selection itself makes dockfix plan something else: refused."""
    root, plan, doc = _tree(tmp_path)
    _edit(doc, "selection")
    _resign(root, doc)
    plan.write_text(json.dumps(doc))
    os.chmod(plan, 0o600)
    err = _refused(root, plan, manifest(root), codes=(3,))
    assert "is in the plan but dockfix would not do it now" in err, err


@pytest.mark.parametrize("how", ["no signature", "key removed", "unkeyed plan"])
def test_a_plan_without_a_valid_key_is_refused(how: str, tmp_path: Path) -> None:
    root, plan, doc = _tree(tmp_path)
    if how == "no signature":
        doc.pop("hmac")
    elif how == "key removed":
        (root / "var/lib/dockfix/plan.key").unlink()
    else:  # an attacker's own plan: plain hashes, no key, no signature
        doc["keyed"] = False
        doc.pop("hmac")
        for it in doc["items"]:
            for c in it["changes"]:
                if isinstance(c.get("pre"), dict):
                    c["pre"]["sha256"] = None
    plan.write_text(json.dumps(doc))
    os.chmod(plan, 0o600)
    err = _refused(root, plan, manifest(root), codes=(2,))
    assert str(plan) in err
    assert ("another host" in err) if how == "key removed" else ("not signed" in err), err


@pytest.mark.parametrize("owner, mode, words", [((1000, 1000), 0o644, "owned by uid 1000"),
                                                 ((0, 0), 0o664, "writable by other users"),
                                                 ((0, 0), 0o646, "writable by other users")])
def test_a_plan_file_others_own_or_can_write_is_refused(owner, mode, words, tmp_path: Path) -> None:
    root, plan, _ = _tree(tmp_path)
    os.chown(plan, *owner)
    os.chmod(plan, mode)
    err = _refused(root, plan, manifest(root), codes=(2,))
    assert str(plan) in err and words in err, err


@pytest.mark.parametrize("where", ["top", "change"])
def test_a_plan_file_with_a_duplicate_key_is_refused(where: str, tmp_path: Path) -> None:
    """JSON keeps the last of two equal keys: text added before it is read by no one, so the signature
    does not cover it, yet a reader of the file (or another JSON parser) may take it. Refused."""
    root, plan, doc = _tree(tmp_path)
    text = json.dumps(doc)
    if where == "top":
        text = '{"root": "/tmp", ' + text[1:]
    else:
        text = text.replace('"kind": "chmod", ', '"kind": "chmod", "mode": 511, ', 1)
    assert json.loads(text) == doc  # the signature still matches the parsed document
    plan.write_text(text)
    os.chmod(plan, 0o600)
    err = _refused(root, plan, manifest(root), codes=(2,))
    assert str(plan) in err and "more than once" in err, err


@pytest.mark.parametrize("owner, mode, words", [((1000, 1000), 0o600, "owned by uid 1000"),
                                                 ((0, 0), 0o644, "readable or writable by others"),
                                                 ((0, 0), 0o620, "readable or writable by others")])
def test_a_plan_key_others_own_or_can_read_is_not_trusted(owner, mode, words, tmp_path: Path) -> None:
    """Whoever can write the host key (or read it) can sign any plan: such a key signs nothing and
    checks nothing, for `plan -o` and `--apply --plan` alike."""
    root, plan, _ = _tree(tmp_path)
    key = root / "var/lib/dockfix/plan.key"
    os.chown(key, *owner)
    os.chmod(key, mode)
    err = _refused(root, plan, manifest(root), codes=(2,))
    assert "/var/lib/dockfix/plan.key" in err and words in err, err
    r = run_dockfix("plan", "--root", str(root), "--no-engine", "-o", str(tmp_path / "again.json"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and words in r.stderr, r.stderr
    assert not (tmp_path / "again.json").exists()


@pytest.mark.parametrize("how", ["folder writable by everyone", "folder of another user", "link in such a folder"])
def test_a_plan_file_in_a_folder_others_can_write_is_refused(how: str, tmp_path: Path) -> None:
    """Whoever can write the folder can swap the reviewed plan for another plan signed on this host
    (one the reviewer turned down) or for a link to one, owner and mode intact: refused."""
    root, plan, _ = _tree(tmp_path)
    folder = tmp_path / "plans"
    folder.mkdir()
    if how == "folder of another user":
        os.chown(folder, 1000, 1000)
        os.chmod(folder, 0o755)
    else:
        os.chmod(folder, 0o777)
    given = folder / "host.json"
    if how == "link in such a folder":
        given.symlink_to(plan)
    else:
        os.rename(plan, given)
    err = _refused(root, given, manifest(root), codes=(2,))
    assert str(folder) in err and ("writable by" in err or "owned by uid 1000" in err), err
    # the same plan in a folder only root can write applies
    safe = tmp_path / "safe"
    safe.mkdir(mode=0o755)
    os.rename(given if how != "link in such a folder" else plan, safe / "host.json")
    r = run_dockfix("--apply", "--yes", "--root", str(root), "--no-engine", "--plan", str(safe / "host.json"))
    assert r.returncode == 0, r.stderr


def test_an_empty_plan_argument_is_refused_not_taken_as_no_plan(tmp_path: Path) -> None:
    """`dockfix --apply --yes --plan "$PLAN"` with PLAN unset must not plan and apply everything
    unreviewed."""
    root, _, _ = _tree(tmp_path)
    before = manifest(root)
    r = run_dockfix("--apply", "--yes", "--root", str(root), "--no-engine", "--plan", "")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "--plan" in r.stderr, r.stderr
    assert manifest(root) == before
    # without --apply it is the same mistake: a usage error, not the app
    r = run_dockfix("--root", str(root), "--no-engine", "--plan", "")
    assert r.returncode == 2 and "--plan only goes with --apply" in r.stderr, r.stderr
    assert manifest(root) == before


# ---------------------------------------------------------------------- engines are named, never assumed
def test_a_tree_uses_no_engine_unless_one_is_named(tmp_path: Path) -> None:
    """`--root TREE` without --docker-host must not talk to $DOCKER_HOST or this machine's socket
    (an apply on a tree once updated that engine's swarm service)."""
    import socket
    import threading

    root = faulty_tree(tmp_path / "root")
    sock_path = tmp_path / "decoy.sock"
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(sock_path))
    srv.listen(8)
    srv.settimeout(0.2)
    touched: list[bool] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            touched.append(True)
            conn.close()

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        env = {"DOCKER_HOST": f"unix://{sock_path}"}
        for args in (["scan", "--format", "json"], ["plan"], ["--apply", "--yes", "--include-disruptive"]):
            r = run_dockfix(*args, "--root", str(root), env=env)
            assert r.returncode in (0, 1), r.stderr
        assert not touched, "dockfix talked to $DOCKER_HOST while working on a tree"
        # named: it is used
        r = run_dockfix("scan", "--root", str(root), "--docker-host", f"unix://{sock_path}", "--only", "2.1",
                        "--format", "json")
        assert touched
    finally:
        stop.set()
        t.join()
        srv.close()


def test_a_plan_records_its_engine(tmp_path: Path) -> None:
    root, plan, doc = _tree(tmp_path)
    assert doc["engine"] is None
    assert doc["selection"] == {"only": [], "skip": [], "include_disruptive": True, "paths": [], "compose": [],
                                "benchmark": "1.8.0", "offline": False, "waivers": None}


# ---------------------------------------------------------------------- engine change kinds (private swarm)
@pytest.mark.engine
def test_swarm_password_moves_into_a_secret_from_a_reviewed_plan(swarm_engine, tmp_path: Path) -> None:
    """`plan -o` then `--apply --plan` of a swarm service's password fix (the Ansible apply play's
    path) works — no circular import — and edits of the engine change kinds, or another engine,
    are refused with the service and secrets untouched."""
    from helpers import BUSYBOX_IMAGE

    pw = "s3cr3t-" + os.urandom(6).hex()
    swarm_engine.cli("tag", BUSYBOX_IMAGE, "mysql:8.0")
    swarm_engine.cli("service", "create", "-d", "--no-resolve-image", "--name", "db", "-e", f"MYSQL_PASSWORD={pw}",
                     "mysql:8.0", "sleep", "3600")
    # the plan must see the service's task container too (a container with the password in its
    # environment is a finding of its own): wait until it runs, or the re-plan at apply differs
    deadline = time.time() + 90
    while not swarm_engine.cli("ps", "-q", "--filter", "label=com.docker.swarm.service.name=db",
                               "--filter", "status=running").stdout.strip():
        assert time.time() < deadline, "the service's task never started"
        time.sleep(0.3)
    root = tmp_path / "root"
    put(root, "var/lib/")
    plan = tmp_path / "plan.json"
    where = ["--root", str(root), "--docker-host", swarm_engine.url]
    r = run_dockfix("plan", "--include-disruptive", "--only", "env-password", "-o", str(plan), *where)
    assert r.returncode == 0, r.stderr
    doc = json.loads(plan.read_text())
    assert doc["engine"] == swarm_engine.url and pw not in plan.read_text()
    kinds = [c["kind"] for it in doc["items"] for c in it["changes"]]
    assert kinds == ["create-secret", "update-service"], kinds

    def spec() -> str:
        return json.dumps(json.loads(swarm_engine.cli("service", "inspect", "db").stdout)[0]["Spec"], sort_keys=True)

    def secrets() -> str:
        return swarm_engine.cli("secret", "ls", "-q").stdout

    before = (spec(), secrets(), manifest(root))
    def _swarm_changes(d: dict) -> list:
        return next(it["changes"] for it in d["items"] if it["changes"])

    edits = {
        "secret name": lambda d: _swarm_changes(d)[0].update(name="other_name"),
        "secret source": lambda d: _swarm_changes(d)[0]["data_ref"].update(var="MYSQL_USER"),
        "secret labels": lambda d: _swarm_changes(d)[0]["labels"].update(x="y"),
        "service spec": lambda d: _swarm_changes(d)[1]["new_spec"]["TaskTemplate"]["ContainerSpec"].update(
            Image="evil:latest"),
        "service id": lambda d: _swarm_changes(d)[1].update(service_id="abcdef"),
    }
    for how, edit in edits.items():
        for resign in (False, True):
            d = json.loads(json.dumps(doc))
            edit(d)
            if resign:
                _resign(root, d)
            plan.write_text(json.dumps(d))
            os.chmod(plan, 0o600)
            r = run_dockfix("--apply", "--yes", "--plan", str(plan), *where)
            assert r.returncode in (2, 3) and "Traceback" not in r.stderr, (how, r.returncode, r.stderr)
            assert (spec(), secrets(), manifest(root)) == before, how
    # the reviewed plan, applied through another engine (or none): refused
    plan.write_text(json.dumps(doc))
    os.chmod(plan, 0o600)
    r = run_dockfix("--apply", "--yes", "--plan", str(plan), "--root", str(root), "--no-engine")
    assert r.returncode == 3 and "engine objects" in r.stderr, r.stderr
    assert (spec(), secrets()) == before[:2]
    # the reviewed plan as it was: applied
    r = run_dockfix("--apply", "--yes", "--plan", str(plan), *where)
    assert r.returncode in (0, 1), r.stdout + r.stderr
    assert "circular" not in r.stderr and pw not in r.stdout + r.stderr
    env = json.loads(spec())["TaskTemplate"]["ContainerSpec"]["Env"]
    assert not any(e.startswith("MYSQL_PASSWORD=") for e in env), env
    assert secrets().strip()
    r = run_dockfix("rollback", "--last", *where)
    assert r.returncode == 0, r.stderr
    assert (spec(), secrets()) == before[:2]


# ---------------------------------------------------------------------- the selection a plan records
def _changed(before: dict, after: dict) -> dict[str, tuple]:
    """{path: (before, after)} of what differs between two manifests, the journal left out."""
    return {p: (before.get(p), after.get(p)) for p in set(before) | set(after)
            if before.get(p) != after.get(p) and not p.startswith("var/lib/dockfix")}


@pytest.mark.parametrize("select", [["--only", "etc-docker-mode"], ["--only", "3.6"],
                                    ["--only", "etc-docker-mode,daemon-json-mode,daemon-json-owner", "--skip", "daemon-json-owner"]])
def test_a_reviewed_subset_applies_exactly_that_subset(select: list[str], tmp_path: Path) -> None:
    """A plan of a few fixes is planned again at apply with the same --only/--skip: it is applied
    (not refused because the full plan has more) and nothing beyond it is changed."""
    root = faulty_tree(tmp_path / "root")
    plan = tmp_path / "plan.json"
    r = run_dockfix("plan", "--root", str(root), "--no-engine", *select, "-o", str(plan))
    assert r.returncode == 0, r.stderr
    doc = json.loads(plan.read_text())
    planned = {it["check_id"] for it in doc["items"]}
    assert planned and planned <= {"etc-docker-mode", "daemon-json-mode"}, planned
    before = manifest(root)
    r = run_dockfix("--apply", "--yes", "--root", str(root), "--no-engine", "--plan", str(plan), "--format", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert {a["check_id"] for a in json.loads(r.stdout)["applied"]} == planned
    changed = _changed(before, manifest(root))
    want = {"etc-docker-mode": "etc/docker", "daemon-json-mode": "etc/docker/daemon.json"}
    assert set(changed) == {want[c] for c in planned}, changed
    for p, (old, new) in changed.items():  # the mode only: owner (1000) and content as they were
        assert old[:3] == new[:3] and old[4] == new[4] and old[3] != new[3], (p, old, new)


def test_a_plan_with_a_declined_fix_applies_without_it(tmp_path: Path) -> None:
    """A plan written after a fix was declined (FixSession.decline) records the declined fix; the
    apply plans again with it declined, so the reviewed rest is applied — built on the file as it
    is, the declined fix's change never made."""
    from dockfix.context import Context
    from dockfix.host import Host
    from dockfix.plan import host_key
    from dockfix.workflow import FixSession
    from helpers import put_units

    root = tmp_path / "root"
    put_units(root)
    put(root, "var/lib/")
    put(root, "etc/docker/", mode=0o755)
    put(root, "etc/docker/daemon.json", '{"icc": true, "log-level": "debug"}\n')
    session = FixSession(Context(host=Host(str(root), engine=False)))
    full, _ = session.plan_selection(["icc", "log-level"], [], include_disruptive=True)
    assert [it.check_id for it in full.applicable()] == ["icc", "log-level"]
    replan = session.decline(full, [("icc", next(it.subject for it in full.items if it.check_id == "icc"))])
    assert [it.check_id for it in replan.plan.applicable()] == ["log-level"]
    assert replan.plan.selection["declined"] and replan.plan.selection["only"] == ["icc", "log-level"]
    plan = tmp_path / "plan.json"
    plan.write_text(replan.plan.dumps(host_key(session.host, create=True)))
    os.chmod(plan, 0o600)
    r = run_dockfix("--apply", "--yes", "--root", str(root), "--no-engine", "--plan", str(plan), "--format", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert [a["check_id"] for a in json.loads(r.stdout)["applied"]] == ["log-level"]
    assert json.loads((root / "etc/docker/daemon.json").read_text()) == {"icc": True, "log-level": "info"}
    # the declined fix taken out of the selection (re-signed): the fresh plan has icc again -> refused
    r = run_dockfix("rollback", "--last", "--root", str(root), "--no-engine")
    assert r.returncode == 0, r.stderr
    doc = json.loads(plan.read_text())
    doc["selection"].pop("declined")
    _resign(root, doc)
    plan.write_text(json.dumps(doc))
    err = _refused(root, plan, manifest(root), codes=(3,))
    assert "icc" in err and "not in the plan" in err, err
