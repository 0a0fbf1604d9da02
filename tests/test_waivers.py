"""Waivers: the file format, matching, expiry, errors naming file and line, and adding an entry
without losing comments (dockfix/waivers.py; the CLI side is in tests/test_automation_cli.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from dockfix.model import Finding, Severity, Status
from dockfix.waivers import WaiverError, append_waiver, load_waivers, parse_waivers

TODAY = dt.date(2026, 12, 1)

GOOD = """\
# accepted risks
waivers:
  - check: icc            # the CI bridge
    subject: "container:ci-*"
    reason: CI runners talk to each other
    expires: 2027-03-31
    approved_by: sec@example.com
  # an old one
  - check: "3.5"
    reason: vendor image owns it
    expires: 2026-11-30
"""


def finding(id="icc", cis="2.2", subject="container:ci-1", status=Status.FAIL):
    return Finding(id=id, cis=cis, title="t", severity=Severity.MEDIUM, section=cis.split(".")[0], subject=subject,
                   status=status, evidence="e", explanation="x", manual_check="m", remediation="r")


def test_parse_match_and_expiry():
    wf = parse_waivers(GOOD, "w.yaml")
    assert [(w.check, w.line) for w in wf.waivers] == [("icc", 3), ("3.5", 9)]
    fs = [finding(), finding(subject="container:web"), finding("etc-docker-owner", "3.5", "/etc/docker")]
    expired = wf.apply(fs, TODAY)
    assert fs[0].waiver["reason"] == "CI runners talk to each other" and fs[0].waiver["expires"] == "2027-03-31"
    assert fs[0].status == Status.FAIL  # keeps its status
    assert fs[1].waiver is None  # subject glob does not match
    assert fs[2].waiver is None and [w.check for w in expired] == ["3.5"]  # expired: waives nothing
    # the expiry day itself is still covered
    fs = [finding("etc-docker-owner", "3.5", "/etc/docker")]
    assert wf.apply(fs, dt.date(2026, 11, 30)) == [] and fs[0].waiver


def test_numbers_follow_the_files_benchmark_version():
    """1.8.0 added a 2.7: 2.8 is live-restore in 1.7.0's numbering (2.15 -> ...), something else in 1.8.0."""
    from dockfix import benchmarks

    one = "waivers:\n  - check: 2.8\n    reason: r\n    expires: 2999-01-01\n"
    old = parse_waivers('benchmark: "1.7.0"\n' + one, "w.yaml").waivers[0].check_id
    new = parse_waivers(one, "w.yaml").waivers[0].check_id
    assert benchmarks.number(old, "1.7.0") == "2.8" and benchmarks.number(new, "1.8.0") == "2.8" and old != new
    with pytest.raises(WaiverError, match="w.yaml:1: benchmark: unknown benchmark version '9.9'"):
        parse_waivers('benchmark: "9.9"\n' + one, "w.yaml")


def test_cis_numbers_are_read_as_written():
    """YAML reads `check: 2.10` as the number 2.1: the waiver must cover 2.10, not 2.1."""
    wf = parse_waivers("waivers:\n  - check: 5.10   # memory\n    reason: r\n    expires: 2999-01-01\n"
                       "  - check: 2.2\n    reason: r\n    expires: 2999-01-01\n"
                       "  - {check: 2.10, reason: r, expires: 2999-01-01}\n", "w.yaml")
    assert [w.check for w in wf.waivers] == ["5.10", "2.2", "2.10"]


@pytest.mark.parametrize("text, problem", [
    ("waivers:\n  - check: icc\n    expires: 2027-01-01\n", "w.yaml:2: waiver without 'reason'"),
    ("waivers:\n  - check: icc\n    reason: r\n", "w.yaml:2: waiver without 'expires'"),
    ("waivers:\n  - check: icc\n    reason: r\n    expires: next week\n", "w.yaml:4: expires must be an ISO date"),
    ("waivers:\n  - reason: r\n    check: no-such-check\n    expires: 2027-01-01\n", "w.yaml:3: unknown check 'no-such-check'"),
    ("waivers:\n  - check: icc\n    reason: r\n    expires: 2027-01-01\n    owner: me\n", "w.yaml:5: unknown field 'owner'"),
    ("waivers:\n  - check: icc\n   reason: [\n", "w.yaml:"),
    ("- check: icc\n", "w.yaml:1: a waiver file is a mapping"),
    ("waivers: 3\n", "w.yaml:1: 'waivers' must be a list"),
    ("waivers:\n  - just text\n", "w.yaml:2: a waiver must be a mapping"),
])
def test_bad_files_name_file_and_line(text, problem):
    with pytest.raises(WaiverError) as e:
        parse_waivers(text, "w.yaml")
    assert str(e.value).startswith(problem), str(e.value)
    assert "\n" not in str(e.value)


def test_append_keeps_comments_and_layout(tmp_path):
    p = tmp_path / "waivers.yaml"
    p.write_text(GOOD + "# trailing comment\n")
    p.chmod(0o640)
    w = append_waiver(str(p), "2.5", subject="/etc/docker/daemon.json", reason="lab registry",
                      expires=dt.date(2027, 1, 31), approved_by="me", today=TODAY)
    text = p.read_text()
    assert text.startswith(GOOD) and text.endswith("# trailing comment\n")
    # named by its id (stable across benchmark versions), the number as a comment
    assert '  - check: "insecure-registries"  # CIS Docker Benchmark v1.8.0 2.5\n    subject: "/etc/docker/daemon.json"\n' in text
    assert w.line == 12 and (p.stat().st_mode & 0o777) == 0o640
    assert [x.check_id for x in load_waivers(str(p)).waivers] == ["icc", "etc-docker-owner", "insecure-registries"]


def test_append_creates_the_file_and_refuses_bad_input_without_touching_it(tmp_path):
    p = tmp_path / "w.yaml"
    append_waiver(str(p), "icc", reason="r", expires=dt.date(2027, 1, 1), today=TODAY)
    before = p.read_bytes()
    for kw, problem in [(dict(check="nope"), "unknown check 'nope'"),
                        (dict(reason=" "), "needs a reason"),
                        (dict(expires=dt.date(2020, 1, 1)), "in the past"),
                        (dict(), "already there")]:
        args = dict(check="icc", reason="r", expires=dt.date(2027, 1, 1)) | kw
        with pytest.raises(WaiverError, match=problem):
            append_waiver(str(p), args.pop("check"), today=TODAY, **args)
        assert p.read_bytes() == before
