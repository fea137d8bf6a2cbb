"""DL802: an ECS service with the CODE_DEPLOY controller and no complete blue/green group."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from deployline.checks.deployments import deployment_controller
from deployline.checks.intrinsics import as_list, get_path, is_intrinsic
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.rules.deployment._shared import groups_of_service, listener_arns
from deployline.checks.template import Resource, Template


@dataclass
class GroupGaps:
    """What a deployment group lacks for an ECS blue/green deployment, and what the template
    cannot tell about it."""

    missing: list[str] = field(default_factory=list)
    open: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing and not self.open


def _pair_gaps(pair: object) -> GroupGaps:
    gaps = GroupGaps()
    if is_intrinsic(pair):
        gaps.open.append("the target group pair is computed by an intrinsic")
        return gaps
    groups = get_path(pair, "TargetGroups")
    if is_intrinsic(groups):
        gaps.open.append("TargetGroups is computed by an intrinsic")
    elif len(as_list(groups)) != 2:
        gaps.missing.append(f"two target groups (has {len(as_list(groups))})")
    for key, label in (("ProdTrafficRoute", "a production listener"),
                       ("TestTrafficRoute", "a test listener")):  # fmt: skip
        answer = listener_arns(get_path(pair, key))
        if answer.value is None:
            gaps.open.append(f"{key}: {answer.why}")
        elif not answer.value:
            gaps.missing.append(f"{label} ({key}.ListenerArns)")
    return gaps


def group_gaps(group: Resource) -> GroupGaps:
    """BlueGreenDeploymentConfiguration, and a LoadBalancerInfo.TargetGroupPairInfoList entry
    with two TargetGroups, a ProdTrafficRoute and a TestTrafficRoute (each with ListenerArns).
    With several pairs, the most complete one counts."""
    gaps = GroupGaps()
    blue_green = group.prop("BlueGreenDeploymentConfiguration")
    if blue_green is None:
        gaps.missing.append("BlueGreenDeploymentConfiguration")
    info = group.prop("LoadBalancerInfo")
    pairs = get_path(info, "TargetGroupPairInfoList")
    if is_intrinsic(info) or is_intrinsic(pairs):
        gaps.open.append("LoadBalancerInfo is computed by an intrinsic")
        return gaps
    candidates = [_pair_gaps(p) for p in as_list(pairs)]
    if not candidates:
        gaps.missing.append(
            "LoadBalancerInfo.TargetGroupPairInfoList (two target groups, a production "
            "listener and a test listener)"
        )
        return gaps
    best = min(candidates, key=lambda g: (len(g.missing), len(g.open)))
    gaps.missing += best.missing
    gaps.open += best.open
    return gaps


class CodeDeployBlueGreenGroup(Rule):
    """Reported on the ECS service whose DeploymentController is CODE_DEPLOY. A deployment
    group deploys the service when one of its ECSServices names it (GetAtt Service.Name, Ref,
    a `${Service.Name}` Sub, or the service's literal ServiceName). The service passes when one
    such group has BlueGreenDeploymentConfiguration and a LoadBalancerInfo target group pair
    with two target groups, a ProdTrafficRoute and a TestTrafficRoute listener. UNKNOWN when
    the template cannot tell: a group names its services through an intrinsic or a name it
    does not resolve, or the group's load balancer settings are computed."""

    id = "DL802"
    severity = Severity.HIGH
    family = "Deployment strategy"
    seed = "003 §2"
    title = "CODE_DEPLOY ECS service without a complete blue/green deployment group"
    resource_types = ("AWS::ECS::Service", "AWS::CodeDeploy::DeploymentGroup")
    rationale = (
        "With the CODE_DEPLOY controller ECS hands every deployment to CodeDeploy. Without a "
        "deployment group that has blue/green settings, both target groups and a production "
        "and a test listener, no new revision can be deployed at all, or traffic cannot be "
        "tested before it shifts."
    )
    remediation = (
        "Add an AWS::CodeDeploy::DeploymentGroup for the service with "
        "BlueGreenDeploymentConfiguration, DeploymentStyle BLUE_GREEN/WITH_TRAFFIC_CONTROL and "
        "LoadBalancerInfo.TargetGroupPairInfoList [{TargetGroups: [blue, green], "
        "ProdTrafficRoute: {ListenerArns: [prod]}, TestTrafficRoute: {ListenerArns: [test]}}]."
    )
    fix_example = """\
DeploymentGroup:
  Type: AWS::CodeDeploy::DeploymentGroup
  Properties:
    ApplicationName: !Ref Application
    ServiceRoleArn: !GetAtt CodeDeployRole.Arn
    DeploymentStyle: {DeploymentType: BLUE_GREEN, DeploymentOption: WITH_TRAFFIC_CONTROL}
    ECSServices: [{ClusterName: !Ref Cluster, ServiceName: !GetAtt Service.Name}]
    BlueGreenDeploymentConfiguration:
      DeploymentReadyOption: {ActionOnTimeout: CONTINUE_DEPLOYMENT}
      TerminateBlueInstancesOnDeploymentSuccess:
        {Action: TERMINATE, TerminationWaitTimeInMinutes: 5}
    LoadBalancerInfo:
      TargetGroupPairInfoList:
        - TargetGroups:
            - {Name: !GetAtt Blue.TargetGroupName}
            - {Name: !GetAtt Green.TargetGroupName}
          ProdTrafficRoute: {ListenerArns: [!Ref ProdListener]}
          TestTrafficRoute: {ListenerArns: [!Ref TestListener]}
"""

    def check(self, template: Template) -> Iterator[Hit]:
        path = "Properties.DeploymentController"
        for service in template.of_type("AWS::ECS::Service"):
            controller, known = deployment_controller(service)
            if known and controller != "CODE_DEPLOY":
                continue
            groups, open_reasons = groups_of_service(template, service)
            gaps = {g.logical_id: group_gaps(g) for g in groups}
            if any(g.complete for g in gaps.values()):
                continue
            open_reasons += [
                f"{lid}: {'; '.join(g.open)}" for lid, g in gaps.items() if not g.missing
            ]
            if not known:
                open_reasons.insert(0, "the deployment controller is computed by an intrinsic")
            if open_reasons:
                yield self.unknown(
                    service.logical_id,
                    path,
                    "cannot tell whether a complete blue/green deployment group deploys this "
                    "service: " + "; ".join(open_reasons),
                )
                continue
            if not gaps:
                message = (
                    "the service uses the CODE_DEPLOY controller but no "
                    "AWS::CodeDeploy::DeploymentGroup in the template deploys it"
                )
            else:
                message = "no deployment group of this service is complete for blue/green: " + (
                    "; ".join(
                        f"{lid} lacks {', '.join(g.missing)}" for lid, g in sorted(gaps.items())
                    )
                )
            yield self.hit(service.logical_id, path, message)
