"""CIS section 4: container images and build files.

Images are read from the engine once per scan (their inspect documents, and their history for
4.7/4.9); Dockerfiles come from the ``--path`` folders and every finding on one points at its line.
4.5 (content trust) is the scanner's check ``content-trust``.
"""

from __future__ import annotations

import re
from typing import Any

from dockfix.model import HIGH, LOW, MEDIUM, CheckError, Location, Result, check
from dockfix.context import Context, NotApplicable
from dockfix.sources.gather import gather

ROOT_USERS = ("", "root", "0")


# ---------------------------------------------------------------------- shared sources
def image_index(ctx: Context) -> dict[str, dict[str, Any]]:
    """Every image of the engine by id, by each tag and by each digest (memoised)."""

    images = ctx.need_engine().images()  # outside the memo lock

    def build() -> dict[str, dict[str, Any]]:
        idx: dict[str, dict[str, Any]] = {}
        for img in images:
            idx[img["Id"]] = img
            for ref in (img.get("RepoTags") or []) + (img.get("RepoDigests") or []):
                idx[ref] = img
        return idx

    return ctx.memo("image_index", build)


def image_ref(img: dict[str, Any]) -> str:
    tags = [t for t in img.get("RepoTags") or [] if t != "<none>:<none>"]
    return tags[0] if tags else img.get("Id", "")[:19]


def image_histories(ctx: Context) -> dict[str, list[dict[str, Any]]]:
    """{image id: history (newest layer first)}, fetched concurrently once per scan."""

    from concurrent.futures import ThreadPoolExecutor

    eng = ctx.need_engine()
    ids = [img["Id"] for img in eng.images()]
    # each history is fetched (and cached) once by the engine, outside the memo lock
    with ThreadPoolExecutor(max_workers=4) as pool:
        found = list(pool.map(eng.image_history, ids))
    return dict(zip(ids, found))


def dockerfiles(ctx: Context) -> list[tuple[str, Any]]:
    """[(path, instructions or CheckError)] of the Dockerfiles under --path."""
    from dockfix.sources.dockerfile import find_dockerfiles, load_dockerfile

    out = []
    for path in ctx.memo("dockerfiles", lambda: find_dockerfiles(ctx)):
        try:
            out.append((path, load_dockerfile(ctx, path)))
        except CheckError as e:
            out.append((path, e))
    return out


def final_stage(instructions: list) -> list:
    from dockfix.sources.dockerfile import stages

    groups = [g for g in stages(instructions) if g[0].cmd == "FROM"]
    return groups[-1] if groups else []


def per_subject(ctx: Context, images_fn, dockerfile_fn) -> list[Result]:
    """Results for each image (images_fn) and each Dockerfile (dockerfile_fn); either may be None.

    An unreachable engine gives one error result; a Dockerfile that cannot be read gives one for it.
    Nothing to look at at all -> skip.
    """
    results: list[Result] = []
    if images_fn is not None and ctx.engine is not None:
        try:
            results += images_fn(ctx)
        except CheckError as e:
            results.append(Result.error(str(e), subject="engine"))
    if dockerfile_fn is not None:
        for path, ins in dockerfiles(ctx):
            if isinstance(ins, CheckError):
                results.append(Result.error(str(ins), subject=f"dockerfile:{path}", location=Location(path)))
                continue
            r = dockerfile_fn(path, ins)
            if r is not None:
                r.subject = f"dockerfile:{path}"
                results.append(r)
    if not results and ctx.engine is None and not ctx.paths:
        raise NotApplicable("the engine was not scanned (--no-engine, or a --root tree without --docker-host) and no --path folder was given")
    return results


def _manual_images(ctx: Context, what: str) -> Result:
    if ctx.engine is None:
        return Result.manual(what, subject="images")
    try:
        n = len(ctx.need_engine().images())
    except CheckError as e:
        return Result.error(str(e), subject="images")
    return Result.manual(f"{what} ({n} image{'s' if n != 1 else ''} on this engine: docker image ls)", subject="images")


# ---------------------------------------------------------------------- 4.1
def _dockerfile_user(path: str, ins: list) -> Result:
    stage = final_stage(ins)
    if not stage:
        return Result.error(f"{path}: no FROM instruction", location=Location(path))
    users = [i for i in stage if i.cmd == "USER"]
    if not users:
        return Result.fail("the final stage has no USER instruction: the image runs as root",
                           location=Location(path, stage[0].line))
    last = users[-1]
    name = last.args.strip().split(":")[0]
    if name in ROOT_USERS:
        return Result.fail(f"the final USER is {last.args.strip()} (root)", location=Location(path, last.line))
    return Result.ok(f"runs as {last.args.strip()} (USER at line {last.line})", location=Location(path, last.line))


def effective_uid(ctx: Context, w) -> int | None:
    """The effective UID, as the container sees it, of a running container's first process; None when
    its processes are not on this machine (an engine reached over TCP) or cannot be read."""
    if w.kind != "container" or not w.running or not w.pid or \
            not (ctx.host.docker_host or "unix://").startswith("unix://"):
        return None
    try:
        with open(f"/proc/{w.pid}/status", encoding="utf-8", errors="replace") as f:
            status = f.read()
        with open(f"/proc/{w.pid}/uid_map", encoding="utf-8", errors="replace") as f:
            uid_map = f.read()
    except OSError:
        return None
    line = next((ln for ln in status.splitlines() if ln.startswith("Uid:")), "")
    fields = line.split()
    if len(fields) < 3 or not fields[2].isdigit():
        return None
    host_uid = int(fields[2])
    for row in uid_map.splitlines():  # user namespace: inside outside count
        parts = row.split()
        if len(parts) == 3 and all(p.isdigit() for p in parts):
            inside, outside, count = map(int, parts)
            if outside <= host_uid < outside + count:
                return inside + host_uid - outside
    return host_uid


@check(
    "container-user", cis="4.1", severity=MEDIUM,
    title="Containers run as a non-root user",
    explanation="A process that runs as root inside a container is one kernel bug or one misconfiguration away "
    "from root on the host. Images should create an ordinary user and switch to it with USER; containers may also "
    "set one with --user.",
    manual="docker ps -q | xargs -I{} docker exec {} grep '^Uid:' /proc/1/status   # effective UID: 2nd number; "
    "docker ps -q | xargs docker inspect --format '{{.Name}} user={{.Config.User}}'; grep -n USER Dockerfile",
    remediation="Create a user in the Dockerfile (RUN useradd -r app) and add USER app to the final stage, or run "
    "the container with --user UID:GID (compose user:).",
)
def container_user(ctx: Context) -> list[Result]:
    def engine_and_compose(ctx: Context) -> list[Result]:
        out: list[Result] = []
        workloads, errors = gather(ctx, ("container", "service", "compose"))
        out += errors
        for w in workloads:
            user = w.user
            where = "set here"
            if not user and w.kind != "container":
                img = None
                if ctx.engine is not None:
                    try:
                        img = image_index(ctx).get(w.image) or image_index(ctx).get(w.image + ":latest")
                    except CheckError:
                        img = None
                if img is None:
                    where_img = "is not on this engine" if ctx.engine is not None else "was not looked at (no engine)"
                    out.append(Result.manual(f"no user set here, and the image {w.image} {where_img}: check its USER",
                                             subject=w.subject, location=w.location("user")))
                    continue
                user, where = (img.get("Config") or {}).get("User") or "", f"from the image {w.image}"
            euid = effective_uid(ctx, w)
            if euid is not None:  # CIS v1.8.0 4.1 reads the effective UID of the container's first process
                ev = (f"runs as {user or 'root (no user set)'}: its first process (pid {w.pid}) has effective "
                      f"UID {euid} in the container")
                out.append((Result.fail if euid == 0 else Result.ok)(ev, subject=w.subject,
                                                                    location=w.location("user")))
                continue
            if user.split(":")[0] in ROOT_USERS:
                out.append(Result.fail(f"runs as {user or 'root (no user set)'}" + (f" ({where})" if user else ""),
                                       subject=w.subject, location=w.location("user")))
            else:
                out.append(Result.ok(f"runs as {user} ({where})", subject=w.subject, location=w.location("user")))
        return out

    results: list[Result] = []
    try:
        results += engine_and_compose(ctx)
    except NotApplicable:
        pass
    results += per_subject(ctx, None, _dockerfile_user)
    if not results and ctx.engine is None and not ctx.paths and not ctx.compose:
        raise NotApplicable("the engine was not scanned (--no-engine, or a --root tree without --docker-host) and no --path or --compose was given")
    return results


# ---------------------------------------------------------------------- 4.2 4.3 4.4 4.8 4.11 4.12
def _manual(id: str, cis: str, title: str, severity, explanation: str, manual: str, remediation: str, what: str):
    check(id, cis=cis, title=title, severity=severity, explanation=explanation, manual=manual,
          remediation=remediation)(lambda ctx: _manual_images(ctx, what))


_manual("trusted-base-images", "4.2", "Containers use only trusted base images", MEDIUM,
        "An image from an unknown publisher can carry anything, including malware or a back door, and it runs with "
        "whatever access the container has.",
        "docker image ls --format '{{.Repository}}:{{.Tag}}'; docker history IMAGE",
        "Build on official or verified images, or on your own base images from an internal registry; pin them by "
        "digest.",
        "judge where each image comes from: official or verified publishers, or your own registry")
_manual("minimal-packages", "4.3", "Unnecessary packages are not installed in the container", LOW,
        "Every package in an image is code an intruder can use and that needs patching. Small images (distroless, "
        "slim, alpine, scratch with a static binary) leave less to attack.",
        "docker run --rm --entrypoint sh IMAGE -c 'dpkg -l 2>/dev/null || apk info 2>/dev/null || rpm -qa'",
        "Rebuild on a minimal base and install only what the application needs (multi-stage builds keep build "
        "tools out of the final image).",
        "list each image's packages and judge which the application needs")
_manual("image-patching", "4.4", "Images are scanned and rebuilt to include security patches", MEDIUM,
        "An image is frozen at build time: its packages keep the vulnerabilities they had then until the image is "
        "rebuilt and the containers are recreated.",
        "docker image ls --format '{{.Repository}}:{{.Tag}} {{.CreatedSince}}'; scan with a vulnerability scanner",
        "Scan images regularly, rebuild them on patched bases, and recreate the containers from the new images.",
        "scan the images for known vulnerabilities and look at how old they are (docker image ls, CREATED)")
_manual("setuid-removed", "4.8", "setuid and setgid permissions are removed in images", LOW,
        "setuid and setgid programs run with their owner's privileges; inside a container they are the usual way "
        "from an ordinary user to root.",
        "docker run --rm --entrypoint sh IMAGE -c 'find / -xdev -perm /6000 -type f'",
        "Remove the bits in the Dockerfile (RUN find / -xdev -perm /6000 -type f -exec chmod a-s {} +) unless a "
        "program needs them; no-new-privileges (5.26) also neutralises them.",
        "list each image's setuid/setgid files and remove the bits the application does not need")
_manual("verified-packages", "4.11", "Only verified packages are installed", LOW,
        "Packages installed without checking their signature or checksum may have been tampered with on the way.",
        "grep -nE 'curl|wget|--allow-unauthenticated|--nogpgcheck|trusted=yes' Dockerfile",
        "Install through the distribution's package manager with signature checks on, and verify checksums of "
        "anything downloaded directly.",
        "read the Dockerfiles for downloads without a checksum and package installs with signature checks off")
_manual("signed-artifacts", "4.12", "All signed artifacts are validated", LOW,
        "A signature protects only when someone checks it: images and other artifacts should be verified before "
        "they are deployed.",
        "docker trust inspect --pretty IMAGE",
        "Verify signatures of images and artifacts in the build and deploy pipeline (docker trust, cosign, notation).",
        "check that the build and deploy pipeline verifies signatures of the images and artifacts it uses")


# ---------------------------------------------------------------------- 4.6
def _dockerfile_health(path: str, ins: list) -> Result:
    stage = final_stage(ins)
    if not stage:
        return Result.error(f"{path}: no FROM instruction", location=Location(path))
    hcs = [i for i in stage if i.cmd == "HEALTHCHECK"]
    if not hcs:
        return Result.fail("the final stage has no HEALTHCHECK instruction", location=Location(path, stage[0].line))
    last = hcs[-1]
    if last.args.strip().upper() == "NONE":
        return Result.fail("HEALTHCHECK NONE disables the health check", location=Location(path, last.line))
    return Result.ok(f"HEALTHCHECK at line {last.line}", location=Location(path, last.line))


def _images_health(ctx: Context) -> list[Result]:
    out = []
    for img in ctx.need_engine().images():
        h = (img.get("Config") or {}).get("Healthcheck") or {}
        test = h.get("Test") or []
        subject = f"image:{image_ref(img)}"
        if test and str(test[0]).upper() != "NONE":
            out.append(Result.ok(f"HEALTHCHECK {' '.join(map(str, test))[:80]}", subject=subject))
        else:
            out.append(Result.fail("no HEALTHCHECK in the image", subject=subject))
    return out


@check(
    "image-healthcheck", cis="4.6", severity=LOW,
    title="HEALTHCHECK instructions are added to container images",
    explanation="A HEALTHCHECK in the image tells the engine how to check that the application answers, so every "
    "container started from it is watched without extra flags.",
    manual="docker image inspect --format '{{.RepoTags}} {{.Config.Healthcheck}}' $(docker image ls -q)",
    remediation="Add a HEALTHCHECK instruction suited to the application (e.g. HEALTHCHECK CMD curl -f "
    "http://localhost/ || exit 1) to the final stage, and rebuild.",
)
def image_healthcheck(ctx: Context) -> list[Result]:
    return per_subject(ctx, _images_health, _dockerfile_health)


# ---------------------------------------------------------------------- 4.7
_UPDATE = re.compile(r"\b(apt-get|apt|apk|zypper|yum|dnf)\s+(?:-\S+\s+)*(update|refresh|makecache)\b")
_INSTALL = re.compile(r"\b(install|add|upgrade|dist-upgrade|update\s+-y\s+\S)")


def update_alone(command: str) -> bool:
    """True when a RUN command refreshes package lists without installing in the same step."""
    m = _UPDATE.search(command)
    if not m:
        return False
    if m.group(1) in ("yum", "dnf") and m.group(2) == "update":
        return False  # yum/dnf update installs updates: not a bare index refresh
    return not _INSTALL.search(command[m.end():]) and not _INSTALL.search(command[: m.start()])


def _dockerfile_update(path: str, ins: list) -> Result:
    alone = [i for i in ins if i.cmd == "RUN" and update_alone(i.args + " " + " ".join(h.body for h in i.heredocs))]
    if alone:
        return Result.fail("package index update in a RUN of its own (line " + ", ".join(str(i.line) for i in alone)
                           + "): later installs can use a stale cached index", location=Location(path, alone[0].line))
    return Result.ok("no update instruction used alone", location=Location(path))


def _images_update(ctx: Context) -> list[Result]:
    hist = image_histories(ctx)
    out = []
    for img in ctx.need_engine().images():
        steps = [h.get("CreatedBy") or "" for h in hist.get(img["Id"]) or []]
        bad = [s for s in steps if update_alone(s)]
        subject = f"image:{image_ref(img)}"
        if bad:
            out.append(Result.fail(f"a layer only refreshes the package index: {bad[0].strip()[:100]}", subject=subject))
        else:
            out.append(Result.ok(f"no update-only layer among {len(steps)} history entries", subject=subject))
    return out


@check(
    "update-alone", cis="4.7", severity=LOW,
    title="Update instructions are not used alone in the Dockerfile",
    explanation="A RUN that only refreshes the package index (apt-get update) is cached as its own layer; later "
    "builds reuse the old index and install outdated packages, or fail.",
    manual="docker history --no-trunc IMAGE | grep -E 'apt-get update|apk update'; grep -n update Dockerfile",
    remediation="Refresh and install in the same RUN: RUN apt-get update && apt-get install -y PKG && rm -rf "
    "/var/lib/apt/lists/*",
)
def dockerfile_update(ctx: Context) -> list[Result]:
    return per_subject(ctx, _images_update, _dockerfile_update)


# ---------------------------------------------------------------------- 4.9
_BASE_ADD = re.compile(r"ADD file:[0-9a-f]+ in /\s*$")


def _dockerfile_add(path: str, ins: list) -> Result:
    adds = [i for i in ins if i.cmd == "ADD"]
    if adds:
        return Result.fail("ADD used (line " + ", ".join(str(i.line) for i in adds) + "); use COPY",
                           location=Location(path, adds[0].line))
    return Result.ok("no ADD instruction", location=Location(path))


def _images_add(ctx: Context) -> list[Result]:
    hist = image_histories(ctx)
    out = []
    for img in ctx.need_engine().images():
        steps = [h.get("CreatedBy") or "" for h in hist.get(img["Id"]) or []]
        adds = [s for i, s in enumerate(steps)
                if re.search(r"(#\(nop\)\s*|^)ADD\s", s.strip()) and not (i == len(steps) - 1 and _BASE_ADD.search(s))]
        subject = f"image:{image_ref(img)}"
        if adds:
            out.append(Result.fail(f"built with ADD: {re.sub(r'^.*?ADD', 'ADD', adds[0].strip())[:100]}", subject=subject))
        else:
            out.append(Result.ok("no ADD in the image history (a base image's root filesystem layer excepted)", subject=subject))
    return out


@check(
    "copy-not-add", cis="4.9", severity=LOW,
    title="COPY is used instead of ADD in Dockerfiles",
    explanation="ADD also fetches URLs and unpacks archives, so a build can pull in remote content unchecked or "
    "write files where an archive says. COPY only copies local files, which is what is almost always meant.",
    manual="docker history --no-trunc IMAGE | grep ADD; grep -n '^ADD' Dockerfile",
    remediation="Replace ADD with COPY; download remote files with a checked step (curl + checksum) instead.",
)
def copy_not_add(ctx: Context) -> list[Result]:
    return per_subject(ctx, _images_add, _dockerfile_add)


# ---------------------------------------------------------------------- 4.10
# Dockerfiles are the scanner's check `sensitive-file-in-image` (checks/notes.py); this one looks at
# what built images carry in their configuration.
def _images_secrets(ctx: Context) -> list[Result]:
    from dockfix.sources.secrets import is_secret_name

    out = []
    for img in ctx.need_engine().images():
        names = [e.split("=", 1)[0] for e in (img.get("Config") or {}).get("Env") or []
                 if "=" in e and e.split("=", 1)[1]]
        secret = [n for n in names if is_secret_name(n)]
        subject = f"image:{image_ref(img)}"
        if secret:
            out.append(Result.fail("the image's environment holds " + ", ".join(secret)
                                   + " with values baked in at build time", subject=subject))
        else:
            out.append(Result.ok("no secret-named variable in the image's environment", subject=subject))
    return out


@check(
    "image-env-secrets", cis="4.10", severity=HIGH,
    title="Images do not carry secrets in their environment",
    explanation="An ENV written at build time stays in the image's configuration: anyone who can pull or inspect "
    "the image reads it with docker image inspect, and every container started from it inherits it.",
    manual="docker image inspect --format '{{.RepoTags}} {{.Config.Env}}' $(docker image ls -q)",
    remediation="Remove the ENV from the Dockerfile and rebuild; pass the secret at run time (swarm or compose "
    "secrets, a mounted file) or at build time with RUN --mount=type=secret, and rotate the secret that was baked in.",
)
def image_env_secrets(ctx: Context) -> list[Result]:
    return per_subject(ctx, _images_secrets, None)
