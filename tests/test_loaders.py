"""The compose, Dockerfile and secret-name helpers shared by checks and fixes."""

from __future__ import annotations

import time

import pytest

from dockfix.sources.compose import find_compose_files, interpolate, load_compose, parse_compose, parse_dotenv
from dockfix.sources.dockerfile import find_dockerfiles, parse_dockerfile
from dockfix.host import Host
from dockfix.model import CheckError
from dockfix.scan import Context
from dockfix.sources.secrets import has_url_credentials, is_secret_name
from helpers import put

COMPOSE = """\
# the shop
services:
  db:
    image: mysql:8   # pinned later
    environment:
      MYSQL_ROOT_PASSWORD: hunter2
      MYSQL_DATABASE: shop
      MYSQL_PASSWORD: ${DB_PASS}
      EMPTY:
  app:
    image: ${APP_IMAGE:-shop/app:latest}
    environment:
      - DATABASE_URL=mysql://shop:${DB_PASS}@db/shop
      - DEBUG=false
      - FROM_SHELL
    privileged: true
"""


def test_compose_services_environment_and_lines(tmp_path):
    put(tmp_path, "srv/shop/compose.yaml", COMPOSE)
    put(tmp_path, "srv/shop/.env", "# secrets\nDB_PASS='s3cr3t'\nexport OTHER=x # comment\n")
    cf = load_compose(Host(str(tmp_path), engine=False), "/srv/shop/compose.yaml")
    assert list(cf.services) == ["db", "app"]
    db, app = cf.services["db"], cf.services["app"]
    assert db.image == "mysql:8" and db.line == 3
    env = {e.name: e for e in db.environment}
    root = env["MYSQL_ROOT_PASSWORD"]
    assert (root.value, root.line, root.from_interpolation, root.source) == ("hunter2", 6, None, "literal")
    pw = env["MYSQL_PASSWORD"]
    assert (pw.value, pw.line, pw.from_interpolation, pw.source) == ("s3cr3t", 8, "DB_PASS", ".env")
    assert env["EMPTY"].value is None and env["EMPTY"].source == "unset"
    assert "hunter2" not in repr(root) and "s3cr3t" not in repr(pw)
    assert app.image == "shop/app:latest"
    aenv = {e.name: e for e in app.environment}
    assert aenv["DATABASE_URL"].value == "mysql://shop:s3cr3t@db/shop" and aenv["DATABASE_URL"].line == 13
    assert aenv["FROM_SHELL"].value is None and aenv["FROM_SHELL"].line == 15
    assert app.get("privileged") is True and app.line_of("privileged") == 16
    assert db.line_of("environment", "MYSQL_DATABASE") == 7
    assert db.line_of("environment", "NOPE") == 5  # nearest enclosing key


def test_compose_round_trip_keeps_comments_and_order(tmp_path):
    cf = parse_compose(COMPOSE, "/x/compose.yaml")
    cf.services["app"].raw["privileged"] = False
    text = cf.dump()
    assert "# the shop" in text and "# pinned later" in text
    assert text.replace("privileged: false", "privileged: true") == COMPOSE


@pytest.mark.parametrize("text,msg", [
    ("services:\n  db: [1,\n", "line 3"),
    ("services:\n  db:\n    image: a\n  db:\n    image: b\n", "line 4"),
    ("- a\n- b\n", "must be a mapping"),
    ("services: [a]\n", "services must be a mapping"),
    ("services:\n  db: 3\n", "service 'db' must be a mapping"),
])
def test_compose_malformed_names_file_and_line(text, msg):
    with pytest.raises(CheckError) as e:
        parse_compose(text, "/srv/compose.yaml")
    assert str(e.value).startswith("/srv/compose.yaml: ") and msg in str(e.value)
    assert "\n" not in str(e.value)


def test_compose_alias_bomb_is_refused_quickly():
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [{','.join('*' + prev for _ in range(9))}]")
    lines.append("services:\n  x:\n    environment: *j")
    t0 = time.monotonic()
    with pytest.raises(CheckError, match="alias bomb"):
        parse_compose("\n".join(lines) + "\n", "/bomb.yaml")
    assert time.monotonic() - t0 < 5


def test_compose_self_referencing_alias_is_refused():
    with pytest.raises(CheckError, match="refers to a node that contains it"):
        parse_compose("services: &s\n  x:\n    labels: *s\n", "/r.yaml")


def test_compose_giant_file_is_refused(tmp_path):
    put(tmp_path, "big/compose.yaml", "services: {}\n" + "# pad\n" * 600_000)
    with pytest.raises(CheckError, match="too large"):
        load_compose(Host(str(tmp_path), engine=False), "/big/compose.yaml")


def test_compose_format_1_and_merge_keys():
    cf = parse_compose("web:\n  image: nginx\n  environment:\n    API_KEY: k\n", "/v1.yml")
    assert cf.services["web"].environment[0].name == "API_KEY"
    cf = parse_compose("x-env: &env\n  TOKEN: t\nservices:\n  a:\n    environment:\n      <<: *env\n      B: b\n", "/m.yml")
    env = {e.name: e for e in cf.services["a"].environment}
    assert env["TOKEN"].value == "t" and env["TOKEN"].line == 2 and env["B"].line == 7


@pytest.mark.parametrize("text,env,value,used,source", [
    ("plain", {}, "plain", [], "literal"),
    ("$$HOME", {}, "$HOME", [], "literal"),
    ("${A}", {"A": "1"}, "1", ["A"], ".env"),
    ("$A-x", {"A": "1"}, "1-x", ["A"], ".env"),
    ("${A:-d}", {"A": ""}, "d", ["A"], "default"),
    ("${A-d}", {"A": ""}, "", ["A"], ".env"),
    ("${A:-${B:-deep}}", {}, "deep", ["A", "B"], "default"),
    ("${A:+yes}", {"A": "1"}, "yes", ["A"], ".env"),
    ("${A:+yes}", {}, "", ["A"], "literal"),
    ("${MISSING}", {}, None, ["MISSING"], "unset"),
    ("${A:?need A}", {"A": "v"}, "v", ["A"], ".env"),
])
def test_interpolation(text, env, value, used, source):
    assert interpolate(text, env) == (value, used, source)


def test_dotenv_errors_name_the_line_not_the_value():
    with pytest.raises(CheckError) as e:
        parse_dotenv("A=1\nB='unterminated secretvalue\n", "/p/.env")
    assert str(e.value) == "/p/.env: line 2: unterminated quoted value of B"
    env, lines = parse_dotenv('A="x \\"y\\""\nB=2 # c\n', "/p/.env")
    assert env == {"A": 'x "y"', "B": "2"} and lines == {"A": 1, "B": 2}


def test_find_compose_and_dockerfiles_under_path(tmp_path):
    for rel in ("app/compose.yaml", "app/docker-compose.yml", "app/prod.compose.yml", "app/notes.yml",
                "app/Dockerfile", "app/Dockerfile.dev", "app/api.Dockerfile", "app/Containerfile",
                "app/sub/Dockerfile", "app/Dockerfile.md.bak~", "app/.git/Dockerfile"):
        put(tmp_path, rel, "services: {}\n")
    ctx = Context(Host(str(tmp_path), engine=False), paths=["/app"])
    assert find_compose_files(ctx) == ["/app/compose.yaml", "/app/docker-compose.yml", "/app/prod.compose.yml"]
    assert find_dockerfiles(ctx) == ["/app/Containerfile", "/app/Dockerfile", "/app/Dockerfile.dev",
                                     "/app/api.Dockerfile", "/app/sub/Dockerfile"]


DOCKERFILE = r"""# syntax=docker/dockerfile:1
# escape=`
FROM alpine:3.20 AS build
# a comment
RUN apk add `
    # comment inside the continuation
    curl `

    git
COPY --from=build --chown=app:app /src/.env /app/
RUN --mount=type=secret,id=npm --mount=type=cache,target=/c npm ci
COPY <<EOF /etc/motd
hello
EOF
RUN <<-A cat > /x && <<"B" cat > /y
	one
	A
two
B
ENV A=1 B="two words"
ENV OLD style value
ARG TOKEN
CMD ["sh", "-c", "echo hi"]
"""


def test_dockerfile_parser():
    ins = parse_dockerfile(DOCKERFILE, "/app/Dockerfile")
    assert [(i.cmd, i.line, i.end_line) for i in ins] == [
        ("FROM", 3, 3), ("RUN", 5, 9), ("COPY", 10, 10), ("RUN", 11, 11), ("COPY", 12, 14),
        ("RUN", 15, 19), ("ENV", 20, 20), ("ENV", 21, 21), ("ARG", 22, 22), ("CMD", 23, 23)]
    assert ins[1].args == "apk add curl git"
    assert ins[2].flags == {"from": "build", "chown": "app:app"} and ins[2].words() == ["/src/.env", "/app/"]
    assert [f for f in ins[3].all_flags if f[0] == "mount"] == [("mount", "type=secret,id=npm"), ("mount", "type=cache,target=/c")]
    assert ins[4].heredocs[0].body == "hello\n" and ins[4].heredocs[0].line == 13
    assert [(h.name, h.body, h.expand) for h in ins[5].heredocs] == [("A", "one\n", True), ("B", "two\n", False)]
    assert ins[6].key_values() == [("A", "1"), ("B", "two words")]
    assert ins[7].key_values() == [("OLD", "style value")]
    assert ins[8].key_values() == [("TOKEN", None)]
    assert ins[9].json == ["sh", "-c", "echo hi"]


def test_dockerfile_backslash_continuation_and_errors():
    ins = parse_dockerfile("FROM a\nRUN echo a \\\n  && echo b\n", "/D")
    assert ins[1].args == "echo a && echo b" and (ins[1].line, ins[1].end_line) == (2, 3)
    with pytest.raises(CheckError, match=r"^/D: line 2: heredoc <<EOF is not terminated$"):
        parse_dockerfile("FROM a\nRUN <<EOF\necho\n", "/D")
    with pytest.raises(CheckError, match=r"^/D: line 2, column 1: not a Dockerfile instruction \(a line continued after the last one\?\)$"):
        parse_dockerfile("FROM a\nü b\n", "/D")


@pytest.mark.parametrize("name", [
    "MYSQL_ROOT_PASSWORD", "POSTGRES_PASSWORD", "PGPASSWORD", "DB_PASSWD", "DB_PWD", "SMTP_PASS", "JWT_SECRET",
    "AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "npmToken", "STRIPE_API_KEY", "APIKEY", "SSH_PRIVATE_KEY",
    "GOOGLE_APPLICATION_CREDENTIALS_JSON", "REGISTRY_HTTP_SECRET", "REGISTRY_STORAGE_S3_SECRETKEY",
    "SECRET_KEY_BASE", "DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", "db.password", "ACCESS_TOKEN", "AUTH_TOKENS",
])
def test_secret_names(name):
    assert is_secret_name(name)


@pytest.mark.parametrize("name", [
    "PWD", "OLDPWD", "PATH", "HOME", "MYSQL_PASSWORD_FILE", "POSTGRES_PASSWORD_FILE", "SSL_PRIVATE_KEY_PATH",
    "MYSQL_ALLOW_EMPTY_PASSWORD", "MYSQL_RANDOM_ROOT_PASSWORD", "AWS_ACCESS_KEY_ID", "TOKENIZER_MODEL",
    "SECRETARY", "PASSWORD_MIN_LENGTH", "OAUTH_TOKEN_URL", "PASS_THROUGH", "KEYCLOAK_ADMIN", "DB_USER",
])
def test_not_secret_names(name):
    assert not is_secret_name(name)


@pytest.mark.parametrize("value,expected", [
    ("postgres://app:s3cret@db:5432/app", True),
    ("mysql://shop:${DB_PASS}@db/shop", True),
    ("redis://:p4ss@cache:6379/0", True),
    ("amqp://guest:guest@rabbit//", True),
    ("shop:pw@tcp(db:3306)/shop", True),
    ("Server=db;User Id=sa;Password=Str0ng!;", True),
    ("host=db user=app password=x dbname=app", True),
    ("postgres://app@db/app", False),
    ("postgres://app:@db/app", False),
    ("https://example.com/a:b@c", False),
    ("http://db:5432/x", False),
    ("plain text", False),
])
def test_url_credentials(value, expected):
    assert has_url_credentials(value) is expected


def test_compose_round_trip_with_four_space_indentation():
    text = "services:\n    web:\n        image: nginx\n        ports:\n          - \"80:80\"\n        cap_add: [ALL]  # why\n"
    cf = parse_compose(text, "/c.yml")
    assert cf.dump() == text
