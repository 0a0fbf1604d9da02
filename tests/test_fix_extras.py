"""The content-trust fix, minimal daemon.json edits, confirmation on a terminal, JSON results."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time

from hypothesis import given, settings, strategies as st

from helpers import REPO, manifest, put, run_dockfix

from dockfix.host import Host
from dockfix.sources.jsonedit import remove_member, set_member
from dockfix.model import Finding, Severity, Status
from dockfix.scan import Context
from dockfix.workflow import apply_plan, plan_fixes, rollback

JOURNAL = "var/lib/dockfix"


def tree_manifest(root) -> dict:
    return {k: v for k, v in manifest(root).items() if not (k == JOURNAL or k.startswith(JOURNAL + "/"))}


# ---------------------------------------------------------------------- content trust (4.5)
def ct_finding() -> Finding:
    from dockfix.fixes import load_all

    load_all()

    return Finding(id="content-trust", cis="4.5", title="content trust", severity=Severity.MEDIUM, section="4",
                   subject="host", status=Status.FAIL, evidence="DOCKER_CONTENT_TRUST is not set", explanation="",
                   manual_check="", remediation="")


def test_content_trust_fix_sets_the_variable_with_the_2026_warning(tmp_path):
    """The benchmark's reading (fails while unset): the fix sets it, and tells the truth about it."""
    put(tmp_path, "var/lib/")
    put(tmp_path, "etc/environment", 'PATH="/usr/local/bin:/usr/bin:/bin"\nHTTP_PROXY=http://bob:pa55w0rd@proxy:3128\n'
        "DOCKER_CONTENT_TRUST_SERVER=https://notary.corp.example:4443\n", mode=0o644)
    before = tree_manifest(tmp_path)
    ctx = Context(Host(str(tmp_path), engine=False))
    assert plan_fixes(ctx, [ct_finding()]).items == []  # disruptive: not without asking
    plan = plan_fixes(ctx, [ct_finding()], include_disruptive=True)
    [item] = plan.items
    assert item.safety == "disruptive"
    shown = plan.diff()
    for fact in ("August 2025", "29.0", "2026-12-08", "cosign", "Notation"):
        assert fact in shown, fact
    assert "+DOCKER_CONTENT_TRUST=1" in shown
    assert "pa55w0rd" not in shown and "pa55w0rd" not in plan.dumps()  # a secret in a context line stays hidden
    assert apply_plan(ctx.host, plan).error is None
    assert (tmp_path / "etc/environment").read_text().endswith("\nDOCKER_CONTENT_TRUST=1\n")
    assert rollback(ctx.host, "last").restored
    assert tree_manifest(tmp_path) == before


def test_content_trust_plan_file_rebuilds_hidden_content(tmp_path):
    """A plan file never holds a line that looks secret; --apply --plan rebuilds it on the host and
    applies it only when it is byte for byte what was reviewed."""
    put(tmp_path, "var/lib/")
    put(tmp_path, "etc/environment", "API_TOKEN=abcdef123456\nDOCKER_CONTENT_TRUST_SERVER=https://notary.corp.example\n")
    ctx = Context(Host(str(tmp_path), engine=False))
    plan = plan_fixes(ctx, [ct_finding()], include_disruptive=True)
    text = plan.dumps()
    assert "abcdef123456" not in text and '"secret_lines": true' in text


# ---------------------------------------------------------------------- daemon.json edits
keys = st.text(alphabet="abcdefghij-", min_size=1, max_size=8)
values = st.one_of(st.booleans(), st.integers(-5, 5), st.text(alphabet="xyz ", max_size=4),
                   st.lists(st.text(alphabet="ab:", max_size=3), max_size=3))


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(keys, values, max_size=6), keys, values, st.sampled_from([None, 2, 4, "\t"]))
def test_set_and_remove_keep_other_members_exactly(doc, key, value, indent):
    text = json.dumps(doc, indent=indent) + "\n"
    out = set_member(text, key, value)
    want = dict(doc)
    want[key] = value
    assert json.loads(out) == want
    assert list(json.loads(out)) == list(want)  # order kept, new key last
    if key not in doc:
        assert remove_member(out, key) == text  # adding touched nothing else, byte for byte
    elif indent is not None and not (isinstance(doc[key], list) and doc[key]):
        def others(t):
            return [ln for ln in t.splitlines() if f'"{key}":' not in ln]
        assert others(out) == others(text)  # only the member's own line changed
    removed = remove_member(out, key)
    rest = {k: v for k, v in want.items() if k != key}
    assert json.loads(removed) == rest


def test_multiline_list_stays_multiline():
    text = '{\n    "storage-opts": [\n        "dm.basesize=20G",\n        "dm.fs=xfs"\n    ],\n    "icc": true\n}\n'
    assert set_member(text, "storage-opts", ["dm.fs=xfs"]) == \
        '{\n    "storage-opts": [\n        "dm.fs=xfs"\n    ],\n    "icc": true\n}\n'


def test_set_member_on_one_line_object():
    assert set_member('{"a": 1}\n', "b", False) == '{"a": 1, "b": false}\n'
    assert set_member("{}\n", "icc", False) == '{\n  "icc": false\n}\n'


# ---------------------------------------------------------------------- terminal and JSON
def test_confirmation_on_a_terminal(tmp_path):
    put(tmp_path, "var/lib/")
    put(tmp_path, "etc/docker/", mode=0o733, owner=(1000, 1000))
    put(tmp_path, "etc/docker/daemon.json", '{"icc": true, "log-level": "debug"}\n')
    master, slave = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "dockfix", "--apply", "--include-disruptive", "--root", str(tmp_path),
                          "--no-engine", "--only", "3.5,2.2,2.3"], stdin=slave, stdout=slave, stderr=slave,
                         env={**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}, close_fds=True)
    os.close(slave)
    seen = b""

    def until(text: bytes) -> None:
        nonlocal seen
        end = time.time() + 60
        while text not in seen:
            assert time.time() < end, seen.decode(errors="replace")
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            seen += chunk

    until(b"Apply the 2 safe fix(es) above? [y/N]")
    os.write(master, b"y\n")
    until(b"Apply disruptive fix icc")
    os.write(master, b"n\n")
    # log-level was planned on top of the icc edit: planned again without it, shown, asked again
    until(b"Apply these? [y/N]")
    assert b'-{"icc": true, "log-level": "debug"}' in seen.split(b"the others change to")[1]
    os.write(master, b"y\n")
    until(b"fixed     log-level")
    p.wait(timeout=60)
    os.close(master)
    assert p.returncode == 0
    assert os.lstat(tmp_path / "etc/docker").st_uid == 0
    assert (tmp_path / "etc/docker/daemon.json").read_text() == '{"icc": true, "log-level": "info"}\n'  # icc declined


def test_json_result_and_dry_run_json(tmp_path):
    put(tmp_path, "var/lib/")
    put(tmp_path, "etc/docker/", mode=0o733)
    r = run_dockfix("--apply", "--dry-run", "--format", "json", "--root", str(tmp_path), "--no-engine", "--only", "3.6")
    doc = json.loads(r.stdout)
    assert doc["dry_run"] is True and doc["txid"] is None and "mode  0733 -> 0711" in doc["diff"]
    r = run_dockfix("--apply", "--yes", "--format", "json", "--root", str(tmp_path), "--no-engine", "--only", "3.6")
    doc = json.loads(r.stdout)
    assert r.returncode == 0
    assert doc["results"] == [{"check_id": "etc-docker-mode", "subject": "/etc/docker", "status": "pass", "fixed": True,
                               "evidence": doc["results"][0]["evidence"]}]
    assert doc["txid"] and doc["error"] is None


def test_unknown_id_is_a_usage_error(tmp_path):
    r = run_dockfix("--apply", "--yes", "--root", str(tmp_path), "--no-engine", "--only", "no-such-check")
    assert r.returncode == 2 and "no-such-check" in r.stderr
    r = run_dockfix("rollback", "--root", str(tmp_path), "--no-engine", "--last")
    assert r.returncode == 2 and "no transactions" in r.stderr
