"""Suppressions: accepted findings, each with a reason.

Two places declare them:
- a template, in a resource's Metadata `deployline: {suppress: [{id: DL305, reason: "..."}]}`
  (applies to that resource) or in the template's top-level Metadata with the same shape plus an
  optional `resource` (applies to the whole file, or to that resource);
- deployline.yaml, `checks: {suppress: [{id, reason, resource (optional)}]}` (every file).

A suppression without a reason, with an empty one, or naming no rule is not applied: it is itself
reported as a DL000 finding. Parsing deployline.yaml here uses PyYAML only (no pydantic), so
`deployline check` stays fast.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from deployline.checks.model import Finding
    from deployline.checks.template import Template

META_KEY = "deployline"


@dataclass(frozen=True)
class Suppression:
    """Accept findings of rule `id` (on `resource` when given) because of `reason`."""

    id: str
    reason: str
    resource: str | None = None
    source: str = ""  # where it was declared, for reports

    def applies_to(self, finding: Finding) -> bool:
        if finding.rule_id != self.id.strip().upper():
            return False
        return self.resource is None or self.resource == finding.resource


@dataclass(frozen=True)
class MetadataEntry:
    """One item of a `deployline.suppress` list in a template's Metadata."""

    carrier: str  # the resource whose Metadata holds it, or "(template)"
    path: str
    raw: Any
    resource: str | None  # the resource it applies to; None: the whole file


def _known_ids() -> frozenset[str]:
    from deployline.checks.registry import rule_classes

    return frozenset(cls.id for cls in rule_classes())


def problem_of(raw: Any) -> str | None:
    """Why a suppression entry is invalid (None when it is valid)."""
    if not isinstance(raw, dict):
        return "a suppression must be a mapping {id, reason}"
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not rule_id.strip():
        return "the suppression names no rule: give it an id such as DL305"
    reason = raw.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        return f"the suppression of {rule_id.strip()} has no reason: say why it is accepted"
    if rule_id.strip().upper() not in _known_ids():
        return f"the suppression names {rule_id.strip()!r}, which is no rule (see deployline rules)"
    return None


def _entries(meta: Any) -> list[Any] | None:
    block = meta.get(META_KEY) if isinstance(meta, dict) else None
    if block is None:
        return None
    items = block.get("suppress") if isinstance(block, dict) else block
    if items is None:
        return None
    return items if isinstance(items, list) else [items]


def metadata_suppressions(template: Template) -> list[MetadataEntry]:
    """Every suppression entry in the template's Metadata (valid or not)."""
    out: list[MetadataEntry] = []
    top = _entries(template.data.get("Metadata"))
    for i, raw in enumerate(top or []):
        resource = raw.get("resource") if isinstance(raw, dict) else None
        out.append(
            MetadataEntry(
                "(template)",
                f"Metadata.{META_KEY}.suppress[{i}]",
                raw,
                resource if isinstance(resource, str) else None,
            )
        )
    for res in template.resources.values():
        items = _entries(res.metadata)
        for i, raw in enumerate(items or []):
            out.append(
                MetadataEntry(
                    res.logical_id, f"Metadata.{META_KEY}.suppress[{i}]", raw, res.logical_id
                )
            )
    return out


def template_suppressions(template: Template) -> list[Suppression]:
    """The valid suppressions a template declares."""
    out = []
    for entry in metadata_suppressions(template):
        if problem_of(entry.raw) is None:
            out.append(
                Suppression(
                    id=str(entry.raw["id"]).strip().upper(),
                    reason=str(entry.raw["reason"]).strip(),
                    resource=entry.resource,
                    source=f"{template.file}: {entry.carrier} {entry.path}",
                )
            )
    return out


@dataclass
class ChecksConfig:
    """The `checks:` section of deployline.yaml, as the checker needs it."""

    file: str = ""
    suppressions: list[Suppression] = field(default_factory=list)
    problems: list[tuple[str, int | None, str]] = field(default_factory=list)  # (where, line, why)
    severity_threshold: str | None = None
    options: dict[str, dict[str, Any]] = field(default_factory=dict)


class ConfigReadError(Exception):
    """deployline.yaml could not be read or parsed (a usage error: exit 2)."""


def _node_for(node: Any, *keys: str | int) -> Any:
    for key in keys:
        if isinstance(key, int):
            if not isinstance(node, yaml.SequenceNode) or key >= len(node.value):
                return None
            node = node.value[key]
        else:
            if not isinstance(node, yaml.MappingNode):
                return None
            found = None
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == key:
                    found = v
            if found is None:
                return None
            node = found
    return node


def load_checks_config(path: str | Path) -> ChecksConfig:
    """Read `checks:` from deployline.yaml. Raises ConfigReadError when the file is unreadable."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigReadError(f"{p}: cannot be read ({exc})") from None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
        root = yaml.compose(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark is not None else str(p)
        raise ConfigReadError(f"{where}: invalid YAML") from None
    config = ChecksConfig(file=str(p))
    checks = data.get("checks") if isinstance(data, dict) else None
    if checks is None:
        return config
    if not isinstance(checks, dict):
        raise ConfigReadError(f"{p}: `checks` must be a mapping")
    threshold = checks.get("severity_threshold")
    if isinstance(threshold, str):
        config.severity_threshold = threshold
    options = checks.get("options")
    if isinstance(options, dict):
        config.options = {str(k).upper(): v for k, v in options.items() if isinstance(v, dict)}
    items = checks.get("suppress") or []
    if not isinstance(items, list):
        items = [items]
    for i, raw in enumerate(items):
        node = _node_for(root, "checks", "suppress", i)
        line = node.start_mark.line + 1 if node is not None else None
        where = f"checks.suppress[{i}]"
        problem = problem_of(raw)
        if problem:
            config.problems.append((where, line, problem))
            continue
        resource = raw.get("resource")
        config.suppressions.append(
            Suppression(
                id=str(raw["id"]).strip().upper(),
                reason=str(raw["reason"]).strip(),
                resource=resource if isinstance(resource, str) and resource else None,
                source=f"{p}: {where}",
            )
        )
    return config


def partition(
    findings: Iterable[Finding], suppressions: Iterable[Suppression]
) -> tuple[list[Finding], list[Finding]]:
    """(kept, suppressed). DL000 findings are never suppressed."""
    rules = list(suppressions)
    kept: list[Finding] = []
    dropped: list[Finding] = []
    for finding in findings:
        if finding.rule_id != "DL000" and any(s.applies_to(finding) for s in rules):
            dropped.append(finding)
        else:
            kept.append(finding)
    return kept, dropped
