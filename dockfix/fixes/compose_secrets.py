"""Move passwords out of a compose file's ``environment`` into compose secrets.

:func:`convert` is pure: given the compose text (and the ``.env`` beside it) and which variables
of which services to move, it returns the new compose text, the content of each secret file and
the ``.env`` names that are no longer used, or raises :class:`~dockfix.fixes.ManualFix` saying why
this one must be done by hand. The compose text is edited in place (see
:mod:`dockfix.sources.yaml_edit`): every line the conversion does not need to change stays as it
was, comments included.

For each variable:

* the value goes to ``secrets/<service>_<VAR>`` beside the compose file, declared in the
  top-level ``secrets:`` (``file: ./secrets/<name>``) and listed in the service's ``secrets:``,
  so the engine mounts it at ``/run/secrets/<name>``;
* the variable is replaced the way the image reads it (see :mod:`dockfix.sources.image_recipes`):
  ``<VAR>_FILE: /run/secrets/<name>``; for the MySQL exporter the secret is a ``[client]`` option
  file and the command gets ``--config.my-cnf=/run/secrets/<name>``; for an unknown image the
  same ``_FILE`` pointer is set and the application must be taught to read the file.

The masking of such files for diffs lives with the one secret detector (dockfix.sources.secrets).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from dockfix.fixes import ManualFix
from dockfix.sources.image_recipes import (
    FileEnv,
    MyCnf,
    RecipeError,
    mycnf,
    recipe_for,
    repository,
)
from dockfix.sources.yaml_edit import EditError, YamlText, plain, render_scalar, verify
from dockfix.model import CheckError

SECRETS_DIR = "secrets"
RUN_SECRETS = "/run/secrets"


@dataclass(frozen=True)
class Conversion:
    service: str
    var: str
    secret: str  # secret name; also the file name under secrets/

    def to_json(self) -> dict:
        return {"service": self.service, "var": self.var, "secret": self.secret}

    @classmethod
    def from_json(cls, d: dict) -> "Conversion":
        return cls(str(d["service"]), str(d["var"]), str(d["secret"]))


@dataclass
class Outcome:
    compose_after: str
    secret_files: dict[str, bytes] = field(default_factory=dict, repr=False)  # secret name -> content
    dotenv_remove: list[str] = field(default_factory=list)  # .env names nothing uses any more
    dotenv_kept: list[str] = field(default_factory=list)  # .env names the moved values came from, still used
    notes: list[str] = field(default_factory=list)
    unknown_image: bool = False
    values: list[str] = field(default_factory=list, repr=False)  # the values moved (never shown)


def secret_name(service: str, var: str) -> str:
    """``<service>_<VAR>``, limited to the characters swarm accepts in a secret name, and short
    enough (40) that ``docker stack deploy`` can prefix the stack's name (swarm allows 64)."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{service}_{var}").strip("._-") or "secret"
    return name[:40].rstrip("._-")


def _env_index(env: Node, var: str) -> int | None:
    found = None
    for i, item in enumerate(env.value):
        if isinstance(env, MappingNode):
            k = item[0]
            if isinstance(k, ScalarNode) and str(k.value) == var:
                found = i
        elif isinstance(item, ScalarNode) and str(item.value).split("=", 1)[0].strip() == var:
            found = i
    return found


def _uses_var(text: str, name: str) -> bool:
    """True when ``text`` interpolates ``$name`` / ``${name...}`` (``$$`` is a literal dollar)."""
    pattern = re.compile(r"(?<!\$)(?:\$\$)*\$(?:\{" + re.escape(name) + r"(?=[}:?+-])|" + re.escape(name) + r"(?![A-Za-z0-9_]))")
    return bool(pattern.search(text))


def convert(text: str, path: str, env: dict[str, str], convs: list[Conversion], other_texts: list[str] = ()) -> Outcome:
    """Move each conversion's variable into a secret. ``env`` is the ``.env`` beside the file;
    ``other_texts`` are other files that may interpolate its names (other compose files, .env).

    Raises ManualFix (one line, never the value) when the file cannot be changed safely."""
    from dockfix.sources.compose import parse_compose

    bom = "\ufeff" if text.startswith("\ufeff") else ""
    text = text[len(bom):]
    try:
        cf = parse_compose(text, path, env)
        yt = YamlText(text, path)
        expected = copy.deepcopy(plain(text, path))
    except CheckError as e:
        raise ManualFix(str(e)) from None
    if yt.node_at("services") is None or not isinstance(expected, dict) or not isinstance(expected.get("services"), dict):
        raise ManualFix(f"{path}: has no top-level services: mapping (compose file format 1 has no secrets); "
                        "move the password into a secret by hand")
    out = Outcome(compose_after=text)
    new_keys: dict[str, list[str]] = {}  # service -> lines of new keys
    added: dict[str, list[str]] = {}  # service -> secret names to list
    mycnf_done: set[str] = set()
    step = yt.step()
    try:
        for conv in convs:
            _convert_one(conv, cf, yt, expected, out, new_keys, added, mycnf_done,
                         yt.seq_offset(yt.node_at("services", conv.service)))
        for service, names in added.items():
            svc = yt.node_at("services", service)
            exp_svc = expected["services"][service]
            hit = yt.get(svc, "secrets")
            if hit is not None:
                seq = hit[1]
                if not isinstance(seq, SequenceNode):
                    raise ManualFix(f"{path}: line {seq.start_mark.line + 1}: secrets of service {service!r} is not a list; "
                                    "add the secret by hand")
                yt.check_editable(seq, f"secrets of service {service!r}")
                yt.append_to_seq(seq, [render_scalar(n) for n in names])
                exp_svc["secrets"] = list(exp_svc.get("secrets") or []) + names
            else:
                seq_off = yt.seq_offset(svc)
                lines = ["secrets:"] + [" " * seq_off + "- " + render_scalar(n) for n in names]
                new_keys.setdefault(service, [])[:0] = lines
                exp_svc["secrets"] = names
        for service, lines in new_keys.items():
            svc = yt.node_at("services", service)
            env_hit = yt.get(svc, "environment")
            yt.add_key(svc, env_hit[1] if env_hit else svc.value[-1][1], lines)
        _declare_top(yt, expected, [c.secret for c in convs], step, path)
        _version(yt, expected)
        after = yt.result()
        verify(after, expected, path)
    except EditError as e:
        raise ManualFix(str(e)) from None
    out.compose_after = bom + after
    # .env names that only these variables used
    for conv in convs:
        var = next((v for v in cf.services[conv.service].environment if v.name == conv.var), None)
        if var is None or var.source != ".env" or not var.raw:
            continue
        m = re.fullmatch(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", var.raw.strip())
        if not m or m.group(1) not in env:
            continue
        name = m.group(1)
        if name in out.dotenv_remove or name in out.dotenv_kept:
            continue
        if _uses_var(after, name) or any(_uses_var(t, name) for t in other_texts):
            out.dotenv_kept.append(name)
            continue
        out.dotenv_remove.append(name)
    return out


def _convert_one(conv: Conversion, cf, yt: YamlText, expected: dict, out: Outcome, new_keys: dict, added: dict,
                 mycnf_done: set, seq_off: int) -> None:
    path = yt.path
    svc_spec = cf.services.get(conv.service)
    svc = yt.node_at("services", conv.service)
    if svc_spec is None or not isinstance(svc, MappingNode):
        raise ManualFix(f"{path}: no service {conv.service!r}")
    yt.check_editable(svc, f"service {conv.service!r}")
    env_hit = yt.get(svc, "environment")
    if env_hit is None:
        raise ManualFix(f"{path}: service {conv.service!r} sets {conv.var} outside its environment: (an env_file, "
                        "an anchor or a merge key); move it by hand")
    env = env_hit[1]
    yt.check_editable(env, f"the environment of service {conv.service!r}")
    idx = _env_index(env, conv.var)
    var = next((v for v in reversed(svc_spec.environment) if v.name == conv.var), None)
    if idx is None or var is None:
        raise ManualFix(f"{path}: {conv.var} of service {conv.service!r} is not written in its environment:; move it by hand")
    where = f"{path}: line {var.line}"
    if var.value is None:
        raise ManualFix(f"{where}: {conv.var} takes its value from the shell that runs compose, not from this "
                        "folder; create the secret file by hand")
    if var.value == "":
        raise ManualFix(f"{where}: {conv.var} is empty; nothing to move")
    image = svc_spec.image
    recipe = recipe_for(image, conv.var)
    secret_path = f"{RUN_SECRETS}/{conv.secret}"
    exp_svc = expected["services"][conv.service]
    exp_env = exp_svc["environment"]
    if isinstance(recipe, MyCnf):
        if conv.service in mycnf_done:
            raise ManualFix(f"{where}: the exporter already gets an option file from another variable; merge "
                            f"{conv.var} into it by hand")
        try:
            content = mycnf(conv.var, var.value, image)
        except RecipeError as e:
            raise ManualFix(f"{where}: {e}; write the exporter's option file by hand") from None
        mycnf_done.add(conv.service)
        flag = f"{recipe.flag}={secret_path}"
        if len(env.value) == 1:  # the only variable: drop the whole environment: key
            yt.remove_item(svc, next(i for i, (k, _) in enumerate(svc.value) if k is env_hit[0]))
            del exp_svc["environment"]
        else:
            yt.remove_item(env, idx)
            if isinstance(exp_env, dict):
                del exp_env[conv.var]
            else:
                exp_env[:] = [e for e in exp_env if str(e).split("=", 1)[0].strip() != conv.var]
        cmd_hit = yt.get(svc, "command")
        if cmd_hit is None:
            new_keys.setdefault(conv.service, []).extend(["command:", " " * seq_off + "- " + render_scalar(flag)])
            exp_svc["command"] = [flag]
        else:
            cmd = cmd_hit[1]
            current = exp_svc["command"]
            words = current if isinstance(current, list) else str(current or "").split()
            if any(str(w).startswith(recipe.flag) for w in words):
                raise ManualFix(f"{where}: the exporter's command already names an option file ({recipe.flag}); "
                                "add the password to that file by hand")
            if isinstance(cmd, SequenceNode):
                yt.check_editable(cmd, f"the command of service {conv.service!r}")
                yt.append_to_seq(cmd, [render_scalar(flag)])
                exp_svc["command"] = list(current) + [flag]
            elif isinstance(cmd, ScalarNode) and isinstance(current, str):
                yt.set_scalar(cmd, f"{current} {flag}")
                exp_svc["command"] = f"{current} {flag}"
            else:
                raise ManualFix(f"{where}: unusual command of service {conv.service!r}; add {flag} by hand")
        out.notes.append(f"service {conv.service!r}: {conv.var} becomes the option file /run/secrets/{conv.secret} "
                         f"([client] section), read with {flag}")
    else:
        file_var = (recipe or FileEnv()).file_var(conv.var)
        if any(v.name == file_var for v in svc_spec.environment):
            raise ManualFix(f"{where}: service {conv.service!r} already sets {file_var}; move {conv.var} by hand")
        content = var.value.encode("utf-8")
        item = env.value[idx]
        if isinstance(env, MappingNode):
            key, value = item
            if not isinstance(value, ScalarNode) or value.tag.endswith(":null"):
                raise ManualFix(f"{where}: unusual value of {conv.var}; move it by hand")
            yt.replace(key, render_scalar(file_var, key.style))
            yt.set_scalar(value, secret_path)
            exp_svc["environment"] = {(file_var if k == conv.var else k): (secret_path if k == conv.var else v)
                                      for k, v in exp_env.items()}
        else:
            yt.set_scalar(item, f"{file_var}={secret_path}")
            exp_env[:] = [f"{file_var}={secret_path}" if str(e).split("=", 1)[0].strip() == conv.var else e
                          for e in exp_env]
        if recipe is None:
            out.unknown_image = True
            out.notes.append(
                f"service {conv.service!r} runs {image or 'an image'} ({repository(image) or 'unknown'}), which dockfix "
                f"does not know to read {file_var}: the application must now read its password from the file "
                f"{secret_path} (the path is also in {file_var}); if it only reads {conv.var}, it will start "
                "without a password — change the application or its entrypoint first")
        else:
            out.notes.append(f"service {conv.service!r}: {conv.var} is now read from {secret_path} through {file_var} "
                             f"(supported by the {repository(image)} image)")
    out.secret_files[conv.secret] = content
    out.values.append(var.value)
    added.setdefault(conv.service, []).append(conv.secret)


def _declare_top(yt: YamlText, expected: dict, names: list[str], step: int, path: str) -> None:
    ind = " " * step
    top = yt.get(yt.root, "secrets")
    entries = {n: {"file": f"./{SECRETS_DIR}/{n}"} for n in names}
    if top is None:
        yt.append_document(["secrets:"] + [ln for n in names for ln in (f"{ind}{render_scalar(n)}:",
                                                                         f"{ind}{ind}file: ./{SECRETS_DIR}/{n}")])
        expected["secrets"] = entries
        return
    node = top[1]
    if not isinstance(node, MappingNode) or node.flow_style or not node.value:
        raise ManualFix(f"{path}: line {node.start_mark.line + 1}: the top-level secrets: is not a block mapping; "
                        "declare the secret by hand")
    yt.check_editable(node, "the top-level secrets:")
    sub = " " * (step if not node.value else max(step, 1))
    for n in names:
        if n in (expected.get("secrets") or {}):
            raise ManualFix(f"{path}: a secret named {n} is already declared")
    yt.add_key(node, node.value[-1][1], [ln for n in names for ln in (f"{render_scalar(n)}:", f"{sub}file: ./{SECRETS_DIR}/{n}")])
    expected["secrets"] = {**expected["secrets"], **entries}


def _version(yt: YamlText, expected: dict) -> None:
    """Compose format 3.0 has no secrets: stack deploy needs at least 3.1."""
    hit = yt.get(yt.root, "version")
    if hit is None or str(expected.get("version")) not in ("3", "3.0"):
        return
    yt.set_scalar(hit[1], "3.1")
    expected["version"] = "3.1"


# ---------------------------------------------------------------------- .env
def dotenv_without(text: str, names: list[str]) -> str:
    """``.env`` text without the lines that set ``names`` (every other byte kept)."""
    out = []
    for line in text.splitlines(keepends=True):
        s = line.strip().lstrip("\ufeff").strip()
        if s.startswith("export "):
            s = s[len("export "):].lstrip()
        name = s.split("=", 1)[0].strip() if "=" in s and not s.startswith("#") else None
        if name in names:
            if line.startswith("\ufeff"):
                out.append("\ufeff")  # the BOM belongs to the file, not to the line
            continue
        out.append(line)
    return "".join(out)
