"""Secrets: unique canary values are planted in every place dockfix reads secrets from; none of
them may appear in anything dockfix shows or writes outside its 0600 journal before-images:
stdout and stderr of every command, every report format, plan files, the dry-run and applied
diffs, journal listings and the journal's plan and log, any file dockfix leaves anywhere (its
"logs"), and the app's screens (text and SVG export).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from helpers import BUSYBOX_IMAGE, put, run_dockfix


def canary(place: str) -> str:
    return f"CANARY{place}{uuid.uuid4().hex[:16]}"


PLACES = ["ComposeLiteral", "ComposeList", "ComposeUrl", "DotEnv", "EnvFile", "DockerfileEnv", "DockerfileArg",
          "DockerfileUrl", "DaemonMirror", "DaemonProxy", "DefaultProxy", "DefaultMirror", "UnitProxy",
          "RegistryHttpSecret", "RegistryS3Key", "RegistryEnvSecret", "ComposeDefault", "ComposeYamlPassword",
          # by place and by look (issue 14): beside a line the fix changes, so they are diff context
          "ComposeRequirepass", "ComposeMysqlP", "ComposeBasicAuth", "ComposeToken", "ComposeRedisPw"]


def planted_tree(root: Path) -> dict[str, str]:
    c = {p: canary(p) for p in PLACES}
    put(root, "/var/lib/", mode=0o755)
    put(root, "/etc/group", "root:x:0:\ndocker:x:999:\n")
    put(root, "/etc/docker/daemon.json", json.dumps({
        "icc": True,
        "registry-mirrors": [f"https://mirror:{c['DaemonMirror']}@mirror.example.com"],
        "proxies": {"http-proxy": f"http://proxyuser:{c['DaemonProxy']}@proxy.example.com:3128"},
        "log-level": "info",
    }, indent=2) + "\n", mode=0o666, owner=(1000, 1000))
    put(root, "/etc/default/docker",
        f'export http_proxy="http://proxyuser:{c["DefaultProxy"]}@proxy.example.com:3128/"\n'
        f'DOCKER_OPTS="--registry-mirror=https://u:{c["DefaultMirror"]}@m.example.com --icc=true"\n',
        mode=0o666, owner=(1000, 1000))
    put(root, "/lib/systemd/system/docker.service",
        f'[Service]\nEnvironment="HTTPS_PROXY=http://u:{c["UnitProxy"]}@proxy.example.com:3128"\n'
        "ExecStart=/usr/bin/dockerd -H fd://\n", mode=0o666, owner=(1000, 1000))
    put(root, "/srv/app/compose.yaml", f"""services:
  db:
    image: mysql:8
    environment:
      MYSQL_ROOT_PASSWORD: {c['ComposeLiteral']}
      MYSQL_PASSWORD: ${{DB_PASSWORD}}
      MYSQL_USER_PASSWORD: ${{UNSET_VAR:-{c['ComposeDefault']}}}
  api:
    image: example/api:1
    env_file: [app.env]
    environment:
      - API_TOKEN={c['ComposeList']}
      - DATABASE_URL=postgres://app:{c['ComposeUrl']}@db:5432/app
  cache:
    image: redis:7
    command: ["redis-server", "--requirepass", "{c['ComposeRequirepass']}"]
    healthcheck:
      test: ["CMD-SHELL", "mysqladmin ping -uroot -p{c['ComposeMysqlP']}"]
    labels:
      - "traefik.http.middlewares.auth.basicauth.users=admin:{c['ComposeBasicAuth']}"
    environment:
      X_SIGNATURE: {c['ComposeToken']}
      REDIS_PASSWORD: {c['ComposeRedisPw']}
  registry:
    image: registry:2
    environment:
      REGISTRY_HTTP_SECRET: {c['RegistryEnvSecret']}
    volumes:
      - /srv/registry/config.yml:/etc/docker/registry/config.yml:ro
x-note:
  password: {c['ComposeYamlPassword']}
""")
    put(root, "/srv/app/.env", f"DB_PASSWORD={c['DotEnv']}\n")
    put(root, "/srv/app/app.env", f"JWT_SECRET={c['EnvFile']}\n")
    put(root, "/srv/app/Dockerfile",
        f"FROM busybox\nARG NPM_TOKEN={c['DockerfileArg']}\nENV ADMIN_PASSWORD={c['DockerfileEnv']}\n"
        f"ENV MIRROR=https://build:{c['DockerfileUrl']}@mirror.example.com\nRUN true\n")
    put(root, "/srv/registry/config.yml", f"""version: 0.1
http:
  addr: :5000
  secret: {c['RegistryHttpSecret']}
storage:
  s3:
    accesskey: AKIAEXAMPLE
    secretkey: {c['RegistryS3Key']}
    region: eu-west-1
    bucket: images
""")
    return c


def leaks(text: str, canaries: dict[str, str]) -> list[str]:
    """Canaries (whole, or their unique random part) found in text."""
    return [p for p, v in canaries.items() if v in text or v[len("CANARY") + len(p):] in text]


def scan_args(root: Path) -> list[str]:
    return ["--root", str(root), "--path", "/srv/app", "--compose", "/srv/app/compose.yaml"]


def test_canaries_appear_in_no_output(tmp_path: Path, compose_v2) -> None:
    root = tmp_path / "root"
    c = planted_tree(root)
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "XDG_STATE_HOME": str(home / "state"), "XDG_CACHE_HOME": str(home / "cache"),
           "XDG_CONFIG_HOME": str(home / "config")}
    outputs: dict[str, str] = {}

    def run(name: str, *args: str, ok=(0, 1)) -> None:
        r = run_dockfix(*args, env=env, cwd=str(tmp_path))
        assert "Traceback" not in r.stderr, r.stderr
        assert r.returncode in ok, f"{name}: exit {r.returncode}: {r.stderr}"
        outputs[name + " stdout"] = r.stdout
        outputs[name + " stderr"] = r.stderr

    a = scan_args(root)
    run("scan text", "scan", *a, "--no-engine", "-v")
    run("scan json", "scan", *a, "--no-engine", "--format", "json", "-o", str(tmp_path / "scan.json"))
    run("scan sarif", "scan", *a, "--no-engine", "--format", "sarif", "-o", str(tmp_path / "scan.sarif"))
    doc = json.loads((tmp_path / "scan.json").read_text())
    env_pw = [f for f in doc["findings"] if f["id"] == "env-password"]
    assert env_pw and all(f["status"] == "fail" for f in env_pw), env_pw  # the canaries were seen
    dfile = [f for f in doc["findings"] if f["id"] == "dockerfile-secrets" or f["cis"] == "4.10"]
    assert any(f["status"] == "fail" for f in dfile), dfile
    run("report", "report", str(tmp_path / "scan.json"))
    run("plan", "plan", *a, "--no-engine", "-o", str(tmp_path / "plan.json"), ok=(0,))
    run("dry run", "--apply", "--dry-run", *a, "--no-engine", ok=(0,))
    run("dry run json", "--apply", "--dry-run", "--format", "json", *a, "--no-engine", ok=(0,))
    run("apply plan", "--apply", "--yes", "--plan", str(tmp_path / "plan.json"), *a, "--no-engine")
    run("journal", "journal", "--root", str(root), "--no-engine", ok=(0,))
    run("journal json", "journal", "--root", str(root), "--no-engine", "--format", "json", ok=(0,))
    run("rollback", "rollback", "--last", "--root", str(root), "--no-engine", ok=(0,))
    run("apply", "--apply", "--yes", "--format", "json", *a, "--no-engine")
    # a fix did touch daemon.json (whose neighbouring lines hold credentials): the diff was shown
    assert "daemon.json" in outputs["dry run stdout"]
    # every file dockfix wrote: reports, plan, and the journal (minus its 0600 before-images)
    written = [tmp_path / "scan.json", tmp_path / "scan.sarif", tmp_path / "plan.json"]
    journal = root / "var/lib/dockfix"
    written += [p for p in journal.rglob("*") if p.is_file() and not p.name.startswith("blob-")]
    written += [p for p in home.rglob("*") if p.is_file()]  # logs, caches, state: none expected
    for p in written:
        outputs[str(p)] = p.read_text(errors="replace")
    found = {name: leaks(text, c) for name, text in outputs.items()}
    assert not {k: v for k, v in found.items() if v}, "canaries leaked"
    # the journal's before-images hold the old content (that is their job): private to root
    for p in journal.rglob("blob-*"):
        assert (os.lstat(p).st_mode & 0o777) == 0o600
        assert os.lstat(p.parent).st_mode & 0o777 == 0o700


def test_parse_errors_name_the_place_never_the_content(tmp_path: Path) -> None:
    """Files dockfix cannot parse: the error names file, line and column; the canary on the broken line
    appears in no scan format and no report."""
    c = {p: canary(p) for p in ("DotEnvColon", "DupBlock", "DockerfileCont")}
    root = tmp_path / "root"
    put(root, "/srv/a/compose.yaml", "services:\n  a:\n    image: x\n    env_file: .env\n")
    put(root, "/srv/a/.env", f"GOOD=1\nNAME: {c['DotEnvColon']}==\n")
    put(root, "/srv/b/compose.yaml", f"services:\n  b:\n    image: x\n    environment:\n      P: |\n"
                                     f"        {c['DupBlock']}-1\n      P: |\n        {c['DupBlock']}-2\n")
    put(root, "/srv/c/Dockerfile", f"FROM x\nRUN echo a \\\n\n  --password={c['DockerfileCont']} \\\n")
    args = ["--root", str(root), "--no-engine", "--path", "/srv"]
    out = []
    for fmt in ("text", "json", "sarif"):
        r = run_dockfix("scan", *args, "--format", fmt, "-v", "-o", str(tmp_path / f"scan.{fmt}"))
        assert "Traceback" not in r.stderr and r.returncode in (0, 1), r.stderr
        out += [r.stdout, r.stderr, (tmp_path / f"scan.{fmt}").read_text()]
    r = run_dockfix("report", str(tmp_path / "scan.json"))
    out += [r.stdout, r.stderr]
    text = "\n".join(out)
    assert not leaks(text, c), leaks(text, c)
    assert "/srv/a/.env: line 2, column 5" in text
    assert "/srv/b/compose.yaml: line 7, column 7: found duplicate key 'P'" in text, text


@pytest.mark.engine
def test_canaries_in_containers_and_services_appear_in_no_output(tmp_path: Path, engine, swarm_engine) -> None:
    """Container env (created, not started) and swarm service env, on the private engines."""
    c = {p: canary(p) for p in ("ContainerEnv", "ContainerUrl", "ServiceEnv", "ServiceUrl")}
    engine.cli("create", "--name", "canary-app", "-e", f"DB_PASSWORD={c['ContainerEnv']}",
               "-e", f"BROKER_URL=amqp://app:{c['ContainerUrl']}@mq:5672/", BUSYBOX_IMAGE, "sleep", "60")
    swarm_engine.cli("service", "create", "--detach", "--name", "canary-svc", "--replicas", "0",
                     "-e", f"API_SECRET={c['ServiceEnv']}", "-e", f"DSN=mysql://u:{c['ServiceUrl']}@db/x",
                     BUSYBOX_IMAGE, "sleep", "60")
    root = tmp_path / "root"
    put(root, "/etc/docker/", mode=0o755)
    outputs = {}
    for label, url in (("engine", engine.url), ("swarm", swarm_engine.url)):
        for fmt in ("text", "json", "sarif"):
            r = run_dockfix("scan", "--root", str(root), "--docker-host", url, "--format", fmt, "-v")
            assert "Traceback" not in r.stderr
            assert r.returncode in (0, 1), r.stderr
            outputs[f"{label} {fmt}"] = r.stdout + r.stderr
            if fmt == "json":
                doc = json.loads(r.stdout)
                hits = [f for f in doc["findings"] if f["id"] == "env-password" and f["status"] == "fail"]
                assert hits, f"env-password did not see the {label} canary"
        r = run_dockfix("--apply", "--dry-run", "--root", str(root), "--docker-host", url, "--include-disruptive")
        assert "Traceback" not in r.stderr
        outputs[f"{label} dry run"] = r.stdout + r.stderr
    found = {k: leaks(v, c) for k, v in outputs.items()}
    assert not {k: v for k, v in found.items() if v}, "canaries leaked"


async def test_canaries_appear_on_no_app_screen(tmp_path: Path) -> None:
    """The app on the planted tree: every finding's detail page, the diff page, and the whole
    screen exported as SVG — no canary anywhere."""
    pytest.importorskip("textual")
    from textual.widgets import Markdown

    from dockfix.tui.app import DockfixApp
    from dockfix.screens.render import finding_markdown
    from dockfix.host import Host
    from dockfix.scan import Context

    root = tmp_path / "root"
    c = planted_tree(root)

    def context() -> Context:
        return Context(host=Host(root=str(root), engine=False), paths=["/srv/app"], compose=["/srv/app/compose.yaml"])

    app = DockfixApp(context, host_label="canary host")
    seen: list[str] = []

    async def settle(pilot) -> None:
        for _ in range(3):
            await app.workers.wait_for_complete()
            await pilot.pause(0.05)

    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        await pilot.press("6")  # every finding, passing ones too
        await settle(pilot)
        screen = app.screen
        findings = list(screen.findings.values())
        assert len(findings) > 20
        # every finding's detail page as the app renders it, and the pane shown for a few of them
        seen.extend(finding_markdown(f) for f in findings)
        for _ in range(12):
            await pilot.press("down")
            await pilot.pause(0.01)
            seen.append(screen.query_one("#detail-md", Markdown).source)
        seen.append(app.export_screenshot())
        # the diff page of everything fixable (daemon.json's diff has the credential lines as context)
        await pilot.press("d")
        await settle(pilot)
        seen.append(app.export_screenshot())
        seen.append(" ".join(str(w.render()) for w in app.screen.query("*") if hasattr(w, "render")))
    assert any("set to a literal value (line 5)" in s for s in seen)  # the app saw the canaries
    text = "\n".join(seen)
    assert not leaks(text, c), leaks(text, c)
