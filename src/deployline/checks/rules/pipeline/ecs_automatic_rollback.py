"""DL406: an ECS deployment with no automatic rollback."""

from __future__ import annotations

from collections.abc import Iterator

from deployline.checks.deployments import deployment_controller, is_ecs_deployment_group
from deployline.checks.intrinsics import as_list, bool_of, get_path, is_intrinsic, literal_str
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.template import Template


class EcsAutomaticRollback(Rule):
    """Clause 1 (on the ECS service): a service with the ECS deployment controller (the
    default) needs DeploymentConfiguration.DeploymentCircuitBreaker {Enable: true, Rollback:
    true}. Clause 2 (on the deployment group): a CodeDeploy ECS deployment group needs
    AutoRollbackConfiguration {Enabled: true} with DEPLOYMENT_FAILURE among its Events. A
    pipeline stage's `OnFailure: {Result: ROLLBACK}` rolls back the pipeline, not the service,
    and satisfies neither clause."""

    id = "DL406"
    severity = Severity.HIGH
    family = "Pipeline structure"
    seed = "002 §8, 003 §2"
    title = "ECS deployment without automatic rollback"
    resource_types = ("AWS::ECS::Service", "AWS::CodeDeploy::DeploymentGroup")
    rationale = (
        "A release whose tasks never become healthy keeps replacing tasks (or leaves a broken "
        "green fleet) until someone notices; the service should return to the last good "
        "revision on its own."
    )
    remediation = (
        "ECS controller: DeploymentConfiguration.DeploymentCircuitBreaker {Enable: true, "
        "Rollback: true}. CodeDeploy: AutoRollbackConfiguration {Enabled: true, Events: "
        "[DEPLOYMENT_FAILURE, DEPLOYMENT_STOP_ON_ALARM]}."
    )
    fix_example = """\
Service:
  Type: AWS::ECS::Service
  Properties:
    DeploymentConfiguration:
      DeploymentCircuitBreaker: {Enable: true, Rollback: true}
"""

    def check(self, template: Template) -> Iterator[Hit]:
        yield from self._services(template)
        yield from self._groups(template)

    def _services(self, template: Template) -> Iterator[Hit]:
        for service in template.of_type("AWS::ECS::Service"):
            controller, known = deployment_controller(service)
            if known and controller != "ECS":
                continue
            breaker = service.prop("DeploymentConfiguration", "DeploymentCircuitBreaker")
            path = "Properties.DeploymentConfiguration.DeploymentCircuitBreaker"
            enable = bool_of(get_path(breaker, "Enable"))
            rollback = bool_of(get_path(breaker, "Rollback"))
            if enable is True and rollback is True:
                continue
            hidden = (
                is_intrinsic(service.prop("DeploymentConfiguration"))
                or is_intrinsic(breaker)
                or (enable is None and get_path(breaker, "Enable") is not None)
                or (rollback is None and get_path(breaker, "Rollback") is not None)
            )
            if hidden or not known:
                yield self.unknown(
                    service.logical_id,
                    path,
                    "the deployment controller or circuit breaker is computed by an intrinsic",
                )
                continue
            if breaker is None:
                message = "the ECS rolling deployment has no DeploymentCircuitBreaker"
            elif enable is not True:
                message = "the deployment circuit breaker is not enabled"
            else:
                message = "the deployment circuit breaker does not roll back (Rollback: false)"
            yield self.hit(service.logical_id, path, message)

    def _groups(self, template: Template) -> Iterator[Hit]:
        for group in template.of_type("AWS::CodeDeploy::DeploymentGroup"):
            if not is_ecs_deployment_group(template, group):
                continue
            config = group.prop("AutoRollbackConfiguration")
            path = "Properties.AutoRollbackConfiguration"
            if is_intrinsic(config):
                yield self.unknown(
                    group.logical_id, path, "AutoRollbackConfiguration is computed by an intrinsic"
                )
                continue
            enabled_raw = get_path(config, "Enabled")
            enabled = bool_of(enabled_raw)
            events_raw = get_path(config, "Events")
            events = [literal_str(e) for e in as_list(events_raw)]
            if enabled is True and "DEPLOYMENT_FAILURE" in events:
                continue
            if (
                (enabled is None and enabled_raw is not None)
                or is_intrinsic(events_raw)
                or (None in events and enabled is True)
            ):
                yield self.unknown(
                    group.logical_id, path, "the rollback settings are computed by an intrinsic"
                )
                continue
            if config is None:
                message = "the ECS deployment group has no AutoRollbackConfiguration"
            elif enabled is not True:
                message = "AutoRollbackConfiguration is not enabled"
            else:
                message = "AutoRollbackConfiguration does not roll back on DEPLOYMENT_FAILURE"
            yield self.hit(group.logical_id, path, message)
