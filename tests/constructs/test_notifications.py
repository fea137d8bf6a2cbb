"""Notifications: the alert topic, its key and policies, subscribers, and the rules that feed it.

One app is synthesized once for the module (with cdk-nag's AwsSolutions pack): alerts with every
kind of reader and an environment in another account, minimal alerts, and alerts that go only to
an existing topic (with the monitoring alarms on it); every test reads the templates it produced.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk.assertions import Match, Template
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
from stand_in import fixture_pipeline, nag_violations  # tests/constructs/stand_in.py

from deployline.constructs.deployment_event_bus import DeploymentEventBus
from deployline.constructs.deployment_history import DeployedEnvironment
from deployline.constructs.notifications import Notifications
from deployline.constructs.pipeline_monitoring import MonitoredBuild, PipelineMonitoring
from deployline.naming import Namer

NAMER = Namer("payment-processor", "shared")
OTHER_ACCOUNT, OTHER_REGION = "210987654321", "us-east-1"
STAGING = DeployedEnvironment.named(Namer("payment-processor", "staging"))
PRODUCTION = DeployedEnvironment.named(
    Namer("payment-processor", "production"), account=OTHER_ACCOUNT, region=OTHER_REGION
)
ENVIRONMENTS = [STAGING, PRODUCTION]
OPS_TOPIC = f"arn:{Aws.PARTITION}:sns:{Aws.REGION}:{Aws.ACCOUNT_ID}:ops-alerts"
LITERAL_TOPIC = "arn:aws:sns:eu-west-1:111111111111:ops-alerts"


class Synth:
    def __init__(self, tmp: Path) -> None:
        app = nagged_app(tmp)
        self.stack = Stack(app, "Alerts")
        _, pipeline, project = fixture_pipeline(self.stack)
        bus = DeploymentEventBus(self.stack, "Bus", namer=NAMER, source_accounts=[OTHER_ACCOUNT])
        self.notifications = Notifications(
            self.stack,
            "Notifications",
            namer=NAMER,
            pipeline=pipeline,
            projects=[project],
            environments=ENVIRONMENTS,
            event_bus=bus.bus,
            emails=["payments-oncall@example.com", "payments-lead@example.com"],
            https_endpoint="https://hooks.example.com/deployline",
            topic_arn=OPS_TOPIC,
            removal=RemovalPolicy.DESTROY,
        )
        # A second stack: email only, no projects, one environment here, no existing topic.
        self.minimal_stack = Stack(app, "MinimalAlerts")
        imported = codepipeline.Pipeline.from_pipeline_arn(
            self.minimal_stack,
            "Imported",
            f"arn:{Aws.PARTITION}:codepipeline:{Aws.REGION}:{Aws.ACCOUNT_ID}:payment-processor-pipeline-shared",
        )
        self.minimal = Notifications(
            self.minimal_stack,
            "Notifications",
            namer=NAMER,
            pipeline=imported,
            environments=[STAGING],
            emails=["payments-oncall@example.com"],
        )
        # A third: the team's existing topic alone (notifications.sns_topic_arn), and the
        # pipeline's alarms on it.
        self.topic_stack = Stack(app, "TopicOnlyAlerts")
        key, pipeline3, project3 = fixture_pipeline(self.topic_stack)
        self.topic_only = Notifications(
            self.topic_stack,
            "Notifications",
            namer=NAMER,
            pipeline=pipeline3,
            projects=[project3],
            environments=[STAGING],
            topic_arn=LITERAL_TOPIC,  # as deployline.yaml gives it
            removal=RemovalPolicy.DESTROY,
        )
        self.monitoring = PipelineMonitoring(
            self.topic_stack,
            "Monitoring",
            namer=NAMER,
            key=key,
            pipeline=pipeline3,
            notifications=self.topic_only,
            builds=[MonitoredBuild("build", project3, Duration.minutes(15))],
            removal=RemovalPolicy.DESTROY,
        )
        self.report, self.synth_error = synthesize(app, tmp)
        self.template_path = tmp / "Alerts.template.json"
        self.template = Template.from_json(json.loads(self.template_path.read_text()))
        self.minimal_path = tmp / "MinimalAlerts.template.json"
        self.minimal_template = Template.from_json(json.loads(self.minimal_path.read_text()))
        self.topic_path = tmp / "TopicOnlyAlerts.template.json"
        self.topic_resources: dict[str, Any] = json.loads(self.topic_path.read_text())["Resources"]
        self.resources: dict[str, Any] = json.loads(self.template_path.read_text())["Resources"]


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return Synth(tmp_path_factory.mktemp("alerts"))


def logical_id(resources: dict[str, Any], prefix: str, type_: str) -> str:
    [found] = [k for k, v in resources.items() if k.startswith(prefix) and v["Type"] == type_]
    return found


def rules(synth: Synth) -> dict[str, dict[str, Any]]:
    return {
        v["Properties"]["Name"]: v["Properties"]
        for v in synth.resources.values()
        if v["Type"] == "AWS::Events::Rule"
    }


def key_id(synth: Synth) -> str:
    return logical_id(synth.resources, "NotificationsKey", "AWS::KMS::Key")


def topic_id(synth: Synth) -> str:
    return logical_id(synth.resources, "NotificationsTopic", "AWS::SNS::Topic")


# --- topic, key, policies ---------------------------------------------------------------------


def test_topic_is_named_from_the_namer_and_encrypted_with_its_own_rotating_key(
    synth: Synth,
) -> None:
    synth.template.has_resource_properties(
        "AWS::SNS::Topic",
        {
            "TopicName": "payment-processor-alerts-shared",
            "KmsMasterKeyId": {"Fn::GetAtt": [key_id(synth), "Arn"]},
            "SignatureVersion": "2",
        },
    )
    key = synth.resources[key_id(synth)]
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == key["UpdateReplacePolicy"] == "Delete"
    synth.template.has_resource_properties(
        "AWS::KMS::Alias", {"AliasName": "alias/payment-processor-alerts-key-shared"}
    )


@pytest.mark.parametrize(
    ("sid", "service"),
    [
        ("AllowEventBridge", "events.amazonaws.com"),
        ("AllowCodeStarNotifications", "codestar-notifications.amazonaws.com"),
        ("AllowCloudWatchAlarms", "cloudwatch.amazonaws.com"),
    ],
)
def test_key_policy_lets_the_publishing_service_use_the_key_for_this_account_only(
    synth: Synth, sid: str, service: str
) -> None:
    statements = synth.resources[key_id(synth)]["Properties"]["KeyPolicy"]["Statement"]
    [statement] = [s for s in statements if s.get("Sid") == sid]
    assert statement == {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
    }


def topic_policy_statements(synth: Synth) -> list[dict[str, Any]]:
    [policy] = [v for v in synth.resources.values() if v["Type"] == "AWS::SNS::TopicPolicy"]
    assert policy["Properties"]["Topics"] == [{"Ref": topic_id(synth)}]
    statements: list[dict[str, Any]] = policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def test_topic_policy_lets_only_this_constructs_rules_publish(synth: Synth) -> None:
    [statement] = [
        s for s in topic_policy_statements(synth) if s.get("Sid") == "AllowEventBridgeRules"
    ]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sns:Publish"
    assert statement["Resource"] == {"Ref": topic_id(synth)}
    assert statement["Condition"]["StringEquals"] == {
        "aws:SourceAccount": {"Ref": "AWS::AccountId"}
    }
    allowed = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
    rule_ids = sorted(
        k
        for k, v in synth.resources.items()
        if v["Type"] == "AWS::Events::Rule"
        and any(t["Arn"] == {"Ref": topic_id(synth)} for t in v["Properties"]["Targets"])
    )
    assert len(rule_ids) == 6
    assert sorted(a["Fn::GetAtt"][0] for a in allowed) == rule_ids


def test_topic_policy_lets_codestar_notifications_and_alarms_publish_from_this_account(
    synth: Synth,
) -> None:
    statements = {s.get("Sid"): s for s in topic_policy_statements(synth)}
    codestar = statements["AllowCodeStarNotifications"]
    assert codestar["Principal"] == {"Service": "codestar-notifications.amazonaws.com"}
    assert codestar["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    }
    alarms = statements["AllowCloudWatchAlarms"]
    assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert alarms["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert alarms["Condition"]["ArnLike"]["aws:SourceArn"] == {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":cloudwatch:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                ":alarm:*",
            ],
        ]
    }


def test_topic_policy_denies_publishing_without_tls(synth: Synth) -> None:
    denies = [s for s in topic_policy_statements(synth) if s["Effect"] == "Deny"]
    assert denies == [
        {
            "Sid": "AllowPublishThroughSSLOnly",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sns:Publish",
            "Resource": {"Ref": topic_id(synth)},
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ]


# --- subscribers ------------------------------------------------------------------------------


def test_every_email_and_the_https_endpoint_subscribe_to_the_topic(synth: Synth) -> None:
    subscriptions = sorted(
        (v["Properties"]["Protocol"], v["Properties"]["Endpoint"])
        for v in synth.resources.values()
        if v["Type"] == "AWS::SNS::Subscription"
        and v["Properties"]["TopicArn"] == {"Ref": topic_id(synth)}
    )
    assert subscriptions == [
        ("email", "payments-lead@example.com"),
        ("email", "payments-oncall@example.com"),
        ("https", "https://hooks.example.com/deployline"),
    ]


OPS_TOPIC_ARN = {
    "Fn::Join": [
        "",
        [
            "arn:",
            {"Ref": "AWS::Partition"},
            ":sns:",
            {"Ref": "AWS::Region"},
            ":",
            {"Ref": "AWS::AccountId"},
            ":ops-alerts",
        ],
    ]
}


def test_the_existing_topic_receives_every_alert_and_every_alarm_too(synth: Synth) -> None:
    for name, rule in rules(synth).items():
        arns = [t["Arn"] for t in rule["Targets"]]
        assert arns == [{"Ref": topic_id(synth)}, OPS_TOPIC_ARN], name
    assert len(synth.notifications.alarm_topics) == 2
    assert synth.minimal.alarm_topics == (synth.minimal.topic,)


# --- the existing topic alone (notifications.sns_topic_arn) ---------------------------------


def topic_parameter(synth: Synth) -> dict[str, str]:
    """The stack parameter that carries the existing topic's ARN (its default: the ARN)."""
    parameters = json.loads(synth.topic_path.read_text())["Parameters"]
    [name] = [k for k in parameters if k.startswith("NotificationsExistingTopicArn")]
    assert parameters[name] == {
        "Type": "String",
        "Default": LITERAL_TOPIC,
        "AllowedPattern": "^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$",
        "Description": "The existing SNS topic that receives deployline's alerts and alarms "
        "(notifications.sns_topic_arn)",
    }
    return {"Ref": name}


def test_with_the_existing_topic_alone_every_rule_publishes_to_it(synth: Synth) -> None:
    topic_rules = {
        v["Properties"]["Name"]: v["Properties"]
        for v in synth.topic_resources.values()
        if v["Type"] == "AWS::Events::Rule"
        and v["Properties"]["Name"].startswith("payment-processor-")
        and "Targets" in v["Properties"]
        and "InputTransformer" in v["Properties"]["Targets"][0]
    }
    assert sorted(topic_rules) == [
        "payment-processor-approval-waiting-shared",
        "payment-processor-build-failed-shared",
        "payment-processor-pipeline-failed-shared",
        "payment-processor-pipeline-rollback-shared",
        "payment-processor-staging-deploy-failed-shared",
    ]
    for name, rule in topic_rules.items():
        assert [t["Arn"] for t in rule["Targets"]] == [topic_parameter(synth)], name
    assert synth.topic_only.own_topic is None
    assert synth.topic_only.alarm_topics == (synth.topic_only.topic,)
    types = {v["Type"] for v in synth.topic_resources.values()}
    assert not types & {"AWS::SNS::Topic", "AWS::SNS::Subscription", "AWS::SNS::TopicPolicy"}


def test_with_the_existing_topic_alone_failed_and_stuck_executions_alarm_it(
    synth: Synth,
) -> None:
    alarms = {
        v["Properties"]["AlarmName"]: v["Properties"]
        for v in synth.topic_resources.values()
        if v["Type"] == "AWS::CloudWatch::Alarm"
    }
    failed = alarms["payment-processor-pipeline-failures-shared"]
    stuck = alarms["payment-processor-pipeline-stuck-shared"]
    topic = topic_parameter(synth)
    assert failed["AlarmActions"] == [topic]
    assert (stuck["AlarmActions"], stuck["OKActions"]) == ([topic], [topic])
    rule_id = next(
        k
        for k, v in synth.topic_resources.items()
        if v["Type"] == "AWS::Events::Rule"
        and v["Properties"].get("Name") == "payment-processor-pipeline-failed-shared"
    )
    assert failed["Dimensions"] == [{"Name": "RuleName", "Value": {"Ref": rule_id}}]
    assert all(a.get("AlarmActions") == [topic] for a in alarms.values())


def test_with_the_existing_topic_alone_the_key_serves_the_dead_letter_queue_only(
    synth: Synth,
) -> None:
    [key] = [
        v
        for k, v in synth.topic_resources.items()
        if k.startswith("NotificationsKey") and v["Type"] == "AWS::KMS::Key"
    ]
    sids = [s.get("Sid") for s in key["Properties"]["KeyPolicy"]["Statement"]]
    assert sids == [None, "AllowEventBridge"]  # the account's statement, then EventBridge
    [queue] = [
        v
        for k, v in synth.topic_resources.items()
        if k.startswith("NotificationsDeadLetterQueue") and v["Type"] == "AWS::SQS::Queue"
    ]
    assert queue["Properties"]["QueueName"] == "payment-processor-alerts-dlq-shared"


# --- rules ------------------------------------------------------------------------------------


PIPELINE_REF = {"Ref": "PipelineC660917D"}


def test_failed_executions_of_this_pipeline_only_are_announced(synth: Synth) -> None:
    rule = rules(synth)["payment-processor-pipeline-failed-shared"]
    assert rule["EventPattern"] == {
        "source": ["aws.codepipeline"],
        "detail-type": ["CodePipeline Pipeline Execution State Change"],
        "detail": {"pipeline": [PIPELINE_REF], "state": ["FAILED"]},
    }


def test_failed_builds_of_the_pipeline_projects_are_announced(synth: Synth) -> None:
    rule = rules(synth)["payment-processor-build-failed-shared"]
    assert rule["EventPattern"] == {
        "source": ["aws.codebuild"],
        "detail-type": ["CodeBuild Build State Change"],
        "detail": {
            "build-status": ["FAILED", "FAULT", "TIMED_OUT"],
            "project-name": [{"Ref": "Build45A36621"}],
        },
    }


def test_waiting_manual_approvals_are_announced(synth: Synth) -> None:
    rule = rules(synth)["payment-processor-approval-waiting-shared"]
    assert rule["EventPattern"] == {
        "source": ["aws.codepipeline"],
        "detail-type": ["CodePipeline Action Execution State Change"],
        "detail": {
            "pipeline": [PIPELINE_REF],
            "state": ["STARTED"],
            "type": {"category": ["Approval"]},
        },
    }


def test_stage_rollbacks_reported_by_v2_pipelines_are_announced(synth: Synth) -> None:
    rule = rules(synth)["payment-processor-pipeline-rollback-shared"]
    assert rule["EventPattern"] == {
        "source": ["aws.codepipeline"],
        "detail-type": ["CodePipeline Pipeline Execution State Change"],
        "detail": {
            "pipeline": [PIPELINE_REF],
            "state": ["STARTED"],
            "execution-trigger": {"trigger-type": ["AutomatedRollback", "ManualRollback"]},
        },
    }


FAILED_OR_ROLLED_BACK = {
    "$or": [
        {"eventName": [{"wildcard": "*FAIL*"}]},
        {"eventName": [{"wildcard": "*ROLLBACK*"}]},
        {
            "reason": [
                {"wildcard": "*olling back*"},
                {"wildcard": "*olled back*"},
                {"wildcard": "*ollback*"},
            ]
        },
    ]
}


def test_failed_or_rolled_back_ecs_deployments_of_each_environment_are_announced(
    synth: Synth,
) -> None:
    staging = rules(synth)["payment-processor-staging-deploy-failed-shared"]
    assert staging["EventPattern"] == ecs_deployment_pattern(
        service_arn(STAGING.cluster, STAGING.service), **FAILED_OR_ROLLED_BACK
    )
    assert "EventBusName" not in staging


def test_ecs_deployments_elsewhere_are_announced_from_the_deployment_event_bus(
    synth: Synth,
) -> None:
    production = rules(synth)["payment-processor-production-deploy-failed-shared"]
    bus_id = logical_id(synth.resources, "Bus", "AWS::Events::EventBus")
    assert production["EventBusName"] == {"Ref": bus_id}
    assert production["EventPattern"] == ecs_deployment_pattern(
        service_arn(
            PRODUCTION.cluster, PRODUCTION.service, account=OTHER_ACCOUNT, region=OTHER_REGION
        ),
        **FAILED_OR_ROLLED_BACK,
    )
    rule_resource = next(
        v
        for v in synth.resources.values()
        if v["Properties"].get("Name") == ("payment-processor-production-deploy-failed-shared")
    )
    assert rule_resource["Metadata"]["deployline"]["suppress"] == [
        {
            "id": "DL130",
            "reason": f"the rule matches the ECS service of production in {OTHER_ACCOUNT}/"
            f"{OTHER_REGION} by its ARN",
        }
    ]


def transformer(synth: Synth, name: str) -> dict[str, Any]:
    target = rules(synth)[name]["Targets"][0]
    result: dict[str, Any] = target["InputTransformer"]
    return result


@pytest.mark.parametrize(
    ("name", "paths", "phrases"),
    [
        (
            "payment-processor-pipeline-failed-shared",
            {"$.detail.pipeline", "$.detail.execution-id", "$.region"},
            [
                "pipeline <detail-pipeline> FAILED",
                "Execution: <detail-execution-id>",
                "/codesuite/codepipeline/pipelines/<detail-pipeline>/executions/"
                "<detail-execution-id>/timeline?region=<region>",
            ],
        ),
        (
            "payment-processor-build-failed-shared",
            {
                "$.detail.project-name",
                "$.detail.build-id",
                "$.detail.additional-information.source-version",
                "$.detail.additional-information.logs.deep-link",
                "$.region",
            },
            [
                "build <detail-project-name> <detail-build-status>",
                "Source version (commit): <detail-additional-information-source-version>",
                "Logs: <detail-additional-information-logs-deep-link>",
                "/codesuite/codebuild/projects/<detail-project-name>/history?region=<region>",
            ],
        ),
        (
            "payment-processor-approval-waiting-shared",
            {"$.detail.pipeline", "$.detail.stage", "$.detail.action", "$.region"},
            [
                "waiting for a manual approval",
                "Stage: <detail-stage>, action: <detail-action>",
                "/codesuite/codepipeline/pipelines/<detail-pipeline>/view?region=<region>",
            ],
        ),
        (
            "payment-processor-pipeline-rollback-shared",
            {"$.detail.pipeline", "$.detail.execution-trigger.trigger-type", "$.region"},
            [
                "ROLLING BACK (<detail-execution-trigger-trigger-type>)",
                "Rollback execution: <detail-execution-id>",
            ],
        ),
        (
            "payment-processor-production-deploy-failed-shared",
            {
                "$.detail.deploymentId",
                "$.detail.eventName",
                "$.detail.reason",
                "$.account",
                "$.region",
            },
            [
                "a deployment of payment-processor to production FAILED or was ROLLED BACK",
                "ECS says: <detail-eventName>: <detail-reason>",
                f"Deployment: <detail-deploymentId> of service {PRODUCTION.service} in cluster "
                f"{PRODUCTION.cluster}, account <account>",
                f"/ecs/v2/clusters/{PRODUCTION.cluster}/services/{PRODUCTION.service}"
                "/deployments?region=<region>",
            ],
        ),
    ],
)
def test_messages_are_readable_and_link_to_the_console_in_the_events_region(
    synth: Synth, name: str, paths: set[str], phrases: list[str]
) -> None:
    transform = transformer(synth, name)
    assert paths <= set(transform["InputPathsMap"].values())
    assert transform["InputPathsMap"]["region"] == "$.region"
    text = transform["InputTemplate"]
    for phrase in phrases:
        assert phrase in text
    assert "https://<region>.console.aws.amazon.com/" in text
    assert not re.search(r"\b[a-z]{2}(-gov)?-[a-z]+-\d\b", text), "literal region in message"
    # one quoted line per fact: SNS shows each on its own line
    assert all(line.startswith('"') and line.endswith('"') for line in text.split("\n"))


def test_every_rule_retries_and_dead_letters_to_the_encrypted_queue(synth: Synth) -> None:
    queue_id = logical_id(synth.resources, "NotificationsDeadLetterQueue", "AWS::SQS::Queue")
    for name, rule in rules(synth).items():
        assert rule["State"] == "ENABLED"
        for target in rule["Targets"]:
            assert target["RetryPolicy"] == {
                "MaximumEventAgeInSeconds": 86400,
                "MaximumRetryAttempts": 185,
            }, name
            assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}}
    queue = synth.resources[queue_id]
    assert queue["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id(synth), "Arn"]}
    assert queue["Properties"]["QueueName"] == "payment-processor-alerts-dlq-shared"
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 86400
    assert queue["DeletionPolicy"] == "Delete"


def test_dead_letter_queue_accepts_only_this_constructs_rules_over_tls(synth: Synth) -> None:
    [policy] = [v for v in synth.resources.values() if v["Type"] == "AWS::SQS::QueuePolicy"]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    [deny] = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Principal"] == {"AWS": "*"}
    [allow] = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage"
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    rule_ids = sorted(k for k, v in synth.resources.items() if v["Type"] == "AWS::Events::Rule")
    assert sorted(a["Fn::GetAtt"][0] for a in allow["Condition"]["ArnEquals"]["aws:SourceArn"]) == (
        rule_ids
    )


def test_without_projects_only_pipeline_and_deployment_rules_exist(synth: Synth) -> None:
    names = sorted(
        r["Properties"]["Name"]
        for r in synth.minimal_template.find_resources("AWS::Events::Rule").values()
    )
    assert names == [
        "payment-processor-approval-waiting-shared",
        "payment-processor-pipeline-failed-shared",
        "payment-processor-pipeline-rollback-shared",
        "payment-processor-staging-deploy-failed-shared",
    ]
    assert synth.minimal.build_failed_rule is None
    assert list(synth.minimal.deployment_failed_rules) == ["staging"]
    synth.minimal_template.resource_count_is("AWS::SNS::Subscription", 1)


def test_every_physical_name_follows_service_type_env(synth: Synth) -> None:
    names = [
        value
        for logical, resource in synth.resources.items()
        if logical.startswith("Notifications")
        for prop, value in resource["Properties"].items()
        if prop in {"TopicName", "QueueName", "Name", "AliasName"}
    ]
    assert len(names) == 9
    for name in names:
        assert re.fullmatch(r"(alias/)?payment-processor-[a-z0-9-]+-shared", name), name


@pytest.mark.parametrize("stack", ["minimal_path", "topic_path"])
def test_an_environment_agnostic_template_holds_no_literal_account_or_region(
    synth: Synth, stack: str
) -> None:
    # in resource properties: the existing topic's ARN is a parameter's default
    text = json.dumps(json.loads(getattr(synth, stack).read_text())["Resources"])
    assert not re.search(r"\b\d{12}\b", text)
    assert not re.search(r'"[a-z]{2}(-gov)?-[a-z]+-\d"', text)


# --- peers ------------------------------------------------------------------------------------


def test_cdk_nag_aws_solutions_has_no_unacknowledged_finding(synth: Synth) -> None:
    violations = nag_violations(synth.report)
    assert violations == []
    assert synth.synth_error is None
    assert [(r["pluginName"], r["conclusion"]) for r in synth.report["pluginReports"]] == [
        ("AwsSolutions", "success")
    ]


@pytest.mark.parametrize("stack", ["template_path", "minimal_path", "topic_path"])
def test_cfn_lint_reports_no_error_or_warning(synth: Synth, stack: str) -> None:
    assert cfn_lint(getattr(synth, stack)) == []


def test_checkov_fails_nothing(synth: Synth) -> None:
    assert checkov_failures(synth.template_path, synth.minimal_path, synth.topic_path) == []


@pytest.mark.parametrize("stack", ["template_path", "minimal_path", "topic_path"])
def test_deployline_check_finds_nothing_in_the_alerts(synth: Synth, stack: str) -> None:
    # The stand-in pipeline is a fixture (no tags, no outputs): only what these constructs made
    # is judged; DL505 (alarms on failures and stuck executions) on the pipeline too, where the
    # monitoring is built.
    findings = [f for f in deployline_check(getattr(synth, stack)) if f[0] != "DL701"]
    ours = [
        f
        for f in findings
        if f[1].startswith(("Notifications", "Monitoring", "Bus"))
        or (stack == "topic_path" and f[0] in ("DL501", "DL502", "DL504", "DL505"))
    ]
    assert ours == []


# --- validation -------------------------------------------------------------------------------


def bare_stack(env: dict[str, str] | None = None) -> tuple[Stack, codepipeline.IPipeline]:
    app = App(context=feature_flags(), builtin_cloud_formation_validation=False)
    stack = Stack(app, "Bad", env=env)
    pipeline = codepipeline.Pipeline.from_pipeline_arn(
        stack, "P", "arn:aws:codepipeline:eu-west-1:111111111111:p"
    )
    return stack, pipeline


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"emails": []}, "give emails, https_endpoint or topic_arn (got none)"),
        ({"emails": ["not-an-address"]}, "'not-an-address'"),
        ({"emails": ["a@example.com", "a@example.com"]}, "emails must be unique"),
        ({"https_endpoint": "http://hooks.example.com/x"}, "https:// URL"),
        ({"topic_arn": "ops-alerts"}, "SNS topic ARN"),
        ({"max_event_age": Duration.hours(25)}, "between 1 minute and 24 hours"),
        ({"retry_attempts": 186}, "between 0 and 185, got 186"),
        (
            {"environments": [DeployedEnvironment("Prod", "Deploy", "c", "s")]},
            "lowercase kebab-case like 'production', got 'Prod'",
        ),
        (
            {"environments": [DeployedEnvironment("prod", "Deploy prod", "c", "s")]},
            "CodePipeline stage name",
        ),
        (
            {
                "environments": [
                    DeployedEnvironment("a", "S1", "c", "s1"),
                    DeployedEnvironment("a", "S2", "c", "s2"),
                ]
            },
            "own name; ['a']",
        ),
        ({"environments": [PRODUCTION]}, "pass event_bus"),
    ],
)
def test_rejects_bad_input_with_a_message_naming_value_and_fix(
    kwargs: dict[str, Any], message: str
) -> None:
    stack, pipeline = bare_stack()
    args: dict[str, Any] = {"emails": ["oncall@example.com"], **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        Notifications(stack, "N", namer=NAMER, pipeline=pipeline, **args)


def test_rejects_an_existing_topic_in_another_region_than_the_pipelines() -> None:
    stack, pipeline = bare_stack({"account": "111111111111", "region": "eu-west-1"})
    with pytest.raises(ValueError) as info:
        Notifications(
            stack,
            "N",
            namer=NAMER,
            pipeline=pipeline,
            topic_arn="arn:aws:sns:us-east-1:111111111111:ops",
        )
    assert str(info.value) == (
        "topic_arn must be a topic in the pipeline's region eu-west-1, got one in us-east-1 "
        "(arn:aws:sns:us-east-1:111111111111:ops); CloudWatch alarms notify topics of their "
        "own region only"
    )


def test_accepts_an_https_endpoint_without_emails() -> None:
    stack, pipeline = bare_stack()
    notifications = Notifications(
        stack, "N", namer=NAMER, pipeline=pipeline, https_endpoint="https://hooks.example.com/a"
    )
    assert notifications.alarm_topics == (notifications.topic,)
    Template.from_stack(stack).has_resource_properties(
        "AWS::SNS::Subscription", Match.object_like({"Protocol": "https"})
    )
