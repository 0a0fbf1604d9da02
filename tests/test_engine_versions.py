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
    assert set(STARTED) <= set(TEST_ENGINES)
