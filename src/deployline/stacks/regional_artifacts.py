"""The pipeline's artifact store in another region: CodePipeline copies the artifacts of an
action that runs in a region other than the pipeline's into a bucket of that region.

One small stack per such region, in the pipeline's account: a KMS key (rotation on) behind an
alias with a name, and a versioned, private, SSL-only bucket whose artifacts expire. Both have
physical names made of literals (the stack's account and region are concrete), so the pipeline
stack in its own region can name them. The bucket admits exactly the deploy roles of the
environments in this region; the key admits those of other accounts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from deployline import defaults
from deployline.constructs.artifact_store import accept_artifact_buckets
from deployline.naming import Kind, Namer, fit


@dataclass(frozen=True)
class RegionalArtifacts:
    """An artifact store of another region, by the literal names the pipeline stack uses.

    Attributes:
        region: the region.
        bucket_name: the bucket's name.
        key_alias_arn: the ARN of the alias of the key that encrypts it (CodePipeline and the
            pipeline role name the key through it: its ARN is not known before it exists).
        key_alias_name: `alias/...`.
    """

    region: str
    bucket_name: str
    key_alias_arn: str
    key_alias_name: str


class RegionalArtifactsStack(Stack):
    """The artifact bucket and key of one region other than the pipeline's.

    Attributes:
        key: the CMK.
        alias: its alias.
        bucket: the artifact bucket.
        access_logs: the bucket that receives its server access logs.
        artifacts: the names the pipeline stack uses (`RegionalArtifacts`).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        namer: Namer,
        readers: Sequence[str],
        foreign_readers: Sequence[str] = (),
        expiry_days: int = defaults.ARTIFACT_EXPIRY_DAYS,
        noncurrent_expiry_days: int = defaults.NONCURRENT_EXPIRY_DAYS,
        removal: RemovalPolicy = RemovalPolicy.RETAIN,
        **kwargs: Any,
    ) -> None:
        """
        Args:
            namer: the pipeline's names (env `shared`).
            readers: ARNs of the deploy roles that read artifacts here.
            foreign_readers: those of them in other accounts (the key policy admits them).
            expiry_days: artifacts expire after this many days. Default: 30.
            noncurrent_expiry_days: noncurrent versions expire sooner. Default: 7.
            removal: Default: RETAIN.
            kwargs: Stack properties; `env` with a concrete account and region is required.
        """
        super().__init__(scope, id, **kwargs)
        if Token.is_unresolved(self.account) or Token.is_unresolved(self.region):
            raise ValueError(
                "a regional artifact store needs a concrete account and region (env=...)"
            )
        if not readers:
            raise ValueError(f"the artifact store in {self.region} needs at least one reader")
        region = self.region
        alias_name = self._key(namer, removal)
        bucket_name = regional_bucket_name(namer, "artifacts", self.account, region)
        access_logs_name = regional_bucket_name(namer, "access-logs", self.account, region)
        self._buckets(bucket_name, access_logs_name, expiry_days, noncurrent_expiry_days, removal)
        self._admit(readers, foreign_readers)
        self._explain(namer)
        accept_artifact_buckets(
            self.bucket,
            self.access_logs,
            bucket_label=bucket_name,
            access_logs_label=access_logs_name,
            expiry_days=expiry_days,
        )
        self.artifacts = RegionalArtifacts(
            region=region,
            bucket_name=bucket_name,
            key_alias_arn=f"arn:{self.partition}:kms:{region}:{self.account}:{alias_name}",
            key_alias_name=alias_name,
        )

    def _key(self, namer: Namer, removal: RemovalPolicy) -> str:
        """The CMK and its alias; returns the alias name."""
        self.key = kms.Key(
            self,
            "Key",
            description=f"deployline: encrypts {namer.service}'s pipeline artifacts in "
            f"{self.region}",
            enable_key_rotation=True,
            pending_window=Duration.days(30),
            removal_policy=removal,
        )
        alias_name = f"alias/{namer.name(f'artifacts-{self.region}')}"
        self.alias = kms.Alias(
            self, "Alias", alias_name=alias_name, target_key=self.key, removal_policy=removal
        )
        return alias_name

    def _buckets(
        self,
        bucket_name: str,
        access_logs_name: str,
        expiry_days: int,
        noncurrent_expiry_days: int,
        removal: RemovalPolicy,
    ) -> None:
        """The artifact bucket (the CMK) and its server-access-log bucket (SSE-S3)."""
        self.access_logs = defaults.secure_bucket(
            self,
            "AccessLogs",
            bucket_name=access_logs_name,
            key=None,
            removal=removal,
            # a deleted or overwritten log stays recoverable as a noncurrent version
            versioned=True,
            expiry_days=defaults.access_log_expiry_days(expiry_days),
            noncurrent_expiry_days=defaults.LOG_NONCURRENT_EXPIRY_DAYS,
        )
        self.bucket = defaults.secure_bucket(
            self,
            "Bucket",
            bucket_name=bucket_name,
            key=self.key,
            removal=removal,
            versioned=True,
            expiry_days=expiry_days,
            noncurrent_expiry_days=noncurrent_expiry_days,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="artifacts/",
        )

    def _admit(self, readers: Sequence[str], foreign_readers: Sequence[str]) -> None:
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DeployRolesReadArtifacts",
                principals=[iam.ArnPrincipal(arn) for arn in readers],
                actions=["s3:GetObject", "s3:GetObjectVersion", "s3:GetBucketLocation"],
                resources=[self.bucket.bucket_arn, self.bucket.arn_for_objects("*")],
            )
        )
        if foreign_readers:
            self.key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="DeployRolesDecryptArtifacts",
                    principals=[iam.ArnPrincipal(arn) for arn in foreign_readers],
                    actions=["kms:Decrypt", "kms:DescribeKey"],
                    resources=["*"],  # a key policy's resource is always the key itself
                )
            )

    def _explain(self, namer: Namer) -> None:
        reason = (
            f"this bucket only receives the server access logs of {namer.service}'s artifact "
            f"bucket in {self.region}; logging access to a log bucket would need yet another"
        )
        defaults.skip_checkov(self.access_logs, "CKV_AWS_18", reason)


def regional_bucket_name(namer: Namer, type_: str, account: str, region: str) -> str:
    """`{service}-{type}-{account}-{region}-{env}`, at most 63 characters: bucket names are
    global, so the account and region make it unique; the environment ends it, as every
    deployline name does (checker rule DL702); a long service name is cut, never the rest."""
    tail = f"-{account}-{region}-{namer.env}"
    return fit(f"{namer.base}-{type_}", Kind.S3_BUCKET.limit - len(tail)) + tail


def regional_stack_name(namer: Namer, region: str) -> str:
    """`{service}-artifacts-<region>-shared`."""
    return namer.name(f"artifacts-{region}", Kind.STACK)
