"""DL706: a resource that may act before the policy its role needs exists."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from deployline.checks.intrinsics import ref_like, ref_target
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.rules.organisation.dependency_cycle import dependency_graph
from deployline.checks.template import Resource, Template

ROLE_KEYS = frozenset(
    {
        "Role",
        "RoleArn",
        "RoleARN",
        "ServiceRole",
        "ServiceRoleArn",
        "ExecutionRoleArn",
        "TaskRoleArn",
        "ExecutionRole",
        "TaskRole",
        "IamRoleArn",
    }
)
_POLICY_TYPES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")


def roles_used(template: Template, res: Resource) -> set[str]:
    """Roles of this template that a resource uses through a role property, at any depth."""
    out: set[str] = set()
    stack: list[Any] = [res.properties]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if key in ROLE_KEYS:
                    target = ref_target(item) or ref_like(item)
                    role = template.get(target)
                    if role is not None and role.type == "AWS::IAM::Role":
                        out.add(role.logical_id)
                stack.append(item)
        elif isinstance(value, list):
            stack.extend(value)
    return out


def separate_policies(template: Template) -> dict[str, list[str]]:
    """Role -> the separate AWS::IAM::Policy / ManagedPolicy resources that name it in their
    `Roles` (Ref, or a literal RoleName of a role of this template)."""
    out: dict[str, list[str]] = {}
    for policy in template.of_type(*_POLICY_TYPES):
        value = policy.prop("Roles")
        for item in value if isinstance(value, list) else []:
            role = template.named(item, ("AWS::IAM::Role",), "RoleName").resource
            if role is not None:
                out.setdefault(role.logical_id, []).append(policy.logical_id)
    return out


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    stack = [start]
    while stack:
        node = stack.pop()
        for nxt in graph.get(node, ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


class PolicyDependency(Rule):
    """A resource "uses" a role through Role, RoleArn, ServiceRole, ServiceRoleArn,
    ExecutionRoleArn, TaskRoleArn, ... (Ref or GetAtt, at any depth of its properties). When an
    AWS::IAM::Policy or ManagedPolicy names that role in its Roles (as the catalog row says; an
    inline role policy is part of the role), the resource must be created after that policy.
    Decision: any dependency path counts, not only a direct DependsOn, because CloudFormation
    orders creation along every Ref/GetAtt/Sub/DependsOn chain (a DependsOn on a resource that
    itself depends on the policy is enough). When the policy itself depends on the resource (it
    grants access to the resource's ARN, as CDK does for a CodeBuild project's log group), a
    DependsOn would close a cycle; the order is then fixed by the template and the rule does
    not fire."""

    id = "DL706"
    severity = Severity.MEDIUM
    family = "Organisation"
    seed = "000 §7"
    title = "Resource may be created before its role's policy"
    resource_types = ("AWS::IAM::Role", *_POLICY_TYPES)
    rationale = (
        "CloudFormation creates a separate policy in parallel with the resources that use its "
        "role: a pipeline, project or function can start acting before it may, and the first "
        "run fails with AccessDenied."
    )
    remediation = "Add DependsOn: [<the policy>] to the resource that uses the role."
    fix_example = """\
Pipeline:
  Type: AWS::CodePipeline::Pipeline
  DependsOn: [PipelineRoleDefaultPolicy]
  Properties:
    RoleArn: !GetAtt PipelineRole.Arn
"""

    def check(self, template: Template) -> Iterator[Hit]:
        policies_by_role = separate_policies(template)
        if not policies_by_role:
            return
        graph = dependency_graph(template)
        for res in template.resources.values():
            if res.type in _POLICY_TYPES or res.type == "AWS::IAM::Role":
                continue
            needed: list[str] = []
            for role in sorted(roles_used(template, res)):
                needed += policies_by_role.get(role, [])
            if not needed:
                continue
            after = _reachable(graph, res.logical_id)
            missing = sorted(
                {p for p in needed if p not in after and res.logical_id not in _reachable(graph, p)}
            )
            if missing:
                yield self.hit(
                    res.logical_id,
                    "DependsOn",
                    f"uses a role whose permissions come from {', '.join(missing)} but does not "
                    "depend on it: it can be created before it may act",
                )
