"""Untrusted input: loaders either parse or raise a one-line CheckError; secret values never leak."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockfix.sources.compose import parse_compose, parse_dotenv
from dockfix.sources.dockerfile import parse_dockerfile
from dockfix.host import Host
from dockfix.model import CheckError
from dockfix.report import render_json, render_sarif, render_text
from dockfix.scan import Context, scan
from helpers import put

YAMLISH = st.text(alphabet=string.ascii_letters + string.digits + " :-[]{}&*!|>'\"#$%\n\t,.=", max_size=300)
DOCKERISH = st.text(alphabet=string.ascii_letters + string.digits + " \\`#<>-=\"'[],.\n\t", max_size=300)


@settings(max_examples=300, deadline=None)
@given(YAMLISH)
def test_compose_loader_parses_or_raises_one_line_error(text):
    try:
        cf = parse_compose(text, "/srv/c.yaml")
        for svc in cf.services.values():
            svc.environment  # noqa: B018  (walks the values)
    except CheckError as e:
        msg = str(e)
        assert msg.startswith("/srv/c.yaml: ") and "\n" not in msg


@settings(max_examples=300, deadline=None)
@given(DOCKERISH)
def test_dockerfile_parser_parses_or_raises_one_line_error(text):
    try:
        for ins in parse_dockerfile(text, "/src/Dockerfile"):
            assert 1 <= ins.line <= ins.end_line
            ins.words()
            ins.key_values()
    except CheckError as e:
        assert str(e).startswith("/src/Dockerfile: ") and "\n" not in str(e)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_dotenv_parser_never_echoes_a_value(text):
    try:
        parse_dotenv(text, "/p/.env")
    except CheckError as e:
        msg = str(e)
        assert msg.startswith("/p/.env: line ") and "\n" not in msg
        # the message names at most the variable, never what follows the "="
        for line in text.splitlines():
            if "=" in line:
                value = line.split("=", 1)[1].strip().strip("'\"")
                if len(value) >= 6:
                    assert value not in msg


# A secret is random text with at least one digit and one letter in a mix no report wording could
# contain by chance (a pure word such as "environmen" would be found in the prose itself).
SECRET = st.text(alphabet=string.ascii_letters + string.digits + "!%^()_+", min_size=10, max_size=30).filter(
    lambda s: any(c.isdigit() for c in s) and any(c.isalpha() for c in s) and not s.isalpha()
    and sum(c.isupper() for c in s) >= 2)
NAMES = st.sampled_from(["MYSQL_ROOT_PASSWORD", "API_TOKEN", "DB_PASS", "JWT_SECRET", "STRIPE_API_KEY"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(secret=SECRET, name=NAMES, via_env=st.booleans(), as_list=st.booleans())
def test_secret_values_appear_in_no_report(tmp_path_factory, secret, name, via_env, as_list):
    root = tmp_path_factory.mktemp("leak")
    value = "${THE_SECRET}" if via_env else secret
    if as_list:
        env = f"      - {name}={value}\n      - URL=https://user:{value}@example.com/x\n"
    else:
        env = f"      {name}: '{value}'\n      URL: 'https://user:{value}@example.com/x'\n"
    put(root, "srv/app/compose.yaml", f"services:\n  app:\n    image: a\n    environment:\n{env}")
    put(root, "srv/app/.env", f"THE_SECRET='{secret}'\n")
    put(root, "src/Dockerfile", f"FROM a\nENV {name}={secret}\nARG X={secret}\n")
    ctx = Context(Host(str(root), engine=False), paths=["/srv/app", "/src"])
    result = scan(ctx, only=["env-password", "sensitive-file-in-image"])
    statuses = {f.id: str(f.status) for f in result.findings}
    assert statuses == {"env-password": "fail", "sensitive-file-in-image": "fail"}, statuses
    for out in (render_text(result.findings, result.host, verbose=True), render_json(result.findings, result.host),
                render_sarif(result.findings, result.host), repr(result.findings)):
        assert secret not in out
