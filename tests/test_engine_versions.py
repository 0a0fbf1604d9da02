"""Which engines the engine tests ran against: every engine test runs once per engine of
DOCKFIX_TEST_ENGINES (default both: Debian 12's dockerd 20.10 and Docker 28 on containerd 2)."""

from __future__ import annotations

import json

import pytest

from conftest import STARTED, TEST_ENGINES
from helpers import run_dockfix

pytestmark = pytest.mark.engine


def test_both_engines_are_asked_for_by_default(monkeypatch):
    from private_engine import test_engines

    monkeypatch.delenv("DOCKFIX_TEST_ENGINES", raising=False)
    assert test_engines() == ["20.10", "28"]
    monkeypatch.setenv("DOCKFIX_TEST_ENGINES", "28")
    assert test_engines() == ["28"]


def test_the_engine_is_the_version_asked_for(engine):
    v = json.loads(engine.cli("version", "--format", "{{json .Server}}").stdout)
    assert v["Version"].startswith(engine.version + "."), v["Version"]
    assert STARTED[engine.version] == v["Version"]
    containerd = next(c["Version"] for c in v["Components"] if c["Name"] == "containerd")
    info = json.loads(engine.cli("info", "--format", "{{json .}}").stdout)
    if engine.version == "28":
        assert containerd.startswith(("2.", "v2.")), containerd  # containerd 2 from the newer suite
        # the containerd image store (default of fresh installs from Docker 29)
        assert info["Driver"] == "overlayfs"
        assert ["driver-type", "io.containerd.snapshotter.v1"] in info["DriverStatus"]
    else:
        assert containerd.startswith(("1.", "v1.")), containerd
        assert info["Driver"] == "overlay2"


def test_dockfix_reports_the_engine_it_scanned(engine, tmp_path):
    r = run_dockfix("scan", "--root", str(tmp_path), "--docker-host", engine.url, "--format", "json", "--only", "2.1")
    doc = json.loads(r.stdout)
    assert doc["host"]["engine"]["server_version"] == STARTED[engine.version]


def test_every_engine_asked_for_ran(_engine_session):
    """Runs after the engine of its parameter started; the last one sees them all."""
    assert _engine_session.version in STARTED
    assert {k.split()[0] for k in STARTED} <= set(TEST_ENGINES)  # "28 rootless" is a 28 too


def test_api_version_is_negotiated_never_fixed(engine, monkeypatch):
    """dockfix speaks the engine's own API version (1.41 on 20.10, 1.51 on 28.5), as its ping answer names it."""
    from dockfix.engine import Engine

    server = json.loads(engine.cli("version", "--format", "{{json .Server}}").stdout)
    monkeypatch.delenv("DOCKER_API_VERSION", raising=False)
    e = Engine(lambda: None, engine.url)
    assert e.info()["ServerVersion"] == server["Version"]
    assert e.api_version == server["ApiVersion"]
    assert e._raw.prefix == f"/v{server['ApiVersion']}"
    assert e.version()["ApiVersion"] == server["ApiVersion"]
    # pinned as the docker CLI pins it: an older version the engine still speaks
    monkeypatch.setenv("DOCKER_API_VERSION", "1.41")
    e = Engine(lambda: None, engine.url)
    assert e.info()["ServerVersion"] == server["Version"] and e.api_version == "1.41"


def test_negotiate_api_version():
    from dockfix.engine import negotiate_api_version as n

    assert n({"ApiVersion": "1.51", "MinAPIVersion": "1.24"}, {}) == "1.51"
    assert n({"ApiVersion": "1.41"}, {"DOCKER_API_VERSION": "1.40"}) == "1.40"
    assert n({"ApiVersion": "garbage"}, {}) == ""
    assert n(None, {}) == ""
    assert n({"ApiVersion": "1.41"}, {"DOCKER_API_VERSION": "x"}) == "1.41"


def test_an_engine_whose_ping_names_no_version_is_asked_version(tmp_path):
    """The ping's API-Version header first (as the docker CLI); without it, /version; every later path
    goes under the version found."""
    import socket
    import threading

    from dockfix.engine import Engine

    path = str(tmp_path / "fake.sock")
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(8)
    seen: list[str] = []

    def answer(c: socket.socket) -> None:
        f = c.makefile("rb")
        while True:
            line = f.readline()
            if not line:
                break
            target = line.split()[1].decode()
            while f.readline() not in (b"\r\n", b""):
                pass
            seen.append(target)
            body = {"/_ping": b"OK", "/version": b'{"Version": "99.0.0", "ApiVersion": "1.99"}',
                    "/v1.99/info": b'{"ServerVersion": "99.0.0"}'}.get(target, b'{"message": "no"}')
            status = b"200 OK" if target in ("/_ping", "/version", "/v1.99/info") else b"404 Not Found"
            c.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        c.close()

    def serve() -> None:
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=answer, args=(c,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        e = Engine(lambda: None, f"unix://{path}")
        assert e.info() == {"ServerVersion": "99.0.0"}
        assert e.api_version == "1.99" and seen == ["/_ping", "/version", "/v1.99/info"]
    finally:
        srv.close()
