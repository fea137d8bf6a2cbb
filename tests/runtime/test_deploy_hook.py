"""The CodeDeploy AfterAllowTestTraffic hook against a local test listener.

moto does not implement PutLifecycleEventHookExecutionStatus (it answers 500), so the CodeDeploy
client is botocore's Stubber; a CallLog captures the status the hook reported.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from deployline.runtime import clients, deploy_hook

from .conftest import CallLog, FakeContext, HealthServer, make_client

EVENT = {"DeploymentId": "d-ABCDEF123", "LifecycleEventHookExecutionId": "hook-execution-1"}


@pytest.fixture
def codedeploy() -> Iterator[tuple[Any, Stubber, CallLog]]:
    client = make_client("codedeploy", "http://127.0.0.1:9")
    log = CallLog(client)
    with Stubber(client) as stub:
        yield client, stub, log
        stub.assert_no_pending_responses()


def expect_status(stub: Stubber, status: str) -> None:
    stub.add_response(
        "put_lifecycle_event_hook_execution_status",
        {"lifecycleEventHookExecutionId": "hook-execution-1"},
        {
            "deploymentId": "d-ABCDEF123",
            "lifecycleEventHookExecutionId": "hook-execution-1",
            "status": status,
        },
    )


def env(server: HealthServer, path: str, **extra: str) -> dict[str, str]:
    return {"TEST_URL": f"{server.url}/", "HEALTH_CHECK_PATH": path, **extra}


def run(client: Any, environment: dict[str, str], budget: float = 60.0) -> Any:
    context = FakeContext(time.monotonic, budget)
    return deploy_hook.run(
        EVENT,
        codedeploy=client,
        env=environment,
        remaining_ms=context.get_remaining_time_in_millis,
        sleep=lambda _: None,
        probe_timeout=0.3,
    )


def test_reports_succeeded_after_consecutive_healthy_answers(
    codedeploy: Any, health_server: HealthServer
) -> None:
    client, stub, _ = codedeploy
    path = health_server.route("/green/ok", 200)
    expect_status(stub, "Succeeded")

    outcome = run(client, env(health_server, path))

    assert outcome.status == "Succeeded"
    assert health_server.hits[path] == 3


def test_one_success_among_errors_is_not_enough(
    codedeploy: Any, health_server: HealthServer
) -> None:
    client, stub, _ = codedeploy
    path = health_server.route("/green/flapping", 200, 500, 200, 200, 200)
    expect_status(stub, "Succeeded")

    run(client, env(health_server, path))

    assert health_server.hits[path] == 5  # the 500 reset the count of consecutive successes


def test_reports_failed_when_green_tasks_answer_500(
    codedeploy: Any, health_server: HealthServer
) -> None:
    client, stub, _ = codedeploy
    path = health_server.route("/green/broken", 500)
    expect_status(stub, "Failed")

    outcome = run(client, env(health_server, path, CHECK_TIMEOUT_SECONDS="1"))

    assert outcome.status == "Failed"
    assert "HTTP 500" in outcome.message
    assert "roll back" in outcome.message


def test_reports_failed_when_green_tasks_hang(codedeploy: Any, health_server: HealthServer) -> None:
    client, stub, _ = codedeploy
    path = health_server.route("/green/hang", "hang")
    expect_status(stub, "Failed")
    started = time.monotonic()

    outcome = run(client, env(health_server, path, CHECK_TIMEOUT_SECONDS="1"))

    assert outcome.status == "Failed"
    assert "timed out" in outcome.message
    assert time.monotonic() - started < 2.5  # bounded by CHECK_TIMEOUT_SECONDS, not the hang


def test_check_window_is_bounded_by_the_remaining_invocation_time(
    codedeploy: Any, health_server: HealthServer
) -> None:
    client, stub, _ = codedeploy
    path = health_server.route("/green/slow-to-start", 500)
    expect_status(stub, "Failed")
    started = time.monotonic()

    # CHECK_TIMEOUT_SECONDS says 120, but only 6 s remain (5 s are kept to report).
    outcome = run(client, env(health_server, path), budget=6.0)

    assert outcome.status == "Failed"
    assert "within 1s" in outcome.message
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, "TEST_URL is not set"),
        ({"TEST_URL": "my-alb:8080"}, "http:// or https://"),
        ({"TEST_URL": "http://a", "HEALTH_CHECK_PATH": "health"}, "must start with '/'"),
        ({"TEST_URL": "http://a", "EXPECTED_STATUS": "ok"}, "EXPECTED_STATUS must be an integer"),
        ({"TEST_URL": "http://a", "CHECK_TIMEOUT_SECONDS": "0"}, "from 1 to 3600, got 0"),
    ],
)
def test_misconfiguration_still_reports_failed(
    codedeploy: Any, environment: dict[str, str], expected: str
) -> None:
    client, stub, _ = codedeploy
    expect_status(stub, "Failed")

    outcome = run(client, environment)

    assert outcome.status == "Failed"
    assert expected in outcome.message


def test_settings_defaults() -> None:
    settings = deploy_hook.HookSettings.from_env({"TEST_URL": "http://alb:8080"})
    assert settings.health_url == "http://alb:8080/health"
    assert (settings.timeout_seconds, settings.expected_status, settings.required_successes) == (
        120,
        200,
        3,
    )


def test_handler_reports_failed_even_when_the_check_crashes(
    codedeploy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, stub, log = codedeploy
    expect_status(stub, "Failed")

    def crash(*_: Any, **__: Any) -> Any:
        raise MemoryError("out of memory")

    monkeypatch.setattr(deploy_hook, "check_green", crash)
    monkeypatch.setattr(clients, "client", lambda service: client)
    monkeypatch.setenv("TEST_URL", "http://alb:8080")

    result = deploy_hook.handler(EVENT, None)

    assert result["status"] == "Failed"
    assert "out of memory" in result["message"]
    assert log.named("PutLifecycleEventHookExecutionStatus")[0]["status"] == "Failed"


def test_handler_ignores_an_event_without_hook_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_clients(service: str) -> Any:
        raise AssertionError("nothing to report to, so no client call")

    client = make_client("codedeploy", "http://127.0.0.1:9")
    monkeypatch.setattr(clients, "client", lambda service: client)
    with Stubber(client):
        result = deploy_hook.handler({"DeploymentId": "d-1"}, None)
    assert result["status"] == "ignored"


def test_a_refused_report_raises_so_lambda_retries(
    codedeploy: Any, health_server: HealthServer
) -> None:
    client, stub, _ = codedeploy
    path = health_server.route("/green/ok-but-refused", 200)
    stub.add_client_error(
        "put_lifecycle_event_hook_execution_status",
        service_error_code="LifecycleEventAlreadyCompletedException",
        http_status_code=400,
    )

    with pytest.raises(ClientError, match="LifecycleEventAlreadyCompleted"):
        run(client, env(health_server, path))
