"""DL803: a CodeDeploy ECS deployment group without alarms, or that ignores them."""

from __future__ import annotations

from collections.abc import Iterator

from deployline.checks.intrinsics import as_list, bool_of, get_path, is_intrinsic, literal_str
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.rules.deployment._shared import ecs_deployment_groups
from deployline.checks.template import Resource, Template

STOP_ON_ALARM = "DEPLOYMENT_STOP_ON_ALARM"


class CodeDeployAlarms(Rule):
    """Reported on the deployment group (AWS::CodeDeploy::DeploymentGroup deploying to ECS:
    ECSServices, an ECS application, or an ECS deployment configuration), once per clause.
    Alarms: AlarmConfiguration with Enabled true and at least one entry in Alarms (CodeDeploy
    treats an absent Enabled as false). Rollback: AutoRollbackConfiguration with Enabled true
    and DEPLOYMENT_STOP_ON_ALARM among its Events. UNKNOWN where an intrinsic the template does
    not resolve hides one of them."""

    id = "DL803"
    severity = Severity.MEDIUM
    family = "Deployment strategy"
    seed = "003 §2"
    title = "CodeDeploy ECS deployment group without alarms, or not rolling back on them"
    resource_types = ("AWS::CodeDeploy::DeploymentGroup",)
    rationale = (
        "A blue/green deployment that watches no alarm shifts all traffic to a revision that "
        "returns errors as long as its tasks are healthy; one with alarms that does not roll "
        "back on DEPLOYMENT_STOP_ON_ALARM stops half-way and leaves traffic where it was when "
        "the alarm fired."
    )
    remediation = (
        "Set AlarmConfiguration {Enabled: true, Alarms: [{Name: <5xx or latency alarm>}]} and "
        "AutoRollbackConfiguration {Enabled: true, Events: [DEPLOYMENT_FAILURE, "
        "DEPLOYMENT_STOP_ON_ALARM]}."
    )
    fix_example = """\
DeploymentGroup:
  Type: AWS::CodeDeploy::DeploymentGroup
  Properties:
    AlarmConfiguration:
      Enabled: true
      Alarms: [{Name: !Ref TargetGroup5xxAlarm}]
    AutoRollbackConfiguration:
      Enabled: true
      Events: [DEPLOYMENT_FAILURE, DEPLOYMENT_STOP_ON_ALARM]
"""

    def check(self, template: Template) -> Iterator[Hit]:
        for group in ecs_deployment_groups(template):
            yield from self._alarms(group)
            yield from self._rollback(group)

    def _alarms(self, group: Resource) -> Iterator[Hit]:
        path = "Properties.AlarmConfiguration"
        config = group.prop("AlarmConfiguration")
        if config is None:
            yield self.hit(group.logical_id, path, "the deployment group watches no alarms")
            return
        enabled_raw = get_path(config, "Enabled")
        alarms = get_path(config, "Alarms")
        if (
            is_intrinsic(config)
            or is_intrinsic(alarms)
            or (enabled_raw is not None and bool_of(enabled_raw) is None)
        ):
            yield self.unknown(
                group.logical_id, path, "the alarm configuration is computed by an intrinsic"
            )
            return
        if not as_list(alarms):
            yield self.hit(group.logical_id, f"{path}.Alarms", "AlarmConfiguration lists no alarms")
        elif bool_of(enabled_raw) is not True:
            yield self.hit(
                group.logical_id,
                f"{path}.Enabled",
                "AlarmConfiguration is not enabled (Enabled is absent or false): its alarms "
                "are ignored",
            )

    def _rollback(self, group: Resource) -> Iterator[Hit]:
        path = "Properties.AutoRollbackConfiguration"
        config = group.prop("AutoRollbackConfiguration")
        if is_intrinsic(config):
            yield self.unknown(
                group.logical_id, path, "AutoRollbackConfiguration is computed by an intrinsic"
            )
            return
        enabled_raw = get_path(config, "Enabled")
        enabled = bool_of(enabled_raw)
        events_raw = get_path(config, "Events")
        events = [literal_str(e) for e in as_list(events_raw)]
        if enabled is True and STOP_ON_ALARM in events:
            return
        if enabled is not False and (
            (enabled is None and enabled_raw is not None)
            or is_intrinsic(events_raw)
            or None in events
        ):
            yield self.unknown(
                group.logical_id, path, "the rollback settings are computed by an intrinsic"
            )
            return
        if config is None:
            message = "no AutoRollbackConfiguration: an alarm stops the deployment mid-shift"
        elif enabled is not True:
            message = "AutoRollbackConfiguration is not enabled"
        else:
            message = f"AutoRollbackConfiguration does not roll back on {STOP_ON_ALARM}"
        yield self.hit(group.logical_id, path, message)
