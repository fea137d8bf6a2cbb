"""DL101: an S3 bucket without server-side encryption."""

from __future__ import annotations

from collections.abc import Iterator

from deployline.checks.intrinsics import get_path, is_intrinsic
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.template import Template


class BucketEncryption(Rule):
    id = "DL101"
    severity = Severity.HIGH
    family = "Security"
    seed = "000 §1, 001 §6"
    title = "S3 bucket without server-side encryption"
    resource_types = ("AWS::S3::Bucket",)
    rationale = (
        "Pipeline artifacts and logs are data at rest; a bucket with no BucketEncryption rule "
        "fails compliance reviews and leaves encryption to whoever configures the account."
    )
    remediation = (
        "Add BucketEncryption with a ServerSideEncryptionConfiguration rule, preferably aws:kms "
        "with a customer-managed key."
    )
    fix_example = """\
ArtifactBucket:
  Type: AWS::S3::Bucket
  Properties:
    BucketEncryption:
      ServerSideEncryptionConfiguration:
        - ServerSideEncryptionByDefault:
            SSEAlgorithm: aws:kms
            KMSMasterKeyID: !Ref ArtifactKey
"""

    def check(self, template: Template) -> Iterator[Hit]:
        for bucket in template.of_type(*self.resource_types):
            encryption = bucket.prop("BucketEncryption")
            if encryption is None:
                yield self.hit(
                    bucket.logical_id,
                    "Properties.BucketEncryption",
                    "bucket has no BucketEncryption: objects are stored without a declared "
                    "server-side encryption rule",
                )
                continue
            if is_intrinsic(encryption):
                yield self.unknown(
                    bucket.logical_id,
                    "Properties.BucketEncryption",
                    "BucketEncryption is computed by an intrinsic; cannot tell whether it encrypts",
                )
                continue
            rules = get_path(encryption, "ServerSideEncryptionConfiguration")
            if is_intrinsic(rules):
                yield self.unknown(
                    bucket.logical_id,
                    "Properties.BucketEncryption.ServerSideEncryptionConfiguration",
                    "the encryption rules are computed by an intrinsic",
                )
                continue
            has_rule = isinstance(rules, list) and any(
                get_path(r, "ServerSideEncryptionByDefault", "SSEAlgorithm") is not None
                for r in rules
            )
            if not has_rule:
                yield self.hit(
                    bucket.logical_id,
                    "Properties.BucketEncryption.ServerSideEncryptionConfiguration",
                    "BucketEncryption has no rule with ServerSideEncryptionByDefault.SSEAlgorithm",
                )
