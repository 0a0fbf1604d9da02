"""Renderers for scan results: text for people, JSON for programs, SARIF for code scanners."""

from __future__ import annotations

import json
import os
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


def benchmark_json(benchmark: str) -> dict[str, str]:
    return {"name": benchmarks.NAME, "version": benchmark, "mapping": mapped_to(benchmark)}


def error_groups(findings: list[Finding]) -> dict[str, list[Finding]]:
    """Unwaived `error` findings that share their evidence with another one, by evidence (an
    unreachable engine makes some 50 checks fail to evaluate with the same reason)."""
    groups: dict[str, list[Finding]] = {}
    for f in findings:
        if f.status == Status.ERROR and f.waiver is None:
            groups.setdefault(f.evidence, []).append(f)
    return {e: fs for e, fs in groups.items() if len(fs) > 1}


def waived_text(w: dict[str, Any]) -> str:
    by = f", approved by {w['approved_by']}" if w.get("approved_by") else ""
    ctl = f"; compensating control: {w['compensating_control']}" if w.get("compensating_control") else ""
    return f"waived until {w['expires']}{by}: {w['reason']}{ctl} ({w['file']}:{w['line']})"


def summary_line(findings: list[Finding]) -> str:
    c = counts(findings)
    waived = sum(1 for f in findings if f.waiver is not None)
    return "total: " + ", ".join(f"{c[s]} {s}" for s in STATUS_ORDER) + (f" ({waived} waived)" if waived else "")


def expired_lines(expired: list[dict[str, Any]]) -> list[str]:
    if not expired:
        return []
    out = [f"expired waivers ({len(expired)}; they waive nothing any more: renew or remove them):"]
    for w in expired:
        subj = f" {safe_text(w['subject'])}" if w.get("subject") else ""
        out.append(f"  {safe_text(w['file'])}:{w['line']}: {safe_text(w['check'])}{subj} expired {w['expires']}")
    return out


def render_text(findings: list[Finding], host: dict[str, Any], colour: bool = False, verbose: bool = False,
                meta: dict[str, Any] | None = None, quiet: bool = False,
                benchmark: str = benchmarks.DEFAULT) -> str:
    meta = meta or {}

    def paint(status: Status, text: str) -> str:
        return f"\033[{COLOURS[status]}m{text}\033[0m" if colour else text

    expired = meta.get("waivers_expired") or []
    if quiet:
        return "\n".join([summary_line(findings)] + expired_lines(expired)) + "\n"
    out = [f"dockfix {__version__} scan of {safe_text(str(host.get('root', '/')))}" +
           (f" (engine {host['engine']['url']})" if host.get("engine") else " (engine not scanned)") +
           f", {mapped_to(benchmark)}"]
    for d in host.get("rootless") or []:
        out.append(safe_text(f"  and the rootless daemon of {d['user']} (uid {d['uid']}, {d['url']}): its findings "
                             f"are named rootless:{d['user']}:... or by the user's paths"))
    repeated = error_groups(findings)
    collapsed = {id(f) for fs in repeated.values() for f in fs}
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
            if id(f) in collapsed:
                continue  # listed once, with a count, below
            tag = paint(f.status, f"{f.status.value.upper():6}")
            num = f.cis or "-"
            line = f"  {tag} {num:6} {f.id}  {safe_text(f.subject)}"
            if f.waiver is not None:
                line += f"  [WAIVED until {f.waiver['expires']}]"
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
                if f.waiver is not None:
                    line += f"\n         {safe_text(waived_text(f.waiver))}"
                if verbose and f.team_notes:
                    line += "\n         team notes:"
                    for note in f.team_notes:
                        for nl in str(note).strip().splitlines():
                            line += f"\n           {safe_text(nl)}"
            out.append(line)
    if repeated:
        n = sum(len(fs) for fs in repeated.values())
        out.append("")
        out.append(f"could not be evaluated, same reason for several checks ({n} checks):")
        for evidence, fs in repeated.items():
            names = [f"{f.cis or '-'} {f.id}" for f in fs]
            shown = names if verbose or len(names) <= 6 else names[:6] + [f"and {len(names) - 6} more"]
            out.append(f"  {paint(Status.ERROR, 'ERROR')}  {len(fs)} x {safe_text(evidence)}")
            out.append(f"         checks: {', '.join(shown)}")
    if expired:
        out.append("")
        out.extend(expired_lines(expired))
    out.append("")
    out.append(summary_line(findings))
    return "\n".join(out) + "\n"


def render_json(findings: list[Finding], host: dict[str, Any], meta: dict[str, Any] | None = None,
                benchmark: str = benchmarks.DEFAULT) -> str:
    import datetime as dt

    meta = meta or {}
    c = counts(findings)
    doc = {
        "dockfix": __version__,
        "benchmark": benchmark_json(benchmark),
        "scanned_at": meta.get("scanned_at") or dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "duration_s": meta.get("duration_s"),
        "host": host,
        "summary": {s.value: c[s] for s in STATUS_ORDER},
        "waived": sum(1 for f in findings if f.waiver is not None),
        "waivers": meta.get("waivers"),
        "waivers_expired": meta.get("waivers_expired") or [],
    }
    # One finding per line: json's C encoder does not indent, and the Python one takes ~0.6 s for
    # the few thousand findings of a host with 100 containers.
    head = json.dumps(doc, indent=2)[:-2]
    rows = ",\n    ".join(json.dumps(f.to_json()) for f in findings)
    return head + (',\n  "findings": [\n    ' + rows + "\n  ]\n}\n" if rows else ',\n  "findings": []\n}\n')


SARIF_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
#: GitHub code scanning ranks security results by this property (0.0-10.0).
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "1.0"}
#: The schema a SARIF log names: the OASIS 2.1.0 schema (errata 01), the one tests validate against.
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
HOST_BASE = "HOSTROOT"


def _sentence(text: str) -> str:
    """One line, one sentence: inner full stops become semicolons, one full stop at the end."""
    text = " ".join(text.split()).rstrip(" .;:")
    return re.sub(r"\.\s+(?=\S)", "; ", text) + "." if text else ""


def _lower_first(title: str) -> str:
    """"The memory ..." -> "the memory ...", but "CPU priority ..." stays as it is."""
    return title[:1].lower() + title[1:] if title[1:2].islower() else title


def sarif_message(f: Finding) -> str:
    """One sentence: what was seen, then what the check expects (its title)."""
    if not f.evidence.strip():
        return _sentence(f"Expected: {_lower_first(f.title)}")
    return _sentence(f"{f.evidence.rstrip(' .;:')}, but expected: {_lower_first(f.title)}")


def _file_uri(machine_dir: str) -> str:
    return "file://" + quote(machine_dir.rstrip("/") + "/")


def sarif_location(path: str, roots: list[tuple[str, str, str]]) -> tuple[str, str]:
    """(uriBaseId, relative URI) of host path ``path``: relative to the first --path/--compose root
    it lies in, else to the scanned host's root (HOSTROOT)."""
    for base, host_dir, _machine in roots:
        prefix = host_dir.rstrip("/") + "/"
        if path.startswith(prefix):
            return base, quote(path[len(prefix):])
    return HOST_BASE, quote(path.lstrip("/"))


def fingerprint(f: Finding, base: str, uri: str, roots: list[tuple[str, str, str]]) -> str:
    """Stable across runs and machines: the rule, where (relative to its root) and what (the
    subject with any root folder replaced by its base id); never a line number or evidence."""
    import hashlib

    subject = f.subject
    for b, host_dir, _machine in roots:
        if host_dir.rstrip("/"):  # a root of "/" is the host's own: its paths are stable already
            subject = subject.replace(host_dir.rstrip("/") + "/", f"%{b}%/")
    return hashlib.sha256("\0".join((f.id, base, uri, subject)).encode()).hexdigest()[:32]


def render_sarif(findings: list[Finding], host: dict[str, Any], meta: dict[str, Any] | None = None,
                 benchmark: str = benchmarks.DEFAULT) -> str:
    """SARIF 2.1.0 for the failing findings that are located in files, for code scanning: URIs
    relative to the --path/--compose roots (or the host root), stable partialFingerprints, the
    invocation, and waivers as suppressions."""
    meta = meta or {}
    #: [(base id, host path of the folder, machine path of the folder)]
    roots: list[tuple[str, str, str]] = meta.get("roots") or []
    host_root = str(host.get("root") or "/")
    located = [f for f in findings if f.location and f.status == Status.FAIL]
    rules: dict[str, dict] = {}
    index: dict[str, int] = {}
    results = []
    used_bases: set[str] = set()
    for f in located:
        if f.id not in rules:
            index[f.id] = len(rules)
            tags = ["security", "docker"] + ([f"CIS-{f.cis}"] if f.cis else ["team-notes"])
            rules[f.id] = {
                "id": f.id,
                "name": f.id,
                "shortDescription": {"text": f.title},
                "fullDescription": {"text": f.explanation or f.title},
                "help": {"text": f.remediation + "\nCheck by hand: " + f.manual_check},
                "defaultConfiguration": {"level": SARIF_LEVEL[str(f.severity)]},
                "properties": {"cis": f.cis, "benchmark": benchmark, "severity": str(f.severity), "tags": tags,
                               "security-severity": SECURITY_SEVERITY[str(f.severity)]},
            }
        base, uri = sarif_location(f.location.path, roots)
        used_bases.add(base)
        loc: dict[str, Any] = {"physicalLocation": {"artifactLocation": {"uri": uri, "uriBaseId": base}}}
        if f.location.line:
            loc["physicalLocation"]["region"] = {"startLine": f.location.line}
        result: dict[str, Any] = {
            "ruleId": f.id,
            "ruleIndex": index[f.id],
            "level": SARIF_LEVEL[str(f.severity)],
            "message": {"text": sarif_message(f)},
            "locations": [loc],
            "partialFingerprints": {"dockfixFinding/v1": fingerprint(f, base, uri, roots)},
            "properties": {"subject": f.subject},
        }
        if f.waiver is not None:
            w = f.waiver
            result["suppressions"] = [{
                "kind": "external",
                "status": "accepted",
                "justification": w["reason"],
                "location": {"physicalLocation": {"artifactLocation": {"uri": _file_uri(os.path.dirname(w["file"]))
                                                                       + quote(os.path.basename(w["file"]))},
                                                  "region": {"startLine": w["line"]}}},
                "properties": {"expires": w["expires"], "approved_by": w.get("approved_by"),
                               "compensating_control": w.get("compensating_control")},
            }]
        results.append(result)
    bases = {base: {"uri": _file_uri(machine), "description": {"text": f"--path/--compose root {host_dir}"}}
             for base, host_dir, machine in roots if base in used_bases}
    if HOST_BASE in used_bases or not bases:
        bases[HOST_BASE] = {"uri": _file_uri(host_root), "description": {"text": "root of the scanned host (--root)"}}
    invocation: dict[str, Any] = {"executionSuccessful": True}
    if meta.get("exit_code") is not None:
        invocation["exitCode"] = meta["exit_code"]
    if meta.get("started_at"):
        invocation["startTimeUtc"] = meta["started_at"]
    if meta.get("scanned_at"):
        invocation["endTimeUtc"] = meta["scanned_at"]
    notes = [{"level": "error", "message": {"text": _sentence(f"{len(fs)} checks could not be evaluated: {e}")},
              "properties": {"checks": [x.id for x in fs]}}
             for e, fs in error_groups(findings).items()]
    if notes:
        invocation["toolExecutionNotifications"] = notes
    run: dict[str, Any] = {
        "tool": {"driver": {"name": "dockfix", "version": __version__, "semanticVersion": __version__,
                            "rules": list(rules.values())}},
        "invocations": [invocation],
        "originalUriBaseIds": bases,
        "results": results,
        "properties": {"benchmark": benchmark_json(benchmark)},
    }
    doc = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
    return json.dumps(doc, indent=2) + "\n"


def render_junit(findings: list[Finding], host: dict[str, Any], meta: dict[str, Any] | None = None,
                 benchmark: str = benchmarks.DEFAULT) -> str:
    """JUnit XML: one testsuite per CIS section (and the team's notes), one testcase per finding:
    `failure` for fail, `error` for error, `skipped` (with the reason) for manual, skip and waived."""
    import xml.etree.ElementTree as ET

    meta = meta or {}
    top = ET.Element("testsuites", name=f"dockfix, {mapped_to(benchmark)}")
    totals = Counter()
    by_section: dict[str, list[Finding]] = {}
    for f in findings:
        by_section.setdefault(f.section, []).append(f)
    for sec, title in SECTIONS.items():
        items = by_section.get(sec)
        if not items:
            continue
        name = f"CIS {sec} {title}" if sec != "notes" else title
        suite = ET.SubElement(top, "testsuite", name=xml_text(name))
        if meta.get("scanned_at"):
            suite.set("timestamp", meta["scanned_at"].rstrip("Z"))
        if host.get("hostname"):
            suite.set("hostname", xml_text(str(host["hostname"])))
        c = Counter()
        for f in items:
            case = ET.SubElement(suite, "testcase", classname=f"dockfix.{sec}.{f.id}",
                                 name=xml_text(f"{f.cis or f.id} {f.title} [{f.subject}]"), time="0")
            msg = xml_text(f.evidence)
            if f.waiver is not None:
                ET.SubElement(case, "skipped", message=xml_text(waived_text(f.waiver)))
                c["skipped"] += 1
            elif f.status == Status.FAIL:
                el = ET.SubElement(case, "failure", message=msg, type=str(f.severity))
                el.text = xml_text(f"{f.title}\nevidence: {f.evidence}\n" +
                                   (f"at: {f.location}\n" if f.location else "") + f"remediation: {f.remediation}")
                c["failures"] += 1
            elif f.status == Status.ERROR:
                ET.SubElement(case, "error", message=msg, type="not evaluated")
                c["errors"] += 1
            elif f.status in (Status.MANUAL, Status.SKIP):
                ET.SubElement(case, "skipped", message=xml_text(f"{f.status}: {f.evidence}"))
                c["skipped"] += 1
            c["tests"] += 1
        for k in ("tests", "failures", "errors", "skipped"):
            suite.set(k, str(c[k]))
        suite.set("time", "0")
        totals.update(c)
    for k in ("tests", "failures", "errors", "skipped"):
        top.set(k, str(totals[k]))
    if meta.get("duration_s") is not None:
        top.set("time", str(meta["duration_s"]))
    ET.indent(top)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(top, encoding="unicode") + "\n"


_XML_BAD = re.compile(r"[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """Characters XML 1.0 cannot carry at all (control characters, surrogates) shown as escapes."""
    return _XML_BAD.sub(lambda m: f"\\x{ord(m.group(0)):02x}" if ord(m.group(0)) < 0x100
                        else f"\\u{ord(m.group(0)):04x}", text)


RENDERERS = {"json": render_json, "sarif": render_sarif, "junit": render_junit}
