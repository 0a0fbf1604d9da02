"""Fixes for the registry checks: ask S3 for encryption at rest; say exactly how to add TLS.

``registry-s3-encryption`` sets the setting where the registry's storage is configured: in its
``config.yml`` (``storage.s3.encrypt: true``) when S3 is configured there, otherwise as
``REGISTRY_STORAGE_S3_ENCRYPT=true`` in the compose service's environment or the swarm service's
spec. Objects already in the bucket stay as they are: only new uploads are encrypted.
``registry-https`` needs a certificate dockfix cannot invent: it stays manual.
"""

from __future__ import annotations

import copy

from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

from dockfix.checks.notes import registry_https, registry_s3_encryption, registry_setups
from dockfix.fixes import ManualFix, item
from dockfix.fixes.secrets import stage_spec, staged_spec
from dockfix.sources.yaml_edit import EditError, YamlText, plain, render_scalar, verify
from dockfix.model import CheckError, Finding
from dockfix.changes import UpdateService, WriteFile, staged_text
from dockfix.plan import PlanItem

ENCRYPT_VAR = "REGISTRY_STORAGE_S3_ENCRYPT"
NOT_RETROACTIVE = ("objects already stored in the bucket are NOT re-encrypted: only new uploads are. To encrypt the "
                   "old ones, turn on the bucket's default encryption and copy every object onto itself (for AWS: "
                   "aws s3 cp s3://BUCKET/ s3://BUCKET/ --recursive --sse AES256)")


def _setup(ctx, subject: str):
    setups, _ = registry_setups(ctx)
    for r in setups:
        if r.deployment.subject == subject:
            return r
    raise ManualFix(f"{subject}: the registry is no longer found")


@registry_s3_encryption.fix
def s3_encrypt(ctx, finding: Finding) -> PlanItem:
    r = _setup(ctx, finding.subject)
    kind, _, name = finding.subject.partition(":")
    storage = r.env.get("REGISTRY_STORAGE")
    in_config = r.config_path is not None and isinstance((r.config or {}).get("storage"), dict) \
        and "s3" in r.config["storage"] and storage is None
    if in_config:
        changes = [_config_change(ctx, r.config_path)]
        where = f"storage.s3.encrypt: true in {r.config_path}"
    elif kind == "compose":
        path, _, service = name.rpartition("#")
        changes = [_compose_change(ctx, path, service)]
        where = f"{ENCRYPT_VAR}=true in service {service!r} of {path}"
    elif kind == "service":
        changes = [_service_change(ctx, name)]
        where = f"{ENCRYPT_VAR}=true in the spec of swarm service {name}"
    else:
        raise ManualFix(f"{finding.subject}: a container's environment cannot be changed in place: recreate it with "
                        f"-e {ENCRYPT_VAR}=true (or set storage.s3.encrypt: true in its config.yml). {NOT_RETROACTIVE}")
    return item(finding, changes, [f"sets {where}", NOT_RETROACTIVE])


def _config_change(ctx, path: str) -> WriteFile:
    text = staged_text(ctx, path)
    if text is None:
        raise ManualFix(f"{path}: not found")
    try:
        yt = YamlText(text, path)
        expected = copy.deepcopy(plain(text, path))
        s3 = yt.node_at("storage", "s3")
        if not isinstance(s3, MappingNode):
            raise ManualFix(f"{path}: storage.s3 is not a mapping; add encrypt: true by hand")
        yt.check_editable(s3, "storage.s3")
        hit = yt.get(s3, "encrypt")
        if hit is not None:
            if not isinstance(hit[1], ScalarNode):
                raise ManualFix(f"{path}: storage.s3.encrypt is not a plain value; set it to true by hand")
            yt.replace(hit[1], "true")
        elif s3.flow_style:
            close = s3.end_mark.index - 1
            yt._add(close, close, (", " if s3.value else "") + "encrypt: true")
        else:
            yt.add_key(s3, s3.value[-1][1], ["encrypt: true"])
        expected["storage"]["s3"]["encrypt"] = True
        after = yt.result()
        verify(after, expected, path)
    except (EditError, CheckError) as e:
        raise ManualFix(str(e)) from None
    return WriteFile(path=path, after=after.encode("utf-8"))


def _compose_change(ctx, path: str, service: str) -> WriteFile:
    text = staged_text(ctx, path)
    if text is None:
        raise ManualFix(f"{path}: not found")
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    text = text[len(bom):]
    try:
        yt = YamlText(text, path)
        expected = copy.deepcopy(plain(text, path))
        svc = yt.node_at("services", service)
        if not isinstance(svc, MappingNode):
            raise ManualFix(f"{path}: no service {service!r}")
        yt.check_editable(svc, f"service {service!r}")
        exp_svc = expected["services"][service]
        env_hit = yt.get(svc, "environment")
        if env_hit is None:
            last = svc.value[-1][1]
            yt.add_key(svc, last, ["environment:", " " * yt.step() + f'{ENCRYPT_VAR}: "true"'])
            exp_svc["environment"] = {ENCRYPT_VAR: "true"}
        else:
            env = env_hit[1]
            yt.check_editable(env, f"the environment of service {service!r}")
            if isinstance(env, MappingNode):
                hit = yt.get(env, ENCRYPT_VAR)
                if hit is not None:
                    yt.set_scalar(hit[1], "true")
                elif env.flow_style:
                    close = env.end_mark.index - 1
                    yt._add(close, close, (", " if env.value else "") + f'{ENCRYPT_VAR}: "true"')
                else:
                    yt.add_key(env, env.value[-1][1], [f'{ENCRYPT_VAR}: "true"'])
                exp_svc["environment"] = {**exp_svc["environment"], ENCRYPT_VAR: "true"}
            elif isinstance(env, SequenceNode):
                idx = next((i for i, n in enumerate(env.value)
                            if isinstance(n, ScalarNode) and str(n.value).split("=", 1)[0].strip() == ENCRYPT_VAR), None)
                item = f"{ENCRYPT_VAR}=true"
                if idx is not None:
                    yt.set_scalar(env.value[idx], item)
                    exp_svc["environment"][idx] = item
                else:
                    yt.append_to_seq(env, [render_scalar(item)])
                    exp_svc["environment"].append(item)
            else:
                raise ManualFix(f"{path}: unusual environment of service {service!r}; add {ENCRYPT_VAR}=true by hand")
        after = yt.result()
        verify(after, expected, path)
    except (EditError, CheckError) as e:
        raise ManualFix(str(e)) from None
    return WriteFile(path=path, after=(bom + after).encode("utf-8"))


def _service_change(ctx, name: str) -> UpdateService:
    svc = next((s for s in ctx.need_engine().services() if (s.get("Spec") or {}).get("Name") == name), None)
    if svc is None:
        raise ManualFix(f"swarm service {name} is gone")
    spec = staged_spec(ctx, svc["ID"])
    cs = spec.setdefault("TaskTemplate", {}).setdefault("ContainerSpec", {})
    env = [e for e in cs.get("Env") or [] if e.partition("=")[0] != ENCRYPT_VAR]
    cs["Env"] = env + [f"{ENCRYPT_VAR}=true"]
    return stage_spec(ctx, svc["ID"], spec)


@registry_https.fix
def https_steps(ctx, finding: Finding) -> PlanItem:
    raise ManualFix(
        "TLS needs a certificate dockfix cannot make for you. Put the certificate (with its chain) and key on the "
        "host, e.g. /etc/docker/registry/certs/domain.crt and domain.key (key mode 0600), mount that folder into the "
        "registry at /certs, and set REGISTRY_HTTP_TLS_CERTIFICATE=/certs/domain.crt and "
        "REGISTRY_HTTP_TLS_KEY=/certs/domain.key in its environment — or in config.yml: "
        "http: {tls: {certificate: /certs/domain.crt, key: /certs/domain.key}}. Redeploy the registry, check with "
        "curl -sI https://REGISTRY:5000/v2/, then remove it from insecure-registries in every client's daemon.json. "
        "Alternatively publish the registry only on 127.0.0.1 behind a proxy that terminates TLS.")
