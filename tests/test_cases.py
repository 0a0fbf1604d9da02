"""One case per check: a failing and a passing host tree, built with real owners and modes.

Every case is a row of :data:`CASES`: the check (id or CIS number), a tree (host path -> file,
directory, socket or link, with owner and mode), the ``--path``/``--compose`` given, and the
status expected. One parametrized test runs them all; another makes sure every check has both a
case where it reports a problem (fail or manual) and one where it does not (pass or skip).
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import dockfix.checks  # noqa: F401  (registers every check)
from dockfix.checks.host_config import AUDIT_TARGETS, _AUDIT_ITEMS
from dockfix.host import Host
from dockfix.model import REGISTRY, Check
from dockfix.scan import Context, run_check


# ---------------------------------------------------------------------- tree entries
@dataclass
class F:
    content: str | bytes = ""
    mode: int = 0o644
    owner: tuple[int, int] = (0, 0)


@dataclass
class D:
    mode: int = 0o755
    owner: tuple[int, int] = (0, 0)


@dataclass
class S:  # a real unix socket
    mode: int = 0o660
    owner: tuple[int, int] = (0, 0)


@dataclass
class L:  # a symbolic link
    target: str


def J(obj: Any, mode: int = 0o644, owner: tuple[int, int] = (0, 0)) -> F:
    return F(json.dumps(obj, indent=2) + "\n", mode, owner)


def build(root: Path, tree: dict[str, Any]) -> None:
    for path, e in sorted(tree.items(), key=lambda kv: kv[0].count("/")):
        p = root / path.strip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(e, D):
            p.mkdir(exist_ok=True)
        elif isinstance(e, F):
            p.write_bytes(e.content.encode() if isinstance(e.content, str) else e.content)
        elif isinstance(e, S):
            s = socket.socket(socket.AF_UNIX)
            s.bind(str(p))
            s.close()
        elif isinstance(e, L):
            os.symlink(e.target, p)
            continue
        os.chown(p, *e.owner)
        os.chmod(p, e.mode)


@dataclass
class Case:
    check: str  # id or CIS number
    label: str
    tree: dict[str, Any]
    expect: str | dict[str, str]  # one status for every result, or {subject: status}
    paths: list[str] = field(default_factory=list)
    compose: list[str] = field(default_factory=list)
    evidence: str | None = None  # a phrase the evidence of some result must contain

    @property
    def id(self) -> str:
        return f"{self.check}/{self.label}"


def find_check(name: str) -> Check:
    if name in REGISTRY:
        return REGISTRY[name]
    hits = [c for c in REGISTRY.values() if c.cis == name]
    assert len(hits) == 1, f"{name} names {len(hits)} checks"
    return hits[0]


# ---------------------------------------------------------------------- section 1
GROUP = F("root:x:0:\ndocker:x:999:alice,bob\nstaff:x:50:\n")
PASSWD = F("root:x:0:0::/root:/bin/sh\ncarol:x:1002:999::/home/carol:/bin/sh\n")


def audit_target_entry(cis: str) -> tuple[str, Any]:
    default = dict(AUDIT_TARGETS)[cis]
    if cis == "1.1.3":
        return "/usr/sbin/dockerd", F("ELF", 0o755)  # where Debian installs it
    if default in ("/run/containerd", "/var/lib/docker", "/etc/docker"):
        return default, D(0o711)
    if default == "/run/containerd/containerd.sock":
        return default, S()
    return default, F("x", 0o755 if default.startswith("/usr/") else 0o644)


def audit_cases() -> list[Case]:
    out = []
    for cis, _ in AUDIT_TARGETS:
        path, entry = audit_target_entry(cis)
        base = {path: entry}
        out.append(Case(cis, "fail", {**base, "/etc/audit/rules.d/other.rules": F("-w /etc/passwd -p wa -k identity\n")},
                        "fail", evidence=f"no audit rule watches {path}"))
        out.append(Case(cis, "pass", {**base, "/etc/audit/rules.d/docker.rules": F(f"# docker\n-w {path} -p wa -k docker\n")},
                        "pass", evidence="docker.rules:2"))
        out.append(Case(cis, "absent", {"/etc/audit/rules.d/docker.rules": F("-w /etc/passwd -k x\n")}, "skip"))
    return out


SECTION_1 = [
    Case("1.1.1", "fstab", {"/etc/fstab": F("UUID=1 / ext4 defaults 0 1\nUUID=2 /var/lib/docker xfs defaults 0 2\n")},
         "pass", evidence="own entry in /etc/fstab"),
    Case("1.1.1", "data-root-from-daemon-json", {"/etc/docker/daemon.json": J({"data-root": "/srv/docker"}),
                                                  "/etc/fstab": F("UUID=2 /srv/docker xfs defaults 0 2\n")}, "pass"),
    Case("1.1.1", "unknown", {"/etc/fstab": F("UUID=1 / ext4 defaults 0 1\n")}, "skip"),
    Case("1.1.2", "members", {"/etc/group": GROUP, "/etc/passwd": PASSWD}, "manual", evidence="alice, bob, carol"),
    Case("1.1.2", "empty", {"/etc/group": F("docker:x:999:\n"), "/etc/passwd": F("root:x:0:0::/root:/bin/sh\n")}, "pass"),
    Case("1.1.2", "other-group", {"/etc/group": F("dockerusers:x:998:eve\ndocker:x:999:\n"),
                                  "/etc/docker/daemon.json": J({"group": "dockerusers"})}, "manual", evidence="eve"),
    *audit_cases(),
    Case("1.1.11", "directory-watch-covers-it", {"/etc/docker/daemon.json": J({}),
                                                 "/etc/audit/audit.rules": F("-w /etc/docker -k docker\n")}, "pass",
         evidence="covered by the watch on /etc/docker"),
    Case("1.1.6", "read-only-watch", {"/etc/docker": D(), "/etc/audit/rules.d/d.rules": F("-w /etc/docker -p r\n")},
         "fail", evidence="only for 'r'"),
    Case("1.1.6", "syscall-rule", {"/etc/docker": D(),
                                   "/etc/audit/rules.d/d.rules": F("-a always,exit -F dir=/etc/docker -F perm=wa -k docker\n")},
         "pass"),
    Case("1.1.6", "no-auditd", {"/etc/docker": D()}, "fail", evidence="is auditd installed?"),
    Case("1.1.7", "override-unit", {"/etc/systemd/system/docker.service": F("[Service]\n"),
                                    "/lib/systemd/system/docker.service": F("[Service]\n"),
                                    "/etc/audit/rules.d/d.rules": F("-w /lib/systemd/system/docker.service -k docker\n")},
         {"/etc/systemd/system/docker.service": "fail"}),
    Case("1.2.1", "always", {}, "manual"),
    Case("1.2.2", "no-engine", {}, "skip"),
]


# ---------------------------------------------------------------------- section 2 (daemon.json)
def dj(settings: dict, **kw) -> dict[str, Any]:
    return {"/etc/docker/daemon.json": J(settings), **kw}


SECTION_2 = [
    Case("2.1", "always", dj({}), "manual"),
    Case("2.2", "fail", dj({"icc": True}), "fail", evidence="icc is true (/etc/docker/daemon.json:2)"),
    Case("2.2", "default", dj({}), "fail", evidence="default: true"),
    Case("2.2", "pass", dj({"icc": False}), "pass"),
    Case("2.2", "default-file", {"/etc/default/docker": F('DOCKER_OPTS="--icc=false"\n')}, "pass",
         evidence="/etc/default/docker:1"),
    Case("2.3", "fail", dj({"log-level": "debug"}), "fail"),
    Case("2.3", "pass", dj({}), "pass"),
    Case("2.4", "fail", dj({"iptables": False}), "fail"),
    Case("2.4", "pass", dj({}), "pass"),
    Case("2.5", "fail", dj({"insecure-registries": ["10.0.0.5:5000"]}), "fail", evidence="10.0.0.5:5000"),
    Case("2.5", "pass", dj({}), "pass"),
    Case("2.6", "fail", dj({"storage-driver": "aufs"}), "fail"),
    Case("2.6", "pass", dj({"storage-driver": "overlay2"}), "pass"),
    Case("2.6", "unknown", dj({}), "skip"),
    # CIS v1.8.0 2.7 (no number in 1.6.0: named by id)
    Case("devicemapper", "fail", dj({"storage-driver": "devicemapper"}), "fail", evidence="storage driver devicemapper"),
    Case("devicemapper", "pass", dj({"storage-driver": "overlay2"}), "pass"),
    Case("devicemapper", "unknown", dj({}), "skip"),
    Case("2.7", "fail", dj({"hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2375"]}), "fail",
         evidence="tlsverify is not set"),
    Case("2.7", "pass", dj({"hosts": ["tcp://0.0.0.0:2376"], "tlsverify": True, "tlscacert": "/c", "tlscert": "/s",
                            "tlskey": "/k"}), "pass"),
    Case("2.7", "unix-only", dj({}), "pass"),
    Case("2.8", "unset", dj({}), "manual"),
    Case("2.8", "pass", dj({"default-ulimits": {"nofile": {"Name": "nofile", "Hard": 64000, "Soft": 64000}}}), "pass"),
    Case("2.9", "fail", dj({}), "fail"),
    Case("2.9", "pass", dj({"userns-remap": "default"}), "pass"),
    Case("2.10", "changed", dj({"cgroup-parent": "/custom"}), "manual"),
    Case("2.10", "pass", dj({}), "pass"),
    Case("2.11", "fail", dj({"storage-opts": ["dm.basesize=20G"]}), "fail"),
    Case("2.11", "pass", dj({}), "pass"),
    Case("2.12", "fail", dj({}), "fail"),
    Case("2.12", "pass", dj({"authorization-plugins": ["authz-broker"]}), "pass"),
    Case("2.13", "fail", dj({}), "fail"),
    Case("2.13", "pass", dj({"log-driver": "syslog"}), "pass"),
    Case("2.14", "fail", dj({}), "fail"),
    Case("2.14", "pass", dj({"no-new-privileges": True}), "pass"),
    Case("2.15", "fail", dj({}), "fail"),
    Case("2.15", "pass", dj({"live-restore": True}), "pass"),
    Case("2.16", "fail", dj({}), "fail"),
    Case("2.16", "pass", dj({"userland-proxy": False}), "pass"),
    Case("2.17", "fail", dj({"seccomp-profile": "unconfined"}), "fail"),
    Case("2.17", "pass", dj({"seccomp-profile": "/etc/docker/seccomp.json"}), "pass"),
    Case("2.17", "default", dj({}), "manual"),
    Case("2.18", "fail", dj({"experimental": True}), "fail"),
    Case("2.18", "pass", dj({}), "pass"),
]


# ---------------------------------------------------------------------- section 3 (owners and modes)
ETC_GROUP = {"/etc/group": F("root:x:0:\ndocker:x:999:\n")}
TLS = {"tlscacert": "/etc/docker/tls/ca.pem", "tlscert": "/etc/docker/tls/server.pem", "tlskey": "/etc/docker/tls/server-key.pem"}


def owner_mode_cases(owner_cis: str, mode_cis: str, path: str, good: Any, bad_owner: Any, bad_mode: Any,
                     extra: dict | None = None, absent_extra: dict | None = None, mode_ev: str = "beyond") -> list[Case]:
    extra = extra or {}
    return [
        Case(owner_cis, "fail", {**extra, path: bad_owner}, {path: "fail"}, evidence="owned by 1000:1000"),
        Case(owner_cis, "pass", {**extra, path: good}, {path: "pass"}),
        Case(mode_cis, "fail", {**extra, path: bad_mode}, {path: "fail"}, evidence=mode_ev),
        Case(mode_cis, "pass", {**extra, path: good}, {path: "pass"}),
        Case(owner_cis, "absent", dict(absent_extra or {}), "skip"),
        Case(mode_cis, "absent", dict(absent_extra or {}), "skip"),
    ]


SECTION_3 = [
    *owner_mode_cases("3.1", "3.2", "/lib/systemd/system/docker.service", F("[Service]\n", 0o644),
                      F("[Service]\n", 0o644, (1000, 1000)), F("[Service]\n", 0o666)),
    *owner_mode_cases("3.3", "3.4", "/lib/systemd/system/docker.socket", F("[Socket]\n", 0o644),
                      F("[Socket]\n", 0o644, (1000, 1000)), F("[Socket]\n", 0o664)),
    *owner_mode_cases("3.5", "3.6", "/etc/docker", D(0o755), D(0o755, (1000, 1000)), D(0o733)),
    Case("3.6", "tighter", {"/etc/docker": D(0o700)}, "pass"),
    *owner_mode_cases("3.7", "3.8", "/etc/docker/certs.d/reg.example:5000/ca.crt", F("CERT", 0o444),
                      F("CERT", 0o444, (1000, 1000)), F("CERT", 0o644)),
    *owner_mode_cases("3.9", "3.10", TLS["tlscacert"], F("CA", 0o444), F("CA", 0o444, (1000, 1000)), F("CA", 0o644),
                      extra=dj(TLS)),
    *owner_mode_cases("3.11", "3.12", TLS["tlscert"], F("CERT", 0o444), F("CERT", 0o444, (1000, 1000)),
                      F("CERT", 0o640), extra=dj(TLS)),
    *owner_mode_cases("3.13", "3.14", TLS["tlskey"], F("KEY", 0o400), F("KEY", 0o400, (1000, 1000)), F("KEY", 0o440),
                      extra=dj(TLS), mode_ev="mode 0440; must be 0400"),
    Case("3.14", "stricter-is-not-400", {**dj(TLS), TLS["tlskey"]: F("KEY", 0o000)}, "fail", evidence="must be 0400"),
    Case("3.9", "named-but-missing", dj(TLS), "error", evidence="named by tlscacert"),
    *owner_mode_cases("3.15", "3.16", "/var/run/docker.sock", S(0o660, (0, 999)), S(0o660, (1000, 1000)),
                      S(0o666, (0, 999)), extra=ETC_GROUP),
    Case("3.16", "not-a-socket", {"/var/run/docker.sock": F("", 0o600)}, "error", evidence="not a socket"),
    Case("3.15", "root-group", {**ETC_GROUP, "/var/run/docker.sock": S(0o660, (0, 0))}, "fail",
         evidence="must be root:docker"),
    *owner_mode_cases("3.17", "3.18", "/etc/docker/daemon.json", J({}), J({}, owner=(1000, 1000)), J({}, mode=0o664)),
    Case("3.18", "through-a-link", {"/etc/docker/daemon.json": L("/srv/conf/daemon.json"),
                                    "/srv/conf/daemon.json": J({}, mode=0o666)}, "fail", evidence="through the link"),
    *owner_mode_cases("3.19", "3.20", "/etc/default/docker", F("", 0o644), F("", 0o644, (1000, 1000)), F("", 0o646)),
    *owner_mode_cases("3.22", "3.21", "/etc/sysconfig/docker", F("", 0o644), F("", 0o644, (1000, 1000)), F("", 0o654)),
    *owner_mode_cases("3.23", "3.24", "/run/containerd/containerd.sock", S(0o660), S(0o660, (1000, 1000)), S(0o666)),
]


# ---------------------------------------------------------------------- notes
SHOP = """\
services:
  db:
    image: mysql:8
    environment:
      MYSQL_ROOT_PASSWORD: hunter2
      MYSQL_DATABASE: shop
  app:
    image: shop/app:1
    environment:
      - DATABASE_URL=postgres://shop:${DB_PASS}@db/shop
      - DEBUG=false
  worker:
    image: shop/worker:1
    environment:
      API_TOKEN:
"""
SHOP_OK = """\
services:
  db:
    image: mysql:8
    environment:
      MYSQL_ROOT_PASSWORD_FILE: /run/secrets/db_root
      MYSQL_ALLOW_EMPTY_PASSWORD: "no"
      DATABASE_URL: postgres://shop@db/shop
    secrets: [db_root]
secrets:
  db_root:
    file: ./db_root.txt
"""

REGISTRY_S3 = """\
services:
  registry:
    image: registry:2
    ports: ["5000:5000"]
    environment:
      REGISTRY_STORAGE: s3
      REGISTRY_STORAGE_S3_REGION: eu-west-1
      REGISTRY_STORAGE_S3_BUCKET: scw_internal_registry_bucket
      REGISTRY_STORAGE_S3_ENCRYPT: "false"
"""
REGISTRY_OK = """\
services:
  registry:
    image: docker.io/library/registry:2.8
    environment:
      REGISTRY_HTTP_TLS_CERTIFICATE: /certs/domain.crt
      REGISTRY_HTTP_TLS_KEY: /certs/domain.key
    volumes:
      - ./config.yml:/etc/docker/registry/config.yml:ro
"""
REGISTRY_CONFIG_OK = "version: 0.1\nstorage:\n  s3:\n    bucket: b\n    region: eu-west-1\n    encrypt: true\n"
REGISTRY_CONFIG_TLS = "version: 0.1\nhttp:\n  addr: :5000\n  tls:\n    certificate: /c.crt\n    key: /c.key\n"
REGISTRY_MOUNTED = """\
services:
  registry:
    image: registry:2
    volumes:
      - ./config.yml:/etc/docker/registry/config.yml:ro
"""

DOCKERFILE_BAD = """\
FROM python:3.12-slim
WORKDIR /app
COPY . /app
COPY deploy/id_ed25519 /root/.ssh/id_ed25519
ARG NPM_TOKEN
ENV DB_PASSWORD=hunter2
RUN pip install -r requirements.txt
"""
DOCKERFILE_OK = """\
FROM python:3.12-slim
WORKDIR /app
COPY . /app
COPY certs/internal-ca.crt /usr/local/share/ca-certificates/
RUN --mount=type=secret,id=pip pip install -r requirements.txt
ENV PYTHONUNBUFFERED=1
"""
APP_FILES = {"/src/app/main.py": F("print('hi')\n"), "/src/app/requirements.txt": F("flask\n"),
             "/src/app/.env": F("DB_PASSWORD=hunter2\n", 0o600), "/src/app/data/customers.csv": F("id,email\n"),
             "/src/app/certs/internal-ca.crt": F("CERT")}

NOTES = [
    Case("content-trust", "set", {"/etc/environment": F('LANG=C\nDOCKER_CONTENT_TRUST="1"\n')},
         "pass", evidence="no docker CLI is installed, so the setting has no effect"),
    Case("content-trust", "profile-d", {"/etc/profile.d/dct.sh": F("export DOCKER_CONTENT_TRUST=1\n"),
                                        "/usr/bin/docker": F("ELF", 0o755)},
         "pass", evidence="the CLI version is unknown: before 29.0 the CLI enforces it"),
    Case("content-trust", "unset", {"/etc/environment": F("LANG=C\n"), "/etc/profile.d/x.sh": F("export DOCKER_CONTENT_TRUST=0\n")},
         "fail", evidence="set to 0"),
    # /etc/profile.d is read after /etc/environment: its =0 wins over the =1 before it
    Case("content-trust", "overridden", {"/etc/environment": F("DOCKER_CONTENT_TRUST=1\n"),
                                         "/etc/profile.d/zz.sh": F("export DOCKER_CONTENT_TRUST=0\n")},
         "fail", evidence="set to 0 at /etc/profile.d/zz.sh:1"),
    Case("disable-content-trust-flag", "fail", {
        "/src/ops/deploy.sh": F("#!/bin/sh\nset -e\ndocker pull --disable-content-trust shop/app:1\n", 0o755),
        "/src/ops/.gitlab-ci.yml": F("build:\n  script:\n    - docker build --disable-content-trust=true .\n"),
        "/src/ops/README.md": F("never pass --disable-content-trust\n"),
        "/src/ops/release": F("#!/bin/bash\ndocker run --rm --disable-content-trust shop/app:1\n", 0o755),
        "/src/ops/NOTES": F("docker pull --disable-content-trust (no #! line: not a script)\n")},
        {"/src/ops/deploy.sh": "fail", "/src/ops/.gitlab-ci.yml": "fail", "/src/ops/release": "fail"}, paths=["/src/ops"],
        evidence="line 3 (docker pull)"),
    Case("disable-content-trust-flag", "pass", {
        "/src/ops/deploy.sh": F("#!/bin/sh\n# docker pull --disable-content-trust was removed\ndocker pull --disable-content-trust=false a\n"),
        "/src/ops/Makefile": F("build:\n\tdocker build .\n")}, "pass", paths=["/src/ops"]),
    Case("disable-content-trust-flag", "no-path", {}, "skip"),
    Case("env-password", "fail", {"/srv/shop/compose.yaml": F(SHOP), "/srv/shop/.env": F("DB_PASS=hunter3\n", 0o600)},
         {"compose:/srv/shop/compose.yaml#db": "fail", "compose:/srv/shop/compose.yaml#app": "fail",
          "compose:/srv/shop/compose.yaml#worker": "fail"}, paths=["/srv/shop"],
         evidence="MYSQL_ROOT_PASSWORD set to a literal value (line 5)"),
    Case("env-password", "pass", {"/srv/shop/docker-compose.yml": F(SHOP_OK)},
         {"compose:/srv/shop/docker-compose.yml#db": "pass"}, compose=["/srv/shop/docker-compose.yml"]),
    Case("env-password", "env-file", {"/srv/shop/compose.yaml": F("services:\n  db:\n    image: postgres\n    env_file: [db.env]\n"),
                                       "/srv/shop/db.env": F("# db\nPOSTGRES_USER=shop\nPOSTGRES_PASSWORD=hunter2\n", 0o600)},
         "fail", paths=["/srv/shop"], evidence="POSTGRES_PASSWORD set in the env_file /srv/shop/db.env (line 3)"),
    Case("env-password", "two-variables", {"/srv/shop/compose.yaml": F("services:\n  app:\n    image: a\n    environment:\n"
                                                                        "      DSN: postgres://${U}:${P}@db/x\n"),
                                            "/srv/shop/.env": F("U=shop\nP=hunter2\n")},
         "fail", paths=["/srv/shop"], evidence="from ${U} and ${P}, defined in the .env"),
    Case("env-password", "malformed", {"/srv/shop/compose.yaml": F("services:\n  db: [\n")}, "error",
         paths=["/srv/shop"], evidence="/srv/shop/compose.yaml: line 3"),
    Case("env-password", "nothing", {}, "skip"),
    Case("registry-s3-encryption", "fail", {"/srv/reg/compose.yaml": F(REGISTRY_S3)},
         {"compose:/srv/reg/compose.yaml#registry": "fail"}, paths=["/srv/reg"],
         evidence="REGISTRY_STORAGE_S3_ENCRYPT=false (line 9)"),
    Case("registry-s3-encryption", "pass", {"/srv/reg/compose.yaml": F(REGISTRY_OK), "/srv/reg/config.yml": F(REGISTRY_CONFIG_OK)},
         {"compose:/srv/reg/compose.yaml#registry": "pass"}, paths=["/srv/reg"], evidence="storage.s3.encrypt: true"),
    Case("registry-s3-encryption", "filesystem", {"/srv/reg/compose.yaml": F(REGISTRY_MOUNTED),
                                                  "/srv/reg/config.yml": F(REGISTRY_CONFIG_TLS)}, "skip", paths=["/srv/reg"]),
    Case("registry-https", "fail", {"/srv/reg/compose.yaml": F(REGISTRY_S3)},
         {"compose:/srv/reg/compose.yaml#registry": "fail"}, paths=["/srv/reg"], evidence="serves plain HTTP"),
    Case("registry-https", "pass-env", {"/srv/reg/compose.yaml": F(REGISTRY_OK), "/srv/reg/config.yml": F(REGISTRY_CONFIG_OK)},
         "pass", paths=["/srv/reg"]),
    Case("registry-https", "pass-config", {"/srv/reg/compose.yaml": F(REGISTRY_MOUNTED),
                                           "/srv/reg/config.yml": F(REGISTRY_CONFIG_TLS)}, "pass", paths=["/srv/reg"],
         evidence="http.tls in /srv/reg/config.yml"),
    Case("registry-https", "no-registry", {"/srv/shop/compose.yaml": F(SHOP_OK)}, "skip", paths=["/srv/shop"]),
    Case("sensitive-file-in-image", "fail", {**APP_FILES, "/src/app/Dockerfile": F(DOCKERFILE_BAD),
                                             "/src/app/deploy/id_ed25519": F("KEY", 0o600)},
         {"dockerfile:/src/app/Dockerfile": "fail"}, paths=["/src/app"], evidence="line 3: COPY . takes .env"),
    Case("sensitive-file-in-image", "pass", {**APP_FILES, "/src/app/Dockerfile": F(DOCKERFILE_OK),
                                             "/src/app/.dockerignore": F(".env\ndata/\n**/*.key\n")},
         {"dockerfile:/src/app/Dockerfile": "pass"}, paths=["/src/app"]),
    Case("sensitive-file-in-image", "no-dockerfile", {"/src/app/main.py": F("")}, "skip", paths=["/src/app"]),
    Case("storage-driver", "devicemapper", dj({"storage-driver": "devicemapper"}), "fail", evidence="removed in Docker Engine 25.0"),
    Case("storage-driver", "overlay2", dj({"storage-driver": "overlay2"}), "pass"),
    Case("storage-driver", "unknown-driver", dj({"storage-driver": "something"}), "manual"),
    Case("storage-driver", "unknown", dj({}), "skip"),
]

CASES = SECTION_1 + SECTION_2 + SECTION_3 + NOTES


def run_case(tmp_path: Path, case: Case):
    build(tmp_path, case.tree)
    ctx = Context(Host(str(tmp_path), engine=False), paths=case.paths, compose=case.compose)
    return run_check(find_check(case.check), ctx)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(tmp_path, case: Case):
    findings = run_case(tmp_path, case)
    got = {f.subject: str(f.status) for f in findings}
    if isinstance(case.expect, str):
        assert set(got.values()) == {case.expect}, got
    else:
        for subject, status in case.expect.items():
            assert got.get(subject) == status, got
    if case.evidence:
        assert any(case.evidence in f.evidence for f in findings), [f.evidence for f in findings]
    for f in findings:
        assert f.evidence, f"{f.id} {f.subject}: a result without evidence"
        assert "hunter2" not in f.evidence and "hunter3" not in f.evidence
        assert "hunter2" not in json.dumps(f.data) and "hunter3" not in json.dumps(f.data)


def test_vfs_is_a_low_severity_fail(tmp_path):
    build(tmp_path, dj({"storage-driver": "vfs"}))
    (f,) = run_check(REGISTRY["storage-driver"], Context(Host(str(tmp_path), engine=False)))
    assert (str(f.status), str(f.severity)) == ("fail", "low")


def test_every_check_has_a_problem_case_and_a_clean_case():
    problem: dict[str, set] = {}
    for c in CASES:
        chk = find_check(c.check)
        statuses = {c.expect} if isinstance(c.expect, str) else set(c.expect.values())
        problem.setdefault(chk.id, set()).update(statuses)
    missing = []
    # sections 4-7 are engine checks with their own real-engine tests (tests/test_engine_checks.py ...)
    mine = {"dockfix.checks.host_config", "dockfix.checks.daemon", "dockfix.checks.files", "dockfix.checks.notes",
            "dockfix.checks.storage"}
    checks = [c for c in REGISTRY.values() if c.fn.__module__ in mine]
    assert {c.section for c in checks} >= {"1", "2", "3", "notes"}
    for chk in checks:
        seen = problem.get(chk.id, set())
        if chk.section in ("4", "5", "6", "7") and chk.id not in problem:
            continue  # engine checks: tests/test_engine_checks.py and tests/test_swarm_checks.py
        if chk.id in ("daemon-rootless", "host-hardened", "docker-version"):
            ok = bool(seen)  # always manual (or skip without engine): one case shows it
        elif chk.id == "data-root-partition":
            ok = bool(seen & {"pass"})  # fail needs a live mount table: test_data_root_partition_verdicts
        else:
            ok = bool(seen & {"fail", "manual"}) and bool(seen & {"pass", "skip"})
        if not ok:
            missing.append(f"{chk.id} ({chk.cis}): {sorted(seen)}")
    assert not missing, "checks without a failing and a passing case:\n" + "\n".join(missing)


def test_audit_items_share_one_table():
    assert [cis for cis, _ in AUDIT_TARGETS] == [f"1.1.{n}" for n in range(3, 19)]
    assert [REGISTRY[i].cis for i, _, _ in _AUDIT_ITEMS.values()] == [cis for cis, _ in AUDIT_TARGETS]


MOUNTINFO = """\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
30 22 254:1 / /var rw,relatime shared:2 - xfs /dev/vdb1 rw
31 30 254:2 / /var/lib/docker rw,relatime shared:3 - xfs /dev/vdc1 rw
32 22 0:5 / /srv/my\\040data rw - tmpfs tmpfs rw
"""


@pytest.mark.parametrize("root,status,phrase", [
    ("/var/lib/docker", "pass", "mount point of its own (xfs on /dev/vdc1)"),
    ("/var/lib/docker/sub", "manual", "on the /var/lib/docker partition"),
    ("/var/docker", "manual", "on the /var partition"),
    ("/opt/docker", "fail", "on the root filesystem (ext4 on /dev/vda1)"),
    ("/srv/my data/docker", "manual", "on the /srv/my data partition"),
])
def test_data_root_partition_verdicts(root, status, phrase):
    from dockfix.checks.host_config import judge_partition, mount_points

    r = judge_partition(root, root, "test", mount_points(MOUNTINFO))
    assert (str(r.status), phrase in r.evidence) == (status, True), r.evidence


def test_data_root_partition_on_the_live_root_reads_the_mount_table():
    # read-only look at this machine: whatever the verdict, it names the filesystem it found
    (f,) = run_check(REGISTRY["data-root-partition"], Context(Host("/", engine=False)))
    assert str(f.status) in ("pass", "fail", "manual"), f.evidence
    assert " on " in f.evidence and "data root" in f.evidence
