"""DL407: the bucket of an S3 source action is not versioned."""

from __future__ import annotations

from collections.abc import Iterator

from deployline.checks.intrinsics import is_intrinsic, literal_str
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.template import Template


class SourceBucketVersioned(Rule):
    """The finding is on the source bucket. A bucket the template does not hold (a literal
    name of another stack's bucket, a parameter) is UNKNOWN, reported on the pipeline."""

    id = "DL407"
    severity = Severity.HIGH
    family = "Pipeline structure"
    seed = "002 §7, 004 §1"
    title = "S3 source bucket without versioning"
    resource_types = ("AWS::CodePipeline::Pipeline", "AWS::S3::Bucket")
    rationale = (
        "The S3 source action requires a versioned bucket: without versioning the pipeline "
        "cannot be created, or cannot tell which upload it is building."
    )
    remediation = "Enable VersioningConfiguration: {Status: Enabled} on the source bucket."
    fix_example = """\
SourceBucket:
  Type: AWS::S3::Bucket
  Properties:
    VersioningConfiguration: {Status: Enabled}
"""

    def check(self, template: Template) -> Iterator[Hit]:
        seen: set[str] = set()
        for pipeline in template.pipelines:
            for action in pipeline.actions:
                if action.provider != "S3" or action.category not in ("Source", None):
                    continue
                value = action.config("S3Bucket")
                found = template.named(value, ("AWS::S3::Bucket",), "BucketName")
                bucket = found.resource
                if bucket is None:
                    yield self.unknown(
                        pipeline.logical_id,
                        f"{action.path}.Configuration.S3Bucket",
                        f"{action.label}: the source bucket is not in this template "
                        f"({found.reason}); cannot tell whether it is versioned",
                    )
                    continue
                if bucket.logical_id in seen:
                    continue
                seen.add(bucket.logical_id)
                config = bucket.prop("VersioningConfiguration")
                status_raw = config.get("Status") if isinstance(config, dict) else None
                status = literal_str(status_raw)
                path = "Properties.VersioningConfiguration.Status"
                if status == "Enabled":
                    continue
                if is_intrinsic(config) or (status is None and status_raw is not None):
                    yield self.unknown(
                        bucket.logical_id, path, "the versioning status is computed by an intrinsic"
                    )
                    continue
                yield self.hit(
                    bucket.logical_id,
                    path,
                    f"bucket is the S3 source of {pipeline.logical_id} ({action.label}) but is "
                    f"not versioned (Status: {status or 'absent'})",
                )
