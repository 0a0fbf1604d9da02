"""Image trust after Docker Content Trust: images pinned by digest, and their signatures verified.

``image-digest`` finds images named by a tag alone (a tag can be moved to other content at any
time) in running containers, swarm services, compose files and Dockerfiles' ``FROM``. Its fix pins
compose ``image:`` and Dockerfile ``FROM`` to ``name:tag@sha256:…``, the digest the engine pulled
(``RepoDigests``), keeping the tag for readers.

These checks have no number in any CIS Docker Benchmark version; they are what the content-trust
finding (4.5) points to once DOCKER_CONTENT_TRUST does nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dockfix.checks.images import dockerfiles, image_index
from dockfix.context import Context, NotApplicable
from dockfix.model import MEDIUM, CheckError, Fix, Location, Result, Safety, check
from dockfix.sources.compose import iter_compose

DIGEST_IMPACT = (
    "The compose file or Dockerfile names the exact image content the host runs now: a tag moved later is no "
    "longer followed, so updates need a new pin (plan the fix again after pulling). The next docker compose up "
    "or build uses the pinned image.")

_DIGEST = re.compile(r"@(sha256:[0-9a-f]{64})$")


@dataclass(frozen=True)
class Ref:
    """An image reference split the way the engine names images (``docker.io/library/`` dropped)."""

    written: str  # as written
    name: str  # repository as written (registry and path), without tag or digest
    tag: str | None
    digest: str | None

    @property
    def familiar(self) -> str:
        n = self.name
        for prefix in ("docker.io/library/", "index.docker.io/library/", "docker.io/", "index.docker.io/"):
            if n.startswith(prefix):
                return n[len(prefix):]
        return n

    @property
    def tag_or_latest(self) -> str:
        return self.tag or "latest"

    def pinned(self, digest: str) -> str:
        return f"{self.name}:{self.tag_or_latest}@{digest}"


def parse_ref(text: str) -> Ref:
    text = text.strip()
    digest = None
    m = _DIGEST.search(text)
    if m:
        digest = m.group(1)
        text = text[: m.start()]
    elif "@" in text:
        text, _, digest = text.partition("@")
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > slash:
        return Ref(text if not digest else f"{text}@{digest}", text[:colon], text[colon + 1:], digest)
    return Ref(text if not digest else f"{text}@{digest}", text, None, digest)


def repo_digest(ctx: Context, ref: Ref) -> tuple[str | None, str]:
    """(the digest the engine pulled this image by, or None; why not)."""
    if ctx.engine is None:
        return None, "the engine was not scanned (--no-engine), so its repository digest is unknown"
    try:
        idx = image_index(ctx)
    except CheckError as e:
        return None, f"the engine could not be asked ({e})"
    img = idx.get(f"{ref.familiar}:{ref.tag_or_latest}")
    if img is None:
        return None, f"the engine has no image {ref.familiar}:{ref.tag_or_latest}: pull it, then plan the fix again"
    for rd in img.get("RepoDigests") or []:
        repo, _, digest = rd.partition("@")
        if parse_ref(repo).familiar == ref.familiar and digest.startswith("sha256:"):
            return digest, f"the engine pulled it as {rd} (RepoDigests)"
    return None, ("the engine has no repository digest for it (built or imported here, never pushed or pulled): "
                  "push it to a registry, pull it back, then pin it")


def _judge(ctx: Context, written: str, where: str, subject: str, location: Location | None,
           data: dict[str, Any]) -> Result:
    if "$" in written:
        return Result.fail(f"image {written} ({where}) is chosen by a variable: its content cannot be pinned here",
                           subject=subject, location=location, data={**data, "ref": written, "digest": None})
    ref = parse_ref(written)
    if ref.digest:
        return Result.ok(f"image {written} ({where}) is pinned by digest", subject=subject, location=location)
    digest, why = repo_digest(ctx, ref)
    return Result.fail(f"image {written} ({where}) is named by tag only; {why}", subject=subject, location=location,
                       data={**data, "ref": written, "digest": digest, "pinned": ref.pinned(digest) if digest else None})


def _from_lines(instructions: list) -> list[tuple[int, str]]:
    """(line, image) of each FROM that names an image (not an earlier stage, not scratch)."""
    stages: set[str] = set()
    out = []
    for ins in instructions:
        if ins.cmd != "FROM":
            continue
        words = ins.words()
        if not words:
            continue
        image = words[0]
        if len(words) >= 3 and words[1].lower() == "as":
            stages.add(words[2].lower())
        if image.lower() in stages or image == "scratch":
            continue
        out.append((ins.line, image))
    return out


@check(
    "image-digest", cis=None, section="4", severity=MEDIUM,
    fix=Fix(Safety.DISRUPTIVE, DIGEST_IMPACT),
    title="Images are pinned by digest, not only named by a tag",
    explanation="A tag is a movable label: whoever can push to the repository (or sits between the host and an "
    "insecure registry) can point it at other content, and the next pull, compose up or build takes that content "
    "without a word. A digest (sha256:…) names the content itself, so the image that was tested and reviewed is "
    "the one that runs. Since Docker's content trust no longer protects pulls, pinning by digest plus verifying "
    "signatures (image-signature) is how to keep images trustworthy; it answers the intent of CIS 4.5 and 4.12.",
    manual="docker ps --format '{{.Names}} {{.Image}}'; grep -n 'image:' compose.yaml; grep -n '^FROM' Dockerfile; "
    "docker image inspect --format '{{.RepoDigests}}' IMAGE",
    remediation="Write each image as name:tag@sha256:<digest> in compose files and FROM lines (docker image inspect "
    "shows the digest in RepoDigests), update the pin deliberately when a new image is approved, and recreate "
    "containers from the pinned reference.",
)
def image_digest(ctx: Context) -> list[Result]:
    results: list[Result] = []
    # compose files (given, under --path, or named by running containers' labels)
    for cf in iter_compose(ctx):
        if isinstance(cf, CheckError):
            results.append(Result.error(str(cf), subject=f"compose:{str(cf).split(':', 1)[0]}"))
            continue
        for name, svc in cf.services.items():
            raw = svc.get("image")
            if raw is None:
                continue  # build only: its Dockerfile's FROM is looked at under --path
            line = svc.line_of("image")
            results.append(_judge(ctx, str(raw), f"{cf.path} line {line}", f"compose:{cf.path}#{name}",
                                  Location(cf.path, line), {"kind": "compose", "path": cf.path, "service": name,
                                                            "line": line}))
    # Dockerfiles under --path
    for path, ins in dockerfiles(ctx):
        if isinstance(ins, CheckError):
            results.append(Result.error(str(ins), subject=f"dockerfile:{path}", location=Location(path)))
            continue
        froms = _from_lines(ins)
        if not froms:
            continue
        judged = [(line, image, _judge(ctx, image, f"FROM at line {line}", f"dockerfile:{path}",
                                       Location(path, line), {})) for line, image in froms]
        bad = [(line, image, r) for line, image, r in judged if r.status.value != "pass"]
        subject = f"dockerfile:{path}"
        if not bad:
            results.append(Result.ok("; ".join(r.evidence for _, _, r in judged), subject=subject,
                                     location=Location(path, froms[0][0])))
            continue
        results.append(Result.fail("; ".join(r.evidence for _, _, r in bad), subject=subject,
                                   location=Location(path, bad[0][0]),
                                   data={"kind": "dockerfile", "path": path,
                                         "froms": [{"line": line, "ref": image, "digest": r.data.get("digest"),
                                                    "pinned": r.data.get("pinned")} for line, image, r in bad]}))
    # running containers and swarm services
    if ctx.engine is not None:
        try:
            containers, services = ctx.engine.containers(), ctx.engine.services()
        except CheckError as e:
            results.append(Result.error(str(e), subject="engine"))
            containers, services = [], []
        for c in containers:
            if not (c.get("State") or {}).get("Running"):
                continue
            name = (c.get("Name") or c.get("Id", "")[:12]).lstrip("/")
            image = (c.get("Config") or {}).get("Image") or ""
            results.append(_judge(ctx, image, "running container", f"container:{name}", None, {"kind": "container"}))
        for s in services:
            spec = s.get("Spec") or {}
            image = ((spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Image") or ""
            results.append(_judge(ctx, image, "swarm service", f"service:{spec.get('Name', s.get('ID', '?'))}", None,
                                  {"kind": "service"}))
    if not results and ctx.engine is None and not ctx.paths and not ctx.compose:
        raise NotApplicable("the engine was not scanned (--no-engine) and no --path or --compose was given")
    return results
