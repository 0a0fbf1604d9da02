"""How dockfix reads where an image of the containerd image store came from, on text an engine gives.

The real engines show it in tests/test_image_digest.py and tests/test_image_signature.py (Docker 28:
containerd's labels through ``ctr content ls``). ``Identity.Pull`` is API 1.53 (Docker 29), which no
engine on this machine speaks: its case here is the document moby's swagger.yaml defines, not a real
engine's answer."""

from __future__ import annotations

from dockfix.sources.image_origin import identity_repositories, parse_content_ls, repo_key

# ctr content ls of Docker 28.5.2 / containerd 2.1.9 after a push to 127.0.0.1:33797/dfx/bb and .../dfx/pushed
CTR_LS = (
    "DIGEST\t\t\t\t\t\t\t\t\tSIZE\tAGE\t\tLABELS\n"
    "sha256:6ba32b8289df77efff1f33c9ecff0652b51d14283068e02dfc940c3eae29820b\t405B\t1 second\t"
    "containerd.io/distribution.source.127.0.0.1=dfx/bb,dfx/pushed,containerd.io/gc.ref.content.config="
    "sha256:9e340648ab64f921b80e8e64976ee70ca182efd6b173a3d15dcf205ca3e8af9a,containerd.io/gc.ref.content.l.0="
    "sha256:1054e6561f00ada157196408f30cf736942a6d42dc7ceb0f90e5c93eebed9406\n"
    "sha256:" + "c" * 64 + "\t291B\t1 second\tcontainerd.io/gc.ref.snapshot.overlayfs=sha256:" + "d" * 64 + "\n"
)


def test_repository_names_compare_as_containerd_records_them():
    assert repo_key("127.0.0.1:33797/dfx/bb@sha256:" + "a" * 64) == "127.0.0.1/dfx/bb"
    assert repo_key("busybox") == repo_key("docker.io/library/busybox") == "docker.io/library/busybox"
    assert repo_key("dfx-local/only") == "docker.io/dfx-local/only"
    assert repo_key("localhost:5000/x") == "localhost/x"
    assert repo_key("registry.example/team/app") == "registry.example/team/app"


def test_content_labels_from_ctr():
    got = parse_content_ls(CTR_LS)
    assert got["sha256:6ba32b8289df77efff1f33c9ecff0652b51d14283068e02dfc940c3eae29820b"] == \
        {"127.0.0.1/dfx/bb", "127.0.0.1/dfx/pushed"}
    assert got["sha256:" + "c" * 64] == set()  # imported or built here: no distribution source


def test_identity_pull_of_api_1_53():
    img = {"Identity": {"Pull": [{"Repository": "docker.io/library/nginx"}, {"Repository": "127.0.0.1/dfx/bb"}]}}
    assert identity_repositories(img) == {"docker.io/library/nginx", "127.0.0.1/dfx/bb"}
    assert identity_repositories({"Identity": None}) == identity_repositories({}) == set()


def _fake_ctr(tmp_path, monkeypatch, script: str):
    """containerd_sources with a ctr that runs ``script`` (a shell body) and a containerd socket that exists."""
    import dockfix.sources.image_origin as origin
    ctr = tmp_path / "ctr"
    ctr.write_text("#!/bin/sh\n" + script + "\n")
    ctr.chmod(0o755)
    sock = tmp_path / "containerd.sock"
    sock.write_text("")
    monkeypatch.setattr(origin, "_ctr_beside_containerd", lambda address: str(ctr))
    return {"Containerd": {"Address": str(sock), "Namespaces": {"Containers": "moby"}}}


def test_ctr_output_that_is_not_utf8_is_a_reason_not_a_crash(tmp_path, monkeypatch):
    from dockfix.sources.image_origin import containerd_sources
    info = _fake_ctr(tmp_path, monkeypatch, r"printf 'DIGEST\tSIZE\tAGE\tLABELS\nsha256:%s\t1B\t1s\tx=\377\376\n' "
                                            + "a" * 64 + r"; printf 'warn \377\n' >&2")
    found, why = containerd_sources(info, ["sha256:" + "a" * 64])
    assert found == {"sha256:" + "a" * 64: set()} and why == ""


def test_ctr_output_it_does_not_recognise_is_unknown_not_made_here(tmp_path, monkeypatch):
    """A ctr whose listing is not DIGEST..LABELS (another version, a wrapper) must not make every image
    'made here, never pulled': the origin is unknown, with what ctr printed."""
    from dockfix.sources.image_origin import containerd_sources
    info = _fake_ctr(tmp_path, monkeypatch, "echo '[{\"digest\": \"sha256:" + "a" * 64 + "\"}]'")
    found, why = containerd_sources(info, ["sha256:" + "a" * 64])
    assert found is None
    assert "ctr content ls" in why and "does not recognise" in why


def test_a_ctr_that_hangs_is_a_reason_within_the_timeout(tmp_path, monkeypatch):
    """Its child keeps the output pipe open after ctr itself is killed: still no hang."""
    import time

    import dockfix.sources.image_origin as origin
    info = _fake_ctr(tmp_path, monkeypatch, "sleep 60 & sleep 60")
    monkeypatch.setattr(origin, "CTR_TIMEOUT", 1)
    t = time.monotonic()
    found, why = origin.containerd_sources(info, ["sha256:" + "a" * 64])
    assert time.monotonic() - t < 10
    assert found is None and "gave no answer within 1 s" in why
