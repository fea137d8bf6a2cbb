"""`deployline history` end to end: the recorder fills a table on a moto server from pipeline and
ECS events, then the real console script reads it back over HTTP and prints records and
metrics; `deployline history redrive` replays a dead-letter queue on moto through the recorder.

CodePipeline is FakeCodePipeline (conftest) where the recorder needs it while seeding; the
console script's runs need none (stage events and malformed events only).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deployline.history_names import HistoryNames
from deployline.naming import Namer
from deployline.redrive import read_message
from deployline.runtime import records
from deployline.runtime.recorder import EnvironmentSpec, Recorder, RecorderSettings

from .conftest import (
    ACCOUNT,
    PIPELINE,
    REGION,
    Execution,
    FakeCodePipeline,
    action_event,
    create_deployments_table,
    ecs_event,
    make_client,
    pipeline_event,
    stage_event,
)

NAMES = HistoryNames.of(Namer("payment-processor", "shared"))
TABLE = NAMES.table
START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)


def _at(minutes: int) -> datetime:
    return START + timedelta(minutes=minutes)


def _env(name: str) -> EnvironmentSpec:
    return EnvironmentSpec(
        name=name,
        stage=f"Deploy-{name}",
        cluster=f"payment-processor-cluster-{name}",
        service=f"payment-processor-service-{name}",
        account=ACCOUNT,
        region=REGION,
    )


SETTINGS = RecorderSettings(
    table_name=TABLE,
    service="payment-processor",
    pipeline=PIPELINE,
    environments=(_env("staging"), _env("production")),
    production="production",
)


@pytest.fixture(scope="module")
def seeded(moto_url: str) -> dict[str, str]:
    """Three production deployments (ok, failed, ok 60 minutes after the failure), one staging
    deployment, one staging deployment made outside the pipeline and one execution a self-update
    cancelled, recorded by the recorder itself."""
    dynamodb = make_client("dynamodb", moto_url)
    create_deployments_table(dynamodb, TABLE)
    codepipeline = make_client("codepipeline", "http://127.0.0.1:9")
    fake = FakeCodePipeline(codepipeline)
    rec = Recorder(
        SETTINGS,
        dynamodb=dynamodb,
        cloudwatch=make_client("cloudwatch", moto_url),
        codepipeline=codepipeline,
        sleep=lambda _: None,
    )
    first, failed, fixed, staged, cancelled = (str(uuid.uuid4()) for _ in range(5))
    staging = SETTINGS.environments[0]
    cluster, service = staging.cluster, staging.service
    for execution in (first, failed, fixed, staged, cancelled):
        fake.add(Execution(execution, _at(0), status="Succeeded", updated=_at(1)))
    for event in (
        stage_event(staged, "Deploy-staging", "STARTED", _at(0)),
        stage_event(staged, "Deploy-staging", "SUCCEEDED", _at(6)),
        stage_event(first, "Deploy-production", "STARTED", _at(10)),
        stage_event(first, "Deploy-production", "SUCCEEDED", _at(25)),
        stage_event(failed, "Deploy-production", "STARTED", _at(100)),
        stage_event(failed, "Deploy-production", "FAILED", _at(110)),
        stage_event(fixed, "Deploy-production", "STARTED", _at(150)),
        stage_event(fixed, "Deploy-production", "SUCCEEDED", _at(170)),
        *(
            ecs_event("ecs-svc/555", name, _at(minute), cluster=cluster, service=service)
            for name, minute in (
                ("SERVICE_DEPLOYMENT_IN_PROGRESS", 200),
                ("SERVICE_DEPLOYMENT_COMPLETED", 203),
            )
        ),
        pipeline_event(cancelled, "STARTED", _at(220)),
        action_event(
            cancelled,
            "UpdatePipeline",
            "SelfUpdate",
            "STARTED",
            _at(224),
            category="Deploy",
            provider="CloudFormation",
        ),
        pipeline_event(cancelled, "CANCELED", _at(225)),
    ):
        rec.handle(event)
    return {
        "url": moto_url,
        "first": first,
        "failed": failed,
        "fixed": fixed,
        "staged": staged,
        "cancelled": cancelled,
    }


def _deployline(url: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }
    env.pop("AWS_PROFILE", None)
    return subprocess.run(
        [sys.executable, "-m", "deployline.cli", "history", *args, "--endpoint-url", url],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
        check=False,
    )


def test_history_json_lists_the_recorded_deployments_and_their_dora_metrics(
    seeded: dict[str, str], tmp_path: Path
) -> None:
    done = _deployline(
        seeded["url"], "--table", TABLE, "--region", REGION, "--format", "json", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    by_execution = {(r["execution_id"], r["environment"]): r for r in report["records"]}
    assert by_execution[(seeded["failed"], "production")]["status"] == "failed"
    assert by_execution[(seeded["fixed"], "production")]["status"] == "succeeded"
    assert by_execution[(seeded["staged"], "staging")]["status"] == "succeeded"
    outside = by_execution[("ecs:ecs-svc/555", "staging")]
    assert (outside["status"], outside["outside_pipeline"]) == ("succeeded", True)
    [cancelled] = [e for e in report["executions"] if e["execution_id"] == seeded["cancelled"]]
    assert (cancelled["status"], cancelled["canceled_by"]) == ("canceled", "self-update")
    metrics = report["metrics"]
    assert metrics["deployments"] == 3  # production is the default subject of the metrics
    assert metrics["change_failure_rate"] == pytest.approx(1 / 3)
    assert metrics["time_to_restore_seconds"] == 60 * 60  # failed at 110, fixed at 170


def test_history_table_prints_records_and_metrics_for_one_environment(
    seeded: dict[str, str], tmp_path: Path
) -> None:
    done = _deployline(
        seeded["url"], "--table", TABLE, "--region", REGION, "--env", "staging", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    table, _, metrics = done.stdout.partition("DORA metrics: staging")
    assert "staging" in table and "succeeded" in table and "6m 0s" in table
    assert "outside the pipeline" in table and "ecs-svc/555)" in table
    assert "production" not in table  # --env keeps to one environment
    assert "1 execution(s) cancelled by a self-update" in table
    assert "Change failure rate" in metrics and "0.0% (0 of 2)" in metrics


def test_history_against_a_missing_table_says_so_and_exits_2(
    seeded: dict[str, str], tmp_path: Path
) -> None:
    done = _deployline(seeded["url"], "--table", "no-such-table", "--region", REGION, cwd=tmp_path)
    assert done.returncode == 2
    assert "no-such-table" in done.stderr and "Traceback" not in done.stderr


# --- redrive ---------------------------------------------------------------------------------


def _recorder_function(moto_url: str) -> None:
    """The deployed recorder as moto holds it: its name and environment (no code runs)."""
    iam = make_client("iam", moto_url)
    role = iam.create_role(
        RoleName=f"recorder-{uuid.uuid4().hex[:8]}",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    environment = [
        {
            "name": e.name,
            "stage": e.stage,
            "approve_stage": None,
            "cluster": e.cluster,
            "service": e.service,
            "account": None,
            "region": None,
        }
        for e in SETTINGS.environments
    ]
    make_client("lambda", moto_url).create_function(
        FunctionName=NAMES.recorder,
        Runtime="python3.13",
        Role=role,
        Handler="runtime.recorder.handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
        Environment={
            "Variables": {
                "TABLE_NAME": TABLE,
                "SERVICE_NAME": "payment-processor",
                "PIPELINE_NAME": PIPELINE,
                "PIPELINE_ACCOUNT": ACCOUNT,
                "PIPELINE_REGION": REGION,
                "ENVIRONMENTS": json.dumps(environment),
                "PRODUCTION_ENVIRONMENT": "production",
            }
        },
    )


@pytest.fixture(scope="module")
def dead_letters(seeded: dict[str, str]) -> dict[str, Any]:
    """The recorder's queue holding an undelivered event, a failed invocation's record, a
    malformed event, an event whose replay fails again, and a message that is no event."""
    url = seeded["url"]
    _recorder_function(url)
    sqs = make_client("sqs", url)
    queue_url = sqs.create_queue(QueueName=NAMES.dead_letter_queue)["QueueUrl"]
    undelivered, failed_invocation = str(uuid.uuid4()), str(uuid.uuid4())
    undelivered_event = stage_event(undelivered, "Deploy-staging", "STARTED", _at(300))
    sqs.send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps(undelivered_event),
        MessageAttributes={
            "ERROR_CODE": {"DataType": "String", "StringValue": "SDK_CLIENT_ERROR"},
            "ERROR_MESSAGE": {"DataType": "String", "StringValue": "Lambda throttled"},
        },
    )
    sqs.send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps(
            {
                "version": "1.0",
                "timestamp": "2026-12-01T10:00:00.000Z",
                "requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": 3},
                "requestPayload": stage_event(
                    failed_invocation, "Deploy-production", "STARTED", _at(310)
                ),
                "responsePayload": {
                    "errorType": "ProvisionedThroughputExceededException",
                    "errorMessage": "throughput exceeded",
                },
            }
        ),
    )
    sqs.send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps(stage_event("e-1", "Deploy-staging", "EXPLODED", _at(320))),
    )
    # its revision lookup needs CodePipeline, which the console script cannot reach here
    sqs.send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps(pipeline_event(str(uuid.uuid4()), "STARTED", _at(330))),
    )
    sqs.send_message(QueueUrl=queue_url, MessageBody="not json at all")
    return {
        "url": url,
        "sqs": sqs,
        "queue_url": queue_url,
        "undelivered": undelivered,
        "failed_invocation": failed_invocation,
    }


def test_dead_letters_of_both_shapes_are_read_with_their_event_and_error() -> None:
    event = stage_event("e-9", "Deploy-staging", "STARTED", _at(0))
    from_rule = read_message(
        {
            "MessageId": "m1",
            "ReceiptHandle": "r1",
            "Body": json.dumps(event),
            "MessageAttributes": {
                "ERROR_CODE": {"StringValue": "SDK_CLIENT_ERROR"},
                "ERROR_MESSAGE": {"StringValue": "Lambda throttled"},
            },
        }
    )
    from_function = read_message(
        {
            "MessageId": "m2",
            "ReceiptHandle": "r2",
            "Body": json.dumps(
                {"requestPayload": event, "responsePayload": {"errorType": "KeyError"}}
            ),
        }
    )
    neither = read_message({"MessageId": "m3", "ReceiptHandle": "r3", "Body": "[]"})

    assert (from_rule.origin, from_rule.event, from_rule.error) == (
        "rule",
        event,
        "SDK_CLIENT_ERROR: Lambda throttled",
    )
    assert (from_function.origin, from_function.event, from_function.error) == (
        "function",
        event,
        "KeyError: ",
    )
    assert (neither.origin, neither.event) == ("unknown", None)


def _messages(sqs: Any, queue_url: str) -> list[str]:
    bodies = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=30
        ).get("Messages", [])
        if not batch:
            break
        bodies += [m["Body"] for m in batch]
    return bodies


def test_redrive_dry_run_lists_the_messages_and_keeps_them_all(
    dead_letters: dict[str, Any], tmp_path: Path
) -> None:
    done = _deployline(
        dead_letters["url"],
        "redrive",
        "--queue",
        NAMES.dead_letter_queue,
        "--function",
        NAMES.recorder,
        "--region",
        REGION,
        "--dry-run",
        cwd=tmp_path,
    )

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == (
        f"{NAMES.dead_letter_queue}: would replay 5 message(s): 1 from function, "
        "3 from rule, 1 from unknown"
    )
    assert any("SDK_CLIENT_ERROR: Lambda throttled" in line for line in lines)


def test_redrive_replays_through_the_recorder_and_keeps_what_fails_again(
    dead_letters: dict[str, Any], tmp_path: Path
) -> None:
    # the queue and function names come from the repository's own configuration
    shutil.copy(Path(__file__).parents[2] / "deployline.yaml", tmp_path / "deployline.yaml")
    done = _deployline(dead_letters["url"], "redrive", "--region", REGION, cwd=tmp_path)

    assert done.returncode == 1, done.stderr  # messages stay in the queue
    lines = done.stdout.splitlines()
    assert lines[0] == (
        f"{NAMES.dead_letter_queue}: replayed 5 message(s): 1 ignored, 2 kept, 2 recorded"
    )
    assert "2 kept in the queue:" in lines
    # the revision lookup of the pipeline event finds no such pipeline on moto
    assert any("failed again: PipelineNotFoundException" in line for line in lines), lines
    assert any("not an EventBridge event or Lambda failure record" in line for line in lines)
    dynamodb = make_client("dynamodb", dead_letters["url"])
    staging = records.get_item(
        dynamodb, TABLE, records.record_key(dead_letters["undelivered"], "staging")
    )
    production = records.get_item(
        dynamodb, TABLE, records.record_key(dead_letters["failed_invocation"], "production")
    )
    assert staging is not None and staging["status"] == "started"
    assert production is not None and production["status"] == "started"
    left = _messages(dead_letters["sqs"], dead_letters["queue_url"])
    assert len(left) == 2 and "not json at all" in left
    assert json.loads(next(b for b in left if b != "not json at all"))["detail"]["state"] == (
        "STARTED"
    )


def test_redrive_without_a_queue_or_configuration_says_what_to_pass(tmp_path: Path) -> None:
    done = _deployline("http://127.0.0.1:9", "redrive", "--region", REGION, cwd=tmp_path)
    assert done.returncode == 2
    assert "pass --queue and --function or --config" in done.stderr
    assert "Traceback" not in done.stderr
