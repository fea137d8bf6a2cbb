"""DL508: a Lambda used by a pipeline Invoke action that cannot report its job result."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

from deployline.checks import data
from deployline.checks.iam import (
    Statement,
    role_id_of,
    role_permissions,
    statements_allow,
    statements_of,
)
from deployline.checks.intrinsics import as_list, literal_str, render
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.pipeline import function_of_action
from deployline.checks.template import Resource, Template

JOB_ACTIONS = ("codepipeline:PutJobSuccessResult", "codepipeline:PutJobFailureResult")


@lru_cache(maxsize=1)
def known_policies() -> dict[str, bool]:
    """Managed policy / SAM policy template name -> grants both job-result actions."""
    return {
        str(i["name"]): bool(i["grants"]) for i in data.items("lambda_managed_policies_job_results")
    }


class InvokeFunctionReportsJobResult(Rule):
    """Follows each Lambda Invoke action's FunctionName (Ref, or a literal equal to a
    function's FunctionName) to the function and its role (Role: !GetAtt Role.Arn). Counted:
    the role's inline policies, AWS::IAM::Policy/ManagedPolicy resources attached to it, managed
    policies of this template in ManagedPolicyArns, and AWS managed policies (and SAM policy
    templates) from a dated list of known ones. The actions have no resource-level permissions,
    so only `Resource: "*"` grants them. A role or policy the template and the list do not
    describe gives UNKNOWN on the function; a function outside the template gives UNKNOWN on
    the pipeline."""

    id = "DL508"
    severity = Severity.HIGH
    family = "Monitoring and audit"
    seed = "000 §4"
    title = "Invoke action's function cannot report its job result"
    resource_types = ("AWS::CodePipeline::Pipeline", "AWS::Lambda::Function", "AWS::IAM::Role")
    rationale = (
        "A Lambda invoked by CodePipeline must call PutJobSuccessResult or PutJobFailureResult; "
        "without the permission the call fails and the pipeline waits until the action times "
        "out (up to an hour) before failing."
    )
    remediation = (
        "Allow codepipeline:PutJobSuccessResult and codepipeline:PutJobFailureResult on "
        "Resource '*' in the function's role (these actions support no resource ARN)."
    )
    fix_example = """\
SmokeTestRole:
  Type: AWS::IAM::Role
  Properties:
    Policies:
      - PolicyName: job-result
        PolicyDocument:
          Statement:
            - Effect: Allow
              Action: [codepipeline:PutJobSuccessResult, codepipeline:PutJobFailureResult]
              Resource: "*"  # these actions support no resource-level permissions
"""

    def check(self, template: Template) -> Iterator[Hit]:
        seen: set[str] = set()
        for pipeline in template.pipelines:
            for action in pipeline.actions:
                if not action.is_lambda_invoke:
                    continue
                found = function_of_action(template, action)
                fn = found.resource
                if fn is None:
                    yield self.unknown(
                        pipeline.logical_id,
                        f"{action.path}.Configuration.FunctionName",
                        f"{action.label}: the function is not in this template ({found.reason})",
                    )
                    continue
                if fn.logical_id in seen:
                    continue
                seen.add(fn.logical_id)
                yield from self._check_function(template, fn, action.label)

    def _check_function(self, template: Template, fn: Resource, label: str) -> Iterator[Hit]:
        statements: list[Statement] = []
        managed: list[str] = []
        unresolved: list[str] = []
        role_value = fn.prop("Role")
        if fn.type == "AWS::Serverless::Function" and role_value is None:
            for policy in as_list(fn.prop("Policies")):
                if isinstance(policy, str):
                    managed.append(render(policy).rsplit("/", 1)[-1])
                elif isinstance(policy, dict) and "Statement" in policy:
                    statements += statements_of(policy, "Properties.Policies")
                elif isinstance(policy, dict):
                    managed.extend(str(k) for k in policy)
        else:
            role = role_id_of(template, role_value)
            if role is None:
                yield self.unknown(
                    fn.logical_id,
                    "Properties.Role",
                    f"{label}: the function's role {render(role_value)} is not in this template",
                )
                return
            perms = role_permissions(template, role)
            statements, managed, unresolved = perms.statements, perms.aws_managed, perms.unresolved
        known = known_policies()
        if any(known.get(name) for name in managed):
            return
        missing = [
            a for a in JOB_ACTIONS if not statements_allow(statements, a, resource_star_only=True)
        ]
        if not missing:
            return
        unknown_policies = [n for n in managed if n not in known] + unresolved
        if unknown_policies:
            yield self.unknown(
                fn.logical_id,
                "Properties.Role",
                f"{label}: the role does not itself allow {', '.join(missing)}; it also has "
                f"policies this check cannot read: {', '.join(unknown_policies)}",
            )
            return
        target = literal_str(role_value) or render(role_value) or "the role SAM generates"
        yield self.hit(
            fn.logical_id,
            "Properties.Role",
            f"{label} invokes this function but its role ({target}) may not call "
            f"{' and '.join(missing)} on Resource '*': the pipeline will wait for the action to "
            "time out",
        )
