"""Read the tables of a `dockfix report --format html` page back, with html.parser only."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

#: Screenshots are kept here (git-ignored) for a person to look at after the run.
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


class _Tables(HTMLParser):
    """Collects every <table id=...>: its header cells and, per row, each cell's attributes and text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, dict] = {}
        self.external: list[str] = []
        self.scripts = 0
        self._table: dict | None = None
        self._row: dict | None = None
        self._cell: dict | None = None
        self._li: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("src", "href"):
            if a.get(key):
                self.external.append(a[key])
        if tag == "link":
            self.external.append(a.get("href") or "<link>")
        if tag == "script":
            self.scripts += 1
        if tag == "table" and a.get("id"):
            self._table = self.tables[a["id"]] = {"head": [], "rows": []}
        elif self._table is None:
            return
        elif tag == "tr":
            self._row = {"attrs": a, "cells": []}
        elif tag in ("td", "th"):
            self._cell = {"tag": tag, "attrs": a, "text": "", "items": []}
        elif tag == "li" and self._cell is not None:
            self._li = {"attrs": a, "text": ""}

    def handle_endtag(self, tag):
        if self._table is None:
            return
        if tag == "li" and self._li is not None and self._cell is not None:
            self._cell["items"].append(self._li)
            self._li = None
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._cell["text"] = " ".join(self._cell["text"].split())
            self._row["cells"].append(self._cell)
            self._cell = None
        elif tag == "tr" and self._row is not None:
            cells = self._row["cells"]
            if cells and all(c["tag"] == "th" for c in cells):
                self._table["head"] = cells
            else:
                self._table["rows"].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data
        if self._li is not None:
            self._li["text"] += data


def parse_report(html_text: str) -> _Tables:
    p = _Tables()
    p.feed(html_text)
    p.close()
    return p


def check_html_against_json(page: str, fleet: dict) -> None:
    """The page's hosts table and failing-checks table say what the JSON says."""
    tables = parse_report(page)
    hosts = tables.tables["hosts"]
    sections = list(fleet["sections"])
    head = [c["attrs"].get("data-section") for c in hosts["head"] if c["attrs"].get("data-section")]
    assert head == sections
    assert [r["attrs"]["data-host"] for r in hosts["rows"]] == [h["name"] for h in fleet["hosts"]]
    for row, h in zip(hosts["rows"], fleet["hosts"]):
        cells = row["cells"]
        assert cells[0]["text"] == h["name"]
        for c in cells:
            col = c["attrs"].get("data-col")
            if col:
                assert int(c["text"]) == h["counts"][col]
        by_sec = {c["attrs"]["data-section"]: c for c in cells if "data-section" in c["attrs"]}
        assert list(by_sec) == sections
        for sec, cell in by_sec.items():
            want = h["sections"].get(sec)
            if want is None:
                assert "none" in cell["attrs"]["class"].split()
                continue
            assert want["worst"] in cell["attrs"]["class"].split()
            for st, n in want["counts"].items():
                assert int(cell["attrs"][f"data-{st}"]) == n
            if want["counts"].get("fail"):
                assert f"{want['counts']['fail']} fail" in cell["text"]
    rows = tables.tables["checks"]["rows"]
    failing = [c for c in fleet["checks"] if c["failing"] or c["error_hosts"] or c.get("waived_hosts")]
    assert [r["attrs"]["data-check"] for r in rows] == [c["id"] for c in failing]
    for r, c in zip(rows, failing):
        assert r["cells"][3]["text"] == f"{c['failing']} / {c['hosts_scanned']}"
        listed = [li["attrs"]["data-host"] for li in r["cells"][4]["items"] if "failing-host" in li["attrs"]["class"]]
        assert listed == [fh["host"] for fh in c["failing_hosts"]]
    assert tables.external == [] and tables.scripts == 1


# ---------------------------------------------------------------------- headless Chromium
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


def chromium(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true and chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="dfx-chromium-") as profile:
        return subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=120)


def screenshot(page: Path, name: str, request) -> Path:
    """Open the page in headless Chromium and keep a PNG of it under test-artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    png = ARTIFACTS / name
    png.unlink(missing_ok=True)
    r = chromium("--window-size=1400,1000", f"--screenshot={png}", page.as_uri())
    assert png.exists(), r.stderr[-2000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # a rendered page, not a blank one
    capman = request.config.pluginmanager.getplugin("capturemanager")
    with capman.global_and_fixture_disabled():  # shown even when pytest captures output
        print(f"\nscreenshot of the fleet report: {png}", flush=True)
    return png
