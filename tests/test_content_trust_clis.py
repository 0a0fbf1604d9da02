"""Content trust (4.5) with real docker CLIs: what DOCKER_CONTENT_TRUST does on the host decides the
verdict and whether the fix may set it.

The CLIs are real binaries and their own ``docker --version`` decides: Debian 12's docker.io (20.10)
and sid's docker-cli (28.5, unpacked by scripts/newer-debs). No Debian suite has a 29.x CLI (sid's
docker-cli is 28.5.2+dfsg4-5, the newest), so the >= 29 branch is fed the version string in the form
those binaries print ("29.0.1"), through the same parser.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from dockfix.checks.notes import _major, cli_version
from dockfix.fixes import load_all
from dockfix.host import Host
from dockfix.model import REGISTRY, Status
from dockfix.scan import Context, run_check
from dockfix.workflow import plan_fixes
from helpers import REPO, put

load_all()


def real_clis() -> list[str]:
    out = []
    if Path("/usr/bin/docker").exists():
        out.append("/usr/bin/docker")  # Debian 12 docker.io
    r = subprocess.run([str(REPO / "scripts/newer-debs"), "--print-dir", "docker-cli"], capture_output=True, text=True)
    if r.returncode == 0 and Path(r.stdout.strip(), "usr/bin/docker").exists():
        out.append(str(Path(r.stdout.strip(), "usr/bin/docker")))
    return out


CLIS = real_clis()


def scan_with(tmp_path, version: str | None, env: str = ""):
    put(tmp_path, "var/lib/")
    put(tmp_path, "usr/bin/docker", "not run: the version comes from the real binary\n", mode=0o755)
    put(tmp_path, "etc/environment", 'PATH="/usr/local/bin:/usr/bin:/bin"\n' + env)
    ctx = Context(Host(str(tmp_path), engine=False))
    ctx.memo("docker_cli_versions", lambda: [("/usr/bin/docker", version)])  # what the real binary said
    (f,) = run_check(REGISTRY["content-trust"], ctx)
    return ctx, f


def test_the_real_clis_report_their_versions():
    assert CLIS, "no docker CLI on this machine (apt-get install docker.io; scripts/newer-debs docker-cli)"
    versions = {cli: cli_version(cli) for cli in CLIS}
    assert all(v for v in versions.values()), versions
    assert "/usr/bin/docker" not in versions or versions["/usr/bin/docker"].startswith("20.10.")
    assert all(_major(v) < 29 for v in versions.values()), versions


@pytest.mark.parametrize("cli", CLIS)
def test_older_cli_fails_and_the_fix_needs_the_admins_own_notary(tmp_path, cli):
    version = cli_version(cli)
    ctx, f = scan_with(tmp_path, version)
    assert f.status == Status.FAIL
    assert f"docker CLI {version}" in f.evidence and "(before 29.0) enforces it" in f.evidence
    assert "DOCKER_CONTENT_TRUST_SERVER is not set" in f.evidence
    (it,) = plan_fixes(ctx, [f], include_disruptive=True).items
    assert str(it.safety) == "manual" and not it.changes
    note = " ".join(it.notes)
    assert "2026-12-08" in note and "cosign" in note and "DOCKER_CONTENT_TRUST_SERVER" in note


@pytest.mark.parametrize("cli", CLIS)
def test_docker_hubs_notary_is_refused_too(tmp_path, cli):
    ctx, f = scan_with(tmp_path, cli_version(cli), "DOCKER_CONTENT_TRUST_SERVER=https://notary.docker.io\n")
    assert "is Docker's own notary" in f.evidence
    (it,) = plan_fixes(ctx, [f], include_disruptive=True).items
    assert str(it.safety) == "manual" and not it.changes


@pytest.mark.parametrize("cli", CLIS)
def test_own_notary_lets_the_fix_set_the_variable(tmp_path, cli):
    ctx, f = scan_with(tmp_path, cli_version(cli), "DOCKER_CONTENT_TRUST_SERVER=https://notary.corp.example:4443\n")
    assert f.status == Status.FAIL and "notary.corp.example:4443" in f.evidence
    plan = plan_fixes(ctx, [f], include_disruptive=True)
    (it,) = plan.items
    assert str(it.safety) == "disruptive" and it.changes
    assert "+DOCKER_CONTENT_TRUST=1" in plan.diff() and "notary.corp.example:4443" in plan.diff()


@pytest.mark.parametrize("env", ["", "DOCKER_CONTENT_TRUST=1\n"])
def test_cli_29_or_later_ignores_it_manual_with_the_way_to_close_4_5(tmp_path, env):
    ctx, f = scan_with(tmp_path, "29.0.1", env)
    assert f.status == Status.MANUAL
    for phrase in ("ignores the setting", "image-digest", "image-signature", "waiver"):
        assert phrase in f.evidence, phrase
    assert f.fix is None  # a manual finding offers no fix
