"""The ECS POST_TEST_TRAFFIC_SHIFT hook against a moto server.

moto answers DescribeRules and DescribeTargetHealth over HTTP from a real load balancer, listener,
weighted test rule and target groups, so the rule reading, the choice of target group and the
error codes are moto's. moto cannot make a target unhealthy or keep it in `initial` (a
registered IP target is always healthy there), so those tests answer DescribeTargetHealth with
the XML ELB sends, injected into botocore before the request leaves (the client still parses it).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from deployline.runtime import clients, deploy_hook

from .conftest import inject_errors, make_client

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
REVISION = "arn:aws:ecs:eu-west-1:123456789012:service-revision/pay-cluster/pay-service/93134235"
SERVICE = "arn:aws:ecs:eu-west-1:123456789012:service/pay-cluster/pay-service"
ELB_XMLNS = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"


def hook_event(stage: str = "POST_TEST_TRAFFIC_SHIFT", **extra: Any) -> dict[str, Any]:
    """An invocation as ECS sends it (developer guide, "Lambda hooks ... lifecycle payloads")."""
    return {
        "executionId": "3a0345ba-b029-404b-890d-7da2a4b266aa",
        "lifecycleStage": stage,
        "resourceArn": "arn:aws:ecs:eu-west-1:123456789012:service-deployment/pay-cluster/"
        "pay-service/EZe5RNVLH6PPzHXINuP28",
        "executionDetails": {
            "serviceArn": SERVICE,
            "targetServiceRevisionArn": REVISION,
            "testTrafficWeights": {},
            "productionTrafficWeights": {},
        },
        **extra,
    }


@dataclass
class Alb:
    """A load balancer in moto: a test listener whose rule forwards to blue and green."""

    url: str
    elbv2: Any
    rule: str
    blue: str
    green: str

    def weigh(self, blue: int, green: int) -> None:
        self.elbv2.modify_rule(
            RuleArn=self.rule,
            Actions=[
                {
                    "Type": "forward",
                    "ForwardConfig": {
                        "TargetGroups": [
                            {"TargetGroupArn": self.blue, "Weight": blue},
                            {"TargetGroupArn": self.green, "Weight": green},
                        ]
                    },
                }
            ],
        )

    def register(self, group: str, *ips: str) -> None:
        self.elbv2.register_targets(
            TargetGroupArn=group, Targets=[{"Id": ip, "Port": 8080} for ip in ips]
        )

    def clear(self) -> None:
        for group in (self.blue, self.green):
            health = self.elbv2.describe_target_health(TargetGroupArn=group)
            targets = [d["Target"] for d in health["TargetHealthDescriptions"]]
            if targets:
                self.elbv2.deregister_targets(TargetGroupArn=group, Targets=targets)


@pytest.fixture(scope="module")
def alb_in_moto(moto_url: str) -> Alb:
    ec2 = make_client("ec2", moto_url)
    elbv2 = make_client("elbv2", moto_url)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"eu-west-1{z}")[
            "Subnet"
        ]["SubnetId"]
        for i, z in ((1, "a"), (2, "b"))
    ]
    alb = elbv2.create_load_balancer(Name="pay-alb", Subnets=subnets, Type="application")
    groups = [
        elbv2.create_target_group(
            Name=name,
            Protocol="HTTP",
            Port=8080,
            VpcId=vpc,
            TargetType="ip",
            HealthCheckPath="/health",
        )["TargetGroups"][0]["TargetGroupArn"]
        for name in ("pay-blue", "pay-green")
    ]
    listener = elbv2.create_listener(
        LoadBalancerArn=alb["LoadBalancers"][0]["LoadBalancerArn"],
        Protocol="HTTP",
        Port=8080,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": groups[0]}],
    )["Listeners"][0]["ListenerArn"]
    rule = elbv2.create_rule(
        ListenerArn=listener,
        Priority=1,
        Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/*"]}}],
        Actions=[{"Type": "forward", "TargetGroupArn": groups[0]}],
    )["Rules"][0]["RuleArn"]
    return Alb(url=moto_url, elbv2=elbv2, rule=rule, blue=groups[0], green=groups[1])


@pytest.fixture
def alb(alb_in_moto: Alb) -> Iterator[Alb]:
    """The module's load balancer with all test traffic on green and no target registered."""
    alb_in_moto.clear()
    alb_in_moto.weigh(blue=0, green=100)
    yield alb_in_moto


def settings(alb: Alb, **extra: str) -> dict[str, str]:
    return {"TEST_RULE_ARN": alb.rule, **extra}


def run(alb: Alb, event: Any = None, *, client: Any = None, now: float = NOW, **env: str) -> Any:
    return deploy_hook.run(
        hook_event() if event is None else event,
        elbv2=client or alb.elbv2,
        env=settings(alb, **env),
        now=lambda: now,
    )


def target_health_xml(*targets: tuple[str, str, str, str]) -> bytes:
    """A DescribeTargetHealth answer as ELB sends it: (ip, state, reason, description) each."""
    members = "".join(
        f"<member><Target><Id>{ip}</Id><Port>8080</Port></Target>"
        "<HealthCheckPort>8080</HealthCheckPort><TargetHealth>"
        f"<State>{state}</State>"
        + (f"<Reason>{reason}</Reason><Description>{description}</Description>" if reason else "")
        + "</TargetHealth></member>"
        for ip, state, reason, description in targets
    )
    return (
        f'<DescribeTargetHealthResponse xmlns="{ELB_XMLNS}"><DescribeTargetHealthResult>'
        f"<TargetHealthDescriptions>{members}</TargetHealthDescriptions>"
        "</DescribeTargetHealthResult><ResponseMetadata><RequestId>1</RequestId>"
        "</ResponseMetadata></DescribeTargetHealthResponse>"
    ).encode()


def elb_error_xml(code: str, message: str) -> bytes:
    return (
        f'<ErrorResponse xmlns="{ELB_XMLNS}"><Error><Type>Sender</Type><Code>{code}</Code>'
        f"<Message>{message}</Message></Error><RequestId>1</RequestId></ErrorResponse>"
    ).encode()


def answering(alb: Alb, operation: str, body: bytes, *, status: int = 200, times: int = 1) -> Any:
    """A fresh client whose first `times` attempts of `operation` get `body` instead of moto's
    answer (inject_errors serves any status, 200 included). The client makes exactly `times`
    attempts: botocore's `max_attempts` counts the retries after the first."""
    client = make_client("elbv2", alb.url, max_attempts=times - 1)
    inject_errors(client, operation, times=times, status=status, body=body, content_type="text/xml")
    return client


# --- healthy, not yet, unhealthy ------------------------------------------------------------


def test_succeeds_when_every_target_of_the_test_group_is_healthy(alb: Alb) -> None:
    alb.register(alb.green, "10.0.1.10", "10.0.2.11")

    outcome = run(alb)

    assert outcome.status == "SUCCEEDED"
    assert outcome.message == "all 2 target(s) in pay-green are healthy"
    assert outcome.response() == {"hookStatus": "SUCCEEDED"}


def test_judges_whichever_group_receives_all_test_traffic(alb: Alb) -> None:
    # After a deployment the groups swap roles: the next new revision registers in "blue".
    alb.weigh(blue=100, green=0)
    alb.register(alb.blue, "10.0.1.20")
    alb.register(alb.green, "10.0.1.10")

    outcome = run(alb)

    assert (outcome.status, outcome.message) == (
        "SUCCEEDED",
        "all 1 target(s) in pay-blue are healthy",
    )


def test_waits_while_no_target_is_registered_and_sets_the_deadline(alb: Alb) -> None:
    outcome = run(alb)

    assert outcome.status == "IN_PROGRESS"
    assert outcome.message == "no target registered in pay-green yet"
    assert outcome.response() == {
        "hookStatus": "IN_PROGRESS",
        "callBackDelay": 15,
        "hookDetails": {"deployline": {"deadline": NOW + 300, "checks": 1}},
    }


def test_keeps_the_first_deadline_and_fails_once_it_has_passed(alb: Alb) -> None:
    first = run(alb, DEADLINE_SECONDS="60", CALLBACK_SECONDS="20")
    details = first.response()["hookDetails"]
    second = run(alb, hook_event(hookDetails=details), now=NOW + 30, DEADLINE_SECONDS="60")
    assert second.response()["hookDetails"] == {"deployline": {"deadline": NOW + 60, "checks": 2}}

    late = run(
        alb,
        hook_event(hookDetails=second.response()["hookDetails"]),
        now=NOW + 45,
        DEADLINE_SECONDS="60",
        CALLBACK_SECONDS="20",
    )

    assert late.status == "FAILED"
    assert late.message == (
        "the new tasks were not healthy within 60s of the first check (3 checks): "
        "no target registered in pay-green yet"
    )
    assert late.response() == {"hookStatus": "FAILED"}


def test_ignores_hook_details_that_are_not_its_own(alb: Alb) -> None:
    event = hook_event(hookDetails={"S3_BUCKET_NAME": "approvals", "deployline": "not ours"})

    outcome = run(alb, event)

    assert outcome.response()["hookDetails"] == {"deployline": {"deadline": NOW + 300, "checks": 1}}


def test_waits_while_test_traffic_is_still_split(alb: Alb) -> None:
    alb.weigh(blue=50, green=50)
    alb.register(alb.green, "10.0.1.10")

    outcome = run(alb)

    assert outcome.status == "IN_PROGRESS"
    assert (
        outcome.message == "test traffic is not on one target group yet (pay-blue=50, pay-green=50)"
    )


def test_fails_when_a_target_is_unhealthy_and_says_why(alb: Alb) -> None:
    client = answering(
        alb,
        "DescribeTargetHealth",
        target_health_xml(
            ("10.0.1.10", "healthy", "", ""),
            (
                "10.0.2.17",
                "unhealthy",
                "Target.ResponseCodeMismatch",
                "Health checks failed with these codes: [500]",
            ),
        ),
    )

    outcome = run(alb, client=client)

    assert outcome.status == "FAILED"
    assert outcome.message == (
        "target 10.0.2.17:8080 in pay-green is unhealthy: Target.ResponseCodeMismatch (Health "
        "checks failed with these codes: [500]). ECS rolls back; look at the new tasks' logs and "
        "the health check path."
    )


def test_waits_while_targets_pass_their_first_health_checks(alb: Alb) -> None:
    client = answering(
        alb,
        "DescribeTargetHealth",
        target_health_xml(
            ("10.0.1.10", "healthy", "", ""),
            (
                "10.0.2.11",
                "initial",
                "Elb.RegistrationInProgress",
                "Target registration is in progress",
            ),
        ),
    )

    outcome = run(alb, client=client)

    assert outcome.status == "IN_PROGRESS"
    assert outcome.message == "1 of 2 target(s) in pay-green healthy (need 1; others initial)"


def test_draining_targets_do_not_count(alb: Alb) -> None:
    client = answering(
        alb,
        "DescribeTargetHealth",
        target_health_xml(
            ("10.0.1.10", "healthy", "", ""),
            ("10.0.2.11", "draining", "Target.DeregistrationInProgress", "deregistering"),
            ("10.0.2.12", "unhealthy.draining", "Target.DeregistrationInProgress", "leaving"),
        ),
    )

    outcome = run(alb, client=client)

    assert (outcome.status, outcome.message) == (
        "SUCCEEDED",
        "all 1 target(s) in pay-green are healthy",
    )


def test_waits_for_the_minimum_number_of_healthy_targets(alb: Alb) -> None:
    alb.register(alb.green, "10.0.1.10", "10.0.2.11")

    outcome = run(alb, MIN_HEALTHY_TARGETS="3")

    assert outcome.status == "IN_PROGRESS"
    assert outcome.message == "2 of 2 target(s) in pay-green healthy (need 3; others too few)"


# --- AWS errors -----------------------------------------------------------------------------


def test_throttling_that_outlasts_the_retries_asks_ecs_to_call_again(alb: Alb) -> None:
    client = answering(
        alb, "DescribeRules", elb_error_xml("Throttling", "Rate exceeded"), status=400, times=3
    )

    outcome = run(alb, client=client)

    assert outcome.status == "IN_PROGRESS"
    assert outcome.message == "Elastic Load Balancing answered Throttling; trying again"


def test_an_unreachable_endpoint_asks_ecs_to_call_again(alb: Alb) -> None:
    client = make_client("elbv2", "http://127.0.0.1:9", max_attempts=1)

    outcome = run(alb, client=client)

    assert outcome.status == "IN_PROGRESS"
    assert outcome.message.startswith("Elastic Load Balancing did not answer (Could not connect")


def test_a_rule_that_does_not_exist_fails_with_the_fix(alb: Alb) -> None:
    missing = alb.rule.rsplit("/", 1)[0] + "/0000000000000000"

    outcome = run(alb, TEST_RULE_ARN=missing)

    assert outcome.status == "FAILED"
    assert "(RuleNotFound: " in outcome.message
    assert outcome.message.endswith(
        "check TEST_RULE_ARN and the hook role's elasticloadbalancing:DescribeRules and "
        "DescribeTargetHealth permissions"
    )


def test_a_denied_call_fails_with_the_fix(alb: Alb) -> None:
    client = answering(
        alb,
        "DescribeTargetHealth",
        elb_error_xml("AccessDenied", "not authorized to perform DescribeTargetHealth"),
        status=403,
    )

    outcome = run(alb, client=client)

    assert outcome.status == "FAILED"
    assert "(AccessDenied: " in outcome.message
    assert "DescribeTargetHealth permissions" in outcome.message


def test_a_rule_without_a_forward_action_fails(alb: Alb) -> None:
    alb.elbv2.modify_rule(
        RuleArn=alb.rule,
        Actions=[
            {
                "Type": "fixed-response",
                "FixedResponseConfig": {"StatusCode": "503", "ContentType": "text/plain"},
            }
        ],
    )

    outcome = run(alb)

    assert (outcome.status, outcome.message) == (
        "FAILED",
        f"the test listener rule {alb.rule} has no forward action",
    )


# --- bad events and configuration -----------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (None, "not an ECS lifecycle hook event: expected a JSON object, got NoneType"),
        (
            {"DeploymentId": "d-1", "LifecycleEventHookExecutionId": "h-1"},
            "not an ECS lifecycle hook event: no executionDetails: is this an ECS lifecycle "
            "hook invocation?",
        ),
        (
            {**hook_event(), "executionId": None},
            "not an ECS lifecycle hook event: missing executionId",
        ),
        (
            {**hook_event(), "executionDetails": {"serviceArn": SERVICE}},
            "not an ECS lifecycle hook event: missing executionDetails.targetServiceRevisionArn",
        ),
        (
            hook_event("PRODUCTION_TRAFFIC_SHIFT"),
            "this hook judges POST_TEST_TRAFFIC_SHIFT but ECS invoked it at "
            "PRODUCTION_TRAFFIC_SHIFT: set the service's lifecycle hook stages to "
            "[POST_TEST_TRAFFIC_SHIFT]",
        ),
    ],
    ids=["none", "codedeploy-event", "no-execution-id", "no-revision", "other-stage"],
)
def test_an_event_it_cannot_judge_fails_with_the_reason(
    alb: Alb, event: Any, expected: str
) -> None:
    outcome = deploy_hook.run(event, elbv2=alb.elbv2, env=settings(alb), now=lambda: NOW)

    assert (outcome.status, outcome.message) == ("FAILED", expected)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"TEST_RULE_ARN": ""}, "TEST_RULE_ARN must be the ARN of the test listener rule"),
        (
            {"TEST_RULE_ARN": "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/a/b"},
            "listener-rule/app/...), got 'arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup",
        ),
        ({"DEADLINE_SECONDS": "soon"}, "DEADLINE_SECONDS must be an integer from 10 to 86400"),
        ({"CALLBACK_SECONDS": "0"}, "CALLBACK_SECONDS must be an integer from 1 to 900, got 0"),
        ({"MIN_HEALTHY_TARGETS": "-1"}, "MIN_HEALTHY_TARGETS must be an integer from 1 to 1000"),
    ],
)
def test_misconfiguration_fails_with_the_fix(alb: Alb, env: dict[str, str], expected: str) -> None:
    outcome = deploy_hook.run(
        hook_event(), elbv2=alb.elbv2, env=settings(alb, **env), now=lambda: NOW
    )

    assert outcome.status == "FAILED"
    assert outcome.message.startswith("the hook is misconfigured: ")
    assert expected in outcome.message


def test_settings_defaults() -> None:
    rule = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/a/b/c/d"
    assert deploy_hook.HookSettings.from_env({"TEST_RULE_ARN": rule}) == deploy_hook.HookSettings(
        test_rule_arn=rule, deadline_seconds=300, callback_seconds=15, min_healthy_targets=1
    )


# --- the Lambda entry point -----------------------------------------------------------------


def test_handler_answers_the_protocol_only_and_logs_the_reason(
    alb: Alb, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    alb.register(alb.green, "10.0.1.10")
    monkeypatch.setattr(clients, "client", lambda service: alb.elbv2)
    monkeypatch.setenv("TEST_RULE_ARN", alb.rule)

    with caplog.at_level(logging.INFO, logger="deployline.deploy_hook"):
        answer = deploy_hook.handler(hook_event(), None)

    assert answer == {"hookStatus": "SUCCEEDED"}
    [record] = [r for r in caplog.records if r.name == "deployline.deploy_hook"]
    assert '"message": "POST_TEST_TRAFFIC_SHIFT hook: SUCCEEDED"' in record.getMessage()
    assert '"detail": "all 1 target(s) in pay-green are healthy"' in record.getMessage()
    assert f'"revision": "{REVISION}"' in record.getMessage()


def test_handler_answers_failed_when_it_cannot_make_a_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_region(service: str) -> Any:
        raise RuntimeError("You must specify a region.")

    monkeypatch.setattr(clients, "client", no_region)

    assert deploy_hook.handler(hook_event(), None) == {"hookStatus": "FAILED"}


def test_handler_never_raises_on_garbage(monkeypatch: pytest.MonkeyPatch, alb: Alb) -> None:
    monkeypatch.setattr(clients, "client", lambda service: alb.elbv2)

    assert deploy_hook.handler(["not", "an", "event"], None) == {"hookStatus": "FAILED"}
