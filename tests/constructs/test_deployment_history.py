"""DeploymentHistory: the deployment table, the recorder function, its rules and its DLQ.

One app is synthesized once for the module (with cdk-nag's AwsSolutions pack): a pipeline whose
environments include one in another account and region (its events on the deployment event
bus), and a second, environment-agnostic one; every test reads the templates it produced.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
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

from deployline import defaults
from deployline.constructs.deployment_event_bus import DeploymentEventBus
from deployline.constructs.deployment_history import DeployedEnvironment, DeploymentHistory
from deployline.naming import Namer
from deployline.runtime import recorder

NAMER = Namer("payment-processor", "shared")
OTHER_ACCOUNT, OTHER_REGION = "210987654321", "us-east-1"
STAGING = DeployedEnvironment.named(Namer("payment-processor", "staging"))
PRODUCTION = DeployedEnvironment.named(Namer("payment-processor", "production"))
DR = DeployedEnvironment.named(
    Namer("payment-processor", "dr"), account=OTHER_ACCOUNT, region=OTHER_REGION
)
ENVIRONMENTS = [STAGING, PRODUCTION, DR]


class Synth:
    def __init__(self, tmp: Path) -> None:
        app = nagged_app(tmp)
        stack = Stack(app, "Records")
        self.key, pipeline, _ = fixture_pipeline(stack)
        self.bus = DeploymentEventBus(stack, "Bus", namer=NAMER, source_accounts=[OTHER_ACCOUNT])
        self.history = DeploymentHistory(
            stack,
            "History",
            namer=NAMER,
            key=self.key,
            pipeline=pipeline,
            environments=ENVIRONMENTS,
            production_environment="production",
            event_bus=self.bus.bus,
        )
        # A pipeline that never reaches production: no deletion protection, throw-away, one
        # environment in its own account and region; and a second writer (the security gate).
        other = Stack(app, "StagingRecords")
        key = defaults.secure_key(
            other, "Key", alias="k", description="test", removal=RemovalPolicy.DESTROY
        )
        defaults.allow_logs_to_use_key(
            key, f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:*"
        )
        imported = codepipeline.Pipeline.from_pipeline_arn(
            other,
            "Imported",
            f"arn:{Aws.PARTITION}:codepipeline:{Aws.REGION}:{Aws.ACCOUNT_ID}:pipe",
        )
        self.staging = DeploymentHistory(
            other,
            "History",
            namer=NAMER,
            key=key,
            pipeline=imported,
            environments=[STAGING],
            deletion_protection=False,
            removal=RemovalPolicy.DESTROY,
            metrics_namespace="acme/delivery",
            max_event_age=Duration.hours(2),
            retry_attempts=10,
        )
        gate = iam.Role(other, "GateRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        self.staging.grant_record(gate)
        self.report, self.synth_error = synthesize(app, tmp)
        self.template_path = tmp / "Records.template.json"
        self.resources: dict[str, Any] = json.loads(self.template_path.read_text())["Resources"]
        self.staging_path = tmp / "StagingRecords.template.json"
        self.staging_resources: dict[str, Any] = json.loads(self.staging_path.read_text())[
            "Resources"
        ]


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return Synth(tmp_path_factory.mktemp("records"))


def one(resources: dict[str, Any], type_: str, prefix: str = "History") -> tuple[str, Any]:
    [found] = [(k, v) for k, v in resources.items() if k.startswith(prefix) and v["Type"] == type_]
    return found


KEY_ARN = {"Fn::GetAtt": ["PipelineKeyCB77AB88", "Arn"]}
PIPELINE_ARN = {
    "Fn::Join": [
        "",
        [
            "arn:",
            {"Ref": "AWS::Partition"},
            ":codepipeline:",
            {"Ref": "AWS::Region"},
            ":",
            {"Ref": "AWS::AccountId"},
            ":",
            {"Ref": "PipelineC660917D"},
        ],
    ]
}


# --- the table ---------------------------------------------------------------------------------


def test_table_has_the_fixed_key_schema_and_environment_index(synth: Synth) -> None:
    _, table = one(synth.resources, "AWS::DynamoDB::Table")
    props = table["Properties"]
    assert props["TableName"] == "payment-processor-deployments-shared"
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert props["GlobalSecondaryIndexes"] == [
        {
            "IndexName": "by-environment",
            "KeySchema": [
                {"AttributeName": "environment", "KeyType": "HASH"},
                {"AttributeName": "started_at", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
    ]
    assert sorted(
        (a["AttributeName"], a["AttributeType"]) for a in props["AttributeDefinitions"]
    ) == [("environment", "S"), ("pk", "S"), ("sk", "S"), ("started_at", "S")]
    assert props["BillingMode"] == "PAY_PER_REQUEST"


def test_table_is_encrypted_with_the_pipeline_key_recoverable_and_protected(synth: Synth) -> None:
    _, table = one(synth.resources, "AWS::DynamoDB::Table")
    props = table["Properties"]
    assert props["SSESpecification"] == {
        "SSEEnabled": True,
        "SSEType": "KMS",
        "KMSMasterKeyId": KEY_ARN,
    }
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"


def test_table_of_a_pipeline_without_production_is_unprotected_when_asked(synth: Synth) -> None:
    _, table = one(synth.staging_resources, "AWS::DynamoDB::Table")
    assert table["Properties"]["DeletionProtectionEnabled"] is False
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Delete"


# --- the recorder ------------------------------------------------------------------------------


def test_recorder_receives_the_table_pipeline_and_environments_it_needs(synth: Synth) -> None:
    table_id, _ = one(synth.resources, "AWS::DynamoDB::Table")
    _, function = one(synth.resources, "AWS::Lambda::Function")
    props = function["Properties"]
    assert props["FunctionName"] == "payment-processor-recorder-shared"
    assert props["Handler"] == "runtime.recorder.handler"
    assert props["KmsKeyArn"] == KEY_ARN
    variables = props["Environment"]["Variables"]
    assert variables["TABLE_NAME"] == {"Ref": table_id}
    assert variables["PIPELINE_NAME"] == {"Ref": "PipelineC660917D"}
    assert variables["PIPELINE_ACCOUNT"] == {"Ref": "AWS::AccountId"}
    assert variables["PIPELINE_REGION"] == {"Ref": "AWS::Region"}
    assert variables["SERVICE_NAME"] == "payment-processor"
    assert variables["METRICS_NAMESPACE"] == "deployline"
    assert variables["PRODUCTION_ENVIRONMENT"] == "production"
    assert (variables["SELF_UPDATE_STAGE"], variables["GATE_ACTION"]) == (
        "UpdatePipeline",
        "SecurityGate",
    )
    assert json.loads(variables["ENVIRONMENTS"]) == [
        {
            "name": name,
            "stage": f"Deploy-{name}",
            "approve_stage": f"Approve-{name}",
            "cluster": f"payment-processor-cluster-{name}",
            "service": f"payment-processor-service-{name}",
            "account": account,
            "region": region,
        }
        for name, account, region in (
            ("staging", None, None),
            ("production", None, None),
            ("dr", OTHER_ACCOUNT, OTHER_REGION),
        )
    ]


def test_recorder_accepts_the_environment_the_construct_gives_it(synth: Synth) -> None:
    _, function = one(synth.resources, "AWS::Lambda::Function")
    variables = dict(function["Properties"]["Environment"]["Variables"])
    variables.update(
        TABLE_NAME="payment-processor-deployments-shared",
        PIPELINE_NAME="payment-processor-pipeline-shared",
        PIPELINE_ACCOUNT="123456789012",
        PIPELINE_REGION="eu-west-1",
    )
    settings = recorder.RecorderSettings.from_env(variables)
    assert settings.production == "production"
    assert [(e.name, e.account, e.region, e.approve_stage) for e in settings.environments] == [
        ("staging", "123456789012", "eu-west-1", "Approve-staging"),
        ("production", "123456789012", "eu-west-1", "Approve-production"),
        ("dr", OTHER_ACCOUNT, OTHER_REGION, "Approve-dr"),
    ]


def test_recorder_logs_to_its_own_encrypted_log_group_with_retention(synth: Synth) -> None:
    _, group = one(synth.resources, "AWS::Logs::LogGroup")
    assert group["Properties"] == {
        "KmsKeyId": KEY_ARN,
        "LogGroupName": "/aws/lambda/payment-processor-recorder-shared",
        "RetentionInDays": 30,
    }
    assert group["DeletionPolicy"] == group["UpdateReplacePolicy"] == "Retain"


def role_statements(resources: dict[str, Any], prefix: str) -> dict[str, dict[str, Any]]:
    policies = [
        v for k, v in resources.items() if k.startswith(prefix) and v["Type"] == "AWS::IAM::Policy"
    ]
    return {s["Sid"]: s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]}


def actions_of(statement: dict[str, Any]) -> list[str]:
    value = statement["Action"]
    return sorted([value] if isinstance(value, str) else value)


def test_recorder_role_allows_exactly_what_the_recorder_calls_scoped_to_arns(
    synth: Synth,
) -> None:
    table_id, _ = one(synth.resources, "AWS::DynamoDB::Table")
    queue_id, _ = one(synth.resources, "AWS::SQS::Queue")
    logs_id, _ = one(synth.resources, "AWS::Logs::LogGroup")
    table_arn = {"Fn::GetAtt": [table_id, "Arn"]}
    region = {"Ref": "AWS::Region"}
    statements = role_statements(synth.resources, "HistoryRecorderRole")
    expected = {
        "WriteOwnLogs": (
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            [
                {"Fn::GetAtt": [logs_id, "Arn"]},
                {"Fn::Join": ["", [{"Fn::GetAtt": [logs_id, "Arn"]}, ":*"]]},
            ],
            None,
        ),
        "RecordDeployments": (
            ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"],
            [table_arn, {"Fn::Join": ["", [table_arn, "/index/by-environment"]]}],
            None,
        ),
        "UseTableKeyThroughDynamoDB": (
            ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"],
            KEY_ARN,
            {
                "StringEquals": {
                    "kms:ViaService": {"Fn::Join": ["", ["dynamodb.", region, ".amazonaws.com"]]}
                }
            },
        ),
        "ReadPipelineExecutions": (
            [
                "codepipeline:GetPipelineExecution",
                "codepipeline:ListActionExecutions",
                "codepipeline:ListPipelineExecutions",
            ],
            PIPELINE_ARN,
            None,
        ),
        "PublishDeploymentMetrics": (
            ["cloudwatch:PutMetricData"],
            "*",
            {"StringEquals": {"cloudwatch:namespace": "deployline"}},
        ),
        "SendFailedEventsToDeadLetterQueue": (
            ["sqs:SendMessage"],
            {"Fn::GetAtt": [queue_id, "Arn"]},
            None,
        ),
        "EncryptDeadLettersThroughSQS": (
            ["kms:Decrypt", "kms:GenerateDataKey"],
            KEY_ARN,
            {
                "StringEquals": {
                    "kms:ViaService": {"Fn::Join": ["", ["sqs.", region, ".amazonaws.com"]]}
                }
            },
        ),
    }
    assert set(statements) == set(expected)
    for sid, (allowed, resource, condition) in expected.items():
        statement = statements[sid]
        assert statement["Effect"] == "Allow", sid
        assert actions_of(statement) == allowed, sid
        assert statement["Resource"] == resource, sid
        assert statement.get("Condition") == condition, sid


def test_recorder_role_is_assumable_by_lambda_only(synth: Synth) -> None:
    _, role = one(synth.resources, "AWS::IAM::Role")
    assert role["Properties"]["RoleName"] == "payment-processor-recorder-fn-shared"
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
        }
    ]
    assert "ManagedPolicyArns" not in role["Properties"]


RUNTIME = Path(recorder.__file__).parent
CLIENTS = {"dynamodb", "codepipeline", "cloudwatch"}
#: The runtime modules whose AWS calls run under the recorder's role.
RECORDER_MODULES = ("recorder.py", "endings.py", "deployment_links.py")


def _api_calls_of_recorder() -> set[str]:
    """Every AWS operation the recorder's modules call (on `self.<client>` or a `<client>`
    argument), directly or through the records.py functions."""

    def camel(op: str) -> str:
        return "".join(part.capitalize() for part in op.split("_"))

    calls: set[str] = set()
    used_records: set[str] = set()
    trees = [ast.parse((RUNTIME / module).read_text()) for module in RECORDER_MODULES]
    for node in (n for tree in trees for n in ast.walk(tree)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute):
            owner = node.value
            if (
                isinstance(owner.value, ast.Name)
                and owner.value.id == "self"
                and owner.attr in CLIENTS
            ):
                calls.add(f"{owner.attr}:{camel(node.attr)}")
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in CLIENTS
        ):
            calls.add(f"{node.value.id}:{camel(node.attr)}")
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "records"
        ):
            used_records.add(node.attr)
    functions = {
        n.name: n
        for n in ast.parse((RUNTIME / "records.py").read_text()).body
        if isinstance(n, ast.FunctionDef)
    }
    todo, seen = [f for f in used_records if f in functions], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for node in ast.walk(functions[name]):
            if isinstance(node, ast.Name) and node.id in functions:
                todo.append(node.id)
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in CLIENTS
            ):
                calls.add(f"{node.value.id}:{camel(node.attr)}")
    return calls


def test_recorder_role_covers_every_api_the_recorder_code_calls(synth: Synth) -> None:
    needed = _api_calls_of_recorder()
    assert {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "codepipeline:GetPipelineExecution",
        "codepipeline:ListActionExecutions",
        "codepipeline:ListPipelineExecutions",
        "cloudwatch:PutMetricData",
    } <= needed
    allowed = {
        action
        for statement in role_statements(synth.resources, "HistoryRecorderRole").values()
        for action in actions_of(statement)
    }
    assert needed - allowed == set(), "grant these in DeploymentHistory"
    # Nothing beyond what the code calls, but UpdateItem, which the recorder's contract keeps.
    unused = {a for a in allowed - needed if not a.startswith(("logs:", "kms:", "sqs:"))}
    assert unused <= {"dynamodb:UpdateItem"}


# --- the rules ---------------------------------------------------------------------------------


def rules_by_name(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        v["Properties"]["Name"]: v["Properties"]
        for v in resources.values()
        if v["Type"] == "AWS::Events::Rule"
    }


def test_rule_records_every_execution_stage_and_action_change_of_this_pipeline(
    synth: Synth,
) -> None:
    rule = rules_by_name(synth.resources)["payment-processor-record-pipeline-shared"]
    assert rule["EventPattern"] == {
        "source": ["aws.codepipeline"],
        "detail-type": [
            "CodePipeline Pipeline Execution State Change",
            "CodePipeline Stage Execution State Change",
            "CodePipeline Action Execution State Change",
        ],
        "detail": {"pipeline": [{"Ref": "PipelineC660917D"}]},
    }


def test_rule_records_ecs_deployments_of_the_services_in_the_pipelines_account_and_region(
    synth: Synth,
) -> None:
    rule = rules_by_name(synth.resources)["payment-processor-record-deploy-shared"]
    assert rule["EventPattern"] == ecs_deployment_pattern(
        service_arn(STAGING.cluster, STAGING.service),
        service_arn(PRODUCTION.cluster, PRODUCTION.service),
    )
    assert "EventBusName" not in rule  # the default bus


def test_ecs_deployments_elsewhere_are_recorded_from_the_deployment_event_bus(
    synth: Synth,
) -> None:
    rule = rules_by_name(synth.resources)["payment-processor-record-fwd-deploy-shared"]
    bus_id, _ = one(synth.resources, "AWS::Events::EventBus", prefix="Bus")
    assert rule["EventBusName"] == {"Ref": bus_id}
    assert rule["EventPattern"] == ecs_deployment_pattern(
        service_arn(DR.cluster, DR.service, account=OTHER_ACCOUNT, region=OTHER_REGION)
    )
    assert synth.staging.forwarded_deployment_rule is None
    assert sorted(rules_by_name(synth.staging_resources)) == [
        "payment-processor-record-deploy-shared",
        "payment-processor-record-pipeline-shared",
    ]


def suppressions(resource: dict[str, Any]) -> dict[str, str]:
    entries = resource.get("Metadata", {}).get("deployline", {}).get("suppress", [])
    return {e["id"]: e["reason"] for e in entries}


def test_what_names_another_account_says_so_and_why(synth: Synth) -> None:
    _, function = one(synth.resources, "AWS::Lambda::Function")
    forwarded = next(
        v
        for v in synth.resources.values()
        if v["Properties"].get("Name", "").endswith("record-fwd-deploy-shared")
    )
    assert suppressions(function) == {
        "DL130": "payment-processor-recorder-shared's ENVIRONMENTS says where each "
        f"environment's service runs (dr in {OTHER_ACCOUNT}/{OTHER_REGION}): the recorder tells "
        "ECS events apart by account and region"
    }
    assert suppressions(forwarded) == {
        "DL130": f"the rule matches the ECS services of dr in {OTHER_ACCOUNT}/{OTHER_REGION} "
        "by their ARNs"
    }
    skips = {s["id"] for s in function["Metadata"]["checkov"]["skip"]}
    assert "CKV_AWS_45" in skips
    # an environment-agnostic history names no account, and says nothing about it
    _, staging_function = one(synth.staging_resources, "AWS::Lambda::Function")
    assert "deployline" not in staging_function.get("Metadata", {})
    assert "CKV_AWS_45" not in {s["id"] for s in staging_function["Metadata"]["checkov"]["skip"]}


def test_rules_invoke_the_recorder_with_retries_and_the_encrypted_dead_letter_queue(
    synth: Synth,
) -> None:
    function_id, _ = one(synth.resources, "AWS::Lambda::Function")
    queue_id, _ = one(synth.resources, "AWS::SQS::Queue")
    rules = rules_by_name(synth.resources)
    assert len(rules) == 3
    for rule in rules.values():
        [target] = rule["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
        assert target["RetryPolicy"] == {
            "MaximumEventAgeInSeconds": 86400,
            "MaximumRetryAttempts": 185,
        }
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}}
    permissions = [
        v["Properties"] for v in synth.resources.values() if v["Type"] == "AWS::Lambda::Permission"
    ]
    assert sorted(p["SourceArn"]["Fn::GetAtt"][0] for p in permissions) == sorted(
        k for k, v in synth.resources.items() if v["Type"] == "AWS::Events::Rule"
    )
    assert {(p["Action"], p["Principal"]) for p in permissions} == {
        ("lambda:InvokeFunction", "events.amazonaws.com")
    }


def test_retry_policy_follows_the_arguments(synth: Synth) -> None:
    for rule in rules_by_name(synth.staging_resources).values():
        assert rule["Targets"][0]["RetryPolicy"] == {
            "MaximumEventAgeInSeconds": 7200,
            "MaximumRetryAttempts": 10,
        }


def test_events_the_recorder_fails_on_go_to_the_same_dead_letter_queue(synth: Synth) -> None:
    function_id, _ = one(synth.resources, "AWS::Lambda::Function")
    queue_id, _ = one(synth.resources, "AWS::SQS::Queue")
    policy_id, _ = one(synth.resources, "AWS::IAM::Policy")
    _, config = one(synth.resources, "AWS::Lambda::EventInvokeConfig")
    assert config["Properties"] == {
        "FunctionName": {"Ref": function_id},
        "Qualifier": "$LATEST",
        "MaximumRetryAttempts": 2,
        "MaximumEventAgeInSeconds": 21600,
        "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [queue_id, "Arn"]}}},
    }
    assert policy_id in config["DependsOn"]
    _, function = one(synth.resources, "AWS::Lambda::Function")
    assert policy_id in function["DependsOn"]


def test_dead_letter_queue_is_encrypted_ssl_only_and_fed_by_this_constructs_rules(
    synth: Synth,
) -> None:
    _, queue = one(synth.resources, "AWS::SQS::Queue")
    assert queue["Properties"]["KmsMasterKeyId"] == KEY_ARN
    assert queue["Properties"]["QueueName"] == "payment-processor-recorder-dlq-shared"
    assert queue["DeletionPolicy"] == "Retain"
    _, policy = one(synth.resources, "AWS::SQS::QueuePolicy")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    [deny] = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert {json.dumps(s["Principal"]) for s in allows} == {
        json.dumps({"Service": "events.amazonaws.com"})
    }
    rule_ids = {k for k, v in synth.resources.items() if v["Type"] == "AWS::Events::Rule"}
    assert {s["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::GetAtt"][0] for s in allows} == (
        rule_ids
    )


def test_pipeline_key_lets_eventbridge_encrypt_dead_letters_for_this_account(
    synth: Synth,
) -> None:
    statements = synth.resources["PipelineKeyCB77AB88"]["Properties"]["KeyPolicy"]["Statement"]
    [statement] = [s for s in statements if s.get("Sid") == "AllowEventBridgeRecorderDeadLetters"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    }


def test_grant_record_gives_another_writer_the_record_actions_only(synth: Synth) -> None:
    statements = [
        s
        for k, v in synth.staging_resources.items()
        if k.startswith("GateRole") and v["Type"] == "AWS::IAM::Policy"
        for s in v["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert sorted(tuple(actions_of(s)) for s in statements) == [
        ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"),
        ("kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"),
    ]
    [kms_statement] = [s for s in statements if "kms:Decrypt" in s["Action"]]
    assert "kms:ViaService" in kms_statement["Condition"]["StringEquals"]


def test_recorder_publishes_to_the_namespace_it_is_given(synth: Synth) -> None:
    statements = role_statements(synth.staging_resources, "HistoryRecorderRole")
    assert statements["PublishDeploymentMetrics"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "acme/delivery"}
    }
    assert synth.staging.metrics_namespace == "acme/delivery"


def test_every_physical_name_follows_service_type_env(synth: Synth) -> None:
    names = [
        value
        for logical, resource in synth.resources.items()
        if logical.startswith("History")
        for prop, value in resource["Properties"].items()
        if prop in {"TableName", "QueueName", "Name", "FunctionName", "RoleName"}
        and isinstance(value, str)
    ]
    assert len(names) == 7
    for name in names:
        assert re.fullmatch(r"payment-processor-[a-z0-9-]+-shared", name), name


def test_an_environment_agnostic_template_holds_no_literal_account_or_region(
    synth: Synth,
) -> None:
    text = synth.staging_path.read_text()
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


@pytest.mark.parametrize("stack", ["template_path", "staging_path"])
def test_cfn_lint_reports_no_error_or_warning(synth: Synth, stack: str) -> None:
    assert cfn_lint(getattr(synth, stack)) == []


def test_checkov_fails_nothing(synth: Synth) -> None:
    assert checkov_failures(synth.template_path, synth.staging_path) == []


@pytest.mark.parametrize("stack", ["template_path", "staging_path"])
def test_deployline_check_finds_nothing_in_the_history(synth: Synth, stack: str) -> None:
    # The stand-in pipeline is a fixture (no tags, no alarms): only what this construct (and
    # the bus) made is judged.
    findings = [f for f in deployline_check(getattr(synth, stack)) if f[0] != "DL701"]
    ours = [f for f in findings if f[1].startswith(("History", "Bus"))]
    assert ours == []


# --- validation -------------------------------------------------------------------------------


def bare() -> tuple[Stack, kms.Key, codepipeline.IPipeline]:
    stack = Stack(App(context=feature_flags(), builtin_cloud_formation_validation=False), "Bad")
    key = kms.Key(stack, "Key")
    pipeline = codepipeline.Pipeline.from_pipeline_arn(
        stack, "P", "arn:aws:codepipeline:eu-west-1:111111111111:p"
    )
    return stack, key, pipeline


def env(**changes: Any) -> list[DeployedEnvironment]:
    fields = {
        "name": "staging",
        "stage": "Deploy-staging",
        "cluster": "payment-processor-cluster-staging",
        "service": "payment-processor-service-staging",
        **changes,
    }
    return [DeployedEnvironment(**fields)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"environments": []}, "at least one environment"),
        ({"production_environment": "prod"}, "one of the environments ['staging'], got 'prod'"),
        ({"metrics_namespace": "AWS/Custom"}, "must not start with 'AWS/'"),
        ({"retry_attempts": -1}, "between 0 and 185, got -1"),
        ({"max_event_age": Duration.seconds(30)}, "between 1 minute and 24 hours"),
        ({"environments": env(stage="Deploy staging")}, "CodePipeline stage name"),
        (
            {"environments": env(cluster="payments cluster")},
            "DeployedEnvironment.cluster must be an ECS cluster name (1-255 of A-Za-z0-9-_), got "
            "'payments cluster' for environment 'staging'",
        ),
        (
            {"environments": env(account="\uff11" * 12)},  # FULLWIDTH DIGIT ONE: \\d, not ASCII
            "DeployedEnvironment.account must be a 12-digit account ID",
        ),
        ({"environments": env(region="EU-West-1")}, "a region like eu-west-1"),
        (
            {"environments": [*env(), *env(name="qa", stage="Deploy-qa")]},
            "each DeployedEnvironment needs its own service",
        ),
        (
            {"environments": env(account=OTHER_ACCOUNT)},
            "environments ['staging'] live in another account or region: their ECS events reach "
            "the pipeline only through its deployment event bus; pass event_bus",
        ),
    ],
)
def test_rejects_bad_input_with_a_message_naming_value_and_fix(
    kwargs: dict[str, Any], message: str
) -> None:
    stack, key, pipeline = bare()
    args: dict[str, Any] = {"environments": env()}
    args.update(kwargs)
    with pytest.raises(ValueError, match=re.escape(message)):
        DeploymentHistory(stack, "H", namer=NAMER, key=key, pipeline=pipeline, **args)


def test_an_environment_in_the_pipelines_own_account_and_region_needs_no_bus() -> None:
    app = App(context=feature_flags(), builtin_cloud_formation_validation=False)
    stack = Stack(app, "Here", env={"account": "123456789012", "region": "eu-west-1"})
    key = kms.Key(stack, "Key")
    pipeline = codepipeline.Pipeline.from_pipeline_arn(
        stack, "P", "arn:aws:codepipeline:eu-west-1:123456789012:p"
    )
    named = env(account="123456789012", region="eu-west-1")
    history = DeploymentHistory(
        stack, "H", namer=NAMER, key=key, pipeline=pipeline, environments=named
    )
    assert history.forwarded_deployment_rule is None and history.deployment_rule is not None
    assert isinstance(history.deployment_rule, events.Rule)


def test_rejects_an_imported_key_whose_policy_it_cannot_extend() -> None:
    stack, _, pipeline = bare()
    imported = kms.Key.from_key_arn(stack, "Imported", "arn:aws:kms:eu-west-1:111111111111:key/abc")
    with pytest.raises(ValueError, match="got an imported key"):
        DeploymentHistory(
            stack,
            "H",
            namer=NAMER,
            key=imported,
            pipeline=pipeline,
            environments=env(),
        )


def test_an_environment_is_named_as_deployline_names_its_service() -> None:
    assert DeployedEnvironment.named(
        Namer("payment-processor", "production", "acme"), account=OTHER_ACCOUNT
    ) == DeployedEnvironment(
        name="production",
        stage="Deploy-production",
        cluster="acme-payment-processor-cluster-production",
        service="acme-payment-processor-service-production",
        account=OTHER_ACCOUNT,
        region=None,
    )
