"""The deployment recorder against moto (DynamoDB for the records, CloudWatch for the metrics).

moto's CodePipeline lacks ListActionExecutions and returns no artifactRevisions from
GetPipelineExecution, and its CodeDeploy GetDeployment knows nothing of rollbacks: those two
clients are botocore Stubbers with the responses the real services give.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.stub import Stubber

from deployline.runtime import clients, recorder, records
from deployline.runtime.recorder import Recorder, RecorderSettings, SettingsError

from .conftest import (
    ACCOUNT,
    PIPELINE,
    REGION,
    create_deployments_table,
    envelope,
    make_client,
    stage_event,
    stamp,
    throttle_dynamodb,
)

TABLE = "payment-processor-deployments-shared"
GROUP = "payment-processor-production"
ENVIRONMENTS = [
    {"name": "staging", "stage": "Deploy-staging", "deployment_group": None},
    {"name": "production", "stage": "Deploy-production", "deployment_group": GROUP},
]
NOW = datetime.now(UTC).replace(microsecond=0)
T0 = NOW - timedelta(hours=3)


def t(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def pipeline_event(execution: str, state: str, when: datetime, pipeline: str = PIPELINE) -> dict:
    return envelope(
        recorder.PIPELINE_EXECUTION,
        "aws.codepipeline",
        when,
        {
            "pipeline": pipeline,
            "execution-id": execution,
            "state": state,
            "version": 3.0,
            "pipeline-execution-attempt": 1.0,
            "execution-trigger": {"trigger-type": "Webhook", "trigger-detail": "arn:aws:..."},
        },
    )


def action_event(
    execution: str,
    stage: str,
    action: str,
    state: str,
    when: datetime,
    *,
    category: str,
    provider: str,
    external: str | None = None,
) -> dict:
    detail: dict[str, Any] = {
        "pipeline": PIPELINE,
        "execution-id": execution,
        "stage": stage,
        "action": action,
        "state": state,
        "region": REGION,
        "version": 3.0,
        "pipeline-execution-attempt": 1.0,
        "type": {"owner": "AWS", "provider": provider, "category": category, "version": "1"},
    }
    if external:
        detail["execution-result"] = {
            "external-execution-id": external,
            "external-execution-state": state.title(),
        }
    return envelope(recorder.ACTION_EXECUTION, "aws.codepipeline", when, detail)


def codedeploy_event(deployment: str, state: str, when: datetime, group: str = GROUP) -> dict:
    return envelope(
        recorder.CODEDEPLOY_DEPLOYMENT,
        "aws.codedeploy",
        when,
        {
            "region": REGION,
            "deploymentId": deployment,
            "instanceGroupId": str(uuid.uuid4()),
            "deploymentGroup": group,
            "application": "payment-processor",
            "state": state,
        },
    )


@pytest.fixture(scope="module")
def aws(moto_url: str) -> dict[str, Any]:
    dynamodb = make_client("dynamodb", moto_url)
    create_deployments_table(dynamodb, TABLE)
    return {
        "dynamodb": dynamodb,
        "cloudwatch": make_client("cloudwatch", moto_url),
        "url": moto_url,
    }


@dataclass
class Harness:
    recorder: Recorder
    settings: RecorderSettings
    codepipeline: Stubber
    codedeploy: Stubber
    aws: dict[str, Any]

    def handle(self, *events: dict) -> list[dict[str, Any]]:
        return [self.recorder.handle(e) for e in events]

    def item(self, execution: str, scope: str) -> dict[str, Any]:
        found = records.get_item(self.aws["dynamodb"], TABLE, records.record_key(execution, scope))
        assert found is not None, f"no record for {execution}/{scope}"
        return found

    def metric(self, name: str, environment: str, statistic: str = "Sum") -> float | None:
        response = self.aws["cloudwatch"].get_metric_statistics(
            Namespace="deployline",
            MetricName=name,
            Dimensions=[
                {"Name": "Service", "Value": self.settings.service},
                {"Name": "Environment", "Value": environment},
            ],
            StartTime=NOW - timedelta(days=1),
            EndTime=NOW + timedelta(hours=1),
            Period=86400 * 2,
            Statistics=[statistic],
        )
        points = response["Datapoints"]
        return sum(p[statistic] for p in points) if points else None

    def expect_revision(self, execution: str, sha: str, committed: datetime) -> None:
        self.codepipeline.add_response(
            "get_pipeline_execution",
            {
                "pipelineExecution": {
                    "pipelineName": PIPELINE,
                    "pipelineVersion": 3,
                    "pipelineExecutionId": execution,
                    "status": "InProgress",
                    "artifactRevisions": [
                        {
                            "name": "Source",
                            "revisionId": sha,
                            "revisionSummary": json.dumps(
                                {
                                    "ProviderType": "GitHub",
                                    "CommitMessage": "Retry card captures\n\nbody",
                                }
                            ),
                            "revisionUrl": f"https://github.com/acme/payment-processor/commit/{sha}",
                            "created": committed,
                        }
                    ],
                }
            },
            {"pipelineName": PIPELINE, "pipelineExecutionId": execution},
        )

    def expect_actions(self, execution: str, *details: dict[str, Any]) -> None:
        self.codepipeline.add_response(
            "list_action_executions",
            {"actionExecutionDetails": list(details)},
            {
                "pipelineName": PIPELINE,
                "filter": {"pipelineExecutionId": execution},
                "maxResults": 100,
            },
        )


def build_detail(execution: str) -> dict[str, Any]:
    return {
        "pipelineExecutionId": execution,
        "actionExecutionId": str(uuid.uuid4()),
        "stageName": "Build",
        "actionName": "BuildImage",
        "status": "Succeeded",
        "startTime": t(1),
        "lastUpdateTime": t(5),
        "input": {
            "actionTypeId": {
                "category": "Build",
                "owner": "AWS",
                "provider": "CodeBuild",
                "version": "1",
            }
        },
        "output": {
            "outputVariables": {
                "IMAGE_TAG": "3f2c1ab",
                "IMAGE_URI": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/payment-processor:3f2c1ab",
            }
        },
    }


def approval_detail(execution: str, status: str = "Succeeded") -> dict[str, Any]:
    return {
        "pipelineExecutionId": execution,
        "actionExecutionId": str(uuid.uuid4()),
        "stageName": "Deploy-production",
        "actionName": "Approve",
        "status": status,
        "startTime": t(20),
        "lastUpdateTime": t(30),
        "updatedBy": f"arn:aws:sts::{ACCOUNT}:assumed-role/ReleaseManager/alice",
        "input": {
            "actionTypeId": {
                "category": "Approval",
                "owner": "AWS",
                "provider": "Manual",
                "version": "1",
            }
        },
        "output": {"executionResult": {"externalExecutionSummary": "LGTM, canary looks clean"}},
    }


@pytest.fixture
def harness(aws: dict[str, Any]) -> Iterator[Harness]:
    # a fresh table per test: the recorder reads earlier deployments (time to restore), so one
    # test's failures must not become another's history
    aws["dynamodb"].delete_table(TableName=TABLE)
    create_deployments_table(aws["dynamodb"], TABLE)
    codepipeline = make_client("codepipeline", "http://127.0.0.1:9")
    codedeploy = make_client("codedeploy", "http://127.0.0.1:9")
    settings = RecorderSettings(
        table_name=TABLE,
        service=f"svc-{uuid.uuid4().hex[:8]}",  # its own metric dimension per test
        pipeline=PIPELINE,
        environments=tuple(recorder.EnvironmentSpec(**e) for e in ENVIRONMENTS),
        production="production",
    )
    with Stubber(codepipeline) as cp_stub, Stubber(codedeploy) as cd_stub:
        rec = Recorder(
            settings,
            dynamodb=aws["dynamodb"],
            cloudwatch=aws["cloudwatch"],
            codepipeline=codepipeline,
            codedeploy=codedeploy,
            sleep=lambda _: None,
        )
        yield Harness(rec, settings, cp_stub, cd_stub, aws)
        cp_stub.assert_no_pending_responses()
        cd_stub.assert_no_pending_responses()


def new_execution() -> str:
    return str(uuid.uuid4())


# ---------------------------------------------------------------------------------------------
# A whole execution
# ---------------------------------------------------------------------------------------------


def test_records_an_execution_with_commit_image_approval_and_durations(h: Harness) -> None:
    execution = new_execution()
    committed = t(-60)
    h.expect_revision(execution, "3f2c1ab9d0e4", committed)
    h.expect_actions(execution, build_detail(execution))
    h.expect_actions(execution, build_detail(execution), approval_detail(execution))
    h.expect_actions(execution, build_detail(execution), approval_detail(execution))

    h.handle(
        pipeline_event(execution, "STARTED", t(0)),
        action_event(
            execution,
            "Build",
            "BuildImage",
            "SUCCEEDED",
            t(5),
            category="Build",
            provider="CodeBuild",
        ),
        stage_event(execution, "Deploy-staging", "STARTED", t(10)),
        stage_event(execution, "Deploy-staging", "SUCCEEDED", t(18)),
        stage_event(execution, "Deploy-production", "STARTED", t(20)),
        action_event(
            execution,
            "Deploy-production",
            "Approve",
            "SUCCEEDED",
            t(30),
            category="Approval",
            provider="Manual",
        ),
        stage_event(execution, "Deploy-production", "SUCCEEDED", t(45)),
        pipeline_event(execution, "SUCCEEDED", t(46)),
    )

    whole = h.item(execution, records.PIPELINE_SCOPE)
    assert (whole["status"], whole["started_at"], whole["ended_at"]) == (
        "succeeded",
        stamp(t(0)),
        stamp(t(46)),
    )
    assert whole["commit_sha"] == "3f2c1ab9d0e4"
    assert whole["commit_message"] == "Retry card captures\n\nbody"
    assert whole["committed_at"] == stamp(committed)
    assert whole["image_tag"] == "3f2c1ab"
    assert whole["trigger"] == "Webhook"
    staging = h.item(execution, "staging")
    assert (staging["status"], staging["duration_seconds"], staging["production"]) == (
        "succeeded",
        8 * 60,
        False,
    )
    production = h.item(execution, "production")
    assert production["production"] is True
    assert production["approver"].endswith("assumed-role/ReleaseManager/alice")
    assert production["approval_comment"] == "LGTM, canary looks clean"
    assert production["approval_status"] == "approved"
    assert production["duration_seconds"] == 25 * 60
    # DORA metrics, once per environment; lead time = commit to production success.
    assert h.metric("DeploymentCount", "staging") == 1
    assert h.metric("DeploymentCount", "production") == 1
    assert h.metric("DeploymentFailed", "production") == 0
    assert h.metric("LeadTimeSeconds", "production") == (t(45) - committed).total_seconds()
    assert h.metric("TimeToRestoreSeconds", "production") is None
    assert production["lead_time_seconds"] == 105 * 60


@pytest.fixture
def h(harness: Harness) -> Harness:
    return harness


# ---------------------------------------------------------------------------------------------
# Duplicates and order
# ---------------------------------------------------------------------------------------------


def test_duplicate_events_change_nothing_and_publish_once(h: Harness) -> None:
    execution = new_execution()
    started = stage_event(execution, "Deploy-staging", "STARTED", t(10))
    succeeded = stage_event(execution, "Deploy-staging", "SUCCEEDED", t(18))

    results = h.handle(started, succeeded, succeeded, started, succeeded)

    assert [r["result"] for r in results] == [
        "recorded",
        "recorded",
        "unchanged",
        "unchanged",
        "unchanged",
    ]
    item = h.item(execution, "staging")
    assert item["status"] == "succeeded"
    assert item["version"] == 3  # two state changes, then the metrics marker
    assert h.metric("DeploymentCount", "staging") == 1


def test_out_of_order_events_never_move_a_record_backwards(h: Harness) -> None:
    execution = new_execution()

    h.handle(
        stage_event(execution, "Deploy-staging", "SUCCEEDED", t(18)),
        stage_event(execution, "Deploy-staging", "STARTED", t(10)),
    )

    item = h.item(execution, "staging")
    assert item["status"] == "succeeded"  # the older, lesser STARTED did not overwrite it
    assert item["started_at"] == stamp(t(10))  # but it did tell when the stage started
    assert item["ended_at"] == stamp(t(18))
    assert item["duration_seconds"] == 8 * 60


def test_a_failed_stage_retried_to_success_ends_succeeded_and_counts_the_restore(
    h: Harness,
) -> None:
    execution = new_execution()

    h.handle(
        stage_event(execution, "Deploy-production", "STARTED", t(20)),
        stage_event(execution, "Deploy-production", "FAILED", t(30)),
        stage_event(execution, "Deploy-production", "RESUMED", t(40)),
        stage_event(execution, "Deploy-production", "SUCCEEDED", t(55)),
        stage_event(execution, "Deploy-production", "FAILED", t(30)),  # a late duplicate
    )

    item = h.item(execution, "production")
    assert (item["status"], item["failed_at"], item["ended_at"]) == (
        "succeeded",
        stamp(t(30)),
        stamp(t(55)),
    )
    assert h.metric("DeploymentCount", "production") == 2  # the failure, then the success
    assert h.metric("DeploymentFailed", "production") == 1
    assert h.metric("TimeToRestoreSeconds", "production") == 25 * 60


def test_time_to_restore_spans_from_a_failed_deployment_to_the_next_success(h: Harness) -> None:
    failed, fixed = new_execution(), new_execution()

    h.handle(
        stage_event(failed, "Deploy-production", "STARTED", t(0)),
        stage_event(failed, "Deploy-production", "FAILED", t(12)),
        stage_event(fixed, "Deploy-production", "STARTED", t(50)),
        stage_event(fixed, "Deploy-production", "SUCCEEDED", t(72)),
    )

    assert h.metric("TimeToRestoreSeconds", "production") == 60 * 60
    assert h.item(fixed, "production")["time_to_restore_seconds"] == 3600
    assert h.metric("DeploymentFailed", "production") == 1
    assert h.metric("DeploymentCount", "production") == 2


def test_a_rejected_approval_is_recorded_as_rejected(h: Harness) -> None:
    execution = new_execution()
    h.expect_actions(execution, approval_detail(execution, status="Failed"))

    h.handle(
        action_event(
            execution,
            "Deploy-production",
            "Approve",
            "FAILED",
            t(30),
            category="Approval",
            provider="Manual",
        )
    )

    item = h.item(execution, "production")
    assert item["approval_status"] == "rejected"
    assert item["started_provisional"] is True  # no stage state seen yet
    assert "status" not in item


# ---------------------------------------------------------------------------------------------
# CodeDeploy rollbacks, in either order
# ---------------------------------------------------------------------------------------------


def deployment_info(
    deployment: str, *, creator: str = "user", rollback: dict | None = None, status: str = "Failed"
) -> dict[str, Any]:
    info: dict[str, Any] = {
        "applicationName": "payment-processor",
        "deploymentGroupName": GROUP,
        "deploymentId": deployment,
        "status": status,
        "creator": creator,
    }
    if rollback:
        info["rollbackInfo"] = rollback
    return {"deploymentInfo": info}


def test_rollback_reported_before_the_pipeline_links_the_deployment(h: Harness) -> None:
    execution = new_execution()
    h.codedeploy.add_response(
        "get_deployment",
        deployment_info(
            "d-FIRST0001",
            rollback={
                "rollbackDeploymentId": "d-ROLLBACK1",
                "rollbackMessage": "Alarm p99-latency fired",
            },
        ),
        {"deploymentId": "d-FIRST0001"},
    )

    h.handle(
        stage_event(execution, "Deploy-production", "STARTED", t(20)),
        codedeploy_event("d-FIRST0001", "FAILURE", t(35)),
        action_event(
            execution,
            "Deploy-production",
            "BlueGreen",
            "FAILED",
            t(36),
            category="Deploy",
            provider="CodeDeployToECS",
            external="d-FIRST0001",
        ),
        stage_event(execution, "Deploy-production", "FAILED", t(37)),
    )

    item = h.item(execution, "production")
    assert item["rolled_back"] is True
    assert item["deployment_ids"] == ["d-FIRST0001"]
    assert item["status"] == "failed"
    assert h.metric("DeploymentFailed", "production") == 1


def test_rollback_deployment_reported_after_the_link_flags_the_original(h: Harness) -> None:
    execution = new_execution()
    h.codedeploy.add_response(
        "get_deployment",
        deployment_info(
            "d-ROLLBACK2",
            creator="codeDeployRollback",
            status="InProgress",
            rollback={"rollbackTriggeringDeploymentId": "d-FIRST0002"},
        ),
        {"deploymentId": "d-ROLLBACK2"},
    )

    h.handle(
        stage_event(execution, "Deploy-production", "STARTED", t(20)),
        action_event(
            execution,
            "Deploy-production",
            "BlueGreen",
            "FAILED",
            t(36),
            category="Deploy",
            provider="CodeDeployToECS",
            external="d-FIRST0002",
        ),
        codedeploy_event("d-ROLLBACK2", "START", t(37)),
    )

    assert h.item(execution, "production")["rolled_back"] is True


def test_a_successful_deployment_is_not_rolled_back(h: Harness) -> None:
    execution = new_execution()
    h.codedeploy.add_response(
        "get_deployment",
        deployment_info("d-GOOD00001", status="Succeeded"),
        {"deploymentId": "d-GOOD00001"},
    )

    h.handle(
        action_event(
            execution,
            "Deploy-production",
            "BlueGreen",
            "SUCCEEDED",
            t(40),
            category="Deploy",
            provider="CodeDeployToECS",
            external="d-GOOD00001",
        ),
        codedeploy_event("d-GOOD00001", "SUCCESS", t(41)),
    )

    assert "rolled_back" not in h.item(execution, "production")


# ---------------------------------------------------------------------------------------------
# Bad input and faults
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ("not an event", "event is not a JSON object"),
        ({"detail-type": recorder.STAGE_EXECUTION, "time": stamp(NOW)}, "no detail object"),
        (
            {
                "detail-type": "EC2 Instance State-change Notification",
                "time": stamp(NOW),
                "detail": {},
            },
            "unknown detail-type",
        ),
        (
            {"detail-type": recorder.STAGE_EXECUTION, "time": "yesterday", "detail": {}},
            "expected an ISO-8601 timestamp",
        ),
        (
            pipeline_event("e-1", "STARTED", NOW, pipeline="someone-elses-pipeline"),
            "event of pipeline 'someone-elses-pipeline'",
        ),
        (stage_event("e-1", "Deploy-staging", "EXPLODED", NOW), "unknown state 'EXPLODED'"),
        (
            {
                **stage_event("e-1", "Deploy-staging", "STARTED", NOW),
                "detail": {"pipeline": PIPELINE, "stage": "Deploy-staging", "state": "STARTED"},
            },
            "no 'execution-id'",
        ),
        (
            {
                **action_event("e-1", "Build", "B", "STARTED", NOW, category="Build", provider="X"),
                "detail": {
                    "pipeline": PIPELINE,
                    "execution-id": "e-1",
                    "state": "STARTED",
                    "type": "Build",
                },
            },
            "nothing to record",
        ),
    ],
)
def test_unknown_and_malformed_events_are_logged_and_ignored(
    h: Harness, event: Any, reason: str
) -> None:
    result = h.recorder.handle(event)

    assert result["result"] in ("ignored", "skipped")
    assert reason in result["reason"]


def test_a_stage_that_deploys_no_environment_is_skipped(h: Harness) -> None:
    execution = new_execution()
    result = h.recorder.handle(stage_event(execution, "Test", "SUCCEEDED", t(5)))
    assert result == {"result": "skipped", "reason": "stage 'Test' deploys no environment"}
    assert (
        records.get_item(h.aws["dynamodb"], TABLE, records.record_key(execution, "staging")) is None
    )


def test_throttled_writes_are_retried(h: Harness) -> None:
    execution = new_execution()
    seen = throttle_dynamodb(h.aws["dynamodb"], "PutItem", times=2)

    h.handle(stage_event(execution, "Deploy-staging", "STARTED", t(10)))

    assert seen["injected"] == 2
    assert h.item(execution, "staging")["status"] == "started"
    h.aws["dynamodb"].meta.events.unregister("before-send.dynamodb.PutItem")


def test_a_revision_lookup_failure_does_not_lose_the_event(h: Harness) -> None:
    execution = new_execution()
    h.codepipeline.add_client_error(
        "get_pipeline_execution", service_error_code="PipelineExecutionNotFoundException"
    )

    h.handle(pipeline_event(execution, "STARTED", t(0)))

    item = h.item(execution, records.PIPELINE_SCOPE)
    assert item["status"] == "started"
    assert "revision_checked" not in item  # the next pipeline event tries again


def test_metrics_are_not_sent_for_deployments_older_than_cloudwatch_accepts(h: Harness) -> None:
    execution = new_execution()
    old = NOW - timedelta(days=20)

    h.handle(
        stage_event(execution, "Deploy-staging", "STARTED", old),
        stage_event(execution, "Deploy-staging", "SUCCEEDED", old + timedelta(minutes=5)),
    )

    assert h.item(execution, "staging")["metrics_published"].startswith("succeeded@")
    assert h.metric("DeploymentCount", "staging") is None


def test_a_concurrent_writer_is_not_overwritten(h: Harness) -> None:
    execution = new_execution()
    calls = {"n": 0}
    original = recorder.merge

    def racing_merge(existing: Any, obs: Any, settings: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:  # the gate writes between our read and our write
            records.store_security_summary(
                h.aws["dynamodb"],
                TABLE,
                execution_id=execution,
                pipeline=PIPELINE,
                summary={"passed": True},
            )
        return original(existing, obs, settings)

    h.codepipeline.add_response(
        "get_pipeline_execution",
        {"pipelineExecution": {"pipelineExecutionId": execution, "artifactRevisions": []}},
    )
    recorder.merge = racing_merge  # type: ignore[assignment]
    try:
        h.handle(pipeline_event(execution, "STARTED", t(0)))
    finally:
        recorder.merge = original  # type: ignore[assignment]

    item = h.item(execution, records.PIPELINE_SCOPE)
    assert item["security"] == {"passed": True}
    assert item["status"] == "started"
    assert calls["n"] >= 2  # the lost race was retried on fresh data


# ---------------------------------------------------------------------------------------------
# Settings and the handler
# ---------------------------------------------------------------------------------------------

ENV = {
    "TABLE_NAME": TABLE,
    "SERVICE_NAME": "payment-processor",
    "PIPELINE_NAME": PIPELINE,
    "ENVIRONMENTS": json.dumps(ENVIRONMENTS),
    "PRODUCTION_ENVIRONMENT": "production",
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"TABLE_NAME": ""}, "['TABLE_NAME'] must be set"),
        ({"ENVIRONMENTS": "[{"}, "ENVIRONMENTS is not valid JSON"),
        ({"ENVIRONMENTS": '{"name": "staging"}'}, "must be a JSON list"),
        ({"ENVIRONMENTS": '[{"name": "staging"}]'}, "ENVIRONMENTS[0] must be an object"),
        ({"PRODUCTION_ENVIRONMENT": "prod"}, "'prod' is not one of the ENVIRONMENTS"),
    ],
)
def test_settings_reject_a_malformed_environment(change: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as info:
        RecorderSettings.from_env({**ENV, **change})
    assert message in str(info.value)


def test_settings_defaults() -> None:
    settings = RecorderSettings.from_env({**ENV, "PRODUCTION_ENVIRONMENT": ""})
    assert settings.namespace == "deployline"
    assert settings.production is None
    assert settings.by_group(GROUP) == recorder.EnvironmentSpec(
        "production", "Deploy-production", GROUP
    )


def test_handler_records_from_its_environment(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws["url"])
    clients.reset()
    execution = new_execution()
    try:
        result = recorder.handler(stage_event(execution, "Deploy-staging", "STARTED", t(10)), None)
    finally:
        clients.reset()

    assert result == {"result": "recorded", "scope": "staging"}
    item = records.get_item(aws["dynamodb"], TABLE, records.record_key(execution, "staging"))
    assert item is not None and item["service"] == "payment-processor"


def test_handler_with_a_broken_environment_returns_instead_of_crash_looping(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TABLE_NAME", raising=False)
    result = recorder.handler(stage_event("e", "Deploy-staging", "STARTED", NOW), None)
    assert result["result"] == "misconfigured"
