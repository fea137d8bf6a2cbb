"""DL202: a pipeline artifact bucket whose objects (or old versions) never expire."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from deployline.checks.intrinsics import get_path, is_intrinsic, literal_str
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.s3 import is_versioned, lifecycle_rules, pipeline_buckets
from deployline.checks.template import Template

PATH = "Properties.LifecycleConfiguration"


def _enabled(rule: Any) -> bool | None:
    status = get_path(rule, "Status")
    text = literal_str(status)
    if text is None:
        return None if status is not None and is_intrinsic(status) else False
    return text.strip().lower() == "enabled"


def _expires_current(rule: Any) -> bool:
    return get_path(rule, "ExpirationInDays") is not None or (
        get_path(rule, "ExpirationDate") is not None
    )


def _expires_noncurrent(rule: Any) -> bool:
    return get_path(rule, "NoncurrentVersionExpirationInDays") is not None or (
        get_path(rule, "NoncurrentVersionExpiration") is not None
    )


class ArtifactBucketLifecycle(Rule):
    id = "DL202"
    severity = Severity.MEDIUM
    family = "Cost and resource lifecycle"
    seed = "000 §2, 002 §7"
    title = "Artifact bucket without expiry of artifacts and of old versions"
    resource_types = ("AWS::S3::Bucket", "AWS::CodePipeline::Pipeline")
    rationale = (
        "Every pipeline execution writes new artifacts; without an expiration rule (and, on a "
        "versioned bucket, a noncurrent-version expiration) the bucket grows forever."
    )
    remediation = (
        "Add an enabled lifecycle rule with ExpirationInDays and, when versioning is enabled, "
        "NoncurrentVersionExpiration (NoncurrentDays)."
    )
    fix_example = """\
LifecycleConfiguration:
  Rules:
    - Id: expire-artifacts
      Status: Enabled
      ExpirationInDays: 30
      NoncurrentVersionExpiration: {NoncurrentDays: 7}
"""

    def check(self, template: Template) -> Iterator[Hit]:
        seen: set[str] = set()
        for use in pipeline_buckets(template, artifact_stores=True, sources=False):
            bucket = use.bucket
            if bucket is None:
                yield self.unknown(
                    use.pipeline.logical_id,
                    use.path,
                    f"cannot check the lifecycle of the artifact bucket: {use.lookup.reason}",
                )
                continue
            if bucket.logical_id in seen:
                continue
            seen.add(bucket.logical_id)
            rules = lifecycle_rules(bucket)
            if rules is None:
                yield self.unknown(bucket.logical_id, PATH, "the lifecycle rules are computed")
                continue
            enabled = [r for r in rules if _enabled(r) is True]
            hidden = [r for r in rules if _enabled(r) is None]
            if not any(_expires_current(r) for r in enabled):
                if any(_expires_current(r) for r in hidden):
                    yield self.unknown(bucket.logical_id, PATH, "a rule's Status is computed")
                else:
                    yield self.hit(
                        bucket.logical_id,
                        PATH,
                        f"artifact bucket of {use.pipeline.logical_id} has no enabled rule that "
                        "expires objects (ExpirationInDays/ExpirationDate)",
                    )
            versioned = is_versioned(bucket)
            if versioned is False:
                continue
            if any(_expires_noncurrent(r) for r in enabled):
                continue
            if versioned is None or any(_expires_noncurrent(r) for r in hidden):
                yield self.unknown(
                    bucket.logical_id, PATH, "versioning or a rule's Status is computed"
                )
                continue
            yield self.hit(
                bucket.logical_id,
                f"{PATH}.Rules",
                "bucket is versioned but no enabled rule expires noncurrent versions: every "
                "overwritten artifact is kept forever",
            )
