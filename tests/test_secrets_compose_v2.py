"""The env-password fix of compose files, decided by compose v2 and shown on real stacks.

Each case is a real compose project run by ``docker compose`` v2 (sid's package, unpacked by
scripts/newer-debs) on the private engine, with probe images made by ``docker import`` from a
busybox rootfs under the names and users of the real images (mysqld-exporter 65534, grafana 472,
WordPress 33, postgres and mysql 999). A probe reports, as the image's user, its environment and
the bytes of every file under /run/secrets. The test runs the stack before the fix, applies the
fix, runs it again, and compares: each moved variable arrives as exactly the old bytes through its
file, no other variable of any service changes; or the item is manual with the reason. Then
``rollback`` must restore every file byte for byte (owners and modes included).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from helpers import manifest, put, run_dockfix

from dockfix.demo.private_engine import busybox_path

APP = "/srv/app"
PROBE = b"""#!/bin/sh
echo "UID $(id -u) $(id -g)"
echo "ENV $(od -An -tx1 -v /proc/self/environ | tr -d ' \\n')"
echo "ARGS $*"
for f in /run/secrets/*; do
  [ -e "$f" ] || continue
  if [ -r "$f" ]; then echo "SECRET ${f##*/} $(od -An -tx1 -v "$f" | tr -d ' \\n')"; else echo "SECRET ${f##*/} UNREADABLE"; fi
done
"""
#: probe image -> its user, as the real images run (tags as the recipe table knows them)
IMAGES = {
    "prom/mysqld-exporter:v0.15.1": "65534:65534",
    "grafana/grafana:11.2.0": "472:0",
    "wordpress:6.6": "33:33",
    "postgres:16": "999:999",
    "mysql:8.0": "999:999",
    "dockfix-test/app:1": "1000:1000",
}


def _probe_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("bin", "tmp", "etc", "run", "proc", "sys", "dev"):
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(ti)
        tar.add(busybox_path(), arcname="bin/busybox")
        for c in ("sh", "id", "od", "tr", "cat", "env", "sleep"):
            ti = tarfile.TarInfo(f"bin/{c}")
            ti.type, ti.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(ti)
        for name, data, mode in (("probe", PROBE, 0o755),
                                 ("etc/passwd", b"root:x:0:0::/:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n", 0o644)):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode = len(data), mode
            tar.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture(scope="session")
def probes(_engine_session):
    tar = _probe_tar()
    for tag, user in IMAGES.items():
        subprocess.run(["docker", "-H", _engine_session.url, "import", "--change", f"USER {user}",
                        "--change", 'ENTRYPOINT ["/probe"]', "-", tag], input=tar, check=True, capture_output=True)
    return IMAGES


def run_stack(compose: str, engine, folder: Path, name: str) -> dict[str, dict]:
    """Run the project in ``folder`` with compose v2; what each service's probe reported."""
    env = {"DOCKER_HOST": engine.url, "PATH": "/usr/bin:/bin", "HOME": str(folder.parent)}
    base = [compose, "-p", name]
    r = subprocess.run([*base, "up", "--no-color"], cwd=folder, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    cfg = json.loads(subprocess.run([*base, "config", "--format", "json"], cwd=folder, env=env, capture_output=True,
                                    text=True, check=True).stdout)
    out = {}
    for svc in cfg["services"]:
        logs = subprocess.run([*base, "logs", "--no-color", "--no-log-prefix", svc], cwd=folder, env=env,
                              capture_output=True, text=True, check=True).stdout
        rep: dict = {"env": {}, "secrets": {}}
        for line in logs.splitlines():
            kind, _, rest = line.partition(" ")
            if kind == "UID":
                rep["user"] = rest
            elif kind == "ENV":
                for item in bytes.fromhex(rest).split(b"\0"):
                    k, sep, v = item.partition(b"=")
                    if sep and k not in (b"HOSTNAME", b"HOME", b"PATH"):
                        rep["env"][k.decode()] = v
            elif kind == "ARGS":
                rep["args"] = rest
            elif kind == "SECRET":
                n, _, hx = rest.partition(" ")
                rep["secrets"][n] = None if hx == "UNREADABLE" else bytes.fromhex(hx)
        out[svc] = rep
    subprocess.run([*base, "down"], cwd=folder, env=env, capture_output=True, timeout=120)
    return out


def _env(v1: bool) -> dict:
    """docker-compose 1.29 (Debian 12's, on PATH) is compared with v2 only in the cases that say so."""
    return {} if v1 else {"DOCKFIX_COMPOSE_V1": ""}


def _apply(root: Path, v1: bool = False):
    return run_dockfix(env=_env(v1), *("--apply", "--yes", "--include-disruptive", "--root", str(root), "--no-engine",
                       "--path", APP, "--only", "env-password", "--format", "json"))


def _plan(root: Path, v1: bool = False) -> dict:
    r = run_dockfix("plan", "--include-disruptive", "--root", str(root), "--no-engine", "--path", APP,
                    "--only", "env-password", "--format", "json", env=_env(v1))
    assert r.returncode == 0, r.stderr
    return {it["subject"]: it for it in json.loads(r.stdout)["items"]}


CASES = {
    # .env values are interpolated and double-quoted escapes expanded: the secret gets compose's value
    "dotenv-interpolation-and-escapes": dict(
        files={"compose.yaml": "services:\n  db:\n    image: postgres:16\n    environment:\n"
                               "      POSTGRES_PASSWORD: ${DB_PASS}\n      POSTGRES_USER: app\n",
               ".env": 'BASE=b1x\nDB_PASS="${BASE}-t\\tail\\n$$x"\n'},
        moved=[("db", "POSTGRES_PASSWORD", "db_POSTGRES_PASSWORD")], env_after='BASE=b1x\n'),
    # a .env line another service reads through env_file: .env stays, and the note says who reads it
    "dotenv-read-by-env-file": dict(
        files={"compose.yaml": "services:\n  db:\n    image: mysql:8.0\n    environment:\n"
                               "      - MYSQL_ROOT_PASSWORD=${ROOT_PW}\n"
                               "  app:\n    image: dockfix-test/app:1\n    env_file: .env\n",
               ".env": "ROOT_PW=Root-8c7d6e\n"},
        moved=[("db", "MYSQL_ROOT_PASSWORD", "db_MYSQL_ROOT_PASSWORD")], env_after=None,
        note="ROOT_PW stay in"),
    # an include:d file in another folder still interpolates the name: .env stays
    "dotenv-read-by-include": dict(
        files={"compose.yaml": "include:\n  - ../common/monitor.yaml\nservices:\n  db:\n    image: mysql:8.0\n"
                               "    environment:\n      MYSQL_ROOT_PASSWORD: ${ROOT_PW}\n",
               ".env": "ROOT_PW=Root-1a2b3c\n",
               "../common/monitor.yaml": "services:\n  mon:\n    image: dockfix-test/app:1\n"
                                         "    environment:\n      CHECK_AUTH: \"root:${ROOT_PW}\"\n"},
        moved=[("db", "MYSQL_ROOT_PASSWORD", "db_MYSQL_ROOT_PASSWORD")], env_after=None, note="ROOT_PW stay in"),
    # extends from another folder's file, which interpolates the name
    "dotenv-read-by-extends": dict(
        files={"compose.yaml": "services:\n  db:\n    image: mysql:8.0\n    environment:\n"
                               "      MYSQL_ROOT_PASSWORD: ${ROOT_PW}\n"
                               "  web:\n    extends:\n      file: ../common/base.yaml\n      service: web\n",
               ".env": "ROOT_PW=Root-4d5e6f\n",
               "../common/base.yaml": "services:\n  web:\n    image: wordpress:6.6\n    environment:\n"
                                      "      ADMIN_HINT: \"${ROOT_PW}\"\n"},
        moved=[("db", "MYSQL_ROOT_PASSWORD", "db_MYSQL_ROOT_PASSWORD")], env_after=None, note="ROOT_PW stay in"),
    # set in env_file and environment: after the move the env_file's value would come back with _FILE
    "env-file-and-environment": dict(
        files={"compose.yaml": "services:\n  db:\n    image: mysql:8.0\n    env_file: db.env\n    environment:\n"
                               "      MYSQL_PASSWORD: Lit-2f3e4d\n",
               "db.env": "MYSQL_PASSWORD=Old-9a8b7c\n"},
        manual="MYSQL_PASSWORD is still set"),
    # compose.override.yaml beside the file keeps setting the variable
    "override-keeps-the-variable": dict(
        files={"compose.yaml": "services:\n  db:\n    image: mysql:8.0\n    environment:\n"
                               "      MYSQL_ROOT_PASSWORD: Lit-5e6f7a\n",
               "compose.override.yaml": "services:\n  db:\n    environment:\n      MYSQL_ROOT_PASSWORD: Ovr-1b2c3d\n"},
        manual="MYSQL_ROOT_PASSWORD is still set"),
    # a UTF-8 BOM in .env: the line goes, the BOM stays
    "dotenv-bom": dict(
        files={"compose.yaml": "services:\n  db:\n    image: mysql:8.0\n    environment:\n"
                               "      MYSQL_ROOT_PASSWORD: ${ROOT_PW}\n",
               ".env": "\ufeffROOT_PW=Bom-3c4d5e\nOTHER=1\n"},
        moved=[("db", "MYSQL_ROOT_PASSWORD", "db_MYSQL_ROOT_PASSWORD")], env_after="\ufeffOTHER=1\n"),
    # ... and docker-compose 1.29 does not expand the escapes: with both installed, manual
    "dotenv-escapes-v1-disagrees": dict(
        files={"compose.yaml": "services:\n  db:\n    image: postgres:16\n    environment:\n"
                               "      POSTGRES_PASSWORD: ${DB_PASS}\n",
               ".env": 'DB_PASS="Esc-$$tail"\n'},
        v1=True, manual="different values"),
    # unquoted numbers: compose v2 alone decides (the secret holds what v2 gives the container) ...
    "numeric-octal-v2": dict(
        files={"compose.yaml": "services:\n  db:\n    image: mysql:8.0\n    environment:\n"
                               "      MYSQL_ROOT_PASSWORD: 0755\n      MYSQL_PASSWORD: 1e3\n"
                               "      MYSQL_ROOT_HOST: 0o17\n"},
        moved=[("db", "MYSQL_ROOT_PASSWORD", "db_MYSQL_ROOT_PASSWORD"), ("db", "MYSQL_PASSWORD", "db_MYSQL_PASSWORD")]),
    # ... but YAML 1.1 (docker-compose 1.29) and 1.2 (compose v2) read them differently: with both, manual
    # (0755 is 493 for both: it converts even with both installed; 1e3 is 1000 for v2 and "1e3" for 1.29)
    "numeric-exponent": dict(v1=True,
        files={"compose.yaml": "services:\n  db:\n    image: mysql:8.0\n    environment:\n"
                               "      MYSQL_ROOT_PASSWORD: 1e3\n"},
        manual="different values"),
    "numeric-octal-both-agree": dict(v1=True,
        files={"compose.yaml": "services:\n  db:\n    image: mysql:8.0\n    environment:\n"
                               "      MYSQL_ROOT_PASSWORD: 0755\n"},
        moved=[("db", "MYSQL_ROOT_PASSWORD", "db_MYSQL_ROOT_PASSWORD")]),
    "numeric-sexagesimal": dict(v1=True,
        files={"compose.yaml": "services:\n  db:\n    image: mysql:8.0\n    environment:\n"
                               "      MYSQL_ROOT_PASSWORD: 12:30\n"},
        manual="different values"),
    # the images' real users read their files: exporter 65534, grafana 472, WordPress 33
    "non-root-images-read-their-files": dict(
        files={"compose.yaml": "services:\n"
                               "  exporter:\n    image: prom/mysqld-exporter:v0.15.1\n    environment:\n"
                               "      DATA_SOURCE_NAME: \"exp:Dsn-6a7b8c@(db:3306)/\"\n"
                               "  grafana:\n    image: grafana/grafana:11.2.0\n    environment:\n"
                               "      GF_SECURITY_ADMIN_PASSWORD: Graf-1c2d3e\n"
                               "  wp:\n    image: wordpress:6.6\n    environment:\n"
                               "      WORDPRESS_DB_PASSWORD: 'Wp-4e5f6a'\n      WORDPRESS_DB_HOST: db\n"},
        moved=[("grafana", "GF_SECURITY_ADMIN_PASSWORD", "grafana_GF_SECURITY_ADMIN_PASSWORD"),
               ("wp", "WORDPRESS_DB_PASSWORD", "wp_WORDPRESS_DB_PASSWORD")],
        mycnf=("exporter", "DATA_SOURCE_NAME", "exporter_DATA_SOURCE_NAME",
               b"[client]\nuser=exp\npassword=Dsn-6a7b8c\nhost=db\nport=3306\n")),
    # a secret-named setting whose value is plainly a setting is not taken for a secret, and stays
    "vault-is-a-setting": dict(
        files={"compose.yaml": "services:\n  db:\n    image: postgres:16\n    environment:\n"
                               "      POSTGRES_PASSWORD: Pg-3d4e5f\n      SECRET_STORE_BACKEND: vault\n"
                               "      SECRET_STORE: file\n"},
        moved=[("db", "POSTGRES_PASSWORD", "db_POSTGRES_PASSWORD")]),
    # a service of a profile that is not active by default is part of the project all the same
    "profiled-service": dict(
        files={"compose.yaml": "services:\n  db:\n    image: mysql:8.0\n    environment:\n"
                               "      MYSQL_ROOT_PASSWORD: ${ROOT_PW}\n"
                               "  dbg:\n    image: dockfix-test/app:1\n    profiles: [debug]\n    environment:\n"
                               "      DEBUG_LOGIN: \"root:${ROOT_PW}\"\n",
               ".env": "ROOT_PW=Root-9f8e7d\n"},
        moved=[("db", "MYSQL_ROOT_PASSWORD", "db_MYSQL_ROOT_PASSWORD")], env_after=None, note="ROOT_PW stay in"),
    # DSN parameters: tls goes into the option file (the exporter reads tls= there from v0.15) ...
    "dsn-tls-carried": dict(
        files={"compose.yaml": "services:\n  exporter:\n    image: prom/mysqld-exporter:v0.15.1\n    environment:\n"
                               "      DATA_SOURCE_NAME: \"exp:Dsn-1f2e3d@(db:3306)/?tls=true\"\n"},
        mycnf=("exporter", "DATA_SOURCE_NAME", "exporter_DATA_SOURCE_NAME",
               b"[client]\nuser=exp\npassword=Dsn-1f2e3d\nhost=db\nport=3306\ntls=true\n")),
    # ... what it cannot carry (a database, an unknown parameter) makes the item manual, naming them
    "dsn-parameters": dict(
        files={"compose.yaml": "services:\n  exporter:\n    image: prom/mysqld-exporter:v0.15.1\n    environment:\n"
                               "      DATA_SOURCE_NAME: \"exp:Dsn-7b8c9d@(db:3306)/app?tls=true&timeout=5s\"\n"},
        manual="the database name"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_real_stack_case(case, engine, probes, compose_v2, tmp_path):
    spec = CASES[case]
    root = tmp_path / "root"
    app = root / APP.strip("/")
    for rel, text in spec["files"].items():
        put(root, str(Path(APP) / rel), text, mode=0o640, owner=(1000, 1000))
    (root / "srv/common").mkdir(exist_ok=True)
    before_files = manifest(root)
    project = f"i14{abs(hash(case)) % 10**6}"
    before = run_stack(compose_v2, engine, app, project)

    if "manual" in spec:
        items = _plan(root, spec.get("v1", False))
        manual = [it for it in items.values() if it["safety"] == "manual"]
        assert manual and not any(it["changes"] for it in manual), items
        assert any(spec["manual"] in " ".join(it["notes"]) for it in manual), [it["notes"] for it in manual]
        assert {k: v for k, v in manifest(root).items() if not k.startswith("var")} == before_files
        return

    r = _apply(root, spec.get("v1", False))
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    for rel, text in spec["files"].items():
        for v in ("Root-", "Lit-", "Bom-", "Graf-", "Wp-", "Dsn-", "Pg-"):
            assert v not in out
    if spec.get("note"):
        assert spec["note"] in out, out
    after = run_stack(compose_v2, engine, app, project)
    moved_vars = set()
    for svc, var, secret in spec.get("moved", []):
        file_var = var + ("__FILE" if var.startswith("GF_") else "_FILE")
        assert after[svc]["env"][file_var] == f"/run/secrets/{secret}".encode()
        assert after[svc]["secrets"][secret] == before[svc]["env"][var], f"{svc} {var}: the file differs"
        assert var not in after[svc]["env"]
        moved_vars.add((svc, var))
        moved_vars.add((svc, file_var))
    if spec.get("mycnf"):
        svc, var, secret, content = spec["mycnf"]
        assert after[svc]["secrets"][secret] == content
        assert f"--config.my-cnf=/run/secrets/{secret}" in after[svc]["args"]
        moved_vars.add((svc, var))
    for svc in before:  # no other variable of any service changed; every user reads its files
        assert after[svc]["user"] == before[svc]["user"]
        assert {k: v for k, v in after[svc]["env"].items() if (svc, k) not in moved_vars} == \
            {k: v for k, v in before[svc]["env"].items() if (svc, k) not in moved_vars}, svc
        assert None not in after[svc]["secrets"].values(), f"{svc} cannot read its secret"
    if "env_after" in spec:
        env = (app / ".env").read_bytes().decode()
        assert env == (spec["env_after"] if spec["env_after"] is not None else spec["files"][".env"])
    doc = json.loads(run_dockfix("scan", env=_env(False), *( "--root", str(root), "--no-engine", "--path", APP, "--only", "env-password",
                                 "--format", "json")).stdout)
    fixed = {s for s, _, _ in spec.get("moved", [])} | ({spec["mycnf"][0]} if spec.get("mycnf") else set())
    got = {f["subject"]: (f["status"], f["evidence"]) for f in doc["findings"]}
    for svc in fixed:
        assert got[f"compose:{APP}/compose.yaml#{svc}"][0] == "pass", got

    r = run_dockfix("rollback", "--last", "--root", str(root))
    assert r.returncode == 0, r.stdout + r.stderr
    assert {k: v for k, v in manifest(root).items() if not k.startswith("var")} == before_files


def test_path_follows_links_inside_the_root(tmp_path):
    """--path scans a compose file, a Dockerfile and a .env that are links (resolved inside the root, an
    absolute target included); a dangling link is named, not skipped silently; the fix never writes
    through a link (manual, naming it)."""
    import os

    root = tmp_path / "root"
    put(root, "/srv/conf/stack.yaml", "services:\n  a:\n    image: mysql:8.0\n    environment:\n"
                                      "      MYSQL_ROOT_PASSWORD: ${ROOT_PW}\n")
    put(root, "/srv/conf/env", "ROOT_PW=Lnk-5a6b7c\n")
    put(root, "/srv/conf/Dockerfile.real", "FROM busybox\nENV ADMIN_PASSWORD=Lnk-8d9e0f\n")
    app = root / "srv/app"
    app.mkdir(parents=True)
    os.symlink("../conf/stack.yaml", app / "compose.yaml")
    os.symlink("/srv/conf/env", app / ".env")  # absolute: resolved inside the root, not on this machine
    os.symlink("../conf/Dockerfile.real", app / "Dockerfile")
    os.symlink("/srv/nowhere.yaml", app / "docker-compose.yml")
    r = run_dockfix("scan", "--root", str(root), "--no-engine", "--path", APP, "--format", "json")
    doc = json.loads(r.stdout)
    got = {(f["id"], f["subject"]): (f["status"], f["evidence"]) for f in doc["findings"]}
    assert got[("env-password", f"compose:{APP}/compose.yaml#a")][0] == "fail"
    assert ".env" in got[("env-password", f"compose:{APP}/compose.yaml#a")][1]
    assert got[("sensitive-file-in-image", f"dockerfile:{APP}/Dockerfile")][0] == "fail"
    dangling = got[("env-password", f"compose:{APP}/docker-compose.yml")]
    assert dangling[0] == "error" and "leads to nothing" in dangling[1]
    assert "Lnk-" not in r.stdout + r.stderr
    items = _plan(root)
    it = items[f"compose:{APP}/compose.yaml#a"]
    assert it["safety"] == "manual" and not it["changes"] and "symbolic link" in " ".join(it["notes"])


# ---------------------------------------------------------------------- property: generated stacks
from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_PW = st.one_of(
    st.text(alphabet="abcdefXYZ0123456789-_!@%^*+=.:,/", min_size=6, max_size=16).filter(lambda s: s[0].isalnum()),
    st.sampled_from(["0755", "12:30", "1e3", "0o17", "0x1F", "1_000", "true", "Pw with spaces"]))


@st.composite
def stacks(draw):
    pw = draw(_PW)
    form = draw(st.sampled_from(["map", "list"]))
    source = draw(st.sampled_from(["literal", "dotenv", "default"]))
    quote = draw(st.sampled_from(["", "'", '"']))
    env_file_reader = draw(st.booleans())
    override = draw(st.sampled_from([None, "other", "same"]))
    extends = draw(st.sampled_from([None, "plain", "interpolates"]))
    include = draw(st.sampled_from([None, "plain", "interpolates"]))
    files: dict[str, str] = {}
    ref = {"literal": None, "dotenv": "${PW}", "default": "${UNSET_PW:-" + "Dflt-" + pw.replace("}", "") + "}"}[source]
    if source == "literal":
        value = json.dumps(pw)  # a YAML double-quoted scalar
        if pw[0].isdigit() and draw(st.booleans()):
            value = pw  # unquoted: YAML number rules apply
    else:
        value = json.dumps(ref)
    if form == "map":
        env = f"    environment:\n      MYSQL_ROOT_PASSWORD: {value}\n      TZ: UTC\n"
    else:
        env = f"    environment:\n      - {json.dumps('MYSQL_ROOT_PASSWORD=' + json.loads(value) if value.startswith(chr(34)) else 'MYSQL_ROOT_PASSWORD=' + value)}\n      - TZ=UTC\n"
    text = "services:\n  db:\n    image: mysql:8.0\n" + env
    if env_file_reader:
        text += "  app:\n    image: dockfix-test/app:1\n    env_file: .env\n"
    if extends:
        text += "  web:\n    extends:\n      file: ../common/base.yaml\n      service: web\n"
        files["../common/base.yaml"] = "services:\n  web:\n    image: wordpress:6.6\n    environment:\n" + \
            ("      HINT: \"${PW:-none}\"\n" if extends == "interpolates" else "      HINT: plain\n")
    if include:
        text = "include:\n  - ../common/inc.yaml\n" + text
        files["../common/inc.yaml"] = "services:\n  mon:\n    image: dockfix-test/app:1\n    environment:\n" + \
            ("      CHECK: \"${PW:-none}\"\n" if include == "interpolates" else "      CHECK: plain\n")
    files["compose.yaml"] = text
    env_pw = pw.replace("\\", "").replace(quote, "") if quote else pw.replace(" ", "_")
    files[".env"] = f"PW={quote}{env_pw}{quote}\nOTHER=1\n"
    if override == "other":
        files["compose.override.yaml"] = "services:\n  db:\n    environment:\n      EXTRA: one\n"
    elif override == "same":
        files["compose.override.yaml"] = "services:\n  db:\n    environment:\n      MYSQL_ROOT_PASSWORD: Ovr-1\n"
    return files


def _model(compose: str, folder: Path) -> dict:
    r = subprocess.run([compose, "config", "--format", "json"], cwd=folder, capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "HOME": str(folder)}, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(files=stacks())
def test_generated_stacks_keep_compose_model(files, compose_v2_path, tmp_path_factory):
    """Over generated stacks (list and map environments, literal, .env and default values, env_file
    readers, overrides, extends and include of another folder): after the fix, compose v2's model
    is the old one except that the password comes through MYSQL_ROOT_PASSWORD_FILE from a file holding
    exactly the old value; or the item is manual and no file changed. Rollback restores every byte."""
    root = tmp_path_factory.mktemp("gen")
    for rel, text in files.items():
        put(root, str(Path(APP) / rel), text, mode=0o644, owner=(1000, 1000))
    app = root / APP.strip("/")
    before_files = manifest(root)
    before = _model(compose_v2_path, app)
    env = {"DOCKFIX_COMPOSE": compose_v2_path, "DOCKFIX_COMPOSE_V1": ""}
    r = run_dockfix("--apply", "--yes", "--include-disruptive", "--root", str(root), "--no-engine", "--path", APP,
                    "--only", "env-password", "--format", "json", env=env)
    assert r.returncode in (0, 1), r.stdout + r.stderr
    after = _model(compose_v2_path, app)
    old_env = before["services"]["db"]["environment"]
    new_env = after["services"]["db"]["environment"]
    event("converted" if "MYSQL_ROOT_PASSWORD_FILE" in new_env else "manual")
    if "MYSQL_ROOT_PASSWORD_FILE" in new_env:
        secret = app / "secrets" / "db_MYSQL_ROOT_PASSWORD"
        assert secret.read_bytes() == old_env["MYSQL_ROOT_PASSWORD"].replace("$$", "$").encode()
        want = {k: v for k, v in old_env.items() if k != "MYSQL_ROOT_PASSWORD"}
        want["MYSQL_ROOT_PASSWORD_FILE"] = "/run/secrets/db_MYSQL_ROOT_PASSWORD"
        assert new_env == want
        for name in before["services"]:
            if name != "db":
                assert after["services"][name] == before["services"][name], name
            else:
                strip = ("environment", "secrets")
                assert {k: v for k, v in after["services"][name].items() if k not in strip} == \
                    {k: v for k, v in before["services"][name].items() if k not in strip}
        rb = run_dockfix("rollback", "--last", "--root", str(root))
        assert rb.returncode == 0, rb.stdout + rb.stderr
    else:
        assert after == before
    assert {k: v for k, v in manifest(root).items() if not k.startswith("var")} == before_files


# ---------------------------------------------------------------------- the one detector, both directions
SETTINGS = ["vault", "file", "true", "none", "aws-kms", "/run/secrets/x", "./secrets/db", "db.example.com",
            "redis.internal:6379", "disabled", ""]
PASSWORDS = ["Hunter2!", "s3cr3t", "letmein9", "Zq8#kLm2Pw", "correct-horse-Battery", "0755", "Vault2024"]


@pytest.mark.parametrize("value", SETTINGS)
def test_settings_under_secret_names_are_not_flagged(value):
    from dockfix.checks.notes import Deployment, Var, secret_vars
    from dockfix.sources.secrets import mask_line

    d = Deployment("x", "img", [Var("SECRET_STORE", value, 1, "literal"), Var("DB_PASSWORD", value, 2, "literal")])
    assert secret_vars(d) == []
    assert mask_line(f"DB_PASSWORD={value}") == f"DB_PASSWORD={value}"


@pytest.mark.parametrize("value", PASSWORDS)
def test_passwords_are_flagged_and_masked(value):
    from dockfix.checks.notes import Deployment, Var, secret_vars
    from dockfix.sources.secrets import mask_line

    d = Deployment("x", "img", [Var("DB_PASSWORD", value, 1, "literal")])
    assert [v.name for v, _ in secret_vars(d)] == ["DB_PASSWORD"]
    assert value not in mask_line(f"DB_PASSWORD={value}")


@pytest.mark.parametrize("line, hidden", [
    ("command: redis-server --requirepass Pl4ce-Redis", "Pl4ce-Redis"),
    ("test: mysqladmin ping -uroot -pPl4ce-My", "Pl4ce-My"),
    ('- "traefik.http.middlewares.a.basicauth.users=admin:$$apr1$$Pl4ce"', "Pl4ce"),
    ("X_SIGNATURE: Ab9xQ2mLp0Zr7Kt4Wv1Ys8Nd", "Ab9xQ2mLp0Zr7Kt4Wv1Ys8Nd"),
    ("DSN: mysql://u:Pl4ce-Url@db/x", "Pl4ce-Url"),
    ("GH: ghp_16C7e42F292c6912E7710c838347Ae178B4a", "16C7e42F292c6912E7710c838347Ae178B4a"),
    ("KEY: aGVsbG8gd29ybGQgdGhpcyBpcyBhIHNlY3JldA==", "aGVsbG8gd29ybGQgdGhpcyBpcyBhIHNlY3JldA"),
])
def test_passwords_by_place_and_look_are_masked(line, hidden):
    from dockfix.sources.secrets import mask_line

    assert hidden not in mask_line(line)


@pytest.mark.parametrize("line", [
    "image: foo@sha256:" + "ab" * 32, "ports: ['8080:80']", "docker run -p8080:80 x",
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin", "id: 3f2504e0-4f89-11d3-9a0c-0305e82c3301",
    "image: registry.example.com/team/app-server_v2:1.2.3-alpha", "SECRET_STORE_BACKEND=vault",
    "create secret db_MYSQL_PASSWORD-3f9a1c", "class: SomeVeryLongCamelCaseIdentifier",
    "Applied as transaction 20261201T225410.111171Z"])
def test_ordinary_lines_are_shown(line):
    from dockfix.sources.secrets import mask_line

    assert mask_line(line) == line


def test_compose_ignores_long_syntax_uid_gid_mode_for_file_secrets(engine, probes, compose_v2, tmp_path):
    """Why dockfix sets the host file's owner, group and mode itself: compose 2.40 bind-mounts a file
    secret as it is and ignores uid/gid/mode of the long syntax (with a warning)."""
    app = tmp_path / "app"
    put(tmp_path, "app/compose.yaml", "services:\n  g:\n    image: grafana/grafana:11.2.0\n    secrets:\n"
                                      "      - source: s\n        uid: \"472\"\n        gid: \"0\"\n        mode: 0400\n"
                                      "secrets:\n  s:\n    file: ./s.txt\n")
    put(tmp_path, "app/s.txt", "Long-1a2b", mode=0o600)
    got = run_stack(compose_v2, engine, app, "i14long")
    assert got["g"]["user"] == "472 0" and got["g"]["secrets"] == {"s": None}  # unreadable as 472
    os.chown(app / "s.txt", 0, 0)
    os.chmod(app / "s.txt", 0o640)  # what dockfix writes: root, the user's group (0 for grafana), 0640
    assert run_stack(compose_v2, engine, app, "i14long")["g"]["secrets"] == {"s": b"Long-1a2b"}


def test_rescan_fails_while_the_containers_user_cannot_read_its_secret(tmp_path):
    root = tmp_path / "root"
    put(root, f"{APP}/compose.yaml", "services:\n  g:\n    image: grafana/grafana:11.2.0\n    environment:\n"
                                     "      GF_SECURITY_ADMIN_PASSWORD__FILE: /run/secrets/g_pw\n    secrets: [g_pw]\n"
                                     "secrets:\n  g_pw:\n    file: ./secrets/g_pw\n")
    f = put(root, f"{APP}/secrets/g_pw", "Rd-1a2b3c", mode=0o600, owner=(0, 0))
    scan = ["scan", "--root", str(root), "--no-engine", "--path", APP, "--only", "env-password", "--format", "json"]
    got = {x["subject"]: x for x in json.loads(run_dockfix(*scan).stdout)["findings"]}[f"compose:{APP}/compose.yaml#g"]
    assert got["status"] == "fail" and "472:0 cannot read" in got["evidence"], got
    os.chmod(f, 0o640)
    got = {x["subject"]: x for x in json.loads(run_dockfix(*scan).stdout)["findings"]}[f"compose:{APP}/compose.yaml#g"]
    assert got["status"] == "pass", got


def test_the_engine_tells_the_images_user(engine, probes, compose_v2, tmp_path):
    """An image dockfix's table does not know: its Config.User (1000:1000 here) from the engine gives
    the secret file's group; the container reads exactly the old bytes as that user."""
    root = tmp_path / "root"
    put(root, f"{APP}/compose.yaml", "services:\n  app:\n    image: dockfix-test/app:1\n    environment:\n"
                                     "      API_TOKEN: 'Eng-7e8f9a'\n")
    app = root / APP.strip("/")
    before = run_stack(compose_v2, engine, app, "i14eng")
    engine.reset()
    r = run_dockfix("--apply", "--yes", "--include-disruptive", "--root", str(root), "--docker-host", engine.url,
                    "--path", APP, "--only", "env-password", env=_env(False))
    assert r.returncode == 0, r.stdout + r.stderr
    st = os.stat(app / "secrets/app_API_TOKEN")
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, 1000, 0o640)
    after = run_stack(compose_v2, engine, app, "i14eng")
    assert after["app"]["user"] == "1000 1000"
    assert after["app"]["secrets"]["app_API_TOKEN"] == before["app"]["env"]["API_TOKEN"] == b"Eng-7e8f9a"


def test_compose_errors_are_manual_and_never_quote_the_file(compose_v2, tmp_path):
    root = tmp_path / "root"
    put(root, f"{APP}/compose.yaml", "services:\n  db:\n    image: mysql:8.0\n    environment:\n"
                                     "      MYSQL_ROOT_PASSWORD: \"Bad-4c5d6e${PW\"\n")
    items = _plan(root)
    it = items[f"compose:{APP}/compose.yaml#db"]
    notes = " ".join(it["notes"])
    assert it["safety"] == "manual" and "docker compose cannot load the project" in notes, notes
    assert "Bad-4c5d6e" not in json.dumps(items)
