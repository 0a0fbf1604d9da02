"""The Ansible role drives three real hosts: scan + merged report, reviewed plan, apply, rollback.

The hosts are containers on the private engine made from a Debian rootfs with python3
(debootstrap, cached under /var/cache/dockfix-test/). Ansible reaches them with the docker_cli
connection plugin in contrib/ansible. dockfix is installed on them by the role with pip from a
wheelhouse built here (the containers have no network), and runs inside as root with
--no-engine: each container's own / is the host.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from fleet_hosts import import_image, rootfs_tar, wheelhouse
from fleet_html import check_html_against_json, parse_report, screenshot
from helpers import REPO

# Six playbook runs over three hosts: far longer than a unit test, well within CI's budget on an
# idle machine; the generous timeout is for a machine shared with other test runs.
from conftest import TEST_ENGINES

# The fleet test is about Ansible, dockfix's install and the report merge, not about what an engine
# reports: it runs against one engine only (the newest asked for), to keep the suite's time.
pytestmark = [pytest.mark.slow, pytest.mark.engine, pytest.mark.timeout(1800),
              pytest.mark.parametrize("_engine_session", TEST_ENGINES[-1:], indirect=True)]

PLAYBOOKS = REPO / "contrib" / "ansible"
# ansible-core installed by the test extra, next to this Python (no PATH or pyenv shim needed)
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook") \
    if (Path(sys.executable).parent / "ansible-playbook").exists() else (shutil.which("ansible-playbook") or "ansible-playbook")

#: Each host's faults: shell run as root inside the container before Ansible first sees it.
FAULTS = {
    # /etc/docker owned by an ordinary user and writable by everyone
    "web-1": "mkdir -p /etc/docker && echo '{\"icc\": false}' > /etc/docker/daemon.json"
             " && chown 1000:1000 /etc/docker && chmod 0733 /etc/docker",
    # a world-writable docker.service
    "web-2": "mkdir -p /etc/docker /lib/systemd/system && echo '{\"icc\": false}' > /etc/docker/daemon.json"
             " && printf '[Service]\\nExecStart=/usr/bin/dockerd\\n' > /lib/systemd/system/docker.service"
             " && chmod 0666 /lib/systemd/system/docker.service",
    # daemon.json writable by everyone and owned by a user, with icc left on (docker.service passes no
    # --icc, so the icc fix may edit daemon.json)
    "db-1": "mkdir -p /etc/docker /lib/systemd/system && echo '{\"icc\": true}' > /etc/docker/daemon.json"
            " && printf '[Service]\\nExecStart=/usr/bin/dockerd -H fd://\\n' > /lib/systemd/system/docker.service"
            " && chown 1000:1000 /etc/docker/daemon.json && chmod 0666 /etc/docker/daemon.json",
}
#: The checks each host fails because of its faults (and no other host fails).
EXPECTED = {
    "web-1": {"etc-docker-owner", "etc-docker-mode"},
    "web-2": {"docker-service-mode"},
    "db-1": {"daemon-json-owner", "daemon-json-mode", "icc"},
}
#: Paths whose owner, mode and content the test compares before, after apply, after rollback.
WATCHED = ["/etc/docker", "/etc/docker/daemon.json", "/lib/systemd/system/docker.service"]


@dataclass
class Fleet:
    engine: object
    dir: Path  # the controller's working folder: inventory, results, plans, journal ids
    containers: dict[str, str]
    env: dict[str, str]
    timings: dict[str, float]

    def playbook(self, name: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
        started = time.monotonic()
        r = subprocess.run(
            [ANSIBLE_PLAYBOOK, "-i", str(self.dir / "inventory.ini"), str(PLAYBOOKS / name), *args],
            capture_output=True, text=True, env=self.env, cwd=self.dir, timeout=600)
        label = f"{name} {' '.join(args)}".strip()
        self.timings[label] = time.monotonic() - started
        print(f"fleet: ansible-playbook {label}: {self.timings[label]:.1f} s", file=sys.stderr, flush=True)
        if ok:
            assert r.returncode == 0, f"{name} failed:\n{r.stdout[-6000:]}\n{r.stderr[-3000:]}"
        return r

    def sh(self, host: str, script: str, check: bool = True) -> str:
        r = self.engine.cli("exec", self.containers[host], "/bin/sh", "-c", script, check=check)
        return r.stdout

    def state(self, host: str) -> dict[str, str]:
        """Owner, mode and content hash of the watched paths on a host, as `stat` and sha256sum see them."""
        out = {}
        for p in WATCHED:
            line = self.sh(host, f"if [ -e {p} ]; then stat -c '%u:%g %a %F' {p};"
                                 f" if [ -f {p} ]; then sha256sum < {p} | cut -c1-16; fi; else echo absent; fi").split()
            out[p] = " ".join(line)
        return out

    def report(self, subdir: str) -> dict:
        return json.loads((self.dir / "fleet" / subdir / "report.json").read_text())


def failing(fleet: dict) -> dict[str, set[str]]:
    """{host: check ids failing there}, from a fleet report, limited to the checks under test."""
    watched = set().union(*EXPECTED.values())
    out: dict[str, set[str]] = {h["name"]: set() for h in fleet["hosts"]}
    for c in fleet["checks"]:
        for fh in c["failing_hosts"]:
            if c["id"] in watched:
                out[fh["host"]].add(c["id"])
    return out


@pytest.fixture(scope="module")
def fleet(_engine_session, tmp_path_factory, request):
    if not os.access(ANSIBLE_PLAYBOOK, os.X_OK):
        pytest.fail("ansible-playbook is not installed (pip install -e '.[test]' installs ansible-core)")
    eng = _engine_session
    eng.reset()
    timings: dict[str, float] = {}
    try:
        tar, built = rootfs_tar(log=lambda m: print(m, file=sys.stderr))
    except RuntimeError as e:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and the fleet test hosts cannot be built: {e}", pytrace=False)
        pytest.skip(f"the fleet test hosts cannot be built: {e}")
    if built is not None:
        timings["debootstrap rootfs (first run only)"] = built
    started = time.monotonic()
    image = import_image(eng, tar)
    timings["docker import"] = time.monotonic() - started

    work = tmp_path_factory.mktemp("controller")
    started = time.monotonic()
    wheels = wheelhouse(work / "wheelhouse")
    timings["wheelhouse (dockfix built; dependencies downloaded once, then cached)"] = time.monotonic() - started

    containers = {}
    for host, script in FAULTS.items():
        name = f"dfx-fleet-{host}"
        eng.cli("rm", "-f", name, check=False)
        eng.cli("run", "-d", "--name", name, "--hostname", host, "--network", "none", image, "sleep", "infinity")
        eng.cli("exec", name, "/bin/sh", "-c", script)
        containers[host] = name

    lines = ["[docker_hosts]"] + [f"{h} ansible_host={c}" for h, c in containers.items()] + [
        "", "[docker_hosts:vars]",
        "ansible_connection=docker_cli",
        f"ansible_docker_host={eng.url}",
        "ansible_python_interpreter=/usr/bin/python3",
        f"dockfix_wheelhouse={wheels}",
        "dockfix_pip_spec=dockfix",
        "dockfix_host_args=--no-engine",
        "dockfix_plan_args=--include-disruptive",  # icc is a disruptive fix (dockerd must restart)
        f"dockfix_fleet_dir={work / 'fleet'}",
        f"dockfix_controller_cmd={sys.executable} -m dockfix",
    ]
    (work / "inventory.ini").write_text("\n".join(lines) + "\n")
    env = dict(os.environ)
    env.pop("DOCKER_HOST", None)
    env.update({
        "ANSIBLE_CONFIG": str(PLAYBOOKS / "ansible.cfg"),
        "ANSIBLE_HOME": str(work / ".ansible"),
        "ANSIBLE_LOCAL_TEMP": str(work / ".ansible" / "tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "PYTHONPATH": str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
        "NO_COLOR": "1",
    })
    f = Fleet(eng, work, containers, env, timings)
    yield f
    capman = request.config.pluginmanager.getplugin("capturemanager")
    with capman.global_and_fixture_disabled():  # the figures CI time depends on, shown in every run
        print("\nfleet test timings: " + ", ".join(f"{k}: {v:.1f} s" for k, v in timings.items()), flush=True)
    for name in containers.values():
        eng.cli("rm", "-f", name, check=False)


def test_check_mode_installs_nothing(fleet):
    """`--check` on fresh hosts: Ansible says what it would do and the hosts stay as they are."""
    before = {h: fleet.state(h) for h in FAULTS}
    r = fleet.playbook("scan.yml", "--check")
    assert "failed=0" in r.stdout
    for h in FAULTS:
        assert fleet.sh(h, "ls -d /opt/dockfix /var/lib/dockfix 2>/dev/null; true") == ""
        assert fleet.state(h) == before[h]
    assert not (fleet.dir / "fleet" / "scan" / "report.json").exists()  # nothing was scanned


def test_scan_report_apply_rollback(fleet, request):
    before = {h: fleet.state(h) for h in FAULTS}

    # 1. install + scan + merged report
    fleet.playbook("scan.yml")
    scan = fleet.report("scan")
    assert sorted(h["name"] for h in scan["hosts"]) == sorted(FAULTS)  # named by the hosts' own hostnames
    assert failing(scan) == EXPECTED
    for kind in ("txt", "html"):
        assert (fleet.dir / "fleet" / "scan" / f"report.{kind}").stat().st_size > 0
    html_report = fleet.dir / "fleet" / "scan" / "report.html"
    check_html_against_json(html_report.read_text(), scan)
    screenshot(html_report, "fleet-ansible-report.png", request)
    page = parse_report(html_report.read_text())
    rows = {r["attrs"]["data-host"]: r for r in page.tables["hosts"]["rows"]}
    for h in FAULTS:
        sec3 = next(c for c in rows[h]["cells"] if c["attrs"].get("data-section") == "3")
        assert "fail" in sec3["attrs"]["class"].split()
    assert all(fleet.state(h) == before[h] for h in FAULTS)  # scanning changed nothing

    # 2. plans, fetched for review
    fleet.playbook("plan.yml")
    for h in FAULTS:
        plan = json.loads((fleet.dir / "fleet" / "plans" / f"{h}.json").read_text())
        planned = {item["check_id"] for item in plan["items"]}
        assert EXPECTED[h] <= planned, (h, planned)  # every fault has a fix (icc: disruptive, planned on request)
    assert all(fleet.state(h) == before[h] for h in FAULTS)

    # 3. apply in check mode: nothing happens
    fleet.playbook("apply.yml", "--check")
    assert all(fleet.state(h) == before[h] for h in FAULTS)
    assert not (fleet.dir / "fleet" / "journal").exists() or not list((fleet.dir / "fleet" / "journal").glob("*.txid"))

    # 4. apply the reviewed plans; the rescan shows the faults fixed
    fleet.playbook("apply.yml")
    after = fleet.report("after-apply")
    assert failing(after) == {h: set() for h in FAULTS}
    for h in FAULTS:
        assert (fleet.dir / "fleet" / "journal" / f"{h}.txid").read_text().strip()
        assert fleet.state(h) != before[h]
    assert fleet.state("web-1")["/etc/docker"].startswith("0:0 711 ")  # 0733 without the write bits
    assert fleet.state("web-2")["/lib/systemd/system/docker.service"].startswith("0:0 644 ")

    # 5. roll back from the fetched journal ids: the faults are back, byte for byte
    fleet.playbook("rollback.yml")
    back = fleet.report("after-rollback")
    assert failing(back) == EXPECTED
    for h in FAULTS:
        assert fleet.state(h) == before[h]
        assert not (fleet.dir / "fleet" / "journal" / f"{h}.txid").exists()

    # 6. the reviewed plan is applied exactly or not at all: a host whose files moved since its
    #    plan was written is refused (its play fails, nothing changes there)
    fleet.sh("web-2", "echo ' ' >> /etc/docker/daemon.json")
    moved = fleet.state("web-2")
    r = fleet.playbook("apply.yml", "--limit", "web-2", ok=False)
    assert r.returncode != 0 and "failed=1" in r.stdout
    assert "the host changed since the plan was made" in r.stdout
    assert fleet.state("web-2") == moved
    assert not (fleet.dir / "fleet" / "journal" / "web-2.txid").exists()
