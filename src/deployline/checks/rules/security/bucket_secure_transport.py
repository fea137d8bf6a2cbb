"""DL104: an S3 bucket whose policy does not deny requests over plain HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from deployline.checks.iam import Statement, policy_document, statements_of
from deployline.checks.intrinsics import as_list, bool_of, is_intrinsic
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.s3 import bucket_policies
from deployline.checks.template import Template

_BOOL_OPERATORS = {"bool", "boolifexists"}


def _denies_insecure_transport(statement: Statement) -> bool:
    if statement.effect != "Deny":
        return False
    principal = statement.raw.get("Principal")
    everyone = principal == "*" or (
        isinstance(principal, dict) and any(p == "*" for p in as_list(principal.get("AWS")))
    )
    if not everyone:
        return False
    if not (statement.covers_action("s3:GetObject") and statement.covers_action("s3:PutObject")):
        return False
    condition = statement.condition
    if not isinstance(condition, dict):
        return False
    for operator, tests in condition.items():
        if not isinstance(operator, str) or operator.lower() not in _BOOL_OPERATORS:
            continue
        if not isinstance(tests, dict):
            continue
        for key, value in tests.items():
            insecure = any(bool_of(v) is False for v in as_list(value))
            if isinstance(key, str) and key.lower() == "aws:securetransport" and insecure:
                return True
    return False


def _document_hidden(document: Any) -> bool:
    parsed = policy_document(document)
    return parsed is None or is_intrinsic(parsed.get("Statement"))


class BucketSecureTransport(Rule):
    id = "DL104"
    severity = Severity.LOW
    family = "Security"
    seed = "(AWS S3 guidance)"
    title = "S3 bucket policy does not deny requests without TLS"
    resource_types = ("AWS::S3::Bucket", "AWS::S3::BucketPolicy")
    rationale = (
        "S3 accepts plain-HTTP requests unless the bucket policy refuses them; artifacts and "
        "credentials in transit can then be read or altered on the network."
    )
    remediation = (
        "Attach an AWS::S3::BucketPolicy with a Deny statement for Principal '*', Action 's3:*', "
        "the bucket and its objects, and Condition Bool aws:SecureTransport 'false'."
    )
    fix_example = """\
ArtifactBucketPolicy:
  Type: AWS::S3::BucketPolicy
  Properties:
    Bucket: !Ref ArtifactBucket
    PolicyDocument:
      Statement:
        - Effect: Deny
          Principal: "*"
          Action: "s3:*"
          Resource: [!GetAtt ArtifactBucket.Arn, !Sub "${ArtifactBucket.Arn}/*"]
          Condition: {Bool: {"aws:SecureTransport": "false"}}
"""

    def check(self, template: Template) -> Iterator[Hit]:
        for bucket in template.of_type("AWS::S3::Bucket"):
            policies = bucket_policies(template, bucket)
            hidden = [p for p in policies if _document_hidden(p.prop("PolicyDocument"))]
            denies = any(
                _denies_insecure_transport(st)
                for p in policies
                for st in statements_of(p.prop("PolicyDocument"))
            )
            if denies:
                continue
            if hidden:
                yield self.unknown(
                    bucket.logical_id,
                    "Properties",
                    f"the policy document of {hidden[0].logical_id} is computed by an intrinsic",
                )
                continue
            what = (
                f"its bucket policy {', '.join(p.logical_id for p in policies)} does not deny"
                if policies
                else "no bucket policy denies"
            )
            yield self.hit(
                bucket.logical_id,
                "Properties",
                f"{what} requests where aws:SecureTransport is false",
            )
