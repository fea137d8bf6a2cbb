"""The pipeline watchdog against a moto server (CloudWatch, CodePipeline listing) and botocore's
Stubber (ListActionExecutions and paging, which moto does not serve): what it measures, what it
publishes, and what it does when AWS misbehaves."""

from __future__ import annotations

import http.server
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from botocore.stub import Stubber
from moto.server import ThreadedMotoServer

from deployline.runtime import watchdog

REGION = "eu-west-1"
PIPELINE = "payment-processor-pipeline-shared"
NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, moto_url: str) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def cloudwatch() -> Any:
    return boto3.client("cloudwatch", region_name=REGION)


@pytest.fixture
def settings() -> watchdog.Settings:
    # A namespace per test: metrics from one test never leak into another's assertions.
    return watchdog.Settings(
        pipeline_name=PIPELINE, service_name="payment-processor", namespace=f"t-{uuid.uuid4()}"
    )


def stubbed_codepipeline() -> tuple[Any, Stubber]:
    client = boto3.client("codepipeline", region_name=REGION)
    return client, Stubber(client)


def summary(execution_id: str, status: str, started: datetime) -> dict[str, Any]:
    return {
        "pipelineExecutionId": execution_id,
        "status": status,
        "startTime": started,
        "lastUpdateTime": started,
    }


def action(
    category: str, status: str, started: datetime, updated: datetime | None = None
) -> dict[str, Any]:
    return {
        "pipelineExecutionId": "e",
        "actionExecutionId": str(uuid.uuid4()),
        "pipelineVersion": 1,
        "stageName": "Approve-production",
        "actionName": "Approve",
        "startTime": started,
        "lastUpdateTime": updated or started,
        "status": status,
        "input": {
            "actionTypeId": {
                "category": category,
                "owner": "AWS",
                "provider": "Manual",
                "version": "1",
            }
        },
    }


def expect_executions(
    stub: Stubber, summaries: list[Any], next_token: str | None = None, token: str | None = None
) -> None:
    params: dict[str, Any] = {"pipelineName": PIPELINE, "maxResults": 100}
    if token:
        params["nextToken"] = token
    response: dict[str, Any] = {"pipelineExecutionSummaries": summaries}
    if next_token:
        response["nextToken"] = next_token
    stub.add_response("list_pipeline_executions", response, params)


def expect_actions(
    stub: Stubber,
    execution_id: str,
    details: list[Any],
    next_token: str | None = None,
    token: str | None = None,
) -> None:
    params: dict[str, Any] = {
        "pipelineName": PIPELINE,
        "filter": {"pipelineExecutionId": execution_id},
        "maxResults": 100,
    }
    if token:
        params["nextToken"] = token
    response: dict[str, Any] = {"actionExecutionDetails": details}
    if next_token:
        response["nextToken"] = next_token
    stub.add_response("list_action_executions", response, params)


def published(cloudwatch: Any, settings: watchdog.Settings, metric: str) -> list[dict[str, Any]]:
    points = cloudwatch.get_metric_statistics(
        Namespace=settings.namespace,
        MetricName=metric,
        Dimensions=[
            {"Name": "Service", "Value": settings.service_name},
            {"Name": "Pipeline", "Value": settings.pipeline_name},
        ],
        StartTime=NOW - timedelta(minutes=5),
        EndTime=NOW + timedelta(minutes=5),
        Period=60,
        Statistics=["Maximum", "SampleCount"],
    )["Datapoints"]
    return list(points)


def test_publishes_zeros_when_no_execution_runs(cloudwatch: Any, settings: Any) -> None:
    codepipeline, stub = stubbed_codepipeline()
    expect_executions(stub, [summary("done", "Succeeded", NOW - timedelta(hours=3))])
    with stub:
        report = watchdog.run(
            codepipeline=codepipeline, cloudwatch=cloudwatch, settings=settings, now=NOW
        )
    stub.assert_no_pending_responses()
    assert report.in_progress == 0 and report.oldest_execution_seconds == 0
    for metric in (
        watchdog.METRIC_OLDEST_EXECUTION,
        watchdog.METRIC_OLDEST_APPROVAL,
        watchdog.METRIC_IN_PROGRESS,
    ):
        [point] = published(cloudwatch, settings, metric)
        assert point["Maximum"] == 0.0


def test_reports_the_oldest_running_execution_age_from_its_start(
    cloudwatch: Any, settings: Any
) -> None:
    codepipeline, stub = stubbed_codepipeline()
    expect_executions(
        stub,
        [
            summary("new", "InProgress", NOW - timedelta(minutes=10)),
            summary("old", "Stopping", NOW - timedelta(minutes=95)),
            summary("finished", "Failed", NOW - timedelta(hours=9)),
        ],
    )
    expect_actions(stub, "new", [action("Build", "InProgress", NOW - timedelta(minutes=9))])
    expect_actions(stub, "old", [action("Deploy", "InProgress", NOW - timedelta(minutes=90))])
    with stub:
        report = watchdog.run(
            codepipeline=codepipeline, cloudwatch=cloudwatch, settings=settings, now=NOW
        )
    assert report.oldest_execution_seconds == 95 * 60
    assert report.oldest_execution_id == "old"
    assert report.in_progress == 2
    [age] = published(cloudwatch, settings, watchdog.METRIC_OLDEST_EXECUTION)
    assert age["Maximum"] == 95 * 60
    [count] = published(cloudwatch, settings, watchdog.METRIC_IN_PROGRESS)
    assert count["Maximum"] == 2


def test_execution_waiting_for_manual_approval_is_not_counted_as_stuck(
    cloudwatch: Any, settings: Any
) -> None:
    codepipeline, stub = stubbed_codepipeline()
    expect_executions(stub, [summary("waiting", "InProgress", NOW - timedelta(hours=20))])
    expect_actions(
        stub,
        "waiting",
        [
            action("Deploy", "Succeeded", NOW - timedelta(hours=20), NOW - timedelta(hours=19)),
            action("Approval", "InProgress", NOW - timedelta(hours=18)),
        ],
    )
    with stub:
        report = watchdog.run(
            codepipeline=codepipeline, cloudwatch=cloudwatch, settings=settings, now=NOW
        )
    assert report.oldest_execution_seconds == 0
    assert report.awaiting_approval == 1
    assert report.oldest_approval_wait_seconds == 18 * 3600
    [wait] = published(cloudwatch, settings, watchdog.METRIC_OLDEST_APPROVAL)
    assert wait["Maximum"] == 18 * 3600


def test_clock_restarts_when_the_approval_is_given(cloudwatch: Any, settings: Any) -> None:
    codepipeline, stub = stubbed_codepipeline()
    expect_executions(stub, [summary("approved", "InProgress", NOW - timedelta(hours=20))])
    expect_actions(
        stub,
        "approved",
        [
            action("Approval", "Succeeded", NOW - timedelta(hours=19), NOW - timedelta(minutes=7)),
            action("Deploy", "InProgress", NOW - timedelta(minutes=6)),
        ],
    )
    with stub:
        report = watchdog.run(
            codepipeline=codepipeline, cloudwatch=cloudwatch, settings=settings, now=NOW
        )
    assert report.oldest_execution_seconds == 7 * 60


def test_follows_pages_of_executions_and_of_actions(cloudwatch: Any, settings: Any) -> None:
    codepipeline, stub = stubbed_codepipeline()
    expect_executions(stub, [summary("a", "Succeeded", NOW)], next_token="p2")
    expect_executions(stub, [summary("b", "InProgress", NOW - timedelta(minutes=30))], token="p2")
    expect_actions(stub, "b", [action("Build", "Succeeded", NOW)], next_token="q2")
    expect_actions(
        stub,
        "b",
        [action("Approval", "Succeeded", NOW - timedelta(minutes=20), NOW - timedelta(minutes=5))],
        token="q2",
    )
    with stub:
        report = watchdog.run(
            codepipeline=codepipeline, cloudwatch=cloudwatch, settings=settings, now=NOW
        )
    stub.assert_no_pending_responses()
    assert report.oldest_execution_seconds == 5 * 60
    assert report.truncated is False


def test_stops_after_max_pages_and_reports_truncation(cloudwatch: Any) -> None:
    settings = watchdog.Settings(
        pipeline_name=PIPELINE, service_name="svc", namespace=f"t-{uuid.uuid4()}", max_pages=2
    )
    codepipeline, stub = stubbed_codepipeline()
    expect_executions(stub, [], next_token="p2")
    expect_executions(stub, [], next_token="p3", token="p2")
    with stub:
        report = watchdog.run(
            codepipeline=codepipeline, cloudwatch=cloudwatch, settings=settings, now=NOW
        )
    stub.assert_no_pending_responses()
    assert report.truncated is True


def test_skips_malformed_summaries_and_actions_without_failing(
    cloudwatch: Any, settings: Any
) -> None:
    codepipeline, stub = stubbed_codepipeline()
    expect_executions(
        stub,
        [
            {"pipelineExecutionId": "no-start", "status": "InProgress"},
            {"status": "InProgress", "startTime": NOW},
            summary("ok", "InProgress", NOW - timedelta(minutes=3)),
        ],
    )
    expect_actions(
        stub,
        "ok",
        [{"pipelineExecutionId": "ok", "status": "InProgress", "stageName": "Build"}],
    )
    with stub:
        report = watchdog.run(
            codepipeline=codepipeline, cloudwatch=cloudwatch, settings=settings, now=NOW
        )
    assert report.skipped == 2
    assert report.in_progress == 1
    assert report.oldest_execution_seconds == 3 * 60


def test_throttled_listing_fails_and_publishes_nothing(cloudwatch: Any, settings: Any) -> None:
    codepipeline, stub = stubbed_codepipeline()
    stub.add_client_error(
        "list_pipeline_executions", service_error_code="ThrottlingException", http_status_code=400
    )
    with stub, pytest.raises(ClientError, match="ThrottlingException"):
        watchdog.run(codepipeline=codepipeline, cloudwatch=cloudwatch, settings=settings, now=NOW)
    assert published(cloudwatch, settings, watchdog.METRIC_OLDEST_EXECUTION) == []


def test_failure_reading_an_execution_publishes_nothing(cloudwatch: Any, settings: Any) -> None:
    codepipeline, stub = stubbed_codepipeline()
    expect_executions(stub, [summary("gone", "InProgress", NOW - timedelta(minutes=3))])
    stub.add_client_error(
        "list_action_executions",
        service_error_code="PipelineExecutionNotFoundException",
        http_status_code=400,
    )
    with stub, pytest.raises(ClientError):
        watchdog.run(codepipeline=codepipeline, cloudwatch=cloudwatch, settings=settings, now=NOW)
    assert published(cloudwatch, settings, watchdog.METRIC_IN_PROGRESS) == []


class _Hang(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        time.sleep(3)
        self.send_response(500)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


def test_hanging_endpoint_times_out_and_publishes_nothing(
    monkeypatch: pytest.MonkeyPatch, cloudwatch: Any
) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hang)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    namespace = f"t-{uuid.uuid4()}"
    try:
        monkeypatch.setenv(
            "AWS_ENDPOINT_URL_CODEPIPELINE", f"http://127.0.0.1:{server.server_port}"
        )
        monkeypatch.setenv("PIPELINE_NAME", PIPELINE)
        monkeypatch.setenv("SERVICE_NAME", "svc")
        monkeypatch.setenv("METRICS_NAMESPACE", namespace)
        monkeypatch.setattr(watchdog, "READ_TIMEOUT", 0.5)
        monkeypatch.setattr(watchdog, "MAX_ATTEMPTS", 1)
        started = time.monotonic()
        with pytest.raises(ReadTimeoutError):
            watchdog.handler({}, None)
        assert time.monotonic() - started < 3
    finally:
        server.shutdown()
    assert cloudwatch.list_metrics(Namespace=namespace)["Metrics"] == []


def test_handler_reads_moto_pipeline_and_publishes(
    monkeypatch: pytest.MonkeyPatch, cloudwatch: Any
) -> None:
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(
        RoleName=f"pipeline-{uuid.uuid4().hex[:8]}",
        AssumeRolePolicyDocument=(
            '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":'
            '{"Service":"codepipeline.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
        ),
    )["Role"]["Arn"]
    codepipeline = boto3.client("codepipeline", region_name=REGION)
    name = f"pipeline-{uuid.uuid4().hex[:8]}"
    codepipeline.create_pipeline(
        pipeline={
            "name": name,
            "roleArn": role,
            "artifactStore": {"type": "S3", "location": "artifacts"},
            "stages": [
                {
                    "name": "Source",
                    "actions": [
                        {
                            "name": "Source",
                            "actionTypeId": {
                                "category": "Source",
                                "owner": "AWS",
                                "provider": "S3",
                                "version": "1",
                            },
                            "configuration": {"S3Bucket": "b", "S3ObjectKey": "k"},
                            "outputArtifacts": [{"name": "src"}],
                        }
                    ],
                },
                {
                    "name": "Build",
                    "actions": [
                        {
                            "name": "Build",
                            "actionTypeId": {
                                "category": "Build",
                                "owner": "AWS",
                                "provider": "CodeBuild",
                                "version": "1",
                            },
                            "configuration": {"ProjectName": "p"},
                            "inputArtifacts": [{"name": "src"}],
                        }
                    ],
                },
            ],
        }
    )
    codepipeline.start_pipeline_execution(name=name)
    namespace = f"t-{uuid.uuid4()}"
    monkeypatch.setenv("PIPELINE_NAME", name)
    monkeypatch.setenv("SERVICE_NAME", "svc")
    monkeypatch.setenv("METRICS_NAMESPACE", namespace)
    result = watchdog.handler({"source": "aws.events"}, None)
    assert result["in_progress"] == 0
    assert result["oldest_execution_seconds"] == 0
    names = {m["MetricName"] for m in cloudwatch.list_metrics(Namespace=namespace)["Metrics"]}
    assert names == {
        watchdog.METRIC_OLDEST_EXECUTION,
        watchdog.METRIC_OLDEST_APPROVAL,
        watchdog.METRIC_IN_PROGRESS,
    }


def test_running_twice_for_the_same_moment_publishes_the_same_values(
    cloudwatch: Any, settings: Any
) -> None:
    for _ in range(2):
        codepipeline, stub = stubbed_codepipeline()
        expect_executions(stub, [summary("x", "InProgress", NOW - timedelta(minutes=42))])
        expect_actions(stub, "x", [])
        with stub:
            watchdog.run(
                codepipeline=codepipeline, cloudwatch=cloudwatch, settings=settings, now=NOW
            )
    [point] = published(cloudwatch, settings, watchdog.METRIC_OLDEST_EXECUTION)
    assert point["SampleCount"] == 2 and point["Maximum"] == 42 * 60


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SERVICE_NAME": "svc"}, "PIPELINE_NAME"),
        ({"PIPELINE_NAME": "p"}, "SERVICE_NAME"),
        ({"PIPELINE_NAME": "p", "SERVICE_NAME": "s", "MAX_PAGES": "0"}, "MAX_PAGES"),
        ({"PIPELINE_NAME": "p", "SERVICE_NAME": "s", "MAX_PAGES": "many"}, "many"),
    ],
)
def test_settings_reject_missing_or_malformed_environment(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        watchdog.Settings.from_env(env)


def test_settings_default_namespace_and_pages() -> None:
    settings = watchdog.Settings.from_env({"PIPELINE_NAME": "p", "SERVICE_NAME": "s"})
    assert (settings.namespace, settings.max_pages) == ("deployline", 5)
