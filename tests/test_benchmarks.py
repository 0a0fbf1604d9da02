"""CIS Docker Benchmark versions: every check's number in 1.6.0, 1.7.0 and 1.8.0, --benchmark in
every output and in --only/--skip, and case tables for what 1.7.0 and 1.8.0 changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import dockfix.checks  # noqa: F401  (registers every check)
from dockfix import benchmarks
from dockfix.host import Host
from dockfix.model import REGISTRY
from dockfix.scan import Context, run_check, selected_checks
from helpers import run_dockfix
from test_cases import D, F, J, build

REFERENCE = Path("/work/shared/reference")


# ---------------------------------------------------------------------- the table
def test_every_check_has_a_number_in_every_version_or_says_it_has_none():
    stray = sorted(set(benchmarks.EXCEPTIONS) - set(REGISTRY))
    assert not stray, f"rows of EXCEPTIONS naming no check: {stray}"
    assert set(benchmarks.table()) == set(REGISTRY)
    for cid, row in benchmarks.table().items():
        assert len(row) == len(benchmarks.VERSIONS), cid
        for version, num in zip(benchmarks.VERSIONS, row):
            assert num is benchmarks.NOT_IN or (isinstance(num, str) and all(p.isdigit() for p in num.split("."))), \
                (cid, version, num)


def test_the_1_6_0_column_is_the_number_each_check_declares():
    for c in REGISTRY.values():
        assert benchmarks.number(c.id, "1.6.0") == c.cis, c.id


def test_1_7_0_renumbers_nothing_and_1_8_0_inserts_2_7():
    for cid in benchmarks.table():
        old, mid, new = (benchmarks.number(cid, v) for v in benchmarks.VERSIONS)
        if cid == "devicemapper":
            assert (old, mid, new) == (None, None, "2.7")
            continue
        assert old == mid, cid
        if old and old.startswith("2.") and 7 <= int(old.split(".")[1]) <= 18:
            assert new == f"2.{int(old.split('.')[1]) + 1}", cid
        else:
            assert new == old, cid
    # each number names one item (4.10 has two checks: secrets in the image's environment and in its files)
    for v in benchmarks.VERSIONS:
        nums = [benchmarks.number(c, v) for c in benchmarks.table() if benchmarks.number(c, v)]
        dup = {n for n in nums if nums.count(n) > 1}
        assert dup <= {"4.10"}, (v, dup)


@pytest.mark.skipif(not (REFERENCE / "cis-docker-1.6.0.tsv").exists(), reason="no reference item list here")
def test_numbers_cover_the_item_lists():
    items_160 = [ln.split("\t")[0] for ln in (REFERENCE / "cis-docker-1.6.0.tsv").read_text().splitlines()[1:] if ln]
    ours = {benchmarks.number(c, "1.6.0") for c in benchmarks.table()}
    assert set(items_160) <= ours, sorted(set(items_160) - ours)
    ours_180 = {benchmarks.number(c, "1.8.0") for c in benchmarks.table()}
    assert "2.19" in ours_180 and "2.7" in ours_180 and len(items_160) + 1 == len(ours_180 - {None})


@pytest.mark.parametrize("cid, assessed", [
    ("audit-run-containerd", ("automated", "manual", "manual")),          # 1.1.4 became Manual in 1.7.0
    ("audit-containerd-shim", ("manual", "automated", "automated")),      # 1.1.15
    ("audit-containerd-shim-runc-v2", ("manual", "automated", "automated")),  # 1.1.17
    ("audit-runc", ("manual", "automated", "automated")),                 # 1.1.18
    ("audit-containerd-shim-runc-v1", ("manual", "manual", "manual")),    # 1.1.16 unchanged
    ("devicemapper", (None, None, "manual")),
    ("env-password", (None, None, None)),
])
def test_assessment_per_version(cid, assessed):
    assert tuple(benchmarks.assessment(cid, v) for v in benchmarks.VERSIONS) == assessed


def test_selection_by_number_follows_the_version():
    pick = lambda names, v: [c.id for c in selected_checks(names, (), v)]  # noqa: E731
    assert pick(["2.7"], "1.6.0") == ["daemon-tls"]
    assert pick(["2.7"], "1.8.0") == ["devicemapper"]
    assert pick(["2.10"], "1.7.0") == ["cgroup-parent"] and pick(["2.10"], "1.8.0") == ["userns-remap"]
    assert pick(["2.19"], "1.8.0") == ["experimental"]
    with pytest.raises(ValueError, match="unknown check id '2.19'"):
        pick(["2.19"], "1.6.0")
    assert [c.id for c in selected_checks(["2"], ["2.7"], "1.8.0")][:7] == [
        "daemon-rootless", "icc", "log-level", "iptables", "insecure-registries", "aufs", "daemon-tls"]
    # the function waivers can call: names of a version -> check ids
    assert benchmarks.resolve(["2.16", "icc"], "1.8.0") == ["live-restore", "icc"]
    assert benchmarks.resolve(["2.16"], "1.6.0") == ["userland-proxy"]


# ---------------------------------------------------------------------- every output
def test_benchmark_option_in_text_json_sarif_and_errors(tmp_path):
    build(tmp_path, {"/etc/docker": D(), "/etc/docker/daemon.json":
                     J({"storage-driver": "devicemapper", "hosts": ["tcp://0.0.0.0:2375"],
                        "experimental": True})})
    r = run_dockfix("scan", "--root", str(tmp_path), "--no-engine", "--only", "2.7,2.8", "--format", "json")
    doc = json.loads(r.stdout)
    assert doc["benchmark"] == {"name": "CIS Docker Benchmark", "version": "1.8.0",
                                "mapping": "mapped to CIS Docker Benchmark v1.8.0"}
    assert {(f["cis"], f["id"], f["status"], f["assessment"]) for f in doc["findings"]} == {
        ("2.7", "devicemapper", "fail", "manual"), ("2.8", "daemon-tls", "fail", "manual")}
    doc = json.loads(run_dockfix("scan", "--root", str(tmp_path), "--no-engine", "--benchmark", "1.6.0",
                                 "--only", "2.7,devicemapper", "--format", "json").stdout)
    assert doc["benchmark"]["version"] == "1.6.0"
    assert {(f["cis"], f["id"]) for f in doc["findings"]} == {("2.7", "daemon-tls"), (None, "devicemapper")}
    text = run_dockfix("scan", "--root", str(tmp_path), "--no-engine", "--benchmark", "1.7.0", "--only", "2.7").stdout
    assert "mapped to CIS Docker Benchmark v1.7.0" in text.splitlines()[0]
    assert "2.7    daemon-tls" in text and "compliant" not in text.lower()
    sarif = json.loads(run_dockfix("scan", "--root", str(tmp_path), "--no-engine", "--only", "2.19",
                                   "--format", "sarif").stdout)
    run = sarif["runs"][0]
    assert run["properties"]["benchmark"]["version"] == "1.8.0"
    rules = [r for r in run["tool"]["driver"]["rules"] if r["id"] == "experimental"]
    assert rules and rules[0]["properties"]["cis"] == "2.19"
    r = run_dockfix("scan", "--root", str(tmp_path), "--no-engine", "--benchmark", "1.5.0")
    assert r.returncode == 2 and r.stdout == "" and len(r.stderr.strip().splitlines()) == 1
    assert "--benchmark: unknown benchmark version '1.5.0' (choose from 1.6.0, 1.7.0, 1.8.0)" in r.stderr


# ---------------------------------------------------------------------- what 1.7.0 and 1.8.0 changed
LIB64_COMPOSE = "services:\n  app:\n    image: busybox\n    volumes:\n      - /lib64:/host-lib64:ro\n"
OK_COMPOSE = "services:\n  app:\n    image: busybox\n    volumes:\n      - ./data:/data\n"
WATCH_SRV = "-w /srv/docker -p wa -k docker\n"
WATCH_VAR = "-w /var/lib/docker -p wa -k docker\n"

CHANGED = [
    # 5.6: /lib64 joined the sensitive host folders (1.7.0)
    ("sensitive-mounts", "lib64", {"/srv/a/compose.yaml": F(LIB64_COMPOSE)}, "fail", "/lib64 -> /host-lib64",
     ["/srv/a/compose.yaml"]),
    ("sensitive-mounts", "data", {"/srv/a/compose.yaml": F(OK_COMPOSE)}, "pass", "no sensitive host directory", 
     ["/srv/a/compose.yaml"]),
    # 1.1.5: the data root, or the data-root set in daemon.json (1.8.0)
    ("audit-data-root", "custom-unwatched", {"/etc/docker/daemon.json": J({"data-root": "/srv/docker"}),
                                             "/srv/docker": D(0o711),
                                             "/etc/audit/rules.d/docker.rules": F(WATCH_VAR)},
     "fail", "no audit rule watches /srv/docker", []),
    ("audit-data-root", "custom-watched", {"/etc/docker/daemon.json": J({"data-root": "/srv/docker"}),
                                           "/srv/docker": D(0o711),
                                           "/etc/audit/rules.d/docker.rules": F(WATCH_SRV)},
     "pass", "/srv/docker is watched", []),
    # 2.7 (new in 1.8.0)
    ("devicemapper", "devicemapper", {"/etc/docker/daemon.json": J({"storage-driver": "devicemapper"})},
     "fail", "removed from Docker Engine 25.0", []),
    ("devicemapper", "overlay2", {"/etc/docker/daemon.json": J({"storage-driver": "overlay2"})},
     "pass", "storage driver overlay2", []),
]


@pytest.mark.parametrize("cid, label, tree, status, phrase, compose", CHANGED, ids=[f"{c[0]}/{c[1]}" for c in CHANGED])
@pytest.mark.parametrize("version", ["1.6.0", "1.8.0"])
def test_changed_items(tmp_path, cid, label, tree, status, phrase, compose, version):
    build(tmp_path, tree)
    ctx = Context(Host(str(tmp_path), engine=False), compose=compose, benchmark=version)
    findings = run_check(REGISTRY[cid], ctx)
    assert {str(f.status) for f in findings} == {status}, [(f.subject, f.status, f.evidence) for f in findings]
    assert any(phrase in f.evidence for f in findings), [f.evidence for f in findings]
    assert {f.cis for f in findings} == {benchmarks.number(cid, version)}


def test_devicemapper_fix_is_manual(tmp_path):
    from dockfix.workflow import plan_fixes
    from dockfix.scan import scan

    build(tmp_path, {"/etc/docker/daemon.json": J({"storage-driver": "devicemapper"})})
    ctx = Context(Host(str(tmp_path), engine=False))
    found = scan(ctx, only=["2.7"]).findings
    assert [(f.id, str(f.status), f.fix["safety"]) for f in found] == [("devicemapper", "fail", "manual")]
    plan = plan_fixes(ctx, found, include_disruptive=True)
    (it,) = plan.items
    assert str(it.safety) == "manual" and not it.changes
    assert any("docker save" in n for n in it.notes), it.notes


@pytest.mark.engine
def test_4_1_reads_the_effective_uid_of_the_first_process(engine, tmp_path):
    """v1.8.0 4.1 looks at the effective UID of the container's first process, not only its USER."""
    from helpers import BUSYBOX_IMAGE

    engine.cli("run", "-d", "--name", "eu-root", "--network", "none", BUSYBOX_IMAGE, "sleep", "600")
    engine.cli("run", "-d", "--name", "eu-1000", "--network", "none", "-u", "1000", BUSYBOX_IMAGE, "sleep", "600")
    # no USER set, but the entrypoint drops to nobody before the workload starts
    engine.cli("run", "-d", "--name", "eu-drops", "--network", "none", BUSYBOX_IMAGE, "/bin/busybox", "su", "-s",
               "/bin/sh", "nobody", "-c", "exec sleep 600")
    ctx = Context(Host(str(tmp_path), docker_host=engine.url))
    got = {f.subject: (str(f.status), f.evidence) for f in run_check(REGISTRY["container-user"], ctx)}
    assert got["container:eu-root"][0] == "fail" and "effective UID 0" in got["container:eu-root"][1]
    assert got["container:eu-1000"][0] == "pass" and "effective UID 1000" in got["container:eu-1000"][1]
    status, ev = got["container:eu-drops"]
    assert status == "pass" and "root (no user set)" in ev and "effective UID 65534" in ev, ev


def test_fleet_report_keeps_one_numbering(tmp_path):
    build(tmp_path / "h", {"/etc/docker/daemon.json": J({"hosts": ["tcp://0.0.0.0:2375"]})})
    for name, version in (("a", "1.8.0"), ("b", "1.8.0"), ("c", "1.6.0")):
        r = run_dockfix("scan", "--root", str(tmp_path / "h"), "--no-engine", "--only", "daemon-tls",
                        "--benchmark", version, "--format", "json", "-o", str(tmp_path / f"{name}.json"))
        assert r.returncode == 1, r.stderr
    fleet = json.loads(run_dockfix("report", "--format", "json", str(tmp_path / "a.json"), str(tmp_path / "b.json")).stdout)
    assert fleet["benchmark"] == "1.8.0" and [c["cis"] for c in fleet["checks"]] == ["2.8"]
    text = run_dockfix("report", str(tmp_path / "a.json")).stdout
    assert "mapped to CIS Docker Benchmark v1.8.0" in text.splitlines()[0]
    r = run_dockfix("report", str(tmp_path / "a.json"), str(tmp_path / "c.json"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert f"{tmp_path / 'c.json'}: numbered as in CIS Docker Benchmark v1.6.0, but {tmp_path / 'a.json'} as in v1.8.0" \
        in r.stderr
