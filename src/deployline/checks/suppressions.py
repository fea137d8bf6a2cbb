"""Suppressions: accepted findings, each with a reason.

Two places declare them:
- a template, in a resource's Metadata `deployline: {suppress: [{id: DL305, reason: "..."}]}`
  (applies to that resource) or in the template's top-level Metadata with the same shape plus an
  optional `resource` (applies to the whole file, or to that resource);
- deployline.yaml, `checks: {suppress: [{id, reason, resource (optional)}]}` (every file; read
  by `deployline.checks.settings`).

A suppression without a reason, with an empty one, or naming no rule is not applied: it is itself
reported as a DL000 finding.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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
