"""What the deployment-strategy rules (DL801-DL804) share: is a resource production, which
deployment groups deploy an ECS service, and how a deployment group shifts traffic.

Production follows the catalog: a resource whose `Environment` tag is prod, production or prd
(any case), or what a pipeline with two or more deploy stages deploys in its last one. A tag
behind an intrinsic that the template does not resolve leaves the answer open (`None`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from deployline.checks.deployments import (
    ecs_services_of_group,
    is_ecs_deployment_group,
    production_deploy_targets,
)
from deployline.checks.intrinsics import get_path, is_intrinsic, literal_str
from deployline.checks.template import PRODUCTION_NAMES, Resource, Template

ALL_AT_ONCE = "CodeDeployDefault.ECSAllAtOnce"
DEPLOYMENT_GROUP = "AWS::CodeDeploy::DeploymentGroup"
DEPLOYMENT_CONFIG = "AWS::CodeDeploy::DeploymentConfig"


@dataclass(frozen=True)
class Answer:
    """A yes/no that the template may not hold: `value` None means UNKNOWN, `why` says why
    (or, for a yes, what made it so)."""

    value: bool | None
    why: str = ""


def environment_tag(template: Template, res: Resource) -> Answer:
    """Is `res` tagged as production? A `Ref` to a parameter with a literal default counts as
    that default; any other intrinsic is UNKNOWN."""
    raw_tags = res.properties.get("Tags")
    if is_intrinsic(raw_tags):
        return Answer(None, f"the tags of {res.logical_id} are computed by an intrinsic")
    raw = res.tags.get("Environment")
    if raw is None:
        return Answer(False)
    text = literal_str(template.resolve(raw))
    if text is None:
        return Answer(None, f"the Environment tag of {res.logical_id} is computed by an intrinsic")
    is_prod = text.strip().lower() in PRODUCTION_NAMES
    return Answer(is_prod, f"{res.logical_id} is tagged Environment={text}")


def is_production(template: Template, res: Resource, *, related: Sequence[Resource] = ()) -> Answer:
    """Production when `res` (or one of `related`, e.g. the services a deployment group
    deploys) is tagged so, or when the last deploy stage of a multi-stage pipeline deploys it.
    UNKNOWN when a tag that could decide is computed and nothing else says production."""
    if res.logical_id in production_deploy_targets(template):
        return Answer(True, f"{res.logical_id} is deployed by a pipeline's last deploy stage")
    open_reason = ""
    for candidate in (res, *related):
        answer = environment_tag(template, candidate)
        if answer.value is True:
            return answer
        if answer.value is None and not open_reason:
            open_reason = answer.why
    if open_reason:
        return Answer(None, open_reason)
    return Answer(False)


def groups_of_service(template: Template, service: Resource) -> tuple[list[Resource], list[str]]:
    """(ECS deployment groups of this template that deploy `service`, reasons why other groups
    might: an ECSServices entry the template cannot resolve)."""
    found: list[Resource] = []
    open_reasons: list[str] = []
    for group in template.of_type(DEPLOYMENT_GROUP):
        if not is_ecs_deployment_group(template, group):
            continue
        services, unresolved = ecs_services_of_group(template, group)
        if service in services:
            found.append(group)
        elif unresolved:
            open_reasons.append(
                f"{group.logical_id} names an ECS service the template does not resolve"
            )
    return found, open_reasons


def ecs_deployment_groups(template: Template) -> list[Resource]:
    return [g for g in template.of_type(DEPLOYMENT_GROUP) if is_ecs_deployment_group(template, g)]


def shifts_all_at_once(template: Template, group: Resource) -> Answer:
    """Does the deployment group shift all traffic at once? Absent DeploymentConfigName is
    CodeDeploy's default, ECSAllAtOnce. A custom AWS::CodeDeploy::DeploymentConfig of this
    template (by Ref or by its literal name) is read: TrafficRoutingConfig.Type AllAtOnce (or
    no TrafficRoutingConfig) is all at once. A name the template cannot resolve is UNKNOWN."""
    raw = group.prop("DeploymentConfigName")
    if raw is None:
        return Answer(True, f"no DeploymentConfigName: CodeDeploy uses {ALL_AT_ONCE}")
    value = template.resolve(raw)
    text = literal_str(value)
    if text is not None and text.startswith("CodeDeployDefault."):
        return Answer(text == ALL_AT_ONCE, f"DeploymentConfigName is {text}")
    found = template.named(value, (DEPLOYMENT_CONFIG,), "DeploymentConfigName")
    config = found.resource
    if config is None:
        return Answer(None, f"the deployment configuration is not in this template: {found.reason}")
    routing = config.prop("TrafficRoutingConfig")
    if routing is None:
        return Answer(True, f"{config.logical_id} has no TrafficRoutingConfig (AllAtOnce)")
    kind = literal_str(template.resolve(get_path(routing, "Type")))
    if kind is None:
        return Answer(None, f"the traffic routing of {config.logical_id} is computed")
    return Answer(kind == "AllAtOnce", f"{config.logical_id} routes traffic {kind}")


def listener_arns(route: Any) -> Answer:
    """Does a traffic route (ProdTrafficRoute/TestTrafficRoute) name at least one listener?"""
    if route is None:
        return Answer(False)
    if is_intrinsic(route):
        return Answer(None, "the traffic route is computed by an intrinsic")
    arns = get_path(route, "ListenerArns")
    if is_intrinsic(arns):
        return Answer(None, "the listener ARNs are computed by an intrinsic")
    return Answer(isinstance(arns, list) and len(arns) > 0)
