"""The deployment recorder against moto (DynamoDB for the records, CloudWatch for the metrics).

moto's CodePipeline has no ListActionExecutions and cannot give an execution its revision or its
actions' output variables: CodePipeline is FakeCodePipeline (conftest), answering at botocore's
HTTP layer from a model of executions and actions.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from deployline.runtime import clients, ecs_events, endings, recorder, records
from deployline.runtime.recorder import EnvironmentSpec, Recorder, RecorderSettings, SettingsError

from .conftest import (
    ACCOUNT,
    PIPELINE,
    REGION,
    Action,
    CallLog,
    Execution,
    FakeCodePipeline,
    action_event,
    create_deployments_table,
    ecs_event,
    envelope,
    inject_errors,
    make_client,
    pipeline_event,
    stage_event,
    stamp,
    throttle_codepipeline,
    throttle_dynamodb,
)

pytestmark = pytest.mark.usefixtures("no_retry_delay")

TABLE = "payment-processor-deployments-shared"
OTHER_ACCOUNT, OTHER_REGION = "210987654321", "us-east-1"
NOW = datetime.now(UTC).replace(microsecond=0)
T0 = NOW - timedelta(hours=3)
SHA = "3f2c1ab9d0e4"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/payment-processor"


def t(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def spec(name: str, *, approve: bool = False, account: str = ACCOUNT, region: str = REGION):
    return EnvironmentSpec(
        name=name,
        stage=f"Deploy-{name}",
        approve_stage=f"Approve-{name}" if approve else None,
        cluster=f"payment-processor-cluster-{name}",
        service=f"payment-processor-service-{name}",
        account=account,
        region=region,
    )


ENVIRONMENTS = (
    spec("staging"),
    spec("production", approve=True),
    spec("dr", account=OTHER_ACCOUNT, region=OTHER_REGION),
)


def ecs(name: str, deployment: str, event: str, when: datetime, **kwargs: Any) -> dict:
    env = next(e for e in ENVIRONMENTS if e.name == name)
    return ecs_event(
        deployment,
        event,
        when,
        service=env.service,
        cluster=env.cluster,
        account=env.account,
        region=env.region,
        **kwargs,
    )


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def aws(moto_url: str) -> dict[str, Any]:
    return {
        "dynamodb": make_client("dynamodb", moto_url),
        "cloudwatch": make_client("cloudwatch", moto_url),
        "url": moto_url,
    }


@dataclass
class Harness:
    recorder: Recorder
    settings: RecorderSettings
    codepipeline: FakeCodePipeline
    cloudwatch: CallLog
    clock: Clock
    aws: dict[str, Any]

    def handle(self, *events: dict) -> list[dict[str, Any]]:
        return [self.recorder.handle(e) for e in events]

    def item(self, execution: str, scope: str) -> dict[str, Any]:
        found = records.get_item(self.aws["dynamodb"], TABLE, records.record_key(execution, scope))
        assert found is not None, f"no record for {execution}/{scope}"
        return found

    def env_items(self, environment: str) -> list[dict[str, Any]]:
        return records.query_environment(
            self.aws["dynamodb"], TABLE, environment, since=stamp(NOW - timedelta(days=30))
        )

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

    def publishes(self, environment: str) -> int:
        """PutMetricData calls for `environment`'s endings."""
        return sum(
            1
            for params in self.cloudwatch.named("PutMetricData")
            if {"Name": "Environment", "Value": environment}
            in params["MetricData"][0]["Dimensions"]
        )


@pytest.fixture
def h(aws: dict[str, Any]) -> Iterator[Harness]:
    # a fresh table per test: the recorder reads earlier deployments (time to restore), so one
    # test's failures must not become another's history
    dynamodb = aws["dynamodb"]
    if TABLE in dynamodb.list_tables()["TableNames"]:
        dynamodb.delete_table(TableName=TABLE)
    create_deployments_table(dynamodb, TABLE)
    client = make_client("codepipeline", "http://127.0.0.1:9")
    cloudwatch = make_client("cloudwatch", aws["url"])
    clock = Clock()
    settings = RecorderSettings(
        table_name=TABLE,
        service=f"svc-{uuid.uuid4().hex[:8]}",  # its own metric dimension per test
        pipeline=PIPELINE,
        environments=ENVIRONMENTS,
        production="production",
    )
    rec = Recorder(
        settings,
        dynamodb=dynamodb,
        cloudwatch=cloudwatch,
        codepipeline=client,
        sleep=lambda _: None,
        now=clock,
    )
    yield Harness(rec, settings, FakeCodePipeline(client), CallLog(cloudwatch), clock, aws)


def new_id() -> str:
    return str(uuid.uuid4())


# ---- executions as CodePipeline reports them --------------------------------------------------


def execution_model(
    execution: str,
    start: float,
    *,
    sha: str = SHA,
    deploys: dict[str, tuple[float, float | None, str]] | None = None,
    approved_by: str | None = None,
    status: str = "InProgress",
    trigger: str = "Webhook",
    rollback_target: str | None = None,
) -> Execution:
    """An execution whose build made image `sha[:7]` and whose Deploy action ran in each
    environment over (start, end, status) minutes."""
    actions = [
        Action("Source", "Source", "Source", "CodeStarSourceConnection", "Succeeded", t(start)),
        Action(
            "Build",
            "BuildImage",
            "Build",
            "CodeBuild",
            "Succeeded",
            t(start + 1),
            t(start + 5),
            variables={"IMAGE_TAG": sha[:7], "IMAGE_URI": f"{IMAGE}:{sha[:7]}"},
        ),
        Action(
            "Test",
            "SecurityGate",
            "Invoke",
            "Lambda",
            "Succeeded",
            t(start + 6),
            t(start + 7),
            variables={"SECURITY_SUMMARY": "PASSED: 0 critical, 1 high", "HIGH": "1"},
        ),
    ]
    if approved_by:
        actions.append(
            Action(
                "Approve-production",
                "Approve",
                "Approval",
                "Manual",
                "Succeeded",
                t(start + 20),
                t(start + 30),
                updated_by=f"arn:aws:sts::{ACCOUNT}:assumed-role/ReleaseManager/{approved_by}",
                summary="LGTM, canary looks clean",
            )
        )
    for env, (begin, end, state) in (deploys or {}).items():
        actions.append(
            Action(
                f"Deploy-{env}",
                "Deploy",
                "Deploy",
                "CloudFormation",
                state,
                t(start + begin),
                t(start + end) if end is not None else None,
            )
        )
    ends = [a.updated or a.started for a in actions]
    return Execution(
        execution,
        t(start),
        updated=max(ends) if status != "InProgress" else None,
        status=status,
        sha=sha,
        committed=t(start - 60),
        trigger=trigger,
        rollback_target=rollback_target,
        actions=actions,
    )


def approval_event(execution: str, state: str, when: datetime) -> dict:
    return action_event(
        execution, "Approve-production", "Approve", state, when, category="Approval",
        provider="Manual",
    )  # fmt: skip


def deploy_events(
    execution: str, env: str, begin: float, end: float, outcome: str, *ecs_: dict
) -> list[dict]:
    """A Deploy-<env> stage: stage and Deploy action events around the ECS events given."""
    stage = f"Deploy-{env}"
    return [
        stage_event(execution, stage, "STARTED", t(begin)),
        action_event(
            execution,
            stage,
            "Deploy",
            "STARTED",
            t(begin),
            category="Deploy",
            provider="CloudFormation",
        ),
        *ecs_,
        action_event(
            execution,
            stage,
            "Deploy",
            outcome,
            t(end - 1),
            category="Deploy",
            provider="CloudFormation",
        ),
        stage_event(execution, stage, outcome, t(end)),
    ]


# ---------------------------------------------------------------------------------------------
# A whole execution on the new path
# ---------------------------------------------------------------------------------------------


def test_records_an_execution_with_commit_image_approval_ecs_deployments_and_metrics(
    h: Harness,
) -> None:
    execution = new_id()
    h.codepipeline.add(
        execution_model(
            execution,
            0,
            deploys={"staging": (10, 17, "Succeeded"), "production": (32, 44, "Succeeded")},
            approved_by="alice",
        )
    )

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
        *deploy_events(
            execution,
            "staging",
            10,
            18,
            "SUCCEEDED",
            ecs("staging", "ecs-svc/1001", "SERVICE_DEPLOYMENT_IN_PROGRESS", t(11)),
            ecs("staging", "ecs-svc/1001", "SERVICE_DEPLOYMENT_COMPLETED", t(16)),
        ),
        approval_event(execution, "SUCCEEDED", t(30)),
        *deploy_events(
            execution,
            "production",
            32,
            45,
            "SUCCEEDED",
            ecs("production", "ecs-svc/2001", "SERVICE_DEPLOYMENT_IN_PROGRESS", t(33)),
            ecs("production", "ecs-svc/2001", "SERVICE_DEPLOYMENT_COMPLETED", t(43)),
        ),
        pipeline_event(execution, "SUCCEEDED", t(46)),
    )

    whole = h.item(execution, records.PIPELINE_SCOPE)
    assert (whole["status"], whole["started_at"], whole["ended_at"]) == (
        "succeeded",
        stamp(t(0)),
        stamp(t(46)),
    )
    assert "endings" not in whole  # the execution as a whole is no deployment
    assert (whole["commit_sha"], whole["commit_message"]) == (SHA, "Retry card captures")
    assert whole["committed_at"] == stamp(t(-60))
    assert (whole["image_tag"], whole["image_uri"]) == (SHA[:7], f"{IMAGE}:{SHA[:7]}")
    assert whole["security"]["summary"] == "PASSED: 0 critical, 1 high"
    staging = records.DeploymentRecord.from_item(h.item(execution, "staging"), whole)
    assert (staging.status, staging.duration_seconds, staging.production) == (
        "succeeded",
        8 * 60,
        False,
    )
    assert (staging.image_tag, staging.commit_sha) == (SHA[:7], SHA)
    assert staging.deployment_ids == ("ecs-svc/1001",)
    production_item = h.item(execution, "production")
    assert production_item["ecs_deployments"]["ecs-svc/2001"]["phase"] == "succeeded"
    assert (production_item["deploy_started_at"], production_item["deploy_state"]) == (
        stamp(t(32)),
        "succeeded",
    )
    production = records.DeploymentRecord.from_item(production_item, whole)
    assert production.production is True
    assert production.approver and production.approver.endswith("ReleaseManager/alice")
    assert (production.approval_status, production.approval_comment) == (
        "approved",
        "LGTM, canary looks clean",
    )
    assert production.succeeded and not production.rolled_back
    # DORA metrics, once per environment; lead time = commit to production success.
    assert (h.publishes("staging"), h.publishes("production")) == (1, 1)
    assert h.metric("DeploymentCount", "production") == 1
    assert h.metric("DeploymentFailed", "production") == 0
    assert h.metric("LeadTimeSeconds", "production") == (t(45) - t(-60)).total_seconds()
    assert production_item["lead_time_seconds"] == 105 * 60
    assert h.metric("TimeToRestoreSeconds", "production") is None


# ---------------------------------------------------------------------------------------------
# ECS deployments replayed: success, failure, rollback (one record each, image and commit)
# ---------------------------------------------------------------------------------------------


CIRCUIT_BREAKER = "ECS deployment circuit breaker: task failed to start."


def replay(h: Harness, sha: str, start: float, outcome: str, *names: tuple[str, str, str | None]):
    """One production deploy of commit `sha` in which ECS sent `names` (deployment, event name,
    reason); returns the execution ID."""
    execution = new_id()
    state = "Succeeded" if outcome == "SUCCEEDED" else "Failed"
    h.codepipeline.add(
        execution_model(execution, start, sha=sha, deploys={"production": (2, 14, state)})
    )
    ecs_ = [
        ecs("production", deployment, name, t(start + 3 + i), reason=reason)
        for i, (deployment, name, reason) in enumerate(names)
    ]
    h.handle(
        pipeline_event(execution, "STARTED", t(start)),
        *deploy_events(execution, "production", start + 2, start + 15, outcome, *ecs_),
        pipeline_event(execution, outcome, t(start + 16)),
    )
    return execution


def test_replayed_ecs_success_failure_and_rollback_make_one_record_each_with_image_and_commit(
    h: Harness,
) -> None:
    ok = replay(
        h,
        "aaaaaaa1111",
        0,
        "SUCCEEDED",
        ("ecs-svc/11", "SERVICE_DEPLOYMENT_IN_PROGRESS", None),
        ("ecs-svc/11", "SERVICE_DEPLOYMENT_COMPLETED", None),
    )
    failed = replay(
        h,
        "bbbbbbb2222",
        30,
        "FAILED",
        ("ecs-svc/21", "SERVICE_DEPLOYMENT_IN_PROGRESS", None),
        ("ecs-svc/21", "SERVICE_DEPLOYMENT_FAILED", "ECS deployment alarms: p99-latency in ALARM"),
    )
    rolled_back = replay(
        h,
        "ccccccc3333",
        60,
        "FAILED",
        ("ecs-svc/31", "SERVICE_DEPLOYMENT_IN_PROGRESS", None),
        ("ecs-svc/31", "SERVICE_DEPLOYMENT_FAILED", CIRCUIT_BREAKER),
        (
            "ecs-svc/32",
            "SERVICE_DEPLOYMENT_IN_PROGRESS",
            "ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/11.",
        ),
        ("ecs-svc/32", "SERVICE_DEPLOYMENT_COMPLETED", None),
    )

    items = h.env_items("production")
    assert sorted(i["execution_id"] for i in items) == sorted([ok, failed, rolled_back])
    shared = records.get_pipeline_records(h.aws["dynamodb"], TABLE, [ok, failed, rolled_back])
    by_id = {r.execution_id: r for r in records.join_records(items, shared)}
    assert [(by_id[e].image_tag, by_id[e].commit_sha) for e in (ok, failed, rolled_back)] == [
        ("aaaaaaa", "aaaaaaa1111"),
        ("bbbbbbb", "bbbbbbb2222"),
        ("ccccccc", "ccccccc3333"),
    ]
    assert (by_id[ok].succeeded, by_id[ok].rolled_back) == (True, False)
    assert (by_id[failed].failed, by_id[failed].ecs_failed, by_id[failed].rolled_back) == (
        True,
        True,
        False,
    )
    assert by_id[failed].deployment_reason == "ECS deployment alarms: p99-latency in ALARM"
    assert by_id[rolled_back].rolled_back is True
    assert by_id[rolled_back].deployment_ids == ("ecs-svc/31", "ecs-svc/32")
    assert "rolling back" in (by_id[rolled_back].deployment_reason or "")
    assert h.metric("DeploymentCount", "production") == 3
    assert h.metric("DeploymentFailed", "production") == 2


@pytest.mark.parametrize(
    ("name", "reason", "phase", "rollback"),
    [
        # what ECS documents today
        (
            "SERVICE_DEPLOYMENT_IN_PROGRESS",
            "ECS deployment ecs-svc/9 in progress.",
            "started",
            False,
        ),
        ("SERVICE_DEPLOYMENT_COMPLETED", "ECS deployment ecs-svc/9 completed.", "succeeded", False),
        ("SERVICE_DEPLOYMENT_FAILED", CIRCUIT_BREAKER, "failed", False),
        (
            "SERVICE_DEPLOYMENT_IN_PROGRESS",
            "ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/8.",
            "started",
            True,
        ),
        # names ECS may send for blue/green, canary and linear deployments
        ("SERVICE_DEPLOYMENT_ROLLBACK_IN_PROGRESS", None, "started", True),
        ("SERVICE_DEPLOYMENT_ROLLBACK_SUCCESSFUL", None, "succeeded", True),
        (
            "SERVICE_DEPLOYMENT_FAILED",
            "Deployment rolled back: lifecycle hook failed",
            "failed",
            True,
        ),
        ("SERVICE_DEPLOYMENT_BAKE_TIME_STARTED", None, "started", False),
        ("SERVICE_DEPLOYMENT_TRAFFIC_SHIFTING", None, "unknown", False),
    ],
)
def test_ecs_event_names_are_read_by_what_they_say_not_matched_one_by_one(
    name: str, reason: str | None, phase: str, rollback: bool
) -> None:
    assert ecs_events.classify(name, reason) == (phase, rollback)


def test_an_ecs_event_of_a_shape_never_seen_is_recorded_not_dropped(h: Harness) -> None:
    execution = new_id()
    h.codepipeline.add(
        execution_model(execution, 0, deploys={"production": (2, None, "InProgress")})
    )

    result = h.recorder.handle(
        ecs("production", "ecs-svc/77", "SERVICE_DEPLOYMENT_TRAFFIC_SHIFTING", t(4))
    )

    assert result["result"] == "recorded" and result["execution_id"] == execution
    item = h.item(execution, "production")
    assert item["ecs_deployments"]["ecs-svc/77"]["event"] == "SERVICE_DEPLOYMENT_TRAFFIC_SHIFTING"
    assert item["ecs_deployments"]["ecs-svc/77"]["phase"] == "unknown"


def test_ecs_events_before_the_pipeline_events_still_find_their_execution(h: Harness) -> None:
    earlier, execution = new_id(), new_id()
    h.codepipeline.add(
        execution_model(
            earlier, -40, deploys={"production": (2, 12, "Succeeded")}, status="Succeeded"
        )
    )
    h.codepipeline.add(
        execution_model(execution, 0, deploys={"production": (2, None, "InProgress")})
    )

    h.handle(
        ecs("production", "ecs-svc/5", "SERVICE_DEPLOYMENT_IN_PROGRESS", t(3)),
        *deploy_events(execution, "production", 2, 15, "SUCCEEDED"),
    )

    item = h.item(execution, "production")
    assert item["deployment_ids"] == ["ecs-svc/5"]
    assert item["status"] == "succeeded"
    assert h.env_items("production") == [item]


def test_later_events_of_a_deployment_follow_its_link_without_asking_codepipeline(
    h: Harness,
) -> None:
    execution = new_id()
    h.codepipeline.add(
        execution_model(execution, 0, deploys={"production": (2, None, "InProgress")})
    )
    h.handle(ecs("production", "ecs-svc/6", "SERVICE_DEPLOYMENT_IN_PROGRESS", t(3)))
    asked = len(h.codepipeline.calls.calls)

    # the execution moved on: the link, not a new search, decides
    h.codepipeline.executions.clear()
    h.handle(ecs("production", "ecs-svc/6", "SERVICE_DEPLOYMENT_COMPLETED", t(9)))

    assert len(h.codepipeline.calls.calls) == asked
    assert h.item(execution, "production")["ecs_deployments"]["ecs-svc/6"]["phase"] == "succeeded"
    link = records.get_item(
        h.aws["dynamodb"], TABLE, records.deployment_key("production", "ecs-svc/6")
    )
    assert link is not None and link["execution_id"] == execution


def test_events_of_a_rollback_that_trail_the_deploy_action_belong_to_it(h: Harness) -> None:
    first, second = new_id(), new_id()
    h.codepipeline.add(
        execution_model(first, 0, deploys={"production": (2, 14, "Failed")}, status="Failed")
    )
    h.codepipeline.add(execution_model(second, 30, deploys={"production": (2, None, "InProgress")}))

    late = h.recorder.handle(ecs("production", "ecs-svc/40", "SERVICE_DEPLOYMENT_COMPLETED", t(20)))
    next_ = h.recorder.handle(
        ecs("production", "ecs-svc/41", "SERVICE_DEPLOYMENT_IN_PROGRESS", t(33))
    )

    assert (late["execution_id"], next_["execution_id"]) == (first, second)


def test_a_deployment_made_outside_the_pipeline_is_a_record_of_its_own(h: Harness) -> None:
    h.codepipeline.add(
        execution_model(new_id(), 0, deploys={"staging": (2, 10, "Succeeded")}, status="Succeeded")
    )

    h.handle(
        ecs("staging", "ecs-svc/90", "SERVICE_DEPLOYMENT_IN_PROGRESS", t(60)),
        ecs("staging", "ecs-svc/90", "SERVICE_DEPLOYMENT_COMPLETED", t(64)),
    )

    item = h.item("ecs:ecs-svc/90", "staging")
    assert (item["status"], item["outside_pipeline"], item["duration_seconds"]) == (
        "succeeded",
        True,
        240,
    )
    assert h.publishes("staging") == 1
    assert h.metric("DeploymentCount", "staging") == 1


def test_a_rollback_outside_the_pipeline_flags_the_deployment_it_undoes(h: Harness) -> None:
    h.handle(
        ecs("staging", "ecs-svc/91", "SERVICE_DEPLOYMENT_IN_PROGRESS", t(60)),
        ecs("staging", "ecs-svc/91", "SERVICE_DEPLOYMENT_FAILED", t(65), reason=CIRCUIT_BREAKER),
        ecs(
            "staging",
            "ecs-svc/92",
            "SERVICE_DEPLOYMENT_IN_PROGRESS",
            t(65),
            reason="ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/80.",
        ),
        ecs("staging", "ecs-svc/92", "SERVICE_DEPLOYMENT_COMPLETED", t(68)),
    )

    [item] = h.env_items("staging")
    assert item["execution_id"] == "ecs:ecs-svc/91"
    assert (item["status"], item["rolled_back"], item["deployment_ids"]) == (
        "failed",
        True,
        ["ecs-svc/91", "ecs-svc/92"],
    )
    assert h.metric("DeploymentFailed", "staging") == 1


def test_a_service_in_another_account_and_region_is_recorded_for_its_environment(
    h: Harness,
) -> None:
    execution = new_id()
    h.codepipeline.add(execution_model(execution, 0, deploys={"dr": (2, None, "InProgress")}))

    ours = h.recorder.handle(ecs("dr", "ecs-svc/3", "SERVICE_DEPLOYMENT_IN_PROGRESS", t(3)))
    stranger = h.recorder.handle(
        ecs_event(
            "ecs-svc/4",
            "SERVICE_DEPLOYMENT_IN_PROGRESS",
            t(3),
            cluster="payment-processor-cluster-dr",
            service="payment-processor-service-dr",
            account="999999999999",
            region=OTHER_REGION,
        )
    )

    assert (ours["scope"], ours["execution_id"]) == ("dr", execution)
    assert stranger["result"] == "skipped" and "999999999999" in stranger["reason"]


# ---------------------------------------------------------------------------------------------
# Executions: self-update, stage rollbacks, order
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cancel_first", [False, True], ids=["in-order", "cancel-first"])
def test_an_execution_cancelled_by_the_pipelines_self_update_is_recorded_as_such(
    h: Harness, cancel_first: bool
) -> None:
    execution = new_id()
    h.codepipeline.add(execution_model(execution, 0, status="Cancelled"))
    update = action_event(
        execution, "UpdatePipeline", "SelfUpdate", "STARTED", t(8), category="Deploy",
        provider="CloudFormation",
    )  # fmt: skip
    cancel = pipeline_event(execution, "CANCELED", t(9))

    h.handle(
        pipeline_event(execution, "STARTED", t(0)),
        *([cancel, update] if cancel_first else [update, cancel]),
    )

    whole = h.item(execution, records.PIPELINE_SCOPE)
    assert (whole["status"], whole["canceled_by"]) == ("canceled", "self-update")
    assert h.env_items("staging") == [] and h.env_items("production") == []


def test_a_stage_rollback_restores_service_without_counting_a_lead_time(h: Harness) -> None:
    good, bad, rollback = new_id(), new_id(), new_id()
    h.codepipeline.add(execution_model(good, 0, sha="1111111aaaa"))
    h.codepipeline.add(execution_model(bad, 30, sha="2222222bbbb"))
    h.codepipeline.add(
        execution_model(
            rollback, 60, sha="1111111aaaa", trigger="AutomatedRollback", rollback_target=good
        )
    )

    h.handle(
        *deploy_events(good, "production", 2, 10, "SUCCEEDED"),
        *deploy_events(bad, "production", 32, 40, "FAILED"),
        pipeline_event(rollback, "STARTED", t(60), trigger="AutomatedRollback"),
        *deploy_events(rollback, "production", 61, 70, "SUCCEEDED"),
    )

    assert h.item(rollback, records.PIPELINE_SCOPE)["rollback_target"] == good
    assert "lead_time_seconds" not in h.item(rollback, "production")
    assert h.item(rollback, "production")["time_to_restore_seconds"] == 30 * 60
    assert h.metric("LeadTimeSeconds", "production", "SampleCount") == 1  # the good one only


def test_out_of_order_stage_events_never_move_a_record_backwards(h: Harness) -> None:
    execution = new_id()
    h.codepipeline.add(execution_model(execution, 0))

    h.handle(
        stage_event(execution, "Deploy-staging", "SUCCEEDED", t(18)),
        stage_event(execution, "Deploy-staging", "STARTED", t(10)),
    )

    item = h.item(execution, "staging")
    assert item["status"] == "succeeded"  # the older, lesser STARTED did not overwrite it
    assert item["started_at"] == stamp(t(10))  # but it did tell when the stage started
    assert (item["ended_at"], item["duration_seconds"]) == (stamp(t(18)), 8 * 60)


def test_a_failed_stage_retried_to_success_publishes_both_endings_and_the_restore(
    h: Harness,
) -> None:
    execution = new_id()
    h.codepipeline.add(execution_model(execution, 0))

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
    assert sorted(item["endings"]) == [f"failed@{stamp(t(30))}", f"succeeded@{stamp(t(55))}"]
    assert {e["state"] for e in item["endings"].values()} == {"published"}
    assert h.metric("DeploymentCount", "production") == 2
    assert h.metric("DeploymentFailed", "production") == 1
    assert h.metric("TimeToRestoreSeconds", "production") == 25 * 60


def test_time_to_restore_reaches_back_past_a_page_of_failures(h: Harness) -> None:
    failures = [new_id() for _ in range(26)]  # more than one page (25) of earlier records
    fixed = new_id()
    for execution in [*failures, fixed]:
        h.codepipeline.add(execution_model(execution, 0))
    for i, execution in enumerate(failures):
        h.handle(
            stage_event(execution, "Deploy-staging", "STARTED", t(i)),
            stage_event(execution, "Deploy-staging", "FAILED", t(i + 0.5)),
        )
    h.handle(
        stage_event(fixed, "Deploy-staging", "STARTED", t(40)),
        stage_event(fixed, "Deploy-staging", "SUCCEEDED", t(45)),
    )

    # from the first failure of the streak (t 0.5) to the fix (t 45)
    assert h.item(fixed, "staging")["time_to_restore_seconds"] == int(44.5 * 60)


def test_a_rejected_approval_is_recorded_on_its_environment(h: Harness) -> None:
    execution = new_id()
    model = execution_model(execution, 0, approved_by="bob")
    model.actions[-1].status = "Failed"
    h.codepipeline.add(model)

    h.handle(approval_event(execution, "FAILED", t(30)))

    item = h.item(execution, "production")
    assert item["approval_status"] == "rejected"
    assert item["started_provisional"] is True  # no stage state seen yet
    assert "status" not in item


def test_a_failing_gate_is_recorded_from_its_failure_message(h: Harness) -> None:
    execution = new_id()
    model = execution_model(execution, 0, status="Failed")
    gate = model.actions[2]
    gate.status, gate.variables = "Failed", {}
    gate.error = "Security gate FAILED at threshold HIGH\n  2 critical, 0 high"
    h.codepipeline.add(model)

    h.handle(pipeline_event(execution, "FAILED", t(8)))

    assert h.item(execution, records.PIPELINE_SCOPE)["security"] == {
        "passed": False,
        "summary": "Security gate FAILED at threshold HIGH",
        "source": "pipeline action result",
    }


def test_the_gates_own_summary_is_not_replaced_by_its_output_variables(h: Harness) -> None:
    execution = new_id()
    h.codepipeline.add(execution_model(execution, 0, status="Succeeded"))
    stored = {"passed": True, "summary": "PASSED (full)", "top_findings": ["CVE-1"]}
    records.store_security_summary(
        h.aws["dynamodb"], TABLE, execution_id=execution, pipeline=PIPELINE, summary=stored
    )

    h.handle(pipeline_event(execution, "SUCCEEDED", t(50)))

    assert h.item(execution, records.PIPELINE_SCOPE)["security"] == stored


# ---------------------------------------------------------------------------------------------
# Each ending published once: duplicates, concurrency, faults in between
# ---------------------------------------------------------------------------------------------


def ending_events(execution: str) -> tuple[dict, dict]:
    return (
        stage_event(execution, "Deploy-staging", "STARTED", t(10)),
        stage_event(execution, "Deploy-staging", "SUCCEEDED", t(18)),
    )


def test_duplicate_deliveries_change_nothing_and_publish_once(h: Harness) -> None:
    execution = new_id()
    h.codepipeline.add(execution_model(execution, 0))
    started, succeeded = ending_events(execution)

    results = h.handle(started, succeeded, succeeded, started, succeeded)

    assert [r["result"] for r in results] == [
        "recorded",
        "recorded",
        "unchanged",
        "unchanged",
        "unchanged",
    ]
    assert h.publishes("staging") == 1
    item = h.item(execution, "staging")
    assert item["metrics_published"] == f"succeeded@{stamp(t(18))}"


def test_of_two_concurrent_deliveries_one_claims_and_the_other_waits_for_it(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    execution = new_id()
    h.codepipeline.add(execution_model(execution, 0))
    started, succeeded = ending_events(execution)
    h.handle(started)
    second: dict[str, Any] = {}
    real_put = h.recorder.publisher._put

    def deliver_again_meanwhile(*args: Any) -> None:
        # while the first invocation publishes, the same event arrives again
        with pytest.raises(endings.ClaimHeldError) as info:
            h.recorder.handle(succeeded)
        second["error"] = str(info.value)
        real_put(*args)

    monkeypatch.setattr(h.recorder.publisher, "_put", deliver_again_meanwhile)
    h.handle(succeeded)
    monkeypatch.setattr(h.recorder.publisher, "_put", real_put)
    # the waiting delivery's retry finds the ending published
    assert h.handle(succeeded) == [{"result": "unchanged", "scope": "staging"}]

    assert "being published by another invocation" in second["error"]
    assert h.publishes("staging") == 1
    assert h.metric("DeploymentCount", "staging") == 1


def test_a_lost_race_for_the_claim_is_retried_on_fresh_data_and_publishes_once(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    execution = new_id()
    h.codepipeline.add(execution_model(execution, 0))
    started, succeeded = ending_events(execution)
    h.handle(started)
    key = records.record_key(execution, "staging")
    real_apply = records.apply
    raced = {"done": False}

    def racing_apply(dynamodb: Any, table: str, key_: Any, mutate: Any, **kw: Any) -> Any:
        def racing_mutate(existing: Any) -> Any:
            proposed = mutate(existing)
            claiming = proposed and any(
                e.get("state") == "claimed" for e in (proposed.get("endings") or {}).values()
            )
            if claiming and not raced["done"]:
                raced["done"] = True  # another invocation claims between our read and write
                real_apply(dynamodb, table, key, mutate)
            return proposed

        return real_apply(dynamodb, table, key_, racing_mutate, **kw)

    monkeypatch.setattr(records, "apply", racing_apply)
    with pytest.raises(endings.ClaimHeldError):
        h.handle(succeeded)  # our conditional write lost; the fresh read shows the claim held

    assert raced["done"]
    assert h.publishes("staging") == 0  # the winner died before publishing, in this story
    h.clock.now += endings.DEFAULT_LEASE + timedelta(seconds=1)
    monkeypatch.setattr(records, "apply", real_apply)
    h.handle(succeeded)  # after the lease: taken over, published once
    assert h.publishes("staging") == 1
    assert h.item(execution, "staging")["endings"][f"succeeded@{stamp(t(18))}"] == {
        "state": "published"
    }


def test_a_throttled_claim_fails_the_invocation_and_the_retry_publishes_once(
    h: Harness,
) -> None:
    execution = new_id()
    h.codepipeline.add(execution_model(execution, 0))
    started, succeeded = ending_events(execution)
    h.handle(pipeline_event(execution, "STARTED", t(0)), started)  # the commit is known
    # the state write goes through; every attempt of the claim write after it is throttled
    dynamodb = h.aws["dynamodb"]
    writes = {"n": 0}

    def throttle_after_first(request: Any, **_: Any) -> Any:
        writes["n"] += 1
        if writes["n"] == 1:
            return None
        return throttled_response(request)

    dynamodb.meta.events.register("before-send.dynamodb.PutItem", throttle_after_first)
    try:
        with pytest.raises(dynamodb.exceptions.ClientError, match="Throttling"):
            h.handle(succeeded)
    finally:
        dynamodb.meta.events.unregister("before-send.dynamodb.PutItem", throttle_after_first)
    assert h.publishes("staging") == 0

    h.handle(succeeded)  # the retry: the state is there; the ending is still pending
    assert h.publishes("staging") == 1


def throttled_response(request: Any) -> Any:
    from botocore.awsrequest import AWSResponse

    from .conftest import _Raw

    body = (
        b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException",'
        b'"message":"Rate of requests exceeds the allowed throughput."}'
    )
    return AWSResponse(request.url, 400, {"Content-Type": "application/x-amz-json-1.0"}, _Raw(body))


def test_a_failed_publish_releases_the_claim_and_the_retry_publishes_once(h: Harness) -> None:
    execution = new_id()
    h.codepipeline.add(execution_model(execution, 0))
    started, succeeded = ending_events(execution)
    h.handle(started)
    cloudwatch = h.recorder.publisher.cloudwatch
    seen = inject_errors(
        cloudwatch,
        "PutMetricData",
        times=4,  # every attempt of the test client (max_attempts=3 counts retries)
        status=400,
        body=b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
        b"<Message>Rate exceeded</Message></Error></ErrorResponse>",
        content_type="text/xml",
    )

    with pytest.raises(cloudwatch.exceptions.ClientError, match="Throttling"):
        h.handle(succeeded)
    pending = h.item(execution, "staging")["endings"][f"succeeded@{stamp(t(18))}"]
    assert pending == {"state": "pending"}  # released, not left claimed

    h.handle(succeeded)
    assert seen["injected"] == 4
    assert h.metric("DeploymentCount", "staging") == 1


def test_a_confirmation_that_cannot_be_written_does_not_publish_again(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    execution = new_id()
    h.codepipeline.add(execution_model(execution, 0))
    started, succeeded = ending_events(execution)
    h.handle(started)
    # every confirm attempt fails: the invocation still succeeds (the metrics are out) ...
    monkeypatch.setattr(records, "apply", _fail_confirms(records.apply))
    h.handle(succeeded)
    monkeypatch.undo()
    assert h.publishes("staging") == 1
    claimed = h.item(execution, "staging")["endings"][f"succeeded@{stamp(t(18))}"]
    assert claimed["state"] == "claimed"
    # ... and a redelivery within the lease does not publish again
    with pytest.raises(endings.ClaimHeldError):
        h.handle(succeeded)
    assert h.publishes("staging") == 1


def _fail_confirms(real_apply: Any) -> Any:
    def apply(dynamodb: Any, table: str, key: Any, mutate: Any, **kw: Any) -> Any:
        def watching(existing: Any) -> Any:
            proposed = mutate(existing)
            if proposed and proposed.get("metrics_published"):
                raise RuntimeError("DynamoDB unavailable")
            return proposed

        return real_apply(dynamodb, table, key, watching, **kw)

    return apply


class Crash(BaseException):
    """The Lambda runtime killing an invocation (a timeout): no handler runs."""


def test_a_claimer_that_died_before_publishing_is_taken_over_after_its_lease(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    execution = new_id()
    h.codepipeline.add(execution_model(execution, 0))
    started, succeeded = ending_events(execution)
    h.handle(started)

    def crash(*_: Any) -> None:
        raise Crash

    monkeypatch.setattr(h.recorder.publisher, "_put", crash)
    with pytest.raises(Crash):
        h.handle(succeeded)
    monkeypatch.undo()

    with pytest.raises(endings.ClaimHeldError):  # a retry inside the lease waits
        h.handle(succeeded)
    assert h.publishes("staging") == 0
    h.clock.now += endings.DEFAULT_LEASE + timedelta(seconds=1)
    h.handle(succeeded)  # after it: taken over
    assert h.publishes("staging") == 1
    h.handle(succeeded)
    assert h.publishes("staging") == 1


def test_metrics_are_not_sent_for_deployments_older_than_cloudwatch_accepts(h: Harness) -> None:
    execution = new_id()
    old = NOW - timedelta(days=20)
    h.codepipeline.add(Execution(execution, old - timedelta(minutes=5), sha=SHA))

    h.handle(
        stage_event(execution, "Deploy-staging", "STARTED", old),
        stage_event(execution, "Deploy-staging", "SUCCEEDED", old + timedelta(minutes=5)),
    )

    assert h.item(execution, "staging")["metrics_published"].startswith("succeeded@")
    assert h.publishes("staging") == 0


# ---------------------------------------------------------------------------------------------
# API errors: retried, then the invocation fails (nothing recorded wrongly)
# ---------------------------------------------------------------------------------------------


def test_a_throttled_codepipeline_is_retried_by_the_client(h: Harness) -> None:
    execution = new_id()
    h.codepipeline.add(execution_model(execution, 0, deploys={"staging": (2, None, "InProgress")}))
    client = h.recorder.codepipeline
    seen = throttle_codepipeline(client, "ListActionExecutions", times=2)

    result = h.recorder.handle(ecs("staging", "ecs-svc/1", "SERVICE_DEPLOYMENT_IN_PROGRESS", t(3)))

    assert seen["injected"] == 2
    assert result["execution_id"] == execution


def test_a_persistent_codepipeline_error_fails_the_invocation_instead_of_guessing(
    h: Harness,
) -> None:
    execution = new_id()
    h.codepipeline.add(execution_model(execution, 0, deploys={"staging": (2, None, "InProgress")}))
    client = h.recorder.codepipeline
    throttle_codepipeline(client, "ListPipelineExecutions", times=4)  # every attempt
    event = ecs("staging", "ecs-svc/2", "SERVICE_DEPLOYMENT_IN_PROGRESS", t(3))

    with pytest.raises(client.exceptions.ClientError, match="Throttling"):
        h.recorder.handle(event)
    # nothing was recorded, least of all a deployment "outside the pipeline"
    assert h.env_items("staging") == []
    assert (
        records.get_item(h.aws["dynamodb"], TABLE, records.deployment_key("staging", "ecs-svc/2"))
        is None
    )
    assert h.recorder.handle(event)["execution_id"] == execution  # the retry


def test_a_revision_lookup_failure_fails_the_invocation_and_the_retry_records_the_commit(
    h: Harness,
) -> None:
    execution = new_id()
    event = pipeline_event(execution, "STARTED", t(0))

    with pytest.raises(Exception, match="PipelineExecutionNotFoundException"):
        h.recorder.handle(event)
    item = h.item(execution, records.PIPELINE_SCOPE)
    assert item["status"] == "started" and "revision_checked" not in item

    h.codepipeline.add(execution_model(execution, 0))
    h.recorder.handle(event)
    assert h.item(execution, records.PIPELINE_SCOPE)["commit_sha"] == SHA


def test_an_ending_is_not_published_without_the_commit_it_measures_lead_time_from(
    h: Harness,
) -> None:
    execution = new_id()
    started, succeeded = ending_events(execution)
    h.handle(started)

    with pytest.raises(Exception, match="PipelineExecutionNotFoundException"):
        h.handle(succeeded)
    assert h.publishes("staging") == 0

    h.codepipeline.add(execution_model(execution, 0))
    h.handle(succeeded)
    assert h.publishes("staging") == 1
    assert h.item(execution, "staging")["lead_time_seconds"] == 78 * 60


def test_throttled_writes_are_retried(h: Harness) -> None:
    execution = new_id()
    seen = throttle_dynamodb(h.aws["dynamodb"], "PutItem", times=2)
    try:
        h.handle(stage_event(execution, "Deploy-staging", "STARTED", t(10)))
    finally:
        h.aws["dynamodb"].meta.events.unregister("before-send.dynamodb.PutItem")

    assert seen["injected"] == 2
    assert h.item(execution, "staging")["status"] == "started"


def test_a_bug_is_not_mistaken_for_a_malformed_event(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any) -> Any:
        raise KeyError("a bug in the recorder")

    monkeypatch.setattr(recorder, "merge", broken)

    with pytest.raises(KeyError, match="a bug in the recorder"):
        h.recorder.handle(stage_event(new_id(), "Deploy-staging", "STARTED", t(10)))


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
        (
            {**ecs("staging", "ecs-svc/1", "SERVICE_DEPLOYMENT_COMPLETED", NOW), "resources": []},
            "names no service ARN",
        ),
        (
            envelope("ECS Deployment State Change", "aws.ecs", NOW, {"eventName": "X"}),
            "no 'deploymentId'",
        ),
        (stage_event("e-1", "Test", "SUCCEEDED", NOW), "stage 'Test' deploys no environment"),
    ],
)
def test_unknown_and_malformed_events_are_logged_and_ignored(
    h: Harness, event: Any, reason: str
) -> None:
    result = h.recorder.handle(event)

    assert result["result"] in ("ignored", "skipped")
    assert reason in result["reason"]


# ---------------------------------------------------------------------------------------------
# Settings and the handler
# ---------------------------------------------------------------------------------------------

ENV = {
    "TABLE_NAME": TABLE,
    "SERVICE_NAME": "payment-processor",
    "PIPELINE_NAME": PIPELINE,
    "PIPELINE_ACCOUNT": ACCOUNT,
    "PIPELINE_REGION": REGION,
    "ENVIRONMENTS": json.dumps(
        [
            {
                "name": "staging",
                "stage": "Deploy-staging",
                "approve_stage": None,
                "cluster": "payment-processor-cluster-staging",
                "service": "payment-processor-service-staging",
                "account": None,
                "region": None,
            },
            {
                "name": "production",
                "stage": "Deploy-production",
                "approve_stage": "Approve-production",
                "cluster": "payment-processor-cluster-production",
                "service": "payment-processor-service-production",
                "account": OTHER_ACCOUNT,
                "region": OTHER_REGION,
            },
        ]
    ),
    "PRODUCTION_ENVIRONMENT": "production",
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"TABLE_NAME": ""}, "['TABLE_NAME'] must be set"),
        ({"PIPELINE_ACCOUNT": " "}, "['PIPELINE_ACCOUNT'] must be set"),
        ({"ENVIRONMENTS": "[{"}, "ENVIRONMENTS is not valid JSON"),
        ({"ENVIRONMENTS": "[]"}, "must be a non-empty JSON list"),
        ({"ENVIRONMENTS": '[{"name": "staging"}]'}, "ENVIRONMENTS[0] must be an object"),
        (
            {
                "ENVIRONMENTS": '[{"name": "s", "stage": "D", "cluster": "c", "service": "s", '
                '"account": "12345"}]'
            },
            "ENVIRONMENTS[0].account must be 12 digits, got '12345'",
        ),
        ({"PRODUCTION_ENVIRONMENT": "prod"}, "'prod' is not one of the ENVIRONMENTS"),
    ],
)
def test_settings_reject_a_malformed_environment(change: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as info:
        RecorderSettings.from_env({**ENV, **change})
    assert message in str(info.value)


def test_settings_fill_an_environments_account_and_region_from_the_pipelines() -> None:
    settings = RecorderSettings.from_env({**ENV, "PRODUCTION_ENVIRONMENT": ""})
    assert (settings.namespace, settings.production) == ("deployline", None)
    assert (settings.self_update_stage, settings.gate_action) == ("UpdatePipeline", "SecurityGate")
    staging, production = settings.environments
    assert (staging.account, staging.region) == (ACCOUNT, REGION)
    assert (production.account, production.region) == (OTHER_ACCOUNT, OTHER_REGION)
    assert settings.by_any_stage("Approve-production") is production
    assert settings.by_stage("Approve-production") is None


def test_handler_records_from_its_environment(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    dynamodb = aws["dynamodb"]
    if TABLE not in dynamodb.list_tables()["TableNames"]:
        create_deployments_table(dynamodb, TABLE)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws["url"])
    clients.reset()
    execution = new_id()
    try:
        result = recorder.handler(stage_event(execution, "Deploy-staging", "STARTED", t(10)), None)
    finally:
        clients.reset()

    assert result == {"result": "recorded", "scope": "staging"}
    item = records.get_item(dynamodb, TABLE, records.record_key(execution, "staging"))
    assert item is not None and item["service"] == "payment-processor"


def test_handler_with_a_broken_environment_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TABLE_NAME")

    with pytest.raises(SettingsError, match="TABLE_NAME"):
        recorder.handler(stage_event("e", "Deploy-staging", "STARTED", NOW), None)
