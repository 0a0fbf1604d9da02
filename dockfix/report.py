"""Renderers for scan results: text for people, JSON for programs, SARIF for code scanners."""

from __future__ import annotations

import json
import re
from urllib.parse import quote
from collections import Counter
from typing import Any

from dockfix import __version__, benchmarks
from dockfix.model import SECTIONS, STATUS_ORDER, Finding, Status

COLOURS = {
    Status.PASS: "32",
    Status.FAIL: "31;1",
    Status.MANUAL: "33",
    Status.SKIP: "2",
    Status.ERROR: "35;1",
}


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def safe_text(text: str, keep_newlines: bool = False) -> str:
    """Text from the scanned host made safe for a terminal.

    Files, names and engine replies are hostile input: an escape sequence in a daemon.json value
    or a file name must not repaint or retitle the admin's terminal, and a lone surrogate must not
    crash the output. Control characters and surrogates are shown as visible escapes (``\\x1b``).
    """
    out = _CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}" if ord(m.group(0)) < 0x100 else f"\\u{ord(m.group(0)):04x}",
                       text)
    return out if keep_newlines else out.replace("\n", "\\n")


def counts(findings: list[Finding]) -> Counter:
    return Counter(f.status for f in findings)


def mapped_to(benchmark: str) -> str:
    """How every output names the numbering it uses (never "compliant": those are CIS's terms)."""
    return f"mapped to {benchmarks.NAME} v{benchmark}"


def render_text(findings: list[Finding], host: dict[str, Any], colour: bool = False, verbose: bool = False,
                benchmark: str = benchmarks.DEFAULT) -> str:
    def paint(status: Status, text: str) -> str:
        return f"\033[{COLOURS[status]}m{text}\033[0m" if colour else text

    out = [f"dockfix {__version__} scan of {safe_text(str(host.get('root', '/')))}" +
           (f" (engine {host['engine']['url']})" if host.get("engine") else " (engine not scanned)") +
           f", {mapped_to(benchmark)}"]
    for d in host.get("rootless") or []:
        out.append(safe_text(f"  and the rootless daemon of {d['user']} (uid {d['uid']}, {d['url']}): its findings "
                             f"are named rootless:{d['user']}:... or by the user's paths"))
    by_section: dict[str, list[Finding]] = {}
    for f in findings:
        by_section.setdefault(f.section, []).append(f)
    for sec, title in SECTIONS.items():
        items = by_section.get(sec)
        if not items:
            continue
        c = counts(items)
        summary = ", ".join(f"{c[s]} {s}" for s in STATUS_ORDER if c[s])
        label = f"[{sec}] {title}" if sec != "notes" else title
        out.append("")
        out.append(f"{label}  ({summary})")
        for f in items:
            tag = paint(f.status, f"{f.status.value.upper():6}")
            num = f.cis or "-"
            line = f"  {tag} {num:6} {f.id}  {safe_text(f.subject)}"
            if f.status == Status.SKIP and not verbose:
                line += f" - {safe_text(f.evidence)}" if f.evidence else ""  # a skip is one line: what and why
            elif f.status != Status.PASS or verbose:
                line += f"\n         {f.title}"
                if f.evidence:
                    line += f"\n         evidence: {safe_text(f.evidence)}"
                if f.location:
                    line += f"\n         at: {safe_text(str(f.location))}"
                if f.fix:
                    line += f"\n         fix: {f.fix['safety']} - {f.fix['impact']}"
            out.append(line)
    c = counts(findings)
    out.append("")
    out.append("total: " + ", ".join(f"{c[s]} {s}" for s in STATUS_ORDER))
    return "\n".join(out) + "\n"


def render_json(findings: list[Finding], host: dict[str, Any], benchmark: str = benchmarks.DEFAULT) -> str:
    c = counts(findings)
    doc = {
        "dockfix": __version__,
        "benchmark": {"name": benchmarks.NAME, "version": benchmark, "mapping": mapped_to(benchmark)},
        "host": host,
        "summary": {s.value: c[s] for s in STATUS_ORDER},
    }
    # One finding per line: json's C encoder does not indent, and the Python one takes ~0.6 s for
    # the few thousand findings of a host with 100 containers.
    head = json.dumps(doc, indent=2)[:-2]
    rows = ",\n    ".join(json.dumps(f.to_json()) for f in findings)
    return head + (',\n  "findings": [\n    ' + rows + "\n  ]\n}\n" if rows else ',\n  "findings": []\n}\n')


SARIF_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}


def render_sarif(findings: list[Finding], host: dict[str, Any], benchmark: str = benchmarks.DEFAULT) -> str:
    """SARIF 2.1.0 for the failing findings that are located in files."""
    located = [f for f in findings if f.location and f.status == Status.FAIL]
    rules: dict[str, dict] = {}
    results = []
    for f in located:
        rules.setdefault(f.id, {
            "id": f.id,
            "name": f.id,
            "shortDescription": {"text": f.title},
            "fullDescription": {"text": f.explanation},
            "help": {"text": f.remediation + "\nCheck by hand: " + f.manual_check},
            "properties": {"cis": f.cis, "benchmark": benchmark, "severity": str(f.severity)},
        })
        region = {"startLine": f.location.line} if f.location.line else {}
        loc = {"physicalLocation": {"artifactLocation": {"uri": "file://" + quote(f.location.path)}}}
        if region:
            loc["physicalLocation"]["region"] = region
        results.append({
            "ruleId": f.id,
            "level": SARIF_LEVEL[str(f.severity)],
            "message": {"text": f"{f.title}: {f.evidence}" if f.evidence else f.title},
            "locations": [loc],
            "properties": {"subject": f.subject},
        })
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "dockfix", "version": __version__,
                                "informationUri": "https://github.com/dockfix/dockfix",
                                "rules": list(rules.values())}},
            "results": results,
            "properties": {"benchmark": {"name": benchmarks.NAME, "version": benchmark, "mapping": mapped_to(benchmark)}},
        }],
    }
    return json.dumps(doc, indent=2) + "\n"


RENDERERS = {"json": render_json, "sarif": render_sarif}
