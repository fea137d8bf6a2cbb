"""The names the layers share: severities, stack parameters and outputs, pipeline stages and
actions, roles.

A leaf module (standard library only): the stacks, the constructs, the runtime functions, the CLI
and the checker import these names instead of spelling them again. docs/delivery.md explains the
design they belong to.
"""

from __future__ import annotations

from enum import Enum, StrEnum
from typing import Final

# ---- severities --------------------------------------------------------------------------


class Severity(Enum):
    """How bad a finding is: LOW < MEDIUM < HIGH < CRITICAL (members compare by that order).

    The value is how deployline.yaml, the security gate and the deployment records spell it
    (`high`); the name is how the checker reports it (`HIGH`). Members are listed most severe
    first, the order `SEVERITIES` and the config's JSON schema keep.
    """

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @classmethod
    def parse(cls, value: str | Severity) -> Severity:
        """`value` in any case, blanks around it ignored; ValueError naming the choices."""
        if isinstance(value, Severity):
            return value
        try:
            return cls[str(value).strip().upper()]
        except KeyError:
            names = ", ".join(s.name for s in sorted(cls))
            raise ValueError(f"unknown severity {value!r}; expected one of {names}") from None

    @property
    def rank(self) -> int:
        """1 for LOW up to 4 for CRITICAL."""
        return _RANK[self]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank >= other.rank

    def __str__(self) -> str:
        return self.name


_RANK: Final = {severity: rank for rank, severity in enumerate(reversed(Severity), start=1)}
#: The severities as deployline.yaml and the runtime spell them, most severe first.
SEVERITIES: Final = tuple(severity.value for severity in Severity)

# ---- environment stacks ------------------------------------------------------------------

#: The stack parameter that carries the image tag the service runs. Empty: the placeholder image.
IMAGE_TAG_PARAMETER: Final = "ImageTag"
#: Outputs every environment stack has; validation and the CLI read them at run time.
OUTPUT_SERVICE_URL: Final = "ServiceUrl"
OUTPUT_CLUSTER_NAME: Final = "ClusterName"
OUTPUT_SERVICE_NAME: Final = "ServiceName"

# ---- pipeline stages and actions ---------------------------------------------------------

SOURCE_STAGE: Final = "Source"
BUILD_STAGE: Final = "Build"
TEST_STAGE: Final = "Test"
UPDATE_PIPELINE_STAGE: Final = "UpdatePipeline"
BUILD_ACTION: Final = "BuildImage"
SYNTH_ACTION: Final = "Synth"
UNIT_TESTS_ACTION: Final = "UnitTests"
SCAN_ACTION: Final = "SecurityScan"
GATE_ACTION: Final = "SecurityGate"
SELF_UPDATE_ACTION: Final = "SelfUpdate"
PLAN_ACTION: Final = "Plan"
CHANGE_SUMMARY_ACTION: Final = "ChangeSummary"
APPROVE_ACTION: Final = "Approve"
DEPLOY_ACTION: Final = "Deploy"
VALIDATE_ACTION: Final = "Validate"
#: The variable namespace of the image build (IMAGE_TAG, IMAGE_URI).
BUILD_NAMESPACE: Final = "BuildVariables"


def deploy_stage_name(environment: str) -> str:
    """The stage that deploys `environment`: `Deploy-<environment>`."""
    return f"Deploy-{environment}"


def approve_stage_name(environment: str) -> str:
    """The stage that plans and approves `environment`'s change: `Approve-<environment>`."""
    return f"Approve-{environment}"


# ---- the roles `cdk bootstrap` creates ----------------------------------------------------

#: The qualifier `cdk bootstrap` uses unless told otherwise (`--qualifier`).
DEFAULT_BOOTSTRAP_QUALIFIER: Final = "hnb659fds"


def bootstrap_role_name(kind: str, qualifier: str, account: str, region: str) -> str:
    """`cdk-<qualifier>-<kind>-role-<account>-<region>`, kind one of deploy, cfn-exec,
    file-publishing, image-publishing, lookup (the names the CDK bootstrap template gives)."""
    if kind not in BOOTSTRAP_ROLE_KINDS:
        raise ValueError(f"kind must be one of {sorted(BOOTSTRAP_ROLE_KINDS)}, got {kind!r}")
    return f"cdk-{qualifier}-{kind}-role-{account}-{region}"


BOOTSTRAP_ROLE_KINDS: Final = frozenset(
    {"deploy", "cfn-exec", "file-publishing", "image-publishing", "lookup"}
)


# ---- the image build's variables ----------------------------------------------------------

#: Environment variables of the image build (CodeBuild and `deployline run-local build`) and the
#: variables it exports: the repository it pushes to, the tag (the commit), the pushed image.
REPOSITORY_URI: Final = "REPOSITORY_URI"
IMAGE_TAG: Final = "IMAGE_TAG"
IMAGE_URI: Final = "IMAGE_URI"


# ---- where and how big the service runs ---------------------------------------------------


#: Where the tasks run: public subnets, private subnets behind NAT, or isolated subnets with
#: VPC endpoints (deployline.yaml's `network.mode`; no docstring: it would enter the schema).
class NetworkMode(StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"
    ENDPOINTS = "endpoints"


#: Fargate CPU units -> the memory sizes (MiB) each takes.
#: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html
FARGATE_SIZES: Final[dict[int, tuple[int, ...]]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4097, 1024)),
    1024: tuple(range(2048, 8193, 1024)),
    2048: tuple(range(4096, 16385, 1024)),
    4096: tuple(range(8192, 30721, 1024)),
    8192: tuple(range(16384, 61441, 4096)),
    16384: tuple(range(32768, 122881, 8192)),
}
