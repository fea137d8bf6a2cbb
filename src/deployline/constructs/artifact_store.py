"""The pipeline's artifact store: a KMS CMK and the bucket CodePipeline keeps artifacts in."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Token
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from deployline import defaults
from deployline.constructs import compliance


class ArtifactStore(Construct):
    """A versioned, KMS-encrypted, SSL-only, private bucket whose contents expire, and a
    versioned bucket for its server access logs.

    Attributes:
        key: the CMK (rotation on) that encrypts the bucket; pass it to the pipeline.
        bucket: the artifact bucket.
        access_logs: the bucket that receives the artifact bucket's server access logs.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        bucket_prefix: str,
        access_logs_prefix: str,
        key: kms.IKey,
        removal: RemovalPolicy = RemovalPolicy.RETAIN,
        expiry_days: int = defaults.ARTIFACT_EXPIRY_DAYS,
        noncurrent_expiry_days: int = defaults.NONCURRENT_EXPIRY_DAYS,
    ) -> None:
        """
        Args:
            bucket_prefix: literal start of the bucket name; account and region are appended.
            access_logs_prefix: likewise for the server-access-log bucket.
            key: CMK for the artifacts.
            removal: Default: RETAIN.
            expiry_days: current artifacts expire after this many days. Default: 30.
            noncurrent_expiry_days: noncurrent versions expire sooner. Default: 7.
        """
        super().__init__(scope, id)
        if (
            not Token.is_unresolved(noncurrent_expiry_days)
            and not Token.is_unresolved(expiry_days)
            and noncurrent_expiry_days > expiry_days
        ):
            raise ValueError(
                "noncurrent_expiry_days must not exceed expiry_days, got "
                f"{noncurrent_expiry_days} > {expiry_days}"
            )
        self.key = key
        # Server access logs cannot go to an SSE-KMS bucket; S3-managed encryption is the only
        # option S3 supports for a log target.
        self.access_logs = defaults.secure_bucket(
            self,
            "AccessLogs",
            bucket_name=defaults.bucket_name(access_logs_prefix),
            key=None,
            removal=removal,
            # a deleted or overwritten log stays recoverable as a noncurrent version
            versioned=True,
            expiry_days=defaults.access_log_expiry_days(expiry_days),
            noncurrent_expiry_days=defaults.LOG_NONCURRENT_EXPIRY_DAYS,
        )
        defaults.skip_checkov(
            self.access_logs,
            "CKV_AWS_18",
            "this bucket only receives the server access logs of the artifact bucket; logging "
            "access to a log bucket would need yet another log bucket",
        )
        self.bucket: s3.Bucket = defaults.secure_bucket(
            self,
            "Bucket",
            bucket_name=defaults.bucket_name(bucket_prefix),
            key=key,
            removal=removal,
            versioned=True,
            expiry_days=expiry_days,
            noncurrent_expiry_days=noncurrent_expiry_days,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="artifacts/",
        )
        accept_artifact_buckets(
            self.bucket,
            self.access_logs,
            bucket_label=f"{bucket_prefix}-<account>-<region>",
            access_logs_label=f"{access_logs_prefix}-<account>-<region>",
            expiry_days=expiry_days,
        )


def accept_artifact_buckets(
    bucket: s3.IBucket,
    access_logs: s3.IBucket,
    *,
    bucket_label: str,
    access_logs_label: str,
    expiry_days: int,
) -> None:
    """Record, with reasons, the compliance findings an artifact bucket and its access-log
    bucket have by design (no replication; the log bucket S3-managed encryption)."""
    artifacts = f"the artifact bucket {bucket_label}"
    logs = f"the access-log bucket {access_logs_label}"
    compliance.accept(
        bucket,
        "S3BucketReplicationEnabled",
        f"{artifacts} holds what the pipeline builds from source, versioned and expiring after "
        f"{expiry_days} days: a lost artifact is rebuilt by running the pipeline again, so a "
        "copy in another region would hold nothing that cannot be made again",
    )
    compliance.accept(
        access_logs,
        "S3BucketReplicationEnabled",
        f"{logs} is versioned and only S3 log delivery for {bucket_label} may write to it, so "
        "no log is lost or replaced unseen; copying it to your organisation's log archive is a "
        "bucket deployline cannot know of (add replication there)",
    )
    compliance.accept(
        access_logs,
        "S3DefaultEncryptionKMS",
        f"{logs} is encrypted with S3-managed keys, the only encryption S3 server access logging "
        "writes with (it refuses SSE-KMS target buckets)",
    )
