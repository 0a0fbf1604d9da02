"""Hostile and malformed input: every file of tests/corpus/ (and a few made at test time: very
large files, FIFOs, sockets, devices) is put where dockfix reads it in a temporary host tree and
scanned in all three output formats. Each must give a clear one-line message or an `error`
verdict naming the file — never a traceback, never an "internal error", never a hang (each case
runs under a timeout), and never a changed file (manifest before and after).
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO, manifest, put

CORPUS = Path(__file__).resolve().parent / "corpus"
TIMEOUT = 60  # seconds per case: a hang fails the case instead of the CI job

#: corpus folder -> (host path the file is put at, extra scan arguments)
TARGETS = {
    "daemon.json": ("/etc/docker/daemon.json", []),
    "etc-default-docker": ("/etc/default/docker", []),
    "etc-sysconfig-docker": ("/etc/sysconfig/docker", []),
    "etc-group": ("/etc/group", []),
    "compose": ("/srv/app/compose.yaml", ["--path", "/srv/app"]),
    "dotenv": ("/srv/app/.env", ["--path", "/srv/app"]),
    "dockerfile": ("/srv/app/Dockerfile", ["--path", "/srv/app"]),
    "audit": ("/etc/audit/rules.d/docker.rules", []),
}

#: What each malformed file must produce: an `error` verdict whose evidence names the file and
#: contains the text given. "ok" means: read without any error naming the file. Files not listed
#: must only keep the general promises (no traceback, no internal error, no hang, no change).
EXPECT: dict[str, tuple[str, str | None]] = {
    "daemon.json/duplicate-keys.json": ("error", "duplicate key 'icc'"),
    "daemon.json/duplicate-nested-keys.json": ("error", "duplicate key 'max-size'"),
    "daemon.json/comments.json": ("error", "line 1 column 1"),
    "daemon.json/bom.json": ("ok", None),
    "daemon.json/huge-integer.json": ("error", "5000 digits is too large"),
    "daemon.json/huge-float.json": ("error", "out of range"),
    "daemon.json/nan.json": ("error", "NaN is not valid JSON"),
    "daemon.json/infinity.json": ("error", "-Infinity is not valid JSON"),
    "daemon.json/invalid-utf8.json": ("error", "line 2: not valid UTF-8"),
    "daemon.json/deep-nesting.json": ("error", "nested too deeply"),
    "daemon.json/deep-objects.json": ("error", "nested too deeply"),
    "daemon.json/trailing-comma.json": ("error", "line 3"),
    "daemon.json/top-level-list.json": ("error", "expected a JSON object, found list"),
    "daemon.json/top-level-string.json": ("error", "expected a JSON object, found str"),
    "daemon.json/top-level-null.json": ("error", "expected a JSON object, found NoneType"),
    "daemon.json/empty.json": ("ok", None),
    "daemon.json/whitespace-only.json": ("ok", None),
    "daemon.json/binary.json": ("error", "binary file"),
    "daemon.json/wrong-type-bool.json": ("error", "line 2: icc must be true or false, found a string"),
    "daemon.json/wrong-type-list.json": ("error", "line 2: insecure-registries must be a list"),
    "daemon.json/wrong-type-objects.json": ("error", "line 2: log-level must be a string, found a list"),
    "daemon.json/unterminated-string.json": ("error", "line 2"),
    "daemon.json/truncated.json": ("error", "line 2"),
    "daemon.json/lone-surrogate.json": ("ok", None),
    "daemon.json/terminal-escapes.json": ("ok", None),
    "daemon.json/nul-in-string.json": ("ok", None),
    "daemon.json/crlf.json": ("ok", None),
    "daemon.json/odd-keys.json": ("ok", None),
    "daemon.json/utf16.json": ("error", "UTF-16"),
    "daemon.json/many-keys.json": ("ok", None),
    "etc-default-docker/unbalanced-quote": ("ok", None),  # the shell passes "'--icc=false" on as one word
    "etc-default-docker/unclosed-double-quote": ("error", "line 1: No closing quotation"),
    "etc-default-docker/binary": ("error", "binary file"),
    "etc-default-docker/invalid-utf8": ("error", "line 1: not valid UTF-8"),
    "etc-default-docker/continuation": ("ok", None),
    "etc-default-docker/export-and-comments": ("ok", None),
    "etc-sysconfig-docker/options-escapes": ("ok", None),
    "etc-group/binary": ("error", "binary file"),
    "compose/anchors-merge.yaml": ("ok", None),
    "compose/billion-laughs.yaml": ("error", "alias bomb"),
    "compose/binary.yaml": ("error", "binary file"),
    "compose/bom-crlf.yaml": ("ok", None),
    "compose/deep-block-nesting.yaml": ("error", "nested too deeply"),
    "compose/deep-nesting.yaml": ("error", "nested too deeply"),
    "compose/duplicate-keys.yaml": ("error", "line 4, column 3: found duplicate key 'web'"),
    "compose/invalid-utf8.yaml": ("error", "line 3: not valid UTF-8"),
    "compose/recursive-alias.yaml": ("error", "an alias refers to a node that contains it"),
    "compose/scalar-top.yaml": ("error", "a compose file must be a mapping"),
    "compose/service-is-scalar.yaml": ("error", "service 'web' must be a mapping"),
    "compose/services-is-list.yaml": ("error", "services must be a mapping"),
    "compose/several-documents.yaml": ("error", "another document"),
    "compose/tabs.yaml": ("error", "line 2"),
    "compose/python-tags.yaml": ("ok", None),  # tags are data, never constructed (see the test)
    "compose/interpolation-bomb.yaml": ("ok", None),
    "compose/odd-environment.yaml": ("ok", None),
    "dockerfile/bad-directives.Dockerfile": ("error", "line 1: invalid escape character"),
    "dockerfile/binary.Dockerfile": ("error", "binary file"),
    "dockerfile/invalid-utf8.Dockerfile": ("error", "line 2: not valid UTF-8"),
    "dockerfile/no-from.Dockerfile": ("error", "no FROM instruction"),
    "dockerfile/unterminated-heredoc.Dockerfile": ("error", "line 2: heredoc <<EOF is not terminated"),
    "dockerfile/heredoc.Dockerfile": ("ok", None),
    "dockerfile/continuations-and-comments.Dockerfile": ("ok", None),
    "dockerfile/escape-directive.Dockerfile": ("ok", None),
    "dockerfile/crlf.Dockerfile": ("ok", None),
    "dotenv/hostile.env": ("error", "binary file"),
    "audit/binary.rules": ("error", "binary file"),
    "audit/odd-spacing.rules": ("ok", None),
    "audit/garbage.rules": ("ok", None),
}

CASES = sorted(str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*") if p.is_file() and p.name != "README.md")

# One process scans three times (text to stdout, JSON and SARIF to files): an exception that
# escapes dockfix ends the process with a traceback on stderr, which the test looks for.
DRIVER = """
import contextlib, json, os, sys
from dockfix.cli import main
root, out, *extra = sys.argv[1:]
codes = [main(["scan", "--root", root, "--no-engine", *extra]),
         main(["scan", "--root", root, "--no-engine", "--format", "json", "-o", out + ".json", *extra]),
         main(["scan", "--root", root, "--no-engine", "--format", "sarif", "-o", out + ".sarif", *extra])]
if os.environ.get("SAFETY_APPLY"):
    # where a fix would read the file: plan and apply every fix, then roll the transaction back
    with open(out + ".apply.json", "w") as f, contextlib.redirect_stdout(f):
        code = main(["--apply", "--yes", "--include-disruptive", "--format", "json", "--root", root,
                     "--no-engine", *extra])
    assert code in (0, 1, 3), code
    doc = json.load(open(out + ".apply.json"))
    if doc.get("txid"):
        with contextlib.redirect_stdout(open(os.devnull, "w")):
            assert main(["rollback", "--last", "--root", root, "--no-engine"]) == 0
sys.exit(max(codes))
"""


def base_tree(root: Path) -> None:
    """A small host: /etc/docker, /etc/group with a docker group, the socket, a project folder."""
    put(root, "/etc/docker/", mode=0o755)
    put(root, "/etc/group", "root:x:0:\ndocker:x:999:\n")
    put(root, "/srv/app/", mode=0o755)
    put(root, "/etc/audit/rules.d/", mode=0o750)
    put(root, "/lib/systemd/system/docker.service", "[Service]\nExecStart=/usr/bin/dockerd -H fd://\n")
    put(root, "/run/", mode=0o755)
    put(root, "/var/lib/", mode=0o755)
    os.mknod(root / "run/docker.sock", stat.S_IFSOCK | 0o660)
    os.chown(root / "run/docker.sock", 0, 999)


def run_scan(root: Path, out: Path, *extra: str, timeout: float = TIMEOUT, user: list[str] | None = None,
             apply: bool = False):
    env = dict(os.environ, PYTHONPATH=str(REPO), NO_COLOR="1")
    if apply:
        env["SAFETY_APPLY"] = "1"
    env.pop("DOCKER_HOST", None)
    cmd = [*(user or []), sys.executable, "-c", DRIVER, str(root), str(out), *extra]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd="/")
    except subprocess.TimeoutExpired:
        pytest.fail(f"dockfix did not finish within {timeout} s (a hang)", pytrace=False)


def check_outputs(r: subprocess.CompletedProcess, out: Path) -> dict:
    """The promises every case keeps, whatever the input. Returns the JSON report."""
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode in (0, 1), f"exit {r.returncode}: {r.stderr}"
    assert "internal error" not in r.stdout, r.stdout
    # Nothing from the host reaches the terminal as a control character (escape sequences).
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", r.stdout), "raw control character in the text report"
    doc = json.loads(Path(str(out) + ".json").read_text())
    json.loads(Path(str(out) + ".sarif").read_text())
    for f in doc["findings"]:
        if f["status"] == "error":
            ev = f["evidence"]
            assert "\n" not in ev and len(ev) < 400, f"not a one-line message: {ev!r}"
            assert "internal error" not in ev, ev
    return doc


def errors_naming(doc: dict, path: str) -> list[str]:
    return [f["evidence"] for f in doc["findings"] if f["status"] == "error" and path in f["evidence"]]


@pytest.mark.parametrize("case", CASES)
def test_corpus_file(case: str, tmp_path: Path) -> None:
    folder = case.split("/")[0]
    where, extra = TARGETS[folder]
    root = tmp_path / "root"
    base_tree(root)
    if folder == "dotenv":
        put(root, "/srv/app/compose.yaml",
            "services:\n  web:\n    image: ${IMAGE:-busybox}\n    environment:\n      - A=${A}\n      - F=${F:-x}\n")
    put(root, where, (CORPUS / case).read_bytes())
    pwned = Path("/tmp/dockfix-pwned")  # named by compose/python-tags.yaml
    if pwned.exists():
        pwned.unlink()
    before = manifest(root)
    fixable = folder in ("daemon.json", "etc-default-docker", "compose", "dotenv", "audit")
    r = run_scan(root, tmp_path / "report", *extra, apply=fixable)
    assert not pwned.exists(), "a YAML tag was constructed: code ran"
    doc = check_outputs(r, tmp_path / "report")
    unjournaled = {k: v for k, v in manifest(root).items() if not k.startswith("var/lib/dockfix")}
    assert unjournaled == before, "the host tree differs after scan, apply and rollback"
    kind, text = EXPECT.get(case, (None, None))
    found = errors_naming(doc, where)
    if kind == "error":
        assert found, f"expected an error verdict naming {where}; got none"
        assert any(text in e for e in found), f"expected {text!r} in one of {found}"
        if fixable:  # a file dockfix cannot read is never planned for, let alone rewritten
            applied = json.loads(Path(str(tmp_path / "report") + ".apply.json").read_text())
            planned = " ".join(ch for item in applied["plan"] for ch in item["changes"])
            assert f"write {where}" not in planned, planned
    elif kind == "ok":
        assert not found, f"unexpected errors: {found}"


# ---------------------------------------------------------------------- made at test time
def _big_json(n: int) -> bytes:
    return b'{"icc": false, "labels": ["' + b"x" * n + b'"]}\n'


GENERATED = {
    # name: (host path, content, expected text in the error verdict or None for "reads fine")
    "daemon.json 20 MB": ("/etc/docker/daemon.json", _big_json(20 * 1024 * 1024), "too large to read"),
    "daemon.json 2 MB, 100000 keys": (
        "/etc/docker/daemon.json",
        b"{\n" + b",\n".join(b'  "k%d": %d' % (i, i) for i in range(100000)) + b',\n  "icc": false\n}\n', None),
    "daemon.json one 7 MB line": ("/etc/docker/daemon.json", _big_json(7 * 1024 * 1024), None),
    "compose 20 MB": ("/srv/app/compose.yaml", b"services:\n  web:\n    image: busybox\n" + b"# pad\n" * 3_500_000,
                      "too large"),
    "Dockerfile 20 MB": ("/srv/app/Dockerfile", b"FROM busybox\n" + b"RUN true \\\n" * 2_000_000 + b"\n", "too large"),
    "/etc/default/docker random 1 MB": ("/etc/default/docker", os.urandom(1 << 20), None),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(GENERATED))
def test_generated_large_file(name: str, tmp_path: Path) -> None:
    where, content, text = GENERATED[name]
    root = tmp_path / "root"
    base_tree(root)
    put(root, where, content)
    before = manifest(root)
    r = run_scan(root, tmp_path / "report", "--path", "/srv/app")
    doc = check_outputs(r, tmp_path / "report")
    assert manifest(root) == before
    found = errors_naming(doc, where)
    if text:
        assert any(text in e for e in found), f"expected {text!r} in {found}"
    elif where == "/etc/docker/daemon.json":
        assert not found, found


# ---------------------------------------------------------------------- not regular files
SPECIAL_PLACES = [
    "/etc/docker/daemon.json",
    "/etc/default/docker",
    "/etc/sysconfig/docker",
    "/etc/group",
    "/srv/app/compose.yaml",
    "/srv/app/Dockerfile",
    "/srv/app/.env",
    "/etc/audit/rules.d/docker.rules",
    "/etc/audit/audit.rules",
]


def make_special(path: Path, kind: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()
    if kind == "fifo":
        os.mkfifo(path, 0o644)
    elif kind == "socket":
        os.mknod(path, stat.S_IFSOCK | 0o644)
    elif kind == "char device":  # like /dev/zero: reading it would never end
        os.mknod(path, stat.S_IFCHR | 0o644, os.makedev(1, 5))
    elif kind == "directory":
        path.mkdir()


@pytest.mark.parametrize("kind", ["fifo", "socket", "char device", "directory"])
def test_special_files_are_reported_not_read(kind: str, tmp_path: Path) -> None:
    """A FIFO (no writer: opening it for reading would block), a socket, /dev/zero or a directory
    where a file is expected: the scan finishes, reports the ones it needed as `error` naming the
    kind, and never opens them (a FIFO's reader would hang; the timeout catches that)."""
    root = tmp_path / "root"
    base_tree(root)
    put(root, "/srv/app/compose.yaml", "services:\n  web:\n    image: busybox\n")
    put(root, "/srv/app/Dockerfile", "FROM busybox\nUSER 1000\n")
    for place in SPECIAL_PLACES:
        make_special(root / place.lstrip("/"), kind)
    before = manifest(root)
    r = run_scan(root, tmp_path / "report", "--path", "/srv/app", timeout=30)
    doc = check_outputs(r, tmp_path / "report")
    assert manifest(root) == before
    # daemon.json is read by every section 2 check: it must be reported, naming what it is.
    want = {"fifo": "FIFO", "socket": "socket", "char device": "character device", "directory": "directory"}[kind]
    found = errors_naming(doc, "/etc/docker/daemon.json")
    assert any(f"is a {want}, not a regular file" in e for e in found), found


def test_daemon_json_through_a_link_to_a_fifo(tmp_path: Path) -> None:
    """A link to a FIFO (inside or outside the root) is resolved inside the root, then refused."""
    root = tmp_path / "root"
    base_tree(root)
    os.mkfifo(root / "etc/docker/pipe")
    os.mkfifo(tmp_path / "outside-pipe")
    os.symlink("pipe", root / "etc/docker/daemon.json")
    put(root, "/etc/default/", mode=0o755)
    os.symlink(str(tmp_path / "outside-pipe"), root / "etc/default/docker")
    r = run_scan(root, tmp_path / "report", timeout=30)
    doc = check_outputs(r, tmp_path / "report")
    assert any("is a FIFO" in e for e in errors_naming(doc, "/etc/docker/daemon.json"))


def test_relative_and_device_paths_in_daemon_json(tmp_path: Path) -> None:
    """Paths named inside daemon.json are host input too: a relative path, /dev/zero, a FIFO."""
    root = tmp_path / "root"
    base_tree(root)
    put(root, "/etc/docker/daemon.json", (CORPUS / "daemon.json/tls-paths-hostile.json").read_bytes())
    put(root, "/dev/", mode=0o755)
    make_special(root / "dev/zero", "char device")
    make_special(root / "etc/docker/fifo", "fifo")
    r = run_scan(root, tmp_path / "report", timeout=30)
    doc = check_outputs(r, tmp_path / "report")
    by = {f["id"]: f for f in doc["findings"]}
    # the relative path is named, and never looked up relative to dockfix's own working folder
    cert = by["tls-server-cert-owner"]
    assert cert["status"] == "error" and "../../../../../../etc/shadow" in cert["evidence"], cert
    assert ("not an absolute path" in cert["evidence"] or "does not exist" in cert["evidence"]), cert


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 50


# ---------------------------------------------------------------------- files the user names
@pytest.mark.parametrize("kind", ["fifo", "socket", "char device", "directory"])
@pytest.mark.parametrize("command", ["notes", "plan", "report"])
def test_named_inputs_that_are_not_files(command: str, kind: str, tmp_path: Path) -> None:
    """--notes, --plan and `report` FILE given a FIFO (open() would block forever), a socket,
    /dev/zero or a directory: a one-line message and exit 2, within the timeout."""
    root = tmp_path / "root"
    base_tree(root)
    odd = tmp_path / "odd"
    make_special(odd, kind)
    args = {"notes": ["scan", "--root", str(root), "--no-engine", "--notes", str(odd)],
            "plan": ["--apply", "--yes", "--root", str(root), "--no-engine", "--plan", str(odd)],
            "report": ["report", str(odd)]}[command]
    env = dict(os.environ, PYTHONPATH=str(REPO), NO_COLOR="1")
    try:
        r = subprocess.run([sys.executable, "-m", "dockfix", *args], capture_output=True, text=True, env=env,
                           timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"dockfix {command} hung on a {kind}", pytrace=False)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert str(odd) in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def _plan_file(tmp_path: Path) -> tuple[Path, Path, dict]:
    root = tmp_path / "root"
    base_tree(root)
    put(root, "/var/lib/", mode=0o755)
    put(root, "/etc/docker/daemon.json", '{"icc": true}\n', mode=0o666)
    plan = tmp_path / "plan.json"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-m", "dockfix", "plan", "-o", str(plan), "--root", str(root), "--no-engine",
                        "--include-disruptive"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    return root, plan, json.loads(plan.read_text())


def _apply_plan(root: Path, plan: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), NO_COLOR="1")
    return subprocess.run([sys.executable, "-m", "dockfix", "--apply", "--yes", "--plan", str(plan), "--root", str(root),
                           "--no-engine"], capture_output=True, text=True, env=env, timeout=120)


def _edit(doc: dict, how: str) -> dict:
    doc = json.loads(json.dumps(doc))
    items = doc["items"]
    audit = next(i for i in items if i.get("post"))
    change = next(c for i in items for c in i["changes"] if c["kind"] in ("chmod", "write", "mkdir"))
    if how == "post command":
        audit["post"] = [["sh", "-c", "touch /tmp/dockfix-plan-pwned"]]
    elif how == "path type":
        change["path"] = 5
    elif how == "relative path":
        change["path"] = "etc/shadow"
    elif how == "mode out of range":
        change["mode"] = 0o177777
    elif how == "items not a list":
        doc["items"] = "everything"
    elif how == "change not an object":
        items[0]["changes"] = ["chmod 777 /"]
    elif how == "precondition not an object":
        change["pre"] = "whatever"
    elif how == "huge number":
        doc["created"] = int("9" * 5000) if False else 0
        return json.loads(json.dumps(doc).replace('"created": 0', '"created": ' + "9" * 5000))
    elif how == "deep nesting":
        return {"format": "dockfix-plan", "version": 1, "items": [{"notes": [json.loads("[" * 50 + "]" * 50)]}]}
    return doc


PLAN_EDITS = ["post command", "path type", "relative path", "mode out of range", "items not a list",
              "change not an object", "precondition not an object", "huge number", "deep nesting"]


@pytest.mark.parametrize("how", PLAN_EDITS)
def test_edited_plan_files_are_refused(how: str, tmp_path: Path) -> None:
    """A plan file is input to a process running as root: an edited or damaged one is refused
    with one line naming it, before anything is changed. (A plan that would run an arbitrary
    command after the apply was accepted, and the command was not shown in the preview.)"""
    root, plan, doc = _plan_file(tmp_path)
    if how == "huge number":
        plan.write_text(json.dumps(doc).replace('"created": ', '"created": ' + "9" * 5000 + ", \"x\": "))
    else:
        plan.write_text(json.dumps(_edit(doc, how)))
    os.chmod(plan, 0o600)
    before = manifest(root)
    r = _apply_plan(root, plan)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert str(plan) in r.stderr
    assert manifest(root) == before
    assert not Path("/tmp/dockfix-plan-pwned").exists()


def test_post_commands_are_shown_in_the_preview(tmp_path: Path) -> None:
    root, plan, doc = _plan_file(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(REPO), NO_COLOR="1")
    r = subprocess.run([sys.executable, "-m", "dockfix", "--apply", "--dry-run", "--plan", str(plan), "--root",
                        str(root), "--no-engine"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "then runs (on the live host, after apply and after rollback): augenrules --load" in r.stdout


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_plan_files_are_never_writable_by_others(umask: int, tmp_path: Path) -> None:
    """`dockfix plan -o` writes 0644 even under umask 000; a plan file that others can write is
    refused at apply time (anyone could have changed it after it was reviewed)."""
    root = tmp_path / "root"
    base_tree(root)
    put(root, "/etc/docker/daemon.json", '{"icc": true}\n', mode=0o666)
    plan = tmp_path / "plan.json"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-m", "dockfix", "plan", "-o", str(plan), "--root", str(root), "--no-engine"],
                       capture_output=True, text=True, env=env, timeout=120, preexec_fn=lambda: os.umask(umask))
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(os.lstat(plan).st_mode) == 0o644
    os.chmod(plan, 0o666)
    before = manifest(root)
    r = _apply_plan(root, plan)
    assert r.returncode == 2 and "writable by other users" in r.stderr, r.stderr
    assert manifest(root) == before


def test_terminal_escapes_in_diffs_are_shown_not_sent(tmp_path: Path) -> None:
    """A fix's diff shows lines of a host file as context: an escape sequence planted in
    /etc/environment (a retitle, a screen clear) is shown as text, never sent to the terminal —
    in the dry run, the apply and the journal listing."""
    root = tmp_path / "root"
    base_tree(root)
    # the content-trust fix edits /etc/environment (its own notary named: the fix is not refused)
    put(root, "/etc/environment", ('PATH="/usr/bin"\nMOTD="\x1b]0;owned\x07\x1b[2J\x1b[31mhello\x9b2J"\n'
                                   "DOCKER_CONTENT_TRUST_SERVER=https://notary.corp.example\n").encode())
    put(root, "/etc/docker/daemon.json", "{}\n")
    env = dict(os.environ, PYTHONPATH=str(REPO), NO_COLOR="1")
    outs = []
    for args in (["--apply", "--dry-run", "--include-disruptive"], ["--apply", "--yes", "--include-disruptive"],
                 ["journal"], ["rollback", "--last"]):
        r = subprocess.run([sys.executable, "-m", "dockfix", *args, "--root", str(root), "--no-engine"],
                           capture_output=True, env=env, timeout=120)
        assert b"Traceback" not in r.stderr, r.stderr
        outs.append(r.stdout + r.stderr)
    assert b"MOTD" in outs[0], "the diff did not show the line (nothing was tested)"
    for out in outs:
        assert b"\x1b" not in out and b"\x07" not in out and "\x9b".encode() not in out, out
    assert b"\\x1b]0;owned" in outs[0]


async def test_app_shows_escapes_instead_of_sending_them(tmp_path: Path) -> None:
    """The app draws host text into terminal cells, and Textual passes an ESC through: a daemon.json
    value and a Dockerfile name holding escape sequences must appear as visible text on every
    page (table, detail pane, diff page)."""
    from dockfix.tui.app import DockfixApp
    from dockfix.host import Host
    from dockfix.scan import Context

    root = tmp_path / "root"
    put(root, "/etc/docker/daemon.json", '{"cgroup-parent": "x\\u001b]0;owned\\u0007\\u001b[2Jy", "icc": true}\n',
        mode=0o666)
    put(root, "/srv/app/Dockerfile.\x1b[31mred", "FROM busybox\n")
    app = DockfixApp(lambda: Context(host=Host(root=str(root), engine=False), paths=["/srv/app"]), host_label="h")
    screens = []
    async with app.run_test(size=(160, 50)) as pilot:
        for _ in range(3):
            await app.workers.wait_for_complete()
            await pilot.pause(0.05)
        await pilot.press("6")
        await pilot.pause(0.05)
        screens.append(app.export_screenshot())
        hostile = 0
        for word in ("cgroup-parent", "31mred"):  # search, then open the finding's detail pane
            await pilot.press("slash", *word, "enter")
            await pilot.pause(0.1)
            for _ in range(6):
                f = app.screen.finding_at_cursor()
                if f is not None and ("\x1b" in f.evidence or "\x1b" in f.subject):
                    hostile += 1
                    screens.append(app.export_screenshot())
                    break
                await pilot.press("down")
                await pilot.pause(0.02)
            await pilot.press("escape")
        assert hostile == 2
        await pilot.press("d")
        for _ in range(3):
            await app.workers.wait_for_complete()
            await pilot.pause(0.05)
        screens.append(app.export_screenshot())
    text = "".join(screens)
    assert "cgroup-parent" in text and "Dockerfile." in text
    assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b]0;owned" in text or "\\\\x1b]0;owned" in text
