"""Render a CheckResult as text, JSON, SARIF 2.1.0 or JUnit XML. Standard library only (rich is
imported for colour, and only when asked for it).

- text: findings grouped by file, then resource: severity, rule, property path, message and
  remediation; UNKNOWN and parse errors in their own sections; one summary line.
- json: `findings` and `unknown` (rule_id, severity, file, resource, path, line, message,
  remediation, ...), `suppressed`, `baselined`, `errors`, `notes`, `summary`.
- sarif: SARIF 2.1.0 for GitHub code scanning: rule metadata (rationale, remediation and fix
  example, security-severity), results with file/line/resource and stable fingerprints, UNKNOWN
  as `kind: review` results, parse errors as tool execution notifications.
- junit: one testsuite per file, one testcase per rule x resource; a passing testcase per clean
  file; parse errors as errors.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from deployline import __version__
from deployline.checks.model import CheckResult, Finding, ParseError, Rule, Severity

FORMATS = ("text", "json", "sarif", "junit")
SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
INFORMATION_URI = "https://pypi.org/project/deployline/"
TOOL_NAME = "deployline"

# GitHub code scanning reads `security-severity` (0.0-10.0): >= 9 critical, >= 7 high, >= 4 medium.
SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
}
SARIF_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
}
_COLOURS = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
}


def render(
    result: CheckResult,
    fmt: str,
    *,
    color: bool = False,
    cwd: Path | None = None,
    rules: Sequence[type[Rule]] | None = None,
) -> str:
    """`result` in `fmt` (one of FORMATS). `color` applies to text only (Default: off).
    `rules` gives the rule metadata for SARIF (Default: every registered rule that ran)."""
    if fmt == "text":
        return render_text(result, color=color)
    if fmt == "json":
        return render_json(result)
    if fmt == "sarif":
        return render_sarif(result, cwd=cwd, rules=rules)
    if fmt == "junit":
        return render_junit(result)
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


# Text ----------------------------------------------------------------------------------------


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _grouped(findings: Iterable[Finding]) -> dict[str, dict[str, list[Finding]]]:
    out: dict[str, dict[str, list[Finding]]] = defaultdict(lambda: defaultdict(list))
    for f in findings:
        out[f.file][f.resource].append(f)
    return out


def summary_line(result: CheckResult) -> str:
    """One line: files, findings by severity, UNKNOWN, suppressed, baselined, errors."""
    s = result.summary()
    by = ", ".join(f"{n} {name}" for name, n in s["by_severity"].items() if n)
    parts = [
        f"{_plural(s['files'], 'file')} checked",
        _plural(s["findings"], "finding") + (f" ({by})" if by else ""),
        f"{s['unknown']} unknown",
        f"{s['suppressed']} suppressed",
    ]
    if s["baselined"]:
        parts.append(f"{s['baselined']} baselined")
    if s["errors"]:
        parts.append(_plural(s["errors"], "parse error"))
    if s["templated"]:
        parts.append(f"{s['templated']} templated (not checked)")
    failing = len(result.at_or_above())
    verdict = (
        "FAILED" if result.exit_code() else "passed"
    ) + f" (threshold {result.threshold.name}: {failing} at or above)"
    return ", ".join(parts) + f"; {verdict}"


def rule_summary(result: CheckResult) -> list[str]:
    """Per rule, most frequent first: severity, ID, findings, UNKNOWN, files, title."""
    counts: dict[str, list[Finding]] = defaultdict(list)
    for f in [*result.findings, *result.unknown]:
        counts[f.rule_id].append(f)
    if not counts:
        return []
    rows = ["By rule:"]
    for rule_id, items in sorted(counts.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        found = [f for f in items if not f.unknown]
        worst = max((f.severity for f in found), default=None)
        files = len({f.file for f in items})
        rows.append(
            f"  {rule_id}  {(worst.name if worst else 'UNKNOWN'):<8} {len(found):>4} found "
            f"{len(items) - len(found):>4} unknown  in {_plural(files, 'file')}  {items[0].title}"
        )
    return [*rows, ""]


def render_text(result: CheckResult, *, color: bool = False) -> str:
    """Human-readable report. With `color`, rich markup renders severities in colour."""
    lines: list[tuple[str, str | None]] = []  # (text, style)

    def emit(text: str = "", style: str | None = None) -> None:
        lines.append((text, style))

    def section(title: str, findings: list[Finding], label: str | None) -> None:
        if not findings:
            return
        emit(title, "bold underline")
        for file, resources in _grouped(findings).items():
            emit(file, "bold")
            fixed: set[str] = set()  # `fix:` once per rule per file
            for resource, items in resources.items():
                first = items[0]
                where = f" (line {first.line})" if first.line else ""
                kind = f" [{first.resource_type}]" if first.resource_type else ""
                emit(f"  {resource}{kind}{where}", "bold")
                for f in items:
                    tag = label or f.severity.name
                    emit(
                        f"    {tag:<8} {f.rule_id}  {f.path or '(resource)'}",
                        _COLOURS.get(f.severity) if label is None else "magenta",
                    )
                    emit(f"             {f.message}")
                    if f.remediation and f.rule_id not in fixed:
                        fixed.add(f.rule_id)
                        emit(f"             fix: {f.remediation}", "dim")
        emit()

    for error in result.errors:
        emit(f"error: {error}", "bold red")
    if result.errors:
        emit()
    section("Findings", result.findings, None)
    section(
        "UNKNOWN (the template does not hold the answer; review these)", result.unknown, "UNKNOWN"
    )
    for file in result.templated:
        emit(f"note: {file}: templated (Jinja/ERB markers), not checked", "dim")
    for note in result.notes:
        emit(f"note: {note}", "dim")
    for row in rule_summary(result):
        emit(row)
    emit(summary_line(result), "bold red" if result.exit_code() else "bold green")

    if not color:
        return "\n".join(text for text, _ in lines) + "\n"
    from rich.markup import escape

    return (
        "\n".join(
            f"[{style}]{escape(text)}[/]" if style and text else escape(text)
            for text, style in lines
        )
        + "\n"
    )


def print_text(result: CheckResult, *, color: bool, file: Any = None) -> None:
    """Print the text report to `file` (Default: stdout), through rich when `color`."""
    out = file if file is not None else sys.stdout
    if not color:
        out.write(render_text(result))
        return
    from rich.console import Console

    Console(file=out, force_terminal=True, soft_wrap=True, highlight=False).print(
        render_text(result, color=True), end=""
    )


# JSON ----------------------------------------------------------------------------------------


def render_json(result: CheckResult) -> str:
    summary = result.summary()
    summary["threshold"] = result.threshold.name
    summary["failing"] = len(result.at_or_above())
    summary["exit_code"] = result.exit_code()
    document = {
        "tool": {"name": TOOL_NAME, "version": __version__},
        "findings": [f.to_dict() for f in result.findings],
        "unknown": [f.to_dict() for f in result.unknown],
        "suppressed": [f.to_dict() for f in result.suppressed_findings],
        "baselined": [f.to_dict() for f in result.baselined_findings],
        "errors": [e.to_dict() for e in result.errors],
        "templated": list(result.templated),
        "notes": list(result.notes),
        "files": list(result.files),
        "rules": list(result.rules),
        "summary": summary,
    }
    return json.dumps(document, indent=2) + "\n"


# SARIF ---------------------------------------------------------------------------------------


def fingerprint(finding: Finding) -> str:
    """Stable across runs and line moves: a hash of rule, file, resource and property path."""
    raw = "\x1f".join((finding.rule_id, finding.file, finding.resource, finding.path))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


def _rule_descriptor(cls: type[Rule]) -> dict[str, Any]:
    help_text = cls.remediation
    help_md = cls.remediation
    if cls.fix_example:
        help_text += "\n\nFix example:\n" + cls.fix_example
        help_md += "\n\n**Fix example**\n\n```yaml\n" + cls.fix_example.rstrip() + "\n```"
    name = cls.__name__ or cls.id
    tags = list(dict.fromkeys(["security", "ci-cd", "cloudformation", cls.family.lower()]))
    tags = [t for t in tags if t]
    return {
        "id": cls.id,
        "name": name,
        "shortDescription": {"text": cls.title or cls.id},
        "fullDescription": {"text": cls.rationale or cls.title or cls.id},
        "help": {"text": help_text or cls.title or cls.id, "markdown": help_md or cls.id},
        "defaultConfiguration": {"level": SARIF_LEVEL[cls.severity]},
        "properties": {
            "tags": tags,
            "security-severity": SECURITY_SEVERITY[cls.severity],
            "precision": "high",
            "problem.severity": "error" if cls.severity >= Severity.HIGH else "warning",
        },
    }


def _uri(file: str, cwd: Path) -> tuple[str, str | None]:
    """(uri, uriBaseId): relative to %SRCROOT% (the working dir) when possible."""
    p = Path(file)
    if not p.is_absolute():
        return p.as_posix(), "%SRCROOT%"
    try:
        return p.relative_to(cwd).as_posix(), "%SRCROOT%"
    except ValueError:
        return p.as_uri(), None


def _location(file: str, line: int | None, cwd: Path) -> dict[str, Any]:
    uri, base = _uri(file, cwd)
    artifact: dict[str, Any] = {"uri": uri}
    if base:
        artifact["uriBaseId"] = base
    return {
        "physicalLocation": {
            "artifactLocation": artifact,
            "region": {"startLine": max(1, line or 1)},
        }
    }


def render_sarif(
    result: CheckResult,
    *,
    cwd: Path | None = None,
    rules: Sequence[type[Rule]] | None = None,
) -> str:
    """A SARIF 2.1.0 log with one run."""
    here = (cwd or Path.cwd()).resolve()
    if rules is None:
        from deployline.checks.registry import rule_classes

        ran = set(result.rules)
        used = {f.rule_id for f in [*result.findings, *result.unknown]}
        rules = [c for c in rule_classes() if c.id in ran or c.id in used]
    descriptors = [_rule_descriptor(c) for c in rules]
    index = {c.id: i for i, c in enumerate(rules)}

    def result_of(f: Finding) -> dict[str, Any]:
        item: dict[str, Any] = {"ruleId": f.rule_id}
        if f.rule_id in index:
            item["ruleIndex"] = index[f.rule_id]
        if f.unknown:
            # SARIF 3.27.9: a result whose kind is not "fail" must have level "none"
            item["kind"] = "review"
            item["level"] = "none"
        else:
            item["kind"] = "fail"
            item["level"] = SARIF_LEVEL[f.severity]
        text = f"{f.resource}: {f.message}" + (f" (at {f.path})" if f.path else "")
        if f.unknown:
            text = f"UNKNOWN: {text}"
        item["message"] = {"text": text}
        location = _location(f.file, f.line, here)
        location["logicalLocations"] = [
            {
                "name": f.resource,
                "fullyQualifiedName": f"{f.resource}.{f.path}" if f.path else f.resource,
                "kind": "resource",
            }
        ]
        item["locations"] = [location]
        item["partialFingerprints"] = {"deploylineFinding/v1": fingerprint(f)}
        item["properties"] = {
            "severity": f.severity.name,
            "resourceType": f.resource_type,
            "propertyPath": f.path,
        }
        return item

    def notification(e: ParseError) -> dict[str, Any]:
        return {
            "level": "error",
            "message": {"text": f"{e.file}: {e.message}"},
            "locations": [_location(e.file, e.line, here)],
            "descriptor": {"id": "parse-error"},
        }

    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": TOOL_NAME,
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": INFORMATION_URI,
                "rules": descriptors,
            }
        },
        "originalUriBaseIds": {"%SRCROOT%": {"uri": here.as_uri() + "/"}},
        "invocations": [
            {
                "executionSuccessful": not result.errors,
                "toolExecutionNotifications": [notification(e) for e in result.errors]
                + [
                    {"level": "note", "message": {"text": note}, "descriptor": {"id": "note"}}
                    for note in result.notes
                ],
            }
        ],
        "results": [result_of(f) for f in [*result.findings, *result.unknown]],
        "columnKind": "unicodeCodePoints",
    }
    return json.dumps({"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}, indent=2) + "\n"


# JUnit ---------------------------------------------------------------------------------------


def render_junit(result: CheckResult) -> str:
    """JUnit XML: testsuites > testsuite per file > testcase per rule x resource."""
    by_file: dict[str, dict[tuple[str, str], list[Finding]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for f in result.findings:
        by_file[f.file][(f.rule_id, f.resource)].append(f)
    unknown_by_file: dict[str, dict[tuple[str, str], list[Finding]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for f in result.unknown:
        unknown_by_file[f.file][(f.rule_id, f.resource)].append(f)
    errors_by_file: dict[str, list[ParseError]] = defaultdict(list)
    for e in result.errors:
        errors_by_file[e.file].append(e)

    files = list(dict.fromkeys([*result.files, *by_file, *unknown_by_file, *errors_by_file]))
    root = ET.Element("testsuites", name="deployline check")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for file in files:
        suite = ET.SubElement(root, "testsuite", name=file)
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for (rule_id, resource), items in sorted(by_file.get(file, {}).items()):
            case = ET.SubElement(suite, "testcase", classname=file, name=f"{rule_id} {resource}")
            worst = max(items, key=lambda f: f.severity)
            failure = ET.SubElement(
                case,
                "failure",
                type=f"{rule_id} {worst.severity.name}",
                message=f"{worst.severity.name} {rule_id} {resource}: {worst.message}",
            )
            failure.text = "\n".join(
                f"{f.severity.name} {f.rule_id} {f.resource} {f.path or '(resource)'}"
                + (f" (line {f.line})" if f.line else "")
                + f"\n  {f.message}\n  fix: {f.remediation}"
                for f in items
            )
            counts["tests"] += 1
            counts["failures"] += 1
        for (rule_id, resource), items in sorted(unknown_by_file.get(file, {}).items()):
            case = ET.SubElement(
                suite, "testcase", classname=file, name=f"{rule_id} {resource} (UNKNOWN)"
            )
            skipped = ET.SubElement(case, "skipped", message=f"UNKNOWN: {items[0].message}")
            skipped.text = "\n".join(f"{f.path}: {f.message}" for f in items)
            counts["tests"] += 1
            counts["skipped"] += 1
        for e in errors_by_file.get(file, []):
            case = ET.SubElement(suite, "testcase", classname=file, name="parse")
            error = ET.SubElement(case, "error", type="ParseError", message=str(e))
            error.text = str(e)
            counts["tests"] += 1
            counts["errors"] += 1
        if not counts["failures"] and not counts["errors"]:
            ET.SubElement(suite, "testcase", classname=file, name="deployline check")
            counts["tests"] += 1
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
    for key, value in totals.items():
        root.set(key, str(value))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# Rules listing (`deployline rules`) ------------------------------------------------------------


def rule_dict(cls: type[Rule]) -> dict[str, Any]:
    return {
        "id": cls.id,
        "severity": cls.severity.name,
        "family": cls.family,
        "title": cls.title,
        "rationale": cls.rationale,
        "remediation": cls.remediation,
        "fix_example": cls.fix_example,
        "resource_types": list(cls.resource_types),
        "options": {name: o.to_dict() for name, o in cls.options_definition.items()},
    }


def render_rules(rules: Sequence[type[Rule]], fmt: str, *, detail: bool = False) -> str:
    """The rule list as text (a table, or every field when `detail`), json or markdown."""
    if fmt == "json":
        return json.dumps([rule_dict(c) for c in rules], indent=2) + "\n"
    if fmt == "markdown":
        out = []
        for c in rules:
            out.append(f"## {c.id}: {c.title}\n")
            out.append(f"Severity: **{c.severity.name}**. Family: {c.family}.\n")
            if c.resource_types:
                out.append("Resource types: " + ", ".join(f"`{t}`" for t in c.resource_types))
                out.append("")
            out.append(f"**Why.** {c.rationale}\n")
            out.append(f"**Fix.** {c.remediation}\n")
            if c.fix_example:
                out.append("```yaml\n" + c.fix_example.rstrip() + "\n```\n")
        return "\n".join(out)
    if fmt != "text":
        raise ValueError(f"unknown format {fmt!r}; expected one of text, json, markdown")
    if detail:
        out = []
        for c in rules:
            out.append(f"{c.id}  {c.severity.name}  {c.family}: {c.title}")
            out.append(f"  why: {c.rationale}")
            out.append(f"  fix: {c.remediation}")
            if c.fix_example:
                out.append("  example:")
                out.extend("    " + line for line in c.fix_example.rstrip().splitlines())
            out.append("")
        return "\n".join(out)
    width = max((len(c.family) for c in rules), default=6)
    rows = [f"{'ID':<6}  {'SEVERITY':<8}  {'FAMILY':<{width}}  TITLE"]
    rows += [f"{c.id:<6}  {c.severity.name:<8}  {c.family:<{width}}  {c.title}" for c in rules]
    return (
        "\n".join(rows) + f"\n\n{_plural(len(rules), 'rule')}; `deployline rules ID` shows one.\n"
    )
