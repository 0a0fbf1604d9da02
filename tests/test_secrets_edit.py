"""The compose edit of the secrets fix: only the lines that must change do, whatever the layout."""

from __future__ import annotations

import difflib

import pytest

from dockfix.fixes import ManualFix
from dockfix.fixes.compose_secrets import (
    Conversion,
    convert,
    dotenv_without,
)
from dockfix.sources.image_recipes import (
    FileEnv,
    MyCnf,
    RecipeError,
    mycnf,
    recipe_for,
    repository,
)
from dockfix.sources.secrets import mask_dotenv, mask_yaml
from dockfix.sources.yaml_edit import plain

PW = "Canary-7f3a9"


def conv(text: str, *convs: tuple[str, str], env: dict | None = None, others=()):
    return convert(text, "/srv/app/compose.yaml", env or {}, [Conversion(s, v, f"{s}_{v}") for s, v in convs],
                   list(others))


def touched(before: str, after: str) -> set[int]:
    """1-based lines of ``before`` that the edit replaced or deleted."""
    a, b = before.splitlines(keepends=True), after.splitlines(keepends=True)
    out: set[int] = set()
    for tag, i1, i2, _, _ in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag in ("replace", "delete"):
            out.update(range(i1 + 1, i2 + 1))
    return out


MAPPING = f"""# Production stack -- keep this comment
version: "3.8"

x-logging: &logging          # an anchor elsewhere in the file
  driver: json-file

services:
  app:   # the web app
    image: dockfix-test/busybox:latest
    command: sh -c 'cat /run/secrets/app_DB_PASSWORD; sleep 1000'
    logging: *logging
    environment:
      TZ: "Europe/Paris"     # quoted on purpose
      DB_PASSWORD: '{PW}'   # set by ops
      DB_HOST: db
    ports:
      - "8080:80"          # flow of comments

  db:
    image: mysql:8.0
    environment:
    - MYSQL_DATABASE=app
    - "MYSQL_ROOT_PASSWORD={PW}"
    volumes: [ "data:/var/lib/mysql" ]

volumes:
  data: {{}}
# the end
"""


def test_mapping_and_list_forms_change_only_their_lines():
    out = conv(MAPPING, ("app", "DB_PASSWORD"), ("db", "MYSQL_ROOT_PASSWORD"))
    after = out.compose_after
    lines = MAPPING.splitlines()
    assert touched(MAPPING, after) == {lines.index(f"      DB_PASSWORD: '{PW}'   # set by ops") + 1,
                                       lines.index(f'    - "MYSQL_ROOT_PASSWORD={PW}"') + 1}
    assert "      DB_PASSWORD_FILE: '/run/secrets/app_DB_PASSWORD'   # set by ops\n" in after
    assert '    - "MYSQL_ROOT_PASSWORD_FILE=/run/secrets/db_MYSQL_ROOT_PASSWORD"\n' in after
    assert PW not in after
    assert out.secret_files == {"app_DB_PASSWORD": PW.encode(), "db_MYSQL_ROOT_PASSWORD": PW.encode()}
    data = plain(after, "x")
    assert data["services"]["app"]["secrets"] == ["app_DB_PASSWORD"]
    assert data["services"]["db"]["secrets"] == ["db_MYSQL_ROOT_PASSWORD"]
    assert data["secrets"] == {"app_DB_PASSWORD": {"file": "./secrets/app_DB_PASSWORD"},
                               "db_MYSQL_ROOT_PASSWORD": {"file": "./secrets/db_MYSQL_ROOT_PASSWORD"}}
    # the list of the non-indented sequence style is followed for the new key
    assert "    secrets:\n    - db_MYSQL_ROOT_PASSWORD\n" in after
    assert after.endswith("# the end\nsecrets:\n  app_DB_PASSWORD:\n    file: ./secrets/app_DB_PASSWORD\n"
                          "  db_MYSQL_ROOT_PASSWORD:\n    file: ./secrets/db_MYSQL_ROOT_PASSWORD\n")
    assert out.unknown_image  # busybox: the notes say what the application must do
    assert any("must now read its password from the file /run/secrets/app_DB_PASSWORD" in n for n in out.notes)


@pytest.mark.parametrize("env_text,expect", [
    (f"environment: {{TZ: UTC, DB_PASSWORD: {PW}}}", "environment: {TZ: UTC, DB_PASSWORD_FILE: /run/secrets/app_DB_PASSWORD}"),
    (f'environment: [TZ=UTC, "DB_PASSWORD={PW}"]', 'environment: [TZ=UTC, "DB_PASSWORD_FILE=/run/secrets/app_DB_PASSWORD"]'),
    (f"environment: [DB_PASSWORD={PW}]", "environment: [DB_PASSWORD_FILE=/run/secrets/app_DB_PASSWORD]"),
])
def test_flow_styles(env_text, expect):
    text = f"services:\n  app:\n    image: postgres:16\n    {env_text}\n    secrets: []\n"
    # postgres does not read DB_PASSWORD_FILE: still converted, the app is told
    after = conv(text, ("app", "DB_PASSWORD")).compose_after
    assert after == f"services:\n  app:\n    image: postgres:16\n    {expect}\n    secrets: [app_DB_PASSWORD]\n" \
                    "secrets:\n  app_DB_PASSWORD:\n    file: ./secrets/app_DB_PASSWORD\n"


def test_four_space_indent_crlf_no_final_newline_and_bom():
    text = ("\ufeffservices:\r\n    web:\r\n        image: wordpress:6\r\n        environment:\r\n"
            f"            WORDPRESS_DB_PASSWORD: {PW}\r\n        secrets:\r\n            - old\r\n"
            "secrets:\r\n    old:\r\n        file: ./old.txt")
    out = conv(text, ("web", "WORDPRESS_DB_PASSWORD"))
    assert out.compose_after == (
        "\ufeffservices:\r\n    web:\r\n        image: wordpress:6\r\n        environment:\r\n"
        "            WORDPRESS_DB_PASSWORD_FILE: /run/secrets/web_WORDPRESS_DB_PASSWORD\r\n        secrets:\r\n"
        "            - old\r\n            - web_WORDPRESS_DB_PASSWORD\r\n"
        "secrets:\r\n    old:\r\n        file: ./old.txt\r\n"
        "    web_WORDPRESS_DB_PASSWORD:\r\n        file: ./secrets/web_WORDPRESS_DB_PASSWORD\r\n")
    assert not out.unknown_image


def test_block_scalar_after_environment_and_version_3_0_is_raised():
    text = (f"version: '3'\nservices:\n  app:\n    image: mongo:7\n    environment:\n"
            f"      MONGO_INITDB_ROOT_PASSWORD: {PW}\n    command: |\n      mongod --auth\n\n"
            "  other:\n    image: x\n")
    after = conv(text, ("app", "MONGO_INITDB_ROOT_PASSWORD")).compose_after
    assert after.startswith("version: '3.1'\n")
    assert touched(text, after) == {1, 6}
    assert plain(after, "x")["services"]["app"]["command"] == "mongod --auth\n"


def test_mysqld_exporter_gets_an_option_file_and_the_flag():
    text = ("services:\n  exporter:\n    image: prom/mysqld-exporter:v0.14.0\n    environment:\n"
            f"      - DATA_SOURCE_NAME=exporter:{PW}@(db:3306)/\n      - TZ=UTC\n"
            "    command: [\"--collect.info_schema.tables\"]   # keep\n")
    out = conv(text, ("exporter", "DATA_SOURCE_NAME"))
    assert out.secret_files["exporter_DATA_SOURCE_NAME"] == \
        f"[client]\nuser=exporter\npassword={PW}\nhost=db\nport=3306\n".encode()
    assert ('    command: ["--collect.info_schema.tables", '
            '"--config.my-cnf=/run/secrets/exporter_DATA_SOURCE_NAME"]   # keep\n') in out.compose_after
    assert PW not in out.compose_after
    assert touched(text, out.compose_after) == {5, 7}


def test_mysqld_exporter_without_command_and_only_variable():
    text = ("services:\n  exporter:\n    image: quay.io/prometheus/mysqld-exporter\n    environment:\n"
            f"      MYSQLD_EXPORTER_PASSWORD: {PW}\n    ports: ['9104:9104']\n")
    out = conv(text, ("exporter", "MYSQLD_EXPORTER_PASSWORD"))
    assert out.compose_after == (
        "services:\n  exporter:\n    image: quay.io/prometheus/mysqld-exporter\n"
        "    secrets:\n      - exporter_MYSQLD_EXPORTER_PASSWORD\n    command:\n"
        "      - \"--config.my-cnf=/run/secrets/exporter_MYSQLD_EXPORTER_PASSWORD\"\n"
        "    ports: ['9104:9104']\nsecrets:\n  exporter_MYSQLD_EXPORTER_PASSWORD:\n"
        "    file: ./secrets/exporter_MYSQLD_EXPORTER_PASSWORD\n")
    assert out.secret_files["exporter_MYSQLD_EXPORTER_PASSWORD"] == f"[client]\npassword={PW}\n".encode()


def test_mysqld_exporter_string_command():
    text = ("services:\n  e:\n    image: prom/mysqld-exporter\n    command: --web.listen-address=:9104\n"
            f"    environment: {{DATA_SOURCE_NAME: 'u:{PW}@tcp(db:3306)/'}}\n")
    out = conv(text, ("e", "DATA_SOURCE_NAME"))
    assert plain(out.compose_after, "x")["services"]["e"]["command"] == \
        "--web.listen-address=:9104 --config.my-cnf=/run/secrets/e_DATA_SOURCE_NAME"


def test_value_from_dotenv_is_taken_out_when_nothing_else_uses_it():
    text = "services:\n  db:\n    image: mariadb:11\n    environment:\n      MARIADB_ROOT_PASSWORD: ${ROOT_PW}\n"
    out = conv(text, ("db", "MARIADB_ROOT_PASSWORD"), env={"ROOT_PW": PW})
    assert out.secret_files["db_MARIADB_ROOT_PASSWORD"] == PW.encode()
    assert out.dotenv_remove == ["ROOT_PW"]
    # another file of the folder still interpolates it: kept
    out = conv(text, ("db", "MARIADB_ROOT_PASSWORD"), env={"ROOT_PW": PW}, others=["x: ${ROOT_PW:-no}"])
    assert out.dotenv_remove == []
    assert dotenv_without(f"# c\nA=1\nROOT_PW={PW}\nexport B=2\n", ["ROOT_PW"]) == "# c\nA=1\nexport B=2\n"


@pytest.mark.parametrize("text,why", [
    ("services:\n  a:\n    image: x\n    environment: &e\n      P: v\n  b:\n    image: x\n    environment: *e\n",
     "shared through a YAML anchor"),
    ("x: &e {P: v}\nservices:\n  a:\n    image: x\n    environment:\n      <<: *e\n      Q: w\n", "merge key"),
    ("services:\n  a:\n    image: x\n    environment:\n      P: |\n        multi\n        line\n", "several lines"),
    ("services:\n  a:\n    image: x\n    environment:\n      - P\n", "shell that runs compose"),
    ("a:\n  image: x\n  environment:\n    P: v\n", "format 1"),
    ("services:\n  a:\n    image: x\n    environment:\n      P: v\n      P_FILE: /x\n", "already sets P_FILE"),
    ("services:\n  a:\n    image: x\n    environment: {P: v}\nsecrets: {}\n", "not a block mapping"),
])
def test_refuses_what_it_cannot_edit_safely(text, why):
    with pytest.raises(ManualFix, match=why) as e:
        conv(text, ("a", "P"))
    assert "v" not in str(e.value).replace("environment", "").replace("service", "") or why


def test_masking_hides_values_in_every_form():
    masked = mask_yaml(MAPPING.replace("logging: *logging", "logging: *logging\n    healthcheck: "
                                       f"['CMD', 'mysql://u:{PW}@db/x']"))
    assert PW not in masked
    assert "DB_PASSWORD: <secret, 12 bytes>   # set by ops" in masked
    assert "TZ: \"Europe/Paris\"" in masked
    exporter = f"services:\n  e:\n    environment:\n      - DATA_SOURCE_NAME=u:{PW}@(db:3306)/\n"
    assert PW not in mask_yaml(exporter)
    assert mask_dotenv(f"# note\nROOT_PW={PW}\nexport X='{PW}'\n") == \
        "# note\nROOT_PW=<secret, 12 bytes>\nexport X=<secret, 14 bytes>\n"


def test_image_table():
    assert repository("docker.io/library/mysql:8.0@sha256:ab") == "mysql"
    assert repository("localhost:5000/team/app:1") == "team/app"
    assert recipe_for("mysql", "MYSQL_PASSWORD") == FileEnv("_FILE")
    assert recipe_for("grafana/grafana:10", "GF_SECURITY_ADMIN_PASSWORD") == FileEnv("__FILE")
    assert isinstance(recipe_for("prom/mysqld-exporter:v0.15.1", "DATA_SOURCE_NAME"), MyCnf)
    assert recipe_for("redis:7", "REDIS_PASSWORD") is None
    assert recipe_for("mysql", "DB_PASSWORD") is None
    with pytest.raises(RecipeError) as e:
        mycnf("MYSQLD_EXPORTER_PASSWORD", "a$b")
    assert "a$b" not in str(e.value)


# ---------------------------------------------------------------------- generated layouts
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@st.composite
def layouts(draw):
    ind = " " * draw(st.sampled_from([2, 4]))
    dash = draw(st.sampled_from(["", ind]))  # sequences flush with their key, or indented
    nl = draw(st.sampled_from(["\n", "\r\n"]))
    comment = draw(st.sampled_from(["", "   # a comment", "  #x"]))
    quote = draw(st.sampled_from(["", "'", '"']))
    form = draw(st.sampled_from(["map", "list", "flowmap", "flowlist"]))
    svc_secrets = draw(st.sampled_from(["none", "block", "flow", "empty"]))
    top = draw(st.sampled_from(["none", "before", "after"]))
    others = draw(st.lists(st.sampled_from(["TZ", "LANG", "DB_HOST"]), unique=True, max_size=3))
    before_extra = draw(st.booleans())
    blank = draw(st.booleans())
    final_nl = draw(st.booleans())
    pw = "Gen" + draw(st.text("abcdefXYZ0123456789-_.", min_size=6, max_size=12))
    val = f"{quote}{pw}{quote}"
    env = []
    if form == "map":
        env = [f"{ind * 2}environment:{comment}"] + [f"{ind * 3}{o}: x{comment}" for o in others[:1]] + \
              [f"{ind * 3}DB_PASSWORD: {val}{comment}"] + [f"{ind * 3}{o}: y" for o in others[1:]]
    elif form == "list":
        q = quote
        env = [f"{ind * 2}environment:"] + [f"{ind * 2}{dash}- {o}=x" for o in others[:1]] + \
              [f"{ind * 2}{dash}- {q}DB_PASSWORD={pw}{q}{comment}"] + [f"{ind * 2}{dash}- {o}=y" for o in others[1:]]
    elif form == "flowmap":
        items = [f"{o}: x" for o in others] + [f"DB_PASSWORD: {val}"]
        env = [f"{ind * 2}environment: {{{', '.join(items)}}}{comment}"]
    else:
        items = [f"{o}=x" for o in others] + [f"{quote}DB_PASSWORD={pw}{quote}"]
        env = [f"{ind * 2}environment: [{', '.join(items)}]{comment}"]
    sec = {"none": [], "block": [f"{ind * 2}secrets:", f"{ind * 2}{dash}- old"], "flow": [f"{ind * 2}secrets: [old]"],
           "empty": [f"{ind * 2}secrets: []"]}[svc_secrets]
    lines = ["# generated", "services:", f"{ind}app:{comment}", f"{ind * 2}image: mysql:8"]
    if before_extra:
        lines += [f"{ind * 2}command: |", f"{ind * 3}run", ""]
    body = env + sec + ([f"{ind * 2}ports: [\"80:80\"]"] if draw(st.booleans()) else [])
    if draw(st.booleans()):
        body = sec + env + body[len(env) + len(sec):]
    lines += body
    if blank:
        lines.append("")
    lines += [f"{ind}other:", f"{ind * 2}image: x"]
    top_lines = ["secrets:", f"{ind}old:", f"{ind * 2}file: ./old"]
    if top == "before":
        lines = top_lines + lines
    elif top == "after":
        lines = lines + top_lines
    text = nl.join(lines) + (nl if final_nl else "")
    return text, pw, nl


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layouts())
def test_generated_layouts_change_only_what_they_must(case):
    text, pw, nl = case
    out = convert(text, "/g/compose.yaml", {}, [Conversion("app", "DB_PASSWORD", "app_DB_PASSWORD")])
    after = out.compose_after
    assert pw not in after
    assert out.secret_files == {"app_DB_PASSWORD": pw.encode()}
    # only the line holding the variable (or, in flow style, the line with the secrets list) changes
    allowed = {i + 1 for i, ln in enumerate(text.splitlines()) if "DB_PASSWORD" in ln or "secrets: [" in ln}
    if not text.endswith("\n"):
        allowed.add(len(text.splitlines()))  # it gets the line break it lacked, and nothing else
    assert touched(text, after) <= allowed
    data = plain(after, "x")
    app = data["services"]["app"]
    env = app["environment"]
    assert (env.get("DB_PASSWORD_FILE") if isinstance(env, dict) else
            next(e for e in env if e.startswith("DB_PASSWORD_FILE="))[len("DB_PASSWORD_FILE="):]) == \
        "/run/secrets/app_DB_PASSWORD"
    assert app["secrets"][-1] == "app_DB_PASSWORD"
    assert data["secrets"]["app_DB_PASSWORD"] == {"file": "./secrets/app_DB_PASSWORD"}
    assert data["services"]["other"] == {"image": "x"}
    if "\r\n" in text:
        assert "\n" not in after.replace("\r\n", "")
