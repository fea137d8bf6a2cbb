"""RULES.md and the packaged catalog, generated from the rule classes and failure-catalog.md.

The failure catalog (a Markdown file kept beside the project) is the contract: each row has an ID,
a severity, the seed documents and a "fires when" text. `parse_catalog` reads its tables;
`checks/data/catalog.yaml` is the packaged copy of those rows (so `deployline rules` and RULES.md
work from an installed wheel); `render_rules_markdown` joins each row with its rule class
(title, family, rationale, remediation, fix example).

    python -m deployline.checks.docs > RULES.md
    python -m deployline.checks.docs --catalog failure-catalog.md --data \\
        > src/deployline/checks/data/catalog.yaml
"""

from __future__ import annotations

import argparse
import datetime
import inspect
import re
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from deployline.checks import data
from deployline.checks.model import Rule, Severity
from deployline.checks.registry import rule_classes

REGENERATE = "python -m deployline.checks.docs > RULES.md"

# Rules of the checker itself, not rows of the catalog, with their contract.
CHECKER_RULES: dict[str, str] = {
    "DL000": (
        "A suppression (in a resource's `Metadata: {deployline: {suppress: [...]}}` or in "
        "`deployline.yaml` `checks: suppress`) has no `id`, no non-empty `reason`, is malformed, "
        "or names a rule that does not exist. Such a suppression is not applied."
    ),
    "DL001": (
        "A policy statement (identity, trust or resource-based policy) names in `Action` or "
        "`NotAction` an IAM action that AWS does not have: an unknown service prefix, an "
        "unknown action, or a wildcard that covers no action."
    ),
    "DL002": (
        "A role's trust policy allows a service principal that supports the confused-deputy "
        "condition keys (`codebuild`, `codepipeline`, `ecs-tasks`, `vpc-flow-logs`, `events`, "
        "...) to assume it without a `Condition` on `aws:SourceAccount` or `aws:SourceArn`."
    ),
}

_ROW = re.compile(r"^\|\s*(DL\d{3})\s*\|")


@dataclass(frozen=True)
class CatalogRow:
    """One row of the failure catalog: its ID, severity, section (family), seed documents and
    the "fires when" contract (Markdown)."""

    id: str
    severity: str
    family: str
    seed: str
    contract: str


def parse_catalog(text: str) -> list[CatalogRow]:
    """Every rule row of the catalog's tables, in file order. A row's family is the `## `
    section it sits in. Raises ValueError naming the line of a malformed row or an unknown
    severity."""
    rows: list[CatalogRow] = []
    family = ""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("## "):
            family = line[3:].strip()
            continue
        if not _ROW.match(line):
            continue
        inner = line.strip()[1:]
        if inner.endswith("|"):
            inner = inner[:-1]
        cells = inner.split("|", 3)
        if len(cells) != 4:
            raise ValueError(f"catalog line {number}: expected | ID | Sev | seed | Fires when |")
        rule_id, severity, seed, contract = (c.strip() for c in cells)
        try:
            Severity.parse(severity)
        except ValueError as exc:
            raise ValueError(f"catalog line {number}: {exc}") from None
        rows.append(CatalogRow(rule_id, severity.upper(), family, seed, contract))
    return rows


def catalog_rows() -> list[CatalogRow]:
    """The catalog rows packaged with deployline (checks/data/catalog.yaml)."""
    out: list[CatalogRow] = []
    for item in data.items("catalog"):
        if isinstance(item, dict):
            out.append(CatalogRow(**{k: str(item.get(k, "")) for k in CatalogRow.__annotations__}))
    return out


def render_catalog_data(rows: Sequence[CatalogRow], *, checked: str) -> str:
    """The text of checks/data/catalog.yaml for `rows`, dated `checked` (YYYY-MM-DD)."""
    header = (
        "# The failure catalog's rows (ID, severity, section, seed, contract), packaged so\n"
        "# RULES.md and `deployline rules` work from an installed wheel. Generated from\n"
        "# failure-catalog.md:\n"
        "#   python -m deployline.checks.docs --catalog failure-catalog.md --data\n"
    )
    body: str = yaml.safe_dump(
        {
            "checked": checked,
            "source": "failure-catalog.md (the deployline failure catalog)",
            "items": [asdict(r) for r in rows],
        },
        sort_keys=False,
        allow_unicode=True,
        width=100,
    )
    return header + body


def _anchor(rule_id: str) -> str:
    return rule_id.lower()


def _rule_section(rule: type[Rule], contract: str) -> list[str]:
    types = ", ".join(f"`{t}`" for t in rule.resource_types) or "any"
    if len(rule.resource_types) > 12:
        types = f"{len(rule.resource_types)} types (see the rule's source)"
    lines = [
        f'<a id="{_anchor(rule.id)}"></a>',
        "",
        f"## {rule.id}: {rule.title}",
        "",
        f"- **Severity**: {rule.severity.name}",
        f"- **Family**: {rule.family}",
        f"- **Seed**: {rule.seed}",
        f"- **Resource types**: {types}",
        "",
        f"**Fires when**: {contract}",
        "",
        *_reading(rule),
        f"**Why it matters**: {rule.rationale}",
        "",
        f"**Fix**: {rule.remediation}",
        "",
        "```yaml",
        rule.fix_example.rstrip("\n"),
        "```",
        "",
        f"Suppress (with a reason): `deployline: {{suppress: [{{id: {rule.id}, reason: ...}}]}}` "
        "in the resource's Metadata.",
        "",
    ]
    return lines


def _reading(rule: type[Rule]) -> list[str]:
    """How deployline reads the contract: the rule class's own docstring, when it has one."""
    doc = rule.__dict__.get("__doc__")
    if not doc:
        return []
    return [f"**How deployline reads it**: {' '.join(inspect.cleandoc(doc).split())}", ""]


def render_rules_markdown(rows: Sequence[CatalogRow] | None = None) -> str:
    """RULES.md: a table of contents, then per rule its ID, title, severity, family, seed,
    the catalog's contract, rationale, remediation and a fix example. `rows` Default: the
    packaged catalog. Raises ValueError when a registered rule has no catalog row (and is not
    one of the checker's own rules)."""
    contracts = {r.id: r.contract for r in (catalog_rows() if rows is None else rows)}
    contracts.update(CHECKER_RULES)
    rules = rule_classes()
    missing = [r.id for r in rules if r.id not in contracts]
    if missing:
        raise ValueError(f"rules without a catalog row: {', '.join(missing)}")
    out = [
        "# deployline check: rules",
        "",
        f"<!-- Generated by `{REGENERATE}` from the rule classes and the failure "
        "catalog. Do not edit by hand. -->",
        "",
        f"{len(rules)} rules. Each rule's **Fires when** is its contract in the failure catalog; "
        "where the template does not hold the answer (a buildspec in the repository, a value "
        "behind `Fn::ImportValue` or a parameter without a default), the rule reports UNKNOWN "
        "for that resource, shown apart from findings. `deployline check` exits 1 on findings at "
        "or above `--severity-threshold` (default HIGH).",
        "",
        "## Contents",
        "",
        "| ID | Severity | Family | Title |",
        "|---|---|---|---|",
    ]
    for rule in rules:
        out.append(
            f"| [{rule.id}](#{_anchor(rule.id)}) | {rule.severity.name} | {rule.family} | "
            f"{rule.title} |"
        )
    out.append("")
    for rule in rules:
        out += _rule_section(rule, contracts[rule.id])
    return "\n".join(out).rstrip("\n") + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Print RULES.md (Default), or with --data the catalog.yaml for --catalog's rows."""
    parser = argparse.ArgumentParser(
        prog="python -m deployline.checks.docs", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--catalog",
        type=Path,
        help="failure-catalog.md to read the rows from. Default: the packaged catalog.yaml.",
    )
    parser.add_argument(
        "--data",
        action="store_true",
        help="print checks/data/catalog.yaml for the catalog instead of RULES.md",
    )
    args = parser.parse_args(argv)
    rows: list[CatalogRow] | None = None
    if args.catalog is not None:
        try:
            rows = parse_catalog(args.catalog.read_text(encoding="utf-8"))
        except OSError as exc:
            print(f"error: cannot read {args.catalog}: {exc.strerror}", file=sys.stderr)
            return 2
        except ValueError as exc:
            print(f"error: {args.catalog}: {exc}", file=sys.stderr)
            return 2
    elif args.data:
        print(
            "error: --data needs --catalog FILE (the failure-catalog.md to package)",
            file=sys.stderr,
        )
        return 2
    try:
        if args.data and rows is not None:
            text = render_catalog_data(rows, checked=datetime.date.today().isoformat())
        else:
            text = render_rules_markdown(rows)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
