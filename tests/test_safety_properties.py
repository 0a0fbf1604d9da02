"""Property-based tests for the parsers dockfix owns: for any input they return a value or raise
CheckError with a one-line message naming the file — nothing else escapes — and round trips
hold where a format has one (what we write, we read back the same)."""

from __future__ import annotations

import json
import os
import shlex

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dockfix.sources.daemon_config import BOOL_KEYS, LIST_KEYS, STRING_KEYS, parse_daemon_json, parse_env_file, parse_flags
from dockfix.model import CheckError

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.none() | st.booleans() | st.integers(-10**30, 10**30) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=20)
#: Keys dockfix does not type-check (the checked ones have their own round trip below).
free_keys = st.text(min_size=0, max_size=12).filter(lambda k: k not in BOOL_KEYS | LIST_KEYS | STRING_KEYS)


def one_line_naming(e: CheckError, path: str) -> None:
    msg = str(e)
    assert msg.startswith(path + ":"), msg
    assert "\n" not in msg, msg


# ---------------------------------------------------------------------- daemon.json
@SETTINGS
@given(st.text(max_size=300) | st.sampled_from(['{"a": 1, "a": 2}', '{"x": NaN}', '[', '{"a": 1e999}', '{"icc": 1}']))
def test_daemon_json_any_text(text: str) -> None:
    try:
        out = parse_daemon_json(text, "/etc/docker/daemon.json")
    except CheckError as e:
        one_line_naming(e, "/etc/docker/daemon.json")
    else:
        assert isinstance(out, dict)


json_pieces = st.sampled_from(list('{}[]":,0123456789.eE-+ \n\\tfnrue"ab') +
                              ['"icc":', '"hosts":', "9" * 4400, "1e400", "NaN", "-Infinity", "\\ud800", "\ufeff", "//", "/*"])


@SETTINGS
@given(st.lists(json_pieces, max_size=120).map("".join))
def test_daemon_json_json_like_noise(text: str) -> None:
    try:
        parse_daemon_json(text, "/d.json")
    except CheckError as e:
        one_line_naming(e, "/d.json")


@SETTINGS
@given(st.dictionaries(free_keys, json_values, max_size=6), st.sampled_from([None, 0, 2, 4, "\t"]))
def test_daemon_json_round_trip_and_lines(data: dict, indent) -> None:
    text = json.dumps(data, indent=indent)
    out = parse_daemon_json(text, "/d.json")
    assert {k: s.value for k, s in out.items()} == data
    lines = text.splitlines()
    for key, setting in out.items():
        line = setting.location.line
        assert line is not None, key
        assert json.dumps(key) + ":" in lines[line - 1], (key, line, lines[line - 1])


@SETTINGS
@given(st.sampled_from(sorted(BOOL_KEYS)), json_values)
def test_daemon_json_bool_keys_are_type_checked(key: str, value) -> None:
    text = json.dumps({key: value})
    if isinstance(value, bool):
        assert parse_daemon_json(text, "/d.json")[key].value is value
    else:
        with pytest.raises(CheckError, match=f"{key} must be true or false"):
            parse_daemon_json(text, "/d.json")


# ---------------------------------------------------------------------- dockerd flags
@SETTINGS
@given(st.lists(st.text(max_size=15), max_size=12))
def test_flags_any_argv(argv: list[str]) -> None:
    out = parse_flags(argv, "command line")
    assert all(isinstance(k, str) for k in out)


plain_flag = st.from_regex(r"[a-z][a-z0-9-]{0,14}", fullmatch=True).filter(
    lambda n: n not in BOOL_KEYS and n not in LIST_KEYS and n not in ("host", "H", "s", "G", "D", "l", "p") and
    n not in {"insecure-registry", "authorization-plugin", "default-ulimit", "storage-opt", "registry-mirror",
              "label", "log-opt", "exec-opt", "dns", "add-runtime"})
flag_value = st.text(min_size=1, max_size=10).filter(lambda v: not v.startswith("-"))


@SETTINGS
@given(st.dictionaries(plain_flag, flag_value, max_size=5), st.booleans())
def test_flags_round_trip(flags: dict[str, str], with_equals: bool) -> None:
    argv: list[str] = []
    for name, value in flags.items():
        argv += [f"--{name}={value}"] if with_equals else [f"--{name}", value]
    out = parse_flags(argv, "command line")
    assert {k: s.value for k, s in out.items()} == flags


@SETTINGS
@given(st.lists(st.sampled_from(sorted(BOOL_KEYS)), max_size=4), st.lists(st.from_regex(r"[a-z0-9.:]{1,12}", fullmatch=True), max_size=4))
def test_flags_bools_and_lists(bools: list[str], registries: list[str]) -> None:
    argv = [f"--{b}=false" for b in bools] + [x for r in registries for x in ("--insecure-registry", r)]
    out = parse_flags(argv, "command line")
    for b in bools:
        assert out[b].value is False
    if registries:
        assert out["insecure-registries"].value == registries


# ---------------------------------------------------------------------- /etc/default/docker
shell_pieces = st.sampled_from(["DOCKER_OPTS=", "export ", "\n", "\\", "\\\n", '"', "'", "#", " ", "--icc", "=", "-H",
                                "false", "$", "`", "\t", "\x00", "\ud800"]) | st.text(max_size=4)


@SETTINGS
@given(st.text(max_size=300) | st.lists(shell_pieces, max_size=40).map("".join))
@example("DOCKER_OPTS=\"'--icc=false\"")  # one quoted word holding an unbalanced quote
@example('DOCKER_OPTS="--icc \\\n')
def test_env_file_any_text(text: str) -> None:
    try:
        out = parse_env_file(text, "DOCKER_OPTS", "/etc/default/docker")
    except CheckError as e:
        one_line_naming(e, "/etc/default/docker")
    else:
        assert isinstance(out, dict)


@SETTINGS
@given(st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), max_size=200).map(lambda t: "DOCKER_OPTS=" + t))
def test_env_file_any_assignment(text: str) -> None:
    try:
        parse_env_file(text, "DOCKER_OPTS", "/etc/default/docker")
    except CheckError as e:
        one_line_naming(e, "/etc/default/docker")


#: A value as it can sit in DOCKER_OPTS: the init script expands $DOCKER_OPTS unquoted, so the
#: shell splits it on blanks and removes no quotes; values have no blanks, quotes or escapes.
opts_value = st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc", "Zs"], blacklist_characters="\"'\\$`#"),
                     min_size=1, max_size=10).filter(lambda v: not v.startswith("-") and v.split() == [v])


@SETTINGS
@given(st.dictionaries(plain_flag, opts_value, max_size=5), st.sampled_from(["", "export "]),
       st.sampled_from([" ", " \\\n  ", "\n  "]), st.sampled_from(['"', "'"]))
def test_env_file_round_trip(flags: dict[str, str], export: str, sep: str, quote: str) -> None:
    """DOCKER_OPTS as admins write it (quoted, continued with a backslash, or over several lines
    inside the quotes) reads back as the flags it holds."""
    if quote == "'" and "\\" in sep:
        sep = " "  # a backslash is literal inside single quotes
    args = [f"--{k}={v}" for k, v in flags.items()]
    text = f"# options\n{export}DOCKER_OPTS={quote}{sep.join(args)}{quote}\nOTHER=1\n"
    out = parse_env_file(text, "DOCKER_OPTS", "/etc/default/docker")
    assert {k: s.value for k, s in out.items()} == flags
    for s in out.values():
        assert s.location.line == 2


# ---------------------------------------------------------------------- audit rules (section 1)
from dockfix.checks.host_config import parse_audit_rules  # noqa: E402

audit_path = st.from_regex(r"/[a-z][a-z0-9._-]{0,10}(/[a-z0-9._-]{1,10}){0,3}", fullmatch=True)
blanks = st.sampled_from([" ", "  ", "\t", " \t "])


@SETTINGS
@given(st.text(max_size=300) | st.lists(st.sampled_from(["-w", "-W", "-p", "-a", "-F", "-k", "path=", "dir=", "perm=",
                                                         "/etc/docker", "wa", " ", "\t", "\n", "#", "-w/x", "\x00"]),
                                        max_size=40).map("".join))
def test_audit_rules_any_text(text: str) -> None:
    rules = parse_audit_rules(text, "/etc/audit/rules.d/x.rules")
    for r in rules:
        assert r.location is not None and 1 <= r.location.line <= max(1, len(text.splitlines()))


@SETTINGS
@given(st.lists(st.tuples(audit_path, st.sampled_from([None, "wa", "rwxa", "x"]), st.sampled_from(["watch", "syscall"]),
                          st.booleans(), blanks), min_size=1, max_size=8))
def test_audit_rules_round_trip(rules: list) -> None:
    """Rules written as auditctl accepts them (separate or attached option values, any blanks)
    read back as the watched paths and permissions."""
    lines = []
    for path, perms, form, attached, sep in rules:
        if form == "watch":
            w = f"-w{path}" if attached else f"-w{sep}{path}"
            p = "" if perms is None else (f"{sep}-p{perms}" if attached else f"{sep}-p{sep}{perms}")
            lines.append(f"{w}{p}{sep}-k{sep}docker")
        else:
            p = "" if perms is None else f"{sep}-F{sep}perm={perms}"
            lines.append(f"-a{sep}always,exit{sep}-F{sep}path={path}{p}{sep}-k{sep}docker")
    got = parse_audit_rules("\n".join(lines) + "\n", "/r")
    assert [(r.path, r.perms, r.location.line) for r in got] == [
        (os.path.normpath(p) if not p.startswith("/var/run") else p, perms, n)
        for n, (p, perms, *_rest) in enumerate(rules, 1)]


# ---------------------------------------------------------------------- team notes
from dockfix.team_notes import NotesError, parse_notes  # noqa: E402


@SETTINGS
@given(st.text(max_size=400) | st.lists(st.sampled_from(["#", "## ", "[icc]", "<!-- dockfix: 2.2 -->", "```", "~~~",
                                                         "\n", "5.", "2.2", "x", " ", "[", "]", "<!--", "-->"]),
                                        max_size=60).map("".join))
def test_team_notes_any_text(text: str) -> None:
    try:
        parse_notes(text, "/notes.md")
    except NotesError as e:
        assert str(e).startswith("/notes.md") and "\n" not in str(e)


# ---------------------------------------------------------------------- compose environment
from dockfix.sources.compose import parse_compose  # noqa: E402

env_name = st.from_regex(r"[A-Z][A-Z0-9_]{0,12}", fullmatch=True)
env_value = st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters="$"),
                    max_size=20)


@SETTINGS
@given(st.dictionaries(env_name, env_value, min_size=1, max_size=6), st.booleans())
def test_compose_environment_round_trip(env: dict[str, str], as_list: bool) -> None:
    """Environment written by a YAML dumper (mapping or list form, any quoting it picks) is read
    back name for name, value for value, each on its own line."""
    import io

    from ruamel.yaml import YAML

    doc = {"services": {"app": {"image": "busybox",
                                "environment": [f"{k}={v}" for k, v in env.items()] if as_list else dict(env)}}}
    buf = io.StringIO()
    y = YAML(typ="safe", pure=True)
    y.default_flow_style = False
    y.dump(doc, buf)
    text = buf.getvalue()
    cf = parse_compose(text, "/c.yaml")
    got = cf.services["app"].environment
    assert {v.name: v.value for v in got} == env and len(got) == len(env)  # (the dumper sorts keys)
    assert all(v.line is not None for v in got)


# ---------------------------------------------------------------------- plan files
from dockfix.plan import Plan, PlanError  # noqa: E402

_SHA_HI = "8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4"
VALID_PLAN = {"format": "dockfix-plan", "version": 1, "root": "/x", "created": 1.0, "items": [
    {"check_id": "audit-etc-docker", "subject": "/etc/docker", "title": "t", "safety": "safe", "impact": "i",
     "notes": [], "daemon_action": None, "post": [["augenrules", "--load"]], "changes": [
        {"kind": "mkdir", "path": "/etc/audit", "mode": 0o755, "uid": 0, "gid": 0, "pre": {"existed": False}},
        {"kind": "write", "path": "/etc/audit/x.rules", "mode": 0o640, "uid": 0, "gid": 0, "secret": False,
         "after_sha256": _SHA_HI, "pre": {"existed": False}, "after_text": "hi"},
        {"kind": "chown", "path": "/etc/docker", "uid": 0, "gid": 0, "pre": None},
        {"kind": "chmod", "path": "/etc/docker", "mode": 0o755, "pre": None},
        {"kind": "remove", "path": "/etc/docker/old", "pre": None}]}]}
odd_values = st.sampled_from([None, 1, -1, "s", "", [], {}, [1], {"a": 1}, 1.5, True, 10**30, "/etc/x", "rel", [[]],
                              ["augenrules"], ["sh", "-c", "id"]])


@st.composite
def mutated_plans(draw):
    doc = json.loads(json.dumps(VALID_PLAN))
    paths: list[list] = []

    def collect(o, at):
        if isinstance(o, dict):
            for k, v in o.items():
                paths.append(at + [k])
                collect(v, at + [k])
        elif isinstance(o, list):
            for i, v in enumerate(o):
                paths.append(at + [i])
                collect(v, at + [i])

    collect(doc, [])
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.sampled_from(paths))
        parent = doc
        try:
            for k in where[:-1]:
                parent = parent[k]
            if isinstance(parent, dict) and draw(st.booleans()):
                parent.pop(where[-1], None)
            else:
                parent[where[-1]] = draw(odd_values)
        except (KeyError, IndexError, TypeError):
            pass
    return doc


@SETTINGS
@given(mutated_plans())
def test_plan_loader_refuses_or_loads_cleanly(doc: dict) -> None:
    """A damaged or edited plan file: loaded into a plan whose every change can be shown, or
    refused with a PlanError naming the file — never another exception."""
    try:
        plan = Plan.from_json(doc, "/p.json")
    except PlanError as e:
        assert str(e).startswith("/p.json") and "\n" not in str(e)
        return
    plan.diff()
    plan.dumps()
    for c in plan.changes:
        c.summary()
        assert isinstance(getattr(c, "path", ""), str)
    for it in plan.items:
        assert all(tuple(p) == ("augenrules", "--load") for p in it.post)


def test_plan_round_trip(tmp_path) -> None:
    """A real plan written to a file and read back is the same plan (what was reviewed)."""
    from dockfix.host import Host
    from dockfix.plan import load_plan
    from dockfix.scan import Context, scan
    from dockfix.workflow import plan_fixes
    from helpers import put

    root = tmp_path / "root"
    put(root, "/var/lib/", mode=0o755)
    put(root, "/etc/docker/daemon.json", '{"icc": true}\n', mode=0o666, owner=(1000, 1000))
    put(root, "/etc/default/docker", 'DOCKER_OPTS=""\n', mode=0o666)
    host = Host(str(root), engine=False)
    ctx = Context(host)
    plan = plan_fixes(ctx, scan(ctx).findings, include_disruptive=True)
    assert len(plan.changes) >= 5
    f = tmp_path / "plan.json"
    from dockfix.plan import host_key

    f.write_text(plan.dumps(host_key(host, create=True)))
    os.chmod(f, 0o600)
    again = load_plan(str(f), host)
    assert [c.summary() for c in again.changes] == [c.summary() for c in plan.changes]
    assert again.diff() == plan.diff()
