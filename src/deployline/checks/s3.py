"""S3 reading shared by rules: the buckets a pipeline uses, their encryption, their policies.

Buckets are named by `Ref`/`GetAtt`/`${X}` or by a literal equal to a bucket's `BucketName`; a name
the template cannot resolve (a parameter without a default, an import, a bucket of another stack)
comes back as a `Lookup` without a resource and with the reason, for UNKNOWN messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from deployline.checks.intrinsics import as_list, get_path, is_intrinsic, literal_str

if TYPE_CHECKING:
    from deployline.checks.pipeline import Pipeline
    from deployline.checks.template import Lookup, Resource, Template

BUCKET = "AWS::S3::Bucket"
KMS_ALGORITHMS = frozenset({"aws:kms", "aws:kms:dsse"})


@dataclass(frozen=True)
class BucketUse:
    """A pipeline's use of a bucket: as its artifact store or as an S3 source."""

    pipeline: Pipeline
    path: str  # property path, in the pipeline, of the value that names the bucket
    kind: str  # "artifact store" or "S3 source"
    lookup: Lookup

    @property
    def bucket(self) -> Resource | None:
        return self.lookup.resource


def pipeline_buckets(
    template: Template, *, artifact_stores: bool = True, sources: bool = False
) -> list[BucketUse]:
    """Every bucket use of every pipeline, in template order."""
    out: list[BucketUse] = []
    for pipeline in template.pipelines:
        if artifact_stores:
            for path, store in pipeline.artifact_stores:
                location = store.get("Location")
                lookup = template.named(location, (BUCKET,), "BucketName")
                out.append(BucketUse(pipeline, f"{path}.Location", "artifact store", lookup))
        if sources:
            for action in pipeline.actions:
                if action.category == "Source" and action.provider == "S3":
                    value = action.config("S3Bucket")
                    lookup = template.named(value, (BUCKET,), "BucketName")
                    path = f"{action.path}.Configuration.S3Bucket"
                    out.append(BucketUse(pipeline, path, "S3 source", lookup))
    return out


@dataclass(frozen=True)
class Encryption:
    """A bucket's default encryption: the algorithms of its rules, or why they are unknown."""

    algorithms: tuple[str, ...]
    declared: bool  # False when the bucket has no BucketEncryption at all
    unknown: str = ""  # reason, when an intrinsic hides an algorithm

    @property
    def uses_kms(self) -> bool:
        return any(a.lower() in KMS_ALGORITHMS for a in self.algorithms)


def encryption_of(bucket: Resource) -> Encryption:
    config = bucket.prop("BucketEncryption")
    if config is None:
        return Encryption((), declared=False)
    if is_intrinsic(config):
        return Encryption((), True, "BucketEncryption is computed by an intrinsic")
    rules = get_path(config, "ServerSideEncryptionConfiguration")
    if is_intrinsic(rules):
        return Encryption((), True, "the encryption rules are computed by an intrinsic")
    algorithms: list[str] = []
    unknown = ""
    for rule in as_list(rules):
        value = get_path(rule, "ServerSideEncryptionByDefault", "SSEAlgorithm")
        text = literal_str(value)
        if text is not None:
            algorithms.append(text)
        elif value is not None:
            unknown = "SSEAlgorithm is computed by an intrinsic"
    return Encryption(tuple(algorithms), True, unknown)


def bucket_policies(template: Template, bucket: Resource) -> list[Resource]:
    """The `AWS::S3::BucketPolicy` resources whose `Bucket` names `bucket`."""
    out = []
    for policy in template.of_type("AWS::S3::BucketPolicy"):
        lookup = template.named(policy.prop("Bucket"), (BUCKET,), "BucketName")
        if lookup.resource is bucket:
            out.append(policy)
    return out


def is_versioned(bucket: Resource) -> bool | None:
    """True when versioning is Enabled, False when absent or Suspended, None when computed."""
    status = bucket.prop("VersioningConfiguration", "Status")
    if status is None:
        return False
    text = literal_str(status)
    if text is None:
        return None
    return text.strip().lower() == "enabled"


def lifecycle_rules(bucket: Resource) -> list[Any] | None:
    """The bucket's lifecycle rules ([] when none), or None when an intrinsic hides them."""
    config = bucket.prop("LifecycleConfiguration")
    if config is None:
        return []
    if is_intrinsic(config):
        return None
    rules = get_path(config, "Rules")
    if is_intrinsic(rules):
        return None
    return as_list(rules)
