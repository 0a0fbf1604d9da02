"""Swarm services (section 5 rules), swarm settings (section 7) and a stack traced back to its compose
file, on the private swarm engine: everything made once for the module, looked at by one scan."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from helpers import BUSYBOX_IMAGE, run_dockfix

pytestmark = pytest.mark.engine

STACK_COMPOSE = f"""\
version: "3.8"
services:
  web:
    image: {BUSYBOX_IMAGE}
    command: ["sleep", "600"]
    cap_add:
      - NET_ADMIN
    volumes:
      - /var/run/docker.sock:/var/run/docker.sock
    deploy:
      resources:
        limits:
          memory: 32M
"""


@pytest.fixture(scope="module")
def scanned(_swarm_session):
    eng = _swarm_session
    eng.reset()
    eng.cli("network", "create", "-d", "overlay", "--opt", "encrypted", "dfx-enc")
    eng.cli("network", "create", "-d", "overlay", "dfx-plain")
    eng.cli("secret", "create", "dfx-secret", "-", input="not-a-real-secret\n")
    eng.cli("service", "create", "--detach", "--name", "bad", "--cap-add", "SYS_ADMIN", "--mount",
            "type=bind,src=/etc,dst=/host-etc", "--publish", "80:80", BUSYBOX_IMAGE, "sleep", "600")
    eng.cli("service", "create", "--detach", "--name", "good", "--limit-memory", "64m", "--limit-cpu", "0.5",
            "--limit-pids", "100", "--read-only", "--restart-condition", "on-failure", "--restart-max-attempts", "3",
            "--health-cmd", "true", "-u", "1000", "--cap-drop", "ALL", BUSYBOX_IMAGE, "sleep", "600")
    work = Path(tempfile.mkdtemp(prefix="dfx-stack-"))
    compose = work / "dfxstack" / "compose.yml"
    compose.parent.mkdir()
    compose.write_text(STACK_COMPOSE)
    eng.cli("stack", "deploy", "--detach=true", "-c", str(compose), "dfxstack", cwd=str(compose.parent))
    r = run_dockfix("scan", "--root", "/", "--docker-host", eng.url, "--compose", str(compose), "--format", "json",
                    "--only", "5,7")
    assert r.returncode in (0, 1, 3), r.stderr
    yield eng, json.loads(r.stdout), str(compose)
    eng.reset()
    eng.cli("network", "rm", "dfx-enc", "dfx-plain", check=False)
    shutil.rmtree(work, ignore_errors=True)


def at(doc, cis, subject):
    found = [f for f in doc["findings"] if f["cis"] == cis and f["subject"] == subject]
    assert len(found) == 1, (cis, subject, [(f["subject"], f["status"]) for f in doc["findings"] if f["cis"] == cis])
    return found[0]


def one(doc, cis):
    (f,) = [f for f in doc["findings"] if f["cis"] == cis]
    return f


@pytest.mark.parametrize("cis,text", [
    ("5.4", "SYS_ADMIN"), ("5.6", "/etc -> /host-etc"), ("5.8", ":80->80/tcp"), ("5.14", "ingress mesh"),
    ("5.15", "any restarts without limit"), ("5.11", "no memory limit"), ("5.12", "no CPU"), ("5.29", "no PIDs limit"),
    ("5.13", "writable"), ("5.27", "no health check"),
])
def test_service_rules(scanned, cis, text):
    doc = scanned[1]
    bad = at(doc, cis, "service:bad")
    assert bad["status"] == "fail" and text in bad["evidence"], bad
    assert at(doc, cis, "service:good")["status"] == "pass"


def test_service_values(scanned):
    doc = scanned[1]
    assert "64 MiB" in at(doc, "5.11", "service:good")["evidence"]
    assert "at most 3 retries" in at(doc, "5.15", "service:good")["evidence"]
    # a swarm service cannot be privileged: no finding rather than a meaningless pass
    assert not [f for f in doc["findings"] if f["cis"] == "5.5" and f["subject"].startswith("service:")]


def test_stack_service_traced_to_its_compose_file(scanned):
    doc, compose = scanned[1], scanned[2]
    cap = at(doc, "5.4", "service:dfxstack_web")
    assert cap["status"] == "fail" and cap["location"] == {"path": compose, "line": 6}, cap
    sock = at(doc, "5.32", "service:dfxstack_web")
    assert sock["status"] == "fail" and sock["location"] == {"path": compose, "line": 9}, sock
    mem = at(doc, "5.11", "service:dfxstack_web")
    assert mem["status"] == "pass" and "32 MiB" in mem["evidence"]
    # and the file itself is scanned as well
    assert at(doc, "5.4", f"compose:{compose}#web")["location"] == {"path": compose, "line": 6}


def test_5_1_swarm_mode_is_a_question(scanned):
    f = one(scanned[1], "5.1")
    assert f["status"] == "manual" and "manager" in f["evidence"]


def test_7_1_managers(scanned):
    f = one(scanned[1], "7.1")
    assert f["status"] == "pass" and f["evidence"].startswith("1 manager(s)")


def test_7_2_listen_address(scanned):
    f = one(scanned[1], "7.2")
    assert f["status"] == "pass" and f"{scanned[0].swarm_addr}:" in f["evidence"], f


def test_7_3_overlay_encryption(scanned):
    doc = scanned[1]
    assert at(doc, "7.3", "network:dfx-enc")["status"] == "pass"
    assert at(doc, "7.3", "network:dfx-plain")["status"] == "fail"
    assert at(doc, "7.3", "network:ingress")["status"] == "fail"


def test_7_4_to_7_9(scanned):
    doc = scanned[1]
    assert one(doc, "7.4")["status"] == "pass" and "1 secret" in one(doc, "7.4")["evidence"]
    assert one(doc, "7.5")["status"] == "fail"
    assert one(doc, "7.6")["status"] == "skip" and "auto-lock is off" in one(doc, "7.6")["evidence"]
    assert one(doc, "7.7")["status"] == "manual" and "90 days (the default)" in one(doc, "7.7")["evidence"]
    assert one(doc, "7.8")["status"] == "manual"
    assert one(doc, "7.9")["status"] == "manual" and scanned[0].swarm_addr in one(doc, "7.9")["evidence"]
    assert "not-a-real-secret" not in json.dumps(doc)


def test_section_7_skips_without_swarm(engine, tmp_path):
    r = run_dockfix("scan", "--root", str(tmp_path), "--docker-host", engine.url, "--format", "json", "--only", "7")
    doc = json.loads(r.stdout)
    assert len(doc["findings"]) == 9
    assert {f["status"] for f in doc["findings"]} == {"skip"}
    assert "swarm mode is inactive" in doc["findings"][0]["evidence"]


def test_7_5_7_6_with_autolock_on(scanned, tmp_path):
    eng = scanned[0]
    eng.cli("swarm", "update", "--autolock=true")
    try:
        r = run_dockfix("scan", "--root", str(tmp_path), "--docker-host", eng.url, "--format", "json",
                        "--only", "7.5,7.6")
    finally:
        eng.cli("swarm", "update", "--autolock=false")
    doc = json.loads(r.stdout)
    assert one(doc, "7.5")["status"] == "pass"
    assert one(doc, "7.6")["status"] == "manual" and "unlock-key --rotate" in one(doc, "7.6")["evidence"]
    assert "SWMKEY" not in r.stdout


@pytest.mark.parametrize("family,address", [("AF_INET", "0.0.0.0"), ("AF_INET", "127.0.0.1"), ("AF_INET6", "::")])
def test_7_2_reads_listening_sockets_from_proc(family, address):
    import os
    import socket

    from dockfix.checks.swarm import _listening

    s = socket.socket(getattr(socket, family))
    try:
        s.bind((address, 0))
        s.listen(1)
        port = s.getsockname()[1]
        assert (address, port) in _listening(os.getpid())
    finally:
        s.close()
