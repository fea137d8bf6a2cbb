"""DL205: a stateful resource without explicit DeletionPolicy and UpdateReplacePolicy."""

from __future__ import annotations

from collections.abc import Iterator

from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.template import Template

STATEFUL_TYPES = (
    "AWS::S3::Bucket",
    "AWS::DynamoDB::Table",
    "AWS::ECR::Repository",
    "AWS::KMS::Key",
    "AWS::Logs::LogGroup",
)


class StatefulResourcePolicies(Rule):
    id = "DL205"
    severity = Severity.MEDIUM
    family = "Cost and resource lifecycle"
    seed = "003 §10, 004 Ops 2"
    title = "Stateful resource without explicit DeletionPolicy and UpdateReplacePolicy"
    resource_types = STATEFUL_TYPES
    rationale = (
        "Without both policies, deleting the stack or a change that replaces the resource "
        "silently deletes its data (objects, items, images, keys, logs), or leaves it behind "
        "without anyone having decided which."
    )
    remediation = (
        "Set DeletionPolicy and UpdateReplacePolicy on every stateful resource: Retain (or "
        "Snapshot) for data you keep, Delete for data you decided to lose."
    )
    fix_example = """\
ArtifactBucket:
  Type: AWS::S3::Bucket
  DeletionPolicy: Retain
  UpdateReplacePolicy: Retain
"""

    def check(self, template: Template) -> Iterator[Hit]:
        for res in template.of_type(*self.resource_types):
            missing = [
                attr
                for attr in ("DeletionPolicy", "UpdateReplacePolicy")
                if res.raw.get(attr) is None
            ]
            if missing:
                yield self.hit(
                    res.logical_id,
                    missing[0],
                    f"{res.type} has no explicit {' or '.join(missing)}",
                )
