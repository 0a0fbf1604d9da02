"""What each headless command loads: the real commands run as subprocesses, and the modules they
imported are read from ``sys.modules`` when they finish.

* ``dockfix scan`` loads no change kind, fix, plan, journal, app, Textual or Docker SDK module;
* ``dockfix --apply --dry-run``, ``dockfix report`` and ``dockfix journal`` load no Textual;
* starting the app begins the scan before Textual is imported (the launcher itself is headless).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO, put

#: Runs dockfix's real entry point with the given arguments, then writes what was imported.
RUNNER = (
    "import contextlib, io, json, sys\n"
    "from dockfix.cli import main\n"
    "out, argv = sys.argv[1], sys.argv[2:]\n"
    "with contextlib.redirect_stdout(io.StringIO()):\n"
    "    rc = main(argv)\n"
    "json.dump({'rc': rc, 'modules': sorted(sys.modules)}, open(out, 'w'))\n"
)


def loaded(tmp_path: Path, *argv: str) -> tuple[int, set[str]]:
    out = tmp_path / "modules.json"
    r = subprocess.run([sys.executable, "-c", RUNNER, str(out), *argv], capture_output=True, text=True, cwd=REPO,
                       env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    return doc["rc"], set(doc["modules"])


def under(modules: set[str], *packages: str) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in packages))


def faulty_tree(root: Path) -> Path:
    put(root, "var/lib/")
    put(root, "etc/docker/", mode=0o733, owner=(1000, 1000))
    put(root, "etc/docker/daemon.json", '{"icc": true}\n', mode=0o666)
    put(root, "srv/app/compose.yaml", "services:\n  db:\n    image: mysql:8\n    environment:\n      MYSQL_PASSWORD: x\n")
    return root


NOT_ON_THE_SCAN_PATH = ("dockfix.changes", "dockfix.fixes", "dockfix.plan", "dockfix.journal", "dockfix.workflow",
                        "dockfix.tui", "dockfix.screens", "textual", "docker")


@pytest.mark.parametrize("fmt", ["text", "json", "sarif"])
def test_scan_loads_no_fix_core_app_or_docker_sdk(tmp_path, fmt):
    root = faulty_tree(tmp_path / "host")
    rc, mods = loaded(tmp_path, "scan", "--root", str(root), "--no-engine", "--path", "/srv/app", "--format", fmt)
    assert rc == 1  # it did scan: the faults fail
    assert under(mods, *NOT_ON_THE_SCAN_PATH) == []
    assert "dockfix.checks.files" in mods  # and this is how the check shows up


@pytest.mark.engine
def test_engine_scan_needs_neither_the_docker_sdk_nor_http_client(engine, tmp_path):
    # the Docker SDK (~0.2 s to import) and http.client (pulls in ssl and email) stay out of a scan
    rc, mods = loaded(tmp_path, "scan", "--root", str(tmp_path), "--docker-host", engine.url, "--format", "json")
    assert rc in (0, 1)
    assert under(mods, *NOT_ON_THE_SCAN_PATH, "http.client", "requests") == []


def test_headless_fixing_loads_no_textual(tmp_path):
    root = faulty_tree(tmp_path / "host")
    rc, mods = loaded(tmp_path, "--apply", "--dry-run", "--root", str(root), "--no-engine")
    assert rc == 0
    assert "dockfix.fixes.files" in mods and "dockfix.journal" in mods  # it planned for real
    assert under(mods, "textual", "dockfix.tui", "dockfix.screens") == []
    for cmd in (["--apply", "--yes"], ["journal"], ["plan"], ["rollback", "--last"]):
        rc, mods = loaded(tmp_path, *cmd, "--root", str(root), "--no-engine")
        assert rc == 0, cmd
        assert under(mods, "textual", "dockfix.tui", "dockfix.screens") == [], cmd
    rc, mods = loaded(tmp_path, "journal", "--root", str(root), "--no-engine")
    assert under(mods, "dockfix.checks", "dockfix.fixes.files") == []  # listing the journal scans nothing


def test_report_loads_no_textual_and_no_fix_core(tmp_path):
    root = faulty_tree(tmp_path / "host")
    scan = tmp_path / "web1.json"
    loaded(tmp_path, "scan", "--root", str(root), "--no-engine", "--format", "json", "-o", str(scan))
    rc, mods = loaded(tmp_path, "report", "--format", "html", "-o", str(tmp_path / "r.html"), str(scan))
    assert rc == 0 and (tmp_path / "r.html").stat().st_size > 1000
    assert under(mods, "textual", "dockfix.tui", "dockfix.screens", "dockfix.fixes", "dockfix.changes",
                 "dockfix.checks") == []


def test_app_launcher_starts_the_scan_before_textual(tmp_path):
    """The scan is started before Textual is imported; the launcher's own imports stay headless."""
    code = ("import sys, dockfix.cli.app, dockfix.tui.background_scan, dockfix.cli.toplevel\n"
            "print(sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_automation_commands_load_no_textual_and_no_fix_core(tmp_path):
    """scan with waivers, `checks`, `waive` and `completion` stay headless; a scan still loads no fix."""
    root = faulty_tree(tmp_path / "host")
    put(root, "etc/dockfix/waivers.yaml", "waivers:\n  - check: icc\n    reason: r\n    expires: 2999-01-01\n")
    for fmt in ("text", "junit"):
        rc, mods = loaded(tmp_path, "scan", "--root", str(root), "--no-engine", "--format", fmt)
        assert rc == 1 and "dockfix.waivers" in mods
        assert under(mods, *NOT_ON_THE_SCAN_PATH) == []
    for argv in (["checks", "--format", "json"], ["completion", "bash"],
                 ["waive", "3.5", "--root", str(root), "--reason", "r", "--until", "2999-01-01"]):
        rc, mods = loaded(tmp_path, *argv)
        assert rc == 0, argv
        assert under(mods, "textual", "dockfix.tui", "dockfix.screens", "dockfix.fixes", "dockfix.changes",
                     "dockfix.plan", "dockfix.journal") == [], argv
