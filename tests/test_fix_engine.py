"""Engine changes through the journal (swarm secrets and services, for the secrets fix), and fixes
that meet a daemon option set on dockerd's command line — against the private dockerd."""

from __future__ import annotations

import json

import pytest

from helpers import BUSYBOX_IMAGE, put

from dockfix.host import Host
from dockfix.changes import CreateSecret, Staging, UpdateService
from dockfix.plan import Plan, PlanItem
from dockfix.scan import Context, scan
from dockfix.workflow import apply_plan, list_transactions, plan_fixes, rollback

pytestmark = pytest.mark.engine


def test_option_on_dockerds_command_line_is_a_manual_fix(engine, tmp_path):
    put(tmp_path, "etc/docker/daemon.json", "{}\n")
    ctx = Context(Host(str(tmp_path), docker_host=engine.url))
    plan = plan_fixes(ctx, scan(ctx, only=["2.4"]).findings, include_disruptive=True)
    assert [it.safety for it in plan.items] == ["manual"]
    assert "command line" in plan.items[0].notes[0]
    assert (tmp_path / "etc/docker/daemon.json").read_text() == "{}\n"


def test_secret_and_service_update_apply_and_roll_back(swarm_engine, tmp_path):
    client = swarm_engine.client()
    svc = client.services.create(BUSYBOX_IMAGE, ["sleep", "3600"], name="dockfix-fixcore-svc",
                                 env=["MYSQL_ROOT_PASSWORD=hunter2hunter2"])
    try:
        host = Host(str(tmp_path), docker_host=swarm_engine.url)
        spec = client.api.inspect_service(svc.id)["Spec"]
        new_spec = json.loads(json.dumps(spec))
        cs = new_spec["TaskTemplate"]["ContainerSpec"]
        cs["Env"] = ["MYSQL_ROOT_PASSWORD_FILE=/run/secrets/dockfix_fixcore_pw"]
        changes = [CreateSecret(name="dockfix_fixcore_pw", data_ref={"kind": "inline"}, data=b"hunter2hunter2",
                                labels={"made-by": "dockfix"}),
                   UpdateService(service_id=svc.id, new_spec=new_spec)]
        stage = Staging(host)
        for c in changes:
            c.bind(host, stage)
        plan = Plan([PlanItem("env-password", "dockfix-fixcore-svc", "t", "disruptive", "i", changes)], root=host.root)
        shown = plan.diff() + plan.dumps()
        assert "hunter2" not in shown
        res = apply_plan(host, plan)
        assert res.error is None, res.error
        assert [s.name for s in client.secrets.list(filters={"name": "dockfix_fixcore_pw"})] == ["dockfix_fixcore_pw"]
        env = client.api.inspect_service(svc.id)["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]
        assert env == ["MYSQL_ROOT_PASSWORD_FILE=/run/secrets/dockfix_fixcore_pw"]
        listing = json.dumps([t.to_json() for t in list_transactions(host)])
        assert "hunter2" not in listing
        rb = rollback(host, "last")
        assert rb.refused_paths == [], rb.refused_paths
        assert client.secrets.list(filters={"name": "dockfix_fixcore_pw"}) == []
        env = client.api.inspect_service(svc.id)["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]
        assert env == ["MYSQL_ROOT_PASSWORD=hunter2hunter2"]
    finally:
        svc.remove()
        for s in client.secrets.list(filters={"name": "dockfix_fixcore_pw"}):
            s.remove()
