"""DL122: a deprecated AWS managed policy, or an admin policy on a CI/CD service role."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

from deployline.checks import data
from deployline.checks.iam import managed_policies_of, role_id_of, trusted_services
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.template import Resource, Template

CICD_SERVICES = ("codebuild", "codepipeline", "codedeploy", "cloudformation")
CICD_ROLE_PROPERTIES = (
    ("AWS::CodeBuild::Project", "ServiceRole"),
    ("AWS::CodePipeline::Pipeline", "RoleArn"),
    ("AWS::CodeDeploy::DeploymentGroup", "ServiceRoleArn"),
)


@lru_cache(maxsize=1)
def deprecated_policies() -> dict[str, str]:
    """Short name (lower case) -> replacement, from the data file deprecated_managed_policies."""
    out: dict[str, str] = {}
    for item in data.items("deprecated_managed_policies"):
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            short = item["name"].rsplit("/", 1)[-1].lower()
            out[short] = str(item.get("replacement") or "")
    return out


@lru_cache(maxsize=1)
def admin_policies() -> frozenset[str]:
    return frozenset(str(n).lower() for n in data.items("admin_managed_policies"))


def cicd_roles(template: Template) -> set[str]:
    """Roles that a CI/CD service assumes: by their trust policy, or by how they are used."""
    out = {role.logical_id for role in template.of_type("AWS::IAM::Role") if _cicd_trust(role)}
    for rtype, prop in CICD_ROLE_PROPERTIES:
        for res in template.of_type(rtype):
            role = role_id_of(template, res.prop(prop))
            if role:
                out.add(role)
    return out


def _cicd_trust(role: Resource) -> bool:
    """Does the trust policy name a CI/CD service principal (codebuild.amazonaws.com, ...)?"""
    for principal in trusted_services(role):
        text = principal.strip().lower()
        if any(text.startswith(f"{service}.") for service in CICD_SERVICES):
            return True
    return False


class DeprecatedManagedPolicy(Rule):
    id = "DL122"
    severity = Severity.HIGH
    family = "Security"
    seed = "004 IAM 2"
    title = "Deprecated managed policy, or admin policy on a CI/CD service role"
    resource_types = (
        "AWS::IAM::Role",
        "AWS::IAM::User",
        "AWS::IAM::Group",
        "AWS::Serverless::Function",
        "AWS::Serverless::StateMachine",
    )
    rationale = (
        "A deprecated AWS managed policy cannot be attached to new principals (the stack fails "
        "to create) and no longer gets AWS's updates; one that never existed fails outright. "
        "AdministratorAccess or PowerUserAccess on a build or pipeline role hands the account "
        "to whatever code the pipeline runs."
    )
    remediation = (
        "Attach the replacement policy AWS documents (e.g. AWSCodePipeline_FullAccess), or better "
        "a customer managed policy scoped to the pipeline's resources; never attach "
        "AdministratorAccess/PowerUserAccess to a CodeBuild, CodePipeline or CodeDeploy role."
    )
    fix_example = """\
BuildRole:
  Type: AWS::IAM::Role
  Properties:
    AssumeRolePolicyDocument: {...}
    Policies:
      - PolicyName: build
        PolicyDocument: {Statement: [...scoped to the project's resources...]}
"""

    def check(self, template: Template) -> Iterator[Hit]:
        deprecated = deprecated_policies()
        admin = admin_policies()
        cicd = cicd_roles(template)
        holders = template.of_type(
            "AWS::IAM::Role",
            "AWS::IAM::User",
            "AWS::IAM::Group",
            "AWS::Serverless::Function",
            "AWS::Serverless::StateMachine",
        )
        for holder in holders:
            for ref in managed_policies_of(template, holder):
                short = (ref.short_name or "").lower()
                if not short:
                    continue
                if short in deprecated:
                    instead = deprecated[short]
                    yield self.hit(
                        holder.logical_id,
                        ref.path,
                        f"attaches {ref.aws_name}, which AWS has deprecated or never published"
                        + (f"; use {instead}" if instead else ""),
                    )
                elif short in admin and holder.logical_id in cicd:
                    yield self.hit(
                        holder.logical_id,
                        ref.path,
                        f"attaches {ref.aws_name} to a CI/CD service role",
                    )
