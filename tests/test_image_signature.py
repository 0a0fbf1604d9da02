"""image-signature with real signatures: Debian's docker-registry, cosign from sid (scripts/newer-debs
cosign), a key pair made here, images pushed by the private engine.

No network beyond 127.0.0.1, and how that is checked: the registry is served, the images are signed
(``cosign sign --tlog-upload=false``) and dockfix runs cosign inside a network namespace of our own
(``ip netns add``) whose only interface is the loopback (the test asserts it). Anything cosign tried
to reach outside 127.0.0.1 would fail there, so a pass proves nothing else was needed. The engine is
reached through its unix socket, which no network namespace hides; the images were pushed before,
from the host's namespace, to a first registry process on the same storage folder and address.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from helpers import BUSYBOX_IMAGE, REPO, put
from registry_helpers import REGISTRY_BIN, Registry

pytestmark = pytest.mark.engine


def cosign_bin() -> str | None:
    r = subprocess.run([str(REPO / "scripts/newer-debs"), "--print-dir", "cosign"], capture_output=True, text=True)
    p = Path(r.stdout.strip(), "usr/bin/cosign") if r.returncode == 0 else None
    return str(p) if p and p.exists() else shutil.which("cosign")


COSIGN = cosign_bin()
POLICY = """\
# who must have signed what runs here
policies:
  - images: "127.0.0.1:*/dfx/*"
    cosign:
      key: /etc/dockfix/keys/dfx.pub
      transparency_log: false   # signed with --tlog-upload=false
    allow_http: true            # the test registry speaks plain HTTP
"""


class Netns:
    def __init__(self):
        self.name = f"dfx-i18-{os.getpid()}"
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self.run("ip", "link", "set", "lo", "up")

    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]

    def run(self, *cmd: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
        r = subprocess.run([*self.prefix(), *cmd], capture_output=True, text=True, env=env, timeout=180)
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()[-500:]}")
        return r

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "delete", self.name], capture_output=True)


@pytest.fixture(scope="module")
def signed(_engine_session):
    if not REGISTRY_BIN or not COSIGN:
        pytest.fail("needs docker-registry (apt-get install docker-registry) and cosign (scripts/newer-debs cosign)")
    eng = _engine_session
    folder = Path(tempfile.mkdtemp(prefix="dfx-sig-"))
    ns = Netns()
    regs: list[Registry] = []
    try:
        # three images of different content: a signed one, an unsigned one, one whose signature is tampered with
        first = Registry(folder).start()
        regs.append(first)
        refs = {}
        for n, name in enumerate(("signed", "unsigned", "tampered")):
            ctx = folder / f"build-{name}"
            ctx.mkdir()
            (ctx / "Dockerfile").write_text(f"FROM {BUSYBOX_IMAGE}\nLABEL dfx.variant={name}\n")
            ref = f"{first.addr}/dfx/{name}:1"
            r = subprocess.run(["docker", "-H", eng.url, "build", "-q", "-t", ref, str(ctx)], capture_output=True,
                               text=True, env={**os.environ, "DOCKER_BUILDKIT": "0"}, timeout=120)
            assert r.returncode == 0, r.stderr
            eng.cli("push", ref)
            refs[name] = eng.cli("image", "inspect", "--format", "{{index .RepoDigests 0}}", ref).stdout.strip()
        first.stop()
        # the same storage, served inside the namespace that has only a loopback
        links = ns.run("ip", "-o", "link").stdout.splitlines()
        assert [ln.split(":")[1].strip() for ln in links] == ["lo"], links
        inner = Registry(folder)
        inner.port, inner.addr = first.port, first.addr
        inner.start(ns.prefix())
        regs.append(inner)
        keys = folder / "keys"
        keys.mkdir()
        env = {"PATH": os.environ["PATH"], "HOME": str(folder), "COSIGN_PASSWORD": ""}
        subprocess.run([COSIGN, "generate-key-pair", "--output-key-prefix", str(keys / "dfx")], env=env, check=True,
                       capture_output=True, cwd=folder)
        for name in ("signed", "tampered"):
            ns.run(COSIGN, "sign", "--key", str(keys / "dfx.key"), "--allow-http-registry", "--tlog-upload=false",
                   "--use-signing-config=false", "-y", refs[name], env=env)
        repo, digest = refs["tampered"].split("@")
        ns.run("python3", str(REPO / "tests/registry_helpers.py"), "tamper", first.addr, repo.split("/", 1)[1], digest,
               env={**os.environ, "PYTHONPATH": str(REPO)})  # registry_helpers imports dockfix (via private_engine)
        eng.reset()
        for name in ("signed", "unsigned", "tampered"):
            eng.cli("run", "-d", "--name", f"sig-{name}", "--network", "none", f"{first.addr}/dfx/{name}:1", "sleep", "600")
        eng.cli("tag", BUSYBOX_IMAGE, "dfx-local/only:1")
        eng.cli("run", "-d", "--name", "sig-local", "--network", "none", "dfx-local/only:1", "sleep", "600")
        yield eng, ns, folder, refs, keys
    finally:
        eng.reset()
        made = [f"127.0.0.1:{regs[0].port}/dfx/{n}:1" for n in ("signed", "unsigned", "tampered")] if regs else []
        eng.cli("rmi", "-f", *made, "dfx-local/only:1", check=False)
        for r in regs:
            r.stop()
        ns.delete()
        shutil.rmtree(folder, ignore_errors=True)


def scan_in_ns(ns: Netns, root: Path, url: str, *args: str, path: str | None = None) -> dict:
    env = {"PATH": path or f"{Path(COSIGN).parent}:{os.environ['PATH']}", "PYTHONPATH": str(REPO), "NO_COLOR": "1",
           "HOME": str(root)}
    r = ns.run(sys_python(), "-m", "dockfix", "scan", "--root", str(root), "--docker-host", url, "--only",
               "image-signature", "--format", "json", *args, env=env, check=False)
    assert r.returncode in (0, 1, 3), r.stderr
    return json.loads(r.stdout)


def sys_python() -> str:
    import sys

    return sys.executable


def make_root(tmp_path: Path, keys: Path, policy: str | None = POLICY) -> Path:
    root = tmp_path / "root"
    put(root, "etc/dockfix/keys/dfx.pub", (keys / "dfx.pub").read_bytes())
    if policy is not None:
        put(root, "etc/dockfix/trust.yaml", policy)
    return root


def test_signed_unsigned_tampered_and_local_images(signed, tmp_path, engine_version):
    eng, ns, folder, refs, keys = signed
    doc = scan_in_ns(ns, make_root(tmp_path, keys), eng.url)
    got = {f["subject"]: (f["status"], f["evidence"]) for f in doc["findings"]}
    addr = refs["signed"].split("/")[0]
    assert got[f"image:{addr}/dfx/signed:1"][0] == "pass", got
    assert "signature verified (cosign verify under policy 1" in got[f"image:{addr}/dfx/signed:1"][1]
    assert got[f"image:{addr}/dfx/unsigned:1"][0] == "fail", got
    status, ev = got[f"image:{addr}/dfx/tampered:1"]
    assert status == "fail" and "failed" in ev and "(used by sig-tampered)" in ev, ev
    assert got["image:dfx-local/only:1"][0] == "manual"  # no repository digest: nothing to verify


def test_no_policy_no_verifier_offline_and_a_bad_policy(signed, tmp_path):
    eng, ns, folder, refs, keys = signed
    root = make_root(tmp_path, keys, policy=None)
    (f,) = scan_in_ns(ns, root, eng.url)["findings"]
    assert f["status"] == "skip" and "no trust policy (/etc/dockfix/trust.yaml)" in f["evidence"]
    put(root, "etc/dockfix/trust.yaml", POLICY)
    no_cosign = scan_in_ns(ns, root, eng.url, path="/usr/bin:/bin")["findings"]
    addr = refs["signed"].split("/")[0]
    f = next(f for f in no_cosign if f["subject"] == f"image:{addr}/dfx/signed:1")
    assert f["status"] == "skip" and "cosign is not installed: cosign verify --key" in f["evidence"], f
    offline = scan_in_ns(ns, root, eng.url, "--offline")["findings"]
    f = next(f for f in offline if f["subject"] == f"image:{addr}/dfx/signed:1")
    assert f["status"] == "skip" and "--offline: no stored signature" in f["evidence"], f
    # a signature stored beside the policy (cosign save) is verified with no registry at all
    digest = refs["signed"].split("@")[1]
    store = root / "etc/dockfix/signatures" / digest.replace(":", "-")
    ns.run(COSIGN, "save", "--allow-http-registry", "--dir", str(store), refs["signed"],
           env={"PATH": os.environ["PATH"], "HOME": str(folder)})
    offline = scan_in_ns(ns, root, eng.url, "--offline")["findings"]
    f = next(f for f in offline if f["subject"] == f"image:{addr}/dfx/signed:1")
    assert f["status"] == "pass" and "from the stored signature" in f["evidence"], f
    # a transparency log to check, and no stored Sigstore root: dockfix would have to ask Sigstore, so it does not
    put(root, "etc/dockfix/trust.yaml", POLICY.replace("transparency_log: false", "transparency_log: true"))
    f = next(f for f in scan_in_ns(ns, root, eng.url)["findings"] if f["subject"] == f"image:{addr}/dfx/signed:1")
    assert f["status"] == "manual" and "needs Sigstore's public roots" in f["evidence"], f
    assert "cosign verify --key " in f["evidence"]
    put(root, "etc/dockfix/trust.yaml", "policies:\n  - images: \"*\"\n    cosign: {}\n")
    (f,) = scan_in_ns(ns, root, eng.url)["findings"]
    assert f["status"] == "error" and f["evidence"] == \
        "/etc/dockfix/trust.yaml: policy 1: cosign needs either 'key:' or both 'identity:' and 'issuer:'"
