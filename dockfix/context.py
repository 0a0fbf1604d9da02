"""The scan context: everything a check may look at, each source read once and shared by every
check (the host's files, the daemon's configuration, the engine, the compose files and Dockerfiles
named on the command line)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable

from dockfix.sources.daemon_config import DAEMON_JSON, CommandLine, DaemonConfig, command_line, parse_daemon_json
from dockfix.sources.rootless import RootlessDaemon, find_rootless, rootless_for_url
from dockfix.engine import Engine, _hosts_of, daemon_argv_for, dockerd_processes
from dockfix.benchmarks import DEFAULT as DEFAULT_BENCHMARK
from dockfix.host import Host
from dockfix.model import CheckError, NotApplicable  # noqa: F401 (NotApplicable: for checks)




@dataclass
class Context:
    """Everything a check may look at. Sources are read once and shared by every check."""

    host: Host
    paths: list[str] = field(default_factory=list)  # host paths given with --path
    compose: list[str] = field(default_factory=list)  # host paths given with --compose
    #: CIS Docker Benchmark version whose numbers findings carry (--benchmark)
    benchmark: str = DEFAULT_BENCHMARK
    #: --offline: contact nothing beyond the engine's socket (image signatures come from stored bundles)
    offline: bool = False
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)
    _key_locks: dict[str, threading.RLock] = field(default_factory=dict, repr=False)

    def memo(self, name: str, compute: Callable[[], Any]) -> Any:
        """Compute a shared source once; a CheckError is cached and re-raised to every caller.

        Each source has its own lock, so a slow source (the engine) never holds up the others.
        """
        with self._lock:
            key_lock = self._key_locks.setdefault(name, threading.RLock())
        with key_lock:
            if name not in self._memo:
                try:
                    self._memo[name] = compute()
                except (CheckError, NotApplicable) as e:
                    self._memo[name] = e
            value = self._memo[name]
        if isinstance(value, (CheckError, NotApplicable)):
            raise value
        return value

    # ------------------------------------------------------------------ engine
    @cached_property
    def engine(self) -> Engine | None:
        if not self.host.engine:
            return None
        return Engine(lambda: self.host.docker, self.host.docker_host or "", timeout=self.host.engine_timeout)

    def need_engine(self) -> Engine:
        if self.engine is None:
            raise NotApplicable("the engine was not scanned (--no-engine, or a --root tree without --docker-host)")
        return self.engine

    def info(self) -> dict[str, Any]:
        return self.need_engine().info()

    # ------------------------------------------------------------------ rootless
    @cached_property
    def rootless(self) -> RootlessDaemon | None:
        """The rootless daemon being scanned (``--docker-host unix:///run/user/UID/docker.sock``), or
        None for a daemon run by root. Its files are the user's (sources/rootless.py)."""
        return rootless_for_url(self.host, self.host.docker_host or "")

    def rootless_daemons(self) -> list[RootlessDaemon]:
        """Every rootless daemon found on the host (sockets, user units, processes)."""
        return self.memo("rootless_daemons", lambda: find_rootless(self.host))

    # ------------------------------------------------------------------ daemon
    def daemon_process(self) -> tuple[int, list[str]] | None:
        """(pid, argv) of the dockerd serving the scanned socket; None when unknown (or --no-engine)."""

        def find() -> tuple[int, list[str]] | None:
            # The processes are this machine's: only the daemon behind the scanned socket counts.
            if self.engine is None:
                return None
            procs = dockerd_processes()
            found = daemon_argv_for(self.host.docker_host or "", procs)
            if found is None and self.rootless is not None:
                # a rootless dockerd listens on $XDG_RUNTIME_DIR/docker.sock without -H: its owner tells
                found = _rootless_argv(self.rootless.uid, procs)
            return found

        return self.memo("daemon_process", find)

    def daemon_argv(self) -> list[str] | None:
        """argv of the dockerd serving the scanned socket; None when unknown (or --no-engine)."""
        found = self.daemon_process()
        return found[1] if found else None

    def daemon_cmdline(self) -> CommandLine:
        """dockerd's effective command line: the live process's on this machine, else its unit's."""

        def build() -> CommandLine:
            # the dockerd behind the scanned socket is what runs (also with --root and an engine)
            return command_line(self.host, self.daemon_process())

        return self.memo("daemon_cmdline", build)

    def daemon_json_path(self) -> str:
        """The daemon.json dockerd reads: ``--config-file`` of its effective command line, else the default."""
        try:
            cmd = self.daemon_cmdline()
            s = cmd.settings.get("config-file")
            if cmd.pid is not None and not self.host.is_live:
                s = None  # a running dockerd's --config-file names a path on this machine, not in the tree
        except CheckError:
            s = None  # the unit or its environment file cannot be read: daemon() reports that
        return s.value if s is not None and isinstance(s.value, str) and s.value.startswith("/") else (
            self.rootless.daemon_json if self.rootless is not None else DAEMON_JSON)

    def daemon_json(self) -> dict:
        """Settings of daemon.json ({} when absent). CheckError when malformed."""

        def load():
            path = self.daemon_json_path()
            try:
                text = self.host.read_text(path)
                return {} if text is None else parse_daemon_json(text, path)
            except CheckError as e:
                e.subject = e.subject or path  # the error finding is about this file
                raise

        return self.memo("daemon_json", load)

    def daemon(self) -> DaemonConfig:
        def build() -> DaemonConfig:
            from_json = self.daemon_json()
            cmd = self.daemon_cmdline()
            info = None
            if self.engine is not None:
                try:
                    info = self.engine.info()
                except CheckError:
                    info = None
            return DaemonConfig(self.daemon_json_path(), from_json, {}, cmd.settings, cmd.unknown is None, info, cmd)

        return self.memo("daemon", build)


def _rootless_argv(uid: int, procs: list[tuple[int, list[str]]]) -> tuple[int, list[str]] | None:
    """The dockerd of user ``uid`` listening on its default socket (no -H), from /proc."""
    for pid, argv in procs:
        try:
            with open(f"/proc/{pid}/status", "rb") as f:
                owner = next((int(line.split()[1]) for line in f if line.startswith(b"Uid:")), None)
        except (OSError, ValueError, IndexError):
            continue
        if owner == uid and not [h for h in _hosts_of(argv) if not h.startswith(f"unix:///run/user/{uid}/")]:
            return pid, argv
    return None
