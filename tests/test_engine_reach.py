"""A dead, silent or dying engine does not hang the scan: the engine findings become `error` with the
reason within a few seconds, and the file findings still come out."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from helpers import put, run_dockfix


def scan(tmp_path: Path, url: str) -> tuple[dict, float]:
    """The scan's findings, and the seconds it waited for the engine: its wall time less that of the
    same scan without an engine, run right before (so a loaded machine does not count as a hang)."""
    put(tmp_path, "etc/docker/daemon.json", '{"icc": false}\n', mode=0o644)
    t = time.monotonic()
    run_dockfix("scan", "--root", str(tmp_path), "--no-engine", "--format", "json", timeout=60)
    baseline = time.monotonic() - t
    t = time.monotonic()
    r = run_dockfix("scan", "--root", str(tmp_path), "--docker-host", url, "--format", "json", timeout=60)
    took = time.monotonic() - t
    assert r.returncode in (0, 1, 3), r.stderr
    return json.loads(r.stdout), max(0.0, took - baseline)


def check_outcome(doc: dict, reason: str) -> None:
    by = {(f["cis"], f["subject"]): f for f in doc["findings"]}
    errors = [f for f in doc["findings"] if f["status"] == "error"]
    assert errors and all(reason in f["evidence"] for f in errors), {f["evidence"] for f in errors}
    for cis in ("5.5", "4.6", "6.1"):
        assert {f["status"] for f in doc["findings"] if f["cis"] == cis} == {"error"}, cis
    # file findings are unaffected: daemon.json was read and judged
    assert by[("2.2", "/etc/docker/daemon.json")]["status"] == "pass"
    assert by[("3.17", "/etc/docker/daemon.json")]["status"] in ("pass", "fail")
    assert reason in doc["host"]["engine"]["error"]


def test_no_socket(tmp_path):
    doc, took = scan(tmp_path, f"unix://{tmp_path}/nothing.sock")
    check_outcome(doc, "no socket at that path")
    assert took < 5


def test_socket_that_accepts_and_never_answers(tmp_path):
    path = f"/tmp/dfx-silent-{os.getpid()}.sock"
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                continue

    th = threading.Thread(target=accept, daemon=True)
    th.start()
    try:
        doc, took = scan(tmp_path, f"unix://{path}")
    finally:
        stop.set()
        th.join()
        for c in held:
            c.close()
        srv.close()
        os.unlink(path)
    check_outcome(doc, "timed out")
    assert took < 6, took


class Relay:
    """A unix socket in front of the engine that passes ``allow`` requests, then dies or goes silent."""

    def __init__(self, upstream: str, path: str, allow: int, mode: str):
        self.upstream, self.path, self.allow, self.mode = upstream, path, allow, mode
        self.count = 0
        self.lock = threading.Lock()
        self.conns: list[socket.socket] = []
        self.srv = socket.socket(socket.AF_UNIX)
        self.srv.bind(path)
        self.srv.listen(64)
        self.dead = threading.Event()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self) -> None:
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c: socket.socket) -> None:
        up = socket.socket(socket.AF_UNIX)
        up.connect(self.upstream)
        self.conns.append(up)

        def back() -> None:
            try:
                while data := up.recv(65536):
                    if not self.dead.is_set():
                        c.sendall(data)
            except OSError:
                pass

        threading.Thread(target=back, daemon=True).start()
        try:
            while data := c.recv(65536):
                with self.lock:
                    self.count += data.count(b"GET ")
                    over = self.count > self.allow
                if over:
                    self.die()
                    if self.mode == "hang":
                        continue
                    return
                up.sendall(data)
        except OSError:
            pass

    def die(self) -> None:
        if self.dead.is_set():
            return
        self.dead.set()
        if self.mode == "close":  # the engine stopped: socket gone, connections dropped
            self.srv.close()
            os.unlink(self.path)
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()

    def close(self) -> None:
        for c in self.conns:
            c.close()
        self.srv.close()
        if os.path.exists(self.path):
            os.unlink(self.path)


@pytest.mark.engine
@pytest.mark.parametrize("mode,reason,limit", [("close", "not reachable", 5), ("hang", "timed out", 10)])
def test_engine_stops_mid_scan(engine, tmp_path, mode, reason, limit):
    # the engine answers the ping and docker info, then stops (socket gone) or freezes (no answer)
    relay = Relay(engine.sock, f"/tmp/dfx-relay-{os.getpid()}-{mode}.sock", allow=2, mode=mode)
    try:
        doc, took = scan(tmp_path, f"unix://{relay.path}")
    finally:
        relay.close()
    assert relay.dead.is_set()
    by = {(f["cis"], f["subject"]): f for f in doc["findings"]}
    # the engine answered before it stopped (which request came first depends on the thread pool)
    assert relay.count > relay.allow >= 1
    errors = [f for f in doc["findings"] if f["status"] == "error"]
    assert errors and all(reason in f["evidence"] for f in errors), {f["evidence"] for f in errors}
    assert {f["status"] for f in doc["findings"] if f["cis"] == "5.5"} == {"error"}
    assert by[("2.2", "/etc/docker/daemon.json")]["status"] == "pass"
    assert took < limit, took
