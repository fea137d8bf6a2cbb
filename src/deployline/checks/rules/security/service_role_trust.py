"""DL123: a role used by a service does not trust that service's principal."""

from __future__ import annotations

from collections.abc import Iterator

from deployline.checks.iam import policy_document, trusted_services, trusts_service
from deployline.checks.intrinsics import ref_target
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.template import Template

# (resource type, property naming the role, service principal prefix)
ROLE_USES: tuple[tuple[str, str, str], ...] = (
    ("AWS::CodeBuild::Project", "ServiceRole", "codebuild"),
    ("AWS::CodePipeline::Pipeline", "RoleArn", "codepipeline"),
    ("AWS::CodeDeploy::DeploymentGroup", "ServiceRoleArn", "codedeploy"),
    ("AWS::Lambda::Function", "Role", "lambda"),
    ("AWS::Serverless::Function", "Role", "lambda"),
    ("AWS::ECS::TaskDefinition", "ExecutionRoleArn", "ecs-tasks"),
    ("AWS::ECS::TaskDefinition", "TaskRoleArn", "ecs-tasks"),
)


class ServiceRoleTrust(Rule):
    id = "DL123"
    severity = Severity.HIGH
    family = "Security"
    seed = "002 §2"
    title = "Role does not trust the service that uses it"
    resource_types = ("AWS::IAM::Role", *sorted({t for t, _, _ in ROLE_USES}))
    rationale = (
        "A service can only act through a role whose trust policy names its principal; otherwise "
        "the build, pipeline, deployment or task fails at run time with an AssumeRole error that "
        "no template validation catches."
    )
    remediation = (
        "Add the service principal (codebuild, codepipeline, codedeploy, lambda or ecs-tasks "
        ".amazonaws.com) to the role's AssumeRolePolicyDocument, or use a role made for it."
    )
    fix_example = """\
BuildRole:
  Type: AWS::IAM::Role
  Properties:
    AssumeRolePolicyDocument:
      Statement:
        - Effect: Allow
          Principal: {Service: codebuild.amazonaws.com}
          Action: sts:AssumeRole
"""

    def check(self, template: Template) -> Iterator[Hit]:
        for rtype, prop, service in ROLE_USES:
            for user in template.of_type(rtype):
                value = user.prop(prop)
                if value is None:
                    continue
                target = ref_target(value)
                role = template.get(target)
                if role is None:
                    reason = (
                        f"the parameter {target}"
                        if target and template.is_parameter(target)
                        else "a value this template does not define"
                    )
                    yield self.unknown(
                        user.logical_id,
                        f"Properties.{prop}",
                        f"the role comes from {reason}; cannot check that it trusts "
                        f"{service}.amazonaws.com",
                    )
                    continue
                if role.type != "AWS::IAM::Role":
                    continue
                document = role.prop("AssumeRolePolicyDocument")
                if trusts_service(role, service):
                    continue
                hidden = policy_document(document) is None or any(
                    "${" in p for p in trusted_services(role)
                )
                if hidden:
                    yield self.unknown(
                        role.logical_id,
                        "Properties.AssumeRolePolicyDocument",
                        f"the trust policy is computed; cannot check {service}.amazonaws.com",
                    )
                    continue
                yield self.hit(
                    role.logical_id,
                    "Properties.AssumeRolePolicyDocument",
                    f"the role is the {prop} of {user.logical_id} but does not trust "
                    f"{service}.amazonaws.com",
                )
