"""AWS access for the deploy commands: one boto3 session, its identity, and clients in each
target account and region.

A target in the credentials' own account is reached directly. Any other account is reached the
way the CDK CLI reaches it: through the deploy role that `cdk bootstrap --trust <this account>`
made there (`cdk-<qualifier>-deploy-role-<account>-<region>`). boto3 honours `AWS_ENDPOINT_URL`,
which is how the tests point everything at a moto server.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from deployline.deploy.assembly import Placement, StackArtifact
from deployline.runtime.clients import config as client_config
from deployline.runtime.clients import error_code

#: What to run when credentials are missing or stale.
CREDENTIALS_FIX = (
    "sign in (`aws sso login --profile NAME`, then pass --profile NAME or set AWS_PROFILE), "
    "or run `aws configure`, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
)


class AwsError(Exception):
    """An AWS call failed for a reason the user can act on: `problem`, and the `fix` if known."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        super().__init__(f"{problem}: {fix}" if fix else problem)
        self.problem = problem
        self.fix = fix


@dataclass(frozen=True)
class Identity:
    account: str
    arn: str
    partition: str


class Aws:
    """A boto3 session (Default: the standard credential chain) and clients made from it.

    Args:
        profile: an AWS profile name. Default: AWS_PROFILE or the default profile.
        region: the region environment-agnostic stacks go to. Default: AWS_REGION, else the
            session's (AWS_DEFAULT_REGION, the profile's region).
    """

    def __init__(self, *, profile: str | None = None, region: str | None = None) -> None:
        import boto3
        from botocore.exceptions import ProfileNotFound

        # botocore reads AWS_DEFAULT_REGION; the CDK CLI (and AWS's newer SDKs) AWS_REGION too
        region = region or os.environ.get("AWS_REGION") or None
        try:
            self.session = boto3.Session(profile_name=profile, region_name=region)
        except ProfileNotFound:
            raise AwsError(
                f"AWS profile {profile!r} is not in your AWS configuration",
                "check the name (`aws configure list-profiles`) or create it (`aws configure "
                f"sso --profile {profile}`)",
            ) from None
        self.profile = profile
        self._assumed: dict[str, Any] = {}

    @property
    def region(self) -> str:
        """The session's region. Raises AwsError when none is configured."""
        region = self.session.region_name
        if not region:
            raise AwsError(
                "no AWS region",
                "pass --region, set AWS_REGION, or set a region in your AWS profile "
                "(`aws configure set region eu-west-1`)",
            )
        return str(region)

    @cached_property
    def identity(self) -> Identity:
        """Who the credentials are (sts:GetCallerIdentity). Raises AwsError."""
        _ = self.region
        try:
            answer = self.session.client("sts", config=client_config()).get_caller_identity()
        except Exception as exc:
            raise describe(exc, "reading the caller identity (sts:GetCallerIdentity)") from None
        arn = str(answer["Arn"])
        return Identity(account=str(answer["Account"]), arn=arn, partition=arn.split(":")[1])

    def client(
        self,
        service: str,
        *,
        region: str | None = None,
        account: str | None = None,
        role_arn: str | None = None,
    ) -> Any:
        """A client for `service` in `region` (Default: the session's). For an `account` other
        than the credentials' own, the client runs as `role_arn`, assumed once and kept."""
        where = region or self.region
        if account is None or account == self.identity.account:
            return self.session.client(service, region_name=where, config=client_config())
        if role_arn is None:
            raise AwsError(f"no role to reach account {account} with")
        credentials = self._assume(role_arn)
        return self.session.client(
            service,
            region_name=where,
            config=client_config(),
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )

    def placement(self, stack: StackArtifact) -> Placement:
        """Where `stack` goes: its own account and region, else the credentials'."""
        return stack.placement.resolve(account=self.identity.account, region=self.region)

    def stack_client(self, service: str, stack: StackArtifact, *, role: str = "deploy") -> Any:
        """A client where `stack` goes; in another account, as its bootstrap `role` (deploy, or
        lookup: read-only)."""
        where = self.placement(stack)
        return self.client(
            service,
            region=where.region,
            account=where.account,
            role_arn=stack.role(role, where, self.identity.partition),
        )

    def cli_environment(self) -> dict[str, str]:
        """What the CDK CLI needs to use the same credentials and region as this session."""
        env = {"AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region}
        if self.profile:
            env["AWS_PROFILE"] = self.profile
        return env

    def _assume(self, role_arn: str) -> dict[str, str]:
        if role_arn not in self._assumed:
            sts = self.session.client("sts", config=client_config())
            answer = sts.assume_role(RoleArn=role_arn, RoleSessionName="deployline")
            self._assumed[role_arn] = answer["Credentials"]
        credentials: dict[str, str] = self._assumed[role_arn]
        return credentials


def describe(exc: BaseException, doing: str) -> AwsError:
    """An AwsError that says what failed while `doing`, and the fix where one is known. Anything
    that is not an AWS error is raised again."""
    from botocore.exceptions import (
        BotoCoreError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return AwsError(f"no AWS credentials found while {doing}", CREDENTIALS_FIX)
    if isinstance(exc, EndpointConnectionError):
        return AwsError(f"cannot reach AWS while {doing} ({exc})", "check your network and region")
    code = error_code(exc)
    if code in {
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
    }:
        return AwsError(f"AWS rejected the credentials ({code}) while {doing}", CREDENTIALS_FIX)
    if isinstance(exc, BotoCoreError) or hasattr(exc, "response"):
        message = getattr(exc, "response", {}).get("Error", {}).get("Message") or str(exc)
        return AwsError(f"{code} while {doing}: {message}")
    raise exc
