"""image-digest against a real registry: an image pushed to Debian's docker-registry on 127.0.0.1 and
pulled back has a real repository digest; the fix pins a compose file and a Dockerfile to it, the
stack still starts with the pinned image (docker-compose), the Dockerfile still builds, and rollback
restores both files byte for byte."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from dockfix.fixes import load_all
from dockfix.host import Host
from dockfix.model import Status
from dockfix.scan import Context, scan
from dockfix.workflow import apply_plan, plan_fixes, rescan, rollback
from helpers import BUSYBOX_IMAGE, manifest, put
from registry_helpers import REGISTRY_BIN, Registry

pytestmark = pytest.mark.engine
load_all()

COMPOSE = "# the shop\nservices:\n  app:\n    image: {ref}  # pinned by dockfix?\n    command: [\"sleep\", \"600\"]\n" \
          "    network_mode: none\n  local:\n    image: dfx-local/only:1\n    network_mode: none\n"
DOCKERFILE = "# syntax=docker/dockerfile:1\nFROM {ref} AS base\nRUN true\nFROM base\nCMD [\"sleep\", \"600\"]\n"


def compose_v2() -> str | None:
    """sid's compose v2, unpacked by scripts/newer-debs (None when it cannot be had)."""
    from helpers import REPO

    r = subprocess.run([str(REPO / "scripts/newer-debs"), "--print-dir", "docker-compose"], capture_output=True,
                       text=True)
    p = Path(r.stdout.strip(), "usr/libexec/docker/cli-plugins/docker-compose") if r.returncode == 0 else None
    return str(p) if p and p.exists() else None


@pytest.fixture(scope="module")
def pushed(_engine_session):
    """(engine, registry, reference) of an image pushed to a local registry and pulled back."""
    if not REGISTRY_BIN:
        pytest.fail("docker-registry is not installed (apt-get install docker-registry; scripts/test does it)")
    eng = _engine_session
    folder = Path(tempfile.mkdtemp(prefix="dfx-reg-"))
    reg = Registry(folder).start()
    ref = f"{reg.addr}/dfx/bb:1"
    try:
        eng.cli("tag", BUSYBOX_IMAGE, ref)
        eng.cli("push", ref)
        eng.cli("rmi", ref)
        eng.cli("pull", ref)
        eng.cli("tag", BUSYBOX_IMAGE, "dfx-local/only:1")  # never pushed: no repository digest
        yield eng, reg, ref
    finally:
        eng.reset()
        eng.cli("rmi", "-f", ref, "dfx-local/only:1", check=False)
        reg.stop()
        shutil.rmtree(folder, ignore_errors=True)


def test_pin_compose_and_dockerfile_from_a_real_registry(pushed, tmp_path, engine_version):
    eng, reg, ref = pushed
    digest = eng.cli("image", "inspect", "--format", "{{index .RepoDigests 0}}", ref).stdout.strip().split("@")[1]
    assert digest.startswith("sha256:")
    root = tmp_path / "root"
    put(root, "var/lib/")
    put(root, "srv/shop/compose.yaml", COMPOSE.format(ref=ref), mode=0o640, owner=(0, 1000))
    put(root, "srv/shop/Dockerfile", DOCKERFILE.format(ref=ref))
    before = manifest(root)
    ctx = Context(Host(str(root), docker_host=eng.url), paths=["/srv/shop"])
    found = {f.subject: f for f in scan(ctx, only=["image-digest"]).findings}
    app, local, dfile = (found["compose:/srv/shop/compose.yaml#app"], found["compose:/srv/shop/compose.yaml#local"],
                         found["dockerfile:/srv/shop/Dockerfile"])
    assert (app.status, local.status, dfile.status) == (Status.FAIL, Status.FAIL, Status.FAIL)
    repo = ref.rsplit(":", 1)[0]
    assert f"pulled it as {repo}@{digest} (RepoDigests)" in app.evidence and app.location.line == 4
    assert "no repository digest" in local.evidence
    if engine_version == "28":
        # the containerd image store lists dfx-local/only@<its manifest digest> in RepoDigests (the same manifest
        # was pushed as dfx/bb), but containerd records only dfx/bb as where that content came from or went to
        assert f"dfx-local/only@{digest}" in eng.cli("image", "inspect", "--format", "{{json .RepoDigests}}",
                                                     "dfx-local/only:1").stdout
        assert "never pulled from or pushed to that repository" in local.evidence, local.evidence
        assert f"127.0.0.1/{repo.split('/', 1)[1]}" in local.evidence, local.evidence
    plan = plan_fixes(ctx, list(found.values()), include_disruptive=True)
    by = {it.subject: it for it in plan.items}
    assert str(by[local.subject].safety) == "manual" and not by[local.subject].changes
    assert str(by[app.subject].safety) == "disruptive" and by[app.subject].changes
    assert apply_plan(ctx.host, plan).error is None
    pinned = f"{ref}@{digest}"
    compose_text = (root / "srv/shop/compose.yaml").read_text()
    assert compose_text == COMPOSE.format(ref=pinned)  # one value changed, comment and layout kept
    assert (root / "srv/shop/Dockerfile").read_text() == DOCKERFILE.format(ref=pinned)
    st = os.lstat(root / "srv/shop/compose.yaml")
    assert (st.st_mode & 0o777, st.st_uid, st.st_gid) == (0o640, 0, 1000)
    # the pinned stack still starts, with the pinned image; the pinned Dockerfile still builds
    env = {**os.environ, "DOCKER_HOST": eng.url}
    r = subprocess.run(["docker-compose", "-p", "dfxpin", "-f", str(root / "srv/shop/compose.yaml"), "up", "-d",
                        "app"], capture_output=True, text=True, env=env, timeout=180)
    assert r.returncode == 0, r.stderr
    try:
        running = eng.cli("inspect", "--format", "{{.State.Running}} {{.Config.Image}}", "dfxpin_app_1").stdout.split()
        assert running == ["true", pinned]
        r = subprocess.run(["docker", "-H", eng.url, "build", "-q", "-t", "dfx-pinned/built:1", str(root / "srv/shop")],
                           capture_output=True, text=True, env={**os.environ, "DOCKER_BUILDKIT": "0"}, timeout=180)
        assert r.returncode == 0, r.stderr
        v2 = compose_v2()
        if v2:  # compose v2 (sid's docker-compose, run standalone) starts the pinned service too
            r = subprocess.run([v2, "-p", "dfxpin2", "-f", str(root / "srv/shop/compose.yaml"), "up", "-d", "app"],
                               capture_output=True, text=True, env=env, timeout=180)
            assert r.returncode == 0, r.stderr
            running = eng.cli("inspect", "--format", "{{.State.Running}} {{.Config.Image}}", "dfxpin2-app-1").stdout.split()
            assert running == ["true", pinned]
        after = {f.subject: f.status for f in rescan(ctx, ["image-digest"])}
        assert after[app.subject] == after[dfile.subject] == Status.PASS
        assert after["container:dfxpin_app_1"] == Status.PASS  # runs by digest now
    finally:
        if compose_v2():
            subprocess.run([compose_v2(), "-p", "dfxpin2", "-f", str(root / "srv/shop/compose.yaml"), "down"],
                           capture_output=True, env=env, timeout=120)
        subprocess.run(["docker-compose", "-p", "dfxpin", "-f", str(root / "srv/shop/compose.yaml"), "down"],
                       capture_output=True, env=env, timeout=120)
        eng.cli("rmi", "-f", "dfx-pinned/built:1", check=False)
    assert rollback(ctx.host, "last").restored
    journal = "var/lib/dockfix"
    assert {k: v for k, v in manifest(root).items() if not k.startswith(journal)} == \
        {k: v for k, v in before.items() if not k.startswith(journal)}  # bytes, owners and modes
    assert (root / "srv/shop/compose.yaml").read_text() == COMPOSE.format(ref=ref)


def test_an_image_made_here_and_pushed_is_pinned_to_what_the_registry_has(pushed, tmp_path):
    """Built or imported here, tagged for the registry and pushed (never pulled back): the registry serves
    its digest, so it is pinned on both engines (graph driver: push writes RepoDigests; containerd
    image store: push labels the content with the repository)."""
    eng, reg, _ = pushed
    ctx_dir = tmp_path / "build"
    ctx_dir.mkdir()
    (ctx_dir / "Dockerfile").write_text(f"FROM {BUSYBOX_IMAGE}\nLABEL dfx.case=pushed-not-pulled\n")
    ref = f"{reg.addr}/dfx/made-here:1"
    r = subprocess.run(["docker", "-H", eng.url, "build", "-q", "-t", "dfx-made/here:1", str(ctx_dir)],
                       capture_output=True, text=True, env={**os.environ, "DOCKER_BUILDKIT": "0"}, timeout=180)
    assert r.returncode == 0, r.stderr
    try:
        root = tmp_path / "root"
        put(root, "srv/a/compose.yaml", f"services:\n  app:\n    image: {ref}\n  built:\n    image: dfx-made/here:1\n")
        ctx = Context(Host(str(root), docker_host=eng.url), paths=["/srv/a"])
        eng.cli("tag", "dfx-made/here:1", ref)
        before = {f.subject: f for f in scan(ctx, only=["image-digest"]).findings}
        # tagged for the registry, not pushed yet: nothing a registry serves
        assert before["compose:/srv/a/compose.yaml#app"].data["digest"] is None, before
        eng.cli("push", ref)
        digest = eng.cli("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip() \
            if eng.version == "28" else None
        ctx = Context(Host(str(root), docker_host=eng.url), paths=["/srv/a"])
        found = {f.subject: f for f in scan(ctx, only=["image-digest"]).findings}
        app, built = found["compose:/srv/a/compose.yaml#app"], found["compose:/srv/a/compose.yaml#built"]
        assert app.data["digest"] and app.data["pinned"] == f"{ref}@{app.data['digest']}", app.evidence
        assert digest in (None, app.data["digest"])  # the containerd store: the image's own manifest
        assert built.data["digest"] is None and "no repository digest" in built.evidence, built.evidence
    finally:
        eng.cli("rmi", "-f", ref, "dfx-made/here:1", check=False)


def test_where_the_origin_cannot_be_read_nothing_is_pinned(pushed, tmp_path, monkeypatch, engine_version):
    """A host with no ctr (neither beside the engine's containerd nor on PATH; here the two look-ups are
    made to find none): on the containerd image store dockfix cannot tell a pulled image from one made
    here, so it pins nothing and says why; the graph-driver store needs no ctr."""
    import dockfix.sources.image_origin as origin

    eng, reg, ref = pushed
    monkeypatch.setattr(origin, "_ctr_beside_containerd", lambda address: None)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    root = tmp_path / "root"
    put(root, "srv/a/compose.yaml", f"services:\n  app:\n    image: {ref}\n")
    ctx = Context(Host(str(root), docker_host=eng.url), paths=["/srv/a"])
    (app,) = [f for f in scan(ctx, only=["image-digest"]).findings if f.subject.startswith("compose:")]
    assert app.status == Status.FAIL
    (it,) = plan_fixes(ctx, [app], include_disruptive=True).items
    if engine_version == "28":
        assert app.data["digest"] is None and "ctr (containerd's command line" in app.evidence, app.evidence
        assert "pin by hand a digest the registry serves" in app.evidence
        assert str(it.safety) == "manual" and not it.changes
    else:
        assert app.data["digest"] and str(it.safety) == "disruptive"


def test_a_running_container_by_tag_fails_and_is_left_to_the_admin(pushed, tmp_path):
    eng, reg, ref = pushed
    eng.cli("run", "-d", "--name", "bytag", "--network", "none", ref, "sleep", "600")
    ctx = Context(Host(str(tmp_path), docker_host=eng.url))
    found = [f for f in scan(ctx, only=["image-digest"]).findings if f.subject == "container:bytag"]
    assert [f.status for f in found] == [Status.FAIL]
    (it,) = plan_fixes(ctx, found, include_disruptive=True).items
    assert str(it.safety) == "manual" and "recreate it" in " ".join(it.notes)


SCRATCH = "FROM scratch\nCOPY x /x\n"
STAGES = "FROM busybox:1.36@sha256:" + "a" * 64 + " AS build\nFROM build\n"
ARGFROM = "ARG BASE=busybox:1\nFROM $BASE\n"


@pytest.mark.parametrize("files, status, phrase", [
    ({"srv/a/compose.yaml": "services:\n  w:\n    image: nginx:1.27\n"}, "fail", "no-engine"),
    ({"srv/a/compose.yaml": "services:\n  w:\n    image: nginx:1.27@sha256:" + "b" * 64 + "\n"}, "pass", "pinned"),
    ({"srv/a/compose.yaml": "services:\n  w:\n    build: .\n"}, None, ""),  # build only: no image to pin
    ({"srv/a/Dockerfile": SCRATCH}, None, ""),
    ({"srv/a/Dockerfile": STAGES}, "pass", "pinned by digest"),
    ({"srv/a/Dockerfile": ARGFROM}, "fail", "chosen by a variable"),
], ids=["compose-tag", "compose-digest", "compose-build", "scratch", "stages", "arg"])
def test_image_digest_cases_without_engine(tmp_path, files, status, phrase):
    for rel, text in files.items():
        put(tmp_path, rel, text)
    ctx = Context(Host(str(tmp_path), engine=False), paths=["/srv/a"])
    found = scan(ctx, only=["image-digest"]).findings
    if status is None:
        assert [str(f.status) for f in found] == ["skip"], [(f.subject, f.evidence) for f in found]
        return
    assert [str(f.status) for f in found] == [status], [(f.subject, f.evidence) for f in found]
    assert phrase in found[0].evidence
    if status == "fail":
        (it,) = plan_fixes(ctx, found, include_disruptive=True).items
        assert str(it.safety) == "manual" and not it.changes  # no digest known: pinned by hand
