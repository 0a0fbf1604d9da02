"""Importing this module attaches every fix to its check."""

import dockfix.checks  # noqa: F401
from dockfix.fixes import load_all

load_all()
