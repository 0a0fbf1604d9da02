"""Read the tables of a `dockfix report --format html` page back, with html.parser only."""

from __future__ import annotations

from html.parser import HTMLParser


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
