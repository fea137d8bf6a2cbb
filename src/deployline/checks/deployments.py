"""ECS services and CodeDeploy deployment groups: controllers, which group deploys which
service, and what a pipeline deploys to production."""

from __future__ import annotations

from deployline.checks.intrinsics import as_list, get_path, literal_str
from deployline.checks.pipeline import Pipeline
from deployline.checks.template import Resource, Template


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
                found = template.named(action.config(key), types, prop).resource
                if found is not None:
                    out.add(found.logical_id)
    return out


def codedeploy_application(template: Template, group: Resource) -> Resource | None:
    return template.named(
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
        found = template.named(
            get_path(entry, "ServiceName"), ("AWS::ECS::Service",), "ServiceName"
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
