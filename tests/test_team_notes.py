"""Team notes: tags by heading, CIS number and comment; problems reported; CLI, config and JSON."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from dockfix.team_notes import parse_notes
from helpers import put, run_dockfix, scan_json

NOTES = textwrap.dedent("""\
    # Our notes

    Intro text for people; not a note.

    ## etc-docker-owner

    Ask #platform before changing the owner.

    ### Details

    Ansible role docker-host sets it.

    ## 3.1 The unit file

    We ship an override.

    ## Neighbours
    <!-- dockfix: icc -->

    icc is off everywhere since 2024.

    ## Wishlist

    Nothing tagged here.

    ## no-such-check

    Text under an unknown id.

    ```
    ## etc-docker-mode
    ```
    """)


def test_tags_by_heading_cis_number_and_comment():
    tn = parse_notes(NOTES, "notes.md")
    assert tn.for_check("etc-docker-owner") == [
        "Ask #platform before changing the owner.\n\n### Details\n\nAnsible role docker-host sets it."]
    assert tn.for_check("docker-service-owner") == ["**The unit file**\n\nWe ship an override."]
    assert tn.for_check("icc") == ["**Neighbours**\n\nicc is off everywhere since 2024."]
    # a heading inside a code block is text, not a tag
    assert tn.for_check("etc-docker-mode") == []
    assert tn.tagged_checks == {"etc-docker-owner", "docker-service-owner", "icc"}


def test_untagged_and_unknown_are_reported_with_line():
    tn = parse_notes(NOTES, "notes.md")
    assert tn.warnings() == [
        "notes.md:22: section 'Wishlist' has no dockfix tag (a check id or CIS number as the heading, "
        "or <!-- dockfix: ID -->): it is not shown",
        "notes.md:26: unknown check id 'no-such-check': no check of dockfix has it",
    ]


def test_comment_with_several_tags_and_unknown_cis_number():
    tn = parse_notes("## Registry\n<!-- dockfix: icc, 9.99 -->\nbody\n\n## 2.14\n\n", "n.md")
    assert tn.for_check("icc") == ["**Registry**\n\nbody"]
    assert tn.warnings() == ["n.md:2: unknown CIS number '9.99': no check of dockfix has it",
                             "n.md:5: section tagged 2.14 is empty"]


def test_shipped_example_is_clean():
    example = Path(__file__).resolve().parent.parent / "examples" / "team-notes.md"
    tn = parse_notes(example.read_text(), str(example))
    assert tn.warnings() == []
    assert len(tn.tagged_checks) >= 3


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "root"
    put(root, "etc/docker/", mode=0o755, owner=(1000, 1000))
    put(root, "etc/docker/daemon.json", '{"icc": true}\n')
    put(root, "lib/systemd/system/docker.service", "[Service]\nExecStart=/usr/bin/dockerd\n", owner=(1000, 0))
    return root


def test_scan_json_carries_notes_for_three_checks_and_reports_unknown_tag(tree, tmp_path):
    notes = tmp_path / "notes.md"
    notes.write_text(NOTES)
    r = run_dockfix("scan", "--root", str(tree), "--no-engine", "--format", "json", "--notes", str(notes),
                    env={"HOME": str(tmp_path)})
    assert r.returncode == 1, r.stderr
    import json

    doc = json.loads(r.stdout)
    got = {f["id"]: f["team_notes"] for f in doc["findings"] if f["team_notes"]}
    assert set(got) == {"etc-docker-owner", "docker-service-owner", "icc"}
    assert "Ask #platform" in got["etc-docker-owner"][0]
    assert all(f["team_notes"] == [] for f in doc["findings"] if f["id"] not in got)
    assert f"{notes}:26: unknown check id 'no-such-check'" in r.stderr
    assert f"{notes}:22: section 'Wishlist' has no dockfix tag" in r.stderr


def test_notes_from_user_config(tree, tmp_path):
    home = tmp_path / "home"
    put(home, ".config/dockfix/notes.md", "## icc\n\nfrom the user's config\n")
    put(home, ".config/dockfix/config.toml", 'notes = "notes.md"\n')
    doc = scan_json(tree, "--no-engine", "--only", "icc", env={"HOME": str(home)})
    assert doc["findings"][0]["team_notes"] == ["from the user's config"]


def test_notes_from_host_config_below_root(tree, tmp_path):
    put(tree, "etc/dockfix/team.md", "## 3.5\n\nfrom the host's config\n")
    put(tree, "etc/dockfix/config.toml", 'notes = "/etc/dockfix/team.md"\n')
    doc = scan_json(tree, "--no-engine", "--only", "3.5", env={"HOME": str(tmp_path)})
    assert doc["findings"][0]["team_notes"] == ["from the host's config"]


def test_bad_config_and_missing_notes_are_one_line_errors(tree, tmp_path):
    put(tree, "etc/dockfix/config.toml", 'notes = \n')
    r = run_dockfix("scan", "--root", str(tree), "--no-engine", env={"HOME": str(tmp_path)})
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith(f"dockfix: {tree}/etc/dockfix/config.toml: ") and r.stderr.count("\n") == 1
    r = run_dockfix("scan", "--root", str(tree), "--no-engine", "--notes", str(tmp_path / "nope.md"),
                    env={"HOME": str(tmp_path)})
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == f"dockfix: {tmp_path}/nope.md: notes file not found\n"
