"""Engine faults after the preflight (issue 15): the engine stops, or refuses, at each engine step of
an apply of a swarm password move (create a secret, then update the service to use it), and while
such a move is rolled back.

The apply runs as the CLI does (`dockfix --apply` in its own process) against a real swarm
manager, with its file fixes (owner and mode of daemon.json) first. Each step prints `[k/N]` on
stderr; the test stops the process there (SIGSTOP), makes the fault — the engine's socket goes
away and every connection drops (a relay in front of the engine), dockerd itself is stopped, or
someone changes the service or the secret — and lets it go on (SIGCONT). Whatever happens: one
line, the documented exit code, no traceback, the files exactly as before, and what is left on
the engine named and finished by `dockfix rollback --last` once the engine is back.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from helpers import BUSYBOX_IMAGE, REPO, manifest, put

pytestmark = [pytest.mark.engine, pytest.mark.slow]

JOURNAL = "var/lib/dockfix"
ONLY = "3.17,3.18,env-password"


# ---------------------------------------------------------------------- the engine's way out
class Relay:
    """A unix socket in front of the engine. ``cut()``: the socket goes away and every connection
    drops, as when dockerd stops. ``cut_on``: the first request holding those bytes reaches the
    engine, which does it; then everything is cut and its answer is lost."""

    def __init__(self, upstream: str, path: str, cut_on: bytes | None = None):
        self.upstream, self.path, self.cut_on = upstream, path, cut_on
        self.conns: list[socket.socket] = []
        self.dead = threading.Event()
        if os.path.exists(path):
            os.unlink(path)
        self.srv = socket.socket(socket.AF_UNIX)
        self.srv.bind(path)
        self.srv.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            if self.dead.is_set():
                c.close()
                return
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c: socket.socket) -> None:
        up = socket.socket(socket.AF_UNIX)
        up.connect(self.upstream)
        self.conns.append(up)
        armed = threading.Event()  # the request to cut on went up: its answer is never passed on

        def back() -> None:
            try:
                while data := up.recv(65536):
                    if armed.is_set():
                        self.cut()
                        return
                    if not self.dead.is_set():
                        c.sendall(data)
            except OSError:
                pass

        threading.Thread(target=back, daemon=True).start()
        try:
            while data := c.recv(65536):
                if self.dead.is_set():
                    return
                if self.cut_on and self.cut_on in data:
                    armed.set()
                up.sendall(data)
        except OSError:
            pass

    def cut(self) -> None:
        if self.dead.is_set():
            return
        self.dead.set()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        self.srv.close()
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()


def stop_dockerd(eng) -> None:
    """Stop the engine's dockerd for real (SIGTERM), keeping its swarm: not PrivateEngine.stop()."""
    eng.proc.send_signal(signal.SIGTERM)
    eng.proc.wait(timeout=60)
    assert not eng._pings()


def start_dockerd(eng) -> None:
    """Start it again with the same command line, and wait until it manages its swarm again."""
    with open(eng.log, "ab") as logf:
        eng.proc = subprocess.Popen(eng.argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, env={**os.environ, "PATH": eng.path_env})
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if os.path.exists(eng.sock) and eng._pings():
            info = json.loads(eng.cli("info", "--format", "{{json .Swarm}}", check=False).stdout or "{}")
            if info.get("LocalNodeState") == "active" and info.get("ControlAvailable") and \
                    eng.cli("service", "ls", check=False).returncode == 0:
                return
        time.sleep(0.3)
    raise AssertionError(f"dockerd did not come back: {eng._log_tail()}")


# ---------------------------------------------------------------------- the host
def setup(swarm_engine, tmp_path: Path) -> Path:
    swarm_engine.cli("tag", BUSYBOX_IMAGE, "mysql:8.0")
    swarm_engine.cli("service", "create", "-d", "--no-resolve-image", "--name", "db", "-e",
                     "MYSQL_PASSWORD=pw-" + os.urandom(5).hex(), "-e", "TZ=UTC", "mysql:8.0", "sleep", "3600")
    root = tmp_path / "root"
    put(root, "etc/docker/daemon.json", '{"icc": false}\n', mode=0o666, owner=(1000, 1000))
    put(root, "var/lib/")
    return root


def host_files(root: Path) -> dict:
    return {k: v for k, v in manifest(root).items() if not (k == JOURNAL or k.startswith(JOURNAL + "/"))}


def journal_files(root: Path) -> dict:
    return {k: v for k, v in manifest(root).items() if k.startswith(JOURNAL + "/") and not k.endswith("/lock")}


def engine_state(eng) -> tuple:
    """The service's spec and the swarm's secrets (names)."""
    spec = json.loads(eng.cli("service", "inspect", "db").stdout)[0]["Spec"]
    return json.dumps(spec, sort_keys=True), sorted(eng.cli("secret", "ls", "--format", "{{.Name}}").stdout.split())


def secrets(eng) -> list[str]:
    return sorted(eng.cli("secret", "ls", "--format", "{{.Name}}").stdout.split())


def _env() -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    e.pop("DOCKER_HOST", None)
    e["NO_COLOR"] = "1"
    return e


def dockfix(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dockfix", *args], capture_output=True, text=True,
                          env={**_env(), **(env or {})}, timeout=180)


def apply(root: Path, url: str, at: dict[str, object] | None = None, env: dict | None = None):
    """`dockfix --apply` of the fixes; ``at`` maps the start of a step's progress line ("create swarm
    secret", "update swarm service", "owner of") to what to do right after that step is done, with the
    process stopped. Returns the completed process and the step lines seen."""
    p = subprocess.Popen([sys.executable, "-m", "dockfix", "--apply", "--yes", "--include-disruptive", "--root",
                          str(root), "--docker-host", url, "--only", ONLY],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**_env(), "DOCKFIX_FAULT_SLOW": "0.3", **(env or {})})
    out: list[str] = []
    threading.Thread(target=lambda: out.append(p.stdout.read()), daemon=True).start()
    err: list[str] = []
    for line in p.stderr:
        err.append(line)
        for what, action in (at or {}).items():
            if line.startswith("[") and "] " in line and line.split("] ", 1)[1].startswith(what):
                os.kill(p.pid, signal.SIGSTOP)
                try:
                    action()  # type: ignore[operator]
                finally:
                    os.kill(p.pid, signal.SIGCONT)
    p.wait(timeout=180)
    time.sleep(0.1)
    return subprocess.CompletedProcess(p.args, p.returncode, "".join(out), "".join(err))


def last_line(r) -> str:
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def one_line_error(r) -> str:
    """The failure is the last stderr line, and nothing else but progress lines comes before it."""
    assert "Traceback" not in r.stderr, r.stderr
    others = [ln for ln in r.stderr.splitlines() if ln.strip() and not ln.startswith("[")]
    assert len(others) == 1 and others[0].startswith("dockfix: "), r.stderr
    return others[0]


# ---------------------------------------------------------------------- apply
@pytest.mark.parametrize("when", ["before the secret is created", "after the secret is created",
                                  "while the secret is created", "while the service is updated"])
def test_the_engine_going_away_at_each_engine_step_of_an_apply(swarm_engine, tmp_path: Path, when: str) -> None:
    root = setup(swarm_engine, tmp_path)
    before_files, before_engine = host_files(root), engine_state(swarm_engine)
    path = f"/tmp/dfx-cut-{os.getpid()}.sock"
    url = f"unix://{path}"
    cut_on = {"while the secret is created": b"/secrets/create",
              "while the service is updated": b"/update?version"}.get(when)
    relay = Relay(swarm_engine.sock, path, cut_on=cut_on)
    at = {"mode of": relay.cut} if when == "before the secret is created" else \
        {"create swarm secret": relay.cut} if when == "after the secret is created" else {}
    try:
        r = apply(root, url, at)
        assert relay.dead.is_set(), r.stderr
        msg = one_line_error(r)
        assert url in msg and "cannot be reached" in msg, msg
        assert host_files(root) == before_files  # the files are rolled back, whatever the engine does
        if when == "before the secret is created":
            assert r.returncode == 4, r.stderr  # nothing on the engine was touched: rolled back
            assert "rolled back" in msg
            assert engine_state(swarm_engine) == before_engine
        else:
            assert r.returncode == 5, r.stderr
            secret = [s for s in secrets(swarm_engine) if s not in before_engine[1]]
            assert len(secret) == 1, secret  # the engine made it; the rollback could not remove it
            assert f"secret {secret[0]} (" in msg and "left there" in msg, msg
            if when == "while the service is updated":
                assert "service " in msg and "(perhaps updated)" in msg, msg
            assert f"run `dockfix rollback {json.loads(journal_txs(root))[-1]}` once the engine is back" in msg, msg
            # the journal holds the transaction to finish: a new apply is refused until it is
            journal_before = journal_files(root)
            r2 = dockfix("rollback", "--last", "--root", str(root), "--docker-host", url)
            assert r2.returncode == 3, r2.stderr
            line = one_line_error(r2)
            assert "cannot be reached" in line and "Nothing was restored" in line and secret[0] in line, line
            assert journal_files(root) == journal_before and host_files(root) == before_files
            relay = Relay(swarm_engine.sock, path)  # the engine is back
            r3 = dockfix("rollback", "--last", "--root", str(root), "--docker-host", url)
            assert r3.returncode == 0, r3.stdout + r3.stderr
            assert f"restored secret {secret[0]}" in r3.stdout, r3.stdout
            assert engine_state(swarm_engine) == before_engine and host_files(root) == before_files
            r4 = dockfix("rollback", "--last", "--root", str(root), "--docker-host", url)
            assert r4.returncode == 0 and "already rolled back" in r4.stdout, r4.stdout + r4.stderr
            assert engine_state(swarm_engine) == before_engine and host_files(root) == before_files
    finally:
        relay.cut()


def journal_txs(root: Path) -> str:
    journal = root / JOURNAL / "journal"
    return json.dumps(sorted(n for n in os.listdir(journal) if n != "lock"))


def test_the_engine_stopped_for_real_mid_apply_then_rolled_back_once_it_is_back(swarm_engine, tmp_path: Path) -> None:
    """dockerd itself stops right after the secret is created: the files are rolled back, the
    secret is named as left; `rollback --last` refuses (exit 3) while dockerd is down and finishes
    once it is back; a third run is harmless."""
    root = setup(swarm_engine, tmp_path)
    before_files, before_engine = host_files(root), engine_state(swarm_engine)
    try:
        r = apply(root, swarm_engine.url, {"create swarm secret": lambda: stop_dockerd(swarm_engine)})
        assert r.returncode == 5, r.stderr
        msg = one_line_error(r)
        assert swarm_engine.url in msg and "cannot be reached" in msg and "left there" in msg, msg
        assert "dockfix rollback" in msg and "once the engine is back" in msg, msg
        assert host_files(root) == before_files
        journal_before = journal_files(root)
        r2 = dockfix("rollback", "--last", "--root", str(root), "--docker-host", swarm_engine.url)
        assert r2.returncode == 3, r2.stderr
        line = one_line_error(r2)
        assert swarm_engine.url in line and "Nothing was restored" in line, line
        assert journal_files(root) == journal_before and host_files(root) == before_files
        # a new apply is refused until the transaction is finished
        r3 = dockfix("--apply", "--yes", "--include-disruptive", "--root", str(root), "--no-engine", "--only", "3.17")
        assert r3.returncode == 3 and "dockfix rollback" in r3.stderr, r3.stderr
    finally:
        if not swarm_engine._pings():
            start_dockerd(swarm_engine)
    assert secrets(swarm_engine) != before_engine[1]  # the secret is still there
    r = dockfix("rollback", "--last", "--root", str(root), "--docker-host", swarm_engine.url)
    assert r.returncode == 0, r.stdout + r.stderr
    assert engine_state(swarm_engine) == before_engine and host_files(root) == before_files
    r = dockfix("rollback", "--last", "--root", str(root), "--docker-host", swarm_engine.url)
    assert r.returncode == 0 and "already rolled back" in r.stdout, r.stdout + r.stderr
    assert engine_state(swarm_engine) == before_engine and host_files(root) == before_files


@pytest.mark.parametrize("how", ["service updated by someone else", "secret removed by someone else"])
def test_the_engine_state_changing_mid_apply_is_rolled_back(swarm_engine, tmp_path: Path, how: str) -> None:
    """Between the secret's creation and the service's update someone changes the service, or
    removes the secret: the update is not made, and everything the apply did is undone (exit 4)."""
    root = setup(swarm_engine, tmp_path)
    before_files, before_secrets = host_files(root), secrets(swarm_engine)

    def meddle() -> None:
        if how == "service updated by someone else":
            swarm_engine.cli("service", "update", "-d", "--env-add", "HAND=1", "db")
        else:
            (new,) = [s for s in secrets(swarm_engine) if s not in before_secrets]
            swarm_engine.cli("secret", "rm", new)

    r = apply(root, swarm_engine.url, {"create swarm secret": meddle})
    assert r.returncode == 4, r.stderr
    msg = one_line_error(r)
    assert "rolled back" in msg, msg
    if how == "service updated by someone else":
        assert "service " in msg and "changed while the plan was being applied" in msg, msg
        env = json.loads(swarm_engine.cli("service", "inspect", "db").stdout)[0]["Spec"]["TaskTemplate"][
            "ContainerSpec"]["Env"]
        assert "HAND=1" in env and any(e.startswith("MYSQL_PASSWORD=") for e in env)  # theirs, not ours
    else:
        assert "does not exist" in msg, msg
    assert secrets(swarm_engine) == before_secrets and host_files(root) == before_files


@pytest.mark.parametrize("err", ["ENOSPC", "EROFS", "EPERM"])
def test_each_errno_at_each_engine_step_of_an_apply(swarm_engine, tmp_path: Path, err: str) -> None:
    """A fault at the secret's step or the service's step (the engine up): exit 4, and the engine and
    the files exactly as before."""
    for step in (3, 4):
        root = setup(swarm_engine, tmp_path / str(step))
        before_files, before_engine = host_files(root), engine_state(swarm_engine)
        r = apply(root, swarm_engine.url, env={"DOCKFIX_FAULT_FAIL_AT": f"apply:{step}:{err}"})
        assert f"[{step - 1}/4]" in r.stderr and "[2/4] mode of" in r.stderr, r.stderr  # steps 3, 4: the engine's
        assert r.returncode == 4, r.stderr
        assert os.strerror(getattr(__import__("errno"), err)) in one_line_error(r)
        assert engine_state(swarm_engine) == before_engine and host_files(root) == before_files, step
        swarm_engine.reset()


@pytest.mark.parametrize("when", ["while the service's spec is put back", "while the secret is removed"])
def test_the_engine_going_away_during_a_rollback_is_finished_by_running_it_again(swarm_engine, tmp_path: Path,
                                                                                when: str) -> None:
    """`dockfix rollback --last` of a swarm password move, the engine stopping in the middle (it did
    the request, its answer is lost): one line naming where it stopped, exit 5, and the same command
    finishes it once the engine is back; a third run is harmless."""
    root = setup(swarm_engine, tmp_path)
    before_files, before_engine = host_files(root), engine_state(swarm_engine)
    assert apply(root, swarm_engine.url).returncode == 0
    path = f"/tmp/dfx-cut-{os.getpid()}.sock"
    url = f"unix://{path}"
    relay = Relay(swarm_engine.sock, path, cut_on=b"/update?version" if "spec" in when else b"DELETE /")
    try:
        r = dockfix("rollback", "--last", "--root", str(root), "--docker-host", url)
        assert relay.dead.is_set()
        assert r.returncode == 5, r.stdout + r.stderr
        line = one_line_error(r)
        assert "stopped at" in line and url in line and "cannot be reached" in line, line
        assert ("stopped at service " if "spec" in when else "stopped at secret ") in line, line
        assert "dockfix rollback" in line and "again" in line, line
        relay = Relay(swarm_engine.sock, path)  # the engine is back
        r = dockfix("rollback", "--last", "--root", str(root), "--docker-host", url)
        assert r.returncode == 0, r.stdout + r.stderr
        assert engine_state(swarm_engine) == before_engine and host_files(root) == before_files
        r = dockfix("rollback", "--last", "--root", str(root), "--docker-host", url)
        assert r.returncode == 0 and "already rolled back" in r.stdout, r.stdout + r.stderr
        assert engine_state(swarm_engine) == before_engine and host_files(root) == before_files
    finally:
        relay.cut()


# ---------------------------------------------------------------------- rollback after drift
def applied(swarm_engine, tmp_path: Path) -> tuple[Path, dict, tuple, str]:
    root = setup(swarm_engine, tmp_path)
    before_files, before_engine = host_files(root), engine_state(swarm_engine)
    r = apply(root, swarm_engine.url)
    assert r.returncode == 0, r.stdout + r.stderr
    (secret,) = [s for s in secrets(swarm_engine) if s not in before_engine[1]]
    return root, before_files, before_engine, secret


@pytest.mark.parametrize("how", ["service updated by hand", "secret in use by another service",
                                 "secret already removed"])
def test_rollback_after_the_engine_drifted_refuses_or_forces(swarm_engine, tmp_path: Path, how: str) -> None:
    root, before_files, before_engine, secret = applied(swarm_engine, tmp_path)
    if how == "service updated by hand":
        swarm_engine.cli("service", "update", "-d", "--env-add", "HAND=1", "db")
        expect = ["service ", "changed since the transaction", "updated since the transaction"]
    elif how == "secret in use by another service":
        swarm_engine.cli("service", "create", "-d", "--no-resolve-image", "--name", "other", "--secret", secret,
                         BUSYBOX_IMAGE, "sleep", "3600")
        expect = [f"secret {secret}", "in use by service other", "--force keeps it"]
    else:  # someone took the secret out of the service and removed it
        swarm_engine.cli("service", "update", "-d", "--secret-rm", secret, "db")
        swarm_engine.cli("secret", "rm", secret)
        expect = ["service ", "changed since the transaction"]
    files, engine = (host_files(root), journal_files(root)), engine_state(swarm_engine)
    r = dockfix("rollback", "--last", "--root", str(root), "--docker-host", swarm_engine.url)
    assert r.returncode == 3, r.stdout + r.stderr
    line = one_line_error(r)
    for word in expect:
        assert word in line, line
    assert (host_files(root), journal_files(root)) == files and engine_state(swarm_engine) == engine  # untouched

    r = dockfix("rollback", "--last", "--force", "--root", str(root), "--docker-host", swarm_engine.url)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert host_files(root) == before_files
    spec, left = engine_state(swarm_engine)
    assert spec == before_engine[0]  # the service's spec as before the transaction
    if how == "secret in use by another service":
        assert left == sorted([*before_engine[1], secret])  # theirs now: kept, and said so
        assert f"secret {secret}: left as it is, in use by service other" in r.stdout, r.stdout
        swarm_engine.cli("service", "rm", "other")
    else:
        assert left == before_engine[1]
    if how == "service updated by hand":  # a copy of the spec --force overwrote is kept
        assert "kept a copy of what --force overwrote: service " in r.stdout, r.stdout
    r = dockfix("journal", "--root", str(root))
    assert r.returncode == 0 and "rolled back by" in r.stdout and "(--force)" in r.stdout, r.stdout
