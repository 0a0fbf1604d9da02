"""Findings from the team's notes: content trust, secrets in environments and images, registries,
the storage driver. Their ids are part of the interface.

Secret values are never put in evidence, data or errors: only variable names, files and lines.
"""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
from dataclasses import dataclass, field
from typing import Any, Iterator

from dockfix.sources.compose import ComposeFile, ServiceSpec, iter_compose, load_yaml_bounded, parse_dotenv
from dockfix.sources.dockerfile import find_dockerfiles, load_dockerfile
from dockfix.model import HIGH, LOW, MEDIUM, CheckError, Fix, Location, Result, Safety, Severity, check
from dockfix.context import Context, NotApplicable
from dockfix.sources.image_recipes import can_read, image_user
from dockfix.sources.secrets import has_url_credentials, is_secret_name, looks_non_secret

#: What the fixes of the checks below change for users (declared here, with the checks).
CONTENT_TRUST_IMPACT = (
    "Content trust is retired: with a docker CLI older than 29.0 and the variable set, pulls of Docker Official "
    "Images fail (signing certificates expiring since August 2025) and every content-trust pull fails once "
    "notary.docker.io shuts down on 2026-12-08; a 29.0 or later CLI ignores the variable.")
ENV_PASSWORD_IMPACT = (
    "The workload gets its password from a file under /run/secrets/ instead of an environment variable; it must be "
    "redeployed (docker compose up -d, docker stack deploy) to use it, and a swarm service is updated at once (its "
    "tasks restart).")
REGISTRY_S3_IMPACT = (
    "New image layers are stored encrypted by S3; the registry must be restarted or redeployed to use the setting "
    "(a swarm service is updated at once).")

TRUE_WORDS = {"1", "t", "T", "true", "TRUE", "True"}  # Go's strconv.ParseBool, as the docker CLI reads it


# ====================================================================== content trust
CLI_PATHS = ("/usr/local/bin/docker", "/usr/bin/docker")  # the order of the default PATH


def cli_version(binary: str) -> str | None:
    """The version a docker CLI binary reports (``docker --version``), or None when it cannot tell."""
    try:
        r = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10,
                           env={"PATH": "/usr/bin:/bin", "DOCKER_CLI_HINTS": "false"})
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"version (\d+\.\d+\.\d+[^\s,]*)", r.stdout)
    return m.group(1) if m else None


def docker_cli_versions(ctx: Context) -> list[tuple[str, str | None]]:
    """(path, version or None when unknown) of every docker CLI binary under the root, PATH order."""

    def find() -> list[tuple[str, str | None]]:
        out = []
        for p in CLI_PATHS:
            if not ctx.host.is_file(p):
                continue
            # never run a binary from a foreign tree
            out.append((p, cli_version(p) if ctx.host.is_live else None))
        return out

    return ctx.memo("docker_cli_versions", find)


def _major(version: str | None) -> int | None:
    m = re.match(r"(\d+)\.", version or "")
    return int(m.group(1)) if m else None


def content_trust_settings(ctx: Context, var: str = "DOCKER_CONTENT_TRUST") -> list[tuple[str, int, str]]:
    """(file, line, value) where ``var`` is set for the host's users (/etc/environment, /etc/profile.d)."""
    files = ["/etc/environment"] + ctx.host.glob("/etc/profile.d", "*.sh")
    out = []
    pat = re.compile(r"^\s*(?:export\s+)?" + re.escape(var) + r"\s*=\s*(['\"]?)([^'\"\s;#]*)\1")
    for f in files:
        text = ctx.host.read_text(f)
        for n, line in enumerate((text or "").splitlines(), 1):
            m = pat.match(line)
            if m:
                out.append((f, n, m.group(2)))
    return out


#: The notary Docker ran for Docker Hub; it shuts down on 2026-12-08.
DOCKER_HUB_NOTARY = "notary.docker.io"


def own_notary(ctx: Context) -> tuple[str | None, str]:
    """(the notary server the admin runs, or None; what was seen) from DOCKER_CONTENT_TRUST_SERVER, the
    last setting of /etc/environment and /etc/profile.d/*.sh winning."""
    from urllib.parse import urlsplit

    found = content_trust_settings(ctx, "DOCKER_CONTENT_TRUST_SERVER")
    if not found:
        return None, f"DOCKER_CONTENT_TRUST_SERVER is not set, so the CLI uses {DOCKER_HUB_NOTARY}"
    f, n, value = found[-1]
    host = (urlsplit(value if "://" in value else "https://" + value).hostname or "").lower()
    if not host or host == DOCKER_HUB_NOTARY or host.endswith(".docker.io") or host.endswith(".docker.com"):
        return None, f"DOCKER_CONTENT_TRUST_SERVER={value or '(empty)'} at {f}:{n} is Docker's own notary"
    return value, f"DOCKER_CONTENT_TRUST_SERVER={value} at {f}:{n}"


#: The checks that verify images once content trust does nothing.
IMAGE_TRUST_CHECKS = "image-digest (images pinned by digest) and image-signature (cosign or Notation signatures)"


@check(
    "content-trust", cis="4.5", severity=MEDIUM, subject="host",
    fix=Fix(Safety.DISRUPTIVE, CONTENT_TRUST_IMPACT),
    title="Content trust is enabled for the host's users (DOCKER_CONTENT_TRUST=1)",
    explanation="The benchmark asks for DOCKER_CONTENT_TRUST=1 so that the docker CLI only pulls images signed with "
    "Docker Content Trust (Notary v1), and the team's notes agree: production should run images from a trusted "
    "party only. Be aware of where that mechanism stands in 2026. Docker has retired content trust for Docker "
    "Official Images: their signing certificates have been expiring since August 2025, so with the variable set, "
    "pulls of official images fail. The Docker CLI stopped enforcing the variable in release 29.0, so on a current "
    "CLI it does nothing. notary.docker.io shuts down on 2026-12-08, after which no content-trust pull works. The "
    "evidence says what the setting does with the CLI installed on this host. With a 29.0 or later CLI the finding "
    "is manual: image trust is then checked by the image-digest and image-signature checks, and a waiver naming "
    "them as the compensating control is how to close 4.5. With an older CLI the fix that sets the variable is "
    "only applied when DOCKER_CONTENT_TRUST_SERVER points at a notary the admin runs.",
    manual="grep -rn DOCKER_CONTENT_TRUST /etc/environment /etc/profile.d/; docker --version",
    remediation="Pin the images you run by digest and verify their signatures with cosign verify (Sigstore) or "
    "notation verify against the publisher's key or identity (dockfix's image-digest and image-signature checks). "
    "Set DOCKER_CONTENT_TRUST=1 only where the CLI is older than 29.0 and DOCKER_CONTENT_TRUST_SERVER names a "
    "notary you run for your own signed images.",
)
def content_trust(ctx: Context) -> list[Result]:
    clis = docker_cli_versions(ctx)
    if not clis:
        cli_text = "no docker CLI at /usr/local/bin/docker or /usr/bin/docker"
        effect = "no docker CLI is installed, so the setting has no effect"
        major = None
    else:
        path, version = clis[0]
        others = ", ".join(f"{v or 'unknown version'} at {p}" for p, v in clis[1:])
        cli_text = f"docker CLI {version or '(version unknown: not run outside a live root)'} at {path}" + \
            (f" (also {others})" if others else "")
        major = _major(version)
        if major is None:
            effect = ("the CLI version is unknown: before 29.0 the CLI enforces it, so pulls of Docker Official "
                      "Images fail and every content-trust pull fails after 2026-12-08; from 29.0 it is ignored")
        elif major >= 29:
            effect = "this CLI (29.0 or later) ignores the setting: it has no effect and verifies nothing"
        else:
            effect = ("this CLI (before 29.0) enforces it: only signed images are pulled, pulls of Docker Official "
                      "Images fail (expired signing certificates) and every content-trust pull fails once "
                      "notary.docker.io shuts down on 2026-12-08")
    settings = content_trust_settings(ctx)
    server, server_text = own_notary(ctx)
    # /etc/environment is read first (PAM), /etc/profile.d/*.sh after it in name order: the last one wins
    on = [settings[-1]] if settings and settings[-1][2] in TRUE_WORDS else []
    data = {"cli": [{"path": p, "version": v} for p, v in clis], "cli_major": major, "notary": server}
    ignored = major is not None and major >= 29
    # with a CLI that ignores the variable, 4.5 is a judgment: say so, and where image trust is checked now
    closing = (f". Image trust is checked by {IMAGE_TRUST_CHECKS}; to close 4.5, record a waiver with that "
               "compensating control")
    if not on:
        seen = "; ".join(f"set to {v or 'empty'} at {f}:{n}" for f, n, v in settings) or \
            "not set in /etc/environment or /etc/profile.d/*.sh"
        ev = f"DOCKER_CONTENT_TRUST {seen}; {cli_text}; if set, on this host: {effect}"
        if ignored:
            return [Result.manual(ev + closing, data=data)]
        return [Result.fail(f"{ev}; {server_text}", data=data)]
    where = ", ".join(f"{f}:{n}" for f, n, _ in on)
    ev = f"DOCKER_CONTENT_TRUST={on[0][2]} at {where}; {cli_text}; on this host: {effect}"
    loc = Location(on[0][0], on[0][1])
    if ignored:
        return [Result.manual(ev + closing, location=loc, data=data)]
    return [Result.ok(f"{ev}; {server_text}", location=loc, data=data)]


# ====================================================================== files under --path
CI_NAMES = (".gitlab-ci.yml", "Jenkinsfile", "azure-pipelines.yml", "bitbucket-pipelines.yml", ".drone.yml",
            ".travis.yml", "cloudbuild.yaml", "buildspec.yml", "Makefile", "Taskfile.yml", "justfile")
SCRIPT_EXTS = (".sh", ".bash", ".zsh", ".ksh", ".ps1", ".mk", ".yml", ".yaml", ".groovy", ".py", ".cmd", ".bat")


def script_kind(path: str) -> bool | None:
    """True for scripts, Dockerfiles, compose and CI files by name; None when only a ``#!`` line can
    tell (a file without an extension); False otherwise (never read)."""
    name = os.path.basename(path)
    if name in CI_NAMES or name.endswith(SCRIPT_EXTS) or name.startswith(("Dockerfile", "Containerfile")) or \
            name.endswith((".Dockerfile", ".dockerfile")):
        return True
    if "/.github/workflows/" in path or "/.circleci/" in path:
        return True
    return None if "." not in name.lstrip(".") else False


_DCT_FLAG = re.compile(r"--disable-content-trust(?:=(\w+))?")


@check(
    "disable-content-trust-flag", cis=None, severity=LOW, subject="--path",
    title="Scripts and build files do not pass --disable-content-trust",
    explanation="--disable-content-trust tells docker pull, push, build, run or create to skip image signature checks "
    "for that one command. The team's notes ask to avoid it so that what runs is what was signed. Content trust "
    "itself is retired (the CLI ignores it from 29.0, notary.docker.io closes on 2026-12-08), so each place that "
    "passes the flag marks an image that is fetched without any signature check: that is where a cosign or "
    "Notation verification belongs.",
    manual="grep -rn -- --disable-content-trust <folder>",
    remediation="Remove the flag and verify the image's signature before use (cosign verify IMAGE or notation "
    "verify IMAGE), in the script or in the CI pipeline.",
)
def disable_content_trust_flag(ctx: Context) -> list[Result]:
    if not ctx.paths:
        raise NotApplicable("no --path folders were given: scripts, Dockerfiles and CI files were not scanned")
    results = []
    examined = 0
    for top in ctx.paths:
        for p in ctx.host.walk(top):
            kind = script_kind(p)
            if kind is False:
                continue
            try:
                text = ctx.host.read_text(p, limit=2 * 1024 * 1024)
            except CheckError:
                continue  # binary, too large or unreadable: not a script
            if text is None or (kind is None and not text.startswith("#!")):
                continue
            examined += 1
            hits = []
            for n, line in enumerate(text.splitlines(), 1):
                code = line.lstrip()
                if code.startswith(("#", "//", "REM ")):
                    continue
                for m in _DCT_FLAG.finditer(line):
                    if m.group(1) and m.group(1).lower() in ("false", "0"):
                        continue
                    before = line[: m.start()]
                    cmd = re.findall(r"\bdocker(?:\s+(?:image|container|trust|buildx))?\s+(\w+)", before)
                    hits.append((n, cmd[-1] if cmd else None))
            if hits:
                lines = ", ".join(f"line {n}" + (f" (docker {c})" if c else "") for n, c in hits)
                results.append(Result.fail(f"passes --disable-content-trust: {lines}", subject=p,
                                           location=Location(p, hits[0][0]),
                                           data={"file": p, "lines": [n for n, _ in hits]}))
    if not results:
        return [Result.ok(f"{examined} scripts, Dockerfiles, CI and compose files under {', '.join(ctx.paths)} "
                          "examined: none passes --disable-content-trust")]
    return results


# ====================================================================== deployments (compose, containers, services)
@dataclass
class Var:
    name: str
    value: str | None  # secret: never shown
    line: int | None
    source: str  # "literal", ".env", "default", "shell" (no value in the file), "env_file", "engine"
    file: str | None = None
    from_interpolation: str | None = None

    def __repr__(self) -> str:
        return f"Var({self.name!r}, line={self.line}, source={self.source!r})"


@dataclass
class Deployment:
    """One place an image runs with an environment: a compose service, a container, a swarm service."""

    subject: str
    image: str
    env: list[Var]
    location: Location | None = None
    compose: ComposeFile | None = None
    service: ServiceSpec | None = None
    mounts: list[tuple[str, str]] = field(default_factory=list)  # (host source, container target)


def _engine_env(env: list[str] | None) -> list[Var]:
    out = []
    for item in env or []:
        name, sep, value = str(item).partition("=")
        out.append(Var(name, value if sep else None, None, "engine"))
    return out


def _compose_deployments(ctx: Context, errors: list[Result]) -> Iterator[Deployment]:
    for cf in iter_compose(ctx):
        if isinstance(cf, CheckError):
            errors.append(Result.error(str(cf), subject=f"compose:{str(cf).split(':', 1)[0]}"))
            continue
        for name, svc in cf.services.items():
            try:
                env = [Var(e.name, e.value, e.line, "shell" if e.source == "unset" else e.source, cf.path,
                           e.from_interpolation) for e in svc.environment]
                image = svc.image or ""
            except CheckError as e:
                errors.append(Result.error(str(e), subject=f"compose:{cf.path}#{name}"))
                continue
            for env_path in svc.env_files:
                try:
                    text = ctx.host.read_text(env_path)
                    values, lines = parse_dotenv(text, env_path) if text is not None else ({}, {})
                except CheckError as e:
                    errors.append(Result.error(str(e), subject=f"compose:{cf.path}#{name}"))
                    continue
                env.extend(Var(k, v, lines.get(k), "env_file", env_path) for k, v in values.items())
            mounts = []
            for v in svc.get("volumes") or []:
                if isinstance(v, str):
                    parts = v.split(":")
                    if len(parts) >= 2 and (parts[0].startswith((".", "/", "~"))):
                        mounts.append((cf.resolve_path(cf.interpolate(parts[0])[0] or parts[0]), parts[1]))
                elif hasattr(v, "get") and v.get("type", "volume") == "bind" and v.get("source") and v.get("target"):
                    mounts.append((cf.resolve_path(str(v.get("source"))), str(v.get("target"))))
            yield Deployment(f"compose:{cf.path}#{name}", image, env, Location(cf.path, svc.line), cf, svc, mounts)


def _engine_deployments(ctx: Context, errors: list[Result]) -> Iterator[Deployment]:
    if ctx.engine is None:
        return
    try:
        conts = ctx.need_engine().containers()
    except CheckError as e:
        errors.append(Result.error(str(e), subject="engine"))
        return
    for c in conts:
        name = str(c.get("Name") or c.get("Id", "")[:12]).lstrip("/")
        cfg = c.get("Config") or {}
        mounts = [(m.get("Source"), m.get("Destination")) for m in c.get("Mounts") or [] if m.get("Type") == "bind"]
        yield Deployment(f"container:{name}", str(cfg.get("Image") or ""), _engine_env(cfg.get("Env")), mounts=mounts)
    try:
        svcs = ctx.need_engine().services()
    except CheckError as e:
        errors.append(Result.error(str(e), subject="engine"))
        return
    for s in svcs:
        spec = s.get("Spec") or {}
        cs = (spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}
        mounts = [(m.get("Source"), m.get("Target")) for m in cs.get("Mounts") or [] if m.get("Type") == "bind"]
        image = str(cs.get("Image") or "").split("@", 1)[0]
        yield Deployment(f"service:{spec.get('Name') or s.get('ID')}", image, _engine_env(cs.get("Env")), mounts=mounts)


def deployments(ctx: Context) -> tuple[list[Deployment], list[Result]]:
    def collect() -> tuple[list[Deployment], list[Result]]:
        errors: list[Result] = []
        found = list(_compose_deployments(ctx, errors)) + list(_engine_deployments(ctx, errors))
        return found, errors

    return ctx.memo("deployments", collect)


def _where(ctx: Context) -> str:
    parts = []
    if ctx.compose or ctx.paths:
        parts.append("compose files from --compose/--path")
    if ctx.engine is not None:
        parts.append("the engine's containers and services")
    return " and ".join(parts) or "nothing: no --path, --compose or engine"


# ---------------------------------------------------------------------- env-password
def secret_vars(d: Deployment) -> list[tuple[Var, str]]:
    """(variable, why) of the variables of ``d`` that carry a secret."""
    out = []
    for v in d.env:
        if v.value is not None and v.value.strip() == "" and v.source in ("literal", "engine"):
            continue  # set to nothing
        if v.value is not None and v.value.startswith("/run/secrets/"):
            continue  # a path to a secret file
        if is_secret_name(v.name) and not (v.value is not None and looks_non_secret(v.value)):
            out.append((v, "name"))
        elif v.value is not None and has_url_credentials(v.value):
            out.append((v, "url"))
        elif v.value is None and v.source == "literal":
            continue
    return out


def config_user(ctx: Context, image: str) -> str | None:
    """``Config.User`` of ``image`` when the scanned engine has it (``""`` is root), else None."""
    if ctx.engine is None or not image:
        return None
    want = image if ":" in image.rsplit("/", 1)[-1] or "@" in image else image + ":latest"
    try:
        imgs = ctx.need_engine().images()
    except CheckError:
        return None
    for img in imgs:
        tags = img.get("RepoTags") or []
        if want in tags or f"docker.io/{want}" in tags or f"docker.io/library/{want}" in tags:
            return str((img.get("Config") or {}).get("User") or "")
    return None


def container_user(ctx: Context, d: Deployment) -> tuple[int, int] | None:
    """(uid, gid) the compose service's container runs as, when dockfix can tell."""
    user = d.service.get("user") if d.service is not None else None
    if user is not None and "$" in str(user) and d.compose is not None:
        user = d.compose.interpolate(str(user))[0]  # "${UID}:${GID}" from the project's .env
    return image_user(d.image, None if user is None else str(user), config_user(ctx, d.image))


def unreadable_secrets(ctx: Context, d: Deployment) -> list[str]:
    """Secret files of a compose service that its container's user could not read (compose bind-mounts
    the file with its host owner and mode, ignoring the long syntax's uid/gid/mode)."""
    if d.compose is None or d.service is None:
        return []
    top = d.compose.top("secrets")
    refs = d.service.get("secrets") or []
    if not hasattr(top, "get") or not isinstance(refs, list):
        return []
    user = container_user(ctx, d)
    out = []
    for r in refs:
        name = r if isinstance(r, str) else (r.get("source") if hasattr(r, "get") else None)
        decl = top.get(name) if isinstance(name, str) else None
        f = decl.get("file") if hasattr(decl, "get") else None
        if not isinstance(f, str) or "$" in f:
            continue
        path = d.compose.resolve_path(f)
        st = ctx.host.stat(path)
        if st is None:
            continue  # not there (yet): compose says so when it starts the project
        if user is None:
            if not can_read(1, 1, st.st_uid, st.st_gid, st.st_mode):
                out.append(f"secret {name}: {path} is {st.st_uid}:{st.st_gid} {st.st_mode & 0o7777:04o} and the "
                           f"user {d.image or 'the image'} runs as is not known (set user: in the service)")
        elif not can_read(user[0], user[1], st.st_uid, st.st_gid, st.st_mode):
            out.append(f"secret {name}: {path} is {st.st_uid}:{st.st_gid} {st.st_mode & 0o7777:04o}, which the "
                       f"container's user {user[0]}:{user[1]} cannot read")
    return out


def _describe(v: Var, why: str) -> str:
    what = f"{v.name} carries a password inside a URL/DSN" if why == "url" else f"{v.name} set"
    refs = " and ".join(f"${{{n}}}" for n in (v.from_interpolation or "").split(",") if n)
    if v.source == "literal":
        how = "to a literal value" if why == "name" else "(written literally)"
    elif v.source == ".env":
        how = f"from {refs}, defined in the .env beside the file"
    elif v.source == "default":
        how = f"from {refs} with a default written in the file"
    elif v.source == "shell":
        how = "from the environment of whoever runs compose"
    elif v.source == "env_file":
        how = f"in the env_file {v.file}"
    else:
        how = "in the environment of the running workload (docker inspect shows it)"
    line = f" (line {v.line})" if v.line else ""
    return f"{what} {how}{line}".replace("  ", " ")


@check(
    "env-password", cis=None, severity=HIGH, subject="deployments",
    fix=Fix(Safety.DISRUPTIVE, ENV_PASSWORD_IMPACT),
    title="No passwords or other secrets are passed as environment variables",
    explanation="An environment variable is readable by anyone who can run docker inspect, ends up in process "
    "listings, crash reports and debug output, is inherited by every child process, and, when written in a "
    "compose file, sits in the source repository in plain text. The team's notes keep passwords out of the "
    "repository with Docker secrets: the engine stores them encrypted and mounts them as files under "
    "/run/secrets/ in the containers that need them, and most images read a *_FILE variable pointing there.",
    manual="grep -nE 'PASSWORD|SECRET|TOKEN|_KEY' compose.yaml; docker inspect --format '{{range .Config.Env}}{{println .}}{{end}}' NAME | cut -d= -f1",
    remediation="Move each secret into a Docker secret (docker secret create, or compose's top-level secrets:) "
    "and point the image at the file with the variable's *_FILE form (MYSQL_ROOT_PASSWORD_FILE=/run/secrets/"
    "db_root_password); rotate any secret that was committed to a repository.",
)
def env_password(ctx: Context) -> list[Result]:
    found, errors = deployments(ctx)
    if not found and not errors:
        raise NotApplicable(f"no compose services, containers or swarm services found (looked at {_where(ctx)})")
    results = list(errors)
    for d in found:
        hits = secret_vars(d)
        unreadable = unreadable_secrets(ctx, d) if not hits else []
        if unreadable:
            results.append(Result.fail("; ".join(unreadable), subject=d.subject, location=d.location,
                                       data={"variables": [], "unreadable": unreadable}))
            continue
        if not hits:
            results.append(Result.ok(f"{len(d.env)} environment variables, none carries a secret", subject=d.subject,
                                     location=d.location))
            continue
        first = next((v for v, _ in hits if v.line and v.file), None)
        loc = Location(first.file, first.line) if first is not None else None
        data = {"variables": [{"name": v.name, "file": v.file, "line": v.line,
                               "source": v.source, "from_interpolation": v.from_interpolation,
                               "literal": v.source == "literal", "kind": why} for v, why in hits]}
        results.append(Result.fail("; ".join(_describe(v, why) for v, why in hits), subject=d.subject,
                                   location=loc or d.location, data=data))
    return results


# ---------------------------------------------------------------------- registries
REGISTRY_CONFIG_PATHS = ("/etc/docker/registry/config.yml", "/etc/distribution/config.yml")


def is_registry_image(image: str) -> bool:
    ref = image.split("@", 1)[0]
    name = ref.rsplit(":", 1)[0] if ":" in ref.rsplit("/", 1)[-1] else ref
    return name in ("registry", "library/registry", "docker.io/library/registry", "docker.io/registry",
                    "distribution/distribution", "docker.io/distribution/distribution",
                    "registry.hub.docker.com/library/registry") or name.endswith("/distribution/distribution")


@dataclass
class RegistrySetup:
    deployment: Deployment
    env: dict[str, Var]
    config: dict[str, Any] | None
    config_path: str | None
    config_note: str = ""


def _registry_config(ctx: Context, d: Deployment) -> tuple[dict | None, str | None, str]:
    for source, target in d.mounts:
        if not source or not target:
            continue
        target = target.rstrip("/")
        path = None
        if target in REGISTRY_CONFIG_PATHS:
            path = source
        elif target in (os.path.dirname(p) for p in REGISTRY_CONFIG_PATHS):
            path = source.rstrip("/") + "/config.yml"
        if path is None:
            continue
        try:
            text = ctx.host.read_text(path)
        except CheckError as e:
            return None, path, f"; its config {path} could not be read ({e})"
        if text is None:
            return None, path, f"; its config {path} is not on this host"
        try:
            doc = load_yaml_bounded(text, path)
        except CheckError as e:
            return None, path, f"; its config cannot be used ({e})"
        return (doc if isinstance(doc, dict) else {}), path, ""
    return None, None, ""


def registry_setups(ctx: Context) -> tuple[list[RegistrySetup], list[Result]]:
    def collect():
        found, errors = deployments(ctx)
        out = []
        for d in found:
            if not is_registry_image(d.image):
                continue
            cfg, path, note = _registry_config(ctx, d)
            out.append(RegistrySetup(d, {v.name: v for v in d.env}, cfg, path, note))
        return out, errors

    return ctx.memo("registry_setups", collect)


def _cfg(cfg: dict | None, *keys: str) -> Any:
    cur: Any = cfg
    for k in keys:
        if not isinstance(cur, dict) or k not in cur:
            return None
        cur = cur[k]
    return cur


def _env_value(r: RegistrySetup, name: str) -> tuple[str | None, Var | None]:
    v = r.env.get(name)
    return (v.value if v else None), v


def _loc(r: RegistrySetup, v: Var | None) -> Location | None:
    if v is not None and v.line and r.deployment.compose is not None:
        return Location(r.deployment.compose.path, v.line)
    return r.deployment.location


def _registry_results(ctx: Context, judge) -> list[Result]:
    setups, errors = registry_setups(ctx)
    if not setups and not errors:
        raise NotApplicable(f"no registry deployments (image registry or distribution/distribution) found "
                            f"(looked at {_where(ctx)})")
    return list(errors) + [judge(r) for r in setups]


@check(
    "registry-s3-encryption", cis=None, severity=MEDIUM, subject="registries",
    fix=Fix(Safety.DISRUPTIVE, REGISTRY_S3_IMPACT),
    title="A registry storing images in S3 asks for encryption at rest",
    explanation="A private registry keeps every layer of every image in its storage backend, often including "
    "configuration and code that is not public. With S3 storage, REGISTRY_STORAGE_S3_ENCRYPT=true (or "
    "storage.s3.encrypt: true in config.yml) makes the registry request server-side encryption for each object. "
    "AWS encrypts new objects by default since 2023, but S3-compatible stores (MinIO, Ceph, Scaleway and others) "
    "may not, and an explicit setting keeps the protection when the bucket or provider changes.",
    manual="docker service inspect --format '{{json .Spec.TaskTemplate.ContainerSpec.Env}}' REGISTRY | tr , '\\n' | grep -i -E 'STORAGE|ENCRYPT'",
    remediation="Set REGISTRY_STORAGE_S3_ENCRYPT=true (optionally REGISTRY_STORAGE_S3_KEYID for a KMS key) on the "
    "registry, or storage.s3.encrypt: true in its config.yml, and redeploy it.",
)
def registry_s3_encryption(ctx: Context) -> list[Result]:
    def judge(r: RegistrySetup) -> Result:
        subject = r.deployment.subject
        storage, sv = _env_value(r, "REGISTRY_STORAGE")
        s3_in_cfg = isinstance(_cfg(r.config, "storage"), dict) and "s3" in _cfg(r.config, "storage")
        uses_s3 = (storage or "").strip().lower() == "s3" or (storage is None and s3_in_cfg)
        where_cfg = f" in {r.config_path}" if r.config_path else ""
        if not uses_s3:
            return Result.skip(f"storage is {storage or ('from ' + r.config_path if r.config is not None else 'the default filesystem')}, "
                               f"not S3{r.config_note}", subject=subject)
        enc, ev = _env_value(r, "REGISTRY_STORAGE_S3_ENCRYPT")
        if enc is not None:
            ok = enc.strip().lower() in ("true", "1", "yes")
            text = f"S3 storage with REGISTRY_STORAGE_S3_ENCRYPT={enc.strip()}" + (f" (line {ev.line})" if ev and ev.line else "")
            return (Result.ok if ok else Result.fail)(text, subject=subject, location=_loc(r, ev))
        cfg_enc = _cfg(r.config, "storage", "s3", "encrypt")
        if cfg_enc is True:
            return Result.ok(f"S3 storage with storage.s3.encrypt: true{where_cfg}", subject=subject)
        if r.config is None and r.config_path is None:
            return Result.fail("S3 storage (REGISTRY_STORAGE=s3) without REGISTRY_STORAGE_S3_ENCRYPT and no "
                               "config.yml mounted into the registry", subject=subject, location=_loc(r, sv))
        if r.config is None:
            return Result.error(f"S3 storage without REGISTRY_STORAGE_S3_ENCRYPT{r.config_note}", subject=subject)
        return Result.fail(f"S3 storage without encryption: storage.s3.encrypt is {cfg_enc if cfg_enc is not None else 'not set'}"
                           f"{where_cfg} and REGISTRY_STORAGE_S3_ENCRYPT is not set", subject=subject,
                           location=_loc(r, sv))

    return _registry_results(ctx, judge)


@check(
    "registry-https", cis=None, severity=HIGH, subject="registries",
    fix=Fix(Safety.MANUAL, "The registry and its clients must be given the certificate; every client that "
            "listed it in insecure-registries can drop that entry."),
    title="A registry serves HTTPS, not plain HTTP",
    explanation="Over plain HTTP, registry credentials and image layers cross the network in the clear, and anyone "
    "on the path can swap the image a host pulls. Docker refuses plain-HTTP registries unless each client lists "
    "them as insecure-registries, which in turn weakens those clients. A registry should serve TLS itself "
    "(REGISTRY_HTTP_TLS_CERTIFICATE and REGISTRY_HTTP_TLS_KEY, or http.tls in config.yml) or sit behind a proxy "
    "that terminates TLS and be reachable only through it.",
    manual="docker inspect --format '{{range .Config.Env}}{{println .}}{{end}}' REGISTRY | grep REGISTRY_HTTP_TLS; curl -sI http://REGISTRY:5000/v2/",
    remediation="Give the registry a certificate (REGISTRY_HTTP_TLS_CERTIFICATE=/certs/domain.crt, "
    "REGISTRY_HTTP_TLS_KEY=/certs/domain.key, or http.tls in config.yml), or publish it only on 127.0.0.1 behind a "
    "TLS-terminating proxy.",
)
def registry_https(ctx: Context) -> list[Result]:
    def judge(r: RegistrySetup) -> Result:
        subject = r.deployment.subject
        cert, cv = _env_value(r, "REGISTRY_HTTP_TLS_CERTIFICATE")
        if cert:
            return Result.ok("TLS configured with REGISTRY_HTTP_TLS_CERTIFICATE" + (f" (line {cv.line})" if cv and cv.line else ""),
                             subject=subject, location=_loc(r, cv))
        le, _ = _env_value(r, "REGISTRY_HTTP_TLS_LETSENCRYPT_CACHEFILE")
        tls = _cfg(r.config, "http", "tls")
        if le or (isinstance(tls, dict) and (tls.get("certificate") or tls.get("letsencrypt"))):
            return Result.ok(f"TLS configured with http.tls in {r.config_path}" if not le else
                             "TLS configured with Let's Encrypt (REGISTRY_HTTP_TLS_LETSENCRYPT_*)", subject=subject)
        if r.config is None and r.config_path is not None:
            return Result.error(f"no REGISTRY_HTTP_TLS_CERTIFICATE{r.config_note}", subject=subject)
        seen = f"and no http.tls in {r.config_path}" if r.config_path else "and no config.yml mounted"
        return Result.fail(f"serves plain HTTP: no REGISTRY_HTTP_TLS_CERTIFICATE {seen}", subject=subject,
                           location=r.deployment.location)

    return _registry_results(ctx, judge)


# ====================================================================== Dockerfiles
#: (file name pattern, what it is). Certificates (*.crt, *.cer) are public and not listed; their private
#: keys are (*.key, *.pem, key stores).
SENSITIVE_NAMES = [
    (".env", "an environment file"), (".env.*", "an environment file"), ("*.env", "an environment file"),
    ("id_rsa*", "an SSH private key"), ("id_dsa*", "an SSH private key"), ("id_ecdsa*", "an SSH private key"),
    ("id_ed25519*", "an SSH private key"), ("*.pem", "a PEM file (may hold a private key)"), ("*.key", "a private key"),
    ("*.p12", "a key store"), ("*.pfx", "a key store"), ("*.jks", "a key store"), ("*.keystore", "a key store"),
    ("*.kdbx", "a password database"),
    (".npmrc", "registry credentials"), (".pypirc", "registry credentials"), (".netrc", "login credentials"),
    (".git-credentials", "git credentials"), (".htpasswd", "password hashes"), ("credentials", "credentials"),
    ("credentials.*", "credentials"), ("*credentials*.json", "credentials"), ("secrets.*", "secrets"),
    ("*.secret", "a secret"), ("*.secrets", "secrets"), ("kubeconfig", "cluster credentials"),
    (".dockercfg", "registry credentials"), ("*.tfstate", "Terraform state (holds secrets)"),
    ("*.sql.gz", "a database dump"), ("*.dump", "a database dump"), ("*dump*.sql", "a database dump"),
    ("*.bak", "a backup"), ("*.sqlite", "a database"), ("*.sqlite3", "a database"),
]
DATA_DIRS = {"data", "dumps", "dump", "backup", "backups", "exports", "export", "customers", "customer", "private",
             "pii", "db"}
DATA_EXTS = (".csv", ".sql", ".xlsx", ".xls", ".parquet", ".json", ".jsonl", ".ndjson", ".tsv")
CA_STORES = ("/usr/local/share/ca-certificates", "/etc/ssl/certs", "/etc/pki/ca-trust", "/usr/share/ca-certificates")
PUBLIC_SUFFIXES = (".pub",)


def sensitive_kind(rel: str, dest: str = "") -> str | None:
    """Why a file (path relative to the build context) looks like a secret or customer data, or None."""
    name = os.path.basename(rel.rstrip("/"))
    if name.endswith(PUBLIC_SUFFIXES) or name in (".env.example", ".env.sample", ".env.template", ".env.dist"):
        return None
    for pat, kind in SENSITIVE_NAMES:
        if fnmatch.fnmatch(name, pat):
            if kind.startswith("a PEM file") and dest.startswith(CA_STORES):
                return None  # CA certificates for the trust store are public
            return kind
    parts = {p.lower() for p in rel.split("/")[:-1]}
    if parts & DATA_DIRS and name.lower().endswith(DATA_EXTS):
        return "a data file in a data folder, possibly customer data"
    if ".docker" in rel.split("/") and name == "config.json":
        return "registry credentials"
    if ".aws" in rel.split("/") or ".ssh" in rel.split("/"):
        return "cloud or SSH credentials"
    return None


def dockerignore(ctx: Context, context_dir: str) -> list[tuple[bool, str]]:
    """(negated, pattern) lines of the build context's .dockerignore."""
    text = ctx.host.read_text(f"{context_dir.rstrip('/')}/.dockerignore") if ctx.host.is_file(
        f"{context_dir.rstrip('/')}/.dockerignore") else None
    out = []
    for line in (text or "").splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        neg = s.startswith("!")
        s = s.lstrip("!").strip().lstrip("/")
        s = os.path.normpath(s) if s else s
        out.append((neg, s))
    return out


def _ignored(rel: str, rules: list[tuple[bool, str]]) -> bool:
    result = False
    for neg, pat in rules:
        rx = _glob_rx(pat)
        # a pattern matches the path itself or any of its parent folders
        parts = rel.split("/")
        if any(rx.fullmatch("/".join(parts[:i])) for i in range(1, len(parts) + 1)):
            result = not neg
    return result


def _glob_rx(pat: str) -> re.Pattern:
    out, i = [], 0
    while i < len(pat):
        c = pat[i]
        if pat.startswith("**", i):
            out.append(".*")
            i += 2
            if i < len(pat) and pat[i] == "/":
                i += 1
                out[-1] = "(?:.*/)?"
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = pat.find("]", i)
            if j < 0:
                out.append(re.escape(c))
            else:
                out.append(pat[i:j + 1])
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out))


def _context_files(ctx: Context, context_dir: str, src: str) -> list[str]:
    """Files of the build context a COPY/ADD source names (paths relative to the context)."""
    src = src.lstrip("/")
    src = os.path.normpath(src) if src else "."
    if src.startswith(".."):
        return []
    base = context_dir.rstrip("/")
    if any(ch in src for ch in "*?["):
        rx = _glob_rx(src)
        out = []
        for rel in _context_listing(ctx, base):
            if rx.fullmatch(rel) or any(rx.fullmatch("/".join(rel.split("/")[:i])) for i in range(1, rel.count("/") + 1)):
                out.append(rel)
        return out
    full = base if src == "." else f"{base}/{src}"
    if ctx.host.is_dir(full):
        prefix = "" if src == "." else src.rstrip("/") + "/"
        return [rel for rel in _context_listing(ctx, base) if rel.startswith(prefix)]
    return [src]


def _context_listing(ctx: Context, base: str) -> list[str]:
    """Files of a build context (relative paths), listed once per scan."""
    return ctx.memo(f"context-files:{base}",
                    lambda: [os.path.relpath(p, base) for p in ctx.host.walk(base, max_files=5000)])


@check(
    "sensitive-file-in-image", cis="4.10", severity=HIGH, subject="Dockerfiles",
    title="Dockerfiles do not put secrets or customer data into images",
    explanation="Every file a Dockerfile COPYs or ADDs, and every ENV or ARG value, becomes part of the image: "
    "anyone who can pull it can read them with docker history or by unpacking its layers, and deleting the file in "
    "a later step does not remove it from the earlier layer. Keys, .env files, credentials and customer data "
    "(database dumps, exports) therefore do not belong in an image. As the team's notes put it, data such as a "
    "customer file is mounted as a volume when the container starts, so it never becomes part of the image.",
    manual="grep -nE '^(COPY|ADD|ENV|ARG)' Dockerfile; docker history --no-trunc IMAGE",
    remediation="Mount such data as a volume (or a Docker secret) at run time; for build-time secrets use "
    "RUN --mount=type=secret; list .env, keys and dumps in .dockerignore so COPY . cannot pick them up.",
)
def sensitive_file_in_image(ctx: Context) -> list[Result]:
    if not ctx.paths:
        raise NotApplicable("no --path folders were given: no Dockerfiles were scanned")
    files = find_dockerfiles(ctx)
    if not files:
        raise NotApplicable(f"no Dockerfiles under {', '.join(ctx.paths)}")
    results = []
    for path in files:
        try:
            instructions = load_dockerfile(ctx, path)
        except CheckError as e:
            results.append(Result.error(str(e), subject=f"dockerfile:{path}"))
            continue
        context_dir = os.path.dirname(path)
        ignore = dockerignore(ctx, context_dir)
        hits: list[tuple[int, str]] = []
        for ins in instructions:
            if ins.cmd in ("COPY", "ADD") and "from" not in ins.flags and not ins.heredocs:
                words = ins.words()
                if len(words) < 2:
                    continue
                dest = words[-1]
                for src in words[:-1]:
                    if re.match(r"^[a-z]+://", src) or src.startswith("git@"):
                        continue
                    named = sensitive_kind(src, dest)
                    if named:
                        hits.append((ins.line, f"{ins.cmd} {src}: {named}"))
                        continue
                    for rel in _context_files(ctx, context_dir, src)[:5000]:
                        kind = sensitive_kind(rel, dest)
                        if kind and not _ignored(rel, ignore):
                            hits.append((ins.line, f"{ins.cmd} {src} takes {rel} ({kind}; not in .dockerignore)"))
            elif ins.cmd in ("ENV", "ARG"):
                for name, value in ins.key_values():
                    if is_secret_name(name) and (ins.cmd == "ARG" or (value or "").strip()):
                        how = "a build argument (kept in the image history)" if ins.cmd == "ARG" else "set to a value in the image"
                        hits.append((ins.line, f"{ins.cmd} {name}: {how}"))
                    elif value and has_url_credentials(value):
                        hits.append((ins.line, f"{ins.cmd} {name}: a URL with a password"))
        if hits:
            results.append(Result.fail("; ".join(f"line {n}: {t}" for n, t in hits), subject=f"dockerfile:{path}",
                                       location=Location(path, hits[0][0]),
                                       data={"file": path, "lines": [n for n, _ in hits]}))
        else:
            results.append(Result.ok(f"{len(instructions)} instructions examined", subject=f"dockerfile:{path}"))
    return results


# ====================================================================== storage driver
STORAGE_DRIVERS = {
    "overlay2": (True, None, "the supported default"),
    "overlayfs": (True, None, "the containerd image store's overlay snapshotter"),
    "fuse-overlayfs": (True, None, "the overlay driver for rootless mode"),
    "btrfs": (True, None, "supported on a btrfs data root"),
    "zfs": (True, None, "supported on a ZFS data root"),
    "aufs": (False, None, "deprecated, and removed in Docker Engine 24.0"),
    "devicemapper": (False, None, "deprecated, and removed in Docker Engine 25.0"),
    "overlay": (False, None, "the legacy overlay driver, deprecated, and removed in Docker Engine 24.0"),
    "vfs": (False, Severity.LOW, "meant for testing: no copy-on-write, every layer is a full copy"),
}


@check(
    "storage-driver", cis=None, severity=MEDIUM, subject="dockerd",
    title="The daemon uses a supported storage driver (overlay2)",
    explanation="The storage driver holds every image and container filesystem. overlay2 is the supported default "
    "on current kernels; aufs, devicemapper and the legacy overlay driver are deprecated and have been removed "
    "from current Docker releases, so a host using one cannot be upgraded without migrating its data and keeps "
    "their known bugs meanwhile. vfs works but copies every layer in full.",
    manual="docker info --format '{{.Driver}}'",
    remediation="Plan a move to overlay2: save what must be kept (docker save, volume backups), set "
    "\"storage-driver\": \"overlay2\" in daemon.json, restart dockerd, and pull or rebuild images and recreate "
    "containers (they are not carried over).",
)
def storage_driver_check(ctx: Context) -> Result:
    from dockfix.checks.daemon import storage_driver

    driver, where = storage_driver(ctx)
    if driver is None:
        raise NotApplicable("the storage driver is only known from the engine (docker info) or a storage-driver "
                            "setting; neither is available")
    entry = STORAGE_DRIVERS.get(driver)
    ev = f"storage driver {driver} ({where})"
    if entry is None:
        return Result.manual(f"{ev}: not a driver this check knows; confirm it is supported by the engine's release",
                             data={"driver": driver})
    ok, severity, why = entry
    r = (Result.ok if ok else Result.fail)(f"{ev}: {why}", data={"driver": driver})
    if severity is not None:
        r.severity = severity
    return r
