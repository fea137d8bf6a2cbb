"""DL804: a production CodeDeploy ECS deployment that shifts all traffic at once."""

from __future__ import annotations

from collections.abc import Iterator

from deployline.checks.deployments import ecs_services_of_group
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.rules.deployment._shared import (
    ecs_deployment_groups,
    is_production,
    shifts_all_at_once,
)
from deployline.checks.template import Template


class AllAtOnceProduction(Rule):
    """Reported on the deployment group. Production: the group's Environment tag, or that of
    an ECS service it deploys, is prod, production or prd (any case), or a pipeline with two or
    more deploy stages deploys the group in its last one (DeploymentGroupName by Ref or by
    literal name). All at once: DeploymentConfigName absent (CodeDeploy's default),
    CodeDeployDefault.ECSAllAtOnce, or a custom AWS::CodeDeploy::DeploymentConfig of this
    template whose TrafficRoutingConfig.Type is AllAtOnce. UNKNOWN when the configuration is
    named but not in the template (an import, a parameter without default, a custom name
    defined elsewhere) or when a computed Environment tag is all that decides production."""

    id = "DL804"
    severity = Severity.LOW
    family = "Deployment strategy"
    seed = "003 §2"
    title = "Production CodeDeploy ECS deployment shifts all traffic at once"
    resource_types = ("AWS::CodeDeploy::DeploymentGroup", "AWS::CodeDeploy::DeploymentConfig")
    rationale = (
        "All at once moves every user to the new revision in one step: a fault the test "
        "listener did not catch reaches everyone before an alarm can fire. Canary or linear "
        "shifting exposes a slice of traffic first, so alarms stop and roll back the release "
        "while most users are still on the old one."
    )
    remediation = (
        "Set DeploymentConfigName to a canary or linear configuration "
        "(CodeDeployDefault.ECSCanary10Percent5Minutes, "
        "CodeDeployDefault.ECSLinear10PercentEvery1Minutes) or a custom "
        "AWS::CodeDeploy::DeploymentConfig with TimeBasedCanary/TimeBasedLinear routing."
    )
    fix_example = """\
DeploymentGroup:
  Type: AWS::CodeDeploy::DeploymentGroup
  Properties:
    DeploymentConfigName: CodeDeployDefault.ECSCanary10Percent5Minutes
    Tags:
      - {Key: Environment, Value: production}
"""

    def check(self, template: Template) -> Iterator[Hit]:
        path = "Properties.DeploymentConfigName"
        for group in ecs_deployment_groups(template):
            all_at_once = shifts_all_at_once(template, group)
            if all_at_once.value is False:
                continue
            services, _ = ecs_services_of_group(template, group)
            production = is_production(template, group, related=services)
            if production.value is False:
                continue
            if all_at_once.value is None or production.value is None:
                reasons = [a.why for a in (production, all_at_once) if a.value is None]
                yield self.unknown(
                    group.logical_id,
                    path,
                    "cannot tell whether this is a production deployment that shifts all "
                    "traffic at once: " + "; ".join(reasons),
                )
                continue
            yield self.hit(
                group.logical_id,
                path,
                f"production deployment shifts all traffic at once ({production.why}; "
                f"{all_at_once.why}): use a canary or linear configuration",
            )
