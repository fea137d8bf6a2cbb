"""Security scanner reports: Bandit, pip-audit, Trivy and SARIF 2.1.0, parsed into findings.

The format is detected from the content (the file name only breaks a tie). Severity mapping, to
deployline's four levels critical > high > medium > low:

- Bandit: `issue_severity` HIGH -> high, MEDIUM -> medium, LOW -> low, UNDEFINED -> low (Bandit has
  no critical level). Confidence is shown, not used. Files Bandit could not parse (`errors`) are
  unverified: their code was not scanned.
- pip-audit: its JSON carries no severity. Every known vulnerability counts as **high** (a published
  advisory against a dependency you ship), unless the record itself carries a `severity` field
  with one of the four levels (as some wrappers add), which is then used. Dependencies with a
  `skip_reason` were not audited: they are unverified, not clean.
- Trivy: `Severity` CRITICAL/HIGH/MEDIUM/LOW map one to one; UNKNOWN (no score yet) -> medium, so it
  shows but does not block the default threshold (high). Vulnerabilities, misconfigurations with
  status FAIL (PASS results are ignored) and secrets all count.
- SARIF 2.1.0: a numeric `security-severity` (result properties, else the rule's) wins: >= 9.0
  critical, >= 7.0 high, >= 4.0 medium, else low. Otherwise the level (result, else the rule's
  defaultConfiguration, else the SARIF default "warning"): error -> high, warning -> medium,
  note -> low, none -> not a finding. Results of kind pass/notApplicable/informational, results
  with an accepted suppression and results whose baselineState is absent are not findings.

This module is pure: no AWS, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import contract

#: critical, high, medium, low: the values of deployline.contract.Severity, most severe first.
SEVERITIES = contract.SEVERITIES
SEVERITY_RANK = {name: index for index, name in enumerate(SEVERITIES)}  # 0 = most severe
FORMATS = ("bandit", "pip-audit", "trivy", "sarif")


class ReportError(ValueError):
    """A report is missing, empty or malformed; the message names the file and the problem."""


@dataclass(frozen=True)
class ScanFinding:
    """One issue a security scanner (Bandit, pip-audit, Trivy, a SARIF tool) reported about the
    source or the image; not a checker finding on a template (`deployline.checks.model.Finding`).
    `severity` is a value of `contract.Severity` (`high`)."""

    scanner: str
    severity: str
    rule_id: str
    title: str
    location: str
    fix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "scanner": self.scanner,
            "severity": self.severity,
            "rule_id": self.rule_id,
            "title": self.title,
            "location": self.location,
            "fix": self.fix,
        }

    def one_line(self) -> str:
        fix = f" (fix: {self.fix})" if self.fix else ""
        return (
            f"{self.rule_id} [{self.severity}, {self.scanner}] {self.title} at {self.location}{fix}"
        )


@dataclass(frozen=True)
class ScanReport:
    """One parsed report file."""

    filename: str
    format: str
    tool: str
    findings: tuple[ScanFinding, ...] = ()
    unverified: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)


def severity_order(severity: str) -> int:
    return SEVERITY_RANK.get(severity, len(SEVERITIES))


def _load(filename: str, data: bytes) -> Any:
    if not data or not data.strip():
        raise ReportError(f"{filename} is empty: the scanner wrote no report")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReportError(f"{filename} is not UTF-8 text (byte {exc.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(
            f"{filename} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            f"was the scanner's output cut short?"
        ) from None


def detect_format(filename: str, value: Any) -> str:
    """Which scanner wrote `value` (parsed JSON). Raises ReportError when none fits."""
    base = filename.rsplit("/", 1)[-1].lower()
    if isinstance(value, Mapping):
        if isinstance(value.get("runs"), list) and (
            "version" in value or "sarif" in str(value.get("$schema", "")).lower()
        ):
            return "sarif"
        if "SchemaVersion" in value or ("ArtifactName" in value and "Results" in value):
            return "trivy"
        if isinstance(value.get("results"), list) and (
            "metrics" in value or "errors" in value or "generated_at" in value
        ):
            return "bandit"
        if isinstance(value.get("dependencies"), list):
            return "pip-audit"
        keys = ", ".join(sorted(str(k) for k in value)[:8]) or "none"
        raise ReportError(
            f"{filename} is not a Bandit, pip-audit, Trivy or SARIF 2.1.0 JSON report "
            f"(top-level keys: {keys})"
        )
    if isinstance(value, list):
        if value and all(isinstance(d, Mapping) and "name" in d for d in value):
            return "pip-audit"
        if not value and base.startswith("pip-audit"):
            return "pip-audit"
        raise ReportError(
            f"{filename} is a JSON list, but not pip-audit's list of dependencies "
            f"(each an object with 'name')"
        )
    raise ReportError(f"{filename} holds a JSON {type(value).__name__}, not a scanner report")


def parse_report(filename: str, data: bytes) -> ScanReport:
    """Parse one report file (Bandit, pip-audit, Trivy or SARIF JSON; see the module docstring).

    Raises ReportError with the file name and what is wrong on empty, non-JSON or malformed input.
    """
    value = _load(filename, data)
    kind = detect_format(filename, value)
    try:
        if kind == "bandit":
            return _bandit(filename, value)
        if kind == "pip-audit":
            return _pip_audit(filename, value)
        if kind == "trivy":
            return _trivy(filename, value)
        return _sarif(filename, value)
    except ReportError:
        raise
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ReportError(
            f"{filename}: malformed {kind} report ({type(exc).__name__}: {exc})"
        ) from None


def _require_list(filename: str, value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ReportError(f"{filename}: {where} must be a list, got {type(value).__name__}")
    return value


def _require_dict(filename: str, value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ReportError(f"{filename}: {where} must be an object, got {type(value).__name__}")
    return value


# ---------------------------------------------------------------------------------------------
# Bandit
# ---------------------------------------------------------------------------------------------

_BANDIT_SEVERITY = {"HIGH": "high", "MEDIUM": "medium", "LOW": "low", "UNDEFINED": "low"}


def _bandit(filename: str, value: Mapping[str, Any]) -> ScanReport:
    findings = []
    for index, raw in enumerate(_require_list(filename, value.get("results"), "results")):
        result = _require_dict(filename, raw, f"results[{index}]")
        severity_raw = str(result.get("issue_severity", "")).upper()
        if severity_raw not in _BANDIT_SEVERITY:
            raise ReportError(
                f"{filename}: results[{index}].issue_severity must be HIGH, MEDIUM or LOW, got "
                f"{result.get('issue_severity')!r}"
            )
        test_id = result.get("test_id")
        if not isinstance(test_id, str) or not test_id:
            raise ReportError(f"{filename}: results[{index}] has no test_id")
        confidence = str(result.get("issue_confidence", "")).lower() or "unknown"
        findings.append(
            ScanFinding(
                scanner="bandit",
                severity=_BANDIT_SEVERITY[severity_raw],
                rule_id=test_id,
                title=f"{result.get('issue_text', '').strip()} (confidence {confidence})",
                location=f"{result.get('filename', '?')}:{result.get('line_number', '?')}",
            )
        )
    unverified = []
    for raw in _require_list(filename, value.get("errors"), "errors"):
        if isinstance(raw, Mapping):
            unverified.append(
                f"bandit could not scan {raw.get('filename', '?')}: {raw.get('reason', 'error')}"
            )
    return ScanReport(filename, "bandit", "Bandit", tuple(findings), tuple(unverified))


# ---------------------------------------------------------------------------------------------
# pip-audit
# ---------------------------------------------------------------------------------------------


def _pip_audit(filename: str, value: Any) -> ScanReport:
    if isinstance(value, Mapping):
        dependencies = _require_list(filename, value.get("dependencies"), "dependencies")
        where = "dependencies"
    else:
        dependencies = value  # the pre-2.0 list form
        where = "the list"
    findings = []
    unverified = []
    for index, raw in enumerate(dependencies):
        dep = _require_dict(filename, raw, f"{where}[{index}]")
        name = dep.get("name")
        if not isinstance(name, str) or not name:
            raise ReportError(f"{filename}: {where}[{index}] has no name")
        if dep.get("skip_reason"):
            unverified.append(f"{name}: not audited ({dep['skip_reason']})")
            continue
        version = str(dep.get("version", "?"))
        for vindex, vraw in enumerate(_require_list(filename, dep.get("vulns"), f"{name}.vulns")):
            vuln = _require_dict(filename, vraw, f"{name}.vulns[{vindex}]")
            vuln_id = vuln.get("id")
            if not isinstance(vuln_id, str) or not vuln_id:
                raise ReportError(f"{filename}: {name}.vulns[{vindex}] has no id")
            aliases = [a for a in vuln.get("aliases") or () if isinstance(a, str)]
            fixes = [str(v) for v in vuln.get("fix_versions") or ()]
            declared = str(vuln.get("severity", "")).lower()
            severity = declared if declared in SEVERITY_RANK else "high"
            also = f" (also {', '.join(sorted(aliases))})" if aliases else ""
            findings.append(
                ScanFinding(
                    scanner="pip-audit",
                    severity=severity,
                    rule_id=vuln_id,
                    title=f"known vulnerability in {name} {version}{also}",
                    location=f"{name}=={version}",
                    fix=f"upgrade to {' or '.join(fixes)}" if fixes else None,
                )
            )
    return ScanReport(filename, "pip-audit", "pip-audit", tuple(findings), tuple(unverified))


# ---------------------------------------------------------------------------------------------
# Trivy
# ---------------------------------------------------------------------------------------------

_TRIVY_SEVERITY = {
    "CRITICAL": "critical",
    "HIGH": "high",
    "MEDIUM": "medium",
    "LOW": "low",
    "UNKNOWN": "medium",
}


def _trivy_severity(filename: str, raw: Any, where: str) -> str:
    key = str(raw or "UNKNOWN").upper()
    if key not in _TRIVY_SEVERITY:
        raise ReportError(
            f"{filename}: {where}.Severity must be CRITICAL, HIGH, MEDIUM, LOW or UNKNOWN, got "
            f"{raw!r}"
        )
    return _TRIVY_SEVERITY[key]


def _trivy(filename: str, value: Mapping[str, Any]) -> ScanReport:
    findings = []
    notes = []
    results = _require_list(filename, value.get("Results"), "Results")
    for rindex, raw in enumerate(results):
        result = _require_dict(filename, raw, f"Results[{rindex}]")
        target = str(result.get("Target", "?"))
        for index, vraw in enumerate(
            _require_list(filename, result.get("Vulnerabilities"), f"{target}.Vulnerabilities")
        ):
            where = f"Results[{rindex}].Vulnerabilities[{index}]"
            vuln = _require_dict(filename, vraw, where)
            vuln_id = vuln.get("VulnerabilityID")
            if not isinstance(vuln_id, str) or not vuln_id:
                raise ReportError(f"{filename}: {where} has no VulnerabilityID")
            pkg = f"{vuln.get('PkgName', '?')} {vuln.get('InstalledVersion', '?')}"
            fixed = vuln.get("FixedVersion")
            findings.append(
                ScanFinding(
                    scanner="trivy",
                    severity=_trivy_severity(filename, vuln.get("Severity"), where),
                    rule_id=vuln_id,
                    title=str(vuln.get("Title") or f"vulnerability in {pkg}"),
                    location=f"{target}: {pkg}",
                    fix=f"upgrade to {fixed}" if fixed else None,
                )
            )
        passed = 0
        for index, mraw in enumerate(
            _require_list(filename, result.get("Misconfigurations"), f"{target}.Misconfigurations")
        ):
            where = f"Results[{rindex}].Misconfigurations[{index}]"
            misconf = _require_dict(filename, mraw, where)
            if str(misconf.get("Status", "FAIL")).upper() != "FAIL":
                passed += 1
                continue
            cause = misconf.get("CauseMetadata") or {}
            line = cause.get("StartLine") if isinstance(cause, Mapping) else None
            findings.append(
                ScanFinding(
                    scanner="trivy",
                    severity=_trivy_severity(filename, misconf.get("Severity"), where),
                    rule_id=str(misconf.get("AVDID") or misconf.get("ID") or "misconfiguration"),
                    title=str(misconf.get("Title") or misconf.get("Message") or "misconfiguration"),
                    location=f"{target}:{line}" if line else target,
                    fix=str(misconf["Resolution"]) if misconf.get("Resolution") else None,
                )
            )
        if passed:
            notes.append(f"{target}: {passed} passing misconfiguration check(s) ignored")
        for index, sraw in enumerate(
            _require_list(filename, result.get("Secrets"), f"{target}.Secrets")
        ):
            where = f"Results[{rindex}].Secrets[{index}]"
            secret = _require_dict(filename, sraw, where)
            line = secret.get("StartLine")
            findings.append(
                ScanFinding(
                    scanner="trivy",
                    severity=_trivy_severity(filename, secret.get("Severity"), where),
                    rule_id=str(secret.get("RuleID") or "secret"),
                    title=f"secret in source: {secret.get('Title') or secret.get('Category')}",
                    location=f"{target}:{line}" if line else target,
                    fix="remove it from the repository and rotate it",
                )
            )
    return ScanReport(filename, "trivy", "Trivy", tuple(findings), (), tuple(notes))


# ---------------------------------------------------------------------------------------------
# SARIF 2.1.0
# ---------------------------------------------------------------------------------------------

_SARIF_LEVEL = {"error": "high", "warning": "medium", "note": "low"}
_NOT_FINDINGS = {"pass", "notapplicable", "informational"}


def severity_from_score(score: float) -> str:
    """CVSS-style score -> level: >= 9.0 critical, >= 7.0 high, >= 4.0 medium, else low."""
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "medium"
    return "low"


def _score(properties: Any) -> float | None:
    if not isinstance(properties, Mapping):
        return None
    raw = properties.get("security-severity")
    if raw is None or isinstance(raw, bool):
        return None
    try:
        return float(raw)
    except (TypeError, ValueError):
        return None


def _rule_for(result: Mapping[str, Any], rules: Sequence[Any]) -> Mapping[str, Any]:
    index = result.get("ruleIndex")
    if index is None and isinstance(result.get("rule"), Mapping):
        index = result["rule"].get("index")
    if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(rules):
        rule = rules[index]
        return rule if isinstance(rule, Mapping) else {}
    rule_id = result.get("ruleId")
    for rule in rules:
        if isinstance(rule, Mapping) and rule_id is not None and rule.get("id") == rule_id:
            return rule
    return {}


def _sarif_location(result: Mapping[str, Any]) -> str:
    for location in result.get("locations") or ():
        physical = location.get("physicalLocation") if isinstance(location, Mapping) else None
        if not isinstance(physical, Mapping):
            continue
        uri = (physical.get("artifactLocation") or {}).get("uri", "?")
        line = (physical.get("region") or {}).get("startLine")
        return f"{uri}:{line}" if line else str(uri)
    return "(no location)"


def _suppressed(result: Mapping[str, Any]) -> bool:
    for suppression in result.get("suppressions") or ():
        if isinstance(suppression, Mapping) and suppression.get("status", "accepted") == "accepted":
            return True
    return False


def _sarif(filename: str, value: Mapping[str, Any]) -> ScanReport:
    version = str(value.get("version", ""))
    if version != "2.1.0":
        raise ReportError(f"{filename}: SARIF version must be 2.1.0, got {version or 'none'!r}")
    findings = []
    tools = []
    for rindex, raw_run in enumerate(_require_list(filename, value.get("runs"), "runs")):
        run = _require_dict(filename, raw_run, f"runs[{rindex}]")
        driver = _require_dict(
            filename,
            _require_dict(filename, run.get("tool"), f"runs[{rindex}].tool").get("driver"),
            f"runs[{rindex}].tool.driver",
        )
        tool = str(driver.get("name") or "sarif")
        tools.append(tool)
        scanner = tool.lower()
        rules = _require_list(filename, driver.get("rules"), f"runs[{rindex}].tool.driver.rules")
        for index, raw in enumerate(
            _require_list(filename, run.get("results"), f"runs[{rindex}].results")
        ):
            result = _require_dict(filename, raw, f"runs[{rindex}].results[{index}]")
            if str(result.get("kind", "fail")).lower() in _NOT_FINDINGS or _suppressed(result):
                continue
            if result.get("baselineState") == "absent":
                continue
            rule = _rule_for(result, rules)
            score = _score(result.get("properties"))
            if score is None:
                score = _score(rule.get("properties"))
            if score is not None:
                severity = severity_from_score(score)
            else:
                default = rule.get("defaultConfiguration") or {}
                level = str(result.get("level") or default.get("level") or "warning").lower()
                if level == "none":
                    continue
                if level not in _SARIF_LEVEL:
                    raise ReportError(
                        f"{filename}: runs[{rindex}].results[{index}].level must be error, "
                        f"warning, note or none, got {level!r}"
                    )
                severity = _SARIF_LEVEL[level]
            message = result.get("message") or {}
            text = message.get("text") if isinstance(message, Mapping) else None
            short = rule.get("shortDescription") or {}
            title = text or (short.get("text") if isinstance(short, Mapping) else None) or "issue"
            findings.append(
                ScanFinding(
                    scanner=scanner,
                    severity=severity,
                    rule_id=str(result.get("ruleId") or rule.get("id") or "rule"),
                    title=str(title).strip().splitlines()[0] if str(title).strip() else "issue",
                    location=_sarif_location(result),
                )
            )
    return ScanReport(filename, "sarif", ", ".join(tools) or "SARIF", tuple(findings))
