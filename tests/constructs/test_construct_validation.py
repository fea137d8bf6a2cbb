"""The constructs refuse bad literals with the value and the fix, and accept tokens.

Part 1, tokens: a number or a name that is an unresolved token (a CfnParameter) is never judged
by a constructor; it reaches the template as a reference to the parameter. Each case builds one
stack and synthesizes it (marked slow).

Part 2, literals: per construct, each bad literal raises a ValueError naming the argument, the
value and the fix, before anything is synthesized.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, cast

import pytest
from aws_cdk import App, CfnParameter, Duration, Environment, Stack
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codecommit as codecommit
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template
from stand_in import fixture_pipeline  # tests/constructs/stand_in.py

from deployline.app import feature_flags
from deployline.constructs.artifact_store import ArtifactStore
from deployline.constructs.bootstrap import BootstrapEnvironment
from deployline.constructs.build_projects import BuildProject, default_build_image
from deployline.constructs.container_pipeline import ContainerPipeline
from deployline.constructs.deployment_event_bus import DeploymentEventBus
from deployline.constructs.deployment_event_forwarder import DeploymentEventForwarder
from deployline.constructs.deployment_history import (
    DeployedEnvironment,
    DeploymentHistory,
    allow_eventbridge_to_use_key,
)
from deployline.constructs.ecr_repository import ImageRepository
from deployline.constructs.fargate_service import FargateWebService
from deployline.constructs.load_balancer import ServiceLoadBalancer, certificate_in_this_stack
from deployline.constructs.network import ExistingVpc, NetworkMode, ServiceNetwork
from deployline.constructs.notifications import Notifications
from deployline.constructs.pipeline_monitoring import MonitoredBuild, PipelineMonitoring
from deployline.constructs.pipeline_roles import ActionRole, acknowledge_iam5
from deployline.constructs.pipeline_settings import (
    BuildSettings,
    ScanSettings,
    StackTarget,
    SynthSettings,
    TestSettings,
)
from deployline.constructs.pipeline_source import (
    BucketSource,
    CodeCommitRepositorySource,
    ConnectionSource,
    PipelineSourceAction,
    validate_source,
)
from deployline.constructs.public_image_cache import PublicEcrPullThroughCache
from deployline.constructs.runtime_function import RuntimeFunction, accept_function_design
from deployline.constructs.service_alarms import ServiceAlarms
from deployline.constructs.stack_delivery import StackDelivery
from deployline.naming import Namer
from deployline.stacks.regional_artifacts import RegionalArtifactsStack

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


@pytest.mark.synth
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


@pytest.mark.synth
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


@pytest.mark.synth
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


@pytest.mark.synth
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


@pytest.mark.synth
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


# --- Part 2: literals -------------------------------------------------------------------------


@dataclass
class Kit:
    """One stack with a pipeline CMK, a stand-in pipeline and its artifact bucket."""

    stack: Stack
    key: kms.Key
    pipeline: codepipeline.Pipeline
    ids: Callable[[], str]

    @property
    def bucket(self) -> s3.IBucket:
        return self.pipeline.artifact_bucket


@pytest.fixture(scope="module")
def kit() -> Kit:
    stack = fresh_stack("Kit")
    key, pipeline, _ = fixture_pipeline(stack)
    counter = itertools.count()
    return Kit(stack=stack, key=key, pipeline=pipeline, ids=lambda: f"C{next(counter)}")


def refuses(message: str, build: Callable[[], object]) -> None:
    with pytest.raises(ValueError) as error:
        build()
    assert message in str(error.value)


# --- PipelineSourceAction ---

CONNECTION = "arn:aws:codestar-connections:eu-west-1:123456789012:connection/0f1e2d3c"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            ConnectionSource(connection_arn=CONNECTION, repository="no-owner"),
            "repository must be 'owner/name' (GitLab: 'group/subgroup/name'), got 'no-owner'",
        ),
        (
            ConnectionSource(connection_arn="arn:aws:iam::1:role/x", repository="acme/app"),
            "connection_arn must be a CodeStar connection ARN "
            "(arn:aws:codestar-connections:<region>:<account>:connection/<id>), "
            "got 'arn:aws:iam::1:role/x'",
        ),
        (
            ConnectionSource(connection_arn=CONNECTION, repository="acme/app", branch="a..b"),
            "branch must be a git branch name like 'main', got 'a..b'",
        ),
        (
            ConnectionSource(
                connection_arn=CONNECTION, repository="acme/app", file_paths=cast(Any, "src/**")
            ),
            "file_paths must be a list of globs, got the string 'src/**'",
        ),
        (
            ConnectionSource(
                connection_arn=CONNECTION,
                repository="acme/app",
                exclude_file_paths=[f"d{i}/**" for i in range(9)],
            ),
            "exclude_file_paths allows at most 8 globs (a CodePipeline trigger limit), got 9",
        ),
        (
            ConnectionSource(connection_arn=CONNECTION, repository="acme/app", file_paths=[""]),
            "file_paths entries must be 1-255 characters, got ''",
        ),
        (
            BucketSource(object_key="/source.zip"),
            "object_key must be an S3 key without wildcards or a leading '/', like 'source.zip', "
            "got '/source.zip'",
        ),
        (
            BucketSource(object_key="src/*.zip"),
            "object_key must be an S3 key without wildcards or a leading '/'",
        ),
        (
            cast(Any, "github"),
            "source must be a ConnectionSource, BucketSource or CodeCommitRepositorySource, "
            "got str",
        ),
    ],
)
def test_source_action_refuses(kit: Kit, source: Any, message: str) -> None:
    refuses(
        message,
        lambda: PipelineSourceAction(
            kit.stack,
            kit.ids(),
            source=source,
            pipeline=kit.pipeline,
            artifact_bucket=kit.bucket,
            key=kit.key,
            namer=SHARED,
        ),
    )


def test_source_action_refuses_a_bad_codecommit_branch(kit: Kit) -> None:
    repository = codecommit.Repository.from_repository_name(kit.stack, kit.ids(), "payments")
    refuses(
        "branch must be a git branch name like 'main', got '-x'",
        lambda: validate_source(CodeCommitRepositorySource(repository=repository, branch="-x")),
    )


# --- BuildProject ---

SPEC = {"version": "0.2", "phases": {"build": {"commands": ["make"]}}}


def build_project(kit: Kit, **changes: Any) -> BuildProject:
    args: dict[str, Any] = {
        "project_name": "payment-processor-build-shared",
        "role_name": "payment-processor-build-shared",
        "description": "test",
        "buildspec": SPEC,
        "key": kit.key,
        "artifact_bucket": kit.bucket,
        **changes,
    }
    return BuildProject(kit.stack, kit.ids(), **args)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"timeout": Duration.minutes(90)},
            "project payment-processor-build-shared timeout must be a whole number of minutes "
            "from 5 to 60, got 90; a step that needs longer is stuck or should be split",
        ),
        ({"timeout": Duration.seconds(150)}, "timeout must be a whole number of minutes"),
        (
            {"buildspec": {"version": "0.2"}},
            "buildspec of payment-processor-build-shared must be a mapping with 'version' and "
            "'phases', got dict with keys ['version']",
        ),
        (
            {
                "statements": [
                    iam.PolicyStatement(
                        sid="WriteOwnLogs", actions=["s3:GetObject"], resources=["*"]
                    )
                ]
            },
            "statement IDs must be unique in payment-processor-build-shared's policy: "
            "['WriteOwnLogs']",
        ),
    ],
)
def test_build_project_refuses(kit: Kit, changes: dict[str, Any], message: str) -> None:
    refuses(message, lambda: build_project(kit, **changes))


def test_build_image_refuses_an_unknown_platform() -> None:
    refuses(
        "platform must be linux/amd64 or linux/arm64, got 'windows/amd64'",
        lambda: default_build_image("windows/amd64"),
    )


# --- ArtifactStore, ImageRepository, BootstrapEnvironment ---


def test_artifact_store_refuses_noncurrent_versions_kept_longer_than_current_ones(
    kit: Kit,
) -> None:
    refuses(
        "noncurrent_expiry_days must not exceed expiry_days, got 40 > 30",
        lambda: ArtifactStore(
            kit.stack,
            kit.ids(),
            bucket_prefix="a",
            access_logs_prefix="b",
            key=kit.key,
            expiry_days=30,
            noncurrent_expiry_days=40,
        ),
    )


@pytest.mark.parametrize("keep", [0, 1001])
def test_image_repository_refuses_keep_images_out_of_range(kit: Kit, keep: int) -> None:
    refuses(
        f"keep_images must be between 1 and 1000, got {keep}; set pipeline.ecr_keep_images",
        lambda: ImageRepository(
            kit.stack, kit.ids(), repository_name="x-images", key=kit.key, keep_images=keep
        ),
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"account": "12345"}, "account must be a 12-digit AWS account ID, got '12345'"),
        ({"account": "12345678901a"}, "account must be a 12-digit AWS account ID"),
        (
            {"qualifier": "Hnb659fds"},
            "qualifier must be the lowercase letters and digits `cdk bootstrap --qualifier` "
            "took, got 'Hnb659fds'",
        ),
    ],
)
def test_bootstrap_environment_refuses(changes: dict[str, Any], message: str) -> None:
    refuses(message, lambda: BootstrapEnvironment(**changes))


def test_bootstrap_role_arn_refuses_an_unknown_kind() -> None:
    refuses(
        "kind must be one of ['cfn-exec', 'deploy', 'file-publishing', 'image-publishing', "
        "'lookup'], got 'admin'",
        lambda: BootstrapEnvironment().role_arn("admin"),
    )


# --- RuntimeFunction ---


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"handler": "nowhere.handler"},
            "handler must name a module in deployline/runtime and its function, like "
            "'validation.handler'; got 'nowhere.handler'",
        ),
        ({"handler": "validation"}, "handler must name a module in deployline/runtime"),
        ({"memory_size": 64}, "memory_size must be 128..10240 MiB, got 64"),
        ({"memory_size": 20_000}, "memory_size must be 128..10240 MiB, got 20000"),
    ],
)
def test_runtime_function_refuses(kit: Kit, changes: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {
        "namer": SHARED,
        "name": "validate",
        "handler": "validation.handler",
        "description": "test",
        "key": kit.key,
        **changes,
    }
    refuses(message, lambda: RuntimeFunction(kit.stack, kit.ids(), **args))


def test_runtime_function_acceptance_reasons_must_name_the_function(kit: Kit) -> None:
    function = RuntimeFunction(
        kit.stack,
        kit.ids(),
        namer=SHARED,
        name="reasons",
        handler="validation.handler",
        description="test",
        key=kit.key,
    )
    refuses(
        "reason of payment-processor-reasons-shared must name the function, got 'because'",
        lambda: accept_function_design(
            function, concurrency="because", network="because", dead_letters="because"
        ),
    )


# --- ServiceAlarms ---


@pytest.fixture(scope="module")
def target_group(kit: Kit) -> elbv2.ApplicationTargetGroup:
    return front(kit.stack).target_group


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"target_groups": []}, "target_groups must name at least one target group, got none"),
        ({"error_rate_percent": 0}, "error_rate_percent must be in (0, 100], got 0"),
        ({"error_rate_percent": 101}, "error_rate_percent must be in (0, 100], got 101"),
        ({"unhealthy_hosts": 0}, "unhealthy_hosts must be at least 1, got 0"),
        ({"evaluation_minutes": 61}, "evaluation_minutes must be 1..60, got 61"),
        (
            {"p99_latency": Duration.millis(0)},
            "p99_latency must be at least 1 ms, got 0 millis",
        ),
        ("twice", "target group labels must be unique, got ['blue', 'blue']"),
    ],
)
def test_service_alarms_refuse(
    kit: Kit, target_group: elbv2.ApplicationTargetGroup, changes: Any, message: str
) -> None:
    groups = [("blue", target_group)] * (2 if changes == "twice" else 1)
    args: dict[str, Any] = {"namer": NAMER, "target_groups": groups}
    if changes != "twice":
        args.update(changes)
    refuses(message, lambda: ServiceAlarms(kit.stack, kit.ids(), **args))


# --- ServiceNetwork ---

EXISTING = ExistingVpc(
    vpc_id="vpc-0abc1234",
    availability_zones=["eu-west-1a", "eu-west-1b"],
    public_subnet_ids=["subnet-0aaa1111", "subnet-0bbb2222"],
    private_subnet_ids=["subnet-0ccc3333", "subnet-0ddd4444"],
)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"max_azs": 1}, "max_azs must be 2 to 6 (the ALB needs two zones), got 1"),
        (
            {"mode": NetworkMode.PRIVATE, "nat_gateways": 3},
            "nat_gateways must be 1 to max_azs (2) in mode private, got 3",
        ),
        (
            {"mode": NetworkMode.ENDPOINTS, "extra_endpoints": ["Secrets Manager"]},
            "extra_endpoints entries are service names like 'secretsmanager', got "
            "'Secrets Manager'",
        ),
        (
            {"extra_endpoints": ["secretsmanager"]},
            "extra_endpoints applies to mode endpoints with a new VPC only, got mode public",
        ),
        (
            {
                "existing": replace(
                    EXISTING,
                    availability_zones=["eu-west-1a"],
                    public_subnet_ids=["subnet-0aaa1111"],
                )
            },
            "an existing VPC needs at least 2 availability_zones and one public subnet per zone, "
            "got 1 zones and 1 subnets",
        ),
        (
            {"mode": NetworkMode.PRIVATE, "existing": replace(EXISTING, private_subnet_ids=[])},
            "mode private needs one private subnet per zone, got 0 subnets for 2 zones",
        ),
        (
            {"existing": replace(EXISTING, public_subnet_ids=["subnet-0aaa1111", "sn-2"])},
            "expected a subnet ID like subnet-0abc1234, got 'sn-2'",
        ),
    ],
)
def test_network_refuses(kit: Kit, changes: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"namer": NAMER, "mode": NetworkMode.PUBLIC, "key": kit.key, **changes}
    refuses(message, lambda: ServiceNetwork(kit.stack, kit.ids(), **args))


# --- DeploymentEventBus, DeploymentEventForwarder, PublicEcrPullThroughCache ---


def test_event_bus_refuses_a_malformed_source_account(kit: Kit) -> None:
    refuses(
        "source_accounts must be 12-digit account IDs, got '1234'; list the accounts of the "
        "environments outside the pipeline's account",
        lambda: DeploymentEventBus(kit.stack, kit.ids(), namer=SHARED, source_accounts=["1234"]),
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"bus_arn": "arn:aws:sns:eu-west-1:123456789012:topic"},
            "bus_arn must be an event bus ARN like "
            "arn:aws:events:<region>:<account>:event-bus/<name>, got "
            "'arn:aws:sns:eu-west-1:123456789012:topic'; use deployment_event_bus_arn(...)",
        ),
        (
            {"cluster_name": "my cluster"},
            "DeployedEnvironment.cluster must be an ECS cluster name (1-255 of A-Za-z0-9-_), "
            "got 'my cluster'",
        ),
    ],
)
def test_event_forwarder_refuses(kit: Kit, changes: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {
        "namer": NAMER,
        "cluster_name": "payment-processor-cluster-production",
        "service_name": "payment-processor-service-production",
        "bus_arn": "arn:aws:events:eu-west-1:123456789012:event-bus/deployments",
        "key": kit.key,
        **changes,
    }
    refuses(message, lambda: DeploymentEventForwarder(kit.stack, kit.ids(), **args))


def test_pull_through_cache_refuses_images_of_other_registries(kit: Kit) -> None:
    cache = PublicEcrPullThroughCache(kit.stack, kit.ids(), namer=NAMER)
    refuses(
        "only public.ecr.aws images can be pulled through this cache, got 'docker.io/caddy:2'",
        lambda: cache.image_uri("docker.io/caddy:2"),
    )


# --- ActionRole, acknowledge_iam5 ---


def test_action_role_refuses_a_role_without_statements(kit: Kit) -> None:
    refuses(
        "action role payment-processor-x-shared needs at least one policy statement",
        lambda: ActionRole(
            kit.stack,
            kit.ids(),
            role_name="payment-processor-x-shared",
            pipeline_role=kit.pipeline.role,
            statements=[],
            description="test",
        ),
    )


def test_iam5_acknowledgement_refuses_an_empty_reason(kit: Kit) -> None:
    refuses(
        "the acknowledgement of IAM5[Resource::*] needs a reason, got ''",
        lambda: acknowledge_iam5(kit.pipeline.role, {"Resource::*": " "}),
    )


# --- DeploymentHistory, Notifications ---

STAGING = DeployedEnvironment.named(Namer("payment-processor", "staging"))
PRODUCTION = DeployedEnvironment.named(Namer("payment-processor", "production"))
ELSEWHERE = DeployedEnvironment.named(
    Namer("payment-processor", "dr"), account="210987654321", region="us-east-1"
)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"environments": []},
            "environments must name at least one environment the pipeline deploys to, got []",
        ),
        (
            {"production_environment": "prod"},
            "production_environment must be one of the environments ['staging', 'production'], "
            "got 'prod'",
        ),
        (
            {"metrics_namespace": "AWS/Deployments"},
            "metrics_namespace must be 1-255 of letters, digits, . _ / # : - and must not start "
            "with 'AWS/', got 'AWS/Deployments'",
        ),
        ({"metrics_namespace": "a b"}, "metrics_namespace must be 1-255 of letters"),
        (
            {"environments": [replace(STAGING, name="Staging")]},
            "DeployedEnvironment.name must be lowercase kebab-case like 'production', "
            "got 'Staging'",
        ),
        (
            {"environments": [replace(STAGING, stage="Deploy staging")]},
            "DeployedEnvironment.stage must be a CodePipeline stage name (1-100 of "
            "A-Za-z0-9.@-_), got 'Deploy staging' for environment 'staging'",
        ),
        (
            {"environments": [replace(STAGING, service="svc/1")]},
            "DeployedEnvironment.service must be an ECS service name (1-255 of A-Za-z0-9-_), "
            "got 'svc/1'",
        ),
        (
            {"environments": [replace(STAGING, account="42")]},
            "DeployedEnvironment.account must be a 12-digit account ID, or None (the "
            "pipeline's), got '42'",
        ),
        (
            {"environments": [replace(STAGING, region="Europe")]},
            "DeployedEnvironment.region must be a region like eu-west-1, or None (the "
            "pipeline's), got 'Europe'",
        ),
        (
            {"environments": [STAGING, replace(PRODUCTION, name="staging")]},
            "each DeployedEnvironment needs its own name; ['staging'] appear more than once",
        ),
        (
            {"environments": [STAGING, replace(PRODUCTION, stage=STAGING.stage)]},
            "each DeployedEnvironment needs its own stage;",
        ),
        (
            {"environments": [STAGING, ELSEWHERE]},
            "environments ['dr'] live in another account or region: their ECS events reach the "
            "pipeline only through its deployment event bus; pass event_bus",
        ),
        (
            {"max_event_age": Duration.seconds(30)},
            "max_event_age must lie between 1 minute and 24 hours, got 30 seconds",
        ),
        ({"retry_attempts": 186}, "retry_attempts must lie between 0 and 185, got 186"),
    ],
)
def test_deployment_history_refuses(kit: Kit, changes: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {
        "namer": SHARED,
        "key": kit.key,
        "pipeline": kit.pipeline,
        "environments": [STAGING, PRODUCTION],
        **changes,
    }
    refuses(message, lambda: DeploymentHistory(kit.stack, kit.ids(), **args))


def test_deployment_history_refuses_a_key_whose_policy_it_cannot_change(kit: Kit) -> None:
    imported = kms.Key.from_key_arn(
        kit.stack, kit.ids(), "arn:aws:kms:eu-west-1:123456789012:key/0f1e2d3c"
    )
    refuses(
        "key must be a kms.Key defined in this app",
        lambda: allow_eventbridge_to_use_key(imported, sid="Test"),
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"emails": ["oncall"]},
            "emails must be e-mail addresses like team@example.com, got 'oncall'",
        ),
        (
            {"emails": ["a@example.com", "a@example.com"]},
            "emails must be unique, got ['a@example.com', 'a@example.com']",
        ),
        (
            {"https_endpoint": "http://hooks.example.com/x"},
            "https_endpoint must be an https:// URL, got 'http://hooks.example.com/x'; SNS sends "
            "alerts only over TLS",
        ),
        (
            {"topic_arn": "arn:aws:sqs:eu-west-1:123456789012:q"},
            "topic_arn must be an SNS topic ARN like arn:aws:sns:<region>:<account>:<name>, "
            "got 'arn:aws:sqs:eu-west-1:123456789012:q'",
        ),
        (
            {"emails": []},
            "alerts need a reader: give emails, https_endpoint or topic_arn (got none); a topic "
            "without subscribers drops every alert",
        ),
        ({"retry_attempts": -1}, "retry_attempts must lie between 0 and 185, got -1"),
        (
            {"max_event_age": Duration.hours(25)},
            "max_event_age must lie between 1 minute and 24 hours, got 1 day 1 hour",
        ),
    ],
)
def test_notifications_refuse(kit: Kit, changes: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {
        "namer": SHARED,
        "pipeline": kit.pipeline,
        "emails": ["oncall@example.com"],
        **changes,
    }
    refuses(message, lambda: Notifications(kit.stack, kit.ids(), **args))


def test_notifications_refuse_a_topic_in_another_region() -> None:
    stack = Stack(App(context=feature_flags()), "Pinned", env=Environment(region="eu-west-1"))
    _, pipeline, _ = fixture_pipeline(stack)
    refuses(
        "topic_arn must be a topic in the pipeline's region eu-west-1, got one in us-east-1 "
        "(arn:aws:sns:us-east-1:123456789012:ops); CloudWatch alarms notify topics of their own "
        "region only",
        lambda: Notifications(
            stack,
            "Alerts",
            namer=SHARED,
            pipeline=pipeline,
            topic_arn="arn:aws:sns:us-east-1:123456789012:ops",
        ),
    )


# --- PipelineMonitoring ---


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"max_execution_duration": Duration.minutes(4)},
            "max_execution_duration must lie between 5 minutes and 24 hours, got 4 minutes",
        ),
        (
            {"slow_build_ratio": 1.5},
            "slow_build_ratio must be more than 0 and at most 1, got 1.5",
        ),
        (
            {"watchdog_interval": Duration.seconds(90)},
            "watchdog_interval must be whole minutes from 1 to 15, got 1 minute 30 seconds",
        ),
        (
            {"builds": "Unit_Tests"},
            "MonitoredBuild.label must be lowercase kebab-case like 'unit-tests', got 'Unit_Tests'",
        ),
        (
            {"builds": "slow"},
            "MonitoredBuild.timeout of 'build' must lie between 5 minutes and 36 hours "
            "(CodeBuild's range), got 1 day 13 hours",
        ),
        ({"builds": "twice"}, "each MonitoredBuild needs its own label; ['build'] repeat"),
    ],
)
def test_pipeline_monitoring_refuses(kit: Kit, changes: dict[str, Any], message: str) -> None:
    project = codebuild.Project.from_project_name(kit.stack, kit.ids(), "p")
    builds = {
        "Unit_Tests": [MonitoredBuild("Unit_Tests", project, Duration.minutes(10))],
        "slow": [MonitoredBuild("build", project, Duration.hours(37))],
        "twice": [MonitoredBuild("build", project, Duration.minutes(10))] * 2,
    }
    if "builds" in changes:
        changes = {"builds": builds[changes["builds"]]}
    args: dict[str, Any] = {
        "namer": SHARED,
        "key": kit.key,
        "pipeline": kit.pipeline,
        "notifications": None,
        **changes,
    }
    refuses(message, lambda: PipelineMonitoring(kit.stack, kit.ids(), **args))


# --- ContainerPipeline (and the settings it validates) ---

TARGETS = [
    StackTarget(
        name="staging", stack_name="app-staging", template_file="app-staging.template.json"
    ),
    StackTarget(
        name="production",
        stack_name="app-production",
        template_file="app-production.template.json",
        approval=True,
    ),
]


def container_pipeline(stack: Stack, **changes: Any) -> ContainerPipeline:
    args: dict[str, Any] = {
        "namer": SHARED,
        "source": ConnectionSource(connection_arn=CONNECTION, repository="acme/app"),
        "build": BuildSettings(buildspec=SPEC),
        "synth": SynthSettings(buildspec=SPEC),
        "test": TestSettings(buildspec=SPEC),
        "scan": ScanSettings(buildspec=SPEC),
        "targets": TARGETS,
        **changes,
    }
    return ContainerPipeline(stack, "Pipeline", **args)


def target(**changes: Any) -> list[StackTarget]:
    return [replace(TARGETS[0], **changes)]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"execution_mode": codepipeline.ExecutionMode.PARALLEL},
            "execution_mode PARALLEL",
        ),
        (
            {"targets": [TARGETS[0], replace(TARGETS[1], approval=False)]},
            "the last target 'production' is production and needs approval=True",
        ),
        ({"targets": [TARGETS[0], TARGETS[0]]}, "target names must be unique; 'staging' appears"),
        (
            {"targets": target(name="Staging")},
            "target name must be lowercase kebab-case of at most 40 characters, like 'staging', "
            "got 'Staging'",
        ),
        ({"targets": [cast(Any, "staging")]}, "targets must be StackTarget, got str"),
        (
            {"targets": target(stack_name="1-app")},
            "target staging: stack_name must be a CloudFormation stack name (a letter, then "
            "letters, digits and '-', at most 128), got '1-app'",
        ),
        (
            {"targets": target(template_file="app.txt")},
            "target staging: template_file must name a template in the synth output, like "
            "'<stack>.template.json', got 'app.txt'",
        ),
        (
            {"targets": target(health_path="health")},
            "target staging: health_path must start with '/', got 'health'",
        ),
        (
            {"targets": target(expected_status=99)},
            "target staging: expected_status must be an HTTP status 100-599, got 99",
        ),
        (
            {"targets": target(validation_timeout=Duration.seconds(10))},
            "target staging: validation_timeout must be 30 seconds to 60 minutes, got 10 seconds",
        ),
        (
            {"scan": ScanSettings(buildspec=SPEC, threshold="severe")},
            "scan threshold must be one of ['critical', 'high', 'medium', 'low'], got 'severe'",
        ),
        (
            {"scan": ScanSettings(buildspec=SPEC, scanners="trivy")},
            "scan scanners must be a non-empty list, got 'trivy'",
        ),
        (
            {"scan": ScanSettings(buildspec=SPEC, scanners=["trivy", "nessus"])},
            "scan scanners ['nessus'] are unknown; choose from",
        ),
        (
            {"build": BuildSettings(buildspec=SPEC, timeout=Duration.minutes(61))},
            "build timeout must be a whole number of minutes from 5 to 60, got 61",
        ),
    ],
)
def test_container_pipeline_refuses(changes: dict[str, Any], message: str) -> None:
    refuses(message, lambda: container_pipeline(fresh_stack("P"), **changes))


def test_container_pipeline_refuses_an_artifact_bucket_without_a_kms_key() -> None:
    stack = fresh_stack("P")
    bucket = s3.Bucket.from_bucket_name(stack, "Plain", "plain-bucket")
    refuses(
        "artifact_bucket must be encrypted with a KMS key (SSE-KMS) the pipeline can use; "
        "create it with defaults.secure_bucket(key=...)",
        lambda: container_pipeline(stack, artifact_bucket=bucket),
    )


def test_container_pipeline_refuses_cross_region_buckets_without_a_home_region() -> None:
    stack = fresh_stack("P")
    bucket = s3.Bucket.from_bucket_name(stack, "Far", "far-bucket")
    refuses(
        "cross_region_artifact_buckets need a pipeline stack with a concrete region "
        "(pipeline.region in deployline.yaml)",
        lambda: container_pipeline(stack, cross_region_artifact_buckets={"us-east-1": bucket}),
    )


def test_container_pipeline_refuses_a_cross_region_bucket_without_a_kms_key() -> None:
    stack = Stack(App(context=feature_flags()), "P", env=Environment(region="eu-west-1"))
    bucket = s3.Bucket.from_bucket_name(stack, "Far", "far-bucket")
    refuses(
        "the artifact bucket for us-east-1 must be encrypted with a KMS key, so other accounts' "
        "deploy roles can read it",
        lambda: container_pipeline(stack, cross_region_artifact_buckets={"us-east-1": bucket}),
    )


# --- stacks ---


def test_regional_artifacts_need_a_concrete_account_and_region() -> None:
    refuses(
        "a regional artifact store needs a concrete account and region (env=...)",
        lambda: RegionalArtifactsStack(
            App(), "Far", namer=SHARED, readers=["arn:aws:iam::123456789012:role/r"]
        ),
    )


def test_regional_artifacts_need_a_reader() -> None:
    refuses(
        "the artifact store in us-east-1 needs at least one reader",
        lambda: RegionalArtifactsStack(
            App(),
            "Far",
            namer=SHARED,
            readers=[],
            env=Environment(account="123456789012", region="us-east-1"),
        ),
    )


def test_load_balancer_refuses_a_certificate_arn_of_another_service() -> None:
    refuses(
        "certificate_arn must be an ACM certificate ARN like "
        "arn:aws:acm:<region>:<account>:certificate/<uuid>, got 'arn:aws:iam::1:cert/x'",
        lambda: certificate_in_this_stack("arn:aws:iam::1:cert/x"),
    )


def test_stack_delivery_refuses_an_approval_without_its_change_summary(kit: Kit) -> None:
    refuses(
        "target production waits for approval: pass the change_summary function",
        lambda: StackDelivery(
            kit.stack,
            kit.ids(),
            pipeline=kit.pipeline,
            pipeline_role=kit.pipeline.role,
            pipeline_name="payment-processor-pipeline-shared",
            namer=SHARED,
            target=TARGETS[1],
            synth_output=codepipeline.Artifact("Synth"),
            image_tag="#{Build.IMAGE_TAG}",
            image_uri="#{Build.IMAGE_URI}",
            validation=cast(Any, None),
            change_summary=None,
            approval_topic=None,
            approval_message="deploy?",
            same_region=True,
        ),
    )
