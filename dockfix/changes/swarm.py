"""Changes to the engine: create a swarm secret, update a swarm service; and their targets (a
secret is removed on rollback if the transaction made it; a service gets its old spec back).

Secret values never travel in a plan: a secret's bytes are read again on the host at apply time
(from a file, or from the service variable it replaces) and checked against the hash recorded when
the plan was made.
"""

from __future__ import annotations

import difflib
import json
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import ClassVar, Iterator

from dockfix.changes.base import (Change, PlanError, Target, TargetError, change_kind, is_keyed, keyed,
                                  target_kind_of)
from dockfix.changes.staging import Staging
from dockfix.fsops import FsError, read_file, sha256
from dockfix.host import Host
from dockfix.sources.image_recipes import RecipeError, mycnf
from dockfix.sources.secrets import mask_env_entry

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_MASKED = re.compile(r"^<secret, (\d+) bytes>$")
#: A swarm secret holds at least one byte and less than 500 KiB (swarmkit's MaxSecretSize).
MAX_SECRET = 500 * 1024


def _engine_name(host: Host) -> str:
    return host.docker_host or "the default engine"


def _root_reason(e: BaseException) -> str:
    """The innermost OS error behind a Docker SDK error ("No such file or directory"), else its text."""
    todo, seen = [e], set()
    while todo:
        x = todo.pop(0)
        if id(x) in seen:
            continue
        seen.add(id(x))
        if isinstance(x, OSError) and x.strerror:
            return x.strerror
        todo += [y for y in (x.__cause__, x.__context__, *x.args) if isinstance(y, BaseException)]
    return (str(e).splitlines() or [type(e).__name__])[0]


@contextmanager
def on_engine(host: Host, what: str = "") -> Iterator[None]:
    """Talk to the engine; an engine that cannot be reached, or refuses, is one TargetError line
    naming it (and ``what``). NotFound is left to the caller."""
    import docker.errors
    import requests

    where = f"{what}: " if what else ""
    try:
        yield
    except docker.errors.NotFound:
        raise
    except docker.errors.APIError as e:
        raise TargetError(f"{where}the engine {_engine_name(host)} refused: {e.explanation or e}") from None
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as e:
        raise TargetError(f"{where}the engine {_engine_name(host)} cannot be reached ({_root_reason(e)})") from None


def env_value(env: list[str], var: str) -> str | None:
    """The value of ``var`` in a ``NAME=value`` list, or None."""
    for item in env:
        k, sep, v = item.partition("=")
        if k == var and sep:
            return v
    return None


def service_env_secret(host: Host, ref: dict) -> bytes:
    """The secret of a CreateSecret planned from a service's variable, read again at apply time."""
    with on_engine(host, f"service {ref['service_id']}"):
        svc = host.docker.api.inspect_service(ref["service_id"])
    env = (((svc.get("Spec") or {}).get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Env") or []
    value = env_value(env, ref["var"])
    if value is None:
        raise PlanError(f"service {ref['service_id']}: {ref['var']} is no longer set; plan again")
    if ref.get("recipe") == "mycnf":
        try:
            return mycnf(ref["var"], value)
        except RecipeError as e:
            raise PlanError(f"service {ref['service_id']}: {e}") from None
    return value.encode("utf-8")


# ---------------------------------------------------------------------- targets
class _EngineTarget(Target):
    on_engine = True

    @classmethod
    def engine_problem(cls, host: Host) -> str | None:
        if not host.engine:
            return "this apply talks to no engine (--no-engine, or --root without --docker-host)"
        try:
            with on_engine(host):
                swarm = host.docker.info().get("Swarm") or {}
        except TargetError as e:
            return str(e)
        if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
            return (f"the engine {_engine_name(host)} is not a swarm manager (swarm "
                    f"{swarm.get('LocalNodeState') or 'inactive'}): swarm secrets and services change on a manager")
        return None


@target_kind_of
class SecretTarget(_EngineTarget):
    prefix = "secret"

    @staticmethod
    def _find(host: Host, name: str):
        with on_engine(host, f"secret {name}"):
            for s in host.docker.secrets.list(filters={"name": name}):
                if s.name == name:
                    return s
        return None

    @classmethod
    def preflight(cls, host: Host, name: str, changes: list[Change]) -> tuple[list[str], int]:
        """The value each CreateSecret will store can still be read, matches the plan and fits in
        a swarm secret (whether the name is still free is the precondition's business)."""
        out = []
        for c in changes:
            if isinstance(c, CreateSecret):
                try:
                    size = len(c.secret_bytes(host))
                except (PlanError, FsError) as e:
                    out.append(str(e))
                    continue
                if not 0 < size < MAX_SECRET:
                    out.append(f"secret {name}: its value is {size} bytes; a swarm secret holds 1 byte to "
                               f"{MAX_SECRET // 1024} KiB")
        return out, 0

    @classmethod
    def state(cls, host: Host, name: str) -> dict:
        s = cls._find(host, name)
        return {"existed": s is not None, "id": s.id if s else None}

    @classmethod
    def capture(cls, host: Host, name: str, content: bool = True) -> tuple[dict, bytes | None]:
        return cls.state(host, name), None

    @staticmethod
    def same(a: dict | None, b: dict | None) -> bool:
        if a is None or b is None:
            return False
        if a.get("existed") != b.get("existed"):
            return False
        return not a.get("id") or not b.get("id") or a["id"] == b["id"]

    @staticmethod
    def describe(state: dict) -> str:
        return "existed" if state.get("existed") else "did not exist"

    @classmethod
    def changes(cls, old: dict, now: dict) -> str:
        if now.get("existed") and not old.get("existed"):
            return "the name is taken: a secret of that name was created since the plan was made"
        return "removed since the plan was made" if old.get("existed") and not now.get("existed") else "replaced"

    @classmethod
    def restore(cls, host: Host, name: str, state: dict, blob: bytes | None) -> None:
        if state.get("existed"):
            return  # secrets are immutable: one that existed before was never changed
        s = cls._find(host, name)
        if s is not None:
            import docker.errors

            try:
                with on_engine(host, f"secret {name}"):
                    s.remove()
            except docker.errors.NotFound:
                pass  # removed meanwhile: as before

    @classmethod
    def kept_on_rollback(cls, host: Host, name: str, now: dict, made: dict | None, ours: list[str]) -> str | None:
        """Why a secret this transaction created must stay rather than be removed (None: remove it):
        the secret of that name now is another one, or a service the transaction did not touch uses
        it. ``made`` is its state right after it was created; ``ours`` the transaction's services."""
        if not now.get("existed"):
            return None
        if made and made.get("id") and now.get("id") and made["id"] != now["id"]:
            return "a secret of that name that this transaction did not create (replaced since)"
        users = []
        with on_engine(host, f"secret {name}"):
            services = host.docker.api.services()
        for svc in services:
            refs = (((svc.get("Spec") or {}).get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Secrets") or []
            if svc.get("ID") in ours or (svc.get("Spec") or {}).get("Name") in ours:
                continue
            if any(r.get("SecretID") == now.get("id") or r.get("SecretName") == name for r in refs):
                users.append((svc.get("Spec") or {}).get("Name") or svc.get("ID"))
        if users:
            return f"in use by service {', '.join(sorted(users))}, which this transaction did not change"
        return None


@target_kind_of
class ServiceTarget(_EngineTarget):
    prefix = "service"

    @classmethod
    def state(cls, host: Host, sid: str) -> dict:
        import docker.errors

        try:
            with on_engine(host, f"service {sid}"):
                svc = host.docker.api.inspect_service(sid)
        except docker.errors.NotFound:
            return {"existed": False}
        return {"existed": True, "spec_sha256": sha256(json.dumps(svc["Spec"], sort_keys=True).encode())}

    @classmethod
    def capture(cls, host: Host, sid: str, content: bool = True) -> tuple[dict, bytes | None]:
        with on_engine(host, f"service {sid}"):
            svc = host.docker.api.inspect_service(sid)
        spec = json.dumps(svc["Spec"], sort_keys=True).encode()
        return {"existed": True, "spec_sha256": sha256(spec)}, spec

    @staticmethod
    def same(a: dict | None, b: dict | None) -> bool:
        if a is None or b is None:
            return False
        return a.get("existed") == b.get("existed") and (
            a.get("spec_sha256") is None or b.get("spec_sha256") is None or a["spec_sha256"] == b["spec_sha256"])

    @staticmethod
    def describe(state: dict) -> str:
        return f"spec sha256 {str(state.get('spec_sha256'))[:12]}" if state.get("existed") else "did not exist"

    @classmethod
    def changes(cls, old: dict, now: dict) -> str:
        if not now.get("existed"):
            return "removed since the plan was made"
        return "updated since the plan was made: its spec is not the one the plan was made against"

    @classmethod
    def restore(cls, host: Host, sid: str, state: dict, blob: bytes | None) -> None:
        import docker.errors

        if not state.get("existed") or blob is None:
            return
        try:
            with on_engine(host, f"service {sid}"):
                svc = host.docker.api.inspect_service(sid)
                if sha256(json.dumps(svc["Spec"], sort_keys=True).encode()) == state.get("spec_sha256"):
                    return
                _update_service(host, sid, svc["Version"]["Index"], json.loads(blob))
        except docker.errors.NotFound:
            raise TargetError(f"service {sid}: removed since the transaction; there is no service to restore "
                              f"its spec to") from None


# ---------------------------------------------------------------------- changes
@change_kind
@dataclass
class CreateSecret(Change):
    """Create a swarm secret. ``data_ref`` says where its bytes come from at apply time (the plan
    never holds them): ``{"kind": "file", "path": host path, "sha256": ...}`` or
    ``{"kind": "inline"}`` with ``data`` set in memory only (never written to a plan file)."""

    kind: ClassVar[str] = "create-secret"
    name: str = ""
    data_ref: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)
    data: bytes | None = field(default=None, repr=False)
    #: The host's plan key when the plan came from a plan file (its hashes are keyed).
    key: bytes | None = field(default=None, repr=False)

    target_type: ClassVar[type[Target]] = SecretTarget

    @property
    def target(self) -> str:
        return f"secret:{self.name}"

    def validate(self, bad) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise bad(f"secret name {self.name!r} is not a Docker secret name")
        if not isinstance(self.labels, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                       for k, v in self.labels.items()):
            raise bad(f"secret {self.name}: labels are not text")
        ref = self.data_ref
        if not isinstance(ref, dict) or ref.get("kind") not in ("file", "service-env"):
            raise bad(f"secret {self.name}: unknown source {ref!r}")
        if ref["kind"] == "file" and not (isinstance(ref.get("path"), str) and ref["path"].startswith("/")):
            raise bad(f"secret {self.name}: source path {ref.get('path')!r} is not absolute")
        if ref["kind"] == "service-env" and not (isinstance(ref.get("service_id"), str)
                                                  and isinstance(ref.get("var"), str)):
            raise bad(f"secret {self.name}: source service or variable is not text")

    def _matches(self, data: bytes) -> bool:
        want = self.data_ref.get("sha256")
        if is_keyed(want):
            return self.key is not None and keyed(self.key, sha256(data)) == want
        return sha256(data) == want

    def bind(self, host: Host, stage: Staging) -> None:
        self.pre = {"existed": False}
        if self.data is not None and "sha256" not in self.data_ref:
            self.data_ref = {**self.data_ref, "sha256": sha256(self.data)}

    def secret_bytes(self, host: Host) -> bytes:
        if self.data is not None:
            return self.data
        if self.data_ref.get("kind") == "file":
            data = read_file(host, self.data_ref["path"])
            if data is None:
                raise PlanError(f"{self.data_ref['path']}: source of secret {self.name} is gone")
            if self.data_ref.get("sha256") and not self._matches(data):
                raise PlanError(f"{self.data_ref['path']}: changed since the plan was made (secret {self.name})")
            return data
        if self.data_ref.get("kind") == "service-env":  # a variable of a service, read again now
            data = service_env_secret(host, self.data_ref)
            if not self._matches(data):
                raise PlanError(f"secret {self.name}: its source changed since the plan was made; plan again")
            return data
        raise PlanError(f"secret {self.name}: its value is not available here (it is never stored in a plan file)")

    def expected(self, before: dict | None = None) -> dict | None:
        return {"existed": True, "id": None}  # the engine gives the id; any secret of this name made now

    def perform(self, host: Host) -> None:
        data = self.secret_bytes(host)
        with on_engine(host, f"secret {self.name}"):
            host.docker.secrets.create(name=self.name, data=data, labels=self.labels or None)

    def summary(self) -> str:
        return f"create swarm secret {self.name} (<secret, value not shown>)"

    def to_json(self) -> dict:
        return {"kind": self.kind, "name": self.name, "data_ref": self.data_ref, "labels": self.labels, "pre": self.pre}

    @classmethod
    def _load(cls, d: dict) -> "CreateSecret":
        return cls(name=d["name"], data_ref=d.get("data_ref") or {}, labels=d.get("labels") or {}, pre=d.get("pre"))


@change_kind
@dataclass
class UpdateService(Change):
    """Update a swarm service to ``new_spec`` (a full ServiceSpec, as the API takes it)."""

    kind: ClassVar[str] = "update-service"
    service_id: str = ""
    new_spec: dict = field(default_factory=dict)
    #: The spec this change starts from (the live one, or an earlier change's), for the diff only;
    #: never in a plan file.
    before_spec: dict | None = field(default=None, repr=False)

    target_type: ClassVar[type[Target]] = ServiceTarget

    @property
    def target(self) -> str:
        return f"service:{self.service_id}"

    def validate(self, bad) -> None:
        if not isinstance(self.service_id, str) or not _NAME.match(self.service_id):
            raise bad(f"service id {self.service_id!r} is not a swarm service id")
        if not isinstance(self.new_spec, dict):
            raise bad(f"service {self.service_id}: the new spec is not an object")

    def bind(self, host: Host, stage: Staging) -> None:
        svc = host.docker.api.inspect_service(self.service_id)
        self.pre = {"existed": True, "version": svc["Version"]["Index"], "spec_sha256": _spec_hash(svc["Spec"])}
        if self.before_spec is None:
            self.before_spec = svc["Spec"]

    def expected(self, before: dict | None = None) -> dict | None:
        # the spec the engine keeps is known only once it answers: an update whose answer was lost
        # (the engine stopped) may have happened, with whatever spec it stored
        return {"existed": True, "spec_sha256": None}

    def perform(self, host: Host) -> None:
        with on_engine(host, f"service {self.service_id}"):
            svc = host.docker.api.inspect_service(self.service_id)
            spec = _unmask_env(self.new_spec, svc["Spec"], self.service_id)
            _resolve_secret_ids(host, spec)
            _update_service(host, self.service_id, svc["Version"]["Index"], spec)

    def summary(self) -> str:
        return f"update swarm service {self.new_spec.get('Name', self.service_id)}"

    def diff(self, mask_secrets: bool = True) -> str:
        after = _spec_outline(self.new_spec, mask_secrets)
        if self.before_spec is None:
            return self.summary() + "\n" + "".join(f"  {line}\n" for line in after)
        before = _spec_outline(self.before_spec, mask_secrets)
        shown = [ln for ln in difflib.unified_diff(before, after, "before", "after", n=2, lineterm="")
                 if not ln.startswith(("---", "+++"))]
        return self.summary() + "\n" + "".join(f"  {line}\n" for line in shown or ["(no change)"])

    def to_json(self) -> dict:
        return {"kind": self.kind, "service_id": self.service_id, "new_spec": _masked_spec(self.new_spec), "pre": self.pre}

    @classmethod
    def _load(cls, d: dict) -> "UpdateService":
        return cls(service_id=d["service_id"], new_spec=d.get("new_spec") or {}, pre=d.get("pre"))


def _unmask_env(new_spec: dict, live: dict, sid: str) -> dict:
    """A spec read from a plan file has its secret-looking values masked: take each back from the
    live spec (same variable, same length), or refuse."""
    spec = json.loads(json.dumps(new_spec))
    env = ((spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Env") or []
    live_env = dict(e.partition("=")[::2] for e in ((live.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Env") or [])
    for i, e in enumerate(env):
        name, _, value = e.partition("=")
        m = _MASKED.match(value)
        if m:
            old = live_env.get(name)
            if old is None or len(old.encode()) != int(m.group(1)):
                raise PlanError(f"service {sid}: {name} changed since the plan was made; plan again")
            env[i] = f"{name}={old}"
    return spec


def _resolve_secret_ids(host: Host, spec: dict) -> None:
    """Secret references planned by name (the secret is created by the same plan) get their ID."""
    refs = ((spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Secrets") or []
    for ref in refs:
        if not ref.get("SecretID"):
            found = [s for s in host.docker.secrets.list(filters={"name": ref.get("SecretName")})
                     if s.name == ref.get("SecretName")]
            if not found:
                raise PlanError(f"secret {ref.get('SecretName')} does not exist")
            ref["SecretID"] = found[0].id


def _spec_hash(spec: dict) -> str:
    return sha256(json.dumps(spec, sort_keys=True).encode())


def _masked_spec(spec: dict) -> dict:
    spec = json.loads(json.dumps(spec))
    env = (((spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Env")) or []
    for i, e in enumerate(env):
        env[i] = mask_env_entry(e)
    return spec


def _spec_outline(spec: dict, mask: bool) -> list[str]:
    cs = ((spec.get("TaskTemplate") or {}).get("ContainerSpec") or {})
    out = [f"image {cs.get('Image', '?')}"]
    for e in ((_masked_spec(spec) if mask else spec).get("TaskTemplate") or {}).get("ContainerSpec", {}).get("Env") or []:
        out.append(f"env {e}")
    for s in cs.get("Secrets") or []:
        out.append(f"secret {s.get('SecretName')} -> {(s.get('File') or {}).get('Name')}")
    if cs.get("Args"):
        out.append("args " + " ".join(str(a) for a in cs["Args"]))
    return out


def _update_service(host: Host, service_id: str, version: int, spec: dict) -> None:
    api = host.docker.api
    url = api._url("/services/{0}/update", service_id)
    res = api._post_json(url, data=spec, params={"version": version})
    api._raise_for_status(res)
