"""Test session fixtures: a private dockerd (plain and in swarm mode) and host-tree builders.

Every engine-marked test runs against each engine of ``DOCKFIX_TEST_ENGINES`` (default: both,
"20.10,28"): the machine's dockerd 20.10 and Docker 28 from Debian's newer suite (unpacked by
scripts/newer-debs). The session fixtures are parametrized by engine, so a test id ends in
``[20.10]`` or ``[28]``; ``DOCKFIX_TEST_ENGINES=28 pytest ...`` runs one.

The private engines never touch the machine's default daemon: each has its own --data-root,
--exec-root, --pidfile and unix socket under a temporary folder, no bridge and no iptables.
With CI=true an engine that cannot be started fails the tests that need it; elsewhere they skip,
loudly.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from helpers import BUSYBOX_IMAGE  # noqa: E402,F401
from private_engine import PrivateEngine, free_port, make_engine, test_engines  # noqa: E402,F401

TEST_ENGINES = test_engines()
#: engine version -> server version of every engine that started in this session (asserted by
#: tests/test_engine_versions.py)
STARTED: dict[str, str] = {}


def _engine(tmp_path_factory, swarm: bool, version: str):
    # unix socket paths must stay short (108 bytes): use a short folder under /tmp
    base = Path(tempfile.mkdtemp(prefix="dfx-swarm-" if swarm else "dfx-eng-", dir="/tmp"))
    eng = None
    try:
        eng = make_engine(version, base, swarm=swarm)
        eng.start()
        STARTED[version] = eng.server_version
    except Exception as e:  # noqa: BLE001
        if eng is not None:
            eng.stop()
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and the private dockerd {version} could not be started: {e}", pytrace=False)
        msg = f"!!! SKIPPING ENGINE TESTS: the private dockerd {version} could not be started: {e}"
        print(msg, file=sys.stderr)
        pytest.skip(msg)
    return eng


@pytest.fixture(scope="session", params=TEST_ENGINES)
def _engine_session(request, tmp_path_factory):
    eng = _engine(tmp_path_factory, swarm=False, version=request.param)
    yield eng
    eng.stop()


@pytest.fixture(scope="session", params=TEST_ENGINES)
def _swarm_session(request, tmp_path_factory):
    eng = _engine(tmp_path_factory, swarm=True, version=request.param)
    yield eng
    eng.stop()


@pytest.fixture(scope="session")
def rootless_engine():
    """A real rootless dockerd 28 run by the test user dfxrootless (tests/rootless_engine.py)."""
    if "28" not in TEST_ENGINES:
        pytest.skip("the rootless engine is Docker 28, and DOCKFIX_TEST_ENGINES leaves 28 out")
    from rootless_engine import RootlessEngine, why_not

    reason = why_not()
    eng = None
    try:
        if reason:
            raise RuntimeError(reason)
        eng = RootlessEngine()
        eng.start()
        eng.import_busybox(BUSYBOX_IMAGE)
        STARTED["28 rootless"] = eng.cli("info", "--format", "{{.ServerVersion}}").stdout.strip()
    except Exception as e:  # noqa: BLE001
        if eng is not None:
            eng.stop()
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and the rootless dockerd could not be started: {e}", pytrace=False)
        msg = f"!!! SKIPPING ROOTLESS ENGINE TESTS: the rootless dockerd could not be started: {e}"
        print(msg, file=sys.stderr)
        pytest.skip(msg)
    yield eng
    eng.stop()


@pytest.fixture
def engine_version(request) -> str:
    """The engine version ("20.10" or "28") the current engine test runs against."""
    for name in ("_engine_session", "_swarm_session"):
        if name in request.fixturenames:
            return request.getfixturevalue(name).version
    raise LookupError("not an engine test")


@pytest.fixture
def engine(_engine_session) -> PrivateEngine:
    """The private engine (not in swarm mode), emptied of containers before the test."""
    _engine_session.reset()
    return _engine_session


@pytest.fixture
def swarm_engine(_swarm_session) -> PrivateEngine:
    """A second private engine, in swarm mode, emptied of services and secrets before the test."""
    _swarm_session.reset()
    return _swarm_session


def pytest_terminal_summary(terminalreporter):
    if STARTED:
        terminalreporter.write_line("engines: " + ", ".join(f"{k} -> dockerd {v}" for k, v in sorted(STARTED.items())))


@pytest.fixture(autouse=True)
def _dev_null_stays_a_device(request):
    """dockfix runs as root: a test must never damage the machine. /dev/null has been seen turned into
    a regular file on this kind of machine; this names the test during which it happened, puts the
    device back and fails that test."""
    yield
    import stat as _stat

    try:
        st = os.lstat("/dev/null")
    except OSError:
        st = None
    if st is None or not _stat.S_ISCHR(st.st_mode):
        try:
            os.unlink("/dev/null")
        except OSError:
            pass
        os.mknod("/dev/null", _stat.S_IFCHR | 0o666, os.makedev(1, 3))
        os.chmod("/dev/null", 0o666)
        pytest.fail(f"/dev/null was no longer a character device after {request.node.nodeid}", pytrace=False)


@pytest.fixture(scope="session")
def compose_v2_path() -> str:
    """The compose v2 binary (sid's docker-compose 2.x unpacked by scripts/newer-debs; scripts/test exports
    DOCKFIX_TEST_COMPOSE_V2). Debian 12's docker-compose 1.29 stays on PATH for the 1.29-vs-v2 cases."""
    import subprocess

    path = os.environ.get("DOCKFIX_TEST_COMPOSE_V2")
    if not path:
        r = subprocess.run([str(REPO / "scripts/newer-debs"), "--print-dir", "docker-compose"],
                           capture_output=True, text=True, timeout=600)
        if r.returncode == 0:
            path = r.stdout.strip() + "/usr/libexec/docker/cli-plugins/docker-compose"
    if not path or not os.access(path, os.X_OK):
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true and compose v2 is not available (scripts/newer-debs docker-compose)", pytrace=False)
        pytest.skip("compose v2 is not available (scripts/newer-debs docker-compose)")
    return path


@pytest.fixture
def compose_v2(compose_v2_path, monkeypatch) -> str:
    """compose v2 for this test: dockfix finds it through DOCKFIX_COMPOSE (as it would find docker compose on a host)."""
    monkeypatch.setenv("DOCKFIX_COMPOSE", compose_v2_path)
    return compose_v2_path
