"""What dockfix reads and edits: compose files, Dockerfiles, daemon configuration, JSON and YAML,
and the one secret detector. Sources know nothing of checks, fixes or the terminal."""

from __future__ import annotations

from typing import Any, Callable, Protocol


class Scope(Protocol):
    """What a source needs of a scan (dockfix.scan.Context satisfies it): the host, the folders and
    compose files named on the command line, the engine (or None), and a per-scan memo."""

    host: Any
    paths: list[str]
    compose: list[str]

    @property
    def engine(self) -> Any: ...

    def memo(self, key: str, build: Callable[[], Any]) -> Any: ...
