"""DL801: a production ECS service behind a load balancer that deploys with a rolling update."""

from __future__ import annotations

from collections.abc import Iterator

from deployline.checks.deployments import deployment_controller
from deployline.checks.intrinsics import get_path, is_intrinsic, literal_str
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.rules.deployment._shared import Answer, is_production
from deployline.checks.template import Resource, Template

# ECS's own deployment strategies (DeploymentConfiguration.Strategy, ECS controller) that
# keep the old revision serving until the new one is proven: not a rolling update.
NATIVE_SHIFTING = frozenset({"BLUE_GREEN", "LINEAR", "CANARY"})


def behind_load_balancer(service: Resource) -> Answer:
    """A service is behind a load balancer when LoadBalancers lists a target group or a
    Classic Load Balancer."""
    value = service.prop("LoadBalancers")
    if value is None:
        return Answer(False)
    if is_intrinsic(value):
        return Answer(None, "LoadBalancers is computed by an intrinsic")
    return Answer(isinstance(value, list) and len(value) > 0)


def rolling(template: Template, service: Resource) -> Answer:
    """Does the service deploy with ECS's rolling update? The ECS controller (the default)
    with no Strategy or Strategy ROLLING does; CODE_DEPLOY, EXTERNAL and ECS's native
    BLUE_GREEN, LINEAR and CANARY strategies do not."""
    controller, known = deployment_controller(service)
    if not known:
        return Answer(None, "the deployment controller is computed by an intrinsic")
    if controller != "ECS":
        return Answer(False)
    strategy_raw = get_path(service.prop("DeploymentConfiguration"), "Strategy")
    if strategy_raw is None:
        if is_intrinsic(service.prop("DeploymentConfiguration")):
            return Answer(None, "DeploymentConfiguration is computed by an intrinsic")
        return Answer(True, "the ECS controller's default strategy is ROLLING")
    strategy = literal_str(template.resolve(strategy_raw))
    if strategy is None:
        return Answer(None, "DeploymentConfiguration.Strategy is computed by an intrinsic")
    return Answer(strategy.upper() not in NATIVE_SHIFTING, f"Strategy is {strategy}")


class RollingProductionService(Rule):
    """Reported on the ECS service. Production: the service's Environment tag is prod,
    production or prd (any case), or a pipeline with two or more deploy stages deploys it in
    its last one. Behind a load balancer: a non-empty LoadBalancers. Rolling: the ECS
    deployment controller (also when DeploymentController is absent) with no
    DeploymentConfiguration.Strategy or Strategy ROLLING. CODE_DEPLOY, EXTERNAL and ECS's
    native BLUE_GREEN, LINEAR and CANARY strategies pass. UNKNOWN when a computed value (the
    Environment tag, the controller, the strategy, LoadBalancers) is the only thing standing
    between the service and a finding."""

    id = "DL801"
    severity = Severity.LOW
    family = "Deployment strategy"
    seed = "003 §2, 004 §4"
    title = "Production ECS service deploys with a rolling update instead of blue/green"
    resource_types = ("AWS::ECS::Service",)
    rationale = (
        "A rolling update replaces production tasks in place: users hit the new revision "
        "before anyone has tested it behind the real load balancer, and going back means "
        "rolling forward again. Blue/green keeps the old fleet serving until the new one has "
        "passed its test listener, and shifts back in seconds."
    )
    remediation = (
        "Deploy production blue/green: ECS's own DeploymentConfiguration.Strategy BLUE_GREEN, "
        "CANARY or LINEAR (with an alternate target group in "
        "LoadBalancers[].AdvancedConfiguration, a bake time and deployment alarms), or the "
        "CODE_DEPLOY controller with an ECS deployment group."
    )
    fix_example = """\
Service:
  Type: AWS::ECS::Service
  Properties:
    DeploymentController: {Type: ECS}
    DeploymentConfiguration:
      Strategy: BLUE_GREEN
      BakeTimeInMinutes: 10
      DeploymentCircuitBreaker: {Enable: true, Rollback: true}
    LoadBalancers:
      - ContainerName: app
        ContainerPort: 8080
        TargetGroupArn: !Ref BlueTargetGroup
        AdvancedConfiguration:
          AlternateTargetGroupArn: !Ref GreenTargetGroup
          ProductionListenerRule: !Ref ProductionRule
          TestListenerRule: !Ref TestRule
          RoleArn: !GetAtt EcsLoadBalancerRole.Arn
    Tags:
      - {Key: Environment, Value: production}
"""

    def check(self, template: Template) -> Iterator[Hit]:
        for service in template.of_type(*self.resource_types):
            answers = {
                "production": is_production(template, service),
                "balanced": behind_load_balancer(service),
                "rolling": rolling(template, service),
            }
            if any(a.value is False for a in answers.values()):
                continue
            open_questions = [a.why for a in answers.values() if a.value is None]
            if open_questions:
                yield self.unknown(
                    service.logical_id,
                    "Properties.DeploymentController",
                    "cannot tell whether this is a production service that deploys with a "
                    "rolling update behind a load balancer: " + "; ".join(open_questions),
                )
                continue
            yield self.hit(
                service.logical_id,
                "Properties.DeploymentController",
                f"production service behind a load balancer deploys with a rolling update "
                f"({answers['production'].why}; {answers['rolling'].why}): use blue/green "
                "(Strategy BLUE_GREEN, CANARY or LINEAR, or the CODE_DEPLOY controller)",
            )
