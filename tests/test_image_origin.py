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
