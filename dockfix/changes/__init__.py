"""Change kinds, each in one place: plan (bind), diff, precondition, perform, before-image,
restore, and the validation applied when it is read from a plan file.

    base.py     the Change and Target protocols and their registries (by kind)
    staging.py  the plan-time overlay that lets several fixes of one file build on each other
    files.py    write, chown, chmod, mkdir, and the file target
    swarm.py    create a swarm secret, update a swarm service, and their targets

Importing this package registers every kind. Changes know nothing of checks, fixes or front ends.
"""

from dockfix.changes.base import (  # noqa: F401
    CHANGE_KINDS,
    TARGET_KINDS,
    Change,
    PlanError,
    PlanRefused,
    Target,
    TargetError,
    mode_text,
    owner_text,
    target_kind,
    target_label,
)
from dockfix.changes.files import Chmod, Chown, FileChange, FileTarget, MakeDir, WriteFile, parents_to_make  # noqa: F401
from dockfix.changes.staging import Staging, canonical, staged_state, staged_text, staging  # noqa: F401
from dockfix.changes.swarm import CreateSecret, UpdateService  # noqa: F401
