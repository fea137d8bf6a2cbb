"""The pipeline's own stack: artifact store, and (as the pipeline grows) everything it owns."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from deployline import defaults
from deployline.config import DeploylineConfig
from deployline.constructs.artifact_store import ArtifactStore
from deployline.naming import Namer


class PipelineStack(Stack):
    """Resources shared by every environment: the KMS key and the artifact store.

    Attributes:
        namer: names for the pipeline's resources (`{service}-{type}-shared`).
        key: the pipeline CMK (artifacts, logs, topics, tables).
        artifact_store: the encrypted artifact bucket and its access-log bucket.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: DeploylineConfig,
        namer: Namer,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        self.namer = namer
        self.config = config
        removal = defaults.removal_policy(destroy=False)
        self.key = defaults.secure_key(
            self,
            "PipelineKey",
            alias=namer.name("pipeline-key"),
            description=f"deployline: encrypts the {config.service} pipeline's artifacts, "
            "logs, topics and records",
            removal=removal,
        )
        self.artifact_store = ArtifactStore(
            self,
            "ArtifactStore",
            bucket_prefix=namer.bucket_prefix("artifacts"),
            access_logs_prefix=namer.bucket_prefix("access-logs"),
            key=self.key,
            removal=removal,
            expiry_days=config.pipeline.artifact_expiry_days,
            noncurrent_expiry_days=config.pipeline.noncurrent_expiry_days,
        )
        CfnOutput(
            self,
            "ArtifactBucketName",
            value=self.artifact_store.bucket.bucket_name,
            description="S3 bucket that holds the pipeline's artifacts (KMS-encrypted).",
        )
        CfnOutput(
            self,
            "PipelineKeyArn",
            value=self.key.key_arn,
            description="KMS key that encrypts the pipeline's artifacts, logs and topics.",
        )
