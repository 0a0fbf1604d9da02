"""Every fix, on a failing tree: apply, the check passes on a rescan; roll back, the tree is
byte-identical (owners and modes too); a hand edit after the apply makes the rollback refuse,
naming the file, and --force restores. Real files, real chown/chmod, through the workflow API that
`dockfix --apply` uses."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Callable

import pytest

from helpers import manifest, put

from dockfix.host import Host
from dockfix.model import REGISTRY, Status
from dockfix.scan import Context, scan
from dockfix.workflow import apply_plan, plan_fixes, rescan, rollback

JOURNAL = "var/lib/dockfix"


def tree_manifest(root) -> dict:
    return {k: v for k, v in manifest(root).items() if not (k == JOURNAL or k.startswith(JOURNAL + "/"))}


def base(root: Path) -> None:
    put(root, "var/lib/")
    put(root, "etc/group", "root:x:0:\ndocker:x:998:\n")
    put(root, "etc/docker/", mode=0o755)


def unix_socket(path: Path, mode: int, owner: tuple[int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.close()
    os.chown(path, *owner)
    os.chmod(path, mode)


def daemon_json(text: str, mode=0o644, owner=(0, 0)) -> Callable[[Path], None]:
    return lambda root: put(root, "etc/docker/daemon.json", text, mode=mode, owner=owner)


TLS = '{\n  "tlsverify": true,\n  "tlscacert": "/etc/docker/tls/ca.pem",\n  "tlscert": "/etc/docker/tls/cert.pem",\n  "tlskey": "/etc/docker/tls/key.pem"\n}\n'


def tls_tree(which: str, mode: int, owner=(0, 0)) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        daemon_json(TLS)(root)
        for name in ("ca.pem", "cert.pem", "key.pem"):
            m, o = (mode, owner) if name == which else ((0o400 if name == "key.pem" else 0o444), (0, 0))
            put(root, f"etc/docker/tls/{name}", f"-----BEGIN {name}-----\n", mode=m, owner=o)
    return build


# check id -> what makes it fail
SECTION3: dict[str, Callable[[Path], None]] = {
    "docker-service-owner": lambda r: put(r, "lib/systemd/system/docker.service", "[Service]\n", owner=(1000, 1000)),
    "docker-service-mode": lambda r: put(r, "lib/systemd/system/docker.service", "[Service]\n", mode=0o666),
    "docker-socket-unit-owner": lambda r: put(r, "etc/systemd/system/docker.socket", "[Socket]\n", owner=(0, 1000)),
    "docker-socket-unit-mode": lambda r: put(r, "etc/systemd/system/docker.socket", "[Socket]\n", mode=0o664),
    "etc-docker-owner": lambda r: put(r, "etc/docker/", owner=(1000, 1000), mode=0o755),
    "etc-docker-mode": lambda r: put(r, "etc/docker/", mode=0o733),
    "registry-certs-owner": lambda r: put(r, "etc/docker/certs.d/reg:5000/ca.crt", "C\n", mode=0o444, owner=(1000, 0)),
    "registry-certs-mode": lambda r: put(r, "etc/docker/certs.d/reg:5000/ca.crt", "C\n", mode=0o644),
    "tls-ca-cert-owner": tls_tree("ca.pem", 0o444, (1000, 1000)),
    "tls-ca-cert-mode": tls_tree("ca.pem", 0o664),
    "tls-server-cert-owner": tls_tree("cert.pem", 0o444, (0, 1000)),
    "tls-server-cert-mode": tls_tree("cert.pem", 0o644),
    "tls-server-key-owner": tls_tree("key.pem", 0o400, (1000, 0)),
    "tls-server-key-mode": tls_tree("key.pem", 0o640),
    "docker-sock-owner": lambda r: unix_socket(r / "var/run/docker.sock", 0o660, (1000, 998)),
    "docker-sock-mode": lambda r: unix_socket(r / "var/run/docker.sock", 0o666, (0, 998)),
    "daemon-json-owner": daemon_json("{}\n", owner=(1000, 1000)),
    "daemon-json-mode": daemon_json("{}\n", mode=0o666),
    "etc-default-docker-owner": lambda r: put(r, "etc/default/docker", 'DOCKER_OPTS=""\n', owner=(1000, 0)),
    "etc-default-docker-mode": lambda r: put(r, "etc/default/docker", 'DOCKER_OPTS=""\n', mode=0o646),
    "etc-sysconfig-docker-owner": lambda r: put(r, "etc/sysconfig/docker", 'OPTIONS=""\n', owner=(0, 1000)),
    "etc-sysconfig-docker-mode": lambda r: put(r, "etc/sysconfig/docker", 'OPTIONS=""\n', mode=0o660),
    "containerd-sock-owner": lambda r: unix_socket(r / "run/containerd/containerd.sock", 0o660, (0, 1000)),
    "containerd-sock-mode": lambda r: unix_socket(r / "run/containerd/containerd.sock", 0o666, (0, 0)),
}

DAEMON_TEXT = '{\n    "log-driver": "json-file",\n    "icc": true,\n    "log-level": "debug",\n    "iptables": false,\n' \
              '    "insecure-registries": ["reg.example:5000"],\n    "storage-opts": ["dm.basesize=20G"],\n' \
              '    "seccomp-profile": "unconfined",\n    "experimental": true\n}\n'

SECTION2: dict[str, Callable[[Path], None]] = {
    key: daemon_json(DAEMON_TEXT) for key in
    ("icc", "log-level", "iptables", "insecure-registries", "dm-basesize", "no-new-privileges", "live-restore",
     "userland-proxy", "seccomp-profile", "experimental")
}

NOTES: dict[str, Callable[[Path], None]] = {
    # content trust is off (=0 in /etc/environment): the fix turns it on, with the 2026 warning (only because
    # DOCKER_CONTENT_TRUST_SERVER names the admin's own notary: tests/test_content_trust_clis.py)
    "content-trust": lambda r: (put(r, "etc/environment", 'PATH="/usr/bin:/bin"\nDOCKER_CONTENT_TRUST=1\n'
                                    "DOCKER_CONTENT_TRUST_SERVER=https://notary.corp.example\n"),
                                put(r, "etc/profile.d/dct.sh", "export DOCKER_CONTENT_TRUST=0\n")),
}

SECRETS: dict[str, Callable[[Path], None]] = {
    # a compose file with a password in its environment (found through --compose, see CONTEXT_ARGS)
    "env-password": lambda r: put(r, "srv/app/compose.yaml", "services:\n  app:\n    image: postgres:16  # db\n"
                                  "    environment:\n      POSTGRES_PASSWORD: Case-5e5e5e\n", owner=(1000, 1000)),
    "registry-s3-encryption": lambda r: put(r, "srv/app/compose.yaml", "services:\n  registry:\n    image: registry:2\n"
                                            "    environment:\n      REGISTRY_STORAGE: s3\n"),
}
#: Extra Context arguments for cases whose files are not at fixed places.
CONTEXT_ARGS: dict[str, dict] = {k: {"compose": ["/srv/app/compose.yaml"]} for k in SECRETS}
#: Manual fixes (shown, never applied) and the test that shows their steps.
MANUAL_ONLY = {"registry-https": "tests/test_secrets_fix.py::test_registry_s3_encryption_in_compose_and_config",
               "devicemapper": "tests/test_benchmarks.py::test_devicemapper_fix_is_manual"}
#: Fixes whose cases need a real registry or engine, and the test that applies and rolls them back.
ENGINE_ONLY = {"image-digest": "tests/test_image_digest.py::test_pin_compose_and_dockerfile_from_a_real_registry"}

CASES = {**SECTION3, **SECTION2, **NOTES, **SECRETS}


def test_every_fix_has_a_case():
    from dockfix.fixes import load_all

    load_all()

    fixable = {c.id for c in REGISTRY.values() if c.builder is not None}
    covered = set(CASES) | set(AUDIT_IDS) | set(MANUAL_ONLY) | set(ENGINE_ONLY)
    assert fixable <= covered, f"fixes without a test case: {sorted(fixable - covered)}"


def plan_for(root: Path, check_id: str):
    ctx = Context(Host(str(root), engine=False), **CONTEXT_ARGS.get(check_id, {}))
    findings = scan(ctx, only=[check_id]).findings
    assert {f.status for f in findings if f.id == check_id} == {Status.FAIL}, [f.evidence for f in findings]
    return ctx, plan_fixes(ctx, findings, include_disruptive=True)


def first_file(plan) -> str:
    for c in plan.changes:
        if getattr(c, "path", None) and c.kind in ("write", "chown", "chmod"):
            return c.path
    raise AssertionError("no file change in the plan")


def hand_edit(root: Path, path: str) -> None:
    real = root / path.lstrip("/")
    if real.is_file() and not real.is_symlink():
        with open(real, "ab") as f:
            f.write(b"\n# edited by hand\n")
    else:
        os.chmod(real, 0o700)


def exercise(root: Path, check_id: str) -> None:
    before = tree_manifest(root)
    ctx, plan = plan_for(root, check_id)
    assert plan.applicable(), plan.diff()
    assert plan.diff(), "a plan shows what it changes"
    assert tree_manifest(root) == before, "planning touches nothing"
    res = apply_plan(ctx.host, plan)
    assert res.error is None and res.txid
    after = rescan(ctx, [check_id])
    assert after and all(f.status in (Status.PASS, Status.MANUAL) for f in after), [(f.status, f.evidence) for f in after]
    assert tree_manifest(root) != before
    fixed_state = tree_manifest(root)

    rb = rollback(ctx.host, res.txid)
    assert rb.refused_paths == [] and rb.restored
    assert tree_manifest(root) == before

    # again, then a hand edit: refused naming the file; --force restores exactly
    ctx, plan = plan_for(root, check_id)
    res = apply_plan(ctx.host, plan)
    assert res.error is None and tree_manifest(root) == fixed_state
    edited = first_file(plan)
    hand_edit(root, edited)
    rb = rollback(ctx.host, "last")
    assert rb.restored == [] and any(edited in p for p in rb.refused_paths), rb.refused_paths
    rb = rollback(ctx.host, "last", force=True)
    assert rb.refused_paths == []
    assert tree_manifest(root) == before


@pytest.mark.parametrize("check_id", sorted(CASES))
def test_fix(tmp_path, check_id):
    base(tmp_path)
    CASES[check_id](tmp_path)
    exercise(tmp_path, check_id)


def test_socket_behind_var_run_link_is_changed_at_its_real_path(tmp_path):
    """On real hosts /var/run -> /run: the plan names /run/docker.sock and never follows a link."""
    base(tmp_path)
    put(tmp_path, "var/")
    os.symlink("../run", tmp_path / "var/run")  # (an absolute link is followed out of the root by Host.lstat)
    unix_socket(tmp_path / "run/docker.sock", 0o666, (0, 998))
    before = tree_manifest(tmp_path)
    ctx, plan = plan_for(tmp_path, "docker-sock-mode")
    assert [c.path for c in plan.changes] == ["/run/docker.sock"]
    assert apply_plan(ctx.host, plan).error is None
    assert os.lstat(tmp_path / "run/docker.sock").st_mode & 0o777 == 0o660
    assert {f.status for f in rescan(ctx, ["docker-sock-mode"])} == {Status.PASS}
    assert rollback(ctx.host, "last").restored
    assert tree_manifest(tmp_path) == before


def test_daemon_json_created_when_absent_and_removed_on_rollback(tmp_path):
    put(tmp_path, "var/lib/")
    before = tree_manifest(tmp_path)
    ctx, plan = plan_for(tmp_path, "live-restore")
    assert [c.kind for c in plan.changes] == ["mkdir", "mkdir", "write"]  # /etc, /etc/docker, daemon.json
    res = apply_plan(ctx.host, plan)
    assert res.error is None
    st = os.lstat(tmp_path / "etc/docker/daemon.json")
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, 0, 0o644)
    assert (tmp_path / "etc/docker/daemon.json").read_text() == '{\n  "live-restore": true\n}\n'
    assert rollback(ctx.host, "last").restored
    assert tree_manifest(tmp_path) == before


def test_daemon_json_edits_keep_the_rest_of_the_file(tmp_path):
    base(tmp_path)
    text = '{\n\t"log-driver": "json-file",\n\t"log-opts": {"max-size": "10m"},\n\t"icc": true\n}\n'
    put(tmp_path, "etc/docker/daemon.json", text, mode=0o640, owner=(0, 0))
    ctx = Context(Host(str(tmp_path), engine=False))
    plan = plan_fixes(ctx, scan(ctx, only=["2.2", "2.15"]).findings, include_disruptive=True)
    assert apply_plan(ctx.host, plan).error is None
    assert (tmp_path / "etc/docker/daemon.json").read_text() == (
        '{\n\t"log-driver": "json-file",\n\t"log-opts": {"max-size": "10m"},\n\t"icc": false,\n\t"no-new-privileges": true\n}\n')
    assert os.lstat(tmp_path / "etc/docker/daemon.json").st_mode & 0o777 == 0o640
    diff = plan.diff()
    assert '-\t"icc": true,' in diff or '-\t"icc": true' in diff
    assert "restart" in diff


def test_setting_on_the_command_line_makes_the_fix_manual(tmp_path):
    base(tmp_path)
    put(tmp_path, "etc/default/docker", 'DOCKER_OPTS="--icc=true"\n')
    ctx = Context(Host(str(tmp_path), engine=False))
    plan = plan_fixes(ctx, scan(ctx, only=["2.2"]).findings, include_disruptive=True)
    assert [it.safety for it in plan.items] == ["manual"] and not plan.changes
    assert "/etc/default/docker" in plan.items[0].notes[0] and "stop dockerd from starting" in plan.items[0].notes[0]


def test_disruptive_fixes_need_asking(tmp_path):
    base(tmp_path)
    daemon_json(DAEMON_TEXT)(tmp_path)
    ctx = Context(Host(str(tmp_path), engine=False))
    findings = scan(ctx, only=["2"]).findings
    safe = plan_fixes(ctx, findings)
    assert {it.check_id for it in safe.applicable()} == {"log-level", "live-restore"}
    ctx = Context(Host(str(tmp_path), engine=False))
    every = plan_fixes(ctx, scan(ctx, only=["2"]).findings, include_disruptive=True)
    assert {"icc", "userland-proxy", "no-new-privileges"} <= {it.check_id for it in every.applicable()}


# ---------------------------------------------------------------------- audit rules (1.1.3-1.1.18)
AUDIT_PATHS = {
    "1.1.3": "usr/bin/dockerd", "1.1.4": "run/containerd/", "1.1.5": "var/lib/docker/", "1.1.6": "etc/docker/",
    "1.1.7": "lib/systemd/system/docker.service", "1.1.8": "run/containerd/containerd.sock",
    "1.1.9": "lib/systemd/system/docker.socket", "1.1.10": "etc/default/docker", "1.1.11": "etc/docker/daemon.json",
    "1.1.12": "etc/containerd/config.toml", "1.1.13": "etc/sysconfig/docker", "1.1.14": "usr/bin/containerd",
    "1.1.15": "usr/bin/containerd-shim", "1.1.16": "usr/bin/containerd-shim-runc-v1",
    "1.1.17": "usr/bin/containerd-shim-runc-v2", "1.1.18": "usr/bin/runc",
}
AUDIT_IDS = {c.id: c.cis for c in REGISTRY.values() if c.cis in AUDIT_PATHS} if REGISTRY else {}


def _audit_ids() -> dict[str, str]:
    import dockfix.checks  # noqa: F401

    return {c.id: c.cis for c in REGISTRY.values() if c.cis in AUDIT_PATHS}


AUDIT_IDS = _audit_ids()


def audit_tree(root: Path) -> None:
    base(root)
    for cis, rel in AUDIT_PATHS.items():
        if rel.endswith(".sock"):
            unix_socket(root / rel, 0o660, (0, 0))
        elif rel.endswith("/"):
            put(root, rel)
        else:
            put(root, rel, "{}\n" if rel.endswith(".json") else "x\n", mode=0o755 if rel.startswith("usr/bin") else 0o644)


@pytest.mark.skipif(not AUDIT_IDS, reason="the audit checks (scanner, dockfix/checks/host_config.py) are not merged yet")
@pytest.mark.parametrize("check_id", sorted(AUDIT_IDS))
def test_audit_fix(tmp_path, check_id):
    audit_tree(tmp_path)
    exercise(tmp_path, check_id)


@pytest.mark.skipif(not AUDIT_IDS, reason="the audit checks are not merged yet")
def test_audit_fixes_build_one_rules_file(tmp_path):
    audit_tree(tmp_path)
    before = tree_manifest(tmp_path)
    ctx = Context(Host(str(tmp_path), engine=False))
    plan = plan_fixes(ctx, scan(ctx, only=["1.1"]).findings)
    assert len(plan.applicable()) == 16
    assert {c.path for c in plan.changes if c.kind == "write"} == {"/etc/audit/rules.d/docker.rules"}
    assert apply_plan(ctx.host, plan).error is None
    rules = (tmp_path / "etc/audit/rules.d/docker.rules").read_text()
    assert "-w /usr/bin/dockerd -p wa -k docker\n" in rules and sum(ln.startswith("-w ") for ln in rules.splitlines()) == 16
    assert {f.status for f in rescan(ctx, AUDIT_IDS)} == {Status.PASS}
    assert rollback(ctx.host, "last").restored
    assert tree_manifest(tmp_path) == before  # /etc/audit and rules.d, created by the fix, are gone again


def test_created_directory_holding_other_files_is_not_removed(tmp_path):
    put(tmp_path, "var/lib/")
    before = tree_manifest(tmp_path)
    ctx, plan = plan_for(tmp_path, "live-restore")  # creates /etc, /etc/docker and daemon.json
    assert apply_plan(ctx.host, plan).error is None
    put(tmp_path, "etc/hostname", "box\n")  # someone else's file in the /etc dockfix created
    rb = rollback(ctx.host, "last")
    assert rb.restored == [] and any("/etc " in p and "hostname" in p for p in rb.refused_paths), rb.refused_paths
    rb = rollback(ctx.host, "last", force=True)
    assert rb.refused_paths == []
    assert (tmp_path / "etc/hostname").read_text() == "box\n"
    assert not (tmp_path / "etc/docker").exists()
    assert set(tree_manifest(tmp_path)) == set(before) | {"etc", "etc/hostname"}


def test_a_broken_fix_becomes_a_manual_item_and_others_still_plan(tmp_path, monkeypatch):
    from dockfix.fixes import load_all

    load_all()

    base(tmp_path)
    put(tmp_path, "etc/docker/", mode=0o733, owner=(1000, 0))
    monkeypatch.setattr(REGISTRY["etc-docker-owner"], "builder", lambda ctx, f: 1 / 0)
    ctx = Context(Host(str(tmp_path), engine=False))
    plan = plan_fixes(ctx, scan(ctx, only=["3.5", "3.6"]).findings)
    by_id = {it.check_id: it for it in plan.items}
    assert by_id["etc-docker-owner"].safety == "manual" and "ZeroDivisionError" in by_id["etc-docker-owner"].notes[0]
    assert by_id["etc-docker-mode"].changes


def test_rewritten_file_keeps_its_extended_attributes(tmp_path):
    base(tmp_path)
    p = put(tmp_path, "etc/docker/daemon.json", '{"icc": true}\n')
    try:
        os.setxattr(p, "user.dockfix-test", b"label")
    except OSError as e:
        pytest.skip(f"this filesystem takes no user xattrs ({e.strerror})")
    ctx = Context(Host(str(tmp_path), engine=False))
    plan = plan_fixes(ctx, scan(ctx, only=["2.2"]).findings, include_disruptive=True)
    assert apply_plan(ctx.host, plan).error is None
    assert os.getxattr(p, "user.dockfix-test") == b"label"
    assert rollback(ctx.host, "last").restored
    assert os.getxattr(p, "user.dockfix-test") == b"label"
