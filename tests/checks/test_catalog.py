"""The rule set is pinned to the failure catalog and to RULES.md.

tests/fixtures/failure-catalog.md is the project's copy of the shared catalog (CI runs on a clean
checkout of this repository only). The registered rules must be exactly the catalog's rows plus the
checker's own DL000, with the row's severity, section and seed; the packaged catalog.yaml must hold
the same rows; RULES.md must be what `python -m deployline.checks.docs` generates.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from deployline.checks.docs import (
    CHECKER_RULES,
    REGENERATE,
    CatalogRow,
    catalog_rows,
    main,
    parse_catalog,
    render_rules_markdown,
)
from deployline.checks.loader import CfnYamlLoader
from deployline.checks.model import Rule
from deployline.checks.registry import rule_classes

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "tests" / "fixtures" / "failure-catalog.md"
SHARED_CATALOG = ROOT.parent / "shared" / "failure-catalog.md"
FIXTURES = ROOT / "tests" / "fixtures" / "templates"
RULES_MD = ROOT / "RULES.md"


@pytest.fixture(scope="module")
def rows() -> list[CatalogRow]:
    return parse_catalog(CATALOG.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def rules() -> dict[str, type[Rule]]:
    return {cls.id: cls for cls in rule_classes()}


def test_catalog_has_every_section_and_unique_ids(rows: list[CatalogRow]) -> None:
    ids = [r.id for r in rows]
    assert len(ids) == len(set(ids)), "duplicate IDs in the catalog"
    assert {r.family for r in rows} == {
        "Security",
        "Cost and resource lifecycle",
        "Build",
        "Pipeline structure",
        "Monitoring and audit",
        "Runtime",
        "Organisation",
        "Deployment strategy",
    }
    assert len(rows) == 50


def test_project_copy_of_the_catalog_matches_the_shared_one() -> None:
    if not SHARED_CATALOG.exists():
        pytest.skip("no ../shared/failure-catalog.md beside this checkout (clean CI checkout)")
    assert CATALOG.read_text(encoding="utf-8") == SHARED_CATALOG.read_text(encoding="utf-8"), (
        f"copy {SHARED_CATALOG} to {CATALOG}, then regenerate catalog.yaml and RULES.md"
    )


def test_registered_rules_are_the_catalog_rows_plus_the_checkers_own(
    rows: list[CatalogRow], rules: dict[str, type[Rule]]
) -> None:
    catalog_ids = {r.id for r in rows}
    assert set(rules) - catalog_ids == set(CHECKER_RULES), "rules that the catalog does not list"
    assert catalog_ids - set(rules) == set(), "catalog rows without a rule"


def test_each_rule_has_its_rows_severity_family_and_seed(
    rows: list[CatalogRow], rules: dict[str, type[Rule]]
) -> None:
    wrong = [
        f"{r.id}: rule says {rules[r.id].severity.name}/{rules[r.id].family}/{rules[r.id].seed}, "
        f"catalog says {r.severity}/{r.family}/{r.seed}"
        for r in rows
        if (rules[r.id].severity.name, rules[r.id].family, rules[r.id].seed)
        != (r.severity, r.family, r.seed)
    ]
    assert wrong == []


def test_every_rule_is_documented_with_a_fix_example_that_parses(
    rules: dict[str, type[Rule]],
) -> None:
    for rule_id, rule in rules.items():
        for attr in ("title", "rationale", "remediation", "fix_example"):
            assert str(getattr(rule, attr)).strip(), f"{rule_id} has no {attr}"
        parsed = yaml.load(rule.fix_example, Loader=CfnYamlLoader)
        assert isinstance(parsed, dict | list), f"{rule_id}'s fix example is not a YAML snippet"


def test_every_catalog_row_has_pass_and_fail_fixtures(rows: list[CatalogRow]) -> None:
    for row in rows:
        names = [p.name for p in (FIXTURES / row.id).glob("*")]
        assert any(n.startswith("pass_") for n in names), f"{row.id} has no pass_ fixture"
        assert any(n.startswith("fail_") for n in names), f"{row.id} has no fail_ fixture"


def test_packaged_catalog_holds_the_catalogs_rows(rows: list[CatalogRow]) -> None:
    assert catalog_rows() == rows, (
        "regenerate the packaged catalog: python -m deployline.checks.docs --catalog "
        "tests/fixtures/failure-catalog.md --data > src/deployline/checks/data/catalog.yaml"
    )


def test_rules_md_is_what_the_generator_produces() -> None:
    expected = render_rules_markdown()
    assert RULES_MD.exists(), f"RULES.md is missing: {REGENERATE}"
    assert RULES_MD.read_text(encoding="utf-8") == expected, f"RULES.md is stale: {REGENERATE}"


def test_rules_md_documents_each_rule_with_its_contract(
    rows: list[CatalogRow], rules: dict[str, type[Rule]]
) -> None:
    text = render_rules_markdown(rows)
    for row in rows:
        section = text.split(f'<a id="{row.id.lower()}"></a>', 1)[1].split("<a id=", 1)[0]
        assert f"## {row.id}: {rules[row.id].title}" in section
        assert f"**Severity**: {row.severity}" in section
        assert f"**Fires when**: {row.contract}" in section
        assert rules[row.id].fix_example.strip() in section
        assert f"| [{row.id}](#{row.id.lower()}) |" in text


def test_parse_catalog_names_the_line_of_an_unknown_severity() -> None:
    text = (
        "## Build\n\n| ID | Sev | seed | Fires when |\n|---|---|---|---|\n"
        "| DL999 | SEVERE | x | y |\n"
    )
    with pytest.raises(ValueError, match=r"line 5: unknown severity 'SEVERE'"):
        parse_catalog(text)


def test_parse_catalog_keeps_pipes_inside_the_contract() -> None:
    rows = parse_catalog("## Build\n| DL998 | LOW | 000 §1 | `a | b` fires |\n")
    assert rows == [CatalogRow("DL998", "LOW", "Build", "000 §1", "`a | b` fires")]


def test_docs_command_prints_rules_md(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert capsys.readouterr().out == render_rules_markdown()


def test_docs_command_without_catalog_for_data_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--data"]) == 2
    assert "--data needs --catalog" in capsys.readouterr().err


def test_docs_command_reports_a_missing_catalog_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--catalog", str(tmp_path / "nope.md")]) == 2
    err = capsys.readouterr().err
    assert "cannot read" in err and "nope.md" in err and "Traceback" not in err
