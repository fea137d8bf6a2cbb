"""DeploymentEventBus and DeploymentEventForwarder: ECS deployment events from environments in
other accounts and regions reach the pipeline's recorder and alerts.

One app is synthesized once for the module (with cdk-nag's AwsSolutions pack): an
environment-agnostic pipeline stack with the bus, a bus for one region only (no policy), and an
environment stack in another account and region with the forwarder; every test reads the
templates it produced.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Aws, Environment, RemovalPolicy, Stack
from peers import (  # tests/constructs/peers.py
    cfn_lint,
    checkov_failures,
    deployline_check,
    ecs_deployment_pattern,
    feature_flags,
    nagged_app,
    service_arn,
    synthesize,
)
from stand_in import nag_violations  # tests/constructs/stand_in.py

from deployline import defaults
from deployline.constructs.deployment_event_bus import (
    DeploymentEventBus,
    deployment_event_bus_arn,
    deployment_event_bus_name,
)
from deployline.constructs.deployment_event_forwarder import DeploymentEventForwarder
from deployline.naming import Namer

SHARED = Namer("payment-processor", "shared")
PRODUCTION = Namer("payment-processor", "production")
PIPELINE_ACCOUNT, PIPELINE_REGION = "111111111111", "eu-west-1"
STAGING_ACCOUNT, PRODUCTION_ACCOUNT = "222222222222", "333333333333"
BUS_ARN = deployment_event_bus_arn(
    SHARED, account=PIPELINE_ACCOUNT, region=PIPELINE_REGION, partition=Aws.PARTITION
)
CLUSTER = "payment-processor-cluster-production"
SERVICE = "payment-processor-service-production"


class Synth:
    def __init__(self, tmp: Path) -> None:
        app = nagged_app(tmp)
        pipeline = Stack(app, "Pipeline")
        self.bus = DeploymentEventBus(
            pipeline,
            "DeployEvents",
            namer=SHARED,
            source_accounts=[PRODUCTION_ACCOUNT, STAGING_ACCOUNT, PRODUCTION_ACCOUNT],
        )
        regional = Stack(app, "RegionalPipeline")
        self.regional = DeploymentEventBus(regional, "DeployEvents", namer=SHARED)
        environment = Stack(
            app, "Production", env=Environment(account=PRODUCTION_ACCOUNT, region="us-east-1")
        )
        key = defaults.secure_key(
            environment,
            "Key",
            alias=PRODUCTION.name("key"),
            description="the production environment's key",
            removal=RemovalPolicy.DESTROY,
        )
        self.forwarder = DeploymentEventForwarder(
            environment,
            "ForwardDeployments",
            namer=PRODUCTION,
            cluster_name=CLUSTER,
            service_name=SERVICE,
            bus_arn=BUS_ARN,
            key=key,
            removal=RemovalPolicy.DESTROY,
        )
        self.report, self.synth_error = synthesize(app, tmp)
        self.paths = {name: tmp / f"{name}.template.json" for name in ("Pipeline", "Production")}
        self.paths["RegionalPipeline"] = tmp / "RegionalPipeline.template.json"
        self.resources: dict[str, dict[str, Any]] = {
            name: json.loads(path.read_text())["Resources"] for name, path in self.paths.items()
        }


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return Synth(tmp_path_factory.mktemp("events"))


def of_type(resources: dict[str, Any], type_: str, prefix: str = "") -> list[tuple[str, Any]]:
    return [(k, v) for k, v in resources.items() if v["Type"] == type_ and k.startswith(prefix)]


# --- the bus ----------------------------------------------------------------------------------


def test_the_bus_is_named_from_the_namer(synth: Synth) -> None:
    [(_, bus)] = of_type(synth.resources["Pipeline"], "AWS::Events::EventBus")
    assert bus["Properties"] == {"Name": "payment-processor-deploy-events-shared"}
    assert deployment_event_bus_name(SHARED) == "payment-processor-deploy-events-shared"


def test_the_bus_admits_ecs_deployment_events_from_exactly_the_environments_accounts(
    synth: Synth,
) -> None:
    [(bus_id, _)] = of_type(synth.resources["Pipeline"], "AWS::Events::EventBus")
    [(_, policy)] = of_type(synth.resources["Pipeline"], "AWS::Events::EventBusPolicy")
    assert policy["Properties"]["EventBusName"] == {"Ref": bus_id}
    statement = policy["Properties"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "events:PutEvents"
    assert statement["Resource"] == {"Fn::GetAtt": [bus_id, "Arn"]}
    assert statement["Principal"] == {
        "AWS": [
            {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":iam::{account}:root"]]}
            for account in (STAGING_ACCOUNT, PRODUCTION_ACCOUNT)
        ]
    }
    assert statement["Condition"] == {
        "StringEquals": {
            "events:source": "aws.ecs",
            "events:detail-type": "ECS Deployment State Change",
        }
    }
    assert synth.bus.source_accounts == (STAGING_ACCOUNT, PRODUCTION_ACCOUNT)


def test_a_bus_for_other_regions_of_the_pipelines_account_needs_no_policy(synth: Synth) -> None:
    resources = synth.resources["RegionalPipeline"]
    assert of_type(resources, "AWS::Events::EventBusPolicy") == []
    assert len(of_type(resources, "AWS::Events::EventBus")) == 1


def test_the_environments_compute_the_buses_arn_without_a_reference(synth: Synth) -> None:
    assert deployment_event_bus_arn(
        SHARED, account=PIPELINE_ACCOUNT, region=PIPELINE_REGION, partition="aws"
    ) == ("arn:aws:events:eu-west-1:111111111111:event-bus/payment-processor-deploy-events-shared")


# --- the forwarder ----------------------------------------------------------------------------

BUS_ARN_JSON = {
    "Fn::Join": [
        "",
        [
            "arn:",
            {"Ref": "AWS::Partition"},
            ":events:eu-west-1:111111111111:event-bus/payment-processor-deploy-events-shared",
        ],
    ]
}


def forwarder(synth: Synth, type_: str) -> tuple[str, Any]:
    [found] = of_type(synth.resources["Production"], type_, prefix="ForwardDeployments")
    return found


def test_the_rule_matches_this_services_ecs_deployment_events_in_its_own_account(
    synth: Synth,
) -> None:
    _, rule = forwarder(synth, "AWS::Events::Rule")
    assert rule["Properties"]["Name"] == "payment-processor-forward-deploys-production"
    assert rule["Properties"]["EventPattern"] == ecs_deployment_pattern(
        service_arn(CLUSTER, SERVICE)
    )
    assert "EventBusName" not in rule["Properties"]  # the environment's default bus


def test_events_go_unchanged_to_the_pipelines_bus_with_a_role_and_a_dead_letter_queue(
    synth: Synth,
) -> None:
    role_id, _ = forwarder(synth, "AWS::IAM::Role")
    queue_id, _ = forwarder(synth, "AWS::SQS::Queue")
    policy_id, _ = forwarder(synth, "AWS::IAM::Policy")
    _, rule = forwarder(synth, "AWS::Events::Rule")
    assert rule["Properties"]["Targets"] == [
        {
            "Arn": BUS_ARN_JSON,
            "Id": "Target0",
            "RoleArn": {"Fn::GetAtt": [role_id, "Arn"]},
            "DeadLetterConfig": {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}},
        }
    ]
    # no InputTransformer: source, account, region and resources arrive as ECS sent them
    assert rule["DependsOn"] == [policy_id]


def test_the_role_trusts_eventbridge_for_this_rule_only_and_may_put_events_on_that_bus(
    synth: Synth,
) -> None:
    role_id, role = forwarder(synth, "AWS::IAM::Role")
    assert role["Properties"]["RoleName"] == "payment-processor-forward-deploys-production"
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Condition": {
                "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                "ArnEquals": {
                    "aws:SourceArn": {
                        "Fn::Join": [
                            "",
                            [
                                "arn:",
                                {"Ref": "AWS::Partition"},
                                ":events:",
                                {"Ref": "AWS::Region"},
                                ":",
                                {"Ref": "AWS::AccountId"},
                                ":rule/payment-processor-forward-deploys-production",
                            ],
                        ]
                    }
                },
            },
        }
    ]
    assert "ManagedPolicyArns" not in role["Properties"]
    _, policy = forwarder(synth, "AWS::IAM::Policy")
    assert policy["Properties"]["Roles"] == [{"Ref": role_id}]
    assert policy["Properties"]["PolicyDocument"]["Statement"] == [
        {"Action": "events:PutEvents", "Effect": "Allow", "Resource": BUS_ARN_JSON}
    ]


def test_undelivered_events_wait_in_an_encrypted_queue_only_this_rule_may_fill(
    synth: Synth,
) -> None:
    _, queue = forwarder(synth, "AWS::SQS::Queue")
    [(key_id, key)] = of_type(synth.resources["Production"], "AWS::KMS::Key")
    assert queue["Properties"] == {
        "KmsMasterKeyId": {"Fn::GetAtt": [key_id, "Arn"]},
        "MessageRetentionPeriod": 14 * 86400,
        "QueueName": "payment-processor-forward-dlq-production",
    }
    _, queue_policy = forwarder(synth, "AWS::SQS::QueuePolicy")
    rule_id, _ = forwarder(synth, "AWS::Events::Rule")
    statements = queue_policy["Properties"]["PolicyDocument"]["Statement"]
    [allow] = [s for s in statements if s["Effect"] == "Allow"]
    assert (allow["Principal"], allow["Action"]) == (
        {"Service": "events.amazonaws.com"},
        "sqs:SendMessage",
    )
    assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]}}}
    [deny] = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    [grant] = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Sid") == "AllowEventBridgeForwardedDeadLetters"
    ]
    assert grant["Principal"] == {"Service": "events.amazonaws.com"}
    assert grant["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


def test_naming_the_pipelines_account_is_acknowledged_with_a_reason(synth: Synth) -> None:
    reason = (
        "the target is the pipeline's deployment event bus, in the pipeline's account and "
        "region; this environment's stack can only name it"
    )
    for type_ in ("AWS::Events::Rule", "AWS::IAM::Policy"):
        _, resource = forwarder(synth, type_)
        assert resource["Metadata"]["deployline"]["suppress"] == [{"id": "DL130", "reason": reason}]


# --- peers ------------------------------------------------------------------------------------


def test_cdk_nag_aws_solutions_has_no_unacknowledged_finding(synth: Synth) -> None:
    assert nag_violations(synth.report) == []
    assert synth.synth_error is None


@pytest.mark.parametrize("stack", ["Pipeline", "RegionalPipeline", "Production"])
def test_cfn_lint_reports_no_error_or_warning(synth: Synth, stack: str) -> None:
    assert cfn_lint(synth.paths[stack]) == []


def test_checkov_fails_nothing(synth: Synth) -> None:
    assert checkov_failures(*synth.paths.values()) == []


@pytest.mark.parametrize("stack", ["Pipeline", "RegionalPipeline", "Production"])
def test_deployline_check_finds_nothing_in_what_the_constructs_made(
    synth: Synth, stack: str
) -> None:
    # Tags come from the app (deployline tags every stack); the key is the test's own.
    findings = [f for f in deployline_check(synth.paths[stack]) if f[0] != "DL701"]
    assert [f for f in findings if f[1].startswith(("DeployEvents", "ForwardDeployments"))] == []


# --- validation -------------------------------------------------------------------------------


def bare() -> Stack:
    return Stack(App(context=feature_flags(), builtin_cloud_formation_validation=False), "Bad")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bus_arn": "payment-processor-deploy-events-shared"}, "bus_arn must be an event bus ARN"),
        (
            {"cluster_name": "payments/cluster"},
            "DeployedEnvironment.cluster must be an ECS cluster",
        ),
        ({"service_name": ""}, "DeployedEnvironment.service must be an ECS service name"),
    ],
)
def test_the_forwarder_rejects_bad_input_naming_value_and_fix(
    kwargs: dict[str, Any], message: str
) -> None:
    stack = bare()
    key = defaults.secure_key(stack, "Key", alias="k", description="d")
    args: dict[str, Any] = {
        "cluster_name": CLUSTER,
        "service_name": SERVICE,
        "bus_arn": "arn:aws:events:eu-west-1:111111111111:event-bus/b",
        **kwargs,
    }
    with pytest.raises(ValueError, match=re.escape(message)):
        DeploymentEventForwarder(stack, "F", namer=PRODUCTION, key=key, **args)


def test_the_bus_rejects_an_account_that_is_not_twelve_ascii_digits() -> None:
    fullwidth = "\uff12" * 12  # FULLWIDTH DIGIT TWO: a digit to \\d, not to AWS
    with pytest.raises(ValueError, match=re.escape(f"got {fullwidth!r}")):
        DeploymentEventBus(bare(), "B", namer=SHARED, source_accounts=[fullwidth])
