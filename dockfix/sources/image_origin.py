"""Where an image of the containerd image store came from: the registry repositories its content was
pulled from or pushed to.

On the graph-driver image store (the default up to Docker 28) ``RepoDigests`` are written by pull
and push only, so a repository digest there is one a registry serves. The containerd image store
(the default of fresh installs from Docker 29; ``features.containerd-snapshotter``) lists every
image's own manifest digest in ``RepoDigests`` under each of its names (moby
daemon/containerd/image_inspect.go, ``collectRepoTagsAndDigests``), also for an image built,
imported or only tagged here, whose manifest no registry has. What records the origin there is
containerd: pull and push label the content with ``containerd.io/distribution.source.<host>=<repo>,...``
(the registry host without its port, the repositories comma-separated). The engine shows those
labels as ``Identity.Pull[].Repository`` of an image inspect from API 1.53 (Docker 29); older
engines (Docker 28: API 1.51) do not show them at all, and dockfix reads them from the engine's
containerd (its address and namespace from ``docker info``'s ``Containerd``) with ``ctr content ls``.

A repository is compared as ``host/path`` with the port dropped, as containerd records it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

SOURCE_LABEL = "containerd.io/distribution.source."
CTR_TIMEOUT = 30
DEFAULT_CONTAINERD = "/run/containerd/containerd.sock"


def repo_key(name: str) -> str:
    """``host/path`` of a repository name as containerd records it: docker.io's default and
    ``library/`` filled in, the port dropped (``127.0.0.1:5000/team/app`` -> ``127.0.0.1/team/app``)."""
    name = name.split("@", 1)[0]
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        host, path = first, rest
    else:
        host, path = "docker.io", name
    if host in ("index.docker.io", "registry-1.docker.io"):
        host = "docker.io"
    if host == "docker.io" and "/" not in path:
        path = f"library/{path}"
    if host.startswith("["):  # [::1]:5000
        host = host.split("]", 1)[0] + "]"
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return f"{host}/{path}"


def identity_repositories(img: dict[str, Any]) -> set[str]:
    """The repositories an image inspect's ``Identity.Pull`` names (API 1.53 and later)."""
    pulls = ((img.get("Identity") or {}).get("Pull")) or []
    return {repo_key(p["Repository"]) for p in pulls if isinstance(p, dict) and p.get("Repository")}


def parse_content_ls(text: str) -> dict[str, set[str]]:
    """{digest: repositories} from ``ctr content ls`` (DIGEST SIZE AGE LABELS, tab-separated; the
    labels ``k=v`` joined by commas, and a distribution-source value is itself comma-separated)."""
    out: dict[str, set[str]] = {}
    for line in text.splitlines()[1:]:
        cols = line.split("\t")
        digest, labels = cols[0].strip(), cols[-1].strip() if len(cols) > 1 else ""
        if not digest.startswith("sha256:"):
            continue
        repos = out.setdefault(digest, set())
        key = ""
        for token in labels.split(","):
            if "=" in token:
                key, _, value = token.partition("=")
            else:
                value = token  # one more repository of the label before
            if key.startswith(SOURCE_LABEL) and value:
                repos.add(repo_key(f"{key[len(SOURCE_LABEL):]}/{value}"))
    return out


def _ctr_beside_containerd(address: str, proc: str = "/proc") -> str | None:
    """The ``ctr`` shipped beside the containerd binary that serves ``address`` (same version)."""
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return None
    for pid in pids:
        try:
            with open(f"{proc}/{pid}/comm") as f:
                if f.read().strip() != "containerd":
                    continue
            with open(f"{proc}/{pid}/cmdline", "rb") as f:
                argv = [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
            exe = os.readlink(f"{proc}/{pid}/exe")
        except OSError:
            continue
        serves = address in argv or any(a.endswith("=" + address) for a in argv) or (
            address == DEFAULT_CONTAINERD and not any(a in ("-a", "--address") or a.startswith("--address=")
                                                      for a in argv))
        ctr = os.path.join(os.path.dirname(exe.removesuffix(" (deleted)")), "ctr")
        if serves and os.access(ctr, os.X_OK):
            return ctr
    return None


def containerd_sources(info: dict[str, Any], digests: list[str]) -> tuple[dict[str, set[str]] | None, str]:
    """({digest: repositories its content was pulled from or pushed to}, "") read from the engine's
    containerd, or (None, why not)."""
    cd = info.get("Containerd") or {}
    address = cd.get("Address") or DEFAULT_CONTAINERD
    namespace = (cd.get("Namespaces") or {}).get("Containers") or "moby"
    if not os.path.exists(address):
        return None, f"the engine's containerd socket {address} is not on this machine"
    ctr = _ctr_beside_containerd(address) or shutil.which("ctr")
    if ctr is None:
        return None, f"ctr (containerd's command line, to read the labels of {address}) is not installed"
    if not digests:
        return {}, ""
    cmd = [ctr, "--address", address, "--namespace", namespace, "content", "ls", *(f"digest=={d}" for d in digests)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=CTR_TIMEOUT,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return None, f"ctr content ls on {address} gave no answer within {CTR_TIMEOUT} s"
    except OSError as e:
        return None, f"ctr could not run: {e.strerror}"
    if r.returncode != 0:
        said = (r.stderr.strip().splitlines() or ["no message"])[-1][:200]
        return None, f"ctr content ls on {address} failed: {said}"
    head = (r.stdout.splitlines() or [""])[0].split()
    if head[:1] != ["DIGEST"] or head[-1:] != ["LABELS"]:
        return None, f"ctr content ls on {address} printed a listing dockfix does not recognise: {r.stdout.strip()[:120]!r}"
    found = parse_content_ls(r.stdout)
    return {d: found.get(d, set()) for d in digests}, ""
