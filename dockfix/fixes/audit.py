"""CIS 1.1.3-1.1.18: audit rules for Docker's files, as one rules file.

Every failing audit item adds its own watch line (``-w PATH -p wa -k docker``: writes and
attribute changes, under the key ``docker``) to /etc/audit/rules.d/docker.rules, so each item shows a
one-line diff and several items build one file. The rules are loaded with ``augenrules --load``
after the apply (and after a rollback), only on the live host (``--root /``) and only when auditd's
tools are installed; on a tree, or without auditd, the file is written and takes effect when auditd
loads its rules.
"""

from __future__ import annotations

from dockfix.changes import WriteFile, parents_to_make, staged_state, staged_text
from dockfix.checks.host_config import AUDIT_TARGETS, audit_check_id
from dockfix.fixes import item as plan_item
from dockfix.model import get_check
from dockfix.plan import PlanItem

RULES_FILE = "/etc/audit/rules.d/docker.rules"
HEADER = ("# Audit rules for Docker's files (CIS Docker Benchmark 1.1.3-1.1.18), written by dockfix.\n"
          "# Each line watches one path for writes and attribute changes; search with: ausearch -k docker\n")
LOAD = ["augenrules", "--load"]


def rule_line(path: str) -> str:
    return f"-w {path} -p wa -k docker\n"


def build(ctx, finding) -> PlanItem | list:
    path = finding.data.get("path") or finding.subject
    text = staged_text(ctx, RULES_FILE)
    line = rule_line(path)
    item = plan_item(finding, post=[LOAD])
    if text is None:
        item.changes = [*parents_to_make(ctx, RULES_FILE), WriteFile(path=RULES_FILE, after=(HEADER + line).encode(),
                                                                    mode=0o640, uid=0, gid=0)]
    else:
        if line in text.splitlines(keepends=True):
            return []  # an earlier fix in this plan already adds it
        sep = "" if text.endswith("\n") or not text else "\n"
        st = staged_state(ctx, RULES_FILE)
        item.changes = [WriteFile(path=RULES_FILE, after=(text + sep + line).encode(), mode=st.mode, uid=st.uid, gid=st.gid)]
    if not (ctx.host.which("auditctl") or ctx.host.which("augenrules")):
        item.notes.append("auditd is not installed on this host: the rules file is written and takes effect once "
                          "auditd is installed (apt-get install auditd) and loads its rules")
    elif ctx.host.is_live:
        item.notes.append("the rules are loaded with `augenrules --load` after the change (and after a rollback)")
    return item


for _cis, _ in AUDIT_TARGETS:
    get_check(audit_check_id(_cis)).fix(build)
