"""Every rule against its fixtures.

Rule fixtures: tests/fixtures/templates/<ID>/{pass,fail}_*.{yaml,json}. Each states what it expects
in its top-level Metadata:
    DeploylineTest: {expect_findings: [LogicalId, ...], expect_unknown: [LogicalId, ...]}
or, asserting property paths as well (exactly these resources, each with exactly these paths):
    DeploylineTest: {expect_findings: {LogicalId: [Properties.X, ...]}, expect_unknown: {...}}
A pass_* fixture must expect no findings.

Case fixtures: tests/fixtures/templates/cases/*.{yaml,json}, one class of real-template reading
(JSON-string policies, intrinsics, pipelines that deploy through CloudFormation or CodeBuild, ...)
checked by several rules at once. Their Metadata names each rule it runs:
    DeploylineTest: {DL402: {findings: {LogicalId: [path, ...]}, unknown: {...}}, DL405: {}}
and every rule named must report exactly those resources and paths (an empty mapping: nothing).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest

from deployline.checks.engine import check_template, template_from_text
from deployline.checks.model import Finding
from deployline.checks.registry import rule_classes
from deployline.checks.template import Template

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "templates"
CASES = FIXTURES / "cases"
RULES = {cls.id: cls for cls in rule_classes()}
SUFFIXES = {".yaml", ".yml", ".json"}


def _fixture_files() -> list[Path]:
    return sorted(
        p
        for p in FIXTURES.glob("DL*/*")
        if p.suffix in SUFFIXES and p.name.startswith(("pass_", "fail_"))
    )


def _case_files() -> list[Path]:
    return sorted(p for p in CASES.glob("*") if p.suffix in SUFFIXES)


def _reported(findings: list[Finding], expected: Any) -> Any:
    """What the rule reported, in the shape of the expectation: a set of logical IDs for a list,
    a mapping of logical ID to the set of property paths for a mapping."""
    if isinstance(expected, dict):
        out: dict[str, set[str]] = {}
        for f in findings:
            out.setdefault(f.resource, set()).add(f.path)
        return out
    return {f.resource for f in findings}


def _wanted(expected: Any) -> Any:
    if isinstance(expected, dict):
        return {str(k): set(v or []) for k, v in expected.items()}
    return set(expected or [])


@functools.cache
def _template(fixture: Path) -> Template:
    return template_from_text(fixture.read_text(encoding="utf-8"), str(fixture))


def _run(fixture: Path, rule_id: str) -> tuple[Any, list[Finding], list[Finding]]:
    template = _template(fixture)
    findings, unknown = check_template(template, [RULES[rule_id]()])
    assert all(f.rule_id == rule_id for f in findings + unknown)
    return template, findings, unknown


@pytest.mark.parametrize("fixture", _fixture_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_rule_reports_exactly_the_expected_resources(fixture: Path) -> None:
    rule_id = fixture.parent.name
    assert rule_id in RULES, f"fixtures for {rule_id} but no rule with that ID"
    template, findings, unknown = _run(fixture, rule_id)
    expectation = template.data.get("Metadata", {}).get("DeploylineTest")
    assert isinstance(expectation, dict), f"{fixture} needs Metadata.DeploylineTest"
    expected_findings = expectation.get("expect_findings") or []
    expected_unknown = expectation.get("expect_unknown") or []
    if fixture.name.startswith("pass_"):
        assert not expected_findings, "a pass_ fixture cannot expect findings"
    else:
        assert expected_findings or expected_unknown, "a fail_ fixture must expect something"

    assert _reported(findings, expected_findings) == _wanted(expected_findings)
    assert _reported(unknown, expected_unknown) == _wanted(expected_unknown)


@pytest.mark.parametrize("fixture", _case_files(), ids=lambda p: p.name)
def test_case_reports_exactly_the_expected_resources_and_paths(fixture: Path) -> None:
    expectation = _template(fixture).data["Metadata"]["DeploylineTest"]
    assert expectation, f"{fixture} names no rule in Metadata.DeploylineTest"
    for rule_id, wanted in expectation.items():
        assert rule_id in RULES, f"{fixture.name} names {rule_id}, which is no rule"
        _, findings, unknown = _run(fixture, rule_id)
        wanted = wanted or {}
        got = (_reported(findings, {}), _reported(unknown, {}))
        want = (_wanted(wanted.get("findings") or {}), _wanted(wanted.get("unknown") or {}))
        assert got == want, f"{rule_id} on {fixture.name}"


def test_every_rule_has_pass_and_fail_fixtures() -> None:
    for rule_id in RULES:
        names = [p.name for p in (FIXTURES / rule_id).glob("*")]
        assert any(n.startswith("pass_") for n in names), f"{rule_id} has no pass_ fixture"
        assert any(n.startswith("fail_") for n in names), f"{rule_id} has no fail_ fixture"


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_resource_types_name_every_type_that_makes_the_rule_report(rule_id: str) -> None:
    """The engine skips a rule on templates without its resource_types: on every fixture where
    the rule reports, running it without that skip finds nothing more."""
    rule = RULES[rule_id]()
    for fixture in [*_fixture_files(), *_case_files()]:
        template = _template(fixture)
        hits = list(rule.check(template))
        if hits and rule.resource_types:
            assert not template.types.isdisjoint(rule.resource_types), (rule_id, fixture.name)
