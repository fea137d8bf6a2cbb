"""Report formats: text, JSON, SARIF 2.1.0 (validated against the official schema) and JUnit."""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from deployline.checks.api import check_paths
from deployline.checks.model import CheckResult, Finding, ParseError, Severity
from deployline.checks.output import (
    fingerprint,
    render,
    render_json,
    render_junit,
    render_rules,
    render_sarif,
    render_text,
)
from deployline.checks.registry import rule_classes

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SCHEMA = json.loads((FIXTURES / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  DataBucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Sub "${AWS::StackName}-data"
      Tags: [{Key: Environment, Value: prod}]
  BuildProject:
    Type: AWS::CodeBuild::Project
    Properties:
      Source:
        Type: CODEPIPELINE
        BuildSpec: buildspec.yml
      Artifacts: {Type: CODEPIPELINE}
      ServiceRole: !GetAtt Role.Arn
      Environment:
        Type: LINUX_CONTAINER
        ComputeType: BUILD_GENERAL1_SMALL
        Image: aws/codebuild/standard:7.0
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("output")
    (root / "infra").mkdir()
    (root / "infra" / "stack.yaml").write_text(TEMPLATE, encoding="utf-8")
    (root / "infra" / "clean.yaml").write_text(
        "Resources:\n  H:\n    Type: AWS::CloudFormation::WaitConditionHandle\n",
        encoding="utf-8",
    )
    (root / "infra" / "broken.yaml").write_text("Resources:\n  A: [\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def result(workdir: Path) -> CheckResult:
    checked = check_paths([workdir / "infra"], cwd=workdir)
    assert checked.findings and checked.unknown and checked.errors, "the fixture covers all three"
    return checked


def _validate_sarif(document: dict[str, Any]) -> list[str]:
    validator_cls = jsonschema.validators.validator_for(SCHEMA)
    validator = validator_cls(SCHEMA, format_checker=validator_cls.FORMAT_CHECKER)
    return [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(document)]


# Text ----------------------------------------------------------------------------------------


def test_text_groups_by_file_then_resource_with_rule_path_message_and_fix(
    result: CheckResult,
) -> None:
    text = render_text(result)
    lines = text.splitlines()
    file_line = lines.index("infra/stack.yaml")
    resource_lines = [i for i, line in enumerate(lines) if line.startswith("  DataBucket ")]
    assert resource_lines and resource_lines[0] > file_line
    assert "  DataBucket [AWS::S3::Bucket] (line 3)" in lines
    assert any(line.split() == ["HIGH", "DL101", "Properties.BucketEncryption"] for line in lines)
    assert any(line.strip().startswith("fix: Add BucketEncryption") for line in lines)
    assert "\x1b[" not in text  # no colour unless asked


def test_text_shows_unknown_and_parse_errors_apart_from_findings(result: CheckResult) -> None:
    text = render_text(result)
    findings_at = text.index("Findings")
    unknown_at = text.index("UNKNOWN (the template does not hold the answer")
    assert findings_at < unknown_at
    unknown_section = text[unknown_at:]
    assert "UNKNOWN  DL" in unknown_section
    assert text.startswith("error: infra/broken.yaml:")


def test_text_summary_counts_each_kind_and_says_the_verdict(result: CheckResult) -> None:
    last = render_text(result).splitlines()[-1]
    s = result.summary()
    assert last.startswith(f"{s['files']} files checked, {s['findings']} findings (")
    assert f"{s['unknown']} unknown" in last
    assert "1 parse error" in last
    assert "FAILED (threshold HIGH:" in last


def test_text_in_colour_renders_rich_markup() -> None:
    finding = Finding("DL101", Severity.HIGH, "t.yaml", "Bucket", "Properties.X", "[bold]x[/]")
    coloured = render_text(CheckResult(findings=[finding]), color=True)
    assert "[bold red]    HIGH     DL101  Properties.X[/]" in coloured
    assert "\\[bold]x\\[/]" in coloured  # messages are escaped, not interpreted


# JSON ----------------------------------------------------------------------------------------


def test_json_lists_findings_unknown_suppressed_errors_and_summary(result: CheckResult) -> None:
    document = json.loads(render_json(result))
    assert set(document) >= {"findings", "unknown", "suppressed", "errors", "summary"}
    first = document["findings"][0]
    for key in ("rule_id", "severity", "file", "resource", "path", "line", "message"):
        assert key in first
    assert first["remediation"]
    assert {f["file"] for f in document["findings"]} == {"infra/stack.yaml"}
    assert all(u["unknown"] for u in document["unknown"])
    assert document["errors"] == [
        {"file": e.file, "line": e.line, "message": e.message} for e in result.errors
    ]
    summary = document["summary"]
    assert summary["findings"] == len(result.findings)
    assert summary["exit_code"] == 1
    assert summary["threshold"] == "HIGH"


# SARIF ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sarif(result: CheckResult, workdir: Path) -> dict[str, Any]:
    return json.loads(render_sarif(result, cwd=workdir))


def test_sarif_validates_against_the_sarif_2_1_0_schema(sarif: dict[str, Any]) -> None:
    assert _validate_sarif(sarif) == []
    assert sarif["version"] == "2.1.0"


def test_the_schema_check_is_real() -> None:
    broken = {"version": "2.1.0", "runs": [{"tool": {"driver": {}}, "results": []}]}
    assert any("name" in error for error in _validate_sarif(broken))


def test_sarif_driver_describes_every_rule_that_ran(
    sarif: dict[str, Any], result: CheckResult
) -> None:
    driver = sarif["runs"][0]["tool"]["driver"]
    assert driver["name"] == "deployline"
    assert driver["version"] and driver["informationUri"].startswith("https://")
    ids = [r["id"] for r in driver["rules"]]
    assert ids == sorted(result.rules)
    dl101 = next(r for r in driver["rules"] if r["id"] == "DL101")
    rule = {c.id: c for c in rule_classes()}["DL101"]
    assert dl101["shortDescription"]["text"] == rule.title
    assert dl101["fullDescription"]["text"] == rule.rationale
    assert rule.remediation in dl101["help"]["text"]
    assert "```yaml" in dl101["help"]["markdown"]
    assert dl101["defaultConfiguration"]["level"] == "error"
    assert dl101["properties"]["security-severity"] == "8.0"
    assert "security" in dl101["properties"]["tags"]


def test_sarif_results_point_at_file_line_and_resource(
    sarif: dict[str, Any], result: CheckResult
) -> None:
    run = sarif["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    failures = [r for r in run["results"] if r.get("kind") == "fail"]
    assert len(failures) == len(result.findings)
    for item in failures:
        assert rules[item["ruleIndex"]]["id"] == item["ruleId"]
        physical = item["locations"][0]["physicalLocation"]
        assert physical["artifactLocation"] == {"uri": "infra/stack.yaml", "uriBaseId": "%SRCROOT%"}
        assert physical["region"]["startLine"] >= 1
        assert item["locations"][0]["logicalLocations"][0]["name"] in {
            "DataBucket",
            "BuildProject",
        }
    dl101 = next(r for r in failures if r["ruleId"] == "DL101")
    assert dl101["level"] == "error"
    assert dl101["locations"][0]["physicalLocation"]["region"]["startLine"] == 3


def test_sarif_fingerprints_are_stable_and_distinct(
    sarif: dict[str, Any], result: CheckResult
) -> None:
    prints = [r["partialFingerprints"]["deploylineFinding/v1"] for r in sarif["runs"][0]["results"]]
    assert len(set(prints)) == len(prints)
    moved = dataclasses.replace(result.findings[0], line=999, message="reworded")
    assert fingerprint(moved) == fingerprint(result.findings[0])


def test_sarif_unknowns_are_review_results_and_parse_errors_notifications(
    sarif: dict[str, Any], result: CheckResult
) -> None:
    run = sarif["runs"][0]
    reviews = [r for r in run["results"] if r.get("kind") == "review"]
    assert len(reviews) == len(result.unknown)
    # SARIF 3.27.9: a result whose kind is not "fail" has level "none".
    assert {r["level"] for r in reviews} == {"none"}
    invocation = run["invocations"][0]
    assert invocation["executionSuccessful"] is False
    notes = invocation["toolExecutionNotifications"]
    assert [n["level"] for n in notes] == ["error"]
    location = notes[0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "infra/broken.yaml"
    assert location["region"]["startLine"] == result.errors[0].line


def test_sarif_of_a_file_outside_the_working_dir_uses_an_absolute_uri(tmp_path: Path) -> None:
    finding = Finding("DL101", Severity.HIGH, "/elsewhere/t.yaml", "B", "Properties", "m")
    document = json.loads(render_sarif(CheckResult(findings=[finding]), cwd=tmp_path))
    location = document["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "file:///elsewhere/t.yaml"}
    assert _validate_sarif(document) == []


def test_an_empty_run_is_still_valid_sarif(tmp_path: Path) -> None:
    document = json.loads(render_sarif(CheckResult(files=["a.yaml"]), cwd=tmp_path))
    assert document["runs"][0]["results"] == []
    assert _validate_sarif(document) == []


# JUnit ---------------------------------------------------------------------------------------


def test_junit_has_a_suite_per_file_a_failure_per_rule_and_resource(result: CheckResult) -> None:
    root = ET.fromstring(render_junit(result))
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == {"infra/stack.yaml", "infra/clean.yaml", "infra/broken.yaml"}
    stack = suites["infra/stack.yaml"]
    failures = [c for c in stack.iter("testcase") if c.find("failure") is not None]
    pairs = {(f.rule_id, f.resource) for f in result.findings}
    assert {c.get("name") for c in failures} == {f"{r} {res}" for r, res in pairs}
    assert stack.get("failures") == str(len(pairs))
    dl101 = next(c for c in failures if c.get("name") == "DL101 DataBucket")
    failure = dl101.find("failure")
    assert failure is not None
    assert failure.get("type") == "DL101 HIGH"
    assert "Properties.BucketEncryption" in (failure.text or "")


def test_junit_passes_a_clean_file_and_errors_on_a_broken_one(result: CheckResult) -> None:
    root = ET.fromstring(render_junit(result))
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    clean_cases = list(suites["infra/clean.yaml"].iter("testcase"))
    assert len(clean_cases) == 1 and list(clean_cases[0]) == []
    broken = suites["infra/broken.yaml"]
    assert broken.get("errors") == "1"
    error = next(broken.iter("error"))
    assert error.get("type") == "ParseError"
    assert root.get("errors") == "1"
    assert int(root.get("failures") or 0) == sum(
        int(s.get("failures") or 0) for s in suites.values()
    )


def test_render_rejects_an_unknown_format(result: CheckResult) -> None:
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        render(result, "xml")


# deployline rules ----------------------------------------------------------------------------


def test_rules_listing_in_every_format_carries_the_docs() -> None:
    classes = list(rule_classes())
    listed = json.loads(render_rules(classes, "json"))
    assert [r["id"] for r in listed] == [c.id for c in classes]
    assert all(r["rationale"] and r["remediation"] and r["severity"] for r in listed)
    markdown = render_rules(classes, "markdown")
    assert markdown.count("\n## DL") + markdown.startswith("## DL") == len(classes)
    table = render_rules(classes, "text")
    assert table.splitlines()[0].split() == ["ID", "SEVERITY", "FAMILY", "TITLE"]
    detail = render_rules(classes[:1], "text", detail=True)
    assert "why:" in detail and "fix:" in detail


def test_a_parse_error_alone_makes_a_valid_report_in_every_format(tmp_path: Path) -> None:
    only_error = CheckResult(errors=[ParseError("x.yaml", "invalid YAML: bad", 3)])
    assert _validate_sarif(json.loads(render_sarif(only_error, cwd=tmp_path))) == []
    assert json.loads(render_json(only_error))["summary"]["exit_code"] == 1
    assert ET.fromstring(render_junit(only_error)).get("errors") == "1"
    assert "error: x.yaml:3: invalid YAML: bad" in render_text(only_error)


def test_print_text_writes_ansi_colour_only_when_asked(result: CheckResult) -> None:
    import io

    from deployline.checks.output import print_text

    coloured, plain = io.StringIO(), io.StringIO()
    print_text(result, color=True, file=coloured)
    print_text(result, color=False, file=plain)
    assert "\x1b[1;31m    HIGH     DL101" in coloured.getvalue()
    assert "\x1b[" not in plain.getvalue()
    assert plain.getvalue() == render_text(result)


def test_text_ends_with_a_per_rule_summary_and_gives_each_fix_once_per_file() -> None:
    from deployline.checks.api import check_texts

    two_buckets = "Resources:\n  A:\n    Type: AWS::S3::Bucket\n  B:\n    Type: AWS::S3::Bucket\n"
    result = check_texts({"t.yaml": two_buckets}, rules=["DL101", "DL103"])
    text = render_text(result)
    assert text.count("fix: Add BucketEncryption") == 1
    assert text.count("fix: Set PublicAccessBlockConfiguration") == 1
    summary = text[text.index("By rule:") :].splitlines()
    assert summary[1].split()[:4] == ["DL101", "HIGH", "2", "found"]
    assert "in 1 file" in summary[1] and summary[2].split()[0] == "DL103"
