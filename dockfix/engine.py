"""The running engine, fetched once per scan and shared by every check.

Each kind of object (info, version, containers, ...) is fetched at most once; a dead or slow
engine raises :class:`~dockfix.model.CheckError` with the reason, and every later request fails
fast with the same reason instead of waiting again.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Callable

from dockfix.model import CheckError


def dockerd_processes(proc: str = "/proc") -> list[tuple[int, list[str]]]:
    """(pid, argv) of every dockerd process on this machine."""
    out = []
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return out
    for pid in pids:
        try:
            with open(f"{proc}/{pid}/cmdline", "rb") as f:
                raw = f.read()
        except OSError:
            continue
        argv = [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]
        if argv and os.path.basename(argv[0]) == "dockerd":
            out.append((int(pid), argv))
    return sorted(out)


def _hosts_of(argv: list[str]) -> list[str]:
    hosts = []
    for i, a in enumerate(argv):
        if a in ("-H", "--host") and i + 1 < len(argv):
            hosts.append(argv[i + 1])
        elif a.startswith("--host="):
            hosts.append(a.split("=", 1)[1])
        elif a.startswith("-H") and len(a) > 2:
            hosts.append(a[2:].lstrip("="))
    return hosts


def _norm_unix(url: str) -> str:
    path = url[len("unix://"):] if url.startswith("unix://") else url
    path = os.path.normpath(path)
    return "/run" + path[len("/var/run"):] if path.startswith("/var/run/") else path


def daemon_argv_for(docker_host: str, procs: list[tuple[int, list[str]]] | None = None) -> tuple[int, list[str]] | None:
    """The dockerd that serves ``docker_host`` (a host can run several), or None."""
    procs = dockerd_processes() if procs is None else procs
    want = _norm_unix(docker_host) if docker_host.startswith("unix://") else docker_host.split("://")[-1]
    default_sock = "/run/docker.sock"
    for pid, argv in procs:
        hosts = _hosts_of(argv)
        if not hosts and want == default_sock:
            return pid, argv
        for h in hosts:
            if h.startswith("unix://") and _norm_unix(h) == want:
                return pid, argv
            if h.startswith("fd://") and want == default_sock:  # socket activation: docker.socket
                return pid, argv
            if h.startswith("tcp://") and h.split("://")[-1] == want:
                return pid, argv
    return None


class Engine:
    """Lazy, cached, thread-safe access to one engine."""

    def __init__(self, client_factory: Callable[[], Any], url: str):
        self._factory = client_factory
        self.url = url
        self._lock = threading.Lock()
        self._cache: dict[str, Any] = {}
        self._dead: str | None = None

    def _client(self):
        return self.fetch("client", self._factory)

    def fetch(self, name: str, getter: Callable[[], Any]) -> Any:
        """Run ``getter`` once per scan; cache its value or its failure."""
        with self._lock:
            if name in self._cache:
                value = self._cache[name]
                if isinstance(value, CheckError):
                    raise value
                return value
            if self._dead:
                raise CheckError(self._dead)
        try:
            value = getter()
        except CheckError as e:
            value = e
        except Exception as e:  # docker.errors.*, requests errors, socket timeouts
            value = CheckError(f"engine {self.url}: {_reason(e)}")
            if _is_connection_error(e):
                self._dead = str(value)
        with self._lock:
            self._cache.setdefault(name, value)
            value = self._cache[name]
        if isinstance(value, CheckError):
            raise value
        return value

    # The common objects; engine checks add their own with fetch().
    def info(self) -> dict[str, Any]:
        return self.fetch("info", lambda: self._client().info())

    def version(self) -> dict[str, Any]:
        return self.fetch("version", lambda: self._client().version())

    def api(self):
        """The low-level APIClient (docker.APIClient) for raw, undecorated responses."""
        return self._client().api


def _is_connection_error(e: Exception) -> bool:
    text = f"{type(e).__name__} {e}".lower()
    return any(w in text for w in ("connection", "timeout", "timed out", "refused", "no such file", "not found"))


def _reason(e: Exception) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if "Connection refused" in text or "FileNotFoundError" in text or "No such file" in text:
        return "not reachable (is dockerd running?)"
    if "timed out" in text.lower() or "timeout" in text.lower():
        return "timed out"
    if "Permission denied" in text:
        return "permission denied on the socket"
    return text[:200]
