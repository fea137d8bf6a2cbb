"""DL002: a role trusts an AWS service without a confused-deputy condition."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache

from deployline.checks import data
from deployline.checks.iam import Statement, action_matches, policy_document, statements_of
from deployline.checks.intrinsics import as_list, is_intrinsic, render
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.template import Template

GUARD_KEYS = frozenset({"aws:sourceaccount", "aws:sourcearn"})
_PRINCIPAL = re.compile(
    r"^([a-z0-9-]+)\.(?:[a-z0-9-]+\.)?(?:amazonaws\.com(?:\.cn)?|\$\{AWS::URLSuffix\})$"
)


@cache
def guarded_services() -> frozenset[str]:
    """Service prefixes whose trust policies take aws:SourceAccount/aws:SourceArn (data file)."""
    return frozenset(str(s) for s in data.items("confused_deputy_services"))


def services_needing_guard(statement: Statement) -> list[str]:
    """The trusted service principals of an Allow that support the condition keys."""
    principal = statement.raw.get("Principal")
    names = as_list(principal.get("Service")) if isinstance(principal, dict) else []
    out = []
    for name in names:
        m = _PRINCIPAL.match(render(name).strip().lower())
        if m and m.group(1) in guarded_services():
            out.append(render(name))
    return out


def guard_state(condition: object) -> bool | None:
    """True when a condition tests aws:SourceAccount or aws:SourceArn, None when it is computed."""
    if condition is None:
        return False
    if is_intrinsic(condition) or not isinstance(condition, dict):
        return None
    for tests in condition.values():
        if is_intrinsic(tests):
            return None
        if isinstance(tests, dict) and any(str(k).lower() in GUARD_KEYS for k in tests):
            return True
    return False


class ConfusedDeputyGuard(Rule):
    """Every Allow statement of a role's trust policy (a mapping or JSON text) that lets a
    service principal assume the role (sts:AssumeRole, or `*`) is read: when the service is one
    whose trust policies AWS documents with aws:SourceAccount/aws:SourceArn (a dated data file:
    at least codebuild, codepipeline, ecs-tasks, vpc-flow-logs and events, in the global or
    regional principal form), the statement needs a Condition on either key (any operator).
    A computed condition is UNKNOWN. Reported on the role, at the statement."""

    id = "DL002"
    severity = Severity.MEDIUM
    family = "Checker"
    seed = "issue 14"
    title = "Role trusts an AWS service without a confused-deputy condition"
    resource_types = ("AWS::IAM::Role",)
    rationale = (
        "A service principal in a trust policy lets that service assume the role on behalf of "
        "any caller, in any account: without aws:SourceAccount or aws:SourceArn another "
        "customer's build, pipeline or task could be made to act with this role (the confused "
        "deputy problem)."
    )
    remediation = (
        "Add a Condition to the trust statement: StringEquals aws:SourceAccount "
        "${AWS::AccountId}, and where the calling resource is known ArnLike aws:SourceArn "
        "(the project, pipeline or cluster ARN)."
    )
    fix_example = """\
AssumeRolePolicyDocument:
  Statement:
    - Effect: Allow
      Principal: {Service: codebuild.amazonaws.com}
      Action: sts:AssumeRole
      Condition:
        StringEquals: {"aws:SourceAccount": !Ref "AWS::AccountId"}
        ArnLike:
          "aws:SourceArn": !Sub "arn:${AWS::Partition}:codebuild:*:${AWS::AccountId}:*"
"""

    def check(self, template: Template) -> Iterator[Hit]:
        for role in template.of_type("AWS::IAM::Role"):
            document = role.prop("AssumeRolePolicyDocument")
            if policy_document(document) is None:
                continue
            base = "Properties.AssumeRolePolicyDocument"
            for st in statements_of(document, base):
                if not st.allows or not any(
                    isinstance(a, str) and action_matches(a, "sts:AssumeRole") for a in st.actions
                ):
                    continue
                services = services_needing_guard(st)
                if not services:
                    continue
                state = guard_state(st.condition)
                if state is True:
                    continue
                trusted = ", ".join(services)
                if state is None:
                    yield self.unknown(role.logical_id, st.path, "the Condition is computed")
                    continue
                yield self.hit(
                    role.logical_id,
                    st.path,
                    f"trusts {trusted} without aws:SourceAccount or aws:SourceArn in its Condition",
                )
