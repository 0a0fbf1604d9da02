"""Fix for ``env-password``: passwords move out of environment variables into Docker secrets.

One builder, three kinds of subject (see the check in dockfix/checks/notes.py):

* ``compose:<file>#<service>`` — the compose file is edited in place (see
  :mod:`dockfix.fixes.compose_secrets`); each value goes to ``secrets/<service>_<VAR>`` beside it
  (0600, owned like the compose file), the ``.env`` line it came from goes when nothing else uses
  it, and the secret files are added to ``.gitignore`` when the folder is in a git work tree;
* ``service:<name>`` — a swarm service: each value becomes a swarm secret with a unique name,
  labelled as made by dockfix, and the service is updated to mount it instead of carrying the
  variable; the journal keeps the old spec, rollback puts it back and removes the secret;
* ``container:<name>`` — a container made with ``docker run -e`` cannot be changed in place: the
  fix is manual and says how; one made by compose is fixed in its compose file.

No value is ever put in a plan file: a file holding one is written as a secret WriteFile (its
content is rebuilt from the host when a plan file is applied, and used only if its sha256 matches),
and a swarm secret's bytes are read again from the service at apply time (:func:`dockfix.changes.swarm.service_env_secret`).
"""

from __future__ import annotations

import json
import os
import hashlib as _hashlib
from typing import Any

import re

from dockfix.checks.notes import Deployment, Var, container_user, env_password, secret_vars
from dockfix.fixes import ManualFix, item
from dockfix.fixes.compose_secrets import (
    SECRETS_DIR,
    Conversion,
    convert,
    dotenv_without,
    secret_name,
)
from dockfix.fixes.compose_oracle import (
    OVERRIDE_FILES,
    Move,
    OracleError,
    Project,
    differences,
    find_compose_v1,
    find_compose_v2,
    v1_environment,
)
from dockfix.sources.image_recipes import (
    FileEnv,
    MyCnf,
    RecipeError,
    mycnf,
    recipe_for,
    repository,
)
from dockfix.model import CheckError, Finding
from dockfix.sources.compose import COMPOSE_SERVICE_LABEL, STACK_LABEL, compose_files_of
from dockfix.changes import CreateSecret, MakeDir, UpdateService, WriteFile, staged_state, staged_text
from dockfix.changes.staging import canonical, staging
from dockfix.changes.swarm import env_value as _env_value
from dockfix.plan import PlanItem

#: Label put on every swarm secret dockfix creates.
MADE_BY_LABEL = "io.dockfix.made-by"



@env_password.fix
def move_to_secrets(ctx, finding: Finding) -> PlanItem | list:
    kind, _, name = finding.subject.partition(":")
    if kind == "compose":
        path, _, service = name.rpartition("#")
        return compose_item(ctx, finding, path, service)
    if kind == "service":
        return service_item(ctx, finding, name)
    if kind == "container":
        return container_item(ctx, finding, name)
    raise ManualFix(f"{finding.subject}: dockfix does not know how to change this kind of workload")


# ---------------------------------------------------------------------- compose files
def _flagged(ctx, cf, service: str, strict: bool = True) -> list[Var]:
    svc = cf.services.get(service)
    if svc is None:
        raise ManualFix(f"{cf.path}: no service {service!r} any more")
    try:
        environment = svc.environment
    except CheckError:
        if strict:
            raise
        return []
    env = [Var(e.name, e.value, e.line, "shell" if e.source == "unset" else e.source, cf.path, e.from_interpolation)
           for e in environment]
    return [v for v, _ in secret_vars(Deployment(f"compose:{cf.path}#{service}", svc.image or "", env))]


def _in_git_tree(ctx, folder: str) -> bool:
    d = folder
    while True:
        if ctx.host.lstat(os.path.join(d, ".git")) is not None:
            return True
        if d == "/":
            return False
        d = os.path.dirname(d)


def compose_item(ctx, finding: Finding, path: str, service: str) -> PlanItem | list:
    from dockfix.sources.compose import is_compose_name, parse_compose, parse_dotenv

    text = staged_text(ctx, path)
    if text is None:
        raise ManualFix(f"{path}: compose file not found")
    folder = os.path.dirname(path) or "/"
    env_path = os.path.join(folder, ".env")
    env_text = staged_text(ctx, env_path) if staged_state(ctx, env_path).existed else None
    env: dict[str, str] = {}
    if env_text is not None:
        env, _ = parse_dotenv(env_text.lstrip("\ufeff"), env_path)
    cf = parse_compose(text.lstrip("\ufeff"), path, env)
    flagged = _flagged(ctx, cf, service)
    in_env_files = sorted({f"{v['name']} (in {v.get('file')})" for v in finding.data.get("variables", [])
                           if v.get("source") == "env_file"})
    if not flagged and in_env_files:
        raise ManualFix(f"{path}: service {service!r} reads {', '.join(in_env_files)} through env_file: move each "
                        "value into a file under secrets/ (mode 0600), declare it in a top-level secrets: entry "
                        "(file:), list it in the service's secrets:, set <VAR>_FILE=/run/secrets/<name> where the "
                        "image reads it, and delete the line from the env_file")
    if not flagged and finding.data.get("unreadable"):
        raise ManualFix("; ".join(finding.data["unreadable"]) + ": give each file the group of the container's user "
                        "and mode 0640 (chown root:GID FILE; chmod 0640 FILE)")
    if not flagged:
        return []  # already done (an earlier item of this plan converted them)
    fixable = [v for v in flagged if v.source in ("literal", ".env", "default")]
    left = [v.name for v in flagged if v not in fixable]
    if not fixable:
        raise ManualFix(f"{path}: service {service!r} takes {', '.join(left)} from the shell that runs compose, "
                        "not from this folder: put the value in a file under secrets/, declare it in a top-level "
                        "secrets: entry (file:) and list it in the service's secrets:")
    comp = cf.doc.get("secrets") if hasattr(cf.doc, "get") else None
    declared = set(comp.keys()) if hasattr(comp, "keys") else set()
    convs: list[Conversion] = []
    for v in fixable:
        base = secret_name(service, v.name)
        name, n = base, 2
        while name in declared or staged_state(ctx, os.path.join(folder, SECRETS_DIR, name)).existed:
            name, n = f"{base}_{n}", n + 1
        declared.add(name)
        convs.append(Conversion(service, v.name, name))
    others = []
    if env_text is not None:
        others.append(env_text)
    for other in ctx.host.listdir(folder):
        p = os.path.join(folder, other)
        if p != path and is_compose_name(other) and ctx.host.is_file(p):
            others.append(staged_text(ctx, p) or "")
    out = convert(text, path, env, convs, others)
    image = cf.services[service].image or ""
    notes: list[str] = []
    dotenv_after = None
    oracle = ctx.memo("dockfix.fixes.compose_v2", find_compose_v2)
    if oracle is not None:
        dotenv_after, oracle_notes = _ask_compose(ctx, oracle, path, env_path, env_text, service, image, convs, out)
        notes.extend(oracle_notes)
    else:
        _without_compose_v2(ctx, cf, path, service, convs, env_text)
        if out.dotenv_remove and env_text is not None:
            dotenv_after = dotenv_without(env_text, out.dotenv_remove)
        for name in out.dotenv_kept:
            notes.append(f"{name} stays in {env_path}: another compose file or .env line of the folder still uses it")

    st = staged_state(ctx, path)
    uid, gid = st.uid or 0, st.gid or 0
    user = container_user(ctx, _deployment(cf, service, image))
    changes: list[Any] = []
    secrets_dir = os.path.join(folder, SECRETS_DIR)
    dir_state = staged_state(ctx, secrets_dir)
    if not dir_state.existed:
        changes.append(MakeDir(path=secrets_dir, mode=0o700, uid=uid, gid=gid))
    elif dir_state.kind != "dir":
        raise ManualFix(f"{secrets_dir} is a {dir_state.kind}, not a folder: move it away, or move the password "
                        "into a secret by hand")
    # compose bind-mounts a file secret with its host owner and mode (2.40 ignores the long syntax's
    # uid/gid/mode, with a warning): owned by root, group of the container's user, 0640
    if user is None:
        f_uid, f_gid, f_mode = 0, 0, 0o600
        notes.append(f"the user {image or 'the image'} runs as is not known: the secret files are root:root 0600, "
                     "readable only by a container that runs as root; set user: in the service or give the files "
                     "the group of the container's user (chgrp GID, chmod 0640)")
    elif user[0] == 0:
        f_uid, f_gid, f_mode = 0, 0, 0o600
    else:
        f_uid, f_gid, f_mode = 0, user[1], 0o640
        notes.append(f"the secret files are root:{user[1]} 0640: readable by the container's user {user[0]}:{user[1]} "
                     "(compose bind-mounts them as they are on the host) and by no other user of the host")
    for c in convs:
        changes.append(WriteFile(path=os.path.join(secrets_dir, c.secret), after=out.secret_files[c.secret],
                                 mode=f_mode, uid=f_uid, gid=f_gid, secret=True))
    after = out.compose_after
    # values this fix does not move (other services, other keys) must not reach a plan file either
    still_secret = any(val and val in after for val in env.values() if len(val) >= 4) or \
        any(v.value and v.value in after for s in cf.services for v in _flagged(ctx, cf, s, strict=False))
    changes.append(WriteFile(path=path, after=after.encode("utf-8"), secret=still_secret))
    if dotenv_after is not None and dotenv_after != env_text:
        changes.append(WriteFile(path=env_path, after=dotenv_after.encode("utf-8"), secret=True))
    notes[:0] = out.notes
    if out.dotenv_remove:
        notes.append(f"{', '.join(out.dotenv_remove)} taken out of {env_path}: nothing else uses it")
    if _in_git_tree(ctx, folder):
        changes.extend(_gitignore(ctx, folder, [c.secret for c in convs], uid, gid))
        notes.append("the folder is in a git work tree: the secret files are added to .gitignore; a password that "
                     "was committed stays in the history — change it")
    if left:
        notes.append(f"{', '.join(left)} come from the shell that runs compose: not moved")
    if in_env_files:
        notes.append(f"{', '.join(in_env_files)} come through env_file: not moved; move them by hand the same way")
    if out.unknown_image:
        notes.append("kept disruptive: the image is not known to read a *_FILE variable")
    return item(finding, changes, notes)


def _gitignore(ctx, folder: str, names: list[str], uid: int, gid: int) -> list[WriteFile]:
    path = os.path.join(folder, ".gitignore")
    st = staged_state(ctx, path)
    before = (staged_text(ctx, path) or "") if st.existed else ""
    have = {ln.strip() for ln in before.splitlines()}
    if have & {"secrets", "secrets/", "/secrets", "/secrets/", "secrets/*", "/secrets/*"}:
        return []
    add = [f"/{SECRETS_DIR}/{n}" for n in names if f"/{SECRETS_DIR}/{n}" not in have]
    if not add:
        return []
    text = before + ("" if not before or before.endswith("\n") else "\n")
    if "# Docker secrets written by dockfix" not in have:
        text += "# Docker secrets written by dockfix\n"
    text += "".join(a + "\n" for a in add)
    if st.existed:
        return [WriteFile(path=path, after=text.encode("utf-8"))]
    return [WriteFile(path=path, after=text.encode("utf-8"), mode=0o644, uid=uid, gid=gid)]


def _deployment(cf, service: str, image: str) -> Deployment:
    return Deployment(f"compose:{cf.path}#{service}", image, [], compose=cf, service=cf.services[service])


def _reader(ctx):
    st = staging(ctx)

    def read(p: str) -> bytes | None:
        try:
            return st.content(canonical(ctx.host, p))
        except Exception:  # noqa: BLE001  (unreadable or odd: compose will say it is missing)
            return None
    return read


def _moves(image: str, convs: list[Conversion]) -> list[Move]:
    out = []
    for c in convs:
        recipe = recipe_for(image, c.var)
        if isinstance(recipe, MyCnf):
            out.append(Move(c.service, c.var, c.secret, None, f"{recipe.flag}=/run/secrets/{c.secret}"))
        else:
            out.append(Move(c.service, c.var, c.secret, (recipe or FileEnv()).file_var(c.var)))
    return out


def _ask_compose(ctx, oracle, path: str, env_path: str, env_text: str | None, service: str, image: str,
                 convs: list[Conversion], out) -> tuple[str | None, list[str]]:
    """Compose v2 decides: the secrets' bytes are what compose gives the container now, and the
    conversion is kept only when compose's model after it differs from the model before it by the
    planned changes alone. Returns the new .env text (None: unchanged) and notes."""
    cmd, version = oracle
    folder = os.path.dirname(path) or "/"
    secrets_dir = os.path.join(folder, SECRETS_DIR)
    notes: list[str] = []
    project = Project(path, _reader(ctx))
    try:
        project.collect()
        before = _model(project, cmd)
    except OracleError as e:
        raise ManualFix(f"{path}: {e}; move the password by hand") from None
    benv = ((before.get("services") or {}).get(service) or {}).get("environment") or {}
    for c in convs:
        value = benv.get(c.var)
        if value is not None:
            value = value.replace("$$", "$")  # `config` escapes every $ of its output so that it loads again
        if value is None:
            raise ManualFix(f"{path}: compose {version} gives {c.var} of service {service!r} no value here (it would "
                            "come from the shell that runs compose); create the secret file by hand")
        recipe = recipe_for(image, c.var)
        if isinstance(recipe, MyCnf):
            try:
                content = mycnf(c.var, value, image)
            except RecipeError as e:
                raise ManualFix(f"{path}: service {service!r}: {e}; write the exporter's option file by hand") from None
        else:
            content = value.encode("utf-8")
        if content != out.secret_files.get(c.secret):
            notes.append(f"{c.var}: dockfix's own reading of the value differed from compose {version}'s "
                         "(interpolation, quoting, escapes or YAML number rules); the secret holds compose's")
        out.secret_files[c.secret] = content
    v1 = ctx.memo("dockfix.fixes.compose_v1", find_compose_v1)
    if v1 is not None:
        old = v1_environment(v1[0], project)
        if old is not None:
            for c in convs:
                if (old.get(service) or {}).get(c.var) != benv.get(c.var):
                    raise ManualFix(f"{path}: docker-compose {v1[1]} and compose {version} give {c.var} of service "
                                    f"{service!r} different values (YAML 1.1 and 1.2 number rules, .env quoting or "
                                    "interpolation): which one runs this stack decides; move it by hand and quote "
                                    "the value")
    planned: dict[str, bytes | None] = {path: out.compose_after.encode("utf-8")}
    for c in convs:
        planned[os.path.join(secrets_dir, c.secret)] = out.secret_files[c.secret]
    moves = _moves(image, convs)
    dotenv_after = None
    names = out.dotenv_remove + out.dotenv_kept
    if names and env_text is not None:
        dotenv_after = dotenv_without(env_text, names)
        project.planned = {**planned, env_path: dotenv_after.encode("utf-8")}
        try:
            diffs = differences(before, _model(project, cmd), moves, secrets_dir)
        except OracleError as e:
            raise ManualFix(f"{path}: {e}; move the password by hand") from None
        if diffs:
            notes.append(f"{', '.join(names)} stay in {env_path}: compose {version} still reads them ("
                         + "; ".join(diffs[:4]) + ")")
            dotenv_after = None
        else:
            out.dotenv_remove[:] = names
    if dotenv_after is None:
        out.dotenv_remove.clear()
        project.planned = planned
        try:
            diffs = differences(before, _model(project, cmd), moves, secrets_dir)
        except OracleError as e:
            raise ManualFix(f"{path}: {e}; move the password by hand") from None
        if diffs:
            raise ManualFix(f"{path}: after the change, compose {version} would run the project differently: "
                            + "; ".join(diffs[:6]) + "; move the password by hand")
    notes.append(f"checked with compose {version}: the project's model before and after differs only by the moved "
                 "variables, the new secrets and their file pointers")
    return dotenv_after, notes


def _model(project: Project, cmd: list[str]) -> dict:
    return project.model(cmd)


def _without_compose_v2(ctx, cf, path: str, service: str, convs: list[Conversion], env_text: str | None) -> None:
    """Without compose v2, dockfix's own reading decides, and only where it is certain: the cases
    where compose-go's rules go beyond what dockfix models are manual."""
    folder = os.path.dirname(path) or "/"
    why = None
    if any(ctx.host.is_file(os.path.join(folder, n)) for n in OVERRIDE_FILES):
        why = "an override file beside it (compose merges it)"
    elif cf.top("include") is not None or any(s.get("extends") is not None for s in cf.services.values()):
        why = "include: or extends: (files of other folders)"
    elif any(s.get("env_file") is not None for s in cf.services.values()):
        why = "services reading env_file: (which compose merges under environment:)"
    elif env_text is not None and re.search(r"""^[^#\n]*=.*[$\\'"]""", env_text, re.M):
        why = "a .env value with quotes, escapes or interpolation"
    else:
        svc = cf.services[service]
        for c in convs:
            var = next((v for v in svc.environment if v.name == c.var), None)
            if var is not None and var.source == "literal" and var.value and _NUMBERISH.fullmatch(var.value) \
                    and not _quoted(cf, service, c.var):
                why = f"an unquoted value of {c.var} that YAML 1.1 and 1.2 read differently"
                break
    if why:
        raise ManualFix(f"{path}: compose v2 is not installed here to check the change, and the project has {why}; "
                        "install docker compose v2 and plan again, or move the password by hand")


_NUMBERISH = re.compile(r"[-+]?(?:0[0-7]+|0o[0-7]+|0x[0-9a-fA-F]+|[0-9_]+(?::[0-5]?[0-9])+|[0-9.]*[eE][-+]?[0-9]+|[0-9_]+\.[0-9_]*|\.(?:inf|nan)|[0-9_]+)")


def _quoted(cf, service: str, var: str) -> bool:
    line = cf.services[service].line_of("environment", var)
    text_lines = cf.text.splitlines() if hasattr(cf, "text") else []
    if not line or line > len(text_lines):
        return False
    rest = text_lines[line - 1].split(var, 1)[-1].lstrip(" :=")
    return rest[:1] in ("'", '"')


# ---------------------------------------------------------------------- containers
def container_item(ctx, finding: Finding, name: str) -> PlanItem | list:
    c = next((c for c in ctx.need_engine().containers() if str(c.get("Name", "")).lstrip("/") == name), None)
    labels = ((c or {}).get("Config") or {}).get("Labels") or {}
    files = compose_files_of(labels)
    service = labels.get(COMPOSE_SERVICE_LABEL)
    if files and service:
        for p in files:
            if not ctx.host.is_file(p):
                continue
            text = staged_text(ctx, p) or ""
            if f"{service}:" not in text:
                continue
            item = compose_item(ctx, finding, p, service)
            if isinstance(item, PlanItem):
                item.notes.insert(0, f"container {name} was made by compose from {p}: the fix is made there; "
                                     f"recreate it with docker compose up -d {service}")
            return item
        raise ManualFix(f"container {name} was made by compose from {', '.join(files)}, which is not on this host "
                        f"(or has no service {service!r}): fix the compose file where it is kept")
    variables = [v.get("name") for v in finding.data.get("variables", [])]
    raise ManualFix(
        f"container {name} was started with docker run -e {' -e '.join(variables)}: a container's environment "
        "cannot be changed in place. Put each value in a file only root can read (install -m 0600 /dev/null "
        "/etc/dockfix-secrets/NAME, then write the value), recreate the container without -e VAR and with "
        "--mount type=bind,source=/etc/dockfix-secrets/NAME,target=/run/secrets/NAME,readonly plus -e VAR_FILE="
        "/run/secrets/NAME when the image reads *_FILE variables; better, run it as a swarm service or with "
        "compose and use Docker secrets")


# ---------------------------------------------------------------------- swarm services
def _find_service(ctx, name: str) -> dict:
    for s in ctx.need_engine().services():
        if (s.get("Spec") or {}).get("Name") == name or s.get("ID") == name:
            return s
    raise ManualFix(f"swarm service {name} is gone")


def staged_spec(ctx, sid: str) -> dict:
    """The spec of swarm service ``sid`` as the fixes planned so far leave it (a copy to edit).

    Every fix of a service builds on the ones before it in the plan, so two fixes of one service
    (a password and the registry's encryption) do not undo each other."""
    specs = ctx.memo("dockfix.fixes.staged_service_specs", dict)
    if sid not in specs:
        specs[sid] = ctx.host.docker.api.inspect_service(sid)["Spec"]
    return json.loads(json.dumps(specs[sid]))


def stage_spec(ctx, sid: str, spec: dict) -> UpdateService:
    """Record ``spec`` as the planned spec of ``sid`` and return the change that makes it so."""
    specs = ctx.memo("dockfix.fixes.staged_service_specs", dict)
    before = specs.get(sid)
    specs[sid] = json.loads(json.dumps(spec))
    return UpdateService(service_id=sid, new_spec=spec, before_spec=before)


def service_item(ctx, finding: Finding, name: str) -> PlanItem:
    from dockfix.checks.notes import _engine_env

    svc = _find_service(ctx, name)
    sid = svc["ID"]
    spec = staged_spec(ctx, sid)
    cs = spec.setdefault("TaskTemplate", {}).setdefault("ContainerSpec", {})
    env: list[str] = list(cs.get("Env") or [])
    image = str(cs.get("Image") or "").split("@", 1)[0]
    flagged = [v for v, _ in secret_vars(Deployment(finding.subject, image, _engine_env(env)))]
    if not flagged:
        return item(finding)
    taken = {s.name for s in ctx.host.docker.secrets.list()}
    refs = list(cs.get("Secrets") or [])
    targets = {(r.get("File") or {}).get("Name") for r in refs}
    changes: list[Any] = []
    notes: list[str] = []
    drop: set[str] = set()
    add_env: list[str] = []
    args = list(cs.get("Args") or [])
    for v in flagged:
        value = _env_value(env, v.name)
        if value is None:
            continue
        recipe = recipe_for(image, v.name)
        base = secret_name(spec.get("Name", "svc"), v.name)[:48]
        # unique, and the same when planned again from the same service (a reviewed plan is planned
        # again at apply time and must come out equal): derived from the service id, its version and
        # the variable, never from the value
        n = 0
        while True:
            seed = f"{sid}:{(svc.get('Version') or {}).get('Index', 0)}:{v.name}:{n}".encode()
            sname = f"{base}-{_hashlib.sha256(seed).hexdigest()[:6]}"
            n += 1
            if sname not in taken:
                break
        taken.add(sname)
        target = secret_name(spec.get("Name", "svc"), v.name)
        while target in targets:
            target += "_"
        targets.add(target)
        mounted = f"/run/secrets/{target}"
        if isinstance(recipe, MyCnf):
            if any(a.startswith(recipe.flag) for a in args + list(cs.get("Command") or [])):
                raise ManualFix(f"service {name}: the exporter already names an option file ({recipe.flag}); "
                                f"add the password to that file by hand")
            try:
                data = mycnf(v.name, value, image)
            except RecipeError as e:
                raise ManualFix(f"service {name}: {e}; write the exporter's option file by hand") from None
            args.append(f"{recipe.flag}={mounted}")
            notes.append(f"{v.name} becomes the option file {mounted} ([client] section), read with {recipe.flag}")
            ref_kind = "mycnf"
        else:
            file_var = (recipe or FileEnv()).file_var(v.name)
            if _env_value(env, file_var) is not None:
                raise ManualFix(f"service {name} already sets {file_var}; move {v.name} by hand")
            data = value.encode("utf-8")
            add_env.append(f"{file_var}={mounted}")
            ref_kind = "value"
            if recipe is None:
                notes.append(f"{image or 'the image'} is not known to read {file_var}: the application must now read "
                             f"its password from {mounted} (also named by {file_var}); if it only reads {v.name} it "
                             "will start without one")
            else:
                notes.append(f"{v.name} is now read from {mounted} through {file_var} (supported by the "
                             f"{repository(image)} image)")
        drop.add(v.name)
        changes.append(CreateSecret(name=sname, labels={MADE_BY_LABEL: "dockfix", "io.dockfix.service": spec.get("Name", ""),
                                                        "io.dockfix.variable": v.name},
                                    data=data, data_ref={"kind": "service-env", "service_id": sid, "var": v.name,
                                                         "recipe": ref_kind}))
        refs.append({"SecretName": sname, "File": {"Name": target, "UID": "0", "GID": "0", "Mode": 0o444}})
    cs["Env"] = [e for e in env if e.partition("=")[0] not in drop] + add_env
    cs["Secrets"] = refs
    if args != list(cs.get("Args") or []):
        cs["Args"] = args
    changes.append(stage_spec(ctx, sid, spec))
    labels = spec.get("Labels") or {}
    if labels.get(STACK_LABEL):
        notes.append(f"this service belongs to stack {labels[STACK_LABEL]}: fix the stack's compose file too, or the "
                     "next docker stack deploy puts the variable back")
    return item(finding, changes, notes)
