"""Shared test doubles for the runtime handlers: a moto server over HTTP, a local health server
that answers 200, 500 or hangs, a fake clock and Lambda context, and helpers for the few AWS
calls moto does not implement (those use botocore's Stubber; each test says which)."""

from __future__ import annotations

import http.server
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
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
