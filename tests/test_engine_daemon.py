"""CIS section 2 against each private engine (20.10, and 28 on containerd 2 with the containerd
image store): every check that reads docker info, with what each engine reports. The private
engines run with --iptables=false and no daemon.json settings of note (their command line is read:
it is the dockerd serving the scanned socket)."""

from __future__ import annotations

import json

import pytest

from helpers import run_dockfix

pytestmark = pytest.mark.engine


def scan(root, url: str, only: str) -> dict:
    r = run_dockfix("scan", "--benchmark", "1.6.0", "--root", str(root), "--docker-host", url, "--format", "json", "--only", only)
    assert r.returncode in (0, 1), r.stderr
    return {f["cis"]: f for f in json.loads(r.stdout)["findings"]}


def test_section_2_reads_what_each_engine_reports(engine, tmp_path):
    by = scan(tmp_path, engine.url, "2")
    server = engine.server_version
    # 2.1: a daemon run by root is a judgment
    assert by["2.1"]["status"] == "manual"
    # 2.4: from dockerd's command line; 28 also reports its firewall backend (FirewallBackend, API 1.49+)
    assert by["2.4"]["status"] == "fail" and by["2.4"]["evidence"].startswith("iptables is false (dockerd command line (pid ")
    if engine.version == "28":
        assert "firewall backend iptables (docker info)" in by["2.4"]["evidence"], by["2.4"]
    else:
        assert "firewall backend" not in by["2.4"]["evidence"]
    # 2.6: a graph driver on 20.10; a snapshotter of the containerd image store on 28
    if engine.version == "28":
        assert by["2.6"]["evidence"] == "storage driver overlayfs (docker info; a snapshotter of the containerd image store)"
    else:
        assert by["2.6"]["evidence"] == "storage driver overlay2 (docker info)"
    assert by["2.6"]["status"] == "pass"
    # 2.11: devicemapper is gone from 25.0 on: nothing to size, and the skip says why
    if engine.version == "28":
        assert by["2.11"]["status"] == "skip"
        assert by["2.11"]["evidence"].startswith(f"devicemapper was removed in Docker Engine 25.0 (this engine: {server})")
    else:
        assert by["2.11"]["status"] == "pass"
    # 2.13, 2.15: docker info on both
    assert by["2.13"]["status"] == "fail" and by["2.13"]["evidence"] == "logging driver json-file (docker info)"
    assert by["2.15"]["status"] == "fail"
    # 2.17: the default profile is named differently ("default" on 20.10, "builtin" on 28)
    profile = "builtin" if engine.version == "28" else "default"
    assert by["2.17"]["status"] == "manual"
    assert f"default seccomp profile in use (name=seccomp,profile={profile})" in by["2.17"]["evidence"], by["2.17"]


def test_section_2_on_a_swarm_node(swarm_engine, tmp_path):
    by = scan(tmp_path, swarm_engine.url, "2.4,2.15")
    # dockerd refuses live-restore in swarm mode: the item is a decision for the admin (issue 13)
    assert by["2.15"]["status"] == "manual" and "swarm node" in by["2.15"]["evidence"], by["2.15"]
    assert by["2.4"]["status"] == "fail"  # --iptables=false, whatever the backend


def test_nftables_backend_on_a_swarm_node_fails_2_4(tmp_path):
    """Docker 29's nftables backend cannot run swarm mode: 2.4 says so (docker info of a 29 engine)."""
    from dockfix.checks.daemon import iptables
    from dockfix.context import Context
    from dockfix.host import Host

    class Info:
        def info(self):
            return {"FirewallBackend": {"Driver": "nftables"}, "Swarm": {"LocalNodeState": "active"},
                    "ServerVersion": "29.0.0"}

    from helpers import put_units

    put_units(tmp_path)  # Debian's unit: dockerd's command line is known and sets no --iptables
    ctx = Context(Host(str(tmp_path), docker_host="unix:///nonexistent.sock", engine=False))
    ctx.__dict__["engine"] = Info()  # the engine's answer, without an engine 29 on this machine
    ctx._memo["daemon_process"] = None  # no running dockerd behind that socket: the unit decides
    r = iptables.fn(ctx)
    assert r.status.value == "fail" and "nftables firewall backend does not support swarm mode" in r.evidence
