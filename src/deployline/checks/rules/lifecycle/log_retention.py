"""DL203: a log group without a retention period."""

from __future__ import annotations

from deployline.checks.model import ResourceValueRule, Severity


class LogGroupRetention(ResourceValueRule):
    id = "DL203"
    severity = Severity.MEDIUM
    family = "Cost and resource lifecycle"
    seed = "000 §2, 003 §5"
    title = "Log group without RetentionInDays"
    resource_types = ("AWS::Logs::LogGroup",)
    rationale = (
        "A log group without RetentionInDays keeps every build and function log forever; the "
        "cost grows without bound and old logs may hold data that should have expired."
    )
    remediation = "Set RetentionInDays (e.g. 30 for build logs, per your retention policy)."
    fix_example = """\
BuildLogs:
  Type: AWS::Logs::LogGroup
  DeletionPolicy: Delete
  UpdateReplacePolicy: Delete
  Properties:
    RetentionInDays: 30
"""

    property_path = ("RetentionInDays",)
    missing = "log group has no RetentionInDays: logs are kept forever"
    needs_literal = False
