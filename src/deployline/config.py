"""The `deployline.yaml` model: one file in, validated, with errors that name file, line and field.

`load_config(path)` is the only way the rest of deployline reads the file. It returns a frozen
`DeploylineConfig` or raises `ConfigError`, which carries every problem found (not only the first),
each with the line it came from, so the CLI can print them all and exit 2.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from deployline.contract import DEFAULT_BOOTSTRAP_QUALIFIER

CONFIG_FILENAME = "deployline.yaml"

# --------------------------------------------------------------------------------------------
# Reusable constrained types
# --------------------------------------------------------------------------------------------

_KEBAB = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")
_CONNECTION_ARN = re.compile(
    r"^arn:aws[a-z-]*:(?:codestar-connections|codeconnections):[a-z0-9-]+:\d{12}:connection/[0-9a-f-]{36}$"
)
_SNS_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")
_ACM_ARN = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]{36}$")
_HOSTED_ZONE_ID = re.compile(r"^Z[A-Z0-9]{1,31}$")
_SSM_NAME = re.compile(r"^/[A-Za-z0-9_.\-/]{1,1010}$")
_REGION = re.compile(r"^[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d$")
_ACCOUNT = re.compile(r"^\d{12}$")
_CIDR = re.compile(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})/(\d{1,2})$")
_VPC_ID = re.compile(r"^vpc-[0-9a-f]{8,17}$")
_SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_RULE_ID = re.compile(r"^DL\d{3}$")

RESERVED_ENV_NAMES = {"shared"}  # used for the pipeline's own resources (see naming.py)


def _kebab(max_len: int) -> Any:
    def check(value: str) -> str:
        if not _KEBAB.match(value):
            raise ValueError(
                "must be lowercase kebab-case (letters, digits and single hyphens, "
                f"starting with a letter), got {value!r}"
            )
        if len(value) > max_len:
            raise ValueError(f"must be at most {max_len} characters, got {len(value)}")
        return value

    return AfterValidator(check)


def _pattern(regex: re.Pattern[str], expected: str) -> Any:
    def check(value: str) -> str:
        if not regex.match(value):
            raise ValueError(f"expected {expected}, got {value!r}")
        return value

    return AfterValidator(check)


def _cidr(value: str) -> str:
    m = _CIDR.match(value)
    if not m or any(int(p) > 255 for p in m.groups()[:4]) or int(m.group(5)) > 32:
        raise ValueError(f"expected an IPv4 CIDR block like 10.0.0.0/16, got {value!r}")
    return value


ServiceName = Annotated[str, _kebab(28)]
EnvName = Annotated[str, _kebab(12)]
Email = Annotated[str, _pattern(_EMAIL, "an e-mail address like team@example.com")]
ConnectionArn = Annotated[
    str,
    _pattern(
        _CONNECTION_ARN,
        "a CodeStar connection ARN like "
        "arn:aws:codestar-connections:<region>:<account>:connection/<uuid>",
    ),
]
SnsArn = Annotated[
    str, _pattern(_SNS_ARN, "an SNS topic ARN like arn:aws:sns:<region>:<account>:name")
]
CertificateArn = Annotated[
    str,
    _pattern(
        _ACM_ARN, "an ACM certificate ARN like arn:aws:acm:<region>:<account>:certificate/<uuid>"
    ),
]
SsmName = Annotated[str, _pattern(_SSM_NAME, "an SSM parameter name starting with '/'")]
Region = Annotated[str, _pattern(_REGION, "an AWS region name like eu-west-1")]
Account = Annotated[str, _pattern(_ACCOUNT, "a 12-digit AWS account ID")]
Cidr = Annotated[str, AfterValidator(_cidr)]
TagKey = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[\w .:/=+\-@]+$")]
TagValue = Annotated[str, Field(max_length=256, pattern=r"^[\w .:/=+\-@]*$")]


#: The retention periods CloudWatch Logs accepts, in days.
LogRetentionDays = Literal[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
]  # fmt: skip


class _Model(BaseModel):
    """Every section forbids unknown keys, so a typo is an error rather than a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


class SourceType(StrEnum):
    GITHUB = "github"
    S3 = "s3"
    CODECOMMIT = "codecommit"


class GitHubSource(_Model):
    """A repository reached through a CodeStar (CodeConnections) connection; never an OAuth token."""

    type: Literal["github"]
    repository: Annotated[
        str, _pattern(re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"), "'owner/name'")
    ] = Field(description="Repository as owner/name.")
    branch: str = Field(default="main", min_length=1, max_length=255)
    connection_arn: ConnectionArn | None = Field(
        default=None,
        description="Literal CodeStar connection ARN. Prefer connection_parameter: a literal ARN "
        "puts an account ID into the template.",
    )
    connection_parameter: SsmName | None = Field(
        default=None,
        description="Name of an SSM String parameter that holds the connection ARN, "
        "resolved at deploy time.",
    )
    paths: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list,
        description="File path globs; only pushes that touch them start the pipeline (monorepos).",
    )
    exclude_paths: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    full_clone: bool = Field(
        default=False,
        description="Hand the build a git clone (CODEBUILD_CLONE_REF) instead of a zip, for "
        "builds that need git history or tags. Default: false (the zip is faster; the commit "
        "ID reaches the build as IMAGE_TAG).",
    )

    @model_validator(mode="after")
    def _one_connection(self) -> GitHubSource:
        if (self.connection_arn is None) == (self.connection_parameter is None):
            raise ValueError(
                "give exactly one of connection_arn or connection_parameter "
                "(the SSM parameter name holding the CodeStar connection ARN)"
            )
        return self


class S3Source(_Model):
    type: Literal["s3"]
    bucket: (
        Annotated[
            str, _pattern(re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"), "an S3 bucket name")
        ]
        | None
    ) = Field(
        default=None,
        description="Existing versioned bucket. Default: deployline creates a versioned, "
        "encrypted source bucket.",
    )
    key: str = Field(default="source.zip", min_length=1, max_length=1024)


class CodeCommitSource(_Model):
    type: Literal["codecommit"]
    repository: Annotated[
        str, _pattern(re.compile(r"^[\w.-]{1,100}$"), "a CodeCommit repository name")
    ]
    branch: str = Field(default="main", min_length=1, max_length=255)
    full_clone: bool = Field(
        default=False,
        description="Hand the build a git clone instead of a zip. Default: false.",
    )


Source = Annotated[GitHubSource | S3Source | CodeCommitSource, Field(discriminator="type")]


class BuildConfig(_Model):
    dockerfile: str = Field(default="Dockerfile", min_length=1)
    context: str = Field(default=".", min_length=1)
    timeout_minutes: int = Field(default=15, ge=5, le=60, description="Default: 15 minutes.")
    dockerhub_secret: str | None = Field(
        default=None,
        description="Secrets Manager secret name (JSON with 'username' and 'password') used to "
        "log in to Docker Hub and avoid its pull rate limit.",
        min_length=1,
        max_length=512,
    )
    cache: bool = Field(default=True, description="Local Docker layer cache. Default: on.")
    platform: Literal["linux/amd64", "linux/arm64"] = "linux/amd64"


class TestReports(_Model):
    junit: str | None = Field(default="reports/junit.xml")
    coverage: str | None = Field(default="reports/coverage.xml")


class TestConfig(_Model):
    commands: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=lambda: [
            "pip install -r requirements.txt -r requirements-dev.txt",
            "pytest --junitxml=reports/junit.xml --cov=. --cov-report=xml:reports/coverage.xml",
        ],
        min_length=1,
    )
    reports: TestReports = Field(default_factory=TestReports)
    timeout_minutes: int = Field(default=20, ge=5, le=60)


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class SecurityConfig(_Model):
    scanners: list[Literal["bandit", "pip-audit", "trivy"]] = Field(
        default_factory=lambda: ["bandit", "pip-audit", "trivy"], min_length=1
    )
    threshold: Severity = Field(
        default=Severity.HIGH, description="Fail the pipeline at or above this severity."
    )
    allow_unverified: bool = Field(
        default=False,
        description="Accept dependencies that a scanner could not audit (for example when its "
        "vulnerability service is unreachable). Default: false, they fail the gate.",
    )
    paths: list[str] = Field(default_factory=lambda: ["."], min_length=1)

    @field_validator("scanners")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"scanners must not repeat, got {value}")
        return value


class DeploymentType(StrEnum):
    ROLLING = "rolling"
    BLUE_GREEN = "blue_green"


class TrafficShifting(StrEnum):
    """How an ECS blue/green deployment moves production traffic to the new (green) tasks.

    `all_at_once` is the ECS `BLUE_GREEN` strategy; `canary_<p>_percent_<m>_minutes` is `CANARY`
    (p percent, then the rest after m minutes); `linear_<p>_percent_every_<m>_minute(s)` is
    `LINEAR` (p percent more every m minutes). The names are those of the CodeDeploy
    configurations they replace, so configs written for the CodeDeploy mode keep their meaning.
    """

    ALL_AT_ONCE = "all_at_once"
    CANARY_10_PERCENT_5_MINUTES = "canary_10_percent_5_minutes"
    CANARY_10_PERCENT_15_MINUTES = "canary_10_percent_15_minutes"
    LINEAR_10_PERCENT_EVERY_1_MINUTE = "linear_10_percent_every_1_minute"
    LINEAR_10_PERCENT_EVERY_3_MINUTES = "linear_10_percent_every_3_minutes"

    @property
    def ecs_strategy(self) -> Literal["BLUE_GREEN", "CANARY", "LINEAR"]:
        """The ECS deployment strategy (`DeploymentConfiguration.Strategy`)."""
        if self is TrafficShifting.ALL_AT_ONCE:
            return "BLUE_GREEN"
        return "CANARY" if self.value.startswith("canary_") else "LINEAR"

    @property
    def step_percent(self) -> float | None:
        """Percent of production traffic per step (canary: the first step); None all at once."""
        match = re.search(r"_(\d+)_percent", self.value)
        return float(match.group(1)) if match else None

    @property
    def step_minutes(self) -> int | None:
        """Minutes between steps (canary: before the rest shifts); None all at once."""
        match = re.search(r"_(\d+)_minutes?$", self.value)
        return int(match.group(1)) if match else None


class AlarmThresholds(_Model):
    """When an environment is unhealthy. The alarms roll deployments back (ECS deployment alarms
    for rolling environments, CodeDeploy alarms for blue/green ones)."""

    error_rate_percent: float = Field(
        default=5.0,
        gt=0,
        le=100,
        description="Target 5xx responses as a share of requests. Default: 5 percent.",
    )
    p99_latency_ms: int = Field(
        default=1500, ge=1, le=60_000, description="p99 target response time. Default: 1500 ms."
    )
    unhealthy_hosts: int = Field(
        default=1,
        ge=1,
        le=1000,
        description="Unhealthy targets (at or above) that count as a breach. Default: 1.",
    )
    evaluation_minutes: int = Field(
        default=3,
        ge=1,
        le=60,
        description="Consecutive breaching minutes before an alarm fires. Default: 3.",
    )


class NetworkMode(StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"
    ENDPOINTS = "endpoints"


class NetworkConfig(_Model):
    """Where the service runs. Default: a new VPC over 2 AZs, tasks in public subnets, no NAT.

    mode public: tasks in public subnets with a public IP, reachable only from the load balancer
    (the cheapest: no NAT gateway, no endpoint). mode private: tasks in private subnets behind
    NAT gateways. mode endpoints: tasks in isolated subnets without any route to the internet;
    they reach ECR, S3 and CloudWatch Logs (and extra_endpoints) through VPC endpoints, which
    deployline creates in a new VPC and an existing VPC (vpc_id) must already have.
    """

    mode: NetworkMode = NetworkMode.PUBLIC
    vpc_id: Annotated[str, _pattern(_VPC_ID, "a VPC ID like vpc-0abc1234")] | None = None
    vpc_cidr: Cidr = Field(
        default="10.0.0.0/16",
        description="CIDR of the new VPC (or of the existing one, with vpc_id). "
        "Default: 10.0.0.0/16.",
    )
    availability_zones: list[Annotated[str, Field(pattern=r"^[a-z]{2}-[a-z]+-\d[a-z]$")]] = Field(
        default_factory=list,
        description="Required with vpc_id (synth runs offline and cannot look them up).",
    )
    public_subnet_ids: list[Annotated[str, _pattern(_SUBNET_ID, "a subnet ID")]] = Field(
        default_factory=list
    )
    private_subnet_ids: list[Annotated[str, _pattern(_SUBNET_ID, "a subnet ID")]] = Field(
        default_factory=list
    )
    max_azs: int = Field(default=2, ge=2, le=6, description="New VPC only. Default: 2.")
    nat_gateways: int = Field(
        default=1,
        ge=1,
        le=6,
        description="mode private with a new VPC only. One per AZ survives an AZ outage. "
        "Default: 1.",
    )
    flow_logs: bool = Field(
        default=True,
        description="VPC flow logs (all traffic) to a KMS-encrypted log group; new VPC only. "
        "Default: on.",
    )
    extra_endpoints: list[Annotated[str, Field(min_length=2, max_length=64)]] = Field(
        default_factory=list,
        description="mode endpoints with a new VPC: more interface endpoints the application "
        "calls, by service name (secretsmanager, ssm, sts, kms, ...). ECR, S3 and CloudWatch "
        "Logs are always created. With vpc_id the VPC must provide every endpoint itself.",
    )

    @field_validator("extra_endpoints")
    @classmethod
    def _endpoint_names(cls, value: list[str]) -> list[str]:
        service_name = re.compile(r"^[a-z][a-z0-9-]*(?:\.[a-z0-9-]+)*$")
        built_in = {"ecr.api", "ecr.dkr", "logs", "s3"}  # mode endpoints always creates these
        for name in value:
            if not service_name.match(name):
                raise ValueError(
                    f"extra_endpoints entries are service names like 'secretsmanager' or "
                    f"'ssm', got {name!r}"
                )
            if name in built_in:
                raise ValueError(
                    f"extra_endpoints: {name!r} is always created in mode endpoints; remove it"
                )
        if len(set(value)) != len(value):
            raise ValueError(f"extra_endpoints must not repeat, got {value}")
        return value

    @model_validator(mode="after")
    def _existing_vpc_complete(self) -> NetworkConfig:
        if self.extra_endpoints and (self.mode is not NetworkMode.ENDPOINTS or self.vpc_id):
            raise ValueError(
                "extra_endpoints applies to mode: endpoints with a new VPC only (an existing "
                "VPC provides its own endpoints)"
            )
        if self.vpc_id is None:
            if self.public_subnet_ids or self.private_subnet_ids or self.availability_zones:
                raise ValueError("subnet IDs and availability_zones are only used with vpc_id")
            if self.mode is NetworkMode.PRIVATE and self.nat_gateways > self.max_azs:
                raise ValueError(
                    f"nat_gateways ({self.nat_gateways}) must not exceed max_azs "
                    f"({self.max_azs}): at most one NAT gateway per availability zone"
                )
            return self
        if len(self.public_subnet_ids) < 2:
            raise ValueError(
                "an existing VPC needs at least 2 public_subnet_ids (for the load balancer)"
            )
        if self.mode is not NetworkMode.PUBLIC and len(self.private_subnet_ids) < 2:
            raise ValueError(f"mode {self.mode.value} needs at least 2 private_subnet_ids")
        if self.mode is NetworkMode.PUBLIC and self.private_subnet_ids:
            raise ValueError(
                "mode public runs tasks in the public subnets; remove private_subnet_ids or "
                "set mode: private"
            )
        if len(self.availability_zones) != len(self.public_subnet_ids):
            raise ValueError(
                "availability_zones must list one zone per public subnet, got "
                f"{len(self.availability_zones)} zones for {len(self.public_subnet_ids)} subnets"
            )
        if self.private_subnet_ids and len(self.private_subnet_ids) != len(self.availability_zones):
            raise ValueError(
                "private_subnet_ids must list one subnet per availability zone (in the same "
                f"order), got {len(self.private_subnet_ids)} subnets for "
                f"{len(self.availability_zones)} zones"
            )
        if len(set(self.availability_zones)) != len(self.availability_zones):
            raise ValueError(f"availability_zones must not repeat, got {self.availability_zones}")
        return self


# Fargate CPU units -> allowed memory (MiB). https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html
FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4097, 1024)),
    1024: tuple(range(2048, 8193, 1024)),
    2048: tuple(range(4096, 16385, 1024)),
    4096: tuple(range(8192, 30721, 1024)),
    8192: tuple(range(16384, 61441, 4096)),
    16384: tuple(range(32768, 122881, 8192)),
}


class EnvironmentConfig(_Model):
    """One environment the service runs in: an ECS Fargate service behind an ALB, deployed rolling
    (ECS circuit breaker and alarms) or blue/green (CodeDeploy with a test listener)."""

    name: EnvName
    deployment: DeploymentType = DeploymentType.ROLLING
    traffic_shifting: TrafficShifting | None = Field(
        default=None,
        description="blue_green only. Default: canary_10_percent_5_minutes when the "
        "environment is production, all_at_once otherwise.",
    )
    approval: bool = Field(default=False, description="Manual approval before this deploy.")
    desired_count: int = Field(default=2, ge=1, le=1000)
    min_capacity: int = Field(default=1, ge=1, le=1000)
    max_capacity: int = Field(default=4, ge=1, le=1000)
    cpu: int = Field(default=256, description="Fargate CPU units: 256, 512, 1024, ...")
    memory: int = Field(default=512, description="MiB, a size Fargate offers for the cpu.")
    container_port: int = Field(default=8080, ge=1, le=65535)
    health_check_path: str = Field(default="/health", pattern=r"^/[\w\-./~%]*$")
    listener_port: int = Field(
        default=80,
        ge=1,
        le=65535,
        description="The HTTP listener. With a certificate (certificate_arn or hosted_zone_id), "
        "HTTPS is served on 443 and this port redirects to it. Default: 80.",
    )
    test_listener_port: int | None = Field(
        default=None, ge=1, le=65535, description="blue_green: Default: 8080."
    )
    test_listener_cidrs: list[Cidr] = Field(
        default_factory=list,
        description="blue_green: who may reach the test listener, which serves the new (green) "
        "tasks before production traffic shifts to them. Default: nobody. The deployment's "
        "validation hook needs no network path (it reads the load balancer's health checks of "
        "the green tasks), so open it only to the people who test by hand, e.g. an office CIDR.",
    )
    ingress_cidrs: list[Cidr] = Field(default_factory=lambda: ["0.0.0.0/0"], min_length=1)
    certificate_arn: CertificateArn | None = Field(
        default=None,
        description="ACM certificate for HTTPS on 443 (HTTP then redirects to it). Needs "
        "domain_name.",
    )
    domain_name: str | None = Field(
        default=None,
        max_length=253,
        pattern=r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$",
        description="The name the certificate covers, pointed at the load balancer (by "
        "deployline with hosted_zone_id, else by you); the service and test URLs use it. "
        "Required with certificate_arn or hosted_zone_id.",
    )
    hosted_zone_id: (
        Annotated[
            str, _pattern(_HOSTED_ZONE_ID, "a Route 53 hosted zone ID like Z0123456789ABCDEFGHIJ")
        ]
        | None
    ) = Field(
        default=None,
        description="Route 53 public hosted zone of domain_name, in the environment's account: "
        "deployline points domain_name at the load balancer and, without certificate_arn, "
        "creates its certificate (ACM, validated by DNS in this zone, renewed by ACM).",
    )
    plain_http: bool = Field(
        default=False,
        description="Serve plain HTTP, without a certificate: the explicit choice an "
        "environment needs when it has neither certificate_arn nor hosted_zone_id "
        "(`deployline validate` warns about it). Default: false.",
    )
    waf: bool | None = Field(
        default=None,
        description="An AWS WAF web ACL in front of the load balancer (AWS managed rules: IP "
        "reputation, common threats, known bad inputs), its requests logged. Default: on in "
        "production, off elsewhere.",
    )
    bake_minutes: int | None = Field(
        default=None,
        ge=0,
        le=1440,
        description="blue_green: how long ECS keeps the old (blue) tasks after all production "
        "traffic has moved, watching the alarms; a rollback meanwhile is instant. Default: 10 "
        "minutes in production, 0 elsewhere.",
    )
    alarms: AlarmThresholds = Field(default_factory=AlarmThresholds)
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    placeholder_image: str = Field(
        default="public.ecr.aws/docker/library/caddy:2-alpine",
        min_length=1,
        pattern=r"^[a-z0-9][a-z0-9._\-/:@]*$",
        description="Image the service starts with before the pipeline pushes one. It must "
        "answer 200 on health_check_path at container_port as a non-root user.",
    )
    placeholder_image_command: list[Annotated[str, Field(min_length=1)]] | None = Field(
        default=None,
        description="Command for the placeholder image. Default: for a caddy image, "
        "`caddy respond --listen :<container_port>` (200 on every path, no file written); "
        "otherwise the image's own command.",
    )
    container_user: str = Field(
        default="1000:1000",
        pattern=r"^(?:\d{1,10}|[a-z_][a-z0-9_-]{0,31})(?::(?:\d{1,10}|[a-z_][a-z0-9_-]{0,31}))?$",
        description="uid[:gid] the container runs as; never root. Default: 1000:1000.",
    )
    read_only_root_filesystem: bool = True
    writable_paths: list[Annotated[str, Field(pattern=r"^/[\w\-./]+$")]] = Field(
        default_factory=lambda: ["/tmp"],  # noqa: S108  (a mount point, not a temp file)
        max_length=10,
        description="Task-local scratch volumes mounted writable (with "
        "read_only_root_filesystem). Default: /tmp.",
    )
    container_health_check: bool = Field(
        default=True,
        description="A container health check (ECS replaces a task whose check fails). "
        "Default: on.",
    )
    container_health_check_command: str | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="Shell command that exits 0 when the container is healthy. Default: GET "
        "http://127.0.0.1:<container_port><health_check_path> with wget, curl or python3, "
        "whichever the image has.",
    )
    health_check_grace_seconds: int = Field(
        default=60,
        ge=0,
        le=3600,
        description="Load balancer health checks are ignored this long after a task starts. "
        "Default: 60 seconds.",
    )
    deregistration_delay_seconds: int = Field(
        default=30,
        ge=0,
        le=3600,
        description="How long the load balancer drains a stopping task. Default: 30 seconds.",
    )
    target_cpu_percent: int = Field(
        default=60, ge=10, le=95, description="Autoscaling target CPU. Default: 60 percent."
    )
    target_requests_per_task: int = Field(
        default=1000,
        ge=1,
        le=1_000_000,
        description="Autoscaling target, requests per task per minute. Default: 1000.",
    )
    log_retention_days: LogRetentionDays = Field(
        default=30, description="Application, flow and hook logs. Default: 30 days."
    )
    access_log_expiry_days: int = Field(
        default=90,
        ge=1,
        le=3650,
        description="Load balancer access logs are deleted after this many days. Default: 90.",
    )
    destroy_on_delete: bool | None = Field(
        default=None,
        description="Delete stateful resources with the stack. Default: false for production, "
        "true otherwise.",
    )
    production: bool | None = Field(
        default=None,
        description="Treat as production (RETAIN, canary default, deletion protection). "
        "Default: true when name is prod, production or prd, or when it is the last environment.",
    )
    account: Account | None = Field(
        default=None,
        description="The AWS account the environment is deployed to (bootstrapped with `cdk "
        "bootstrap --trust <pipeline account>`). Default: the pipeline's account.",
    )
    region: Region | None = Field(
        default=None,
        description="The region the environment is deployed to. Default: the pipeline's region.",
    )

    @model_validator(mode="before")
    @classmethod
    def _renamed_fields(cls, data: Any) -> Any:
        if isinstance(data, dict) and "termination_wait_minutes" in data:
            raise ValueError(
                "termination_wait_minutes was the CodeDeploy setting; blue/green now runs on "
                "ECS itself, which keeps the old tasks for bake_minutes: rename the field to "
                "bake_minutes"
            )
        return data

    @field_validator("container_user")
    @classmethod
    def _not_root(cls, value: str) -> str:
        user = value.split(":", 1)[0]
        if user in {"0", "root"}:
            raise ValueError(
                f"container_user must not be root, got {value!r}; use a uid such as 1000:1000"
            )
        return value

    @field_validator("writable_paths")
    @classmethod
    def _writable_paths(cls, value: list[str]) -> list[str]:
        for path in value:
            parts = path.strip("/").split("/")
            if path == "/" or ".." in parts or "." in parts:
                raise ValueError(
                    f"writable_paths entries must be absolute directories below /, got {path!r}"
                )
        if len(set(value)) != len(value):
            raise ValueError(f"writable_paths must not repeat, got {value}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> EnvironmentConfig:
        allowed = FARGATE_SIZES.get(self.cpu)
        if allowed is None:
            raise ValueError(
                f"cpu must be one of {sorted(FARGATE_SIZES)} Fargate CPU units, got {self.cpu}"
            )
        if self.memory not in allowed:
            raise ValueError(
                f"memory {self.memory} MiB is not offered by Fargate with cpu {self.cpu}; "
                f"choose one of {_ranges(allowed)}"
            )
        if self.min_capacity > self.max_capacity:
            raise ValueError(
                f"min_capacity ({self.min_capacity}) must not exceed max_capacity "
                f"({self.max_capacity})"
            )
        if not self.min_capacity <= self.desired_count <= self.max_capacity:
            raise ValueError(
                f"desired_count ({self.desired_count}) must lie between min_capacity "
                f"({self.min_capacity}) and max_capacity ({self.max_capacity})"
            )
        if self.certificate_arn and not self.domain_name:
            raise ValueError(
                "certificate_arn needs domain_name: the DNS name the certificate covers and "
                "that points at the load balancer (validation cannot check TLS against the "
                "load balancer's own name)"
            )
        if self.hosted_zone_id and not self.domain_name:
            raise ValueError(
                "hosted_zone_id needs domain_name: the name (in that zone) to certify and point "
                "at the load balancer"
            )
        if self.domain_name and not self.serves_https:
            raise ValueError(
                "domain_name is used with certificate_arn or hosted_zone_id only; add one of "
                "them or remove domain_name"
            )
        if self.serves_https and self.listener_port == 443:
            raise ValueError(
                "listener_port 443 is taken by the HTTPS listener; listener_port is the HTTP "
                "port that redirects to it (use 80)"
            )
        if self.deployment is DeploymentType.ROLLING:
            if self.traffic_shifting is not None:
                raise ValueError(
                    "traffic_shifting applies to deployment: blue_green only; "
                    "remove it or set deployment: blue_green"
                )
            if self.test_listener_port is not None:
                raise ValueError("test_listener_port applies to deployment: blue_green only")
            if self.test_listener_cidrs:
                raise ValueError("test_listener_cidrs applies to deployment: blue_green only")
            if self.bake_minutes is not None:
                raise ValueError("bake_minutes applies to deployment: blue_green only")
        else:
            port = self.effective_test_listener_port
            if port == self.listener_port:
                raise ValueError(
                    f"blue_green needs a second listener: test_listener_port ({port}) must "
                    f"differ from listener_port ({self.listener_port})"
                )
            if self.serves_https and port == 443:
                raise ValueError("test_listener_port 443 is taken by the HTTPS listener")
        if self.network.mode is NetworkMode.ENDPOINTS and not (
            self.placeholder_image.startswith("public.ecr.aws/")
            or re.match(r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com/", self.placeholder_image)
        ):
            raise ValueError(
                "network mode endpoints has no route to the internet: placeholder_image must "
                "be on public.ecr.aws (pulled through an ECR pull-through cache) or in your "
                f"private ECR, got {self.placeholder_image!r}"
            )
        if self.serves_https == self.plain_http:
            raise ValueError(
                "plain_http: true contradicts the certificate of certificate_arn or "
                "hosted_zone_id; remove it"
                if self.plain_http
                else "the environment has no certificate: give domain_name with hosted_zone_id "
                "(deployline creates the certificate) or with certificate_arn to serve HTTPS, "
                "or set plain_http: true to serve plain HTTP"
            )
        return self

    @property
    def serves_https(self) -> bool:
        """Whether the listeners serve HTTPS (a certificate given or created)."""
        return self.certificate_arn is not None or self.hosted_zone_id is not None

    @property
    def effective_test_listener_port(self) -> int:
        return self.test_listener_port if self.test_listener_port is not None else 8080


class NotificationsConfig(_Model):
    emails: list[Email] = Field(default_factory=list)
    sns_topic_arn: SnsArn | None = Field(
        default=None, description="An existing topic that also receives every alert."
    )
    https_endpoint: (
        Annotated[str, _pattern(re.compile(r"^https://[^\s/$.?#].[^\s]*$"), "an https:// URL")]
        | None
    ) = None
    max_execution_minutes: int = Field(
        default=60, ge=5, le=1440, description="An execution running longer is 'stuck'."
    )


class NamingConfig(_Model):
    prefix: Annotated[str, _kebab(12)] | None = Field(
        default=None, description="Prepended to every physical name, e.g. your organisation."
    )
    pipeline_environment: EnvName = Field(
        default="shared",
        description="The {env} part of names for resources the pipeline itself owns.",
    )


class PipelineConfig(_Model):
    account: Account | None = Field(
        default=None,
        description="The account the pipeline itself (and its image repository) lives in. "
        "Required when an environment names another account or region. Default: the account "
        "you deploy the pipeline stack with (templates stay environment-agnostic).",
    )
    region: Region | None = Field(
        default=None,
        description="The pipeline's region. Required with account. Default: the region you "
        "deploy the pipeline stack to.",
    )
    bootstrap_qualifier: Annotated[
        str, _pattern(re.compile(r"^[a-z0-9]{1,10}$"), "a CDK bootstrap qualifier like hnb659fds")
    ] = Field(
        default=DEFAULT_BOOTSTRAP_QUALIFIER,
        description="The `--qualifier` every account was bootstrapped with; the pipeline "
        "deploys through the roles `cdk bootstrap` made with it. Default: hnb659fds.",
    )
    deployline_requirement: str = Field(
        default_factory=lambda: f"deployline=={_version()}",
        min_length=1,
        max_length=500,
        pattern=r"^[^\s]+$",
        description="What the pipeline's synth step installs with pip to synthesize this file "
        "(a pinned version, a wheel URL or a git URL). Default: the deployline that wrote the "
        "pipeline.",
    )
    execution_mode: Literal["queued", "superseded"] = Field(
        default="queued",
        description="queued: every execution runs to its end, in order, so each change that "
        "reaches production was validated in staging and approved as itself. superseded: a "
        "newer execution replaces one waiting between stages. Default: queued.",
    )
    artifact_expiry_days: int = Field(default=30, ge=1, le=3650)
    noncurrent_expiry_days: int = Field(default=7, ge=1, le=3650)
    ecr_keep_images: int = Field(default=20, ge=1, le=1000)
    log_retention_days: LogRetentionDays = 30


class Suppression(_Model):
    id: Annotated[str, _pattern(_RULE_ID, "a rule ID like DL305")]
    reason: str = Field(min_length=10, description="Why the finding is accepted.")
    resource: str | None = Field(default=None, description="Logical ID; default: every resource.")


class ChecksConfig(_Model):
    severity_threshold: Severity = Severity.HIGH
    suppress: list[Suppression] = Field(default_factory=list)


class DeploylineConfig(_Model):
    service: ServiceName
    project: Annotated[str, _kebab(32)]
    owner: str | None = Field(default=None, max_length=256)
    source: Source
    build: BuildConfig = Field(default_factory=BuildConfig)
    test: TestConfig = Field(default_factory=TestConfig)
    security: SecurityConfig = Field(default_factory=SecurityConfig)
    environments: list[EnvironmentConfig] = Field(min_length=1, max_length=10)
    notifications: NotificationsConfig = Field(default_factory=NotificationsConfig)
    naming: NamingConfig = Field(default_factory=NamingConfig)
    tags: dict[TagKey, TagValue] = Field(default_factory=dict)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    checks: ChecksConfig = Field(default_factory=ChecksConfig)

    @field_validator("environments")
    @classmethod
    def _unique_envs(cls, envs: list[EnvironmentConfig]) -> list[EnvironmentConfig]:
        seen: set[str] = set()
        for env in envs:
            if env.name in seen:
                raise ValueError(f"environment names must be unique; {env.name!r} appears twice")
            if env.name in RESERVED_ENV_NAMES:
                raise ValueError(
                    f"environment name {env.name!r} is reserved for the pipeline's own resources"
                )
            seen.add(env.name)
        return envs

    @field_validator("tags")
    @classmethod
    def _no_reserved_tags(cls, tags: dict[str, str]) -> dict[str, str]:
        clash = sorted({"Environment", "Project", "ManagedBy", "Service"} & set(tags))
        if clash:
            raise ValueError(f"tags {clash} are set by deployline; remove them from tags")
        bad = [k for k in tags if k.lower().startswith("aws:")]
        if bad:
            raise ValueError(f"tag keys may not start with 'aws:', got {bad}")
        return tags

    @model_validator(mode="after")
    def _pipeline_env_distinct(self) -> DeploylineConfig:
        if any(e.name == self.naming.pipeline_environment for e in self.environments):
            raise ValueError(
                f"naming.pipeline_environment ({self.naming.pipeline_environment!r}) must differ "
                "from every environment name"
            )
        return self

    @model_validator(mode="after")
    def _accounts_and_regions(self) -> DeploylineConfig:
        pipeline = self.pipeline
        if (pipeline.account is None) != (pipeline.region is None):
            raise ValueError(
                "pipeline.account and pipeline.region go together: give both (the pipeline's "
                "home) or neither (environment-agnostic templates, one account)"
            )
        placed = [e.name for e in self.environments if e.account or e.region]
        if placed and pipeline.account is None:
            raise ValueError(
                f"environments {placed} name an account or region, so the pipeline must know "
                "its own: set pipeline.account and pipeline.region (the tooling account that "
                "holds the pipeline and its image repository)"
            )
        for env in self.environments:
            if (
                env.network.mode is NetworkMode.ENDPOINTS
                and pipeline.region is not None
                and self.region_of(env) != pipeline.region
            ):
                raise ValueError(
                    f"environment {env.name} runs in network mode endpoints in "
                    f"{self.region_of(env)}, but the image repository is in {pipeline.region}: "
                    "VPC endpoints reach ECR only in their own region. Use network mode private "
                    "for it, or run it in the pipeline's region"
                )
        return self

    # ---- derived views ------------------------------------------------------------------

    def is_production(self, env: EnvironmentConfig) -> bool:
        if env.production is not None:
            return env.production
        if env.name in {"prod", "production", "prd"}:
            return True
        return len(self.environments) > 1 and env is self.environments[-1]

    def traffic_shifting(self, env: EnvironmentConfig) -> TrafficShifting:
        if env.traffic_shifting is not None:
            return env.traffic_shifting
        if self.is_production(env):
            return TrafficShifting.CANARY_10_PERCENT_5_MINUTES
        return TrafficShifting.ALL_AT_ONCE

    def bake_minutes(self, env: EnvironmentConfig) -> int:
        """How long a blue/green deployment keeps the old tasks after the traffic shift."""
        if env.bake_minutes is not None:
            return env.bake_minutes
        return 10 if self.is_production(env) else 0

    def account_of(self, env: EnvironmentConfig) -> str | None:
        """The environment's account: its own, else the pipeline's (None: agnostic)."""
        return env.account or self.pipeline.account

    def region_of(self, env: EnvironmentConfig) -> str | None:
        """The environment's region: its own, else the pipeline's (None: agnostic)."""
        return env.region or self.pipeline.region

    @property
    def is_environment_agnostic(self) -> bool:
        """True when no account or region is named: every template works in any account."""
        return self.pipeline.account is None

    def destroy_on_delete(self, env: EnvironmentConfig) -> bool:
        if env.destroy_on_delete is not None:
            return env.destroy_on_delete
        return not self.is_production(env)

    def waf(self, env: EnvironmentConfig) -> bool:
        """Whether a WAF web ACL guards the environment's load balancer."""
        return env.waf if env.waf is not None else self.is_production(env)

    def alarm_topic_arn(self, env: EnvironmentConfig) -> str | None:
        """notifications.sns_topic_arn when the environment's alarms can notify it: CloudWatch
        alarms publish to topics of their own account and region only, the pipeline's."""
        same_place = (self.account_of(env), self.region_of(env)) == (
            self.pipeline.account,
            self.pipeline.region,
        )
        return self.notifications.sns_topic_arn if same_place else None

    def warnings(self) -> list[str]:
        """Valid settings that will still surprise at deploy time, one sentence each with the fix.

        Plain HTTP (`plain_http`): traffic crosses the internet unencrypted. Alarms that notify
        nobody: no notifications at all, or only sns_topic_arn, which an environment elsewhere
        cannot reach. A blue/green test listener open to the whole internet: anyone can reach
        the new tasks before production traffic moves to them, which is rarely meant.
        """
        out: list[str] = []
        alerts = self.notifications
        for index, env in enumerate(self.environments):
            if env.plain_http:
                out.append(
                    f"environments[{index}].plain_http: {env.name!r} serves plain HTTP, so "
                    "requests and responses, and any credentials or card data in them, cross "
                    "the internet unencrypted. Give domain_name with hosted_zone_id (deployline "
                    "creates and ACM renews the certificate) or with certificate_arn to serve "
                    "HTTPS."
                )
            if alerts.sns_topic_arn and not (
                alerts.emails or alerts.https_endpoint or self.alarm_topic_arn(env)
            ):
                out.append(
                    f"environments[{index}]: the alarms of {env.name!r} notify nobody: it runs "
                    "in another account or region than notifications.sns_topic_arn, and "
                    "CloudWatch alarms publish only to topics of their own account and region. "
                    "Add notifications.emails or https_endpoint: each environment subscribes "
                    "them to a topic of its own."
                )
            if "0.0.0.0/0" in env.test_listener_cidrs:
                out.append(
                    f"environments[{index}].test_listener_cidrs: the test listener of "
                    f"{env.name!r} is open to 0.0.0.0/0, so anyone can reach the new tasks "
                    "before production traffic moves to them. The deployment's validation hook "
                    "does not need it (it reads the load balancer's health checks); admit only "
                    "the CIDRs of the people who test by hand."
                )
        if not (alerts.emails or alerts.https_endpoint or alerts.sns_topic_arn):
            out.append(
                "notifications: nobody is told when the pipeline fails, an approval waits or an "
                "environment's alarm fires. Add notifications.emails, https_endpoint or "
                "sns_topic_arn."
            )
        return out

    def environment(self, name: str) -> EnvironmentConfig:
        for env in self.environments:
            if env.name == name:
                return env
        raise KeyError(name)


def _version() -> str:
    from deployline import __version__

    return __version__


def _ranges(values: Sequence[int]) -> str:
    if len(values) <= 4:
        return ", ".join(str(v) for v in values)
    step = values[1] - values[0]
    return f"{values[0]} to {values[-1]} in steps of {step}"


# --------------------------------------------------------------------------------------------
# Loading, with line numbers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class ConfigError(Exception):
    """One or more problems in a deployline.yaml; `str()` lists them all, one per line."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    return yaml


def _field_path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def _line_of(tree: Any, loc: Sequence[int | str]) -> int | None:
    """1-based line of the deepest node of `loc` that exists in the ruamel tree."""
    node, line = tree, None
    if isinstance(tree, CommentedMap | CommentedSeq):
        line = tree.lc.line + 1
    for part in loc:
        if isinstance(node, CommentedMap) and isinstance(part, str) and part in node:
            line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    return line


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# Pydantic's own loc adds the discriminator tag (e.g. 'github') as a path element; drop it.
_UNION_TAGS = {t.value for t in SourceType}


def _clean_loc(loc: Sequence[int | str]) -> list[int | str]:
    out: list[int | str] = []
    for i, part in enumerate(loc):
        if i == 1 and loc[0] == "source" and part in _UNION_TAGS:
            continue
        if isinstance(part, str) and ("[" in part or part.startswith("function-")):
            continue
        out.append(part)
    return out


def _message(err: Any, value_present: bool) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    found = _describe(err.get("input"))
    if kind == "missing":
        return "is required but missing"
    if kind == "extra_forbidden":
        return "is not a known field (check the spelling; `deployline schema` lists every field)"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    if kind == "literal_error":
        return f"expected one of {ctx.get('expected')}, found {found}"
    if kind == "enum":
        return f"expected one of {ctx.get('expected')}, found {found}"
    if kind == "union_tag_invalid":
        return f"expected one of {ctx.get('expected_tags')}, found {ctx.get('tag')!r}"
    if kind == "union_tag_not_found":
        return f"needs a '{ctx.get('discriminator', 'type').strip(chr(39))}' field"
    if kind in {"int_type", "int_parsing", "int_from_float"}:
        return f"expected a whole number, found {found}"
    if kind in {"float_type", "float_parsing"}:
        return f"expected a number, found {found}"
    if kind in {"bool_type", "bool_parsing"}:
        return f"expected true or false, found {found}"
    if kind == "string_type":
        return f"expected text, found {found}"
    if kind in {"list_type"}:
        return f"expected a list, found {found}"
    if kind in {"dict_type", "model_type", "model_attributes_type"}:
        return f"expected a mapping of fields, found {found}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}, found {found}"
    if kind == "greater_than":
        return f"must be greater than {ctx.get('gt')}, found {found}"
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le')}, found {found}"
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length')} item(s), found {ctx.get('actual_length')}"
    if kind == "too_long":
        return f"allows at most {ctx.get('max_length')} item(s), found {ctx.get('actual_length')}"
    if kind == "string_too_short":
        return f"must be at least {ctx.get('min_length')} characters, found {found}"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters, found {found}"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx.get('pattern')}, found {found}"
    return f"{err['msg']}, found {found}"


def _plain(node: Any) -> Any:
    """ruamel round-trip objects -> plain Python (keeps scalars' Python types)."""
    if isinstance(node, dict):
        return {str(k) if not isinstance(k, str) else k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, bool | int | float) or node is None:
        return node if not isinstance(node, int) or isinstance(node, bool) else int(node)
    if isinstance(node, str):
        return str(node)
    # dates, timestamps and other YAML scalars: hand them to pydantic as text
    return str(node)


def parse_config_text(text: str, filename: str = CONFIG_FILENAME) -> DeploylineConfig:
    """Validate YAML text; raises ConfigError listing every problem with its line."""
    try:
        tree = _yaml().load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(
            [ConfigProblem(filename, line, "", f"YAML syntax error: {what}")]
        ) from None
    except Exception as exc:  # ruamel raises a few non-marked errors (e.g. duplicate keys)
        raise ConfigError([ConfigProblem(filename, None, "", f"YAML error: {exc}")]) from None
    if tree is None:
        raise ConfigError(
            [
                ConfigProblem(
                    filename, 1, "", "the file is empty; run `deployline init` to start one"
                )
            ]
        )
    if not isinstance(tree, CommentedMap):
        raise ConfigError(
            [
                ConfigProblem(
                    filename,
                    1,
                    "",
                    f"expected a mapping of fields at the top level, found {_describe(_plain(tree))}",
                )
            ]
        )
    data = _plain(tree)
    try:
        return DeploylineConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = _clean_loc(err["loc"])
            problems.append(
                ConfigProblem(
                    filename,
                    _line_of(tree, loc),
                    _field_path(loc),
                    _message(err, value_present=err["type"] != "missing"),
                )
            )
        raise ConfigError(_dedupe(problems)) from None


def _dedupe(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    seen: set[tuple[Any, ...]] = set()
    out = []
    for p in problems:
        key = (p.line, p.field, p.message)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def load_config(path: str | Path) -> DeploylineConfig:
    """Read and validate a deployline.yaml. Raises ConfigError (never a traceback-worthy error)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            [
                ConfigProblem(
                    str(p), None, "", "file not found; run `deployline init` to write a starter"
                )
            ]
        ) from None
    except IsADirectoryError:
        raise ConfigError([ConfigProblem(str(p), None, "", "is a directory, not a file")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [ConfigProblem(str(p), None, "", f"is not UTF-8 text ({exc.reason})")]
        ) from None
    except OSError as exc:
        raise ConfigError(
            [ConfigProblem(str(p), None, "", f"cannot be read: {exc.strerror}")]
        ) from None
    return parse_config_text(text, str(p))


def json_schema() -> dict[str, Any]:
    schema = DeploylineConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "deployline.yaml"
    return schema
