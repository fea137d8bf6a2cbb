"""Physical names: which properties name a resource in AWS, and whether a name varies between
deployments."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from deployline.checks.intrinsics import is_intrinsic, literal_str, referenced_names, render
from deployline.checks.template import Resource, Template

PHYSICAL_NAME_PROPS: dict[str, str] = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::ECR::Repository": "RepositoryName",
    "AWS::CodeCommit::Repository": "RepositoryName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::DynamoDB::GlobalTable": "TableName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Serverless::Function": "FunctionName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::IAM::Role": "RoleName",
    "AWS::ECS::Cluster": "ClusterName",
    "AWS::ECS::Service": "ServiceName",
    "AWS::CodePipeline::Pipeline": "Name",
    "AWS::CodeBuild::Project": "Name",
    "AWS::Events::Rule": "Name",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::SSM::Parameter": "Name",
    "AWS::CodeStarNotifications::NotificationRule": "Name",
}


def physical_names(template: Template) -> Iterator[tuple[Resource, str, Any]]:
    """(resource, property, value) for every resource that sets a physical name."""
    for rtype, prop in PHYSICAL_NAME_PROPS.items():
        for res in template.of_type(rtype):
            value = res.prop(prop)
            if value is not None:
                yield res, prop, value


# Pseudo parameters that are the same for every deployment in one account and region: a name
# built only from these still collides when the template is deployed twice.
ACCOUNT_WIDE_PSEUDO = frozenset(
    {"AWS::AccountId", "AWS::Region", "AWS::Partition", "AWS::URLSuffix"}
)


def name_text(value: Any) -> tuple[str | None, bool]:
    """(text, varies): the literal text of a name, and whether it varies between deployments.

    A plain string, or a Fn::Sub/Fn::Join made only of literals and account-wide pseudo
    parameters, is effectively literal (`varies` False, text with holes for the pseudo
    parameters). Anything with a parameter, a resource attribute or ${AWS::StackName} varies."""
    if isinstance(value, str):
        return (value, False) if literal_str(value) is not None else (None, True)
    if not is_intrinsic(value):
        return None, True
    names = referenced_names(value)
    pseudo = _pseudo_in(value)
    if names or (pseudo - ACCOUNT_WIDE_PSEUDO):
        return None, True
    key = next(iter(value))
    if key not in ("Fn::Sub", "Fn::Join"):
        return None, True
    return render(value), False


def _pseudo_in(value: Any) -> set[str]:
    found: set[str] = set()
    text = json.dumps(value)
    for m in re.finditer(r"AWS::[A-Za-z]+", text):
        found.add(m.group(0))
    return found
