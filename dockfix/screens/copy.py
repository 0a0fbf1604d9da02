"""Copying a command: OSC 52 (which SSH and tmux often drop) and a file whose path is shown."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def command_file() -> Path:
    """Where the last copied command is written: $XDG_STATE_HOME/dockfix/command.sh."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "dockfix" / "command.sh"


def copy_command(app: Any, command: str) -> str:
    """Copy ``command`` both ways; returns what to tell the user (the command and the file)."""
    app.copy_to_clipboard(command)
    from dockfix.fsops import FsError, write_named_file

    path = command_file()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # the shared writer: never through a link planted at the name, never over a device
        write_named_file(str(path), (command.rstrip("\n") + "\n").encode(), 0o600)
        where = f"also written to {path} (if the clipboard did not get it: sh {path}, or cat it)"
    except FsError as e:
        where = f"could not be written: {e}"
    except OSError as e:
        where = f"could not be written to {path}: {e.strerror}"
    return f"{command}\n\nSent to the clipboard (OSC 52); {where}."
