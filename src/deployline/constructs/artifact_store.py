"""The pipeline's artifact store: a KMS CMK and the bucket CodePipeline keeps artifacts in."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from deployline import defaults


class ArtifactStore(Construct):
    """A versioned, KMS-encrypted, SSL-only, private bucket whose contents expire.

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
        if noncurrent_expiry_days > expiry_days:
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
            versioned=False,
            expiry_days=max(expiry_days, 90),
            noncurrent_expiry_days=None,
        )
        reason = (
            "this bucket only receives the server access logs of the artifact bucket; logging "
            "access to a log bucket would need yet another log bucket"
        )
        defaults.skip_checkov(self.access_logs, "CKV_AWS_18", reason)
        defaults.skip_checkov(
            self.access_logs,
            "CKV_AWS_21",
            "S3 writes each access log object once and the lifecycle rule expires it; versions "
            "would only keep expired logs longer",
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
