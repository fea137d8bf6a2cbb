"""The constructs refuse bad literals with the value and the fix, and accept tokens.

Part 1, tokens: a number or a name that is an unresolved token (a CfnParameter) is never judged
by a constructor; it reaches the template as a reference to the parameter. Each case builds one
stack and synthesizes it (marked slow).

Part 2, literals: per construct, each bad literal raises a ValueError naming the argument, the
value and the fix, before anything is synthesized.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, CfnParameter, Duration, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Template
from stand_in import fixture_pipeline  # tests/constructs/stand_in.py

from deployline.app import feature_flags
from deployline.constructs.artifact_store import ArtifactStore
from deployline.constructs.bootstrap import BootstrapEnvironment
from deployline.constructs.deployment_history import DeployedEnvironment
from deployline.constructs.fargate_service import FargateWebService
from deployline.constructs.load_balancer import ServiceLoadBalancer
from deployline.constructs.notifications import Notifications
from deployline.constructs.runtime_function import RuntimeFunction
from deployline.constructs.service_alarms import ServiceAlarms
from deployline.naming import Namer

NAMER = Namer("payment-processor", "production")
SHARED = Namer("payment-processor", "shared")


def fresh_stack(name: str = "Tokens") -> Stack:
    return Stack(App(context=feature_flags()), name)


def number(stack: Stack, name: str) -> Any:
    return CfnParameter(stack, name, type="Number").value_as_number


def text(stack: Stack, name: str) -> str:
    return CfnParameter(stack, name, type="String").value_as_string


def resources(stack: Stack, kind: str) -> list[dict[str, Any]]:
    template = Template.from_stack(stack).to_json()
    return [r["Properties"] for r in template["Resources"].values() if r["Type"] == kind]


def front(stack: Stack) -> ServiceLoadBalancer:
    vpc = ec2.Vpc.from_vpc_attributes(
        stack,
        "Vpc",
        vpc_id="vpc-0abc1234def567890",
        availability_zones=["eu-west-1a", "eu-west-1b"],
        public_subnet_ids=["subnet-0aaa1111bbb22222a", "subnet-0aaa1111bbb22222b"],
    )
    return ServiceLoadBalancer(
        stack,
        "Front",
        namer=NAMER,
        vpc=vpc,
        subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
        target_port=8080,
        health_check_path="/health",
        ingress_cidrs=["0.0.0.0/0"],
    )


# --- Part 1: tokens ---------------------------------------------------------------------------


@pytest.mark.slow
def test_web_service_takes_its_port_and_grace_period_from_parameters() -> None:
    stack = fresh_stack()
    lb = front(stack)
    FargateWebService(
        stack,
        "Service",
        namer=NAMER,
        vpc=lb.load_balancer.vpc,
        subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
        key=kms.Key(stack, "Key"),
        image=ecs.ContainerImage.from_registry("public.ecr.aws/docker/library/caddy:2-alpine"),
        target_groups=[lb.target_group],
        load_balancer_security_group=lb.security_group,
        container_port=number(stack, "Port"),
        health_check_path=text(stack, "HealthPath"),
        health_check_grace_period=Duration.seconds(number(stack, "Grace")),
    )
    [task] = resources(stack, "AWS::ECS::TaskDefinition")
    [container] = task["ContainerDefinitions"]
    assert container["PortMappings"][0]["ContainerPort"] == {"Ref": "Port"}
    assert {"Name": "PORT", "Value": {"Ref": "Port"}} in container["Environment"]
    command = json.dumps(container["HealthCheck"]["Command"])
    assert '{"Ref": "Port"}' in command and '{"Ref": "HealthPath"}' in command
    assert container["HealthCheck"]["StartPeriod"] == {"Ref": "Grace"}
    [service] = resources(stack, "AWS::ECS::Service")
    assert service["HealthCheckGracePeriodSeconds"] == {"Ref": "Grace"}


@pytest.mark.slow
def test_service_alarms_take_their_thresholds_from_parameters() -> None:
    stack = fresh_stack()
    lb = front(stack)
    ServiceAlarms(
        stack,
        "Alarms",
        namer=NAMER,
        target_groups=[("blue", lb.target_group)],
        error_rate_percent=number(stack, "ErrorRate"),
        p99_latency=Duration.seconds(number(stack, "P99Seconds")),
        unhealthy_hosts=number(stack, "Unhealthy"),
        evaluation_minutes=number(stack, "Minutes"),
    )
    alarms = {a["AlarmName"]: a for a in resources(stack, "AWS::CloudWatch::Alarm")}
    rate = alarms["payment-processor-blue-5xx-rate-production"]
    hosts = alarms["payment-processor-blue-unhealthy-hosts-production"]
    latency = alarms["payment-processor-blue-p99-latency-production"]
    assert rate["Threshold"] == {"Ref": "ErrorRate"}
    assert hosts["Threshold"] == {"Ref": "Unhealthy"}
    assert latency["Threshold"] == {"Ref": "P99Seconds"}
    for alarm in (rate, hosts, latency):
        assert alarm["EvaluationPeriods"] == {"Ref": "Minutes"}
        assert alarm["DatapointsToAlarm"] == {"Ref": "Minutes"}
    assert {"Ref": "ErrorRate"} in rate["AlarmDescription"]["Fn::Join"][1]
    assert {"Ref": "P99Seconds"} in latency["AlarmDescription"]["Fn::Join"][1]


@pytest.mark.slow
def test_runtime_function_takes_its_memory_and_timeout_from_parameters() -> None:
    stack = fresh_stack()
    RuntimeFunction(
        stack,
        "Fn",
        namer=SHARED,
        name="validate",
        handler="validation.handler",
        description="test",
        key=kms.Key(stack, "Key"),
        memory_size=number(stack, "Memory"),
        timeout=Duration.seconds(number(stack, "Timeout")),
    )
    [function] = resources(stack, "AWS::Lambda::Function")
    assert function["MemorySize"] == {"Ref": "Memory"}
    assert function["Timeout"] == {"Ref": "Timeout"}


@pytest.mark.slow
def test_artifact_store_takes_its_expiry_from_parameters() -> None:
    stack = fresh_stack()
    ArtifactStore(
        stack,
        "Store",
        bucket_prefix=SHARED.bucket_prefix("artifacts"),
        access_logs_prefix=SHARED.bucket_prefix("access-logs"),
        key=kms.Key(stack, "Key"),
        expiry_days=number(stack, "Days"),
        noncurrent_expiry_days=number(stack, "OldDays"),
    )
    rules = [
        rule
        for bucket in resources(stack, "AWS::S3::Bucket")
        for rule in bucket["LifecycleConfiguration"]["Rules"]
    ]
    expirations = [r.get("ExpirationInDays") for r in rules]
    noncurrent = [r.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays") for r in rules]
    # the artifact bucket and its access-log bucket both expire after the parameter's days
    assert expirations.count({"Ref": "Days"}) == 2
    assert {"Ref": "OldDays"} in noncurrent


@pytest.mark.slow
def test_notifications_take_their_retries_and_event_age_from_parameters() -> None:
    stack = fresh_stack()
    _, pipeline, _ = fixture_pipeline(stack)
    Notifications(
        stack,
        "Alerts",
        namer=SHARED,
        pipeline=pipeline,
        emails=[text(stack, "Email")],
        retry_attempts=number(stack, "Retries"),
        max_event_age=Duration.seconds(number(stack, "EventAge")),
    )
    targets = [t for rule in resources(stack, "AWS::Events::Rule") for t in rule["Targets"]]
    assert targets
    for target in targets:
        assert target["RetryPolicy"] == {
            "MaximumRetryAttempts": {"Ref": "Retries"},
            "MaximumEventAgeInSeconds": {"Ref": "EventAge"},
        }


def test_bootstrap_environment_takes_its_qualifier_from_a_parameter() -> None:
    stack = fresh_stack()
    environment = BootstrapEnvironment(account="123456789012", qualifier=text(stack, "Qualifier"))
    arn = json.dumps(stack.resolve(environment.role_arn("deploy")))
    assert '{"Ref": "Qualifier"}' in arn


def test_deployed_environment_takes_its_account_and_region_from_parameters() -> None:
    stack = fresh_stack()
    environment = DeployedEnvironment.named(
        Namer("payment-processor", "dr"),
        account=text(stack, "Account"),
        region=text(stack, "Region"),
    )
    environment.validate()
