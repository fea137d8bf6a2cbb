"""Every rule against its fixtures: tests/fixtures/templates/<ID>/{pass,fail}_*.{yaml,json}.

Each fixture states what it expects in its top-level Metadata:
    DeploylineTest: {expect_findings: [LogicalId, ...], expect_unknown: [LogicalId, ...]}
and the test asserts that the rule reports exactly those logical IDs (as findings and as UNKNOWN).
A pass_* fixture must expect no findings.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deployline.checks.engine import check_template, template_from_text
from deployline.checks.registry import rule_classes

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "templates"
RULES = {cls.id: cls for cls in rule_classes()}


def _fixture_files() -> list[Path]:
    return sorted(
        p
        for p in FIXTURES.glob("DL*/*")
        if p.suffix in {".yaml", ".yml", ".json"} and p.name.startswith(("pass_", "fail_"))
    )


@pytest.mark.parametrize("fixture", _fixture_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_rule_reports_exactly_the_expected_resources(fixture: Path) -> None:
    rule_id = fixture.parent.name
    assert rule_id in RULES, f"fixtures for {rule_id} but no rule with that ID"
    template = template_from_text(fixture.read_text(encoding="utf-8"), str(fixture))
    expectation = template.data.get("Metadata", {}).get("DeploylineTest")
    assert isinstance(expectation, dict), f"{fixture} needs Metadata.DeploylineTest"
    expected_findings = set(expectation.get("expect_findings") or [])
    expected_unknown = set(expectation.get("expect_unknown") or [])
    if fixture.name.startswith("pass_"):
        assert not expected_findings, "a pass_ fixture cannot expect findings"
    else:
        assert expected_findings or expected_unknown, "a fail_ fixture must expect something"

    findings, unknown = check_template(template, [RULES[rule_id]()])

    assert {f.resource for f in findings} == expected_findings
    assert {f.resource for f in unknown} == expected_unknown
    assert all(f.rule_id == rule_id for f in findings + unknown)


def test_every_rule_has_pass_and_fail_fixtures() -> None:
    for rule_id in RULES:
        names = [p.name for p in (FIXTURES / rule_id).glob("*")]
        assert any(n.startswith("pass_") for n in names), f"{rule_id} has no pass_ fixture"
        assert any(n.startswith("fail_") for n in names), f"{rule_id} has no fail_ fixture"
