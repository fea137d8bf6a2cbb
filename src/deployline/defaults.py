"""Secure defaults, applied by every construct before the caller's overrides.

KMS keys rotate; buckets block public access, refuse plain HTTP, are encrypted with a CMK and expire
what they hold; log groups are encrypted and keep logs for a fixed time; every stateful resource has
an explicit removal policy. Constructs call these helpers instead of repeating the settings.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws, CfnResource, Duration, RemovalPolicy, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

# Default: 30 days of logs, 30 days of artifacts, noncurrent versions 7 days.
LOG_RETENTION_DAYS = 30
ARTIFACT_EXPIRY_DAYS = 30
NONCURRENT_EXPIRY_DAYS = 7
#: How long a log bucket keeps a deleted or overwritten log object (a noncurrent version).
LOG_NONCURRENT_EXPIRY_DAYS = 30
ABORT_INCOMPLETE_UPLOAD_DAYS = 1

_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def retention(days: int) -> logs.RetentionDays:
    """CloudWatch Logs retention for `days`; only the values CloudWatch accepts are allowed."""
    try:
        return _RETENTION[days]
    except KeyError:
        raise ValueError(
            f"log retention must be one of {sorted(_RETENTION)} days, got {days}"
        ) from None


def removal_policy(*, destroy: bool) -> RemovalPolicy:
    """DESTROY for throw-away environments, RETAIN for everything that must outlive its stack."""
    return RemovalPolicy.DESTROY if destroy else RemovalPolicy.RETAIN


def logs_service_principal() -> iam.ServicePrincipal:
    """CloudWatch Logs' regional principal, built from the pseudo parameter (no literal region)."""
    return iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")


def guarded_service_principal(service: str, *, source_arn: str) -> iam.ServicePrincipal:
    """`service` (e.g. `codebuild.amazonaws.com`) as a role's trusted principal, only on behalf
    of this account (aws:SourceAccount) and of the resources `source_arn` matches
    (aws:SourceArn): the confused-deputy guard AWS documents for service roles (checker rule
    DL002)."""
    return iam.ServicePrincipal(
        service,
        conditions={
            "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
            "ArnLike": {"aws:SourceArn": source_arn},
        },
    )


def own_arn(service: str, resource: str) -> str:
    """An ARN of `service` in this stack's partition, region and account (pseudo parameters)."""
    return f"arn:{Aws.PARTITION}:{service}:{Aws.REGION}:{Aws.ACCOUNT_ID}:{resource}"


def secure_key(
    scope: Construct,
    id: str,
    *,
    alias: str,
    description: str,
    removal: RemovalPolicy = RemovalPolicy.RETAIN,
    pending_window: Duration = Duration.days(30),
) -> kms.Key:
    """A customer-managed key with yearly rotation and an explicit removal policy.

    Default: RETAIN, 30-day deletion window (the longest: a key deleted by mistake can be saved).
    """
    return kms.Key(
        scope,
        id,
        alias=f"alias/{alias}",
        description=description,
        enable_key_rotation=True,
        pending_window=pending_window,
        removal_policy=removal,
    )


def allow_logs_to_use_key(key: kms.IKey, log_group_arn_pattern: str | Sequence[str]) -> None:
    """Let CloudWatch Logs encrypt log groups whose ARN matches the pattern (or one of the
    patterns) with `key`, and no others."""
    patterns = (
        log_group_arn_pattern
        if isinstance(log_group_arn_pattern, str)
        else list(log_group_arn_pattern)
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowCloudWatchLogs",
            principals=[logs_service_principal()],
            actions=[
                "kms:Encrypt*",
                "kms:Decrypt*",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:Describe*",
            ],
            resources=["*"],  # a key policy's resource is always the key itself
            conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": patterns}},
        )
    )


def encrypted_log_group(
    scope: Construct,
    id: str,
    *,
    name: str,
    key: kms.IKey,
    retention_days: int = LOG_RETENTION_DAYS,
    removal: RemovalPolicy = RemovalPolicy.RETAIN,
) -> logs.LogGroup:
    """A log group created before whatever writes to it, KMS-encrypted, with retention.

    The key must allow CloudWatch Logs (see `allow_logs_to_use_key`).
    """
    return logs.LogGroup(
        scope,
        id,
        log_group_name=name,
        encryption_key=key,
        retention=retention(retention_days),
        removal_policy=removal,
    )


def secure_bucket(
    scope: Construct,
    id: str,
    *,
    bucket_name: str | None,
    key: kms.IKey | None,
    removal: RemovalPolicy = RemovalPolicy.RETAIN,
    versioned: bool = True,
    expiry_days: int | None = ARTIFACT_EXPIRY_DAYS,
    noncurrent_expiry_days: int | None = NONCURRENT_EXPIRY_DAYS,
    server_access_logs_bucket: s3.IBucket | None = None,
    server_access_logs_prefix: str | None = None,
    event_bridge_enabled: bool = False,
    extra_lifecycle_rules: Sequence[s3.LifecycleRule] = (),
) -> s3.Bucket:
    """An S3 bucket with every guard on.

    Block all public access, SSL only, bucket-owner-enforced ownership (no ACLs), encryption with
    `key` (SSE-KMS with bucket keys) or, when `key` is None, S3-managed keys (only for buckets AWS
    services write to that cannot use a CMK, such as ALB access logs). Lifecycle: current objects
    expire after `expiry_days`, noncurrent versions after `noncurrent_expiry_days`, incomplete
    multipart uploads after a day.
    """
    rule = s3.LifecycleRule(
        id="expire",
        enabled=True,
        expiration=Duration.days(expiry_days) if expiry_days else None,
        noncurrent_version_expiration=(
            Duration.days(noncurrent_expiry_days) if versioned and noncurrent_expiry_days else None
        ),
        abort_incomplete_multipart_upload_after=Duration.days(ABORT_INCOMPLETE_UPLOAD_DAYS),
    )
    bucket = s3.Bucket(
        scope,
        id,
        bucket_name=bucket_name,
        encryption=s3.BucketEncryption.KMS if key is not None else s3.BucketEncryption.S3_MANAGED,
        encryption_key=key,
        bucket_key_enabled=key is not None,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        versioned=versioned,
        lifecycle_rules=[rule, *extra_lifecycle_rules],
        removal_policy=removal,
        event_bridge_enabled=event_bridge_enabled,
    )
    if server_access_logs_bucket is not None:
        _log_access_to(bucket, server_access_logs_bucket, server_access_logs_prefix)
    return bucket


def _log_access_to(source: s3.Bucket, target: s3.IBucket, prefix: str | None) -> None:
    """Server access logs of `source` into `target`, granted by `target`'s bucket policy.

    CDK's own `server_access_logs_bucket` grants through an ACL (LogDeliveryWrite) unless the app
    sets the feature flag `@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy`; an ACL cannot coexist
    with bucket-owner-enforced ownership, so in a plain CDK app without that flag synthesis fails.
    This does what the flag does, whatever the app's flags: the logging configuration on the
    source, and a policy statement on the target scoped to the source bucket and account.
    """
    cfn = source.node.default_child
    assert isinstance(cfn, s3.CfnBucket)
    cfn.logging_configuration = s3.CfnBucket.LoggingConfigurationProperty(
        destination_bucket_name=target.bucket_name, log_file_prefix=prefix
    )
    target.add_to_resource_policy(
        iam.PolicyStatement(
            effect=iam.Effect.ALLOW,
            principals=[iam.ServicePrincipal("logging.s3.amazonaws.com")],
            actions=["s3:PutObject"],
            resources=[target.arn_for_objects(f"{prefix}*" if prefix else "*")],
            conditions={
                "ArnLike": {"aws:SourceArn": source.bucket_arn},
                "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
            },
        )
    )


def access_log_expiry_days(expiry_days: int) -> int:
    """Server access logs outlive what they log, and are kept at least 90 days. A token (a
    CfnParameter) cannot be compared at synth time: the logs then expire with the objects."""
    if Token.is_unresolved(expiry_days):
        return expiry_days
    return max(expiry_days, 90)


def bucket_name(prefix: str) -> str:
    """A globally unique bucket name: the literal prefix, then account and region (pseudo
    parameters)."""
    return f"{prefix}-{Aws.ACCOUNT_ID}-{Aws.REGION}"


def skip_checkov(construct: Construct, check_id: str, comment: str) -> None:
    """Record in `construct`'s CloudFormation Metadata that checkov check `check_id` does not
    apply, and why (`Metadata: {checkov: {skip: [{id, comment}]}}`; earlier skips are kept).

    `construct` is a CfnResource or an L2 whose default child is one.
    """
    resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
    if not isinstance(resource, CfnResource):
        raise ValueError(f"{construct.node.path} has no CloudFormation resource to annotate")
    if not comment.strip():
        raise ValueError(f"a checkov skip of {check_id} needs a reason, got ''")
    existing = resource.get_metadata("checkov") or {}
    skips = [s for s in existing.get("skip", []) if s.get("id") != check_id]
    resource.add_metadata(
        "checkov", {**existing, "skip": [*skips, {"id": check_id, "comment": comment}]}
    )


def depend_on_grants(dependent: Construct, role: iam.Role) -> None:
    """Make `dependent` wait for the grants in `role`'s default policy (when it has one).

    The reference to the role already orders role before dependent; the separately created
    AWS::IAM::Policy needs an explicit DependsOn, or the resource can start before it may act.
    """
    policy = role.node.try_find_child("DefaultPolicy")
    if policy is not None:
        dependent.node.add_dependency(policy)
