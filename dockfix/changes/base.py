"""What every change kind is made of, and the two registries: change kinds and target kinds.

A *change* is one step of a plan: what it does (``perform``), what it was planned against
(``pre``, set by ``bind``), how it shows (``summary``, ``diff``), its JSON form, and the checks a
change read back from a plan file must pass (``validate``). Its *target* (``file:/etc/docker``,
``secret:db_pw``, ``service:<id>``) is what the journal captures before the change and restores on
rollback; each target kind knows how to read, compare, describe and restore its state.

Both registries refuse an incomplete kind at import time: a change kind without its own
``validate`` or without a target kind cannot be registered, so a plan file can never carry a kind
whose fields nobody checks.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar


class PlanError(Exception):
    """A plan cannot be built, loaded or applied. The message names the file or item."""


class PlanRefused(Exception):
    """Raised while binding a change that dockfix will not make; the item becomes `manual`."""


class TargetError(Exception):
    """A target cannot be read or restored (unknown kind, damaged before-image). Names the target."""


def owner_text(uid: int | None, gid: int | None) -> str:
    def name(n: int | None) -> str:
        return "?" if n is None else ("root" if n == 0 else str(n))

    return f"{name(uid)}:{name(gid)}"


def mode_text(mode: int | None) -> str:
    return "?" if mode is None else f"{mode:04o}"


# ---------------------------------------------------------------------- keyed hashes
# A plain sha256 of a file whose other lines are known (a compose file with one password in it)
# lets anyone holding a plan file test guesses of the secret offline. Plan files therefore carry
# only HMACs of the hashes, keyed with a random key kept on the host (see dockfix.plan.host_key).
def is_keyed(v: Any) -> bool:
    return isinstance(v, str) and v.startswith("hmac:")


def keyed(key: bytes, digest: str | None) -> str | None:
    if digest is None or is_keyed(digest):
        return digest
    return "hmac:" + hmac.new(key, digest.encode(), "sha256").hexdigest()


# ---------------------------------------------------------------------- target kinds
class Target:
    """How the journal reads, compares, describes and restores one kind of target."""

    prefix: ClassVar[str] = ""
    #: The target lives on the engine (a swarm secret or service), not in the host's files.
    on_engine: ClassVar[bool] = False

    @classmethod
    def engine_problem(cls, host) -> str | None:
        """Targets on the engine: why the host's engine cannot take these changes now (it cannot be
        reached, it is not a swarm manager), in one line; None when it can."""
        return None

    @classmethod
    def state(cls, host, name: str) -> dict:
        raise NotImplementedError

    @classmethod
    def capture(cls, host, name: str, content: bool = True) -> tuple[dict, bytes | None]:
        """The state and the before-image (bytes to keep in the journal, or None). ``content``
        False: the transaction changes only metadata of this target; keep no copy of its content."""
        return cls.state(host, name), None

    @classmethod
    def preflight(cls, host, name: str, changes: list["Change"]) -> tuple[list[str], int]:
        """Before the first change of a transaction: what would make these changes of the target
        fail half-way (one line each), and the bytes its before-image will take in the journal."""
        return [], 0

    @staticmethod
    def same(a: dict | None, b: dict | None) -> bool:
        raise NotImplementedError

    @staticmethod
    def describe(state: dict) -> str:
        raise NotImplementedError

    @classmethod
    def changes(cls, old: dict, now: dict) -> str:
        """What differs between two states, in words (for refusals)."""
        return f"now {cls.describe(now)}"

    @classmethod
    def restore(cls, host, name: str, state: dict, blob: bytes | None) -> None:
        raise NotImplementedError

    @classmethod
    def kept_on_rollback(cls, host, name: str, now: dict, made: dict | None, ours: list[str]) -> str | None:
        """Targets the transaction created: why rolling back must keep this one as it is now rather
        than remove it (refused without --force; kept with it), or None. ``made`` is its state right
        after the transaction made it, ``ours`` the names of the transaction's other targets."""
        return None


TARGET_KINDS: dict[str, type[Target]] = {}


def target_kind_of(cls: type[Target]) -> type[Target]:
    """Class decorator: register a target kind under its prefix."""
    if not cls.prefix or cls.prefix in TARGET_KINDS:
        raise TypeError(f"target kind {cls.__name__}: missing or duplicate prefix {cls.prefix!r}")
    TARGET_KINDS[cls.prefix] = cls
    return cls


def target_kind(target: str) -> tuple[type[Target], str]:
    kind, _, name = target.partition(":")
    if kind not in TARGET_KINDS:
        raise TargetError(f"unknown target kind {kind!r} in {target!r}")
    return TARGET_KINDS[kind], name


def target_label(target: str) -> str:
    kind, _, name = target.partition(":")
    return name if kind == "file" else f"{kind} {name}"


# ---------------------------------------------------------------------- change kinds
CHANGE_KINDS: dict[str, type["Change"]] = {}


def change_kind(cls):
    """Class decorator: register a change kind. It must name its target kind and define its own
    ``validate`` (or inherit one from a kind-family base other than :class:`Change`)."""
    if not cls.kind or cls.kind in CHANGE_KINDS:
        raise TypeError(f"change kind {cls.__name__}: missing or duplicate kind {cls.kind!r}")
    if cls.validate is Change.validate:
        raise TypeError(f"change kind {cls.kind!r} has no validate(): a plan file could carry it unchecked")
    if cls.target_type is None:
        raise TypeError(f"change kind {cls.kind!r} names no target kind")
    CHANGE_KINDS[cls.kind] = cls
    return cls


@dataclass
class Change:
    """One change to one target. Subclasses define what it does and how it shows."""

    kind: ClassVar[str] = ""
    target_type: ClassVar[type[Target] | None] = None
    #: False for changes of metadata only (owner, mode, a new directory): the journal then keeps
    #: the target's state, never a copy of its content.
    touches_content: ClassVar[bool] = True
    #: Target state this change was planned against (set by bind()).
    pre: dict | None = field(default=None, kw_only=True)

    # -- identity
    @property
    def target(self) -> str:
        raise NotImplementedError

    # -- plan time
    def bind(self, host, stage) -> None:
        """Record the precondition (and update the staging overlay). May raise PlanRefused."""

    # -- apply time (see journal.py)
    def expected(self, before: dict | None = None) -> dict | None:
        """The target's state once this change is made on a target now in state ``before`` (for a
        crash between the change and its record)."""
        return None

    def perform(self, host) -> None:
        raise NotImplementedError

    # -- showing
    def summary(self) -> str:
        raise NotImplementedError

    def diff(self, mask_secrets: bool = True) -> str:
        return self.summary() + "\n"

    # -- plan files
    def validate(self, bad: Callable[[str], Exception]) -> None:
        """Check the fields of a change read from a plan file; ``raise bad("what is wrong")``."""
        raise NotImplementedError

    def to_json(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_json(cls, d: dict) -> "Change":
        kind = d.get("kind")
        if kind not in CHANGE_KINDS:
            raise PlanError(f"unknown change kind {kind!r}")
        return CHANGE_KINDS[kind]._load(d)

    @classmethod
    def _load(cls, d: dict) -> "Change":
        raise NotImplementedError
