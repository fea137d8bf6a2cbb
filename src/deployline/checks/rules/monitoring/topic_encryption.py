"""DL503: an SNS topic without KMS encryption."""

from __future__ import annotations

from deployline.checks.model import ResourceValueRule, Severity


class TopicEncryption(ResourceValueRule):
    """Fires when `KmsMasterKeyId` is absent; any value (a key, an alias, an intrinsic) passes
    here. Whether EventBridge may use the key is DL504's question."""

    id = "DL503"
    severity = Severity.MEDIUM
    family = "Monitoring and audit"
    seed = "004 Security 1"
    title = "SNS topic without KMS encryption"
    resource_types = ("AWS::SNS::Topic",)
    rationale = (
        "Notifications carry pipeline names, commit messages and failure details; topics "
        "should encrypt them at rest like every other pipeline store."
    )
    remediation = (
        "Set KmsMasterKeyId to a customer-managed key whose policy lets the publishers "
        "(events.amazonaws.com, cloudwatch.amazonaws.com, ...) use it."
    )
    fix_example = """\
AlertTopic:
  Type: AWS::SNS::Topic
  Properties:
    KmsMasterKeyId: !Ref NotificationKey
"""

    property_path = ("KmsMasterKeyId",)
    missing = "the topic is not encrypted"
    needs_literal = False
