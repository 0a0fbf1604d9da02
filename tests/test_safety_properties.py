"""Property-based tests for the parsers dockfix owns: for any input they return a value or raise
CheckError with a one-line message naming the file — nothing else escapes — and round trips
hold where a format has one (what we write, we read back the same)."""

from __future__ import annotations

import json
import shlex

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dockfix.daemon_config import BOOL_KEYS, LIST_KEYS, STRING_KEYS, parse_daemon_json, parse_env_file, parse_flags
from dockfix.model import CheckError

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

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
