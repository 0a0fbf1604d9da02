"""Fixes: each builds a Plan from a finding and touches nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

SAFE, DISRUPTIVE, MANUAL = "safe", "disruptive", "manual"


@dataclass
class Fixer:
    check_id: str
    safety: str
    impact: str
    build: Callable[..., Any]
