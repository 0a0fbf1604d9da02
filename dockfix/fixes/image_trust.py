"""Pin images by digest: compose ``image:`` and Dockerfile ``FROM`` become ``name:tag@sha256:…``.

The digest is the one the engine pulled the image by (``RepoDigests``, read at scan time). The
edit changes the one scalar or the one word and nothing else; the compose file must read back as
the same document with only that value changed. Running containers and services are recreated by
the admin from the pinned files (manual); an image without a repository digest is pinned by hand.
"""

from __future__ import annotations

import copy
import re

from dockfix.changes import WriteFile, staged_state, staged_text
from dockfix.checks.image_trust import image_digest, parse_ref
from dockfix.fixes import ManualFix, item
from dockfix.model import CheckError
from dockfix.plan import PlanItem
from dockfix.sources.yaml_edit import EditError, YamlText, plain, verify

RECREATE = ("Containers already running keep the image they started with; recreate them from the pinned file "
            "(docker compose up -d, docker build) to run by digest.")


def _write(ctx, path: str, after: str) -> WriteFile:
    st = staged_state(ctx, path)
    return WriteFile(path=path, after=after.encode(), mode=st.mode, uid=st.uid, gid=st.gid)


def pin_compose(text: str, path: str, service: str, ref: str, pinned: str) -> str:
    """``text`` with service ``service``'s ``image: ref`` replaced by ``pinned``; ManualFix otherwise."""
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    body = text[len(bom):]
    try:
        yt = YamlText(body, path)
        expected = copy.deepcopy(plain(body, path))
        node = yt.node_at("services", service, "image")
        if node is None or getattr(node, "value", None) != ref:
            raise ManualFix(f"{path}: service {service!r} no longer has image {ref}; scan again")
        yt.set_scalar(node, pinned)
        expected["services"][service]["image"] = pinned
        after = yt.result()
        verify(after, expected, path)
    except (EditError, CheckError) as e:
        raise ManualFix(str(e)) from None
    return bom + after


def pin_dockerfile(text: str, path: str, froms: list[dict]) -> tuple[str, list[str]]:
    """(``text`` with each FROM that has a digest pinned, notes on the ones left)."""
    lines = text.splitlines(keepends=True)
    notes = []
    for f in froms:
        if not f.get("pinned"):
            notes.append(f"line {f['line']}: {f['ref']} has no repository digest on this engine: pin it by hand")
            continue
        i = f["line"] - 1
        pat = re.compile(r"^(\s*FROM\s+(?:--\S+\s+)*)" + re.escape(f["ref"]) + r"(?=\s|$)", re.IGNORECASE)
        if i >= len(lines) or not pat.match(lines[i]):
            raise ManualFix(f"{path}: line {f['line']} is no longer FROM {f['ref']}; scan again")
        lines[i] = pat.sub(lambda m: m.group(1) + f["pinned"], lines[i], count=1)
    return "".join(lines), notes


@image_digest.fix
def build(ctx, finding) -> PlanItem:
    d = finding.data
    kind = d.get("kind")
    if kind in ("container", "service"):
        raise ManualFix(f"{finding.subject} runs {d.get('ref')} by tag: recreate it from a pinned reference "
                        f"({parse_ref(d.get('ref') or '').name}:TAG@sha256:…); when compose started it, the "
                        "compose file's finding pins it there.")
    if kind == "compose":
        if not d.get("pinned"):
            raise ManualFix(f"{finding.evidence}. Pin it by hand as name:tag@sha256:<digest> once it has one.")
        text = staged_text(ctx, d["path"])
        if text is None:
            raise ManualFix(f"{d['path']}: not found; scan again")
        after = pin_compose(text, d["path"], d["service"], d["ref"], d["pinned"])
        return item(finding, [_write(ctx, d["path"], after)], [f"pins {d['ref']} to {d['pinned']}", RECREATE])
    if kind == "dockerfile":
        froms = d.get("froms") or []
        if not any(f.get("pinned") for f in froms):
            raise ManualFix(f"{finding.evidence}. Pin each FROM by hand as name:tag@sha256:<digest>.")
        text = staged_text(ctx, d["path"])
        if text is None:
            raise ManualFix(f"{d['path']}: not found; scan again")
        after, notes = pin_dockerfile(text, d["path"], froms)
        pins = [f"pins FROM {f['ref']} (line {f['line']}) to {f['pinned']}" for f in froms if f.get("pinned")]
        return item(finding, [_write(ctx, d["path"], after)], pins + notes + [RECREATE])
    raise ManualFix(f"{finding.subject}: nothing dockfix can pin here")
