"""Fixes join their checks one way, and a mistake in that fails here, never in `dockfix scan`."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import REPO
from dockfix.changes import CHANGE_KINDS, TARGET_KINDS, Change
from dockfix.fixes import load_all
from dockfix.model import LOW, REGISTRY, Fix, check


def test_every_declared_fix_has_a_builder_and_every_builder_a_declaration():
    load_all()
    declared = {c.id for c in REGISTRY.values() if c.fix_spec is not None}
    built = {c.id for c in REGISTRY.values() if c.builder is not None}
    assert declared == built, f"declared without builder: {declared - built}; builder without declaration: {built - declared}"
    assert len(declared) >= 50  # section 3, audit, daemon.json, content trust, secrets, registry


def test_a_fix_module_naming_a_missing_check_fails_on_import(tmp_path):
    """A typo in a fix module's check name is an import error of that module (the test suite loads
    every fix module), and `dockfix scan` is not affected: it never imports fixes."""
    pkg = tmp_path / "dockfix_typo"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "broken_fix.py").write_text("from dockfix.checks.daemon import icc_typo\n\n@icc_typo.fix\ndef build(ctx, f):\n    return []\n")
    r = subprocess.run([sys.executable, "-c", "import dockfix_typo.broken_fix"], capture_output=True, text=True,
                       cwd=tmp_path, env={"PYTHONPATH": f"{tmp_path}:{REPO}"})
    assert r.returncode == 1 and "cannot import name 'icc_typo'" in r.stderr


def test_a_builder_for_a_check_that_declares_no_fix_is_refused():
    c = check("test-no-fix", cis=None, title="t", severity=LOW, explanation="e", manual="m", remediation="r")(
        lambda ctx: [])
    try:
        with pytest.raises(TypeError, match="declares no fix"):
            c.fix(lambda ctx, f: [])
        with pytest.raises(TypeError, match="must be a Safety"):
            Fix("safe", "impact")  # type: ignore[arg-type]
    finally:
        del REGISTRY["test-no-fix"]


def test_a_change_kind_without_validation_cannot_register():
    from dataclasses import dataclass
    from typing import ClassVar

    from dockfix.changes.base import change_kind

    @dataclass
    class Sloppy(Change):
        kind: ClassVar[str] = "sloppy"
        target_type = TARGET_KINDS["file"]

    with pytest.raises(TypeError, match="no validate"):
        change_kind(Sloppy)
    assert "sloppy" not in CHANGE_KINDS
    assert set(CHANGE_KINDS) == {"write", "chown", "chmod", "mkdir", "create-secret", "update-service"}
