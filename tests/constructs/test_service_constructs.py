"""The environment's constructs refuse bad input with the value and the fix, and accept tokens.

One error per test case, raised by the constructor before anything is built; then, per construct,
a build whose numbers and names are CloudFormation parameters (unresolved tokens), which must not
raise. Nothing here synthesizes: the constructs are built in one stack per module.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import pytest
from aws_cdk import App, Aws, CfnParameter, Duration, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_kms as kms
from aws_cdk.aws_lambda import CfnFunction

from deployline.app import feature_flags
from deployline.constructs.alarm_topic import AlarmTopic
from deployline.constructs.ecs_blue_green import BlueGreenTraffic, ValidationHook
from deployline.constructs.fargate_service import ContainerOptions, FargateWebService, Scaling
from deployline.constructs.load_balancer import ServiceLoadBalancer
from deployline.constructs.service_image import ServiceImage
from deployline.constructs.web_firewall import WebFirewall
from deployline.naming import Namer

CERTIFICATE = "arn:aws:acm:eu-west-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"


@dataclass
class Kit:
    """One stack with what the constructs under test need: a VPC, a key, a blue/green front."""

    stack: Stack
    namer: Namer
    vpc: ec2.IVpc
    key: kms.Key
    front: ServiceLoadBalancer
    traffic: BlueGreenTraffic
    ids: Callable[[], str]

    def number(self, name: str) -> Any:
        return CfnParameter(self.stack, name, type="Number").value_as_number

    def text(self, name: str) -> str:
        return CfnParameter(self.stack, name, type="String").value_as_string


@pytest.fixture(scope="module")
def kit() -> Kit:
    stack = Stack(App(context=feature_flags()), "Kit")
    namer = Namer("payment-processor", "production")
    vpc = ec2.Vpc.from_vpc_attributes(
        stack,
        "Vpc",
        vpc_id="vpc-0abc1234def567890",
        availability_zones=["eu-west-1a", "eu-west-1b"],
        public_subnet_ids=["subnet-0aaa1111bbb22222a", "subnet-0aaa1111bbb22222b"],
    )
    front = ServiceLoadBalancer(
        stack,
        "Front",
        namer=namer,
        vpc=vpc,
        subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
        target_port=8080,
        health_check_path="/health",
        ingress_cidrs=["0.0.0.0/0"],
        blue_green=True,
    )
    assert front.green_target_group and front.production_rule and front.test_rule
    traffic = BlueGreenTraffic(
        stack,
        "Traffic",
        namer=namer,
        blue_target_group=front.target_group,
        green_target_group=front.green_target_group,
        production_rule=front.production_rule,
        test_rule=front.test_rule,
    )
    counter = itertools.count()
    return Kit(
        stack=stack,
        namer=namer,
        vpc=vpc,
        key=kms.Key(stack, "Key"),
        front=front,
        traffic=traffic,
        ids=lambda: f"Construct{next(counter)}",
    )


# --- FargateWebService ----------------------------------------------------------------------


_SCALING = {f.name for f in fields(Scaling)}
_CONTAINER = {f.name for f in fields(ContainerOptions)}


def web_service(kit: Kit, **changes: Any) -> FargateWebService:
    """A service built with `changes`: Scaling and ContainerOptions fields go to their group."""
    scaling = {k: changes.pop(k) for k in _SCALING & set(changes)}
    container = {k: changes.pop(k) for k in _CONTAINER & set(changes)}
    args: dict[str, Any] = {
        "scaling": Scaling(**scaling),
        "container": ContainerOptions(**container),
        "namer": kit.namer,
        "vpc": kit.vpc,
        "subnets": ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
        "key": kit.key,
        "image": ecs.ContainerImage.from_registry("public.ecr.aws/docker/library/caddy:2-alpine"),
        "target_groups": [kit.front.target_group],
        "load_balancer_security_group": kit.front.security_group,
        "container_port": 8080,
        "health_check_path": "/health",
        **changes,
    }
    return FargateWebService(kit.stack, kit.ids(), **args)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cpu": 300}, "cpu must be one of [256, 512, 1024, 2048, 4096, 8192, 16384] Fargate "),
        ({"cpu": 256, "memory": 4096}, "memory 4096 MiB is not offered by Fargate with cpu 256"),
        ({"desired_count": 0}, "desired_count must be at least 1, got 0"),
        ({"min_capacity": 0}, "min_capacity must be at least 1, got 0"),
        ({"min_capacity": 5}, "min_capacity (5) must not exceed max_capacity (4)"),
        ({"desired_count": 6}, "desired_count (6) must lie between min_capacity (1) and "),
        ({"container_port": 0}, "container_port must be 1..65535, got 0"),
        ({"user": "root"}, "user must not be root, got 'root'; use a uid such as 1000:1000"),
        ({"writable_paths": ["tmp"]}, "writable_paths must be absolute directories below /"),
        ({"writable_paths": ["/tmp", "/tmp"]}, "writable_paths must not repeat, got ['/tmp', "),
        ({"health_check_path": "health"}, "health_check_path must start with '/', got 'health'"),
        ({"target_cpu_percent": 5}, "target_cpu_percent must be 10..95, got 5"),
        ({"target_requests_per_task": 0}, "target_requests_per_task must be at least 1, got 0"),
        (
            {"deployment_alarm_names": [f"alarm-{i}" for i in range(11)]},
            "ECS allows at most 10 deployment alarms, got 11",
        ),
    ],
)
def test_web_service_refuses(kit: Kit, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as error:
        web_service(kit, **changes)
    assert message in str(error.value)


def test_web_service_needs_one_target_group_per_deployment_mode(kit: Kit) -> None:
    both = [kit.front.target_group, kit.front.green_target_group]
    with pytest.raises(ValueError, match=r"a rolling service needs 1 target group\(s\), got 2"):
        web_service(kit, target_groups=both)
    with pytest.raises(ValueError, match=r"blue/green needs 2 target group\(s\), got 1"):
        web_service(kit, blue_green=kit.traffic)


def test_web_service_accepts_parameters_for_its_numbers(kit: Kit) -> None:
    desired = kit.number("Desired")
    service = web_service(
        kit,
        cpu=kit.number("Cpu"),
        memory=kit.number("Memory"),
        desired_count=desired,
        min_capacity=kit.number("Min"),
        max_capacity=kit.number("Max"),
        target_cpu_percent=kit.number("CpuTarget"),
        user=kit.text("User"),
    )
    assert kit.stack.resolve(desired) == {"Ref": "Desired"}
    assert service.service.node.default_child is not None


# --- ServiceLoadBalancer --------------------------------------------------------------------


def load_balancer(kit: Kit, **changes: Any) -> ServiceLoadBalancer:
    args: dict[str, Any] = {
        "namer": kit.namer,
        "vpc": kit.vpc,
        "subnets": ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
        "target_port": 8080,
        "health_check_path": "/health",
        "ingress_cidrs": ["0.0.0.0/0"],
        **changes,
    }
    return ServiceLoadBalancer(kit.stack, kit.ids(), **args)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"target_port": 0}, "target_port must be 1..65535, got 0"),
        ({"listener_port": 70000}, "listener_port must be 1..65535, got 70000"),
        ({"test_listener_port": 0}, "test_listener_port must be 1..65535, got 0"),
        ({"ingress_cidrs": []}, "ingress_cidrs must name at least one CIDR, got none"),
        ({"health_check_path": "health"}, "health_check_path must start with '/', got 'health'"),
        (
            {
                "certificate_arn": CERTIFICATE,
                "domain_name": "pay.example.com",
                "listener_port": 443,
            },
            "listener_port is the HTTP port that redirects to HTTPS on 443; got 443",
        ),
        (
            {"certificate_arn": CERTIFICATE},
            "certificate_arn needs domain_name (the name the certificate covers)",
        ),
        (
            {"blue_green": True, "test_listener_port": 80},
            "test_listener_port must differ from the production ports [80], got 80",
        ),
        ({"access_log_expiry_days": 0}, "access_log_expiry_days must be 1..3650, got 0"),
        (
            {"hosted_zone_id": "Z0123456789ABCDEFGHIJ"},
            "hosted_zone_id needs domain_name (the name to certify and point at the load balancer)",
        ),
        (
            {"hosted_zone_id": "zone-1", "domain_name": "pay.example.com"},
            "hosted_zone_id must be a Route 53 hosted zone ID like Z0123456789ABCDEFGHIJ, "
            "got 'zone-1'",
        ),
        (
            {
                "hosted_zone_id": "Z0123456789ABCDEFGHIJ",
                "domain_name": "pay.example.com",
                "blue_green": True,
                "test_listener_port": 443,
            },
            "test_listener_port must differ from the production ports [80, 443], got 443",
        ),
    ],
)
def test_load_balancer_refuses(kit: Kit, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as error:
        load_balancer(kit, **changes)
    assert message in str(error.value)


def test_load_balancer_accepts_parameters_for_its_ports(kit: Kit) -> None:
    front = load_balancer(
        kit,
        blue_green=True,
        target_port=kit.number("TargetPort"),
        listener_port=kit.number("ListenerPort"),
        test_listener_port=kit.number("TestPort"),
        access_log_expiry_days=kit.number("LogDays"),
    )
    assert front.test_rule is not None and front.production_rule is not None


def test_load_balancer_accepts_a_parameter_for_its_hosted_zone(kit: Kit) -> None:
    front = load_balancer(kit, hosted_zone_id=kit.text("ZoneId"), domain_name="pay.example.com")
    assert front.alias_record is not None and front.certificate is not None


# --- WebFirewall and AlarmTopic -------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rule_groups": []}, "rule_groups must name at least one AWS managed rule group"),
        (
            {"rule_groups": ["AWSManagedRulesCommonRuleSet"] * 2},
            "rule_groups must not repeat, got ['AWSManagedRulesCommonRuleSet', "
            "'AWSManagedRulesCommonRuleSet']",
        ),
    ],
)
def test_web_firewall_refuses(kit: Kit, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as error:
        WebFirewall(
            kit.stack,
            kit.ids(),
            namer=kit.namer,
            resource_arn=kit.front.load_balancer.load_balancer_arn,
            key=kit.key,
            **changes,
        )
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("arn", "message"),
    [
        (
            "arn:aws:sqs:eu-west-1:111111111111:ops-alerts",
            "existing_topic_arn must be an SNS topic ARN like "
            "arn:aws:sns:<region>:<account>:<name>, got "
            "'arn:aws:sqs:eu-west-1:111111111111:ops-alerts'",
        ),
        (Aws.NO_VALUE, "existing_topic_arn must be a literal SNS topic ARN"),
    ],
)
def test_alarm_topic_refuses(kit: Kit, arn: str, message: str) -> None:
    with pytest.raises(ValueError) as error:
        AlarmTopic(
            kit.stack,
            kit.ids(),
            namer=kit.namer,
            key=kit.key,
            emails=["oncall@example.com"],
            existing_topic_arn=arn,
        )
    assert message in str(error.value)


def test_alarm_topic_without_addresses_creates_no_topic_and_keeps_the_existing_one(
    kit: Kit,
) -> None:
    alarms = AlarmTopic(
        kit.stack,
        kit.ids(),
        namer=kit.namer,
        existing_topic_arn="arn:aws:sns:eu-west-1:111111111111:ops-alerts",
        key=kit.key,
    )
    assert alarms.topic is None
    [existing] = alarms.topics
    # named by the stack's own partition, region and account: alarms reach no other topic
    assert kit.stack.resolve(existing.topic_arn) == kit.stack.resolve(
        f"arn:{Aws.PARTITION}:sns:{Aws.REGION}:{Aws.ACCOUNT_ID}:ops-alerts"
    )


# --- BlueGreenTraffic -----------------------------------------------------------------------


def traffic(kit: Kit, **changes: Any) -> BlueGreenTraffic:
    front = kit.front
    assert front.green_target_group and front.production_rule and front.test_rule
    args: dict[str, Any] = {
        "namer": kit.namer,
        "blue_target_group": front.target_group,
        "green_target_group": front.green_target_group,
        "production_rule": front.production_rule,
        "test_rule": front.test_rule,
        **changes,
    }
    return BlueGreenTraffic(kit.stack, kit.ids(), **args)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"strategy": "ROLLING"}, "strategy must be BLUE_GREEN, CANARY or LINEAR, got 'ROLLING'"),
        ({"bake_time": Duration.minutes(1441)}, "bake_time must be 0-1440 whole minutes, got 1441"),
        ({"bake_time": Duration.seconds(90)}, "bake_time must be 0-1440 whole minutes, got 1.5"),
        (
            {"step_percent": 10.0},
            "step_percent and step_minutes apply to CANARY and LINEAR only; strategy BLUE_GREEN "
            "shifts all traffic at once",
        ),
        ({"strategy": "CANARY"}, "strategy CANARY needs step_percent and step_minutes"),
        (
            {"strategy": "CANARY", "step_percent": 0.05, "step_minutes": 5},
            "step_percent of CANARY must be 0.1-100.0 in steps of 0.1, got 0.05",
        ),
        (
            {"strategy": "LINEAR", "step_percent": 2.0, "step_minutes": 1},
            "step_percent of LINEAR must be 3.0-100.0 in steps of 0.1, got 2.0",
        ),
        (
            {"strategy": "LINEAR", "step_percent": 10.05, "step_minutes": 1},
            "step_percent of LINEAR must be 3.0-100.0 in steps of 0.1, got 10.05",
        ),
        (
            {"strategy": "LINEAR", "step_percent": 10.0, "step_minutes": 1441},
            "step_minutes must be 0-1440, got 1441",
        ),
        (
            {
                "strategy": "CANARY",
                "step_percent": 10.0,
                "step_minutes": 600,
                "bake_time": Duration.minutes(1440),
            },
            "bake_time plus step_minutes of a canary must not exceed 1980 minutes "
            "(CloudFormation's 33-hour limit), got 2040",
        ),
    ],
)
def test_traffic_shifting_refuses(kit: Kit, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as error:
        traffic(kit, **changes)
    assert message in str(error.value)


def test_traffic_shifting_accepts_parameters_for_its_steps_and_bake_time(kit: Kit) -> None:
    shifting = traffic(
        kit,
        strategy="CANARY",
        step_percent=kit.number("CanaryPercent"),
        step_minutes=kit.number("CanaryMinutes"),
        bake_time=Duration.minutes(kit.number("BakeMinutes")),
    )
    assert shifting.strategy is ecs.DeploymentStrategy.CANARY
    assert shifting.canary_configuration is not None and shifting.linear_configuration is None


# --- ValidationHook -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def blue_green_service(kit: Kit) -> FargateWebService:
    return web_service(
        kit,
        target_groups=[kit.front.target_group, kit.front.green_target_group],
        blue_green=kit.traffic,
    )


def hook(kit: Kit, service: FargateWebService, **changes: Any) -> ValidationHook:
    assert kit.front.test_rule is not None
    args: dict[str, Any] = {
        "namer": kit.namer,
        "service": service.service,
        "test_rule": kit.front.test_rule,
        "key": kit.key,
        **changes,
    }
    return ValidationHook(kit.stack, kit.ids(), **args)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"deadline": Duration.seconds(5)}, "deadline must be 10 seconds to 24 hours, got 5"),
        ({"deadline": Duration.hours(25)}, "deadline must be 10 seconds to 24 hours, got 90000"),
        ({"callback": Duration.seconds(0)}, "callback must be 1-900 seconds, got 0"),
        ({"callback": Duration.minutes(16)}, "callback must be 1-900 seconds, got 960"),
        ({"min_healthy_targets": 0}, "min_healthy_targets must be at least 1, got 0"),
    ],
)
def test_validation_hook_refuses(
    kit: Kit, blue_green_service: FargateWebService, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError) as error:
        hook(kit, blue_green_service, **changes)
    assert message in str(error.value)


def test_validation_hook_accepts_parameters_for_its_timing(
    kit: Kit, blue_green_service: FargateWebService
) -> None:
    built = hook(
        kit,
        blue_green_service,
        deadline=Duration.seconds(kit.number("Deadline")),
        min_healthy_targets=kit.number("MinHealthy"),
    )
    assert isinstance(built.function.node.default_child, CfnFunction)
    assert (
        kit.stack.resolve(built.runtime.function_name) == "payment-processor-deploy-hook-production"
    )


# --- ServiceImage ---------------------------------------------------------------------------


def image(kit: Kit, **changes: Any) -> ServiceImage:
    tag = kit.stack.node.try_find_child("ImageTag")
    args: dict[str, Any] = {
        "image_tag": tag if isinstance(tag, CfnParameter) else CfnParameter(kit.stack, "ImageTag"),
        "repository_name": "payment-processor-images-shared",
        "placeholder_image": "public.ecr.aws/docker/library/caddy:2-alpine",
        **changes,
    }
    return ServiceImage(kit.stack, kit.ids(), **args)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"repository_name": "Payments_Images"}, "repository_name must be an ECR repository name"),
        ({"repository_name": "a"}, "(lowercase letters, digits, . _ - and / between them, 2-256"),
        ({"placeholder_image": " "}, "placeholder_image must name an image, got ''"),
        (
            {"placeholder_command": ["caddy", ""]},
            "placeholder_command must not contain empty arguments, got ['caddy', '']",
        ),
        (
            {"registry_account": "12345"},
            "registry_account must be a 12-digit AWS account ID, got '12345'",
        ),
        (
            {"registry_region": "europe"},
            "registry_region must be a region name like eu-west-1, got 'europe'",
        ),
    ],
)
def test_service_image_refuses(kit: Kit, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as error:
        image(kit, **changes)
    assert message in str(error.value)


def test_service_image_accepts_tokens_and_shares_the_condition_of_its_parameter(kit: Kit) -> None:
    first = image(
        kit,
        repository_name=kit.text("Repository"),
        registry_account=Aws.ACCOUNT_ID,
        registry_region=Aws.REGION,
    )
    second = image(kit)
    assert first.uses_placeholder is second.uses_placeholder
    [_, parts] = kit.stack.resolve(first.repository_arn)["Fn::Join"]
    assert parts[-2:] == [":repository/", {"Ref": "Repository"}]
