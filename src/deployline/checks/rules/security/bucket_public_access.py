"""DL103: an S3 bucket without all four public access blocks."""

from __future__ import annotations

from collections.abc import Iterator

from deployline.checks.intrinsics import bool_of, get_path, is_intrinsic
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.template import Template

FLAGS = ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")


class BucketPublicAccessBlock(Rule):
    id = "DL103"
    severity = Severity.HIGH
    family = "Security"
    seed = "000 §1, 001 §3"
    title = "S3 bucket without a complete PublicAccessBlockConfiguration"
    resource_types = ("AWS::S3::Bucket",)
    rationale = (
        "Without all four public access blocks, one ACL or bucket policy change can expose "
        "pipeline artifacts, logs or source archives to the internet."
    )
    remediation = (
        "Set PublicAccessBlockConfiguration with BlockPublicAcls, BlockPublicPolicy, "
        "IgnorePublicAcls and RestrictPublicBuckets all true."
    )
    fix_example = """\
ArtifactBucket:
  Type: AWS::S3::Bucket
  Properties:
    PublicAccessBlockConfiguration:
      BlockPublicAcls: true
      BlockPublicPolicy: true
      IgnorePublicAcls: true
      RestrictPublicBuckets: true
"""

    def check(self, template: Template) -> Iterator[Hit]:
        path = "Properties.PublicAccessBlockConfiguration"
        for bucket in template.of_type(*self.resource_types):
            config = bucket.prop("PublicAccessBlockConfiguration")
            if config is None:
                yield self.hit(
                    bucket.logical_id, path, "bucket has no PublicAccessBlockConfiguration"
                )
                continue
            if is_intrinsic(config) or not isinstance(config, dict):
                if is_intrinsic(config):
                    yield self.unknown(
                        bucket.logical_id, path, "the configuration is computed by an intrinsic"
                    )
                else:
                    yield self.hit(bucket.logical_id, path, "the configuration is not a mapping")
                continue
            off: list[str] = []
            hidden: list[str] = []
            for flag in FLAGS:
                raw = get_path(config, flag)
                value = bool_of(template.resolve(raw))
                if value is True:
                    continue
                if value is None and raw is not None and is_intrinsic(raw):
                    hidden.append(flag)
                else:
                    off.append(flag)
            if off:
                yield self.hit(
                    bucket.logical_id,
                    path,
                    f"{', '.join(off)} {'is' if len(off) == 1 else 'are'} not true",
                )
            elif hidden:
                yield self.unknown(
                    bucket.logical_id, path, f"{', '.join(hidden)} computed by an intrinsic"
                )
