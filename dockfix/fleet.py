"""`dockfix report`: many hosts' scans merged into one fleet view.

Input is one `dockfix scan --format json` document per host (the Ansible role in
contrib/ansible fetches them). Output says, for each check, how many hosts fail it and which,
and for each host its counts by status and the worst status of each CIS section — as text, JSON,
or a self-contained HTML page (inline CSS and JavaScript, no external URL, every value escaped).

This module is on a headless path: it never imports Textual.
"""

from __future__ import annotations

import html
import json
import os
import stat
from dataclasses import dataclass
from typing import Any

from dockfix import __version__
from dockfix.model import STATUS_ORDER

#: The statuses a scan document may hold, in the order reports list them.
STATUSES = [s.value for s in STATUS_ORDER]
#: From worst to best: a cell (a host's section, a host's check) takes the worst status among its
#: findings. A skip (not applicable here) ranks below a pass, so a section that passes and skips
#: shows as passing, and only a section where nothing applied shows as skipped.
WORST_FIRST = ["fail", "error", "manual", "pass", "skip"]


class ReportInputError(Exception):
    """A file that is not a dockfix scan document; the message is one line naming the file."""


@dataclass
class HostScan:
    name: str
    file: str
    doc: dict[str, Any]


# ---------------------------------------------------------------------- reading
def load_scan(path: str) -> HostScan:
    """Read and validate one per-host scan document."""
    try:
        # O_NONBLOCK and a check of what was opened: a FIFO would block open(), a device never ends
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ReportInputError(f"{path}: not a regular file, not a dockfix scan document")
            raw = f.read(64 * 1024 * 1024 + 1)
    except OSError as e:
        raise ReportInputError(f"{path}: cannot read: {e.strerror}") from None
    if len(raw) > 64 * 1024 * 1024:
        raise ReportInputError(f"{path}: too large for a scan document (over 64 MiB)")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ReportInputError(f"{path}: not UTF-8 text, not a dockfix scan document") from None
    except json.JSONDecodeError as e:
        raise ReportInputError(f"{path}: not valid JSON (line {e.lineno} column {e.colno}: {e.msg})") from None
    except RecursionError:
        raise ReportInputError(f"{path}: nested too deeply, not a dockfix scan document") from None
    except ValueError as e:  # e.g. a number of more than 4300 digits
        raise ReportInputError(f"{path}: not a dockfix scan document ({str(e)[:80]})") from None
    problem = _shape_problem(doc)
    if problem:
        raise ReportInputError(f"{path}: not a dockfix scan document ({problem})")
    host = doc.get("host") or {}
    name = host.get("hostname") if isinstance(host, dict) else None
    if not isinstance(name, str) or not name.strip():
        name = os.path.basename(path)
        for ext in (".json", ".JSON"):
            if name.endswith(ext) and len(name) > len(ext):
                name = name[: -len(ext)]
    return HostScan(name=name.strip(), file=path, doc=doc)


def _shape_problem(doc: Any) -> str | None:
    if not isinstance(doc, dict):
        return "the top level is not an object"
    if "dockfix" not in doc:
        return "no 'dockfix' version field"
    findings = doc.get("findings")
    if not isinstance(findings, list):
        return "no 'findings' list"
    for i, f in enumerate(findings):
        if not isinstance(f, dict):
            return f"finding {i + 1} is not an object"
        for key in ("id", "status", "section"):
            if not isinstance(f.get(key), str):
                return f"finding {i + 1} has no '{key}'"
        if f["status"] not in STATUSES:
            return f"finding {i + 1} has an unknown status {f['status'][:40]!r}"
    if "host" in doc and doc["host"] is not None and not isinstance(doc["host"], dict):
        return "'host' is not an object"
    return None


def _unique_names(scans: list[HostScan]) -> None:
    """Two files with the same host name (cloned machines, two scans of one host) stay apart."""
    seen: dict[str, int] = {}
    for s in scans:
        seen[s.name] = seen.get(s.name, 0) + 1
    for s in scans:
        if seen[s.name] > 1:
            s.name = f"{s.name} ({os.path.basename(s.file)})"


# ---------------------------------------------------------------------- merging
def worst(statuses) -> str | None:
    present = set(statuses)
    return next((s for s in WORST_FIRST if s in present), None)


def _check_sort_key(c: dict) -> tuple:
    if c.get("cis"):
        try:
            return (0, tuple(int(x) for x in str(c["cis"]).split(".")), c["id"])
        except ValueError:
            return (0, (), c["id"])
    return (1, (), c["id"])


def _section_sort_key(sec: str) -> tuple:
    return (0, int(sec), sec) if sec.isdigit() else (1, 0, sec)


def _one_benchmark(scans: list[HostScan]) -> str:
    """The CIS Docker Benchmark version every scan is numbered in (documents before --benchmark existed
    are v1.6.0). ReportInputError naming two files when they differ: their numbers would be mixed up."""
    seen: dict[str, str] = {}
    for s in scans:
        b = s.doc.get("benchmark")
        version = str(b.get("version")) if isinstance(b, dict) and b.get("version") else "1.6.0"
        seen.setdefault(version, s.file)
    if len(seen) > 1:
        (v1, f1), (v2, f2) = list(seen.items())[:2]
        raise ReportInputError(f"{f2}: numbered as in CIS Docker Benchmark v{v2}, but {f1} as in v{v1}: "
                               "scan every host with the same --benchmark")
    return next(iter(seen), "1.8.0")


def merge(scans: list[HostScan]) -> dict[str, Any]:
    """The fleet view as a JSON-ready dict (the `--format json` output)."""
    from dockfix.model import SECTIONS

    _unique_names(scans)
    benchmark = _one_benchmark(scans)
    checks: dict[str, dict[str, Any]] = {}
    hosts = []
    all_sections: set[str] = set()
    for s in scans:
        counts = {st: 0 for st in STATUSES}
        per_section: dict[str, list[str]] = {}
        per_check: dict[str, list[dict]] = {}
        for f in s.doc["findings"]:
            counts[f["status"]] += 1
            per_section.setdefault(f["section"], []).append(f["status"])
            per_check.setdefault(f["id"], []).append(f)
        all_sections.update(per_section)
        hosts.append({
            "name": s.name,
            "file": s.file,
            "dockfix": str(s.doc.get("dockfix")),
            "root": (s.doc.get("host") or {}).get("root"),
            "counts": counts,
            "sections": {
                sec: {"worst": worst(sts), "counts": {st: sts.count(st) for st in STATUSES if st in sts}}
                for sec, sts in sorted(per_section.items(), key=lambda kv: _section_sort_key(kv[0]))
            },
        })
        for cid, fs in per_check.items():
            first = fs[0]
            c = checks.setdefault(cid, {
                "id": cid,
                "cis": first.get("cis"),
                "title": str(first.get("title") or ""),
                "severity": str(first.get("severity") or ""),
                "section": first["section"],
                "failing": 0,
                "hosts_scanned": 0,
                "statuses": {st: 0 for st in STATUSES},
                "failing_hosts": [],
                "error_hosts": [],
            })
            c["hosts_scanned"] += 1
            w = worst(f["status"] for f in fs)
            c["statuses"][w] += 1
            if w == "fail":
                c["failing"] += 1
                c["failing_hosts"].append({
                    "host": s.name,
                    "subjects": [str(f.get("subject") or "") for f in fs if f["status"] == "fail"],
                    "evidence": [str(f.get("evidence") or "") for f in fs if f["status"] == "fail"],
                })
            elif w == "error":
                c["error_hosts"].append({
                    "host": s.name,
                    "evidence": [str(f.get("evidence") or "") for f in fs if f["status"] == "error"],
                })
    ordered = sorted(checks.values(), key=_check_sort_key)
    sections = sorted(all_sections, key=_section_sort_key)
    totals = {st: sum(h["counts"][st] for h in hosts) for st in STATUSES}
    return {
        "dockfix": __version__,
        "kind": "fleet-report",
        "benchmark": benchmark,
        "hosts": hosts,
        "sections": {sec: SECTIONS.get(sec, sec) for sec in sections},
        "checks": ordered,
        "summary": {
            "hosts": len(hosts),
            "hosts_failing": sum(1 for h in hosts if h["counts"]["fail"]),
            "checks_failing": sum(1 for c in ordered if c["failing"]),
            "findings": totals,
        },
    }


# ---------------------------------------------------------------------- text
def render_text(fleet: dict[str, Any]) -> str:
    hosts, summary = fleet["hosts"], fleet["summary"]
    out = [f"dockfix {__version__} fleet report: {summary['hosts']} hosts, "
           f"{summary['hosts_failing']} with failures, {summary['checks_failing']} checks failing somewhere"
           + (f"; mapped to CIS Docker Benchmark v{fleet['benchmark']}" if fleet.get("benchmark") else "")]
    width = max([len("host")] + [len(h["name"]) for h in hosts])
    out.append("")
    out.append(f"{'host':{width}}  " + "  ".join(f"{st:>6}" for st in STATUSES))
    for h in hosts:
        out.append(f"{h['name']:{width}}  " + "  ".join(f"{h['counts'][st]:>6}" for st in STATUSES))
    failing = [c for c in fleet["checks"] if c["failing"] or c["error_hosts"]]
    out.append("")
    if not failing:
        out.append("no check fails on any host")
    else:
        out.append("checks that fail (hosts failing / hosts scanned):")
        for c in failing:
            out.append(f"  {c['cis'] or '-':6} {c['id']}  {c['failing']}/{c['hosts_scanned']}  [{c['severity']}]")
            out.append(f"         {c['title']}")
            if c["failing_hosts"]:
                out.append("         failing on: " + ", ".join(fh["host"] for fh in c["failing_hosts"]))
            for eh in c["error_hosts"]:
                out.append(f"         error on {eh['host']}: {'; '.join(eh['evidence'])}")
    return "\n".join(out) + "\n"


def render_json(fleet: dict[str, Any]) -> str:
    return json.dumps(fleet, indent=2) + "\n"


# ---------------------------------------------------------------------- HTML
CSS = """
:root { --fail:#c62828; --error:#8e24aa; --manual:#ef8f00; --skip:#9e9e9e; --pass:#2e7d32; }
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #212121; background: #fafafa; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
.sub { color: #616161; margin-bottom: 16px; }
.legend span { display: inline-block; padding: 2px 8px; margin-right: 6px; border-radius: 3px; color: #fff; font-size: 12px; }
table { border-collapse: collapse; background: #fff; box-shadow: 0 1px 2px rgba(0,0,0,.15); }
th, td { border: 1px solid #e0e0e0; padding: 5px 9px; text-align: left; vertical-align: top; }
th { background: #eceff1; cursor: pointer; user-select: none; white-space: nowrap; }
th[aria-sort=ascending]::after { content: " \\25B2"; font-size: 10px; }
th[aria-sort=descending]::after { content: " \\25BC"; font-size: 10px; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.st { color: #fff; font-weight: 600; white-space: nowrap; text-align: center; }
.fail { background: var(--fail); } .error { background: var(--error); } .manual { background: var(--manual); }
.skip { background: var(--skip); } .pass { background: var(--pass); } td.none { background: #f5f5f5; color: #9e9e9e; }
td.host { font-weight: 600; white-space: nowrap; }
th[data-section] { white-space: normal; min-width: 6.5em; max-width: 10em; vertical-align: bottom; font-size: 13px; }
td.st { font-size: 12.5px; }
.sev { font-size: 12px; color: #616161; } .ev { font-size: 12px; color: #424242; }
ul { margin: 0; padding-left: 18px; }
"""

JS = """
(function () {
  function key(cell) {
    var v = cell.getAttribute('data-sort');
    if (v === null) v = cell.textContent.trim();
    var n = Number(v);
    return (v !== '' && !isNaN(n)) ? n : v.toLowerCase();
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    var heads = table.querySelectorAll('thead th');
    heads.forEach(function (th, col) {
      th.addEventListener('click', function () {
        var asc = th.getAttribute('aria-sort') !== 'ascending';
        heads.forEach(function (h) { h.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a.cells[col]), y = key(b.cells[col]);
          var c = (typeof x === typeof y) ? (x < y ? -1 : x > y ? 1 : 0) : (typeof x === 'number' ? -1 : 1);
          return asc ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
})();
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _cell_text(counts: dict[str, int]) -> str:
    problems = [f"{counts[st]} {st}" for st in ("fail", "error", "manual") if counts.get(st)]
    return " · ".join(problems or [f"{counts.get(st)} {st}" for st in ("pass", "skip") if counts.get(st)])


def _severity_rank(sev: str) -> int:
    return {"critical": 4, "high": 3, "medium": 2, "low": 1, "info": 0}.get(sev, -1)


def render_html(fleet: dict[str, Any]) -> str:
    hosts, sections, summary = fleet["hosts"], fleet["sections"], fleet["summary"]
    p: list[str] = []
    w = p.append
    w("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
    w("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
    w("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n")
    w(f"<title>dockfix fleet report: {summary['hosts']} hosts</title>\n<style>{CSS}</style>\n</head>\n<body>\n")
    w(f"<h1>dockfix fleet report</h1>\n<div class=\"sub\">{summary['hosts']} hosts scanned, "
      f"{summary['hosts_failing']} with failing checks; {summary['checks_failing']} checks fail on at least one host. "
      f"dockfix {_e(fleet['dockfix'])}.</div>\n")
    w("<div class=\"legend\">" + "".join(f"<span class=\"{st}\">{st}</span>" for st in STATUSES) +
      " a cell takes the colour of its worst finding; click a column heading to sort.</div>\n")

    # hosts x sections
    w("<h2>Hosts</h2>\n<table id=\"hosts\" class=\"sortable\">\n<thead><tr><th>host</th>")
    for st in ("fail", "error", "manual"):
        w(f"<th data-col=\"{st}\">{st}</th>")
    for sec, title in sections.items():
        label = f"{sec}. {title}" if sec.isdigit() else title
        w(f"<th data-section=\"{_e(sec)}\" title=\"{_e(title)}\">{_e(label)}</th>")
    w("</tr></thead>\n<tbody>\n")
    for h in hosts:
        w(f"<tr data-host=\"{_e(h['name'])}\"><td class=\"host\" title=\"{_e(h['file'])}\">{_e(h['name'])}</td>")
        for st in ("fail", "error", "manual"):
            w(f"<td class=\"num\" data-col=\"{st}\">{h['counts'][st]}</td>")
        for sec in sections:
            cell = h["sections"].get(sec)
            if not cell:
                w(f"<td class=\"st none\" data-section=\"{_e(sec)}\" data-sort=\"-1\">—</td>")
                continue
            c = cell["counts"]
            # sort by badness: failures first, then errors, then manual items
            rank = c.get("fail", 0) * 10000 + c.get("error", 0) * 100 + c.get("manual", 0)
            attrs = "".join(f" data-{st}=\"{c.get(st, 0)}\"" for st in STATUSES)
            w(f"<td class=\"st {cell['worst']}\" data-section=\"{_e(sec)}\" data-worst=\"{cell['worst']}\"{attrs} "
              f"data-sort=\"{rank}\">{_e(_cell_text(c))}</td>")
        w("</tr>\n")
    w("</tbody>\n</table>\n")

    # checks that fail somewhere
    failing = [c for c in fleet["checks"] if c["failing"] or c["error_hosts"]]
    w("<h2>Failing checks</h2>\n")
    if not failing:
        w("<p>No check fails on any host.</p>\n")
    w("<table id=\"checks\" class=\"sortable\">\n<thead><tr><th>CIS</th><th>check</th><th>severity</th>"
      "<th>hosts failing</th><th>which hosts</th></tr></thead>\n<tbody>\n")
    for c in failing:
        cis_sort = ".".join(f"{int(x):03d}" for x in str(c["cis"]).split(".") if x.isdigit()) if c["cis"] else "zzz"
        w(f"<tr data-check=\"{_e(c['id'])}\"><td data-sort=\"{_e(cis_sort)}\">{_e(c['cis'] or '-')}</td>"
          f"<td><b>{_e(c['id'])}</b><br>{_e(c['title'])}</td>"
          f"<td data-sort=\"{_severity_rank(c['severity'])}\" class=\"sev\">{_e(c['severity'])}</td>"
          f"<td class=\"num\" data-sort=\"{c['failing']}\" data-failing=\"{c['failing']}\" "
          f"data-scanned=\"{c['hosts_scanned']}\">{c['failing']} / {c['hosts_scanned']}</td><td><ul>")
        for fh in c["failing_hosts"]:
            ev = "; ".join(x for x in fh["evidence"] if x)
            w(f"<li class=\"failing-host\" data-host=\"{_e(fh['host'])}\"><b>{_e(fh['host'])}</b>"
              f" <span class=\"ev\">{_e(ev)}</span></li>")
        for eh in c["error_hosts"]:
            w(f"<li class=\"error-host\" data-host=\"{_e(eh['host'])}\"><b>{_e(eh['host'])}</b> (error)"
              f" <span class=\"ev\">{_e('; '.join(eh['evidence']))}</span></li>")
        w("</ul></td></tr>\n")
    w("</tbody>\n</table>\n")
    w(f"<script>{JS}</script>\n</body>\n</html>\n")
    return "".join(p)


RENDERERS = {"text": render_text, "json": render_json, "html": render_html}
