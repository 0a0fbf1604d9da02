"""`dockfix report`: per-host scan results merged into one fleet view (text, JSON, HTML)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from fleet_html import check_html_against_json, chromium, parse_report, screenshot
from helpers import put, run_dockfix


def scan_to(root: Path, out: Path, hostname: str | None = None) -> dict:
    r = run_dockfix("scan", "--root", str(root), "--no-engine", "--format", "json")
    assert r.returncode in (0, 1, 3), r.stderr
    doc = json.loads(r.stdout)
    if hostname is not None:
        doc["host"]["hostname"] = hostname  # as a scan of a live host (--root /) records it
    out.write_text(json.dumps(doc))
    return doc


@pytest.fixture(scope="module")
def three_hosts(tmp_path_factory) -> tuple[list[Path], list[dict]]:
    """Scans of three host trees with different faults; two named by hostname, one by file name."""
    base = tmp_path_factory.mktemp("fleet")
    a, b, c = base / "a", base / "b", base / "c"
    # a: /etc/docker owned by a user and writable by everyone else
    put(a, "etc/docker/", mode=0o733, owner=(1000, 1000))
    put(a, "etc/docker/daemon.json", '{"icc": false}\n')
    # b: a world-writable docker.service, icc left on
    put(b, "etc/docker/daemon.json", '{"icc": true}\n')
    put(b, "lib/systemd/system/docker.service", "[Service]\nExecStart=/usr/bin/dockerd\n", mode=0o666)
    # c: daemon.json world-writable
    put(c, "etc/docker/daemon.json", '{"icc": false}\n', mode=0o666)
    files = [base / "web-1.json", base / "web-2.json", base / "db-1.json"]
    docs = [scan_to(a, files[0], "web-1.example.net"), scan_to(b, files[1], "web-2.example.net"),
            scan_to(c, files[2])]
    return files, docs


def report(*args: str) -> subprocess.CompletedProcess:
    return run_dockfix("report", *args)


def failing_hosts(fleet: dict, check_id: str) -> list[str]:
    c = next(c for c in fleet["checks"] if c["id"] == check_id)
    return [h["host"] for h in c["failing_hosts"]]


def test_json_names_each_hosts_faults_and_counts(three_hosts):
    files, docs = three_hosts
    r = report("--format", "json", *map(str, files))
    assert r.returncode == 0, r.stderr
    fleet = json.loads(r.stdout)
    names = [h["name"] for h in fleet["hosts"]]
    # host.hostname when the scan recorded one, else the file name
    assert names == ["web-1.example.net", "web-2.example.net", "db-1"]
    assert failing_hosts(fleet, "etc-docker-owner") == ["web-1.example.net"]
    assert failing_hosts(fleet, "etc-docker-mode") == ["web-1.example.net"]
    assert failing_hosts(fleet, "docker-service-mode") == ["web-2.example.net"]
    assert failing_hosts(fleet, "icc") == ["web-2.example.net"]
    assert failing_hosts(fleet, "daemon-json-mode") == ["db-1"]
    icc = next(c for c in fleet["checks"] if c["id"] == "icc")
    assert (icc["failing"], icc["hosts_scanned"]) == (1, 3)
    # every host's counts are its own scan's summary
    for h, doc in zip(fleet["hosts"], docs):
        assert h["counts"] == doc["summary"]
    by_name = {h["name"]: h for h in fleet["hosts"]}
    assert by_name["web-1.example.net"]["sections"]["3"]["worst"] == "fail"
    assert by_name["web-1.example.net"]["sections"]["3"]["counts"]["fail"] == 2
    assert by_name["web-2.example.net"]["sections"]["2"]["worst"] == "fail"
    assert fleet["summary"]["hosts"] == 3


def test_text_lists_failing_checks_with_their_hosts(three_hosts, tmp_path):
    files, _ = three_hosts
    out = tmp_path / "fleet.txt"
    r = report("-o", str(out), *map(str, files))
    assert r.returncode == 0 and r.stdout == "", r.stderr
    text = out.read_text()
    assert "3 hosts" in text
    lines = text.splitlines()
    i = next(n for n, line in enumerate(lines) if " etc-docker-owner " in line)
    assert "1/3" in lines[i]
    assert "failing on: web-1.example.net" in lines[i + 2]
    header = next(line for line in lines if line.startswith("host"))
    assert header.split() == ["host", "fail", "error", "manual", "skip", "pass", "waived", "scan", "age"]


def test_one_host_per_hostname_newest_scan_wins(three_hosts, tmp_path):
    files, _ = three_hosts
    older = json.loads(files[0].read_text())
    older["scanned_at"] = "2020-01-01T00:00:00Z"
    (tmp_path / "old.json").write_text(json.dumps(older))
    r = report("--format", "json", str(files[0]), str(tmp_path / "old.json"))
    fleet = json.loads(r.stdout)
    assert [h["name"] for h in fleet["hosts"]] == ["web-1.example.net"]
    assert fleet["hosts"][0]["file"] == str(files[0]) and fleet["hosts"][0]["age_s"] < 600
    assert fleet["duplicates"] == [{"host": "web-1.example.net", "kept": str(files[0]),
                                    "ignored": [str(tmp_path / "old.json")]}]
    assert "duplicate scans of web-1.example.net" in r.stderr
    text = report(str(tmp_path / "old.json")).stdout
    assert "web-1.example.net" in text and " d" in text.splitlines()[3]  # the scan's age, in days


@pytest.mark.parametrize("content, problem", [
    ("{\"dockfix\": ", "not valid JSON (line 1"),
    ("[1, 2]", "not a dockfix scan document (the top level is not an object)"),
    ('{"version": "2.1.0", "runs": []}', "not a dockfix scan document (no 'dockfix' version field)"),
    ('{"dockfix": "0.1.0", "findings": [{"id": "x", "status": "broken", "section": "2"}]}',
     "unknown status 'broken'"),
    (b"\xff\xfe{}", "not UTF-8 text"),
])
def test_bad_input_is_one_line_naming_the_file(three_hosts, tmp_path, content, problem):
    files, _ = three_hosts
    bad = tmp_path / "bad.json"
    bad.write_bytes(content if isinstance(content, bytes) else content.encode())
    out = tmp_path / "out.html"
    r = report("--format", "html", "-o", str(out), str(files[0]), str(bad))
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith(f"dockfix: {bad}: "), r.stderr
    assert problem in r.stderr
    assert not out.exists() and os.listdir(tmp_path) == ["bad.json"]


def test_missing_file(tmp_path):
    r = report(str(tmp_path / "nope.json"))
    assert r.returncode == 2 and r.stderr.strip() == f"dockfix: {tmp_path / 'nope.json'}: cannot read: No such file or directory"


# ---------------------------------------------------------------------- HTML
def test_html_table_matches_json(three_hosts, tmp_path):
    files, _ = three_hosts
    fleet = json.loads(report("--format", "json", *map(str, files)).stdout)
    out = tmp_path / "fleet.html"
    assert report("--format", "html", "-o", str(out), *map(str, files)).returncode == 0
    page = out.read_text()
    check_html_against_json(page, fleet)
    by_host = {r["attrs"]["data-host"]: r for r in parse_report(page).tables["hosts"]["rows"]}
    sec3 = next(c for c in by_host["web-1.example.net"]["cells"] if c["attrs"].get("data-section") == "3")
    assert sec3["attrs"]["class"].split() == ["st", "fail"] and sec3["text"] == "2 fail"
    sec3 = next(c for c in by_host["web-2.example.net"]["cells"] if c["attrs"].get("data-section") == "3")
    assert sec3["attrs"]["class"].split() == ["st", "fail"] and sec3["text"] == "1 fail"


def test_html_escapes_everything(tmp_path):
    evil = '<script>alert("x")</script><img src=http://evil.example/x.png>'
    doc = {
        "dockfix": "0.1.0",
        "host": {"root": "/", "hostname": evil},
        "summary": {},
        "findings": [{"id": "icc\"><b>", "cis": "2.2", "title": "<i>t</i>", "severity": "medium", "section": "2",
                      "subject": "s", "status": "fail", "evidence": "x</li><script>bad()</script>"}],
    }
    f = tmp_path / "evil.json"
    f.write_text(json.dumps(doc))
    out = tmp_path / "r.html"
    assert report("--format", "html", "-o", str(out), str(f)).returncode == 0
    page = out.read_text()
    parsed = parse_report(page)
    assert parsed.scripts == 1 and parsed.external == []
    assert "<script>alert" not in page and "<img" not in page and "<i>t</i>" not in page
    row = parsed.tables["hosts"]["rows"][0]
    assert row["attrs"]["data-host"] == evil and row["cells"][0]["text"] == evil
    check = parsed.tables["checks"]["rows"][0]
    assert check["attrs"]["data-check"] == 'icc"><b>'
    assert "x</li><script>bad()</script>" in check["cells"][4]["items"][0]["text"]


# ---------------------------------------------------------------------- in a browser
@pytest.mark.slow
def test_html_opens_in_chromium_and_sorts(three_hosts, tmp_path, request):
    files, _ = three_hosts
    fleet = json.loads(report("--format", "json", *map(str, files)).stdout)
    page = tmp_path / "fleet.html"
    assert report("--format", "html", "-o", str(page), *map(str, files)).returncode == 0
    screenshot(page, "fleet-report.png", request)
    # The DOM the browser built holds the same table as the JSON.
    r = chromium("--dump-dom", page.as_uri())
    assert r.returncode == 0, r.stderr[-2000:]
    check_html_against_json(r.stdout, fleet)
    # Clicking a heading sorts, as a user would: "host" once (by name, ascending), "fail" twice
    # (descending). Each state is recorded on the body and read back from the DOM.
    html_text = page.read_text()
    click = """<script>
      function order() { return Array.from(document.querySelectorAll('#hosts tbody tr')).map(r => r.dataset.host).join('|'); }
      var host = document.querySelector('#hosts th'), fail = document.querySelector('#hosts th[data-col=fail]');
      host.click(); document.body.dataset.byName = order() + ' ' + host.getAttribute('aria-sort');
      fail.click(); fail.click(); document.body.dataset.byFail = order() + ' ' + fail.getAttribute('aria-sort');
      </script></body>"""
    clicked = tmp_path / "clicked.html"
    clicked.write_text(html_text.replace("</body>", click))
    r = chromium("--dump-dom", clicked.as_uri())
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'data-by-name="db-1|web-1.example.net|web-2.example.net ascending"' in r.stdout
    by_fail = r.stdout.split('data-by-fail="', 1)[1].split('"', 1)[0]
    names, state = by_fail.split(" ")
    assert state == "descending"
    fails = {h["name"]: h["counts"]["fail"] for h in fleet["hosts"]}
    assert [fails[n] for n in names.split("|")] == sorted(fails.values(), reverse=True)


def test_waived_findings_in_the_fleet_report(tmp_path):
    """A waived failure is shown as waived (text, JSON, HTML), does not colour its section and does
    not count for `report --fail-on`."""
    root = tmp_path / "host"
    put(root, "etc/docker/daemon.json", '{"icc": true}\n')
    put(root, "etc/dockfix/waivers.yaml",
        "waivers:\n  - check: icc\n    reason: lab bridge <b>\n    expires: 2999-12-31\n")
    out = tmp_path / "lab.json"
    r = run_dockfix("scan", "--root", str(root), "--no-engine", "--only", "icc", "--format", "json", "-o", str(out))
    assert r.returncode == 0, r.stderr
    fleet = json.loads(report("--format", "json", str(out)).stdout)
    (icc,) = [c for c in fleet["checks"] if c["id"] == "icc"]
    assert icc["failing"] == 0 and icc["waived_hosts"][0]["reason"] == "lab bridge <b>"
    assert fleet["hosts"][0]["waived"] == 1 and fleet["hosts"][0]["counts"]["fail"] == 1  # keeps its status
    assert "2" in fleet["sections"] and "2" not in fleet["hosts"][0]["sections"]  # but colours no cell
    assert "waived on lab until 2999-12-31: lab bridge <b>" in report(str(out)).stdout
    page = report("--format", "html", str(out)).stdout
    assert 'class="waived-host" data-host="lab"' in page and "lab bridge &lt;b&gt;" in page
    check_html_against_json(page, fleet)
    assert report("--fail-on", "low", str(out)).returncode == 0
