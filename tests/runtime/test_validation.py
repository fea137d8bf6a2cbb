"""Post-deploy validation against a moto server and a local health endpoint.

moto implements ECS (DescribeServices, DescribeTaskDefinition), CloudFormation (stack outputs)
and STS (AssumeRole), but not CodePipeline's PutJobSuccessResult/PutJobFailureResult: those go to
botocore's Stubber, and a CallLog captures what the function sent.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import ANY, Stubber
from moto.ecs.models import ecs_backends

from deployline.runtime import clients, validation
from deployline.runtime.jobs import PipelineJob

from .conftest import ACCOUNT, REGION, CallLog, FakeClock, FakeContext, HealthServer, make_client

REPO = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/payment-processor"


@pytest.fixture(scope="module")
def ecs(moto_url: str) -> Any:
    return make_client("ecs", moto_url)


@pytest.fixture
def pipeline() -> Iterator[tuple[Any, Stubber, CallLog]]:
    client = make_client("codepipeline", "http://127.0.0.1:9")
    log = CallLog(client)
    with Stubber(client) as stub:
        yield client, stub, log
        stub.assert_no_pending_responses()


def create_service(
    ecs: Any, monkeypatch: pytest.MonkeyPatch, *, running: int, desired: int = 2, image: str = ""
) -> tuple[str, str]:
    cluster = f"cluster-{uuid.uuid4().hex[:8]}"
    service = f"service-{uuid.uuid4().hex[:8]}"
    ecs.create_cluster(clusterName=cluster)
    task_definition = ecs.register_task_definition(
        family=f"payment-processor-{cluster}",
        containerDefinitions=[
            {"name": "app", "image": image or f"{REPO}:3f2c1ab", "memory": 512},
            {
                "name": "log-router",
                "image": "public.ecr.aws/aws-observability/fluent-bit:2",
                "memory": 64,
            },
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", str(running))
    ecs.create_service(
        cluster=cluster, serviceName=service, taskDefinition=task_definition, desiredCount=desired
    )
    return cluster, service


def moto_service(cluster: str, service: str) -> Any:
    return ecs_backends[ACCOUNT][REGION].services[f"{cluster}:{service}"]


def job(params: dict[str, Any] | str, token: str | None = None) -> PipelineJob:
    raw = params if isinstance(params, str) else json.dumps(params)
    data: dict[str, Any] = {"actionConfiguration": {"configuration": {"UserParameters": raw}}}
    if token:
        data["continuationToken"] = token
    return PipelineJob.from_event({"CodePipeline.job": {"id": "job-1", "data": data}})


def params(cluster: str, service: str, url: str, path: str, **extra: Any) -> dict[str, Any]:
    return {
        "cluster": cluster,
        "service": service,
        "url": url,
        "health_path": path,
        "expected_image": REPO,
        "timeout_seconds": 120,
        **extra,
    }


def on_moto(ecs: Any) -> validation.Connect:
    """Clients of the moto server (whatever role and region the parameters name)."""
    url = ecs.meta.endpoint_url

    def connect(_: validation.ValidationParams) -> Any:
        return lambda service: ecs if service == "ecs" else make_client(service, url)

    return connect


def run(job_: PipelineJob, ecs: Any, codepipeline: Any, clock: FakeClock, budget: float) -> Any:
    context = FakeContext(clock, budget)
    return validation.run(
        job_,
        connect=on_moto(ecs),
        codepipeline=codepipeline,
        remaining_ms=context.get_remaining_time_in_millis,
        clock=clock,
        sleep=clock.sleep,
        probe_timeout=0.5,
    )


def expect_success(stub: Stubber, *, token: bool = False) -> None:
    expected: dict[str, Any] = {"jobId": "job-1", "executionDetails": ANY}
    if token:
        expected["continuationToken"] = ANY
    stub.add_response("put_job_success_result", {}, expected)


def expect_failure(stub: Stubber) -> None:
    stub.add_response("put_job_failure_result", {}, {"jobId": "job-1", "failureDetails": ANY})


def failure_message(log: CallLog) -> str:
    (call,) = log.named("PutJobFailureResult")
    assert call["failureDetails"]["type"] == "JobFailed"
    message: str = call["failureDetails"]["message"]
    return message


# ---------------------------------------------------------------------------------------------
# Passing and definite failures
# ---------------------------------------------------------------------------------------------


def test_passes_when_service_is_steady_on_expected_image_and_health_answers_200(
    ecs: Any, pipeline: Any, health_server: HealthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster, service = create_service(ecs, monkeypatch, running=2)
    path = health_server.route("/steady/health", 200)
    client, stub, log = pipeline
    expect_success(stub)

    outcome = run(
        job(params(cluster, service, health_server.url, path)), ecs, client, FakeClock(), 60
    )

    assert outcome.result == "succeeded"
    (call,) = log.named("PutJobSuccessResult")
    assert "continuationToken" not in call
    summary = call["executionDetails"]["summary"]
    assert f"service {service} is steady" in summary
    assert "answered HTTP 200 3 times in a row" in summary
    assert health_server.hits[path] == 3


def test_fails_at_once_when_the_ecs_deployment_failed(
    ecs: Any, pipeline: Any, health_server: HealthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster, service = create_service(ecs, monkeypatch, running=0)
    deployment = moto_service(cluster, service).deployments[0]
    deployment["rolloutState"] = "FAILED"
    deployment["rolloutStateReason"] = "ECS deployment circuit breaker: tasks failed to start."
    deployment["failedTasks"] = 3
    client, stub, log = pipeline
    expect_failure(stub)
    clock = FakeClock()

    outcome = run(job(params(cluster, service, health_server.url, "/x")), ecs, client, clock, 60)

    assert outcome.result == "failed"
    message = failure_message(log)
    assert "FAILED: ECS deployment circuit breaker: tasks failed to start." in message
    assert "3 task(s) failed" in message
    assert "Events tab" in message
    assert clock.sleeps == []  # no waiting for a definite failure


def test_fails_when_the_service_runs_another_image(
    ecs: Any, pipeline: Any, health_server: HealthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster, service = create_service(
        ecs, monkeypatch, running=2, image="public.ecr.aws/docker/library/caddy:2-alpine"
    )
    client, stub, log = pipeline
    expect_failure(stub)

    run(job(params(cluster, service, health_server.url, "/x")), ecs, client, FakeClock(), 60)

    message = failure_message(log)
    assert f"should start with {REPO}" in message
    assert "public.ecr.aws/docker/library/caddy:2-alpine" in message
    assert "ImageTag parameter is not the tag this execution built" in message


def test_fails_when_the_service_does_not_exist(
    ecs: Any, pipeline: Any, health_server: HealthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster, _ = create_service(ecs, monkeypatch, running=2)
    client, stub, log = pipeline
    expect_failure(stub)

    run(
        job(params(cluster, "no-such-service", health_server.url, "/x")),
        ecs,
        client,
        FakeClock(),
        60,
    )

    message = failure_message(log)
    assert "service no-such-service not found in cluster" in message
    assert "MISSING" in message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("not json", "UserParameters is not valid JSON"),
        ('["cluster"]', "must be a JSON object, got list"),
        ('{"service": "s", "url": "http://a"}', "needs stack_name (whose outputs name the"),
        ('{"stack_name": "x", "cluster": "c"}', "give stack_name or cluster/service/url"),
        ('{"stack_name": "x", "role_arn": "arn:aws:iam::1:role/x"}', "role_arn must be an IAM"),
        ('{"stack_name": "x", "region": "Europe"}', "region must be an AWS region name"),
        ('{"cluster": "c", "service": "s", "url": "ftp://a"}', "http:// or https://"),
        (
            '{"cluster": "c", "service": "s", "url": "http://a", "timeout_seconds": 5}',
            "timeout_seconds must be an integer from 30 to 3600, got 5",
        ),
        ('{"cluster": "c", "service": "s", "url": "http://a", "helth_path": "/"}', "helth_path"),
        ("", "UserParameters is empty"),
    ],
)
def test_malformed_user_parameters_fail_the_job_with_a_clear_message(
    ecs: Any, pipeline: Any, raw: str, expected: str
) -> None:
    client, stub, log = pipeline
    expect_failure(stub)

    outcome = run(job(raw), ecs, client, FakeClock(), 60)

    assert outcome.result == "failed"
    assert expected in failure_message(log)


# ---------------------------------------------------------------------------------------------
# Waiting: continuation tokens and the time budget
# ---------------------------------------------------------------------------------------------


def test_returns_a_continuation_token_while_the_rollout_is_in_progress(
    ecs: Any, pipeline: Any, health_server: HealthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster, service = create_service(ecs, monkeypatch, running=1)
    client, stub, log = pipeline
    expect_success(stub, token=True)
    clock = FakeClock()
    started = clock()

    outcome = run(job(params(cluster, service, health_server.url, "/x")), ecs, client, clock, 40)

    assert outcome.result == "continued"
    (call,) = log.named("PutJobSuccessResult")
    state = json.loads(call["continuationToken"])
    assert state["started"] == started
    assert state["phase"] == "service"
    assert state["invocations"] == 1
    assert "IN_PROGRESS: 1/2 task(s) running" in state["last"]
    # It polled every 10 s inside its own budget, then handed over instead of sleeping on.
    assert clock.sleeps == [10.0, 10.0, 10.0]
    assert clock() - started < 40 - validation.SAFETY_MARGIN


def test_next_invocation_resumes_from_the_token_and_succeeds(
    ecs: Any, pipeline: Any, health_server: HealthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster, service = create_service(ecs, monkeypatch, running=2)
    path = health_server.route("/resumed/health", 200)
    clock = FakeClock()
    token = validation.ValidationState(started=clock() - 60, invocations=3, last="x").to_token()
    client, stub, log = pipeline
    expect_success(stub)

    outcome = run(
        job(params(cluster, service, health_server.url, path), token), ecs, client, clock, 60
    )

    assert outcome.result == "succeeded"
    assert outcome.state["invocations"] == 4
    assert "continuationToken" not in log.named("PutJobSuccessResult")[0]


def test_fails_once_timeout_has_passed_since_the_first_attempt(
    ecs: Any, pipeline: Any, health_server: HealthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster, service = create_service(ecs, monkeypatch, running=1)
    clock = FakeClock()
    token = validation.ValidationState(started=clock() - 125, invocations=2).to_token()
    client, stub, log = pipeline
    expect_failure(stub)

    outcome = run(
        job(params(cluster, service, health_server.url, "/x"), token), ecs, client, clock, 60
    )

    assert outcome.result == "failed"
    message = failure_message(log)
    assert "did not pass within 120s" in message
    assert "3 invocation(s)" in message
    assert "IN_PROGRESS: 1/2 task(s) running" in message  # what was seen
    assert f"HTTP 200 from {health_server.url}/x" in message  # what was expected
    assert "Events tab" in message  # where to look


def test_waits_while_an_older_deployment_is_still_running(
    ecs: Any, pipeline: Any, health_server: HealthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster, service = create_service(ecs, monkeypatch, running=2)
    backend_service = moto_service(cluster, service)
    old = dict(backend_service.deployments[0])
    old.update(
        id="ecs-svc/0000000000000000001",
        status="ACTIVE",
        runningCount=1,
        taskDefinition=old["taskDefinition"].replace(":1", ":0"),
    )
    backend_service.deployments.append(old)
    client, stub, log = pipeline
    expect_success(stub, token=True)

    outcome = run(
        job(params(cluster, service, health_server.url, "/x")), ecs, client, FakeClock(), 25
    )

    assert outcome.result == "continued"
    state = json.loads(log.named("PutJobSuccessResult")[0]["continuationToken"])
    assert "older deployment(s) still active" in state["last"]
    assert "ecs-svc/0000000000000000001" in state["last"]


def test_health_errors_are_retried_with_backoff_until_three_successes(
    ecs: Any, pipeline: Any, health_server: HealthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster, service = create_service(ecs, monkeypatch, running=2)
    path = health_server.route("/flaky/health", 500, 500, 503, 200)
    client, stub, _ = pipeline
    expect_success(stub)
    clock = FakeClock()

    outcome = run(job(params(cluster, service, health_server.url, path)), ecs, client, clock, 60)

    assert outcome.result == "succeeded"
    assert health_server.hits[path] == 6
    # Exponential backoff after each failure, then a short pause between successes.
    assert clock.sleeps == [1.0, 2.0, 4.0, 1.0, 1.0]


def test_health_500_until_the_deadline_fails_with_the_last_answer(
    ecs: Any, pipeline: Any, health_server: HealthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster, service = create_service(ecs, monkeypatch, running=2)
    path = health_server.route("/broken/health", 500)
    client, stub, log = pipeline
    expect_failure(stub)

    outcome = run(
        job(params(cluster, service, health_server.url, path, timeout_seconds=30)),
        ecs,
        client,
        FakeClock(),
        300,
    )

    assert outcome.result == "failed"
    message = failure_message(log)
    assert "did not pass within 30s" in message
    assert "HTTP 500" in message
    assert "database unreachable" in message  # the body tells the operator why


def test_hanging_health_endpoint_times_out_and_hands_over(
    ecs: Any, pipeline: Any, health_server: HealthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster, service = create_service(ecs, monkeypatch, running=2)
    path = health_server.route("/hang/health", "hang")
    client, stub, log = pipeline
    expect_success(stub, token=True)

    outcome = run(
        job(params(cluster, service, health_server.url, path)), ecs, client, FakeClock(), 12
    )

    assert outcome.result == "continued"
    state = json.loads(log.named("PutJobSuccessResult")[0]["continuationToken"])
    assert state["phase"] == "health"
    assert "timed out" in state["last"]


def test_a_corrupt_continuation_token_fails_the_job(ecs: Any, pipeline: Any) -> None:
    client, stub, log = pipeline
    expect_failure(stub)

    run(
        job(params("c", "s", "http://127.0.0.1:9", "/x"), token="{not json"),
        ecs,
        client,
        FakeClock(),
        60,
    )

    assert "continuation token is not one this function wrote" in failure_message(log)


# ---------------------------------------------------------------------------------------------
# ECS blue/green services, other controllers, and the handler
# ---------------------------------------------------------------------------------------------


def _blue_green(rollout: str, running: int) -> dict[str, Any]:
    """An ECS-native blue/green service: the ECS controller, a PRIMARY deployment (green)."""
    return {
        "serviceName": "payment-processor-service-production",
        "status": "ACTIVE",
        "desiredCount": 2,
        "runningCount": running,
        "deploymentController": {"type": "ECS"},
        "deploymentConfiguration": {"strategy": "CANARY", "bakeTimeInMinutes": 10},
        "deployments": [
            {
                "id": "ecs-svc/2",
                "status": "PRIMARY",
                "taskDefinition": "arn:x:task-definition/pp:8",
                "rolloutState": rollout,
                "desiredCount": 2,
                "runningCount": running,
            }
        ],
    }


def test_blue_green_service_is_ready_when_its_deployment_completed() -> None:
    check = validation.assess_service(
        _blue_green("COMPLETED", 2), expected_image=REPO, images=[f"{REPO}:abc"]
    )
    assert check.state == "ready"
    assert "pp:8" in check.message


def test_blue_green_service_waits_while_traffic_shifts_or_bakes() -> None:
    check = validation.assess_service(_blue_green("IN_PROGRESS", 2))
    assert check.state == "waiting"
    assert "IN_PROGRESS" in check.message


def test_a_codedeploy_controlled_service_is_refused_with_the_reason() -> None:
    service = _blue_green("COMPLETED", 2) | {"deploymentController": {"type": "CODE_DEPLOY"}}
    check = validation.assess_service(service)
    assert check.state == "failed"
    assert "CODE_DEPLOY deployment controller" in check.message


def test_fails_when_desired_count_is_zero() -> None:
    service = _blue_green("COMPLETED", 0) | {"desiredCount": 0}
    check = validation.assess_service(service)
    assert check.state == "failed"
    assert "desiredCount 0" in check.message


def test_handler_fails_the_job_when_the_check_itself_crashes(
    monkeypatch: pytest.MonkeyPatch, pipeline: Any
) -> None:
    client, stub, log = pipeline
    expect_failure(stub)

    def crash(*_: Any, **__: Any) -> Any:
        raise RuntimeError("unexpected response shape")

    monkeypatch.setattr(validation, "check_service", crash)
    monkeypatch.setattr(clients, "client", lambda service: client)
    event = {
        "CodePipeline.job": {
            "id": "job-1",
            "data": {
                "actionConfiguration": {
                    "configuration": {
                        "UserParameters": json.dumps(params("c", "s", "http://a", "/h"))
                    }
                }
            },
        }
    }

    result = validation.handler(event, FakeContext(FakeClock(), 60))

    assert result["result"] == "failed"
    message = failure_message(log)
    assert "RuntimeError: unexpected response shape" in message
    assert "payment-processor-test-fn" in message


def test_handler_ignores_an_event_without_a_job_and_calls_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_clients(service: str) -> Any:
        raise AssertionError(f"no {service} client should be created")

    monkeypatch.setattr(clients, "client", no_clients)
    result = validation.handler({"detail": {}}, None)
    assert result["result"] == "ignored"


def test_handler_uses_aws_endpoint_url_and_reports_success(
    ecs: Any,
    moto_url: str,
    pipeline: Any,
    health_server: HealthServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster, service = create_service(ecs, monkeypatch, running=2)
    path = health_server.route("/handler/health", 200)
    client, stub, log = pipeline
    expect_success(stub)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    clients.reset()
    real_client = clients.client
    monkeypatch.setattr(
        clients, "client", lambda name: client if name == "codepipeline" else real_client(name)
    )
    event = {
        "CodePipeline.job": {
            "id": "job-1",
            "data": {
                "actionConfiguration": {
                    "configuration": {
                        "UserParameters": json.dumps(
                            params(cluster, service, health_server.url, path)
                        )
                    }
                }
            },
        }
    }

    try:
        result = validation.handler(event, FakeContext(time.time, 60))
    finally:
        real_client.cache_clear()

    assert result["result"] == "succeeded"
    assert result["invocations"] == 1
    assert (
        f"service {service} is steady"
        in log.named("PutJobSuccessResult")[0]["executionDetails"]["summary"]
    )


# ---------------------------------------------------------------------------------------------
# The environment stack names the service; another account is read through its lookup role
# ---------------------------------------------------------------------------------------------

OUTPUTS_TEMPLATE = """
Resources:
  Marker:
    Type: AWS::SNS::Topic
Outputs:
  ClusterName:
    Value: {cluster}
  ServiceName:
    Value: {service}
  ServiceUrl:
    Value: {url}
"""


def environment_stack(moto_url: str, cluster: str, service: str, url: str) -> str:
    name = f"payment-processor-service-{uuid.uuid4().hex[:6]}"
    make_client("cloudformation", moto_url).create_stack(
        StackName=name,
        TemplateBody=OUTPUTS_TEMPLATE.format(cluster=cluster, service=service, url=url),
    )
    return name


def test_the_stack_outputs_name_the_cluster_service_and_url(
    ecs: Any,
    moto_url: str,
    pipeline: Any,
    health_server: HealthServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster, service = create_service(ecs, monkeypatch, running=2)
    path = health_server.route("/from-outputs/health", 200)
    stack = environment_stack(moto_url, cluster, service, health_server.url)
    client, stub, log = pipeline
    expect_success(stub)

    outcome = run(
        job({"stack_name": stack, "health_path": path, "expected_image": REPO}),
        ecs,
        client,
        FakeClock(),
        60,
    )

    assert outcome.result == "succeeded", outcome.message
    (call,) = log.named("PutJobSuccessResult")
    assert health_server.url in call["executionDetails"]["summary"]
    assert service in call["executionDetails"]["summary"]


def test_a_stack_without_the_outputs_fails_with_what_is_missing(
    moto_url: str, pipeline: Any, ecs: Any
) -> None:
    name = f"other-{uuid.uuid4().hex[:6]}"
    make_client("cloudformation", moto_url).create_stack(
        StackName=name,
        TemplateBody="Resources:\n  M:\n    Type: AWS::SNS::Topic\n",
    )
    client, stub, log = pipeline
    expect_failure(stub)

    outcome = run(job({"stack_name": name}), ecs, client, FakeClock(), 60)

    assert outcome.result == "failed"
    message = failure_message(log)
    assert f"stack {name} has no output(s) ['ClusterName', 'ServiceName', 'ServiceUrl']" in message


def test_a_missing_stack_fails_at_once(moto_url: str, pipeline: Any, ecs: Any) -> None:
    client, stub, log = pipeline
    expect_failure(stub)

    run(job({"stack_name": "no-such-stack"}), ecs, client, FakeClock(), 60)

    assert "stack no-such-stack cannot be read" in failure_message(log)


def test_another_account_is_read_through_the_role_assumed_in_its_region(
    ecs: Any,
    moto_url: str,
    pipeline: Any,
    health_server: HealthServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The default connection: STS AssumeRole on the lookup role, clients in its region."""
    cluster, service = create_service(ecs, monkeypatch, running=2)
    path = health_server.route("/cross-account/health", 200)
    stack = environment_stack(moto_url, cluster, service, health_server.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    clients.reset()
    sts = make_client("sts", moto_url)
    sts_log = CallLog(sts)
    monkeypatch.setattr(clients, "client", lambda service_: sts)
    role = f"arn:aws:iam::{ACCOUNT}:role/cdk-hnb659fds-lookup-role-{ACCOUNT}-{REGION}"
    client, stub, _ = pipeline
    expect_success(stub)

    outcome = validation.run(
        job({"stack_name": stack, "region": REGION, "role_arn": role, "health_path": path}),
        codepipeline=client,
        remaining_ms=lambda: 60_000,
        clock=FakeClock(),
        sleep=lambda _: None,
        probe_timeout=0.5,
    )

    assert outcome.result == "succeeded", outcome.message
    (assumed,) = sts_log.named("AssumeRole")
    assert assumed["RoleArn"] == role
    assert assumed["RoleSessionName"] == "deployline-validation"
