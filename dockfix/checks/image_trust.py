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
from dockfix.model import HIGH, MEDIUM, CheckError, Fix, Location, Result, Safety, check
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


#: the first API version whose image inspect has ``Identity`` (Docker 29)
IDENTITY_API = (1, 53)


def _api_at_least(ctx: Context, want: tuple[int, int]) -> bool:
    try:
        have = tuple(int(x) for x in (ctx.engine.api_version if ctx.engine else "").split("."))
    except ValueError:
        return False
    return have >= want


def image_sources(ctx: Context) -> tuple[dict[str, set[str]] | None, str]:
    """On the containerd image store: ({image id: registry repositories (``host/path``, no port) its
    content was pulled from or pushed to}, how that is known), or (None, why it cannot be known).
    On the graph-driver store: ({}, "") -- its RepoDigests are made by pull and push only."""
    from dockfix.checks.daemon import containerd_store
    from dockfix.sources.image_origin import containerd_sources, identity_repositories

    def build() -> tuple[dict[str, set[str]] | None, str]:
        if not containerd_store(ctx):
            return {}, ""
        images = ctx.need_engine().images()
        if _api_at_least(ctx, IDENTITY_API):
            return {img["Id"]: identity_repositories(img) for img in images}, \
                f"the engine's Identity.Pull (API {ctx.engine.api_version})"
        targets = {img["Id"]: (img.get("Descriptor") or {}).get("digest") or img["Id"] for img in images}
        found, why = containerd_sources(ctx.info(), sorted(set(targets.values())))
        if found is None:
            return None, (f"the engine (API {ctx.engine.api_version}) keeps images in the containerd image store, "
                          f"which lists a digest for images built or imported here too, and shows no origin "
                          f"before API {IDENTITY_API[0]}.{IDENTITY_API[1]}; containerd's distribution-source "
                          f"labels could not be read: {why}")
        return {i: found.get(d, set()) for i, d in targets.items()}, "containerd's distribution-source labels"

    return ctx.memo("image_sources", build)


def registry_digests(ctx: Context, img: dict[str, Any], familiar: str | None = None) -> tuple[list[str], str]:
    """(the RepoDigests of ``img`` (of the repository ``familiar`` if given) that a registry serves, how
    that is known or why there is none). On the containerd image store only a repository the content
    was pulled from or pushed to counts; when that cannot be known, none."""
    from dockfix.sources.image_origin import repo_key

    digests = [rd for rd in img.get("RepoDigests") or [] if "@sha256:" in rd
               and (familiar is None or parse_ref(rd.split("@")[0]).familiar == familiar)]
    if not digests:
        return [], "no repository digest (built or imported here, never pushed or pulled)"
    sources, how = image_sources(ctx)
    if sources is None:
        return [], (f"no repository digest known to come from a registry: {how}; pin by hand a digest the "
                    "registry serves (docker buildx imagetools inspect NAME:TAG)")
    if img.get("Id") not in sources:
        return digests, ""  # the graph-driver store: made by pull and push only
    repos = sources[img["Id"]]
    kept = [rd for rd in digests if repo_key(rd) in repos]
    if kept:
        return kept, how
    names = ", ".join(rd.split("@")[0] for rd in digests)
    pulled = f"it records only {', '.join(sorted(repos))}" if repos else "it records none for this image"
    return [], (f"no repository digest from a registry: the containerd image store lists a digest under {names}, "
                f"but that manifest was made here (built, imported or tagged), never pulled from or pushed to "
                f"that repository ({how}: {pulled})")


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
    try:
        digests, how = registry_digests(ctx, img, ref.familiar)
    except CheckError as e:
        return None, f"the engine could not be asked ({e})"
    if digests:
        rd = digests[0]
        origin = f"; origin from {how}" if how else ""
        return rd.partition("@")[2], f"the engine pulled it as {rd} (RepoDigests){origin}"
    if sources_unknown(how):
        return None, f"the engine has {how}"
    return None, f"the engine has {how}: push it to a registry, pull it back, then pin it"


def sources_unknown(why: str) -> bool:
    """True when ``why`` (from registry_digests) says the origin could not be read at all."""
    return why.startswith("no repository digest known to come from a registry")


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


# ====================================================================== image-signature
TRUST_POLICY = "/etc/dockfix/trust.yaml"
#: ``cosign save`` folders of signed images, for --offline: /etc/dockfix/signatures/sha256-<hex>/
SIGNATURE_STORE = "/etc/dockfix/signatures"
VERIFY_TIMEOUT = 60


@dataclass(frozen=True)
class Policy:
    """One entry of the trust policy: the images it covers and how their signatures are verified."""

    number: int
    images: str  # shell pattern on the repository (registry/path), e.g. "registry.corp/*"
    key: str | None = None  # cosign public key (host path)
    identity: str | None = None  # keyless: certificate identity ...
    issuer: str | None = None  # ... and its OIDC issuer
    trusted_root: str | None = None  # keyless: Sigstore trusted root stored on the host (no network)
    transparency_log: bool = True  # False: key-signed without Rekor (cosign --insecure-ignore-tlog)
    notation: str | None = None  # Notation trust policy (host path)
    allow_http: bool = False  # the registry speaks plain HTTP (cosign --allow-http-registry)

    def covers(self, repo: str) -> bool:
        import fnmatch

        return fnmatch.fnmatchcase(repo, self.images) or fnmatch.fnmatchcase(parse_ref(repo).familiar, self.images)


def load_trust_policy(ctx: Context) -> list[Policy]:
    """The policies of /etc/dockfix/trust.yaml. NotApplicable when there is none; CheckError (file and
    problem, one line) when it is malformed."""

    def load() -> list[Policy]:
        from dockfix.sources.compose import load_yaml_bounded

        text = ctx.host.read_text(TRUST_POLICY)
        if text is None:
            raise NotApplicable(f"no trust policy ({TRUST_POLICY}): image signatures are not checked")
        doc = load_yaml_bounded(text, TRUST_POLICY)
        entries = doc.get("policies") if hasattr(doc, "get") else None
        if not isinstance(entries, list) or not entries:
            raise CheckError(f"{TRUST_POLICY}: needs a non-empty list 'policies:'", subject=TRUST_POLICY)
        out = []
        for n, e in enumerate(entries, 1):
            where = f"{TRUST_POLICY}: policy {n}"
            if not hasattr(e, "get") or not isinstance(e.get("images"), str) or not e.get("images"):
                raise CheckError(f"{where}: needs 'images:' (a pattern such as registry.example/team/*)",
                                 subject=TRUST_POLICY)
            cos, nota = e.get("cosign"), e.get("notation")
            if (cos is None) == (nota is None):
                raise CheckError(f"{where}: needs exactly one of 'cosign:' or 'notation:'", subject=TRUST_POLICY)
            kw: dict[str, Any] = {"allow_http": e.get("allow_http") is True}
            if cos is not None:
                if not hasattr(cos, "get"):
                    raise CheckError(f"{where}: 'cosign:' must be a mapping", subject=TRUST_POLICY)
                key, identity, issuer = cos.get("key"), cos.get("identity"), cos.get("issuer")
                if bool(key) == bool(identity or issuer) or (not key and not (identity and issuer)):
                    raise CheckError(f"{where}: cosign needs either 'key:' or both 'identity:' and 'issuer:'",
                                     subject=TRUST_POLICY)
                for name, value in (("key", key), ("trusted_root", cos.get("trusted_root"))):
                    if value is not None and (not isinstance(value, str) or not value.startswith("/")):
                        raise CheckError(f"{where}: cosign {name} must be an absolute path", subject=TRUST_POLICY)
                kw.update(key=key, identity=identity, issuer=issuer, trusted_root=cos.get("trusted_root"),
                          transparency_log=cos.get("transparency_log") is not False)
            else:
                tp = nota.get("trust_policy") if hasattr(nota, "get") else None
                if not isinstance(tp, str) or not tp.startswith("/"):
                    raise CheckError(f"{where}: notation needs 'trust_policy:' (an absolute path)",
                                     subject=TRUST_POLICY)
                kw["notation"] = tp
            out.append(Policy(n, str(e.get("images")), **kw))
        return out

    return ctx.memo("trust_policy", load)


def _which(name: str) -> str | None:
    import shutil

    return shutil.which(name)


def cosign_command(ctx: Context, p: Policy, ref: str, local: str | None = None) -> list[str]:
    """The cosign verify command for ``ref`` (repo@digest) under policy ``p`` (machine paths)."""
    cmd = ["cosign", "verify"]
    if p.key:
        cmd += ["--key", ctx.host.real(p.key)]
    else:
        cmd += ["--certificate-identity", str(p.identity), "--certificate-oidc-issuer", str(p.issuer)]
        if p.trusted_root:
            cmd += ["--trusted-root", ctx.host.real(p.trusted_root)]
    if not p.transparency_log:
        cmd += ["--insecure-ignore-tlog=true"]
    if p.allow_http:
        cmd += ["--allow-http-registry"]
    if local:
        cmd += ["--local-image", local]
    else:
        cmd += [ref]
    return cmd


def _run(cmd: list[str]) -> tuple[int, str]:
    import os
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="dockfix-verify-") as home:
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=VERIFY_TIMEOUT, stdin=subprocess.DEVNULL,
                               env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home})
        except subprocess.TimeoutExpired:
            return 124, f"{cmd[0]} gave no answer within {VERIFY_TIMEOUT} s"
        except OSError as e:
            return 127, f"{cmd[0]} could not run: {e.strerror}"
    lines = [ln.strip() for ln in (r.stderr or r.stdout).splitlines() if ln.strip()]
    last = next((ln for ln in reversed(lines) if ln.startswith("Error:")), lines[-1] if lines else "")
    return r.returncode, last[:300]


def verify_image(ctx: Context, p: Policy, ref: str, digest: str) -> Result:
    """Verdict of one image (``ref`` = repo@digest) under policy ``p``."""
    import shlex

    tool = "notation" if p.notation else "cosign"
    exe = _which(tool)
    pol = f"policy {p.number} ({p.images})"
    if p.notation:
        cmd = [tool, "verify"] + (["--insecure-registry"] if p.allow_http else []) + [ref]
        if exe is None:
            return Result.skip(f"{pol} asks for Notation, and notation is not installed: "
                               f"{shlex.join(cmd)} (with the trust policy {p.notation} in notation's configuration)")
    else:
        if (p.identity or p.transparency_log) and not p.trusted_root:
            # keyless signatures and transparency-log entries are checked against Sigstore's roots, which cosign
            # fetches from Sigstore's public services: not the registry the image came from
            cmd = cosign_command(ctx, p, ref)
            what = "keyless signatures" if p.identity else "transparency-log entries"
            return Result.manual(f"{pol} verifies {what}, which needs Sigstore's public roots, not only the image's "
                                 f"registry: add trusted_root: (a stored trusted_root.json), or run {shlex.join(cmd)}")
        local = None
        if ctx.offline:
            folder = f"{SIGNATURE_STORE}/{digest.replace(':', '-')}"
            if not ctx.host.is_dir(folder):
                return Result.skip(f"--offline: no stored signature for {digest} in {folder} "
                                   f"(make it with cosign save --dir {folder} {ref})")
            local = ctx.host.real(folder)
        cmd = cosign_command(ctx, p, ref, local)
        if exe is None:
            return Result.skip(f"{pol} asks for cosign, and cosign is not installed: {shlex.join(cmd)}")
    rc, said = _run([exe] + cmd[1:])
    how = f"{tool} verify under {pol}" + (" from the stored signature" if ctx.offline and not p.notation else "")
    if rc == 0:
        return Result.ok(f"{ref}: signature verified ({how})")
    if rc in (124, 127):
        return Result.error(f"{ref}: {said}")
    return Result.fail(f"{ref}: {how} failed: {said}")


@check(
    "image-signature", cis=None, section="4", severity=HIGH,
    title="Running images carry a valid signature from a trusted signer",
    explanation="A digest proves which content runs, not who made it. A signature made with the publisher's key "
    "(or a keyless Sigstore identity) and checked before the image runs shows that the image comes from them and "
    "was not changed since. The trust policy /etc/dockfix/trust.yaml says, per image pattern, which cosign key, "
    "keyless identity or Notation trust policy must have signed it; dockfix runs cosign verify (or notation verify) "
    "on each running image's digest and contacts nothing but that image's registry. With --offline it verifies "
    "from signatures stored with cosign save under /etc/dockfix/signatures, or skips. This is what replaces "
    "DOCKER_CONTENT_TRUST (CIS 4.5) and what CIS 4.12 asks for.",
    manual="docker ps --format '{{.Image}}' | sort -u | xargs docker image inspect --format '{{index .RepoDigests 0}}' "
    "| xargs -n1 cosign verify --key /etc/dockfix/keys/KEY.pub",
    remediation="Sign images in CI (cosign sign --key or keyless), record the signer in /etc/dockfix/trust.yaml, and "
    "stop or replace any container whose image does not verify; enforce it at deploy time as well.",
)
def image_signature(ctx: Context) -> list[Result]:
    policies = load_trust_policy(ctx)
    eng = ctx.need_engine()
    containers = eng.containers()
    idx = image_index(ctx)
    seen: dict[str, list[str]] = {}
    for c in containers:
        if (c.get("State") or {}).get("Running"):
            seen.setdefault(c.get("Image") or "", []).append((c.get("Name") or "").lstrip("/"))
    results = []
    for image_id, names in seen.items():
        img = idx.get(image_id) or {}
        tags = [t for t in img.get("RepoTags") or [] if t != "<none>:<none>"]
        subject = f"image:{tags[0] if tags else image_id[:19]}"
        used = f" (used by {', '.join(sorted(names))})"
        digests, why = registry_digests(ctx, img)
        covered = [(rd, p) for rd in digests for p in policies if p.covers(rd.split("@")[0])]
        if not digests:
            advice = "" if sources_unknown(why) else (": a signature is made for a pushed digest; push, sign, pull "
                                                      "it back and run it by digest")
            results.append(Result.manual(f"{why}{used}{advice}", subject=subject))
            continue
        if not covered:
            results.append(Result.skip(f"no policy in {TRUST_POLICY} covers {', '.join(digests)}{used}",
                                       subject=subject))
            continue
        rd, p = covered[0]
        r = verify_image(ctx, p, rd, rd.split("@")[1])
        r.subject = subject
        r.evidence += used
        results.append(r)
    return results
