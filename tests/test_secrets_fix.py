"""The env-password and registry fixes, end to end: compose files, stacks and swarm services.

Compose trees live under a temporary --root; swarm work happens on the private swarm engine.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import stat
from pathlib import Path

import pytest
from helpers import BUSYBOX_IMAGE, by_id, manifest, put, run_dockfix, scan_json, service_secret, wait_until

APP = "/srv/app"


def compose_tree(root: Path, pw: str, env_pw: str, dsn_pw: str, git: bool = True) -> Path:
    put(root, f"{APP}/compose.yaml", f"""# Our stack -- reviewed by ops
services:
  app:   # the web app
    image: {BUSYBOX_IMAGE}
    user: "1000:1000"
    command: ["sh", "-c", "cat /run/secrets/app_DB_PASSWORD; echo; sleep 1000"]
    environment:
      TZ: "Europe/Paris"      # keep this
      DB_PASSWORD: '{pw}'    # the database password
      DB_HOST: db
  db:
    image: mysql:8.0
    environment:
      - MYSQL_DATABASE=app
      - MYSQL_ROOT_PASSWORD=${{ROOT_PW}}
  exporter:
    image: prom/mysqld-exporter:v0.14.0
    environment: {{DATA_SOURCE_NAME: "exporter:{dsn_pw}@(db:3306)/"}}
    ports: ["9104:9104"]
""", owner=(1000, 1000))
    put(root, f"{APP}/.env", f"# settings\nROOT_PW={env_pw}\nCOMPOSE_PROJECT_NAME=app\n", mode=0o600, owner=(1000, 1000))
    if git:
        put(root, f"{APP}/.git/HEAD", "ref: refs/heads/main\n")
    return root / APP.strip("/")


def apply(root: Path, *extra: str) -> object:
    r = run_dockfix("--apply", "--yes", "--include-disruptive", "--root", str(root), "--only", "env-password", *extra)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def test_compose_fix_moves_every_password_and_rolls_back_byte_for_byte(tmp_path):
    pw, env_pw, dsn_pw = "Lit-7c1e2d", "Env-93ab5f", "Dsn-55e0aa"
    app = compose_tree(tmp_path, pw, env_pw, dsn_pw)
    before = manifest(tmp_path)
    original = (app / "compose.yaml").read_text()
    doc = scan_json(tmp_path, "--no-engine", "--path", APP, "--only", "env-password")
    assert {f["subject"] for f in by_id(doc, "env-password") if f["status"] == "fail"} == \
        {f"compose:{APP}/compose.yaml#{s}" for s in ("app", "db", "exporter")}

    apply(tmp_path, "--no-engine", "--path", APP)
    text = (app / "compose.yaml").read_text()
    for value in (pw, env_pw, dsn_pw):
        assert value not in text
    # secret files: beside the compose file, root-owned, group of the container's user, 0640; the folder 0700
    secrets = app / "secrets"
    st = os.stat(secrets)
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o700, 1000, 1000)
    for name, content, gid in [("app_DB_PASSWORD", pw, 1000), ("db_MYSQL_ROOT_PASSWORD", env_pw, 999),
                               ("exporter_DATA_SOURCE_NAME",
                                f"[client]\nuser=exporter\npassword={dsn_pw}\nhost=db\nport=3306\n", 65534)]:
        f = secrets / name
        assert f.read_text() == content
        st = os.stat(f)
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o640, 0, gid)
    # the exporter reads the option file; the others point at theirs
    assert 'DB_PASSWORD_FILE: \'/run/secrets/app_DB_PASSWORD\'    # the database password\n' in text
    assert "      - MYSQL_ROOT_PASSWORD_FILE=/run/secrets/db_MYSQL_ROOT_PASSWORD\n" in text
    assert '- "--config.my-cnf=/run/secrets/exporter_DATA_SOURCE_NAME"' in text
    # every line that did not need to change is unchanged, comments included
    old_lines = original.splitlines()
    changed = set()
    for tag, i1, i2, _, _ in difflib.SequenceMatcher(None, old_lines, text.splitlines(), autojunk=False).get_opcodes():
        if tag in ("replace", "delete"):
            changed.update(old_lines[i1:i2])
    assert changed == {f"      DB_PASSWORD: '{pw}'    # the database password",
                       "      - MYSQL_ROOT_PASSWORD=${ROOT_PW}",
                       f'    environment: {{DATA_SOURCE_NAME: "exporter:{dsn_pw}@(db:3306)/"}}'}
    # the .env line nothing else uses is gone, the rest kept byte for byte; .gitignore lists the files
    assert (app / ".env").read_text() == "# settings\nCOMPOSE_PROJECT_NAME=app\n"
    assert (app / ".gitignore").read_text() == ("# Docker secrets written by dockfix\n/secrets/app_DB_PASSWORD\n"
                                                "/secrets/db_MYSQL_ROOT_PASSWORD\n/secrets/exporter_DATA_SOURCE_NAME\n")
    # the journal keeps the before-images of files that held a password private
    jdir = tmp_path / "var/lib/dockfix/journal"
    for dirpath, dirnames, filenames in os.walk(jdir):
        assert stat.S_IMODE(os.stat(dirpath).st_mode) == 0o700, dirpath
        for n in filenames:
            assert stat.S_IMODE(os.stat(Path(dirpath) / n).st_mode) == 0o600, n
    doc = scan_json(tmp_path, "--no-engine", "--path", APP, "--only", "env-password")
    assert {f["status"] for f in by_id(doc, "env-password")} == {"pass"}

    r = run_dockfix("rollback", "--last", "--root", str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert {k: v for k, v in manifest(tmp_path).items() if not k.startswith("var")} == before
    assert (app / "compose.yaml").read_text() == original


def test_plain_container_is_manual_and_compose_container_fixes_its_file(engine, tmp_path):
    engine.cli("create", "--name", "plain", "-e", "API_TOKEN=Tok-1b2c3d", BUSYBOX_IMAGE, "sleep", "60")
    app = compose_tree(tmp_path, "Lit-000111", "Env-000222", "Dsn-000333", git=False)
    engine.cli("create", "--name", "app-app-1", "-e", "DB_PASSWORD=Lit-000111",
               "--label", f"com.docker.compose.project.config_files={APP}/compose.yaml",
               "--label", f"com.docker.compose.project.working_dir={APP}",
               "--label", "com.docker.compose.service=app", BUSYBOX_IMAGE, "sleep", "60")
    r = run_dockfix("plan", "--include-disruptive", "--root", str(tmp_path), "--docker-host", engine.url,
                    "--only", "env-password", "--format", "json")
    assert r.returncode == 0, r.stderr
    items = {it["subject"]: it for it in json.loads(r.stdout)["items"]}
    plain = items["container:plain"]
    assert plain["safety"] == "manual" and not plain["changes"]
    assert "cannot be changed in place" in plain["notes"][0] and "API_TOKEN" in plain["notes"][0]
    # the compose-made container's fix is the compose file's (planned once, from the file's own finding)
    assert items[f"compose:{APP}/compose.yaml#app"]["changes"]
    assert "container:app-app-1" not in items or not items["container:app-app-1"]["changes"]
    assert "Tok-1b2c3d" not in r.stdout and "Lit-000111" not in r.stdout
    assert (app / "compose.yaml").read_text().count("Lit-000111") == 1  # nothing applied



@pytest.mark.slow
def test_stack_reads_the_secret_after_the_fix(swarm_engine, tmp_path):
    pw = "Stack-4d5e6f"
    app = tmp_path / "srv/app"
    put(tmp_path, f"{APP}/compose.yaml", f"""services:
  app:
    image: {BUSYBOX_IMAGE}
    user: "0"   # without an engine to ask, dockfix only knows the user it is told (rescan: readable by it)
    command: sh -c 'cat /run/secrets/app_DB_PASSWORD; echo; sleep 1000'
    environment:
      DB_PASSWORD: "{pw}"   # moved by dockfix
""")
    original = (app / "compose.yaml").read_bytes()
    apply(tmp_path, "--no-engine", "--compose", f"{APP}/compose.yaml")
    r = swarm_engine.cli("stack", "deploy", "--resolve-image", "never", "-c", "compose.yaml", "app", cwd=str(app),
                         check=False)
    assert r.returncode == 0, r.stderr
    try:
        cid = wait_until("the stack's container", lambda: swarm_engine.cli(
            "ps", "-q", "--filter", "label=com.docker.swarm.service.name=app_app", "--filter", "status=running").stdout.strip())
    except AssertionError as e:
        tasks = swarm_engine.cli("service", "ps", "--no-trunc", "app_app", check=False)
        raise AssertionError(f"{e}: {tasks.stdout} {tasks.stderr}") from None
    assert swarm_engine.cli("exec", cid, "cat", "/run/secrets/app_DB_PASSWORD").stdout == pw
    env = json.loads(swarm_engine.cli("inspect", cid).stdout)[0]["Config"]["Env"]
    assert not any(e.startswith("DB_PASSWORD=") for e in env)
    assert "DB_PASSWORD_FILE=/run/secrets/app_DB_PASSWORD" in env
    assert pw not in json.dumps(env)
    swarm_engine.cli("stack", "rm", "app")
    r = run_dockfix("rollback", "--last", "--root", str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert (app / "compose.yaml").read_bytes() == original
    assert not (app / "secrets").exists()


def _service(engine, name):
    return json.loads(engine.cli("service", "inspect", name).stdout)[0]


@pytest.mark.slow
def test_swarm_service_gets_a_secret_and_rollback_restores_its_spec(swarm_engine, tmp_path):
    pw = "Svc-0a9b8c"
    swarm_engine.cli("tag", BUSYBOX_IMAGE, "mysql:8.0")
    swarm_engine.cli("service", "create", "-d", "--no-resolve-image", "--name", "db", "-e", f"MYSQL_PASSWORD={pw}",
                     "-e", "TZ=UTC", "mysql:8.0", "sleep", "1000")
    # a registry with two findings on one service: both fixes build on each other
    swarm_engine.cli("tag", BUSYBOX_IMAGE, "registry:2")
    swarm_engine.cli("service", "create", "-d", "--no-resolve-image", "--name", "reg", "-e", "REGISTRY_STORAGE=s3",
                     "-e", "REGISTRY_STORAGE_S3_ENCRYPT=false", "-e", "REGISTRY_STORAGE_S3_SECRETKEY=Key-77aa11",
                     "registry:2", "sleep", "1000")
    before = _service(swarm_engine, "db")["Spec"]
    reg_before = _service(swarm_engine, "reg")["Spec"]
    r = run_dockfix("plan", "--include-disruptive", "--root", str(tmp_path), "--docker-host", swarm_engine.url,
                    "--only", "env-password,registry-s3-encryption")
    assert r.returncode == 0, r.stderr
    # the spec change is shown as a diff, values hidden; the registry's second fix builds on the first
    assert f"-env MYSQL_PASSWORD=<secret, {len(pw)} bytes>" in r.stdout
    assert "+env MYSQL_PASSWORD_FILE=/run/secrets/db_MYSQL_PASSWORD" in r.stdout
    assert "-env REGISTRY_STORAGE_S3_ENCRYPT=false" in r.stdout and "+env REGISTRY_STORAGE_S3_ENCRYPT=true" in r.stdout
    assert pw not in r.stdout and "Key-77aa11" not in r.stdout
    r = run_dockfix("--apply", "--yes", "--include-disruptive", "--root", str(tmp_path), "--docker-host",
                    swarm_engine.url, "--only", "env-password,registry-s3-encryption")
    assert r.returncode == 0, r.stdout + r.stderr
    assert pw not in r.stdout + r.stderr
    spec = _service(swarm_engine, "db")["Spec"]
    cs = spec["TaskTemplate"]["ContainerSpec"]
    assert not any(e.startswith("MYSQL_PASSWORD=") for e in cs["Env"])
    (ref,) = cs["Secrets"]
    assert f"MYSQL_PASSWORD_FILE=/run/secrets/{ref['File']['Name']}" in cs["Env"]
    assert "TZ=UTC" in cs["Env"]
    secret = json.loads(swarm_engine.cli("secret", "inspect", ref["SecretName"]).stdout)[0]
    assert secret["Spec"]["Labels"]["io.dockfix.made-by"] == "dockfix"
    assert ref["SecretName"].startswith("db_MYSQL_PASSWORD-")
    # a task of the updated service reads it (busybox tagged mysql:8.0: only the file is checked)
    got = wait_until("a task of the updated service", lambda: service_secret(swarm_engine, "db", ref["File"]["Name"]))
    assert got == pw
    reg = _service(swarm_engine, "reg")["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert "REGISTRY_STORAGE_S3_ENCRYPT=true" in reg["Env"]
    assert not any(e.startswith(("REGISTRY_STORAGE_S3_ENCRYPT=false", "REGISTRY_STORAGE_S3_SECRETKEY="))
                   for e in reg["Env"])
    assert [x["File"]["Name"] for x in reg["Secrets"]] == ["reg_REGISTRY_STORAGE_S3_SECRETKEY"]
    assert "Key-77aa11" not in r.stdout + r.stderr

    r = run_dockfix("rollback", "--last", "--root", str(tmp_path), "--docker-host", swarm_engine.url)
    assert r.returncode == 0, r.stdout + r.stderr
    after = _service(swarm_engine, "db")["Spec"]
    assert after["TaskTemplate"]["ContainerSpec"] == before["TaskTemplate"]["ContainerSpec"]
    reg_after = _service(swarm_engine, "reg")["Spec"]
    assert reg_after["TaskTemplate"]["ContainerSpec"] == reg_before["TaskTemplate"]["ContainerSpec"]
    assert swarm_engine.cli("secret", "ls", "-q").stdout.strip() == ""


def test_registry_s3_encryption_in_compose_and_config(tmp_path):
    put(tmp_path, "/srv/reg/compose.yaml", """services:
  registry:
    image: registry:2
    environment:
      REGISTRY_STORAGE: s3
      REGISTRY_STORAGE_S3_BUCKET: images   # our bucket
      REGISTRY_STORAGE_S3_ENCRYPT: "false"
  mirror:
    image: registry:2
    volumes:
      - ./config.yml:/etc/docker/registry/config.yml:ro
""")
    put(tmp_path, "/srv/reg/config.yml", "version: 0.1\nstorage:\n  s3:\n    bucket: mirror   # other bucket\n"
                                         "    region: eu-west-1\nhttp:\n  addr: :5000\n")
    before = manifest(tmp_path)
    r = run_dockfix("plan", "--include-disruptive", "--root", str(tmp_path), "--no-engine", "--path", "/srv/reg",
                    "--only", "registry-s3-encryption,registry-https")
    assert r.returncode == 0, r.stderr
    assert "NOT re-encrypted" in r.stdout
    assert "REGISTRY_HTTP_TLS_CERTIFICATE=/certs/domain.crt" in r.stdout  # https: manual, exact settings
    r = run_dockfix("--apply", "--yes", "--include-disruptive", "--root", str(tmp_path), "--no-engine", "--path",
                    "/srv/reg", "--only", "registry-s3-encryption")
    assert r.returncode == 0, r.stdout + r.stderr
    assert '      REGISTRY_STORAGE_S3_ENCRYPT: "true"\n' in (tmp_path / "srv/reg/compose.yaml").read_text()
    assert (tmp_path / "srv/reg/config.yml").read_text() == (
        "version: 0.1\nstorage:\n  s3:\n    bucket: mirror   # other bucket\n    region: eu-west-1\n"
        "    encrypt: true\nhttp:\n  addr: :5000\n")
    doc = scan_json(tmp_path, "--no-engine", "--path", "/srv/reg", "--only", "registry-s3-encryption")
    assert {f["status"] for f in by_id(doc, "registry-s3-encryption")} == {"pass"}
    assert run_dockfix("rollback", "--last", "--root", str(tmp_path)).returncode == 0
    assert {k: v for k, v in manifest(tmp_path).items() if not k.startswith("var")} == before


@pytest.mark.slow
def test_canary_values_appear_in_no_output_plan_or_journal_listing(swarm_engine, tmp_path):
    canaries = {name: f"CANARY{name}{os.urandom(4).hex()}" for name in
                ("LIT", "LIST", "ENV", "DSN", "SVC", "CTR", "S3KEY")}
    c = canaries
    # the registry's fix needs the user its image runs as: the image must be there (not left by an
    # earlier test)
    swarm_engine.cli("tag", BUSYBOX_IMAGE, "registry:2")
    put(tmp_path, f"{APP}/compose.yaml", f"""services:
  app:
    image: {BUSYBOX_IMAGE}
    environment:
      DB_PASSWORD: "{c['LIT']}"
      API_URL: https://api.example.org
  db:
    image: postgres:16
    environment:
      - POSTGRES_PASSWORD={c['LIST']}
      - POSTGRES_USER=${{PGUSER_PASSWORD}}
  exporter:
    image: prom/mysqld-exporter
    environment:
      DATA_SOURCE_NAME: "exporter:{c['DSN']}@tcp(db:3306)/"
  registry:
    image: registry:2
    environment:
      REGISTRY_STORAGE: s3
      REGISTRY_STORAGE_S3_SECRETKEY: {c['S3KEY']}
""", owner=(1000, 1000))
    put(tmp_path, f"{APP}/.env", f"PGUSER_PASSWORD={c['ENV']}\n", mode=0o600)
    swarm_engine.cli("service", "create", "-d", "--no-resolve-image", "--name", "api", "-e", f"API_TOKEN={c['SVC']}",
                     BUSYBOX_IMAGE, "sleep", "1000")
    swarm_engine.cli("create", "--name", "legacy", "-e", f"SMTP_PASSWORD={c['CTR']}", BUSYBOX_IMAGE, "sleep", "1")
    host = ["--root", str(tmp_path), "--docker-host", swarm_engine.url, "--path", APP]
    outputs: dict[str, str] = {}

    def run(label, *args, ok=(0, 1)):
        r = run_dockfix(*args)
        assert r.returncode in ok, f"{label}: {r.returncode} {r.stderr}"
        outputs[label] = r.stdout + r.stderr
        return r

    for fmt in ("text", "json", "sarif"):
        run(f"scan {fmt}", "scan", *host, "--format", fmt, "-v")
    run("plan", "plan", "--include-disruptive", *host, "--only", "env-password,registry-s3-encryption")
    run("plan json", "plan", "--include-disruptive", *host, "--format", "json", "--only", "env-password")
    plan_file = tmp_path / "plan.json"
    run("plan -o", "plan", "--include-disruptive", *host, "--only", "env-password", "-o", str(plan_file))
    outputs["plan file"] = plan_file.read_text()
    assert json.loads(outputs["plan file"])["items"]
    run("dry run", "--apply", "--dry-run", "--include-disruptive", *host, "--only", "env-password")
    run("dry run json", "--apply", "--dry-run", "--include-disruptive", *host, "--only", "env-password",
        "--format", "json")
    run("apply plan", "--apply", "--yes", "--plan", str(plan_file), *host, ok=(0,))
    run("journal", "journal", "--root", str(tmp_path), ok=(0,))
    run("journal json", "journal", "--root", str(tmp_path), "--format", "json", ok=(0,))
    jdir = tmp_path / "var/lib/dockfix/journal"
    for p in jdir.rglob("*"):
        if p.is_file() and not p.name.startswith("blob-"):
            outputs[f"journal file {p.relative_to(jdir)}"] = p.read_text(errors="replace")
        if p.is_file():
            assert stat.S_IMODE(p.stat().st_mode) == 0o600
    # the plan file was applied: every value moved (so the outputs above had something to hide)
    applied = (tmp_path / APP.strip("/") / "compose.yaml").read_text()
    assert not any(v in applied for v in canaries.values())
    assert _service(swarm_engine, "api")["Spec"]["TaskTemplate"]["ContainerSpec"]["Secrets"]
    run("rollback", "rollback", "--last", "--root", str(tmp_path), "--docker-host", swarm_engine.url, ok=(0,))
    # and once more without a plan file: planned and applied in one go, text and JSON
    run("apply", "--apply", "--yes", "--include-disruptive", *host, "--only", "env-password", ok=(0, 1))
    run("rollback 2", "rollback", "--last", "--root", str(tmp_path), "--docker-host", swarm_engine.url, ok=(0,))
    run("apply json", "--apply", "--yes", "--include-disruptive", *host, "--only", "env-password", "--format", "json",
        ok=(0, 1))
    run("rollback 3", "rollback", "--last", "--root", str(tmp_path), "--docker-host", swarm_engine.url, ok=(0,))

    spec = _service(swarm_engine, "api")["Spec"]
    assert f"API_TOKEN={c['SVC']}" in spec["TaskTemplate"]["ContainerSpec"]["Env"]  # rolled back
    assert "legacy" in outputs["plan"] and "cannot be changed in place" in outputs["plan"]
    assert "secret" in outputs["apply plan"]
    for label, text in outputs.items():
        for name, value in canaries.items():
            assert value not in text, f"{name} canary leaked into {label}"
            # what is shown does not even carry a piece of a value's hash (a short password could be found from it)
            if not label.startswith(("plan file", "plan json", "journal file")):  # plan files hold hashes
                assert hashlib.sha256(value.encode()).hexdigest()[:8] not in text, f"{name} hash shown in {label}"


def test_a_plan_file_holds_no_value_and_is_refused_when_the_source_changed(tmp_path):
    app = compose_tree(tmp_path, "Plan-aa11bb", "Plan-cc22dd", "Plan-ee33ff", git=False)
    plan_file = tmp_path / "plan.json"
    r = run_dockfix("plan", "--include-disruptive", "--root", str(tmp_path), "--no-engine", "--path", APP,
                    "--only", "env-password", "-o", str(plan_file))
    assert r.returncode == 0, r.stderr
    text = plan_file.read_text()
    assert "Plan-" not in text and json.loads(text)["items"]
    assert "hmac:" in text  # hashes are keyed with the host's key: a reader cannot test guesses
    # the password is changed after the review: the reviewed plan no longer applies
    compose = app / "compose.yaml"
    compose.write_text(compose.read_text().replace("Plan-aa11bb", "Plan-new999"))
    before = manifest(tmp_path)
    r = run_dockfix("--apply", "--yes", "--plan", str(plan_file), "--root", str(tmp_path), "--no-engine",
                    "--path", APP)
    assert r.returncode in (2, 3), r.stdout + r.stderr  # refused (the secret cannot be rebuilt as reviewed)
    assert f"{APP}/" in r.stderr and "changed" in r.stderr and "Plan-" not in r.stdout + r.stderr
    assert {k: v for k, v in manifest(tmp_path).items() if not k.startswith("var")} == \
        {k: v for k, v in before.items() if not k.startswith("var")}


@pytest.mark.slow
def test_a_dsn_with_a_password_never_shows_in_plans_dry_runs_plan_files_or_the_journal(swarm_engine, tmp_path):
    """A swarm service holds a password variable and a Go DSN with credentials in another variable:
    neither value appears in the plan's diff, the plan file, a dry run, the apply or the journal."""
    pw, dsn_pw = "Pw-5e6f7a8b", "Dsn-9c0d1e2f"
    swarm_engine.cli("tag", BUSYBOX_IMAGE, "shop:1")
    swarm_engine.cli("service", "create", "-d", "--no-resolve-image", "--name", "shop", "-e", f"MYSQL_PASSWORD={pw}",
                     "-e", f"DB_DSN=app:{dsn_pw}@tcp(db:3306)/shop", "shop:1", "sleep", "1000")
    put(tmp_path, "var/lib/")
    common = ["--root", str(tmp_path), "--docker-host", swarm_engine.url, "--only", "env-password"]
    try:
        outputs = []
        for cmd in (["plan", "--include-disruptive"], ["plan", "--include-disruptive", "--format", "json"],
                    ["plan", "--include-disruptive", "-o", str(tmp_path / "plan.json")],
                    ["--apply", "--dry-run", "--include-disruptive"],
                    ["--apply", "--dry-run", "--include-disruptive", "--format", "json"],
                    ["--apply", "--yes", "--include-disruptive", "--format", "json"],
                    ["journal"], ["journal", "--format", "json"]):
            r = run_dockfix(*cmd, *(common[:-2] if cmd[0] == "journal" else common))
            assert r.returncode == 0, (cmd, r.stderr)
            outputs.append(r.stdout + r.stderr)
        assert any("DB_DSN" in o for o in outputs)  # the variable is shown, by name
        outputs.append((tmp_path / "plan.json").read_text())
        journal = tmp_path / "var/lib/dockfix/journal"
        outputs += [p.read_text(errors="replace") for p in journal.rglob("tx.json")]
        for text in outputs:
            assert pw not in text and dsn_pw not in text
    finally:
        swarm_engine.cli("service", "rm", "shop", check=False)
        for sid in swarm_engine.cli("secret", "ls", "-q").stdout.split():
            swarm_engine.cli("secret", "rm", sid, check=False)
