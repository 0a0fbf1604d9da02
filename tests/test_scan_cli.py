"""`dockfix scan` as an admin runs it: the issue's acceptance points, formats, exit codes, selection."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

import dockfix.checks  # noqa: F401
from dockfix.model import REGISTRY
from helpers import REPO, by_id, put, run_dockfix, scan_json

#: A copy of the team's reference file (shared/reference/cis-docker-1.6.0.tsv), kept in the repository.
TSV = REPO / "tests" / "data" / "cis-docker-1.6.0.tsv"

#: Items of sections 1-3 that have no check, with the reason. Empty: every item is checked.
NOT_CHECKED: dict[str, str] = {}


def test_every_section_1_to_3_item_has_a_check_or_a_reason():
    with open(TSV, newline="", encoding="utf-8") as f:
        items = [row["cis_1_6_0"] for row in csv.DictReader(f, delimiter="\t")
                 if row["cis_1_6_0"].split(".")[0] in ("1", "2", "3")]
    assert len(items) == 20 + 18 + 24
    checked = {c.cis for c in REGISTRY.values()}
    missing = [i for i in items if i not in checked and i not in NOT_CHECKED]
    assert not missing, f"CIS items with neither a check nor a reason in NOT_CHECKED: {missing}"
    assert all(NOT_CHECKED[i].strip() for i in NOT_CHECKED)
    assert not set(NOT_CHECKED) & checked, "an item both checked and excused"


# ---------------------------------------------------------------------- the acceptance tree
def bad_tree(root: Path) -> None:
    put(root, "etc/docker/", mode=0o733, owner=(1000, 1000))
    put(root, "lib/systemd/system/docker.service", "[Service]\nExecStart=/usr/bin/dockerd\n", mode=0o666)
    put(root, "etc/docker/daemon.json", json.dumps({"icc": True, "insecure-registries": ["10.1.2.3:5000"]}, indent=2) + "\n")


def clean_tree(root: Path) -> None:
    put(root, "etc/docker/", mode=0o755)
    put(root, "lib/systemd/system/docker.service", "[Service]\nExecStart=/usr/bin/dockerd\n", mode=0o644)
    put(root, "etc/docker/daemon.json", json.dumps({"icc": False}, indent=2) + "\n")


ACCEPTANCE = {"3.5": "owned by 1000:1000", "3.6": "mode 0733", "3.2": "mode 0666",
              "2.2": "icc is true (/etc/docker/daemon.json:2)", "2.5": "10.1.2.3:5000"}


def test_acceptance_bad_tree_fails_with_evidence_and_clean_tree_does_not(tmp_path):
    bad, clean = tmp_path / "bad", tmp_path / "clean"
    bad_tree(bad)
    clean_tree(clean)
    r = run_dockfix("scan", "--root", str(bad), "--no-engine", "--format", "json")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    for cis, phrase in ACCEPTANCE.items():
        (f,) = by_id(doc, cis)
        assert f["status"] == "fail", f
        assert phrase in f["evidence"], f
        assert f["explanation"] and f["manual_check"] and f["remediation"] and f["title"] and f["severity"]
        assert "fix" in f
    assert by_id(doc, "3.5")[0]["subject"] == "/etc/docker"
    assert by_id(doc, "3.2")[0]["subject"] == "/lib/systemd/system/docker.service"
    doc = scan_json(clean, "--no-engine")
    for cis in ACCEPTANCE:
        assert [f["status"] for f in by_id(doc, cis)] == ["pass"], by_id(doc, cis)


def test_json_document_shape(tmp_path):
    bad_tree(tmp_path)
    doc = scan_json(tmp_path, "--no-engine")
    assert set(doc) >= {"dockfix", "host", "findings"}
    assert doc["host"]["root"] == str(tmp_path) and doc["host"]["engine"] is None
    keys = {"id", "cis", "title", "severity", "section", "subject", "status", "evidence", "location", "explanation",
            "manual_check", "remediation", "fix"}
    for f in doc["findings"]:
        assert keys <= set(f), f
        assert f["status"] in ("pass", "fail", "manual", "skip", "error")
        assert f["severity"] in ("critical", "high", "medium", "low", "info")
        assert f["evidence"], f"{f['id']}: no evidence"
    assert sum(doc["summary"].values()) == len(doc["findings"])
    # every finding names what it is about; only host-wide judgments are about "host"
    files_and_notes = [f for f in doc["findings"] if f["section"] in ("1", "2", "3", "notes")]
    assert {f["id"] for f in files_and_notes if f["subject"] == "host"} <= {"host-hardened"}


# ---------------------------------------------------------------------- secrets never shown
SECRET_COMPOSE = """\
services:
  db:
    image: mysql:8
    environment:
      MYSQL_ROOT_PASSWORD: hunter2
"""


@pytest.mark.parametrize("fmt", ["text", "json", "sarif"])
def test_compose_password_fails_and_is_never_shown(tmp_path, fmt):
    put(tmp_path, "srv/db/compose.yaml", SECRET_COMPOSE)
    out = tmp_path / f"report.{fmt}"
    r = run_dockfix("scan", "--root", str(tmp_path), "--no-engine", "--path", "/srv/db", "--format", fmt, "-v")
    r2 = run_dockfix("scan", "--root", str(tmp_path), "--no-engine", "--compose", str(tmp_path / "srv/db/compose.yaml"),
                     "--format", fmt, "-o", str(out), "--only", "env-password")
    assert r.returncode == 1 and r2.returncode == 1, r.stderr + r2.stderr
    for text in (r.stdout, r.stderr, r2.stdout, r2.stderr, out.read_text()):
        assert "hunter2" not in text
    if fmt == "json":
        (f,) = [f for f in json.loads(r.stdout)["findings"] if f["id"] == "env-password"]
        assert f["status"] == "fail" and f["subject"] == "compose:/srv/db/compose.yaml#db"
        assert f["evidence"] == "MYSQL_ROOT_PASSWORD set to a literal value (line 5)"
        assert f["location"] == {"path": "/srv/db/compose.yaml", "line": 5}
    if fmt == "sarif":
        res = [x for x in json.loads(r.stdout)["runs"][0]["results"] if x["ruleId"] == "env-password"]
        assert res[0]["locations"][0]["physicalLocation"]["region"]["startLine"] == 5
    if fmt == "text":
        assert "env-password  compose:/srv/db/compose.yaml#db" in r.stdout


def test_secret_from_dotenv_is_not_shown_either(tmp_path):
    put(tmp_path, "srv/app/compose.yaml", "services:\n  app:\n    image: a\n    environment:\n"
                                          "      - DATABASE_URL=postgres://app:${PGPASS}@db/app\n")
    put(tmp_path, "srv/app/.env", "PGPASS=correct-horse-battery\n", mode=0o600)
    for fmt in ("text", "json", "sarif"):
        r = run_dockfix("scan", "--root", str(tmp_path), "--no-engine", "--path", "/srv/app", "--format", fmt, "-v")
        assert r.returncode == 1
        assert "correct-horse" not in r.stdout + r.stderr
    doc = scan_json(tmp_path, "--no-engine", "--path", "/srv/app", "--only", "env-password")
    assert "from ${PGPASS}, defined in the .env" in by_id(doc, "env-password")[0]["evidence"]


# ---------------------------------------------------------------------- malformed input
def test_malformed_daemon_json_errors_where_read_and_the_rest_still_runs(tmp_path):
    bad_tree(tmp_path)
    put(tmp_path, "etc/docker/daemon.json", '{\n  "icc": true,\n  "log-level": "info",,\n}\n')
    r = run_dockfix("scan", "--root", str(tmp_path), "--no-engine", "--format", "json")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    section2 = [f for f in doc["findings"] if f["section"] == "2" and f["id"] != "daemon-rootless"]
    assert section2 and all(f["status"] == "error" for f in section2), [(f["id"], f["status"]) for f in section2]
    for f in section2:
        assert f["evidence"].startswith("/etc/docker/daemon.json: line 3"), f["evidence"]
        assert f["subject"] == "/etc/docker/daemon.json"
    # checks that do not read it still give their verdicts
    assert by_id(doc, "3.5")[0]["status"] == "fail" and by_id(doc, "3.2")[0]["status"] == "fail"
    assert by_id(doc, "3.18")[0]["status"] == "pass"
    text = run_dockfix("scan", "--root", str(tmp_path), "--no-engine", "--only", "2.2").stdout
    assert "ERROR  2.2    icc  /etc/docker/daemon.json" in text
    assert "/etc/docker/daemon.json: line 3 column" in text


def test_malformed_compose_file_is_an_error_naming_file_and_line(tmp_path):
    put(tmp_path, "srv/x/compose.yaml", "services:\n  db:\n    image: [\n")
    doc = scan_json(tmp_path, "--no-engine", "--path", "/srv/x", "--only", "env-password")
    (f,) = by_id(doc, "env-password")
    assert f["status"] == "error" and f["evidence"].startswith("/srv/x/compose.yaml: line 4")


# ---------------------------------------------------------------------- exit codes, --fail-on, selection
def test_exit_codes_and_fail_on(tmp_path):
    clean_tree(tmp_path)
    ok = run_dockfix("scan", "--root", str(tmp_path), "--no-engine", "--only", "3.5,3.6,2.2")
    assert ok.returncode == 0, ok.stdout
    bad_tree(tmp_path)  # 2.2 (icc) is medium, 2.5 high
    assert run_dockfix("scan", "--root", str(tmp_path), "--no-engine", "--only", "2.2").returncode == 1
    assert run_dockfix("scan", "--root", str(tmp_path), "--no-engine", "--only", "2.2", "--fail-on", "high").returncode == 0
    assert run_dockfix("scan", "--root", str(tmp_path), "--no-engine", "--only", "2.2,2.5", "--fail-on", "high").returncode == 1
    assert run_dockfix("scan", "--root", str(tmp_path), "--no-engine", "--only", "2.5", "--fail-on", "critical").returncode == 0
    for args, msg in [
        (["--fail-on", "urgent"], "unknown severity 'urgent'"),
        (["--only", "9.9.9"], "unknown check id '9.9.9'"),
        (["--skip", "no-such-check"], "unknown check id 'no-such-check'"),
        (["--compose", "/nope/compose.yaml"], "--compose file not found"),
        (["--path", "/nope"], "--path is not a directory"),
    ]:
        r = run_dockfix("scan", "--root", str(tmp_path), "--no-engine", *args)
        assert r.returncode == 2 and msg in r.stderr and r.stdout == "", (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1
    r = run_dockfix("scan", "--root", str(tmp_path / "missing"), "--no-engine")
    assert r.returncode == 2 and "--root is not a directory" in r.stderr
    r = run_dockfix("scan", "--root", str(tmp_path), "--no-engine", "--format", "yaml")
    assert r.returncode == 2


def test_only_and_skip(tmp_path):
    bad_tree(tmp_path)
    doc = scan_json(tmp_path, "--no-engine", "--only", "3.5,icc")
    assert sorted(f["id"] for f in doc["findings"]) == ["etc-docker-owner", "icc"]
    doc = scan_json(tmp_path, "--no-engine", "--only", "3", "--skip", "3.5,etc-docker-mode")
    ids = {f["id"] for f in doc["findings"]}
    assert ids and all(REGISTRY[i].section == "3" for i in ids)
    assert "etc-docker-owner" not in ids and "etc-docker-mode" not in ids and "docker-service-mode" in ids
    doc = scan_json(tmp_path, "--no-engine", "--skip", "1,2,3,4,5,6,7,notes")
    assert doc["findings"] == []
    doc = scan_json(tmp_path, "--no-engine", "--only", "notes")
    assert {f["section"] for f in doc["findings"]} == {"notes"}


def test_sarif_has_lines_for_file_located_findings(tmp_path):
    bad_tree(tmp_path)
    put(tmp_path, "src/app/Dockerfile", "FROM alpine\nRUN true\nENV API_TOKEN=abc123\n")
    put(tmp_path, "src/app/deploy.sh", "#!/bin/sh\n\ndocker pull --disable-content-trust alpine\n", mode=0o755)
    put(tmp_path, "src/app/compose.yaml", SECRET_COMPOSE)
    r = run_dockfix("scan", "--root", str(tmp_path), "--no-engine", "--path", "/src/app", "--format", "sarif")
    assert r.returncode == 1
    sarif = json.loads(r.stdout)
    assert sarif["version"] == "2.1.0"
    run = sarif["runs"][0]
    rules = {x["id"] for x in run["tool"]["driver"]["rules"]}
    lines = {}
    for res in run["results"]:
        assert res["ruleId"] in rules
        loc = res["locations"][0]["physicalLocation"]
        art = loc["artifactLocation"]
        lines[(res["ruleId"], art["uriBaseId"], art["uri"])] = loc.get("region", {}).get("startLine")
    # relative to the --path root (SRCROOT) or the host's root (HOSTROOT); the roots are recorded
    assert lines[("sensitive-file-in-image", "SRCROOT", "Dockerfile")] == 3
    assert lines[("disable-content-trust-flag", "SRCROOT", "deploy.sh")] == 3
    assert lines[("env-password", "SRCROOT", "compose.yaml")] == 5
    assert lines[("icc", "HOSTROOT", "etc/docker/daemon.json")] == 2
    assert run["originalUriBaseIds"]["SRCROOT"]["uri"] == f"file://{tmp_path}/src/app/"
    assert "abc123" not in r.stdout


def test_text_report_groups_sections_and_puts_skips_on_one_line(tmp_path):
    bad_tree(tmp_path)
    r = run_dockfix("scan", "--root", str(tmp_path), "--no-engine")
    out = r.stdout
    assert "[2] Docker daemon configuration" in out and "[3] Docker daemon configuration files" in out
    assert "\x1b[" not in out  # not a tty
    skips = [line for line in out.splitlines() if line.lstrip().startswith("SKIP")]
    assert skips and all(" - " in line for line in skips), skips  # "SKIP 3.7 registry-certs-owner ... - reason"
    i = out.splitlines().index(next(line for line in out.splitlines() if "SKIP   3.7" in line))
    assert not out.splitlines()[i + 1].startswith("         ")
    assert out.rstrip().splitlines()[-1].startswith("total: ")


def test_colour_only_on_a_tty_and_never_with_no_color(tmp_path):
    bad_tree(tmp_path)
    import os
    import pty

    def run_in_pty(env_extra):
        pid, fd = pty.fork()
        if pid == 0:  # child
            env = dict(os.environ, PYTHONPATH=str(REPO), **env_extra)
            env.pop("NO_COLOR", None) if "NO_COLOR" not in env_extra else None
            os.execve(sys.executable, [sys.executable, "-m", "dockfix", "scan", "--root", str(tmp_path),
                                       "--no-engine", "--only", "2.2"], env)
        chunks = []
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        os.waitpid(pid, 0)
        return b"".join(chunks).decode()

    assert "\x1b[31;1mFAIL" in run_in_pty({})
    assert "\x1b[" not in run_in_pty({"NO_COLOR": "1"})
