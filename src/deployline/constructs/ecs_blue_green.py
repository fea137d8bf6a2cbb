"""ECS-native blue/green for a Fargate service behind an ALB: how traffic shifts, what ECS may
touch while it shifts it, and the hook that judges the new tasks before production traffic moves.

A deployment under the ECS controller with the BLUE_GREEN, CANARY or LINEAR strategy starts the
new (green) revision in the alternate target group, moves all test traffic to it by re-weighting
the test listener rule, invokes the POST_TEST_TRAFFIC_SHIFT hook, then re-weights the production
listener rule (all at once, in a canary step, or linearly), keeps the old revision for the bake
time while the deployment alarms watch, and rolls back when the hook fails, an alarm fires or the
circuit breaker trips.

- `BlueGreenTraffic`: the strategy, its steps and bake time, the alternate target and the
  infrastructure role ECS assumes to register targets and re-weight exactly the two rules.
  `FargateWebService(blue_green=...)` applies it.
- `ValidationHook`: the `deploy_hook` runtime function as the service's lifecycle hook, with a
  role ECS assumes to invoke exactly that function.
"""

from __future__ import annotations

from typing import Literal

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Token, Validations
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from deployline import defaults
from deployline.constructs import compliance
from deployline.constructs.runtime_function import (
    RuntimeFunction,
    accept_function_design,
    acknowledge_function_findings,
)
from deployline.naming import Kind, Namer

Strategy = Literal["BLUE_GREEN", "CANARY", "LINEAR"]
#: ECS accepts bake times and step waits of 0 to 1440 minutes.
MAX_MINUTES = 1440
#: CloudFormation rejects a canary deployment whose bake time plus canary wait exceeds 33 hours.
MAX_CANARY_TOTAL_MINUTES = 33 * 60
#: How long the old revision stays after production traffic has moved. Default: 10 minutes.
DEFAULT_BAKE_TIME = Duration.minutes(10)
#: How long the hook waits for the new targets to become healthy. Default: 5 minutes.
DEFAULT_HOOK_DEADLINE = Duration.minutes(5)
#: How long ECS waits before invoking the hook again while targets register. Default: 15 s.
DEFAULT_HOOK_CALLBACK = Duration.seconds(15)
_STEP_PERCENT = {"CANARY": (0.1, 100.0), "LINEAR": (3.0, 100.0)}
# Elastic Load Balancing's Describe* actions support no resource-level permission.
_DESCRIBE_LOAD_BALANCING = [
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeRules",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
]


class BlueGreenTraffic(Construct):
    """How ECS moves traffic to a new revision, and the role it assumes to do it.

    Attributes:
        strategy: the ECS deployment strategy.
        bake_time: how long the old revision stays after production traffic has moved.
        canary_configuration: the canary step (CANARY), else None.
        linear_configuration: the linear steps (LINEAR), else None.
        alternate_target: the green target group and the two rules, for
            `FargateService.load_balancer_target`.
        role: the infrastructure role ECS assumes for the load balancer.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        namer: Namer,
        blue_target_group: elbv2.IApplicationTargetGroup,
        green_target_group: elbv2.IApplicationTargetGroup,
        production_rule: elbv2.ApplicationListenerRule,
        test_rule: elbv2.ApplicationListenerRule,
        strategy: Strategy = "BLUE_GREEN",
        step_percent: float | None = None,
        step_minutes: int | None = None,
        bake_time: Duration = DEFAULT_BAKE_TIME,
    ) -> None:
        """
        Args:
            namer: names the infrastructure role `{service}-ecs-load-balancer-{env}`.
            blue_target_group: the target group the service starts on.
            green_target_group: the alternate target group.
            production_rule: the production listener rule that forwards to both groups.
            test_rule: the test listener rule that forwards to both groups.
            strategy: BLUE_GREEN (all at once), CANARY or LINEAR. Default: BLUE_GREEN.
            step_percent: percent of production traffic per step (canary: the first step;
                CANARY 0.1-100, LINEAR 3-100, in steps of 0.1). Required with CANARY and LINEAR.
            step_minutes: minutes between steps, 0-1440. Required with CANARY and LINEAR.
            bake_time: how long the old revision stays after all production traffic has moved
                (a rollback meanwhile is instant), 0-1440 minutes. Default: 10 minutes.
        """
        super().__init__(scope, id)
        _validate_traffic(strategy, step_percent, step_minutes, bake_time)
        self.strategy = ecs.DeploymentStrategy(strategy)
        self.bake_time = bake_time
        shift = (
            ecs.TrafficShiftConfig(
                step_percent=step_percent, step_bake_time=Duration.minutes(step_minutes or 0)
            )
            if strategy != "BLUE_GREEN"
            else None
        )
        self.canary_configuration = shift if strategy == "CANARY" else None
        self.linear_configuration = shift if strategy == "LINEAR" else None
        self.role = self._infrastructure_role(
            namer, [blue_target_group, green_target_group], [production_rule, test_rule]
        )
        self.alternate_target = ecs.AlternateTarget(
            "AlternateTarget",
            alternate_target_group=green_target_group,
            production_listener=ecs.ListenerRuleConfiguration.application_listener_rule(
                production_rule
            ),
            test_listener=ecs.ListenerRuleConfiguration.application_listener_rule(test_rule),
            role=self.role,
        )

    def _infrastructure_role(
        self,
        namer: Namer,
        groups: list[elbv2.IApplicationTargetGroup],
        rules: list[elbv2.ApplicationListenerRule],
    ) -> iam.Role:
        """AmazonECSInfrastructureRolePolicyForLoadBalancers, narrowed to this service's two
        target groups and two rules."""
        service = namer.name("service", Kind.ECS)
        role = ecs_service_role(
            self,
            "InfrastructureRole",
            role_name=namer.name("ecs-load-balancer", Kind.IAM_ROLE),
            description=f"deployline: ECS moves the targets and re-weights the listener rules of "
            f"{service} during blue/green deployments",
            policy_name="ShiftTraffic",
            statements=[
                iam.PolicyStatement(
                    sid="ReadLoadBalancer",
                    actions=_DESCRIBE_LOAD_BALANCING,
                    resources=["*"],  # ELB Describe* support no resource-level scope
                ),
                iam.PolicyStatement(
                    sid="MoveTargets",
                    actions=[
                        "elasticloadbalancing:RegisterTargets",
                        "elasticloadbalancing:DeregisterTargets",
                    ],
                    resources=[group.target_group_arn for group in groups],
                ),
                iam.PolicyStatement(
                    sid="ReweightRules",
                    actions=["elasticloadbalancing:ModifyRule"],
                    resources=[rule.listener_rule_arn for rule in rules],
                ),
            ],
        )
        Validations.of(role).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                reason=f"{compliance.role_label(role)}: the Elastic Load Balancing Describe "
                "actions ECS reads listeners, rules and target health with support no "
                f"resource-level permission; what {service}'s deployments change is scoped to "
                "its two target groups and two listener rules",
            )
        )
        return role


def _validate_traffic(
    strategy: str, step_percent: float | None, step_minutes: int | None, bake_time: Duration
) -> None:
    if strategy not in ("BLUE_GREEN", "CANARY", "LINEAR"):
        raise ValueError(f"strategy must be BLUE_GREEN, CANARY or LINEAR, got {strategy!r}")
    if not bake_time.is_unresolved():
        minutes = bake_time.to_minutes(integral=False)
        if not (float(minutes).is_integer() and 0 <= minutes <= MAX_MINUTES):
            raise ValueError(f"bake_time must be 0-1440 whole minutes, got {minutes} minutes")
    if strategy == "BLUE_GREEN":
        if step_percent is not None or step_minutes is not None:
            raise ValueError(
                "step_percent and step_minutes apply to CANARY and LINEAR only; strategy "
                "BLUE_GREEN shifts all traffic at once"
            )
        return
    if step_percent is None or step_minutes is None:
        raise ValueError(f"strategy {strategy} needs step_percent and step_minutes")
    low, high = _STEP_PERCENT[strategy]
    if not Token.is_unresolved(step_percent) and not (
        low <= step_percent <= high and float(round(step_percent * 10, 6)).is_integer()
    ):
        raise ValueError(
            f"step_percent of {strategy} must be {low}-{high} in steps of 0.1, got {step_percent}"
        )
    if not Token.is_unresolved(step_minutes) and not 0 <= step_minutes <= MAX_MINUTES:
        raise ValueError(f"step_minutes must be 0-1440, got {step_minutes}")
    known = not (Token.is_unresolved(step_minutes) or bake_time.is_unresolved())
    total = bake_time.to_minutes() + step_minutes if known else 0
    if strategy == "CANARY" and total > MAX_CANARY_TOTAL_MINUTES:
        raise ValueError(
            f"bake_time plus step_minutes of a canary must not exceed {MAX_CANARY_TOTAL_MINUTES} "
            f"minutes (CloudFormation's 33-hour limit), got {total}"
        )


class ValidationHook(Construct):
    """The `deploy_hook` runtime function, run by ECS at POST_TEST_TRAFFIC_SHIFT.

    It reads the test listener rule to find the target group that receives all test traffic and
    answers from that group's target health, so it needs no network path to the tasks.

    Attributes:
        runtime: the RuntimeFunction (function, role, log group).
        function: the Lambda function.
        invoke_role: the role ECS assumes to invoke exactly that function.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        namer: Namer,
        service: ecs.BaseService,
        test_rule: elbv2.ApplicationListenerRule,
        key: kms.IKey,
        deadline: Duration = DEFAULT_HOOK_DEADLINE,
        callback: Duration = DEFAULT_HOOK_CALLBACK,
        min_healthy_targets: int = 1,
        log_retention_days: int = defaults.LOG_RETENTION_DAYS,
        removal: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        """
        Args:
            namer: names the function `{service}-deploy-hook-{env}` and its roles.
            service: the ECS service (ECS controller) whose deployments the hook judges.
            test_rule: the test listener rule ECS re-weights.
            key: CMK for the function's logs and environment.
            deadline: how long after its first invocation the new targets may take to become
                healthy, 10 seconds to 24 hours. Default: 5 minutes.
            callback: how long ECS waits before invoking it again, 1-900 seconds.
                Default: 15 seconds.
            min_healthy_targets: healthy targets required. Default: 1.
            log_retention_days: Default: 30.
            removal: the log group's removal policy. Default: RETAIN.
        """
        super().__init__(scope, id)
        _validate_hook(deadline, callback, min_healthy_targets)
        self.runtime = self._function(
            namer, service, test_rule, key, deadline, callback, min_healthy_targets,
            log_retention_days, removal,
        )  # fmt: skip
        self.function: lambda_.Function = self.runtime.function
        self.invoke_role = self._invoke_role(namer)
        service.add_lifecycle_hook(
            ecs.DeploymentLifecycleLambdaTarget(
                self.function,
                "ValidationHook",
                lifecycle_stages=[ecs.DeploymentLifecycleStage.POST_TEST_TRAFFIC_SHIFT],
                role=self.invoke_role,
            )
        )
        self._acknowledge()

    def _function(
        self,
        namer: Namer,
        service: ecs.BaseService,
        test_rule: elbv2.ApplicationListenerRule,
        key: kms.IKey,
        deadline: Duration,
        callback: Duration,
        min_healthy_targets: int,
        log_retention_days: int,
        removal: RemovalPolicy,
    ) -> RuntimeFunction:
        return RuntimeFunction(
            self,
            "Function",
            namer=namer,
            name="deploy-hook",
            handler="deploy_hook.handler",
            description=f"deployline: POST_TEST_TRAFFIC_SHIFT hook of "
            f"{namer.name('service', Kind.ECS)}: the new tasks' target health before "
            "production traffic shifts",
            key=key,
            environment={
                "TEST_RULE_ARN": test_rule.listener_rule_arn,
                "DEADLINE_SECONDS": _seconds(deadline),
                "CALLBACK_SECONDS": _seconds(callback),
                "MIN_HEALTHY_TARGETS": str(min_healthy_targets),
            },
            timeout=Duration.minutes(1),
            log_retention_days=log_retention_days,
            removal=removal,
            statements=[
                iam.PolicyStatement(
                    sid="ReadTestTargetHealth",
                    actions=[
                        "elasticloadbalancing:DescribeRules",
                        "elasticloadbalancing:DescribeTargetHealth",
                    ],
                    resources=["*"],  # ELB Describe* support no resource-level scope
                )
            ],
        )

    def _invoke_role(self, namer: Namer) -> iam.Role:
        return ecs_service_role(
            self,
            "InvokeRole",
            role_name=namer.name("deploy-hook-invoke", Kind.IAM_ROLE),
            description=f"deployline: ECS invokes {self.runtime.function_name} during "
            f"deployments of {namer.name('service', Kind.ECS)}",
            policy_name="InvokeHook",
            statements=[
                iam.PolicyStatement(
                    sid="InvokeValidationHook",
                    actions=["lambda:InvokeFunction"],
                    resources=[self.function.function_arn],
                )
            ],
        )

    def _acknowledge(self) -> None:
        name = self.runtime.function_name
        acknowledge_function_findings(self.runtime)
        Validations.of(self.runtime.role).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                reason=f"{name} ({compliance.role_label(self.runtime.role)}) calls "
                "elasticloadbalancing:DescribeRules and DescribeTargetHealth only, which support "
                "no resource-level permission; it changes nothing",
            )
        )
        reason = (
            f"ECS invokes {name} at POST_TEST_TRAFFIC_SHIFT and reads its answer: a failed "
            "invocation rolls the deployment back, and ECS invokes again while it answers "
            "IN_PROGRESS"
        )
        accept_function_design(
            self.runtime,
            dead_letters=f"{reason}; a DLQ adds nothing",
            concurrency=f"{reason}; reserved concurrency would take from the account's "
            "unreserved pool, which new accounts cannot spare",
            network=f"{name} reads target health from the Elastic Load Balancing API and never "
            "connects to the tasks: it needs no VPC access",
        )


def ecs_service_role(
    scope: Construct,
    construct_id: str,
    *,
    role_name: str,
    description: str,
    policy_name: str,
    statements: list[iam.PolicyStatement],
) -> iam.Role:
    """A role ECS itself assumes (the trust policy AWS documents for ECS infrastructure roles),
    its permissions inline so they exist as soon as the role ECS is handed does."""
    return iam.Role(
        scope,
        construct_id,
        role_name=role_name,
        assumed_by=iam.ServicePrincipal("ecs.amazonaws.com"),
        description=description,
        inline_policies={policy_name: iam.PolicyDocument(statements=statements)},
    )


def _seconds(duration: Duration) -> str:
    if duration.is_unresolved():
        return Token.as_string(duration.to_seconds())
    return str(int(duration.to_seconds()))


def _validate_hook(deadline: Duration, callback: Duration, min_healthy_targets: int) -> None:
    if not deadline.is_unresolved() and not 10 <= deadline.to_seconds() <= 86_400:
        raise ValueError(f"deadline must be 10 seconds to 24 hours, got {deadline.to_seconds()} s")
    if not callback.is_unresolved() and not 1 <= callback.to_seconds() <= 900:
        raise ValueError(f"callback must be 1-900 seconds, got {callback.to_seconds()} s")
    if not Token.is_unresolved(min_healthy_targets) and min_healthy_targets < 1:
        raise ValueError(f"min_healthy_targets must be at least 1, got {min_healthy_targets}")
