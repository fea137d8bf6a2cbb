"""Pipeline watchdog: publishes how long the oldest pipeline execution has been running.

CodePipeline publishes no CloudWatch metric for a running execution, so nothing would notice an
execution that hangs (a deploy waiting forever on a task that never becomes healthy, an action
whose job worker died). This function runs on a schedule (every 5 minutes by default), lists the
pipeline's executions that are InProgress or Stopping, and publishes, in namespace
METRICS_NAMESPACE with dimensions Service and Pipeline:

- ``OldestExecutionAgeSeconds``: how long the oldest running execution has been running, not
  counting time spent waiting for a person: the clock starts at the execution's start or at its
  latest approval, whichever is later; executions waiting on a manual approval now are left out.
  0 when nothing runs.
- ``OldestApprovalWaitSeconds``: how long the oldest pending manual approval has been waiting.
- ``InProgressExecutions``: how many executions are running (waiting ones included).

The function always publishes all three, 0s included, so the alarm on OldestExecutionAgeSeconds
can treat missing data as breaching: a silent watchdog must not look like a healthy pipeline.
When it cannot list executions it fails without publishing, for the same reason.

Environment: PIPELINE_NAME, SERVICE_NAME (required), METRICS_NAMESPACE (Default: "deployline"),
MAX_PAGES (pages of 100 executions to scan, Default: 5). Standard library and boto3 only.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

#: Execution statuses that mean "still running".
RUNNING = frozenset({"InProgress", "Stopping"})
#: Default CloudWatch namespace.
DEFAULT_NAMESPACE = "deployline"
#: Default number of ListPipelineExecutions pages (100 executions each) to scan.
DEFAULT_MAX_PAGES = 5
#: Attempts per API call, the first included (botocore standard retry mode). Default: 4.
MAX_ATTEMPTS = 4
#: Seconds to connect to and to wait for an AWS endpoint. Defaults: 5 and 10.
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0

METRIC_OLDEST_EXECUTION = "OldestExecutionAgeSeconds"
METRIC_OLDEST_APPROVAL = "OldestApprovalWaitSeconds"
METRIC_IN_PROGRESS = "InProgressExecutions"

log = logging.getLogger("deployline.watchdog")
log.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())


@dataclass(frozen=True)
class Settings:
    """What the watchdog watches and where it publishes."""

    pipeline_name: str
    service_name: str
    namespace: str = DEFAULT_NAMESPACE
    max_pages: int = DEFAULT_MAX_PAGES

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read the settings, with a clear error for each missing or malformed variable."""
        missing = [name for name in ("PIPELINE_NAME", "SERVICE_NAME") if not env.get(name)]
        if missing:
            raise ValueError(
                f"environment variables {missing} must be set (PipelineMonitoring sets them); "
                "got none"
            )
        raw_pages = env.get("MAX_PAGES", str(DEFAULT_MAX_PAGES))
        try:
            max_pages = int(raw_pages)
        except ValueError:
            max_pages = 0
        if max_pages < 1:
            raise ValueError(f"MAX_PAGES must be a whole number of at least 1, got {raw_pages!r}")
        return cls(
            pipeline_name=env["PIPELINE_NAME"],
            service_name=env["SERVICE_NAME"],
            namespace=env.get("METRICS_NAMESPACE") or DEFAULT_NAMESPACE,
            max_pages=max_pages,
        )


@dataclass(frozen=True)
class Report:
    """What one run saw."""

    in_progress: int
    oldest_execution_seconds: float
    oldest_execution_id: str | None
    oldest_approval_wait_seconds: float
    awaiting_approval: int
    skipped: int
    truncated: bool


def _log(level: int, message: str, **fields: Any) -> None:
    log.log(level, json.dumps({"message": message, **fields}, default=str))


def _as_time(value: Any) -> datetime | None:
    """An aware datetime from boto3 (datetime) or JSON (ISO text); None when malformed."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def running_executions(
    codepipeline: Any, pipeline: str, *, max_pages: int
) -> tuple[list[dict[str, Any]], bool]:
    """The pipeline's InProgress/Stopping execution summaries, newest first.

    Scans at most `max_pages` pages of 100; the second value says whether it stopped early.
    """
    found: list[dict[str, Any]] = []
    token: str | None = None
    for _ in range(max_pages):
        kwargs: dict[str, Any] = {"pipelineName": pipeline, "maxResults": 100}
        if token:
            kwargs["nextToken"] = token
        page = codepipeline.list_pipeline_executions(**kwargs)
        found.extend(
            s
            for s in page.get("pipelineExecutionSummaries") or []
            if isinstance(s, dict) and s.get("status") in RUNNING
        )
        token = page.get("nextToken")
        if not token:
            return found, False
    return found, True


def _action_executions(codepipeline: Any, pipeline: str, execution_id: str) -> Iterator[Any]:
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {
            "pipelineName": pipeline,
            "filter": {"pipelineExecutionId": execution_id},
            "maxResults": 100,
        }
        if token:
            kwargs["nextToken"] = token
        page = codepipeline.list_action_executions(**kwargs)
        yield from page.get("actionExecutionDetails") or []
        token = page.get("nextToken")
        if not token:
            return


def _category(action: Any) -> str | None:
    try:
        category = action["input"]["actionTypeId"]["category"]
    except (KeyError, TypeError):
        return None
    return category if isinstance(category, str) else None


def measure(codepipeline: Any, settings: Settings, *, now: datetime) -> Report:
    """Look at every running execution; see the module docstring for what is measured."""
    executions, truncated = running_executions(
        codepipeline, settings.pipeline_name, max_pages=settings.max_pages
    )
    if truncated:
        _log(
            logging.WARNING,
            "stopped listing executions early; older running executions are not measured",
            pipeline=settings.pipeline_name,
            max_pages=settings.max_pages,
        )
    oldest, oldest_id, oldest_wait = 0.0, None, 0.0
    waiting, skipped = 0, 0
    for summary in executions:
        execution_id = summary.get("pipelineExecutionId")
        started = _as_time(summary.get("startTime"))
        if not isinstance(execution_id, str) or not execution_id or started is None:
            skipped += 1
            _log(logging.WARNING, "skipped a malformed execution summary", summary=summary)
            continue
        resumed = started
        pending: list[datetime] = []
        for action in _action_executions(codepipeline, settings.pipeline_name, execution_id):
            if not isinstance(action, dict) or _category(action) != "Approval":
                continue
            status = action.get("status")
            if status == "InProgress":
                asked = _as_time(action.get("startTime"))
                pending.append(asked or started)
            elif status == "Succeeded":
                approved = _as_time(action.get("lastUpdateTime"))
                if approved is not None and approved > resumed:
                    resumed = approved
        if pending:
            waiting += 1
            oldest_wait = max(oldest_wait, (now - min(pending)).total_seconds())
            continue
        age = max(0.0, (now - resumed).total_seconds())
        if age >= oldest:
            oldest, oldest_id = age, execution_id
    return Report(
        in_progress=len(executions) - skipped,
        oldest_execution_seconds=round(oldest, 3),
        oldest_execution_id=oldest_id,
        oldest_approval_wait_seconds=round(max(0.0, oldest_wait), 3),
        awaiting_approval=waiting,
        skipped=skipped,
        truncated=truncated,
    )


def publish(cloudwatch: Any, settings: Settings, report: Report, *, now: datetime) -> None:
    """Put the three metrics in one PutMetricData call."""
    dimensions = [
        {"Name": "Service", "Value": settings.service_name},
        {"Name": "Pipeline", "Value": settings.pipeline_name},
    ]
    cloudwatch.put_metric_data(
        Namespace=settings.namespace,
        MetricData=[
            {
                "MetricName": METRIC_OLDEST_EXECUTION,
                "Dimensions": dimensions,
                "Timestamp": now,
                "Value": report.oldest_execution_seconds,
                "Unit": "Seconds",
            },
            {
                "MetricName": METRIC_OLDEST_APPROVAL,
                "Dimensions": dimensions,
                "Timestamp": now,
                "Value": report.oldest_approval_wait_seconds,
                "Unit": "Seconds",
            },
            {
                "MetricName": METRIC_IN_PROGRESS,
                "Dimensions": dimensions,
                "Timestamp": now,
                "Value": float(report.in_progress),
                "Unit": "Count",
            },
        ],
    )


def run(
    *, codepipeline: Any, cloudwatch: Any, settings: Settings, now: datetime | None = None
) -> Report:
    """Measure, then publish. Raises (and publishes nothing) when the pipeline cannot be read."""
    moment = now or datetime.now(UTC)
    report = measure(codepipeline, settings, now=moment)
    publish(cloudwatch, settings, report, now=moment)
    _log(logging.INFO, "published pipeline watchdog metrics", **asdict(report))
    return report


def _client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        config=Config(
            retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
            user_agent_extra="deployline-watchdog",
        ),
    )


def handler(event: Mapping[str, Any] | None, context: Any) -> dict[str, Any]:
    """Lambda entry point (scheduled by EventBridge; the event's content is not used)."""
    settings = Settings.from_env(os.environ)
    report = run(
        codepipeline=_client("codepipeline"), cloudwatch=_client("cloudwatch"), settings=settings
    )
    return asdict(report)
