"""Clients for another account and region, through a role the pipeline may assume there.

The pipeline's job functions read environments that may live in other accounts and regions
through the read-only lookup role `cdk bootstrap --trust <pipeline account>` created there. With
no role they use their own credentials (the pipeline's account).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from . import clients
from .jobs import ParameterError, Parameters

_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$")
_REGION = re.compile(r"^[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-[0-9]$")
#: How long assumed credentials last: a job function's invocation is at most 15 minutes.
SESSION_SECONDS = 900


class AccountError(ValueError):
    """The role or region cannot be used; the message names the value and the fix."""


def check_role_arn(value: str) -> str:
    if not _ROLE_ARN.match(value):
        raise AccountError(
            f"role_arn must be an IAM role ARN like arn:aws:iam::111111111111:role/name, "
            f"got {value!r}"
        )
    return value


def check_region(value: str) -> str:
    if not _REGION.match(value):
        raise AccountError(f"region must be an AWS region name like eu-west-1, got {value!r}")
    return value


def placement_parameters(params: Parameters) -> tuple[str | None, str | None]:
    """UserParameters' optional `region` and `role_arn`, checked: where a job function reads
    an environment, and as whom. Raises ParameterError naming the key and the fix."""
    region = params.string("region", None, nullable=True)
    role_arn = params.string("role_arn", None, nullable=True)
    try:
        if region is not None:
            check_region(region)
        if role_arn is not None:
            check_role_arn(role_arn)
    except AccountError as exc:
        raise ParameterError(f"{params.action}: UserParameters.{exc}") from None
    return region, role_arn


def client_factory(
    *, role_arn: str | None, region: str | None, session_name: str
) -> Callable[[str], Any]:
    """A function `service -> client` in `region` with `role_arn`'s credentials (assumed once).

    Raises botocore's ClientError when the role cannot be assumed (the caller reports it: a
    missing `cdk bootstrap --trust` is the usual cause).
    """
    import boto3

    credentials: dict[str, str] = {}
    if role_arn is not None:
        assumed = clients.client("sts").assume_role(
            RoleArn=check_role_arn(role_arn),
            RoleSessionName=session_name[:64],
            DurationSeconds=SESSION_SECONDS,
        )["Credentials"]
        credentials = {
            "aws_access_key_id": assumed["AccessKeyId"],
            "aws_secret_access_key": assumed["SecretAccessKey"],
            "aws_session_token": assumed["SessionToken"],
        }
    session = boto3.session.Session(
        region_name=check_region(region) if region else None, **credentials
    )
    made: dict[str, Any] = {}

    def factory(service: str) -> Any:
        if service not in made:
            made[service] = session.client(service, config=clients.config())
        return made[service]

    return factory
