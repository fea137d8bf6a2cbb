"""DL507: a CloudWatch log group without a KMS key."""

from __future__ import annotations

from deployline.checks.model import ResourceValueRule, Severity


class LogGroupEncryption(ResourceValueRule):
    """Fires when an `AWS::Logs::LogGroup` has no `KmsKeyId` (any value, intrinsic included,
    passes)."""

    id = "DL507"
    severity = Severity.LOW
    family = "Monitoring and audit"
    seed = "004 Security 1"
    title = "Log group without a KMS key"
    resource_types = ("AWS::Logs::LogGroup",)
    rationale = (
        "Build and application logs hold environment details and sometimes secrets printed by "
        "mistake; a customer-managed key controls who can read them."
    )
    remediation = "Set KmsKeyId to a key whose policy allows logs.<region>.amazonaws.com to use it."
    fix_example = """\
BuildLogs:
  Type: AWS::Logs::LogGroup
  Properties:
    RetentionInDays: 30
    KmsKeyId: !GetAtt LogsKey.Arn
"""

    property_path = ("KmsKeyId",)
    missing = "the log group has no KmsKeyId"
    needs_literal = False
