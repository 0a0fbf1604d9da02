"""CIS 4.5: DOCKER_CONTENT_TRUST=1 in /etc/environment — offered, with the truth about it in 2026.

The benchmark asks for the variable so the docker CLI pulls only images signed with Docker Content
Trust (Notary v1). That mechanism is being retired, and the fix says so in its impact and in the
preview: it is ``disruptive`` and only planned with ``--include-disruptive``.
"""

from __future__ import annotations

import re

from dockfix.fixes import DISRUPTIVE
from dockfix.model import REGISTRY
from dockfix.plan import PlanItem, WriteFile, staged_state, staged_text

ENVIRONMENT = "/etc/environment"
VAR = "DOCKER_CONTENT_TRUST"

IMPACT = ("With a docker CLI older than 29.0, pulls of Docker Official Images fail (their content-trust signing "
          "certificates have been expiring since August 2025) and every content-trust pull fails once "
          "notary.docker.io shuts down on 2026-12-08; a 29.0 or later CLI ignores the variable entirely.")

WARNING = [
    "Content trust is retired: Docker no longer signs Docker Official Images with it, and their signing "
    "certificates have been expiring since August 2025, so official-image pulls fail while this is set.",
    "The Docker CLI stopped enforcing DOCKER_CONTENT_TRUST in 29.0; on such a CLI this setting does nothing.",
    "notary.docker.io shuts down on 2026-12-08; after that no content-trust pull can succeed.",
    "To verify images today, check their signatures with Sigstore cosign (cosign verify) or Notation "
    "(notation verify) in CI, at deploy time or with an admission policy.",
    "/etc/environment is read at login: running shells and services keep their old environment until they restart.",
]

_LINE = re.compile(r"^\s*(?:export\s+)?" + VAR + r"\s*=\s*(.*)$")


def build(ctx, finding) -> PlanItem | list:
    text = staged_text(ctx, ENVIRONMENT)
    lines = (text or "").splitlines(keepends=True)
    found = [i for i, ln in enumerate(lines) if _LINE.match(ln.rstrip("\n"))]
    if found and all(_LINE.match(lines[i].rstrip("\n")).group(1).strip().strip("\"'") == "1" for i in found):
        return []  # already set
    if found:
        for i in found:
            lines[i] = f"{VAR}=1\n"
        new = "".join(lines)
    else:
        new = (text or "") + ("" if not text or text.endswith("\n") else "\n") + f"{VAR}=1\n"
    if text is None:
        change = WriteFile(path=ENVIRONMENT, after=new.encode(), mode=0o644, uid=0, gid=0)
    else:
        st = staged_state(ctx, ENVIRONMENT)
        change = WriteFile(path=ENVIRONMENT, after=new.encode(), mode=st.mode, uid=st.uid, gid=st.gid)
    return PlanItem(finding.id, finding.subject, finding.title, DISRUPTIVE, IMPACT, [change], list(WARNING))


if "content-trust" in REGISTRY:
    REGISTRY["content-trust"].fix(safety=DISRUPTIVE, impact=IMPACT)(build)
