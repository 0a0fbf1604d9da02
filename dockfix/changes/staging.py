"""Staging: what the host will look like after the changes planned so far (nothing is written).

Several fixes of the same file (two daemon.json keys) build on each other through one overlay per
scan context, so that each shows its own small diff.
"""

from __future__ import annotations

import os

from dockfix.changes.base import PlanRefused
from dockfix.fsops import FileState, FsError, read_file, state_of
from dockfix.host import Host


class Staging:
    """What the host will look like after the changes planned so far (nothing is written)."""

    def __init__(self, host: Host):
        self.host = host
        self._states: dict[str, FileState] = {}
        self._content: dict[str, bytes | None] = {}

    def state(self, path: str) -> FileState:
        if path not in self._states:
            try:
                self._states[path] = state_of(self.host, path)
            except FsError as e:
                raise PlanRefused(str(e)) from None
        return self._states[path]

    def content(self, path: str) -> bytes | None:
        """Planned content of a regular file (None when absent or not a regular file)."""
        if path not in self._content:
            st = self.state(path)
            data = None
            if st.existed and st.kind == "file":
                data = read_file(self.host, path)
            self._content[path] = data
        return self._content[path]

    def set_meta(self, path: str, st: FileState) -> None:
        """A planned change of owner or mode: the content stays what it is (read only if asked for)."""
        self._states[path] = st

    def set(self, path: str, st: FileState, content: bytes | None = None) -> None:
        self._states[path] = st
        self._content[path] = content


def staging(ctx) -> Staging:
    """The staging overlay of a scan context (shared by every fix planned from it)."""
    return ctx.memo("dockfix.changes.staging", lambda: Staging(ctx.host))


def canonical(host: Host, path: str) -> str:
    """``path`` with links in its parent directories resolved inside the root; the last component
    is kept as it is (never followed)."""
    parent, name = os.path.split(os.path.normpath(path))
    return os.path.join(host.resolve(parent), name)


def staged_text(ctx, path: str) -> str | None:
    """Content a fix builder should edit: the file as earlier planned changes will leave it."""
    st = staging(ctx)
    p = canonical(ctx.host, path)
    state = st.state(p)
    if state.existed and state.kind == "link":
        raise PlanRefused(f"{path} is a symbolic link to {ctx.host.resolve(path)}; dockfix does not write through "
                          f"links: edit the target by hand or replace the link with a file")
    data = st.content(p)
    return None if data is None else data.decode("utf-8")


def staged_state(ctx, path: str) -> FileState:
    return staging(ctx).state(canonical(ctx.host, path))
