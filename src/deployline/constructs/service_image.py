"""The image a service runs, chosen by a CloudFormation parameter: the pipeline's image at a tag,
or the placeholder image while the tag is empty.

CloudFormation owns what runs: the pipeline deploys the stack with `ImageTag=<commit>`, and a later
deploy that does not pass the parameter keeps the tag that is running (the CDK CLI reuses a
parameter's previous value). The choice is made at deploy time by a condition on the parameter,
so the task definition's image (and, for the placeholder, its command) depend on it:

    Image:   Fn::If [ImageTagIsEmpty, <placeholder>, <registry>/<repository>:<ImageTag>]
    Command: Fn::If [ImageTagIsEmpty, <placeholder command>, AWS::NoValue]

The repository lives in the pipeline's account and region: the registry's account and region are
given (or are this stack's own), and the ARN and URI are built from them; no cross-stack reference.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from aws_cdk import Aws, CfnCondition, CfnParameter, Fn, Stack, Token
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from constructs import Construct

#: An ECR image tag (up to 128 characters: letters, digits, `_`, `.`, `-`, not starting with `.`
#: or `-`), or empty for the placeholder image.
IMAGE_TAG_PATTERN = r"^$|^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
#: The pull actions an execution role needs on the repository.
PULL_ACTIONS = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchGetImage",
)
_REPOSITORY = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$")


class ServiceImage(Construct):
    """The container image (and command) of a service, chosen by the image tag parameter.

    Attributes:
        image: the container image: the placeholder while the tag is empty, else
            `repository_uri:<tag>`.
        command: the placeholder's command while the tag is empty, the image's own otherwise;
            None when the placeholder runs its own command too.
        uses_placeholder: the condition "the image tag is empty" (`<parameter>IsEmpty`).
        repository_arn: the ECR repository's ARN.
        repository_uri: `<account>.dkr.ecr.<region>.<url suffix>/<repository>`.
        pull_statements: what an execution role needs to pull from the repository.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        image_tag: CfnParameter,
        repository_name: str,
        placeholder_image: str,
        placeholder_command: Sequence[str] | None = None,
        registry_account: str | None = None,
        registry_region: str | None = None,
    ) -> None:
        """
        Args:
            image_tag: the stack parameter that carries the tag (String, empty: placeholder).
            repository_name: the pipeline's ECR repository.
            placeholder_image: the image the service runs while the tag is empty.
            placeholder_command: its command. Default: the placeholder image's own.
            registry_account: the repository's account. Default: this stack's.
            registry_region: the repository's region. Default: this stack's.
        """
        super().__init__(scope, id)
        _validate(repository_name, placeholder_image, placeholder_command, registry_account,
                  registry_region)  # fmt: skip
        account = registry_account or Aws.ACCOUNT_ID
        region = registry_region or Aws.REGION
        self.repository_arn = (
            f"arn:{Aws.PARTITION}:ecr:{region}:{account}:repository/{repository_name}"
        )
        self.repository_uri = f"{account}.dkr.ecr.{region}.{Aws.URL_SUFFIX}/{repository_name}"
        self.uses_placeholder = self._condition(image_tag)
        condition = self.uses_placeholder.logical_id
        self.image = ecs.ContainerImage.from_registry(
            Token.as_string(
                Fn.condition_if(
                    condition,
                    placeholder_image,
                    f"{self.repository_uri}:{image_tag.value_as_string}",
                )
            )
        )
        self.command: list[str] | None = (
            Token.as_list(Fn.condition_if(condition, list(placeholder_command), Aws.NO_VALUE))
            if placeholder_command
            else None
        )
        self.pull_statements = [
            iam.PolicyStatement(
                sid="PullServiceImage", actions=list(PULL_ACTIONS), resources=[self.repository_arn]
            ),
            iam.PolicyStatement(
                sid="EcrAuthorizationToken",
                actions=["ecr:GetAuthorizationToken"],
                resources=["*"],  # GetAuthorizationToken supports no resource-level permission
            ),
        ]

    def _condition(self, image_tag: CfnParameter) -> CfnCondition:
        """`<parameter>IsEmpty`, at the top of the stack beside the parameter (one per
        parameter: a second ServiceImage on the same parameter shares it)."""
        stack = Stack.of(self)
        name = f"{stack.resolve(image_tag.logical_id)}IsEmpty"
        existing = stack.node.try_find_child(name)
        if isinstance(existing, CfnCondition):
            return existing
        return CfnCondition(
            stack, name, expression=Fn.condition_equals(image_tag.value_as_string, "")
        )


def _validate(
    repository_name: str,
    placeholder_image: str,
    placeholder_command: Sequence[str] | None,
    registry_account: str | None,
    registry_region: str | None,
) -> None:
    if not Token.is_unresolved(repository_name) and not (
        2 <= len(repository_name) <= 256 and _REPOSITORY.match(repository_name)
    ):
        raise ValueError(
            "repository_name must be an ECR repository name (lowercase letters, digits, . _ - "
            f"and / between them, 2-256 characters), got {repository_name!r}"
        )
    if not placeholder_image.strip():
        raise ValueError("placeholder_image must name an image, got ''")
    if placeholder_command is not None and not all(part.strip() for part in placeholder_command):
        raise ValueError(
            f"placeholder_command must not contain empty arguments, got {list(placeholder_command)}"
        )
    if _given(registry_account) and not _ACCOUNT.match(str(registry_account)):
        raise ValueError(
            f"registry_account must be a 12-digit AWS account ID, got {registry_account!r}"
        )
    if _given(registry_region) and not _REGION.match(str(registry_region)):
        raise ValueError(
            f"registry_region must be a region name like eu-west-1, got {registry_region!r}"
        )


def _given(value: str | None) -> bool:
    """A literal value was given (not None, not a token)."""
    return value is not None and not Token.is_unresolved(value)
