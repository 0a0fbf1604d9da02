"""A compose project deployed with docker-compose on the private engine is traced back to its file
through the labels compose puts on its containers: findings carry the file and line to fix."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from helpers import BUSYBOX_IMAGE, run_dockfix

pytestmark = pytest.mark.engine

COMPOSE = f"""\
version: "2.4"
services:
  app:
    image: {BUSYBOX_IMAGE}
    privileged: true
    network_mode: none
    command: ["sleep", "600"]
    volumes:
      - /etc:/host-etc:ro
"""


def test_compose_project_traced_by_labels(engine, tmp_path):
    if not shutil.which("docker-compose"):
        pytest.fail("docker-compose (Debian package docker-compose) is not installed: scripts/test installs it")
    project = tmp_path / "shop"
    project.mkdir()
    (project / "docker-compose.yml").write_text(COMPOSE)
    r = subprocess.run(["docker-compose", "-p", "dfxtrace", "up", "--no-start"], cwd=project, capture_output=True,
                       text=True, env={**os.environ, "DOCKER_HOST": engine.url}, timeout=120)
    assert r.returncode == 0, r.stderr
    path = str(project / "docker-compose.yml")
    # no --compose and no --path: the file is found from the container's labels alone
    r = run_dockfix("scan", "--root", "/", "--docker-host", engine.url, "--format", "json", "--only", "5.5,5.6")
    doc = json.loads(r.stdout)
    by = {(f["cis"], f["subject"]): f for f in doc["findings"]}
    priv = by[("5.5", "container:dfxtrace_app_1")]
    assert priv["status"] == "fail" and priv["location"] == {"path": path, "line": 5}, priv
    mount = by[("5.6", "container:dfxtrace_app_1")]
    assert mount["status"] == "fail" and mount["location"] == {"path": path, "line": 9}, mount
    # the file's own findings come out too
    assert by[("5.5", f"compose:{path}#app")]["location"] == {"path": path, "line": 5}
