"""A real registry for the tests: Debian's docker-registry (distribution 2.8) on a free 127.0.0.1 port,
with its own storage folder and configuration. dockerd treats 127.0.0.0/8 as an insecure registry by
default, so images pushed there and pulled back get real RepoDigests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from private_engine import free_port

REGISTRY_BIN = shutil.which("docker-registry")

CONFIG = """\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: {addr}
"""


PROBE = "import sys, urllib.request; urllib.request.urlopen(f'http://{sys.argv[1]}/v2/', timeout=1)"


class Registry:
    def __init__(self, folder: Path, host: str = "127.0.0.1"):
        self.folder = Path(folder)
        self.port = free_port()
        self.addr = f"{host}:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, argv_prefix: list[str] | None = None) -> "Registry":
        """Serve; ``argv_prefix`` (``ip netns exec NS``) runs it, and the readiness probe, elsewhere."""
        (self.folder / "storage").mkdir(parents=True, exist_ok=True)
        cfg = self.folder / "config.yml"
        cfg.write_text(CONFIG.format(storage=self.folder / "storage", addr=self.addr))
        log = open(self.folder / "registry.log", "wb")
        self.proc = subprocess.Popen([*(argv_prefix or []), REGISTRY_BIN, "serve", str(cfg)], stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {(self.folder / 'registry.log').read_text()[-500:]}")
            if argv_prefix:
                probe = subprocess.run([*argv_prefix, sys.executable, "-c", PROBE, self.addr], capture_output=True)
                if probe.returncode == 0:
                    return self
                time.sleep(0.1)
                continue
            try:
                with urllib.request.urlopen(f"http://{self.addr}/v2/", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("docker-registry did not answer within 20 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def tamper_signature(registry: str, repo: str, digest: str) -> None:
    """Flip one bit of the signature of ``repo@digest`` in its cosign bundle (stored by cosign 3 under the
    referrers tag ``sha256-<hex>``), and push the changed bundle, manifest and index back."""
    import base64
    import hashlib
    import json

    base = f"http://{registry}/v2/{repo}"
    tag = digest.replace(":", "-")

    def get(url: str, accept: str) -> bytes:
        return urllib.request.urlopen(urllib.request.Request(url, headers={"Accept": accept}), timeout=10).read()

    def put(url: str, data: bytes, ctype: str):
        return urllib.request.urlopen(urllib.request.Request(url, method="PUT", data=data, headers={"Content-Type": ctype}),
                                      timeout=10)

    index = json.loads(get(f"{base}/manifests/{tag}", "application/vnd.oci.image.index.v1+json"))
    mdesc = index["manifests"][0]
    manifest = json.loads(get(f"{base}/manifests/{mdesc['digest']}", "application/vnd.oci.image.manifest.v1+json"))
    layer = manifest["layers"][0]
    bundle = json.loads(get(f"{base}/blobs/{layer['digest']}", "*/*"))
    sig = bytearray(base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"]))
    sig[-1] ^= 0x01
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    data = json.dumps(bundle).encode()
    bd = "sha256:" + hashlib.sha256(data).hexdigest()
    loc = urllib.request.urlopen(urllib.request.Request(f"{base}/blobs/uploads/", method="POST", data=b""),
                                 timeout=10).headers["Location"]
    put(loc + ("&" if "?" in loc else "?") + "digest=" + bd, data, "application/octet-stream")
    layer["digest"], layer["size"] = bd, len(data)
    mdata = json.dumps(manifest).encode()
    r = put(f"{base}/manifests/{tag}-tampered", mdata, "application/vnd.oci.image.manifest.v1+json")
    mdesc["digest"], mdesc["size"] = r.headers["Docker-Content-Digest"], len(mdata)
    put(f"{base}/manifests/{tag}", json.dumps(index).encode(), "application/vnd.oci.image.index.v1+json")


if __name__ == "__main__":  # python3 registry_helpers.py tamper REGISTRY REPO DIGEST (inside a network namespace)
    if sys.argv[1] == "tamper":
        tamper_signature(*sys.argv[2:5])
