"""Scanner report parsing: real Bandit output produced here, recorded pip-audit, Trivy and SARIF
reports in tests/fixtures/reports/ (in the tools' real output formats)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deployline.runtime.reports import (
    ReportError,
    detect_format,
    parse_report,
    severity_from_score,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "reports"

VULNERABLE_CODE = """\
import hashlib
import subprocess


def run(cmd):
    subprocess.call(cmd, shell=True)
    return hashlib.md5(cmd.encode()).hexdigest()


def calc(expr):
    return eval(expr)
"""


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.fixture(scope="module")
def bandit_json(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """Bandit's real JSON output on a small project with known issues and one broken file."""
    project = tmp_path_factory.mktemp("project")
    (project / "app.py").write_text(VULNERABLE_CODE)
    (project / "broken.py").write_text("def broken(:\n    pass\n")
    result = subprocess.run(
        [sys.executable, "-m", "bandit", "-r", str(project), "-f", "json", "-q"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stderr  # bandit exits 1 when it found issues
    return result.stdout


def test_bandit_findings_keep_bandit_severity(bandit_json: bytes) -> None:
    report = parse_report("bandit.json", bandit_json)

    assert report.format == "bandit"
    by_rule = {f.rule_id: f for f in report.findings}
    assert {rule: f.severity for rule, f in by_rule.items()} == {
        "B404": "low",  # import subprocess
        "B602": "high",  # shell=True
        "B324": "high",  # md5
        "B307": "medium",  # eval
    }
    assert by_rule["B602"].location.endswith("app.py:6")
    assert "confidence high" in by_rule["B602"].title


def test_files_bandit_could_not_parse_are_unverified(bandit_json: bytes) -> None:
    report = parse_report("bandit.json", bandit_json)

    assert len(report.unverified) == 1
    assert "broken.py" in report.unverified[0]
    assert "syntax error" in report.unverified[0]


def test_pip_audit_vulnerabilities_count_as_high_and_skipped_dependencies_are_unverified() -> None:
    report = parse_report("pip-audit.json", fixture("pip-audit.json"))

    assert report.format == "pip-audit"
    (finding,) = report.findings
    assert (finding.rule_id, finding.severity, finding.location) == (
        "PYSEC-2018-28",
        "high",
        "requests==2.19.0",
    )
    assert "CVE-2018-18074" in finding.title
    assert finding.fix == "upgrade to 2.20.0"
    assert report.unverified == (
        "payments-internal: not audited (Dependency not found on PyPI and could not be audited: "
        "payments-internal (1.4.0))",
    )


def test_pip_audit_legacy_list_form_is_understood() -> None:
    report = parse_report("pip-audit.json", fixture("pip-audit-legacy.json"))

    assert [(f.rule_id, f.severity, f.location) for f in report.findings] == [
        ("PYSEC-2021-108", "high", "urllib3==1.26.4")
    ]


def test_pip_audit_severity_in_the_record_wins() -> None:
    data = {
        "dependencies": [
            {
                "name": "jinja2",
                "version": "3.1.2",
                "vulns": [
                    {"id": "GHSA-h5c8-rqwp-cp95", "fix_versions": ["3.1.3"], "severity": "MEDIUM"}
                ],
            }
        ]
    }
    report = parse_report("pip-audit.json", json.dumps(data).encode())
    assert report.findings[0].severity == "medium"


def test_trivy_filesystem_report_counts_vulnerabilities_failed_checks_and_secrets() -> None:
    report = parse_report("trivy-fs.json", fixture("trivy-fs.json"))

    assert report.format == "trivy"
    assert sorted((f.rule_id, f.severity) for f in report.findings) == [
        ("AVD-DS-0002", "high"),
        ("CVE-2018-18074", "high"),
        ("CVE-2023-32681", "medium"),
        ("aws-access-key-id", "critical"),
    ]
    secret = next(f for f in report.findings if f.rule_id == "aws-access-key-id")
    assert secret.location == "app/settings.py:4"
    assert report.notes == ("Dockerfile: 1 passing misconfiguration check(s) ignored",)


def test_trivy_unknown_severity_is_medium() -> None:
    report = parse_report("trivy-image.json", fixture("trivy-image.json"))

    assert {f.rule_id: f.severity for f in report.findings} == {
        "CVE-2024-2961": "critical",
        "CVE-2024-33601": "medium",
        "CVE-2011-3374": "low",
    }


def test_sarif_security_severity_wins_over_level_and_suppressed_results_are_dropped() -> None:
    report = parse_report("semgrep.sarif", fixture("semgrep.sarif"))

    assert report.format == "sarif"
    assert report.tool == "Semgrep OSS"
    assert [(f.location, f.severity) for f in report.findings] == [
        ("app/db.py:42", "critical"),  # level warning, but security-severity 9.8
        ("app/main.py:88", "high"),  # the rule's default level error
        ("app/report.py:7", "low"),  # note
    ]
    assert all(f.scanner == "semgrep oss" for f in report.findings)


@pytest.mark.parametrize(
    ("score", "severity"),
    [
        (10.0, "critical"),
        (9.0, "critical"),
        (8.9, "high"),
        (7.0, "high"),
        (6.9, "medium"),
        (4.0, "medium"),
        (3.9, "low"),
        (0.0, "low"),
    ],
)
def test_security_severity_score_boundaries(score: float, severity: str) -> None:
    assert severity_from_score(score) == severity


def test_sarif_pass_results_and_level_none_are_not_findings() -> None:
    sarif = {
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "checkov"}},
                "results": [
                    {
                        "ruleId": "CKV_1",
                        "kind": "pass",
                        "level": "error",
                        "message": {"text": "ok"},
                    },
                    {"ruleId": "CKV_2", "level": "none", "message": {"text": "info"}},
                    {"ruleId": "CKV_3", "message": {"text": "default level is warning"}},
                ],
            }
        ],
    }
    report = parse_report("checkov.sarif", json.dumps(sarif).encode())
    assert [(f.rule_id, f.severity) for f in report.findings] == [("CKV_3", "medium")]


def test_format_is_detected_from_content_not_the_name() -> None:
    assert parse_report("results.json", fixture("trivy-fs.json")).format == "trivy"
    assert parse_report("scan-output", fixture("semgrep.sarif")).format == "sarif"
    assert detect_format("x.json", {"dependencies": []}) == "pip-audit"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "bandit.json is empty"),
        (b"   \n", "bandit.json is empty"),
        (b'{"results": [{"test_id": "B1"', "is not valid JSON"),
        (b"\xff\xfe\x00", "is not UTF-8"),
        (b'{"hello": "world"}', "not a Bandit, pip-audit, Trivy or SARIF"),
        (b'{"results": {}, "errors": []}', "not a Bandit, pip-audit, Trivy or SARIF"),
        (
            b'{"results": [{"issue_severity": "SEVERE", "test_id": "B1"}], "errors": []}',
            "issue_severity must be HIGH, MEDIUM or LOW",
        ),
        (b'{"version": "2.0.0", "runs": []}', "SARIF version must be 2.1.0"),
        (
            b'{"SchemaVersion": 2, "Results": [{"Vulnerabilities": [{"Severity": "HIGH"}]}]}',
            "has no VulnerabilityID",
        ),
        (b"42", "not a scanner report"),
    ],
)
def test_malformed_reports_raise_report_error_naming_the_file(data: bytes, expected: str) -> None:
    with pytest.raises(ReportError, match=r"bandit\.json") as info:
        parse_report("bandit.json", data)
    assert expected in str(info.value)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "results",
                    "errors",
                    "dependencies",
                    "name",
                    "vulns",
                    "runs",
                    "version",
                    "SchemaVersion",
                    "Results",
                    "Vulnerabilities",
                    "Severity",
                    "id",
                ]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=_json)
def test_arbitrary_json_either_parses_or_raises_report_error(value: object) -> None:
    try:
        report = parse_report("report.json", json.dumps(value).encode())
    except ReportError:
        return
    assert all(f.severity in ("critical", "high", "medium", "low") for f in report.findings)
