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
from typing import Annotated, Any, Literal, NoReturn

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from deployline.checks.settings import CHECKS_JSON_SCHEMA, ChecksConfig, read_checks
from deployline.contract import DEFAULT_BOOTSTRAP_QUALIFIER, FARGATE_SIZES, NetworkMode, Severity
from deployline.naming import REQUIRED_TAG_KEYS

CONFIG_FILENAME = "deployline.yaml"

# --------------------------------------------------------------------------------------------
# Reusable constrained types
#
# Every constraint on a single value is a `Field(pattern=..., max_length=...)`, so the JSON Schema
# (`deployline schema`) carries it too and an editor refuses what `validate` refuses. Patterns are
# ECMA-262 compatible (the schema's dialect) and run under Python's `re` (the model's
# `regex_engine`): ASCII classes such as `[0-9]` wherever AWS means ASCII, never `\d`, which
# accepts any Unicode digit. `_EXPECTED` says in words what each pattern means, for the errors.
# --------------------------------------------------------------------------------------------

_EXPECTED: dict[str, str] = {}


def _matching(pattern: str, expected: str, **constraints: Any) -> Any:
    """A string constraint carried by validation and by the JSON Schema alike; `expected` is how
    an error describes a value that does not match ("expected <expected>, found 'x'")."""
    _EXPECTED[pattern] = expected
    return Field(pattern=pattern, **constraints)


_KEBAB = r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$"
_KEBAB_WORDS = "lowercase kebab-case (letters, digits and single hyphens, starting with a letter)"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_ACCOUNT_ID = r"[0-9]{12}"
_PARTITION = r"arn:aws[a-z-]*"
_REGION_NAME = r"[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-[0-9]"

RESERVED_ENV_NAMES = {"shared"}  # used for the pipeline's own resources (see naming.py)


def _kebab(max_length: int) -> Any:
    return _matching(_KEBAB, _KEBAB_WORDS, max_length=max_length)


ServiceName = Annotated[str, _kebab(28)]
EnvName = Annotated[str, _kebab(12)]
Email = Annotated[
    str,
    _matching(
        r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$",
        "an e-mail address like team@example.com",
        max_length=254,
    ),
]
ConnectionArn = Annotated[
    str,
    _matching(
        rf"^{_PARTITION}:(?:codestar-connections|codeconnections):[a-z0-9-]+:{_ACCOUNT_ID}"
        r":connection/[0-9a-f-]{36}$",
        "a CodeStar connection ARN like "
        "arn:aws:codestar-connections:<region>:<account>:connection/<uuid>",
    ),
]
SnsArn = Annotated[
    str,
    _matching(
        rf"^{_PARTITION}:sns:[a-z0-9-]+:{_ACCOUNT_ID}:[A-Za-z0-9_-]{{1,256}}$",
        "an SNS topic ARN like arn:aws:sns:<region>:<account>:name",
    ),
]
CertificateArn = Annotated[
    str,
    _matching(
        rf"^{_PARTITION}:acm:[a-z0-9-]+:{_ACCOUNT_ID}:certificate/[0-9a-f-]{{36}}$",
        "an ACM certificate ARN like arn:aws:acm:<region>:<account>:certificate/<uuid>",
    ),
]
SsmName = Annotated[
    str, _matching(r"^/[A-Za-z0-9_.\-/]{1,1010}$", "an SSM parameter name starting with '/'")
]
Region = Annotated[str, _matching(rf"^{_REGION_NAME}$", "an AWS region name like eu-west-1")]
Account = Annotated[
    str, _matching(rf"^{_ACCOUNT_ID}$", "a 12-digit AWS account ID (ASCII digits 0-9)")
]
Cidr = Annotated[
    str,
    _matching(
        rf"^{_IPV4}/(?:3[0-2]|[12]?[0-9])$",
        "an IPv4 CIDR block like 10.0.0.0/16 (four numbers 0-255, no leading zeros, /0 to /32)",
    ),
]
VpcCidr = Annotated[
    str,
    _matching(
        rf"^{_IPV4}/(?:1[6-9]|2[0-8])$",
        "a VPC CIDR block from /16 to /28 like 10.0.0.0/16 (AWS takes no larger and no smaller "
        "VPC)",
    ),
]
#: AWS tag keys and values: letters and digits in any script, spaces and + - = . _ : / @.
TagKey = Annotated[
    str,
    _matching(
        r"^[\w .:/=+\-@]+$",
        "a tag key of letters, digits, spaces and + - = . _ : / @",
        min_length=1,
        max_length=128,
    ),
]
TagValue = Annotated[
    str,
    _matching(
        r"^[\w .:/=+\-@]*$",
        "a tag value of letters, digits, spaces and + - = . _ : / @",
        max_length=256,
    ),
]
#: A git branch as `git check-ref-format --branch` takes it: no control characters, spaces or
#: `~ ^ : ? * [ \`, no `..`, `@{` or `//`, no part starting with `.` or ending with `.lock`, not
#: starting with `-` or `/`, not ending with `/` or `.`.
GitBranch = Annotated[
    str,
    _matching(
        r"^(?![-/.])(?!@$)(?!.*(?:\.\.|@\{|//|/\.|\.lock/|\.lock$|[/.]$))"
        r"[^\x00-\x20\x7f~^:?*\[\\]+$",
        "a git branch name like main or release/2.1 (no spaces, control characters or "
        "~ ^ : ? * [ \\, no '..', not starting with '-', '/' or '.')",
        min_length=1,
        max_length=255,
    ),
]
#: A CodePipeline trigger file-path glob (at most 8 of them, each 1-255 characters).
PathGlob = Annotated[str, Field(min_length=1, max_length=255)]
MAX_PATH_GLOBS = 8


#: The retention periods CloudWatch Logs accepts, in days.
LogRetentionDays = Literal[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
]  # fmt: skip


Located = tuple[tuple[int | str, ...], str]


class FieldProblems(ValueError):
    """Problems a model validator found in fields below it, each with its own place (a path
    relative to the model), so an error names the field and its line rather than the section."""

    def __init__(self, problems: Sequence[Located]) -> None:
        self.problems = list(problems)
        super().__init__(
            "; ".join(f"{_field_path(loc)}: {why}" if loc else why for loc, why in self.problems)
        )


def _refuse(problems: Sequence[Located]) -> None:
    if problems:
        raise FieldProblems(problems)


def _refuse_at(loc: tuple[int | str, ...], message: str) -> NoReturn:
    """Refuse one field (a path below the model) with `message`."""
    raise FieldProblems([(loc, message)])


class _Model(BaseModel):
    """Every section forbids unknown keys, so a typo is an error rather than a silent default."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, regex_engine="python-re"
    )


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


class SourceType(StrEnum):
    GITHUB = "github"
    S3 = "s3"
    CODECOMMIT = "codecommit"


class GitHubSource(_Model):
    """A repository reached through a CodeStar (CodeConnections) connection, never a token."""

    type: Literal["github"]
    repository: Annotated[
        str, _matching(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", "'owner/name'", max_length=200)
    ] = Field(description="Repository as owner/name.")
    branch: GitBranch = Field(default="main", description="The branch that starts the pipeline.")
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
    paths: list[PathGlob] = Field(
        default_factory=list,
        max_length=MAX_PATH_GLOBS,
        description="File path globs; only pushes that touch them start the pipeline "
        "(monorepos). At most 8 (a CodePipeline trigger limit), each 1-255 characters.",
    )
    exclude_paths: list[PathGlob] = Field(
        default_factory=list,
        max_length=MAX_PATH_GLOBS,
        description="File path globs whose changes alone do not start the pipeline. At most 8, "
        "each 1-255 characters.",
    )
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
        Annotated[str, _matching(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", "an S3 bucket name")] | None
    ) = Field(
        default=None,
        description="Existing versioned bucket. Default: deployline creates a versioned, "
        "encrypted source bucket.",
    )
    key: Annotated[
        str,
        _matching(
            r"^[^\s*?/][^\s*?]*$",
            "an S3 object key like source.zip (no spaces, wildcards or leading '/')",
            max_length=1024,
        ),
    ] = Field(default="source.zip", description="The object whose new versions start the pipeline.")


class CodeCommitSource(_Model):
    type: Literal["codecommit"]
    repository: Annotated[
        str, _matching(r"^[A-Za-z0-9_.-]{1,100}$", "a CodeCommit repository name")
    ]
    branch: GitBranch = Field(default="main", description="The branch that starts the pipeline.")
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


Scanner = Literal["bandit", "pip-audit", "trivy"]
_SCANNERS: list[Scanner] = ["bandit", "pip-audit", "trivy"]


class SecurityConfig(_Model):
    scanners: list[Scanner] = Field(default_factory=lambda: list(_SCANNERS), min_length=1)
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


SubnetId = Annotated[str, _matching(r"^subnet-[0-9a-f]{8,17}$", "a subnet ID like subnet-0abc1234")]


class NetworkConfig(_Model):
    """Where the service runs. Default: a new VPC over 2 AZs, tasks in public subnets, no NAT.

    mode public: tasks in public subnets with a public IP, reachable only from the load balancer
    (the cheapest: no NAT gateway, no endpoint). mode private: tasks in private subnets behind
    NAT gateways. mode endpoints: tasks in isolated subnets without any route to the internet;
    they reach ECR, S3 and CloudWatch Logs (and extra_endpoints) through VPC endpoints, which
    deployline creates in a new VPC and an existing VPC (vpc_id) must already have.
    """

    mode: NetworkMode = NetworkMode.PUBLIC
    vpc_id: (
        Annotated[str, _matching(r"^vpc-[0-9a-f]{8,17}$", "a VPC ID like vpc-0abc1234")] | None
    ) = None
    vpc_cidr: VpcCidr = Field(
        default="10.0.0.0/16",
        description="CIDR of the new VPC (or of the existing one, with vpc_id), /16 to /28. A new "
        "VPC splits it evenly into one subnet per zone and subnet group, each at least a /28. "
        "Default: 10.0.0.0/16.",
    )
    availability_zones: list[
        Annotated[str, _matching(rf"^{_REGION_NAME}[a-z]$", "an availability zone like eu-west-1a")]
    ] = Field(
        default_factory=list,
        description="Required with vpc_id (synth runs offline and cannot look them up).",
    )
    public_subnet_ids: list[SubnetId] = Field(default_factory=list, max_length=6)
    private_subnet_ids: list[SubnetId] = Field(default_factory=list, max_length=6)
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
    def _subnets_fit(self) -> NetworkConfig:
        """A new VPC is split evenly into max_azs subnets per group (aws-cdk-lib's
        `IpAddresses.cidr`), and CDK and EC2 take subnets from /16 to /28 only."""
        if self.vpc_id is not None:
            return self
        groups = 1 if self.mode is NetworkMode.PUBLIC else 2
        count = groups * self.max_azs
        prefix = int(self.vpc_cidr.rsplit("/", 1)[1])
        mask = 32 - ((2 ** (32 - prefix)) // count).bit_length() + 1
        if mask > 28:
            widest = 32 - (16 * count - 1).bit_length()
            _refuse_at(
                ("vpc_cidr",),
                f"{self.vpc_cidr} split into {count} subnets ({self.max_azs} zones x "
                f"{groups} subnet group{'s' if groups > 1 else ''} in mode "
                f"{self.mode.value}) leaves /{mask} subnets, and a subnet must be /28 or "
                f"larger: use a /{widest} or larger vpc_cidr, or fewer max_azs",
            )
        return self

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


#: Fargate CPU units; the JSON Schema lists them, validate names the field with the choices.
FargateCpu = Annotated[int, Field(json_schema_extra={"enum": sorted(FARGATE_SIZES)})]
#: Fargate memory sizes (MiB); which of them a cpu takes is checked with the cpu.
FargateMemory = Annotated[
    int,
    Field(
        json_schema_extra={
            "enum": sorted({m for sizes in FARGATE_SIZES.values() for m in sizes}),
        }
    ),
]

#: Inbound rules a security group holds (the default EC2 quota "Inbound or outbound rules per
#: security group"); the load balancer's group needs one per CIDR and port.
MAX_INGRESS_RULES = 60


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
    cpu: FargateCpu = Field(default=256, description="Fargate CPU units: 256, 512, 1024, ...")
    memory: FargateMemory = Field(
        default=512, description="MiB, a size Fargate offers for the cpu."
    )
    container_port: int = Field(default=8080, ge=1, le=65535)
    health_check_path: Annotated[
        str,
        _matching(
            r"^/[A-Za-z0-9_\-./~%]*$",
            "a URL path starting with '/' of ASCII letters, digits and _ - . / ~ %",
            max_length=1024,
        ),
    ] = Field(
        default="/health",
        description="What the load balancer and the container health check request; at most "
        "1,024 characters (the load balancer's limit). Default: /health.",
    )
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
    ingress_cidrs: list[Cidr] = Field(
        default_factory=lambda: ["0.0.0.0/0"],
        min_length=1,
        max_length=MAX_INGRESS_RULES,
        description="Who may reach the listeners. Each CIDR is one security group rule per port "
        "(the HTTP port, and 443 with certificate_arn); with test_listener_cidrs they must fit "
        "in the 60 inbound rules a security group holds. Default: 0.0.0.0/0.",
    )
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
            str,
            _matching(r"^Z[A-Z0-9]{1,31}$", "a Route 53 hosted zone ID like Z0123456789ABCDEFGHIJ"),
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
    container_user: Annotated[
        str,
        _matching(
            r"^(?!(?:0+|root)(?::|$))(?:[0-9]{1,10}|[a-z_][a-z0-9_-]{0,31})"
            r"(?::(?:[0-9]{1,10}|[a-z_][a-z0-9_-]{0,31}))?$",
            "a user other than root, as uid[:gid] or name[:group] like 1000:1000 (ASCII digits; "
            "root and uid 0 are refused)",
        ),
    ] = Field(
        default="1000:1000",
        description="uid[:gid] the container runs as; never root. Default: 1000:1000.",
    )
    read_only_root_filesystem: bool = True
    writable_paths: list[
        Annotated[
            str,
            _matching(
                r"^/[A-Za-z0-9_\-./]+$",
                "an absolute directory like /tmp (ASCII letters, digits and _ - . /)",
                max_length=255,
            ),
        ]
    ] = Field(
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

    @field_validator("ingress_cidrs", "test_listener_cidrs")
    @classmethod
    def _cidrs_once(cls, value: list[str]) -> list[str]:
        repeated = sorted({c for c in value if value.count(c) > 1})
        if repeated:
            raise ValueError(f"each CIDR once: {repeated} appear more than once")
        return value

    @model_validator(mode="after")
    def _security_group_fits(self) -> EnvironmentConfig:
        """The load balancer's security group gets one inbound rule per CIDR and listener port."""
        ports = [self.listener_port, 443] if self.serves_https else [self.listener_port]
        test = len(self.test_listener_cidrs) if self.deployment is DeploymentType.BLUE_GREEN else 0
        rules = len(self.ingress_cidrs) * len(ports) + test
        if rules > MAX_INGRESS_RULES:
            what = f"{len(self.ingress_cidrs)} ingress_cidrs x {len(ports)} port(s) {ports}"
            if test:
                what += f" + {test} test_listener_cidrs"
            _refuse_at(
                ("ingress_cidrs",),
                f"{what} make {rules} inbound rules in the load balancer's security "
                f"group, which holds {MAX_INGRESS_RULES}: list fewer, wider CIDRs",
            )
        return self

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
            _refuse_at(
                ("cpu",),
                f"cpu must be one of {sorted(FARGATE_SIZES)} Fargate CPU units, got {self.cpu}",
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
            or re.match(
                r"^[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com/", self.placeholder_image
            )
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
    emails: list[Email] = Field(
        default_factory=list,
        max_length=100,
        description="Who receives alerts and approval requests, each once.",
    )
    sns_topic_arn: SnsArn | None = Field(
        default=None, description="An existing topic that also receives every alert."
    )
    https_endpoint: (
        Annotated[
            str,
            _matching(
                r"^https://(?![^/?#\s]*@)[^\s/$.?#@][^\s]*$",
                "an https:// URL without user:password@ (the URL sits in the template in plain "
                "text: authenticate deployline's messages by their SNS signature instead)",
                max_length=2048,
            ),
        ]
        | None
    ) = Field(default=None, description="An HTTPS endpoint SNS posts every alert to.")
    max_execution_minutes: int = Field(
        default=60, ge=5, le=1440, description="An execution running longer is 'stuck'."
    )

    @field_validator("emails")
    @classmethod
    def _emails_once(cls, value: list[str]) -> list[str]:
        seen: dict[str, str] = {}
        for email in value:
            if email.lower() in seen:
                raise ValueError(
                    f"each e-mail once: {email!r} repeats {seen[email.lower()]!r} (SNS would "
                    "subscribe the mailbox twice); remove one"
                )
            seen[email.lower()] = email
        return value


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
        str, _matching(r"^[a-z0-9]{1,10}$", "a CDK bootstrap qualifier like hnb659fds")
    ] = Field(
        default=DEFAULT_BOOTSTRAP_QUALIFIER,
        description="The `--qualifier` every account was bootstrapped with; the pipeline "
        "deploys through the roles `cdk bootstrap` made with it. Default: hnb659fds.",
    )
    deployline_requirement: Annotated[
        str, _matching(r"^[^\s]+$", "one pip requirement without spaces", max_length=500)
    ] = Field(
        default_factory=lambda: f"deployline=={_version()}",
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

    @model_validator(mode="after")
    def _noncurrent_within_expiry(self) -> PipelineConfig:
        """What the artifact store refuses: old versions cannot outlive the objects."""
        if self.noncurrent_expiry_days > self.artifact_expiry_days:
            _refuse_at(
                ("noncurrent_expiry_days",),
                f"{self.noncurrent_expiry_days} days is longer than "
                f"artifact_expiry_days ({self.artifact_expiry_days}): replaced artifact "
                "versions cannot be kept longer than the artifacts; lower it or raise "
                "artifact_expiry_days",
            )
        return self


def _checks_section(value: Any) -> ChecksConfig:
    """`checks:` read by the checker's own reader (`deployline.checks.settings`), strictly: every
    problem it finds is refused at its place, so check, validate and synth give the section one
    meaning."""
    if isinstance(value, ChecksConfig):
        return value
    section = read_checks(value, strict=True)
    _refuse([(p.loc, p.message) for p in section.problems])
    return section


#: The checker's ChecksConfig as a field: validated by `_checks_section`, dumped as written,
#: described by the checker's CHECKS_JSON_SCHEMA.
ChecksSection = Annotated[
    ChecksConfig,
    PlainValidator(_checks_section),
    PlainSerializer(ChecksConfig.as_section),
    WithJsonSchema(CHECKS_JSON_SCHEMA),
]


#: The top-level sections that have defaults: empty means "the defaults".
_SECTIONS = frozenset(
    {"build", "test", "security", "notifications", "naming", "tags", "pipeline", "checks"}
)

#: Tags AWS lets a resource hold.
MAX_TAGS_PER_RESOURCE = 50
#: The tags aws-cdk-lib adds to every subnet of a new VPC beside the stack's own.
CDK_SUBNET_TAGS = ("Name", "aws-cdk:subnet-name", "aws-cdk:subnet-type")
#: User tags (Owner included) that still fit beside deployline's and CDK's.
MAX_USER_TAGS = MAX_TAGS_PER_RESOURCE - len(REQUIRED_TAG_KEYS) - len(CDK_SUBNET_TAGS)


class DeploylineConfig(_Model):
    service: ServiceName
    project: Annotated[str, _kebab(32)]
    owner: TagValue | None = Field(
        default=None,
        description="Who owns the service; the Owner tag of every resource, so a valid tag "
        "value (letters, digits, spaces and + - = . _ : / @, at most 256 characters).",
    )
    source: Source
    build: BuildConfig = Field(default_factory=BuildConfig)
    test: TestConfig = Field(default_factory=TestConfig)
    security: SecurityConfig = Field(default_factory=SecurityConfig)
    environments: list[EnvironmentConfig] = Field(min_length=1, max_length=10)
    notifications: NotificationsConfig = Field(default_factory=NotificationsConfig)
    naming: NamingConfig = Field(default_factory=NamingConfig)
    tags: dict[TagKey, TagValue] = Field(
        default_factory=dict,
        max_length=MAX_USER_TAGS,
        description="Added to every taggable resource. A resource holds 50 tags; deployline adds "
        "4 (Environment, Project, ManagedBy, Service) and CDK 3 to VPC subnets, so at most 43, "
        "Owner (from owner) included.",
    )
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    checks: ChecksSection = Field(default_factory=ChecksConfig)

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        """A section left empty (`checks:` with every line commented out) takes its defaults,
        as `deployline check` reads it."""
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not (v is None and k in _SECTIONS)}
        return data

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
        clash = sorted(set(REQUIRED_TAG_KEYS) & set(tags))
        if clash:
            raise ValueError(f"tags {clash} are set by deployline; remove them from tags")
        bad = [k for k in tags if k.lower().startswith("aws:")]
        if bad:
            raise ValueError(f"tag keys may not start with 'aws:', got {bad}")
        return tags

    @model_validator(mode="after")
    def _tags_fit(self) -> DeploylineConfig:
        owner = 1 if self.owner and "Owner" not in self.tags else 0
        if len(self.tags) + owner > MAX_USER_TAGS:
            _refuse_at(
                ("tags",),
                f"{len(self.tags)} tags{' and the Owner tag' if owner else ''} are more "
                f"than {MAX_USER_TAGS}: a resource holds {MAX_TAGS_PER_RESOURCE} tags, and "
                f"deployline adds {len(REQUIRED_TAG_KEYS)} of its own and CDK "
                f"{len(CDK_SUBNET_TAGS)} to each VPC subnet; remove some",
            )
        return self

    @model_validator(mode="after")
    def _approval_before_the_last(self) -> DeploylineConfig:
        """What the pipeline construct refuses (failure catalog DL405), found without synth."""
        envs = self.environments
        if len(envs) < 2 or envs[-1].approval or self.checks.file_wide("DL405"):
            return self
        last = envs[-1]
        _refuse_at(
            ("environments", len(envs) - 1, "approval"),
            f"{last.name!r} is the last of {len(envs)} environments, where releases reach "
            "production, and needs approval: true so that a person approves each one "
            "(failure catalog DL405); set approval: true, or accept DL405 in "
            "checks.suppress with a reason and no resource",
        )

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

    @model_validator(mode="after")
    def _certificates_beside_their_load_balancers(self) -> DeploylineConfig:
        """A load balancer uses ACM certificates of its own account and region only."""
        for index, env in enumerate(self.environments):
            if env.certificate_arn is None:
                continue
            _, _, _, region, account, _ = env.certificate_arn.split(":", 5)
            for what, theirs, ours in (
                ("region", region, self.region_of(env)),
                ("account", account, self.account_of(env)),
            ):
                if ours is not None and theirs != ours:
                    _refuse_at(
                        ("environments", index, "certificate_arn"),
                        f"the certificate is in {what} {theirs}, but {env.name!r} runs in "
                        f"{what} {ours}, and a load balancer uses certificates of its own "
                        f"account and region only; request or import the certificate for "
                        f"{env.domain_name or 'domain_name'} in {ours} (or give hosted_zone_id "
                        "instead and let deployline create it)",
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
    parser = YAML(typ="rt")
    parser.allow_duplicate_keys = False
    return parser


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


def _message(err: Any) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    found = _describe(err.get("input"))
    if kind == "missing":
        return "is required but missing"
    if kind == "extra_forbidden":
        return "is not a known field (check the spelling; `deployline schema` lists every field)"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern"))
        return f"expected {_EXPECTED.get(pattern, 'text matching ' + pattern)}, found {found}"
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


def _problems(exc: ValidationError, tree: Any, filename: str) -> list[ConfigProblem]:
    """Pydantic's errors as ConfigProblems with lines; FieldProblems spread to their fields."""
    problems = []
    for err in exc.errors(include_url=False):
        base = _clean_loc(err["loc"])
        error = (err.get("ctx") or {}).get("error")
        located = error.problems if isinstance(error, FieldProblems) else [((), "")]
        for below, why in located:
            loc = [*base, *below]
            problems.append(
                ConfigProblem(
                    filename,
                    _line_of(tree, loc),
                    _field_path(loc),
                    why or _message(err),
                )
            )
    return _dedupe(problems)


def parse_config_text(text: str, filename: str = CONFIG_FILENAME) -> DeploylineConfig:
    """Validate YAML text; raises ConfigError listing every problem with its line.

    The text is first measured (`_bounded`): at most MAX_CONFIG_BYTES, MAX_CONFIG_VALUES values
    with YAML aliases expanded, MAX_CONFIG_DEPTH levels; so a hostile file is refused in well
    under a second instead of hanging the round-trip parser or the validation.
    """
    _bounded(text, filename)
    try:
        tree = _yaml().load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = exc.problem or exc.context or "invalid YAML"
        raise _error(filename, line, f"YAML syntax error: {what}") from None
    except Exception as exc:  # ruamel raises a few non-marked errors (e.g. duplicate keys)
        raise _error(filename, None, f"YAML error: {exc}") from None
    if tree is None:
        raise _error(filename, 1, "the file is empty; run `deployline init` to start one")
    if not isinstance(tree, CommentedMap):
        found = _describe(_plain(tree))
        raise _error(filename, 1, f"expected a mapping of fields at the top level, found {found}")
    try:
        return DeploylineConfig.model_validate(_plain(tree))
    except ValidationError as exc:
        raise ConfigError(_problems(exc, tree, filename)) from None


def _error(filename: str, line: int | None, message: str) -> ConfigError:
    return ConfigError([ConfigProblem(filename, line, "", message)])


def _dedupe(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    seen: set[tuple[Any, ...]] = set()
    out = []
    for p in problems:
        key = (p.line, p.field, p.message)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


# --------------------------------------------------------------------------------------------
# Bounds: what a hostile file cannot make deployline do
# --------------------------------------------------------------------------------------------

#: The largest deployline.yaml read (bytes). A real one is a few kilobytes.
MAX_CONFIG_BYTES = 1_000_000
#: The most values (mappings, lists, keys and scalars) a file may hold once its YAML aliases
#: (`*name`) are expanded. The example holds about 150; ten large environments about 3,000.
MAX_CONFIG_VALUES = 10_000
#: The deepest nesting of mappings and lists (the schema itself is 5 levels deep).
MAX_CONFIG_DEPTH = 32

# libyaml's composer is C: it measures a megabyte in a fraction of a second, where ruamel's
# round-trip parser (kept for its line numbers) takes seconds and, on deep nesting, minutes.
_MEASURING_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _bounded(text: str, filename: str) -> None:
    """Raise ConfigError when `text` is too large, too deep, self-referencing or expands (YAML
    aliases) past MAX_CONFIG_VALUES; alias-heavy files that stay within the bounds are fine."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_CONFIG_BYTES:
        raise _error(filename, None, _too_large(size))
    try:
        root = yaml.compose(text, Loader=_MEASURING_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = exc.problem or exc.context or "invalid YAML"
        raise _error(filename, line, f"YAML syntax error: {what}") from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise _error(filename, None, f"YAML error: {exc}") from None
    if root is not None:
        _measure(root, filename)


def _too_large(size: int | None) -> str:
    how_big = f"is {size:,} bytes" if size else f"is larger than {MAX_CONFIG_BYTES:,} bytes"
    return (
        f"{how_big}; deployline reads at most {MAX_CONFIG_BYTES:,} (a deployline.yaml is a few "
        "kilobytes): check that this is the right file"
    )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _measure(root: yaml.Node, filename: str) -> None:
    """Walk the composed graph once per distinct node (aliases are shared nodes there), counting
    values as the expanded document would hold them."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        line = node.start_mark.line + 1
        if finished:
            open_nodes.discard(key)
            kids = _children(node)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            if size[key] > MAX_CONFIG_VALUES:
                raise _error(filename, line, _too_many(size[key], distinct=len(size)))
            if depth[key] > MAX_CONFIG_DEPTH:
                raise _error(
                    filename,
                    line,
                    f"nests more than {MAX_CONFIG_DEPTH} levels deep; deployline.yaml needs 6",
                )
            continue
        if key in size:
            continue
        if key in open_nodes:
            raise _error(
                filename,
                line,
                "a YAML alias refers to a value that contains it (a value cannot hold itself): "
                "write the value out",
            )
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((kid, False) for kid in _children(node) if id(kid) not in size)


def _too_many(count: int, *, distinct: int) -> str:
    if distinct <= MAX_CONFIG_VALUES:
        return (
            f"this value holds {count:,} values once its YAML aliases (*name) are expanded; "
            f"deployline reads at most {MAX_CONFIG_VALUES:,}: write the values out instead of "
            "nesting aliases"
        )
    return (
        f"the file holds more than {MAX_CONFIG_VALUES:,} values, and a deployline.yaml needs a "
        "few hundred: check that this is the right file"
    )


def load_config(path: str | Path) -> DeploylineConfig:
    """Read and validate a deployline.yaml. Raises ConfigError (never a traceback-worthy error).

    Reads at most MAX_CONFIG_BYTES (and one byte more, to know it is too large): a 10 MB file,
    or /dev/zero, is refused without being read.
    """
    p = Path(path)
    try:
        with p.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise _error(
            str(p), None, "file not found; run `deployline init` to write a starter"
        ) from None
    except IsADirectoryError:
        raise _error(str(p), None, "is a directory, not a file") from None
    except OSError as exc:
        raise _error(str(p), None, f"cannot be read: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise _error(str(p), None, _too_large(_size_of(p)))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _error(str(p), None, f"is not UTF-8 text ({exc.reason})") from None
    return parse_config_text(text, str(p))


def _size_of(path: Path) -> int | None:
    """The file's size, when it has one (not /dev/zero or a pipe)."""
    try:
        size = path.stat().st_size
    except OSError:
        return None
    return size if size > MAX_CONFIG_BYTES else None


class _SchemaGenerator(GenerateJsonSchema):
    """Pydantic's generator, except that a mapping whose keys have a pattern says so with
    `propertyNames` (pydantic writes `patternProperties`, which lets any other key through)."""

    def dict_schema(self, schema: core_schema.DictSchema) -> JsonSchemaValue:
        out = super().dict_schema(schema)
        patterns = out.pop("patternProperties", None)
        if patterns:
            ((pattern, values),) = patterns.items()
            out["propertyNames"] = {**out.get("propertyNames", {}), "pattern": pattern}
            out["additionalProperties"] = values
        return out


def json_schema() -> dict[str, Any]:
    """The JSON Schema of deployline.yaml: every constraint on a single value (patterns,
    lengths, ranges, choices); the rules that relate several values are `validate`'s."""
    schema = DeploylineConfig.model_json_schema(schema_generator=_SchemaGenerator)
    # contract.Severity's docstring speaks to Python readers; the fields describe it to users.
    schema["$defs"]["Severity"].pop("description", None)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "deployline.yaml"
    return schema
