"""CIS 4.5: DOCKER_CONTENT_TRUST for the host's users — with the truth about it in 2026.

The benchmark asks for ``DOCKER_CONTENT_TRUST=1`` in /etc/environment so the docker CLI pulls
only images signed with Docker Content Trust (Notary v1). That mechanism is being retired, and the
fix says so in its impact and in the preview. It is ``disruptive``: planned only with
``--include-disruptive`` and confirmed on its own.

The check fails while the variable is unset (or not true) and the CLI still enforces it (before
29.0). The fix adds ``DOCKER_CONTENT_TRUST=1`` to /etc/environment, or turns an existing line into
``=1``, with the warning — but only when ``DOCKER_CONTENT_TRUST_SERVER`` names a notary the admin
runs. Pointed at Docker Hub's notary (the default) it would break every pull once that notary shuts
down on 2026-12-08, so the fix is refused (manual) and says what to do instead.
"""

from __future__ import annotations

import re

from dockfix.changes import WriteFile, staged_state, staged_text
from dockfix.checks.notes import IMAGE_TRUST_CHECKS, _major, content_trust, docker_cli_versions, own_notary
from dockfix.fixes import ManualFix, item
from dockfix.plan import PlanItem

ENVIRONMENT = "/etc/environment"
VAR = "DOCKER_CONTENT_TRUST"
TRUE_WORDS = {"1", "t", "T", "true", "TRUE", "True"}

WARNING = [
    "Content trust is retired: Docker no longer signs Docker Official Images with it, and their signing "
    "certificates have been expiring since August 2025, so official-image pulls fail while DOCKER_CONTENT_TRUST=1.",
    "The Docker CLI stopped enforcing DOCKER_CONTENT_TRUST in 29.0; on such a CLI the variable does nothing.",
    "notary.docker.io shuts down on 2026-12-08; after that no content-trust pull can succeed.",
    "To verify images today, check their signatures with Sigstore cosign (cosign verify) or Notation "
    "(notation verify) in CI, at deploy time or with an admission policy.",
    "/etc/environment and /etc/profile.d are read at login: running shells and services keep their old "
    "environment until they start again.",
]

_LINE = re.compile(r"^\s*(?:export\s+)?" + VAR + r"\s*=\s*(['\"]?)([^'\"\s;#]*)\1")


def _write(ctx, path: str, text: str | None, new: str) -> WriteFile:
    if text is None:
        return WriteFile(path=path, after=new.encode(), mode=0o644, uid=0, gid=0)
    st = staged_state(ctx, path)
    return WriteFile(path=path, after=new.encode(), mode=st.mode, uid=st.uid, gid=st.gid)


@content_trust.fix
def build(ctx, finding) -> PlanItem | list:
    major = _major(next((v for _, v in docker_cli_versions(ctx)), None))
    if major is not None and major >= 29:
        raise ManualFix(f"This host's docker CLI ({major}.x) ignores DOCKER_CONTENT_TRUST: setting it changes "
                        f"nothing. Verify images with {IMAGE_TRUST_CHECKS}, and close 4.5 with a waiver that "
                        "names them as the compensating control.")
    server, seen = own_notary(ctx)
    if server is None:
        raise ManualFix(
            f"{seen}. Docker's notary (notary.docker.io) shuts down on 2026-12-08, and Docker Official Images' "
            "content-trust certificates have been expiring since August 2025: with DOCKER_CONTENT_TRUST=1 pulls from "
            "Docker Hub fail now and every content-trust pull fails after that date, so dockfix does not set it. "
            "If you sign your own images with a notary you run, set DOCKER_CONTENT_TRUST_SERVER=https://YOUR-NOTARY "
            "in /etc/environment and plan this fix again. Otherwise pin images by digest and verify their "
            f"signatures with cosign or Notation ({IMAGE_TRUST_CHECKS}), then waive 4.5 with that compensating "
            "control.")
    # the check fails because the variable is not set, or is set to something false where it is read last:
    # turn every such line into =1 (a later /etc/profile.d line would override /etc/environment), or add
    # the line to /etc/environment
    changes = []
    for path in [ENVIRONMENT] + sorted(ctx.host.glob("/etc/profile.d", "*.sh")):
        text = staged_text(ctx, path)
        if text is None:
            continue
        lines = text.splitlines(keepends=True)
        for i, ln in enumerate(lines):
            m = _LINE.match(ln)
            if m and m.group(2) not in TRUE_WORDS:
                lines[i] = ("export " if ln.lstrip().startswith("export") else "") + f"{VAR}=1\n"
        if lines != text.splitlines(keepends=True):
            changes.append(_write(ctx, path, text, "".join(lines)))
    if not changes:
        text = staged_text(ctx, ENVIRONMENT)
        if text is not None and any((m := _LINE.match(ln)) and m.group(2) in TRUE_WORDS for ln in text.splitlines()):
            return []  # already set
        new = (text or "") + ("" if not text or text.endswith("\n") else "\n") + f"{VAR}=1\n"
        changes.append(_write(ctx, ENVIRONMENT, text, new))
    return item(finding, changes, WARNING + [f"Signatures are looked up at {server} "
                                              "(DOCKER_CONTENT_TRUST_SERVER); images it has no signature for "
                                              "cannot be pulled."])
