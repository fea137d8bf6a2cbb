"""Shared test doubles for the runtime handlers: a moto server over HTTP, a local health server
that answers 200, 500 or hangs, a fake clock and Lambda context, and helpers for the few AWS
calls moto does not implement (botocore's Stubber, or FakeCodePipeline; each test says which)."""

from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from moto.server import ThreadedMotoServer

from deployline.runtime import recorder

REGION = "eu-west-1"
ACCOUNT = "123456789012"
PIPELINE = "payment-processor-pipeline-shared"


@pytest.fixture(scope="module")
def aws_env() -> Iterator[pytest.MonkeyPatch]:
    """Fake credentials and a region for the module; no profile, no real AWS."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_SESSION_TOKEN", "testing")
        mp.setenv("AWS_DEFAULT_REGION", REGION)
        mp.setenv("AWS_REGION", REGION)
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
            mp.delenv(name, raising=False)
        yield mp


@pytest.fixture(scope="module")
def moto_url(aws_env: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto server on 127.0.0.1 and a random free port, started once per test module."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    # moto's backends live in the process, not in the server: reset them so that a table or
    # bucket another module created does not leak into this one.
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"))
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture
def no_retry_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's standard retries without their backoff pauses: the attempts are the same,
    the test does not wait seconds for them."""
    from botocore.retries import standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.0)


def make_client(service: str, url: str, *, max_attempts: int = 3) -> Any:
    """A client for `service` on the moto server, with the runtime's retry mode."""
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=REGION,
        config=Config(retries={"mode": "standard", "max_attempts": max_attempts}),
    )


class CallLog:
    """Records the parameters of every API call a client makes (Stubber or real)."""

    def __init__(self, client: Any) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        client.meta.events.register("provide-client-params", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, dict(params)))

    def named(self, operation: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == operation]


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def inject_errors(
    client: Any, operation: str, *, times: int, status: int, body: bytes, content_type: str
) -> dict[str, int]:
    """Answer the first `times` HTTP attempts of `operation` with an error response, before it
    reaches moto, inside botocore's retry loop (so the client's retry mode is exercised)."""
    seen = {"injected": 0, "attempts": 0}
    service = client.meta.service_model.service_id.hyphenize()

    def respond(request: Any, **_: Any) -> AWSResponse | None:
        seen["attempts"] += 1
        if seen["injected"] >= times:
            return None
        seen["injected"] += 1
        return AWSResponse(request.url, status, {"Content-Type": content_type}, _Raw(body))

    client.meta.events.register(f"before-send.{service}.{operation}", respond)
    return seen


def throttle_dynamodb(client: Any, operation: str, *, times: int) -> dict[str, int]:
    """DynamoDB ThrottlingException for the first `times` attempts of `operation`."""
    return inject_errors(
        client,
        operation,
        times=times,
        status=400,
        body=b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException",'
        b'"message":"Rate of requests exceeds the allowed throughput."}',
        content_type="application/x-amz-json-1.0",
    )


class FakeClock:
    """Seconds since the epoch that only move when the code under test sleeps."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(seconds, 0.0)


class FakeContext:
    """A Lambda context whose remaining time follows a clock."""

    function_name = "payment-processor-test-fn"

    def __init__(self, clock: Callable[[], float], budget_seconds: float) -> None:
        self._clock = clock
        self._deadline = clock() + budget_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self._deadline - self._clock()) * 1000), 0)


class HealthServer:
    """A local HTTP server. Each path answers from a script: a list of status codes, or
    "hang" (sleep `hang_seconds` before answering); the last entry repeats."""

    def __init__(self) -> None:
        self.routes: dict[str, list[int | str]] = {}
        self.hits: dict[str, int] = {}
        self.hang_seconds = 3.0
        self._lock = threading.Lock()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with owner._lock:
                    script = owner.routes.get(self.path, [404])
                    count = owner.hits.get(self.path, 0)
                    owner.hits[self.path] = count + 1
                    answer = script[min(count, len(script) - 1)]
                if answer == "hang":
                    time.sleep(owner.hang_seconds)
                    answer = 200
                status = int(answer)
                body = b'{"status":"ok"}' if status == 200 else b'{"error":"database unreachable"}'
                try:
                    self.send_response(status)
                    if status in (301, 302):
                        self.send_header("Location", "http://127.0.0.1:1/elsewhere")
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *_: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, path: str, *script: int | str) -> str:
        self.routes[path] = list(script)
        self.hits[path] = 0
        return path


@pytest.fixture(scope="module")
def health_server() -> Iterator[HealthServer]:
    server = HealthServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


def create_deployments_table(dynamodb: Any, name: str) -> str:
    """The deployment table with the fixed key schema from runtime/records.py."""
    from deployline.runtime import records

    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": attribute, "AttributeType": "S"}
            for attribute in (records.TABLE_PK, records.TABLE_SK, records.GSI_PK, records.GSI_SK)
        ],
        KeySchema=[
            {"AttributeName": records.TABLE_PK, "KeyType": "HASH"},
            {"AttributeName": records.TABLE_SK, "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": records.GSI_NAME,
                "KeySchema": [
                    {"AttributeName": records.GSI_PK, "KeyType": "HASH"},
                    {"AttributeName": records.GSI_SK, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    return name


# --- EventBridge events as AWS sends them ----------------------------------------------------


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def envelope(detail_type: str, source: str, when: datetime, detail: dict[str, Any]) -> dict:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": ACCOUNT,
        "time": stamp(when),
        "region": REGION,
        "resources": [f"arn:aws:codepipeline:{REGION}:{ACCOUNT}:{PIPELINE}"],
        "detail": detail,
    }


def stage_event(execution: str, stage: str, state: str, when: datetime) -> dict:
    return envelope(
        recorder.STAGE_EXECUTION,
        "aws.codepipeline",
        when,
        {
            "pipeline": PIPELINE,
            "execution-id": execution,
            "stage": stage,
            "state": state,
            "version": 3.0,
            "pipeline-execution-attempt": 1.0,
        },
    )


def pipeline_event(
    execution: str,
    state: str,
    when: datetime,
    *,
    pipeline: str = PIPELINE,
    trigger: str = "Webhook",
) -> dict:
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
            "execution-trigger": {"trigger-type": trigger, "trigger-detail": "arn:aws:..."},
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
    summary: str | None = None,
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
    if summary:
        detail["execution-result"] = {
            "external-execution-summary": summary,
            "external-execution-state": state.title(),
        }
    return envelope(recorder.ACTION_EXECUTION, "aws.codepipeline", when, detail)


def ecs_event(
    deployment: str,
    name: str,
    when: datetime,
    *,
    reason: str | None = None,
    service: str = "payment-processor-service-production",
    cluster: str = "payment-processor-cluster-production",
    account: str = ACCOUNT,
    region: str = REGION,
) -> dict:
    """An "ECS Deployment State Change" event as the ECS Developer Guide shows it."""
    detail: dict[str, Any] = {
        "eventType": "ERROR" if "FAIL" in name else "INFO",
        "eventName": name,
        "deploymentId": deployment,
        "updatedAt": stamp(when),
        "reason": reason or f"ECS deployment {deployment} {name.rsplit('_', 1)[-1].lower()}.",
    }
    event = envelope("ECS Deployment State Change", "aws.ecs", when, detail)
    event.update(
        account=account,
        region=region,
        resources=[f"arn:aws:ecs:{region}:{account}:service/{cluster}/{service}"],
    )
    return event


# --- CodePipeline answered from a model --------------------------------------------------------


@dataclass
class Action:
    """One action execution, as ListActionExecutions reports it."""

    stage: str
    name: str
    category: str
    provider: str
    status: str
    started: datetime
    updated: datetime | None = None
    variables: dict[str, str] = field(default_factory=dict)
    updated_by: str | None = None
    summary: str | None = None
    error: str | None = None

    def detail(self, execution: str) -> dict[str, Any]:
        result: dict[str, Any] = {}
        if self.summary:
            result["externalExecutionSummary"] = self.summary
        if self.error:
            result["errorDetails"] = {"code": "JobFailed", "message": self.error}
        out: dict[str, Any] = {
            "pipelineExecutionId": execution,
            "actionExecutionId": str(uuid.uuid5(uuid.NAMESPACE_URL, execution + self.name)),
            "stageName": self.stage,
            "actionName": self.name,
            "startTime": self.started.timestamp(),
            "lastUpdateTime": (self.updated or self.started).timestamp(),
            "status": self.status,
            "input": {
                "actionTypeId": {
                    "category": self.category,
                    "owner": "AWS",
                    "provider": self.provider,
                    "version": "1",
                }
            },
            "output": {"outputVariables": self.variables, "executionResult": result},
        }
        if self.updated_by:
            out["updatedBy"] = self.updated_by
        return out


@dataclass
class Execution:
    """One pipeline execution: summary, revision and actions."""

    id: str
    started: datetime
    status: str = "InProgress"
    updated: datetime | None = None
    sha: str | None = None
    committed: datetime | None = None
    message: str = "Retry card captures"
    trigger: str = "Webhook"
    rollback_target: str | None = None
    actions: list[Action] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "pipelineExecutionId": self.id,
            "status": self.status,
            "startTime": self.started.timestamp(),
            "lastUpdateTime": (self.updated or self.started).timestamp(),
            "trigger": {"triggerType": self.trigger},
        }

    def execution(self, pipeline: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "pipelineName": pipeline,
            "pipelineVersion": 3,
            "pipelineExecutionId": self.id,
            "status": self.status,
            "trigger": {"triggerType": self.trigger},
            "artifactRevisions": [],
        }
        if self.sha:
            out["artifactRevisions"].append(
                {
                    "name": "Source",
                    "revisionId": self.sha,
                    "revisionSummary": json.dumps(
                        {"ProviderType": "GitHub", "CommitMessage": self.message}
                    ),
                    "revisionUrl": f"https://github.com/acme/payment-processor/commit/{self.sha}",
                    "created": (self.committed or self.started).timestamp(),
                }
            )
        if self.rollback_target:
            out["rollbackMetadata"] = {"rollbackTargetPipelineExecutionId": self.rollback_target}
        return out


class FakeCodePipeline:
    """GetPipelineExecution, ListPipelineExecutions and ListActionExecutions answered from
    `executions`, at botocore's HTTP layer: requests are serialized and responses parsed by
    botocore as for the real service. moto has no ListActionExecutions and cannot give an
    execution its revisions or its actions' output variables; errors are injected with
    `inject_errors`, which answers first."""

    def __init__(self, client: Any, pipeline: str = PIPELINE) -> None:
        self.pipeline = pipeline
        self.executions: dict[str, Execution] = {}
        self.calls = CallLog(client)
        client.meta.events.register("before-send.codepipeline", self._answer)

    def add(self, execution: Execution) -> Execution:
        self.executions[execution.id] = execution
        return execution

    def _answer(self, request: Any, **_: Any) -> AWSResponse:
        operation = request.headers["X-Amz-Target"].decode().rsplit(".", 1)[-1]
        body = json.loads(request.body or b"{}")
        status, payload = 200, getattr(self, f"_{operation}")(body)
        if "__type" in payload:
            status = 400
        raw = json.dumps(payload).encode()
        headers = {"Content-Type": "application/x-amz-json-1.1"}
        return AWSResponse(request.url, status, headers, _Raw(raw))

    def _missing(self, execution_id: str) -> dict[str, Any]:
        return {
            "__type": "PipelineExecutionNotFoundException",
            "message": f"execution {execution_id} not found",
        }

    def _GetPipelineExecution(self, body: dict[str, Any]) -> dict[str, Any]:
        found = self.executions.get(body["pipelineExecutionId"])
        if found is None:
            return self._missing(body["pipelineExecutionId"])
        return {"pipelineExecution": found.execution(self.pipeline)}

    def _ListPipelineExecutions(self, body: dict[str, Any]) -> dict[str, Any]:
        ordered = sorted(self.executions.values(), key=lambda e: e.started, reverse=True)
        start = int(body.get("nextToken") or 0)
        size = int(body.get("maxResults") or 100)
        page = ordered[start : start + size]
        out: dict[str, Any] = {"pipelineExecutionSummaries": [e.summary() for e in page]}
        if start + size < len(ordered):
            out["nextToken"] = str(start + size)
        return out

    def _ListActionExecutions(self, body: dict[str, Any]) -> dict[str, Any]:
        execution_id = body["filter"]["pipelineExecutionId"]
        found = self.executions.get(execution_id)
        if found is None:
            return self._missing(execution_id)
        return {"actionExecutionDetails": [a.detail(execution_id) for a in found.actions]}


def throttle_codepipeline(client: Any, operation: str, *, times: int) -> dict[str, int]:
    """CodePipeline ThrottlingException for the first `times` attempts of `operation`."""
    return inject_errors(
        client,
        operation,
        times=times,
        status=400,
        body=b'{"__type":"ThrottlingException","message":"Rate exceeded"}',
        content_type="application/x-amz-json-1.1",
    )
