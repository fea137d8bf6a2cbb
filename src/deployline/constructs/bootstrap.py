"""The roles `cdk bootstrap` creates in every account and region, as the pipeline uses them.

The pipeline reaches an account only through these roles (the target account trusts the pipeline
account with `cdk bootstrap --trust <pipeline account>`), and may assume no others:

- `deploy`: the role the CloudFormation actions run as (it may create and execute change sets,
  and read pipeline artifacts in other accounts);
- `cfn-exec`: the role CloudFormation deploys the template with;
- `file-publishing`: the role cdk-assets assumes to upload file assets to the bootstrap bucket;
- `lookup`: read-only, for validation and change summaries.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Aws, Fn, Token
from aws_cdk import aws_iam as iam
from constructs import Construct

from deployline.contract import (
    BOOTSTRAP_ROLE_KINDS,
    DEFAULT_BOOTSTRAP_QUALIFIER,
    bootstrap_role_name,
)


@dataclass(frozen=True)
class BootstrapEnvironment:
    """An account and region bootstrapped with `cdk bootstrap` (qualifier `qualifier`).

    `account` and `region` None mean the pipeline's own, as pseudo parameters: a template that
    names no account stays environment-agnostic.
    """

    account: str | None = None
    region: str | None = None
    qualifier: str = DEFAULT_BOOTSTRAP_QUALIFIER

    def __post_init__(self) -> None:
        if (
            self.account is not None
            and not Token.is_unresolved(self.account)
            and not (len(self.account) == 12 and self.account.isascii() and self.account.isdigit())
        ):
            raise ValueError(f"account must be a 12-digit AWS account ID, got {self.account!r}")
        qualifier = self.qualifier
        if not Token.is_unresolved(qualifier) and not (
            qualifier.isascii() and qualifier.isalnum() and qualifier.islower()
        ):
            raise ValueError(
                "qualifier must be the lowercase letters and digits `cdk bootstrap --qualifier` "
                f"took, got {self.qualifier!r}"
            )

    def with_region(self, region: str) -> BootstrapEnvironment:
        """The same account (and qualifier) in `region`."""
        return BootstrapEnvironment(account=self.account, region=region, qualifier=self.qualifier)

    @property
    def account_or_pseudo(self) -> str:
        return self.account if self.account is not None else Aws.ACCOUNT_ID

    @property
    def region_or_pseudo(self) -> str:
        return self.region if self.region is not None else Aws.REGION

    def describe(self) -> str:
        """`aws://111111111111/eu-west-1`, or `the pipeline's account and region`."""
        if self.account is None and self.region is None:
            return "the pipeline's account and region"
        return f"aws://{self.account or '<pipeline account>'}/{self.region or '<pipeline region>'}"

    def role_arn(self, kind: str) -> str:
        """The ARN of the bootstrap role `kind` (deploy, cfn-exec, file-publishing, lookup)."""
        if kind not in BOOTSTRAP_ROLE_KINDS:
            raise ValueError(f"kind must be one of {sorted(BOOTSTRAP_ROLE_KINDS)}, got {kind!r}")
        account = self.account if self.account is not None else "${AWS::AccountId}"
        region = self.region if self.region is not None else "${AWS::Region}"
        name = bootstrap_role_name(kind, self.qualifier, account, region)
        # One Fn::Sub rather than a Join of pseudo parameters (what cfn-lint prefers in an
        # action's configuration).
        return Fn.sub(f"arn:${{AWS::Partition}}:iam::{account}:role/{name}")

    def role(self, scope: Construct, id: str, kind: str) -> iam.IRole:
        """The bootstrap role `kind`, imported immutable: deployline never adds policies to it."""
        return iam.Role.from_role_arn(scope, id, self.role_arn(kind), mutable=False)
