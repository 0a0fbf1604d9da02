"""Dockerfiles (4.1, 4.6, 4.7, 4.9; 4.10 is the scanner's sensitive-file-in-image) and compose
files (the runtime rules of section 5) under --path / --compose, without an engine: every finding
points at its file and line."""

from __future__ import annotations

import json

import pytest

from helpers import put, run_dockfix

BAD_DOCKERFILE = """\
# syntax=docker/dockerfile:1
FROM debian:12 AS build
RUN apt-get update
RUN apt-get install -y gcc

FROM debian:12
ARG GITHUB_TOKEN=ghp_notarealtoken
ENV LOG_LEVEL=info \\
    DB_PASSWORD=hunter2
ADD https://example.com/app.tar.gz /opt/
COPY id_rsa /root/.ssh/id_rsa
USER root
CMD ["app"]
"""

GOOD_DOCKERFILE = """\
FROM debian:12 AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc
FROM debian:12
ARG VERSION
ENV DB_PASSWORD_FILE=/run/secrets/db
COPY --from=build /usr/bin/gcc /usr/local/bin/
USER 10001:10001
HEALTHCHECK --interval=30s CMD ["/app", "health"]
CMD ["app"]
"""

COMPOSE = """\
services:
  web:
    image: nginx:1.25
    privileged: true
    network_mode: host
    pid: host
    ipc: host
    cap_add:
      - NET_ADMIN
    devices:
      - /dev/sda:/dev/sda
    volumes:
      - ./html:/usr/share/nginx/html:ro
      - /var/run/docker.sock:/var/run/docker.sock
      - /etc:/host-etc
      - type: bind
        source: /srv/shared
        target: /shared
        bind:
          propagation: rshared
    security_opt:
      - seccomp:unconfined
      - apparmor=unconfined
    restart: always
    ulimits:
      nofile: 65535
    cgroup_parent: custom
    healthcheck:
      disable: true
  api:
    image: ${API_IMAGE:-example/api:2}
    user: "1000:1000"
    read_only: true
    ports:
      - "127.0.0.1:8443:8443"
      - target: 9000
        published: 9000
        host_ip: 10.0.0.5
    mem_limit: 256m
    cpus: 0.5
    pids_limit: 200
    cap_drop: [ALL]
    security_opt: ["no-new-privileges:true"]
    restart: on-failure:3
    healthcheck:
      test: ["CMD", "/api", "health"]
  proxy:
    image: traefik:3
    network_mode: bridge
    ports:
      - "80:80"
      - 443:8443
    deploy:
      resources:
        limits:
          memory: 128M
          pids: 50
      restart_policy:
        condition: any
"""


@pytest.fixture(scope="module")
def doc(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("root")
    put(root, "srv/app/Dockerfile", BAD_DOCKERFILE)
    put(root, "srv/app/good/Dockerfile", GOOD_DOCKERFILE)
    put(root, "srv/app/compose.yaml", COMPOSE)
    r = run_dockfix("scan", "--root", str(root), "--no-engine", "--path", "/srv/app", "--format", "json",
                    "--only", "4,5")
    assert r.returncode in (0, 1, 3), r.stderr
    return json.loads(r.stdout)


def at(doc: dict, cis: str, subject: str) -> dict:
    found = [f for f in doc["findings"] if f["cis"] == cis and f["subject"] == subject]
    assert len(found) == 1, (cis, subject, [(f["subject"], f["status"]) for f in doc["findings"] if f["cis"] == cis])
    return found[0]


BAD, GOOD = "dockerfile:/srv/app/Dockerfile", "dockerfile:/srv/app/good/Dockerfile"
COMPOSE_PATH = "/srv/app/compose.yaml"
WEB, API, PROXY = (f"compose:{COMPOSE_PATH}#{s}" for s in ("web", "api", "proxy"))


def located(f: dict, path: str, line: int) -> None:
    assert f["location"] == {"path": path, "line": line}, f


@pytest.mark.parametrize("cis,line,text", [
    ("4.1", 12, "USER is root"),
    ("4.6", 6, "no HEALTHCHECK"),
    ("4.7", 3, "line 3"),
    ("4.9", 10, "ADD used (line 10)"),
    ("4.10", 7, "line 7: ARG GITHUB_TOKEN"),
])
def test_dockerfile_rules(doc, cis, line, text):
    bad = at(doc, cis, BAD)
    assert bad["status"] == "fail" and text in bad["evidence"], bad
    located(bad, "/srv/app/Dockerfile", line)
    assert at(doc, cis, GOOD)["status"] == "pass"


def test_dockerfile_secrets_all_named_never_shown(doc):
    ev = at(doc, "4.10", BAD)["evidence"]
    assert "line 8: ENV DB_PASSWORD" in ev and "line 11: COPY id_rsa" in ev
    text = json.dumps(doc)
    assert "hunter2" not in text and "ghp_notarealtoken" not in text


def test_dockerfile_user_and_health_point_at_the_right_lines(doc):
    located(at(doc, "4.1", GOOD), "/srv/app/good/Dockerfile", 7)
    located(at(doc, "4.6", GOOD), "/srv/app/good/Dockerfile", 8)


@pytest.mark.parametrize("cis,subject,line,text", [
    ("5.5", WEB, 4, "runs privileged"),
    ("5.10", WEB, 5, "network_mode: host"),
    ("5.16", WEB, 6, "pid: host"),
    ("5.17", WEB, 7, "ipc: host"),
    ("5.4", WEB, 8, "NET_ADMIN"),
    ("5.18", WEB, 10, "/dev/sda:/dev/sda"),
    ("5.32", WEB, 14, "/var/run/docker.sock -> /var/run/docker.sock"),
    ("5.6", WEB, 15, "/etc -> /host-etc (read-write)"),
    ("5.20", WEB, 16, "/srv/shared -> /shared (rshared)"),
    ("5.22", WEB, 21, "seccomp=unconfined"),
    ("5.15", WEB, 24, "always restarts without limit"),
    ("5.27", WEB, 28, "disabled"),
    ("5.8", PROXY, 51, "0.0.0.0:80->80/tcp"),
    ("5.14", PROXY, 51, "every host interface"),
    ("5.30", PROXY, 49, "default bridge"),
    ("5.15", PROXY, 58, "any restarts without limit"),
    ("5.11", WEB, 2, "no memory limit"),
    ("5.13", PROXY, 47, "writable"),
])
def test_compose_rules_fail_with_line(doc, cis, subject, line, text):
    f = at(doc, cis, subject)
    assert f["status"] == "fail" and text in f["evidence"], f
    located(f, COMPOSE_PATH, line)


@pytest.mark.parametrize("cis", ["5.4", "5.5", "5.6", "5.8", "5.10", "5.11", "5.12", "5.13", "5.14", "5.15",
                                 "5.16", "5.17", "5.18", "5.20", "5.22", "5.26", "5.27", "5.29", "5.30", "5.32"])
def test_compose_rules_pass_for_a_careful_service(doc, cis):
    assert at(doc, cis, API)["status"] == "pass"


def test_compose_values_read_from_either_syntax(doc):
    assert "256 MiB" in at(doc, "5.11", API)["evidence"]
    assert at(doc, "5.11", PROXY)["status"] == "pass"  # deploy.resources.limits.memory
    assert at(doc, "5.29", PROXY)["status"] == "pass"  # deploy.resources.limits.pids
    ports = at(doc, "5.14", API)["evidence"]
    assert "127.0.0.1:8443->8443/tcp" in ports and "10.0.0.5:9000->9000/tcp" in ports
    assert at(doc, "5.19", WEB)["status"] == "manual" and at(doc, "5.25", WEB)["status"] == "manual"
    assert at(doc, "4.1", API)["status"] == "pass"
    # no engine: the image of "web" cannot be looked at, so its user is a question, not a verdict
    assert at(doc, "4.1", WEB)["status"] == "manual"


def test_broken_compose_file_is_an_error_naming_file_and_line(tmp_path):
    put(tmp_path, "app/compose.yaml", "services:\n  web:\n    image: x\n   bad: [\n")
    r = run_dockfix("scan", "--root", str(tmp_path), "--no-engine", "--compose", "/app/compose.yaml",
                    "--format", "json", "--only", "5.5")
    doc = json.loads(r.stdout)
    (f,) = doc["findings"]
    assert f["status"] == "error" and f["evidence"].startswith("/app/compose.yaml: line 4"), f
    assert f["subject"] == "compose:/app/compose.yaml"


def test_nothing_to_look_at_is_skip(tmp_path):
    r = run_dockfix("scan", "--root", str(tmp_path), "--no-engine", "--format", "json", "--only", "5.5,4.1,4.9")
    doc = json.loads(r.stdout)
    assert {f["status"] for f in doc["findings"]} == {"skip"}, doc["findings"]
