"""Physical names and tags, in one place.

Every physical name deployline gives a resource is `{prefix-}{service}-{type}-{env}`,
lowercase kebab-case, cut to the limit AWS sets for that kind of resource. A cut name keeps its
start, and ends with a stable 6-character hash of the full name, so two long names never
collapse into one.

This module is pure Python (no aws_cdk import): the checker and the runtime may use it too.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

MANAGED_BY = "deployline"
REQUIRED_TAG_KEYS = ("Environment", "Project", "ManagedBy", "Service")


@dataclass(frozen=True)
class Limit:
    """A kind of named resource and the longest name AWS accepts for it."""

    kind: str
    limit: int


class Kind:
    """The limits deployline names are cut to (AWS service quotas on name length)."""

    S3_BUCKET = Limit("S3 bucket", 63)
    IAM_ROLE = Limit("IAM role", 64)
    IAM_POLICY = Limit("IAM policy", 128)
    LAMBDA_FUNCTION = Limit("Lambda function", 64)
    LOAD_BALANCER = Limit("load balancer", 32)
    TARGET_GROUP = Limit("target group", 32)
    EVENT_RULE = Limit("EventBridge rule", 64)
    CODEPIPELINE = Limit("CodePipeline pipeline", 100)
    CODEDEPLOY = Limit("CodeDeploy application or group", 100)
    STACK = Limit("CloudFormation stack", 128)
    ECR_REPOSITORY = Limit("ECR repository", 256)
    DYNAMODB_TABLE = Limit("DynamoDB table", 255)
    SNS_TOPIC = Limit("SNS topic", 256)
    CODEBUILD_PROJECT = Limit("CodeBuild project", 150)
    ECS = Limit("ECS cluster, service or task family", 255)
    ALARM = Limit("CloudWatch alarm", 255)
    LOG_GROUP = Limit("log group", 512)
    DASHBOARD = Limit("CloudWatch dashboard", 255)
    GENERIC = Limit("resource", 255)


_HASH_LEN = 6
_SEGMENT = re.compile(r"[^a-z0-9]+")


def kebab(text: str) -> str:
    """Lowercase kebab-case: `Payment_Processor` -> `payment-processor`."""
    return _SEGMENT.sub("-", text.lower()).strip("-")


def short_hash(text: str, length: int = _HASH_LEN) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def fit(name: str, limit: int) -> str:
    """Cut `name` to `limit` characters, ending in a stable hash of the whole name when cut."""
    if limit <= _HASH_LEN + 1:
        raise ValueError(f"limit must exceed {_HASH_LEN + 1}, got {limit}")
    if len(name) <= limit:
        return name
    head = name[: limit - _HASH_LEN - 1].rstrip("-")
    return f"{head}-{short_hash(name)}"


@dataclass(frozen=True)
class Namer:
    """Names for one environment (or for the pipeline's own resources, env='shared')."""

    service: str
    env: str
    prefix: str | None = None

    def __post_init__(self) -> None:
        for what, value in (("service", self.service), ("env", self.env)):
            if not value or kebab(value) != value:
                raise ValueError(f"{what} must be lowercase kebab-case, got {value!r}")
        if self.prefix is not None and kebab(self.prefix) != self.prefix:
            raise ValueError(f"prefix must be lowercase kebab-case, got {self.prefix!r}")

    @property
    def base(self) -> str:
        return f"{self.prefix}-{self.service}" if self.prefix else self.service

    def name(self, type_: str, kind: Limit = Kind.GENERIC) -> str:
        """`{prefix-}{service}-{type}-{env}` cut to the limit of `kind`; a cut name keeps its
        environment at the end: `{start}-{hash}-{env}`."""
        return self._fit(type_, kind.limit)

    def _fit(self, type_: str, limit: int) -> str:
        full = f"{self.base}-{kebab(type_)}-{self.env}"
        room = limit - len(self.env) - 1
        if len(full) <= limit or room <= _HASH_LEN + 1:
            return fit(full, limit)
        head = full[: room - _HASH_LEN - 1].rstrip("-")
        return f"{head}-{short_hash(full)}-{self.env}"

    def bucket_prefix(self, type_: str) -> str:
        """The literal start of a bucket name; the stack appends `-{account}-{region}`.

        Bucket names are global, so the account and region (pseudo parameters, at most
        12 + 1 + 14 characters with hyphens) make them unique; the literal part keeps the rest.
        """
        return self._fit(type_, Kind.S3_BUCKET.limit - 29)

    def stack_name(self) -> str:
        return self.name("pipeline" if self.env == "shared" else "service", Kind.STACK)

    def log_group(self, type_: str) -> str:
        return f"/deployline/{self.base}/{self.env}/{kebab(type_)}"


def tags(
    *,
    service: str,
    project: str,
    env: str,
    extra: dict[str, str] | None = None,
    owner: str | None = None,
) -> dict[str, str]:
    """The tags every taggable resource carries, deployline's keys last so they win."""
    out = dict(extra or {})
    if owner:
        out.setdefault("Owner", owner)
    out.update(
        {"Environment": env, "Project": project, "ManagedBy": MANAGED_BY, "Service": service}
    )
    return out


#: The name of the application container in every task definition. imagedefinitions.json, the
#: appspec and the load balancer all refer to it, so it is one constant, not a per-env name.
CONTAINER_NAME = "app"
