"""Helpers shared by the build, pipeline, monitoring, runtime, organisation and deployment rules.

Everything here is a pure function of a parsed `Template`. Where the template does not hold an
answer (a name behind a parameter, a resource in another stack), helpers say so with a reason
string instead of guessing, so rules can report UNKNOWN.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from deployline.checks.iam import Statement, action_matches, identity_policies, statements_of
from deployline.checks.intrinsics import (
    as_list,
    get_path,
    is_intrinsic,
    literal_str,
    ref_target,
    render,
    sub_variables,
)
from deployline.checks.pipeline import Action, Pipeline
from deployline.checks.template import PRODUCTION_NAMES, Resource, Template

# --------------------------------------------------------------------------------------------
# Naming a resource from a property: `Ref X`, `!GetAtt X.Attr`, `!Sub "${X}"`, or a literal name.


def ref_like(value: Any) -> str | None:
    """The logical ID or parameter named by Ref/GetAtt, or by a Fn::Sub that is exactly `${X}`."""
    target = ref_target(value)
    if target is not None:
        return target
    if isinstance(value, dict) and len(value) == 1 and "Fn::Sub" in value:
        arg = value["Fn::Sub"]
        text = arg if isinstance(arg, str) else arg[0] if isinstance(arg, list) and arg else None
        if isinstance(text, str):
            names = sub_variables(text)
            if len(names) == 1 and text.strip() == "${" + names[0] + "}":
                return names[0].split(".", 1)[0]
    return None


@dataclass(frozen=True)
class Resolved:
    """Outcome of resolving a reference: the resource, or why it cannot be known.

    `external` is True when the value names something outside the template for certain (a
    literal name that no resource here carries); `reason` explains an unresolved value.
    """

    resource: Resource | None = None
    reason: str = ""
    external: bool = False


def resolve_named(
    template: Template, value: Any, types: Iterable[str], name_prop: str | None
) -> Resolved:
    """Find the resource of one of `types` that `value` names: by Ref/GetAtt/`${X}` to its
    logical ID, or by a literal equal to its literal physical name `name_prop`."""
    wanted = tuple(types)
    if value is None:
        return Resolved(reason="the value is not set")
    target = ref_like(value)
    if target is not None:
        res = template.get(target)
        if res is not None and res.type in wanted:
            return Resolved(resource=res)
        if res is not None:
            return Resolved(reason=f"{target} is a {res.type}, not a {' or '.join(wanted)}")
        if template.is_parameter(target):
            return Resolved(reason=f"the value comes from the parameter {target}")
        return Resolved(reason=f"{target} is not a resource of this template")
    text = literal_str(value)
    if text is not None:
        if name_prop is not None:
            hidden = False
            for res in template.of_type(*wanted):
                name = res.prop(name_prop)
                if literal_str(name) == text:
                    return Resolved(resource=res)
                if name is not None and literal_str(name) is None and _may_render_to(name, text):
                    hidden = True
            if hidden:
                return Resolved(
                    reason=f"{text!r} may be the name of a resource whose name is computed"
                )
        return Resolved(
            reason=f"no {' or '.join(wanted)} in this template is named {text!r}", external=True
        )
    return Resolved(reason="the value is computed by an intrinsic the template does not resolve")


def _may_render_to(value: Any, text: str) -> bool:
    """Could an intrinsic name render to `text`? (holes match anything)."""
    rendered = render(value)
    pattern = re.escape(rendered)
    pattern = re.sub(r"\\\$\\\{[^}]*\\\}", ".*", pattern)
    return re.fullmatch(pattern, text) is not None


def project_of_action(template: Template, action: Action) -> Resolved:
    """The `AWS::CodeBuild::Project` a CodeBuild action runs (configuration ProjectName)."""
    return resolve_named(
        template, action.config("ProjectName"), ("AWS::CodeBuild::Project",), "Name"
    )


LAMBDA_TYPES = ("AWS::Lambda::Function", "AWS::Serverless::Function")


def function_of_action(template: Template, action: Action) -> Resolved:
    """The Lambda function a Lambda Invoke action calls (configuration FunctionName)."""
    return resolve_named(template, action.config("FunctionName"), LAMBDA_TYPES, "FunctionName")


# --------------------------------------------------------------------------------------------
# Production


def is_production_name(value: Any) -> bool:
    text = literal_str(value)
    return text is not None and text.strip().lower() in PRODUCTION_NAMES


def production_deploy_targets(template: Template) -> set[str]:
    """Logical IDs that a pipeline with two or more deploy stages deploys in its last deploy
    stage (ECS service, CodeDeploy deployment group or application). With a single deploy
    stage nothing says which environment it is, so nothing is inferred."""
    out: set[str] = set()
    for pipeline in template.pipelines:
        stages = pipeline.deploy_stages
        if len(stages) < 2:
            continue
        for action in stages[-1].actions:
            if not action.deploys:
                continue
            for key, types, prop in (
                ("ServiceName", ("AWS::ECS::Service",), "ServiceName"),
                ("DeploymentGroupName", ("AWS::CodeDeploy::DeploymentGroup",),
                 "DeploymentGroupName"),
                ("ApplicationName", ("AWS::CodeDeploy::Application",), "ApplicationName"),
            ):  # fmt: skip
                found = resolve_named(template, action.config(key), types, prop).resource
                if found is not None:
                    out.add(found.logical_id)
    return out


# --------------------------------------------------------------------------------------------
# EventBridge rules, CodeStar notification rules, SNS topics


def load_json_value(value: Any) -> Any:
    """A JSON-typed property may be written as a JSON string; parse it when it is one."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def event_pattern(rule: Resource) -> dict[str, Any] | None:
    value = load_json_value(rule.prop("EventPattern"))
    return value if isinstance(value, dict) else None


def pattern_values(pattern: dict[str, Any], *path: str) -> list[Any] | None:
    """Values an event pattern matches at `path` (None when the pattern does not filter it)."""
    value = get_path(pattern, *path)
    if value is None:
        return None
    return as_list(value)


def pattern_sources(rule: Resource) -> set[str]:
    pattern = event_pattern(rule)
    if pattern is None:
        return set()
    values = pattern_values(pattern, "source") or []
    return {v for v in values if isinstance(v, str)}


def matches_value(values: list[Any] | None, wanted: str) -> bool:
    """Does an event-pattern value list match `wanted`? Absent filter matches everything;
    content filters (prefix, anything-but, wildcard, equals-ignore-case) are evaluated."""
    if values is None:
        return True
    for item in values:
        if isinstance(item, str) and item == wanted:
            return True
        if not isinstance(item, dict):
            continue
        prefix = item.get("prefix")
        if isinstance(prefix, str) and wanted.startswith(prefix):
            return True
        ignore_case = item.get("equals-ignore-case")
        if isinstance(ignore_case, str) and ignore_case.lower() == wanted.lower():
            return True
        wildcard = item.get("wildcard")
        if isinstance(wildcard, str) and action_matches(wildcard, wanted):
            return True
        if "anything-but" in item:
            excluded = item["anything-but"]
            if isinstance(excluded, dict):
                but_prefix = excluded.get("prefix")
                if isinstance(but_prefix, str) and not wanted.startswith(but_prefix):
                    return True
            elif wanted not in as_list(excluded):
                return True
    return False


def rule_enabled(rule: Resource) -> bool:
    state = literal_str(rule.prop("State"))
    return state is None or state.upper() not in ("DISABLED",)


def rule_target_ids(template: Template, rule: Resource) -> set[str]:
    """Logical IDs of resources in this template that an EventBridge rule targets."""
    out: set[str] = set()
    for target in as_list(rule.prop("Targets")):
        arn = get_path(target, "Arn")
        found = ref_like(arn)
        if found is None and arn is not None:
            names = {n for n in _referenced(arn) if template.get(n) is not None}
            if len(names) == 1:
                found = names.pop()
        if found is not None and template.get(found) is not None:
            res = template.get(found)
            assert res is not None
            out.add(_alias_target(template, res))
    return out


def _referenced(value: Any) -> set[str]:
    from deployline.checks.intrinsics import referenced_names

    return referenced_names(value)


def _alias_target(template: Template, res: Resource) -> str:
    """A Lambda alias or version stands for its function."""
    if res.type in ("AWS::Lambda::Alias", "AWS::Lambda::Version"):
        fn = ref_like(res.prop("FunctionName"))
        if fn is not None and template.get(fn) is not None:
            return fn
    return res.logical_id


PIPELINE_EVENT_SOURCES = frozenset({"aws.codepipeline", "aws.codebuild", "aws.codedeploy"})


def notification_rule_targets(template: Template, rule: Resource) -> list[tuple[str, Any]]:
    """(TargetType, TargetAddress) of a CodeStar notification rule (Targets or TargetAddress)."""
    out: list[tuple[str, Any]] = []
    for target in as_list(rule.prop("Targets")):
        kind = literal_str(get_path(target, "TargetType")) or ""
        out.append((kind, get_path(target, "TargetAddress")))
    if rule.prop("TargetAddress") is not None:
        out.append(("SNS", rule.prop("TargetAddress")))
    return out


def pipeline_notification_topics(template: Template) -> set[str]:
    """SNS topics that receive pipeline, build or deployment notifications: targets of
    EventBridge rules on aws.codepipeline/aws.codebuild/aws.codedeploy events, of CodeStar
    notification rules, and of CodeDeploy deployment group triggers."""
    topics = {t.logical_id for t in template.of_type("AWS::SNS::Topic")}
    out: set[str] = set()
    for rule in template.of_type("AWS::Events::Rule"):
        if pattern_sources(rule) & PIPELINE_EVENT_SOURCES:
            out |= rule_target_ids(template, rule) & topics
    for rule in template.of_type("AWS::CodeStarNotifications::NotificationRule"):
        for _kind, address in notification_rule_targets(template, rule):
            target = ref_like(address)
            if target in topics:
                out.add(target)
    for group in template.of_type("AWS::CodeDeploy::DeploymentGroup"):
        for trigger in as_list(group.prop("TriggerConfigurations")):
            target = ref_like(get_path(trigger, "TriggerTargetArn"))
            if target in topics:
                out.add(target)
    return out


# --------------------------------------------------------------------------------------------
# IAM: what a role may do, counting inline, separate and managed policies in the template


@dataclass
class RolePermissions:
    """Statements that apply to a role, and the AWS managed policies the template cannot show."""

    statements: list[Statement] = field(default_factory=list)
    aws_managed: list[str] = field(default_factory=list)  # policy names, e.g. "AdministratorAccess"
    unresolved: list[str] = field(default_factory=list)  # reasons


_AWS_MANAGED = re.compile(r"^arn:[^:]*:iam::aws:policy/(?:.*/)?([^/]+)$")


def role_permissions(template: Template, role_id: str) -> RolePermissions:
    perms = RolePermissions()
    for doc in identity_policies(template):
        if role_id in doc.principals:
            perms.statements.extend(doc.statements)
    role = template.get(role_id)
    arns = as_list(role.prop("ManagedPolicyArns")) if role is not None else []
    for arn in arns:
        target = ref_like(arn)
        res = template.get(target) if target else None
        if res is not None and res.type == "AWS::IAM::ManagedPolicy":
            if role_id not in _principals(res):  # not already counted through its Roles
                perms.statements.extend(
                    statements_of(res.prop("PolicyDocument"), "Properties.PolicyDocument")
                )
            continue
        text = render(arn)
        m = _AWS_MANAGED.match(text.replace("${AWS::Partition}", "aws"))
        if m:
            perms.aws_managed.append(m.group(1))
        else:
            perms.unresolved.append(f"the managed policy {text} is not in this template")
    return perms


def _principals(policy: Resource) -> set[str]:
    return {t for t in (ref_target(r) for r in as_list(policy.prop("Roles"))) if t}


def statements_allow(
    statements: Iterable[Statement], action: str, *, resource_star_only: bool = False
) -> bool:
    """Some Allow statement covers `action` and no unconditional Deny on `*` does.

    With `resource_star_only`, the Allow must be on `Resource: "*"` (actions without
    resource-level permissions are granted only that way)."""
    items = list(statements)
    for st in items:
        denies = st.effect == "Deny" and st.covers_action(action) and st.resource_is_star()
        if denies and not st.condition:
            return False
    for st in items:
        if not st.allows or not st.covers_action(action):
            continue
        if "NotResource" in st.raw:
            continue
        if resource_star_only and not st.resource_is_star():
            continue
        return True
    return False


# --------------------------------------------------------------------------------------------
# Physical names

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
    names = _referenced(value)
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


# --------------------------------------------------------------------------------------------
# CodeDeploy and ECS


def codedeploy_application(template: Template, group: Resource) -> Resource | None:
    return resolve_named(
        template,
        group.prop("ApplicationName"),
        ("AWS::CodeDeploy::Application",),
        "ApplicationName",
    ).resource


def is_ecs_deployment_group(template: Template, group: Resource) -> bool:
    """A deployment group deploys to ECS when it lists ECSServices, when its application's
    ComputePlatform is ECS, or when its deployment configuration is an ECS one."""
    if group.prop("ECSServices") is not None:
        return True
    app = codedeploy_application(template, group)
    if app is not None and (literal_str(app.prop("ComputePlatform")) or "").upper() == "ECS":
        return True
    config = literal_str(group.prop("DeploymentConfigName")) or ""
    return config.startswith("CodeDeployDefault.ECS")


def ecs_services_of_group(template: Template, group: Resource) -> tuple[list[Resource], bool]:
    """(ECS services in this template that the group deploys, any entry unresolved?)."""
    out: list[Resource] = []
    unresolved = False
    for entry in as_list(group.prop("ECSServices")):
        found = resolve_named(
            template, get_path(entry, "ServiceName"), ("AWS::ECS::Service",), "ServiceName"
        )
        if found.resource is not None:
            out.append(found.resource)
        elif not found.external:
            unresolved = True
    return out, unresolved


def deployment_controller(service: Resource) -> tuple[str | None, bool]:
    """(controller type, known?) of an ECS service; ECS when DeploymentController is absent."""
    controller = service.prop("DeploymentController")
    if controller is None:
        return "ECS", True
    value = get_path(controller, "Type")
    if value is None:
        return ("ECS", True) if isinstance(controller, dict) else (None, False)
    text = literal_str(value)
    return (text.upper(), True) if text is not None else (None, False)


def pipelines_with_deploy(template: Template) -> list[Pipeline]:
    return [p for p in template.pipelines if p.deploy_actions]
