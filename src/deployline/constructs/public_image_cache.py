"""An ECR pull-through cache for ECR Public, so tasks without internet access can start.

In network mode endpoints the tasks have no route to public.ecr.aws. The placeholder image is
pulled through the account's private registry instead: ECR fetches it from ECR Public on the first
pull (ECR itself has internet access) and the tasks reach ECR through the VPC endpoints.
"""

from __future__ import annotations

import re

from aws_cdk import Acknowledgment, Aws, Stack, Validations
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from constructs import Construct

from deployline.constructs import compliance
from deployline.naming import Limit, Namer

UPSTREAM = "public.ecr.aws"
#: ECR limits a pull-through cache prefix to 30 characters.
PREFIX_LIMIT = Limit("ECR pull-through cache prefix", 30)
_PREFIX = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")


class PublicEcrPullThroughCache(Construct):
    """A pull-through cache rule for public.ecr.aws under a per-environment prefix.

    Attributes:
        rule: the pull-through cache rule.
        prefix: the repository prefix in the private registry.
    """

    def __init__(self, scope: Construct, id: str, *, namer: Namer) -> None:
        """
        Args:
            namer: names the prefix `{service}-ecr-public-{env}` (cut to 30 characters): one
                rule per environment, since a prefix is unique per registry.
        """
        super().__init__(scope, id)
        self.prefix = namer.name("ecr-public", PREFIX_LIMIT)
        if not _PREFIX.match(self.prefix):
            raise ValueError(f"not a valid pull-through cache prefix: {self.prefix!r}")
        self.rule = ecr.CfnPullThroughCacheRule(
            self,
            "Rule",
            ecr_repository_prefix=self.prefix,
            upstream_registry="ecr-public",
            upstream_registry_url=UPSTREAM,
        )

    def image_uri(self, public_image: str) -> str:
        """The private-registry URI of `public_image` (which must start with public.ecr.aws/)."""
        if not public_image.startswith(f"{UPSTREAM}/"):
            raise ValueError(
                f"only {UPSTREAM} images can be pulled through this cache, got {public_image!r}"
            )
        path = public_image[len(UPSTREAM) + 1 :]
        registry = f"{Aws.ACCOUNT_ID}.dkr.ecr.{Aws.REGION}.{Aws.URL_SUFFIX}"
        return f"{registry}/{self.prefix}/{path}"

    def acknowledge_pull(self, role: iam.IRole) -> None:
        """Record for cdk-nag why `role` (holding `pull_statements`) names a wildcard."""
        Validations.of(role).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecr:"
                f"<AWS::Region>:<AWS::AccountId>:repository/{self.prefix}/*]",
                reason="ECR creates one cache repository per upstream image under the prefix "
                f"{self.prefix}/ at the first pull; {compliance.role_label(role)} reaches only "
                "that prefix",
            )
        )

    def pull_statements(self) -> list[iam.PolicyStatement]:
        """What an execution role needs to pull (and, the first time, cache) an image."""
        stack = Stack.of(self)
        cached = stack.format_arn(
            service="ecr", resource="repository", resource_name=f"{self.prefix}/*"
        )
        return [
            iam.PolicyStatement(
                sid="PullThroughCache",
                actions=[
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchGetImage",
                    "ecr:BatchImportUpstreamImage",
                    "ecr:CreateRepository",
                ],
                resources=[cached],
            )
        ]
