"""CIS 7.1 on a real two-manager swarm: two private engines of our own (kept apart from the shared
swarm fixture, so that a quorum lost here can never break other tests)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from helpers import run_dockfix
from conftest import TEST_ENGINES
from private_engine import free_port, make_engine

pytestmark = [pytest.mark.engine, pytest.mark.slow]


@pytest.fixture(params=TEST_ENGINES)
def two_managers(request):
    engines = []
    try:
        for _ in range(2):
            eng = make_engine(request.param, Path(tempfile.mkdtemp(prefix="dfx-mgr-", dir="/tmp")))
            engines.append(eng)
            try:
                eng.start()
            except Exception as e:  # noqa: BLE001
                if os.environ.get("CI") == "true":
                    pytest.fail(f"CI=true and a private dockerd could not be started: {e}", pytrace=False)
                pytest.skip(f"!!! the private dockerd could not be started: {e}")
        a, b = engines
        port = free_port()
        a.cli("swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", f"127.0.0.1:{port}")
        token = a.cli("swarm", "join-token", "-q", "manager").stdout.strip()
        b.cli("swarm", "join", "--token", token, "--advertise-addr", "127.0.0.1",
              "--listen-addr", f"127.0.0.1:{free_port()}", f"127.0.0.1:{port}")
        yield a, b
    finally:
        for eng in reversed(engines):
            eng.cli("swarm", "leave", "--force", check=False, timeout=60)
        for eng in engines:
            eng.stop()


def test_an_even_number_of_managers_fails_7_1(two_managers, tmp_path):
    a, _ = two_managers
    r = run_dockfix("scan", "--root", str(tmp_path), "--docker-host", a.url, "--format", "json", "--only", "7.1")
    assert r.returncode == 1, r.stderr
    [f] = json.loads(r.stdout)["findings"]
    assert f["status"] == "fail", f
    assert f["evidence"].startswith("2 manager(s) among 2 node(s)") and "even number" in f["evidence"]
