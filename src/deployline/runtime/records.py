"""Deployment records: the DynamoDB table layout shared by the recorder, the gate and history.

Table key schema (FIXED: the CDK table is built from these constants):

- partition key `pk` (S): `EXECUTION#<pipeline execution ID>` for records (a deployment ECS made
  outside the pipeline has the execution ID `ecs:<ECS deployment ID>`),
  `DEPLOYMENT#<environment>#<ECS deployment ID>` for the items that link an ECS service
  deployment to the record it belongs to;
- sort key `sk` (S): `PIPELINE` for the record of the execution as a whole, `ENV#<environment>`
  for the record of one environment's deployment, `DEPLOYMENT` for a link item;
- global secondary index `by-environment`: partition key `environment` (S: the environment name,
  or `_pipeline` for whole-execution records), sort key `started_at` (S: ISO-8601 UTC,
  `YYYY-MM-DDTHH:MM:SSZ`, so strings sort in time order). Link items carry no `environment`,
  so the index holds records only.

Writes are optimistic: read, compute the new item, write it on condition that `version` is still
the one read (`apply`). Every writer (recorder, security gate) goes through it, so none overwrites
another's fields.

This module imports boto3 lazily: `deployline history` and the DORA functions use it offline.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

TABLE_PK = "pk"
TABLE_SK = "sk"
GSI_NAME = "by-environment"
GSI_PK = "environment"
GSI_SK = "started_at"

#: The `environment` of the record that describes a pipeline execution as a whole. Environment
#: names are kebab-case and start with a letter, so this never collides with one.
PIPELINE_SCOPE = "_pipeline"
EXECUTION_PREFIX = "EXECUTION#"
DEPLOYMENT_PREFIX = "DEPLOYMENT#"
PIPELINE_SK = "PIPELINE"
ENV_SK_PREFIX = "ENV#"
DEPLOYMENT_SK = "DEPLOYMENT"

#: How far a state has come. A state never replaces one of higher rank; between states of equal
#: rank the later event wins (a retried stage that FAILED then SUCCEEDED ends SUCCEEDED).
STATUS_RANK: dict[str, int] = {
    "started": 10,
    "resumed": 10,
    "stopping": 20,
    "succeeded": 30,
    "failed": 30,
    "stopped": 30,
    "canceled": 30,
    "superseded": 30,
}
FINAL_STATUSES = frozenset(s for s, rank in STATUS_RANK.items() if rank == 30)

_ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_JITTER = random.SystemRandom()


class ConcurrentUpdateError(RuntimeError):
    """A record kept changing under us: `apply` gave up after its attempts."""


class IncompleteReadError(RuntimeError):
    """DynamoDB kept part of a read back (UnprocessedKeys, or more pages than the caller allows):
    the caller must not act on a partial answer."""


# ---------------------------------------------------------------------------------------------
# Keys and times
# ---------------------------------------------------------------------------------------------


def record_key(execution_id: str, scope: str) -> dict[str, str]:
    """The key of the record of `execution_id` for an environment or PIPELINE_SCOPE."""
    if not execution_id:
        raise ValueError("execution_id must not be empty")
    sk = PIPELINE_SK if scope == PIPELINE_SCOPE else f"{ENV_SK_PREFIX}{scope}"
    return {TABLE_PK: f"{EXECUTION_PREFIX}{execution_id}", TABLE_SK: sk}


def deployment_key(environment: str, deployment_id: str) -> dict[str, str]:
    """The key of the item linking an ECS service deployment of `environment` to its record.

    ECS deployment IDs (`ecs-svc/...`) are unique per service, so the environment is part of
    the key."""
    if not environment or not deployment_id:
        raise ValueError(
            f"environment and deployment_id must not be empty, got {environment!r} and "
            f"{deployment_id!r}"
        )
    return {
        TABLE_PK: f"{DEPLOYMENT_PREFIX}{environment}#{deployment_id}",
        TABLE_SK: DEPLOYMENT_SK,
    }


def iso(moment: datetime) -> str:
    """`2024-05-01T12:00:00Z`: UTC, second precision, the one format the table stores."""
    if moment.tzinfo is None:
        raise ValueError(f"datetime must be timezone-aware, got {moment!r}")
    return moment.astimezone(UTC).strftime(_ISO_FORMAT)


def parse_iso(text: str) -> datetime:
    """Parse an ISO-8601 timestamp ("Z" or an offset; naive means UTC) into an aware datetime."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"expected an ISO-8601 timestamp, got {text!r}")
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"expected an ISO-8601 timestamp like 2024-05-01T12:00:00Z, got {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def normalize_time(text: str) -> str:
    """Any ISO-8601 timestamp in the table's format."""
    return iso(parse_iso(text))


def time_of(value: Any) -> str | None:
    """An API or event time (datetime, naive meaning UTC, or ISO-8601 text) in the table's
    format; None when it is missing or not a time."""
    if isinstance(value, datetime):
        return iso(value if value.tzinfo else value.replace(tzinfo=UTC))
    if isinstance(value, str) and value:
        try:
            return normalize_time(value)
        except ValueError:
            return None
    return None


def moment_of(value: Any) -> datetime | None:
    """`time_of` as an aware datetime."""
    text = time_of(value)
    return parse_iso(text) if text else None


def status_rank(status: str | None) -> int:
    return STATUS_RANK.get(status or "", 0)


# ---------------------------------------------------------------------------------------------
# Items <-> DynamoDB
# ---------------------------------------------------------------------------------------------


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, (str, int, Decimal)):
        return value
    if isinstance(value, float):
        return Decimal(str(round(value, 3)))
    if isinstance(value, Mapping):
        return {str(k): _to_dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_to_dynamo(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return [_to_dynamo(v) for v in sorted(value)]
    raise TypeError(f"cannot store {type(value).__name__} in a deployment record: {value!r}")


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_from_dynamo(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(_from_dynamo(v) for v in value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return value


def serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    """A plain item (str, int, float, bool, dict, list; None dropped) as DynamoDB attributes."""
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()
    return {k: serializer.serialize(_to_dynamo(v)) for k, v in item.items() if v is not None}


def deserialize(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB attributes as a plain item (numbers as int or float)."""
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    return {k: _from_dynamo(deserializer.deserialize(v)) for k, v in attributes.items()}


def get_item(dynamodb: Any, table: str, key: Mapping[str, str]) -> dict[str, Any] | None:
    """One item by key, strongly consistent, or None."""
    response = dynamodb.get_item(TableName=table, Key=serialize(key), ConsistentRead=True)
    item = response.get("Item")
    return deserialize(item) if item else None


def apply(
    dynamodb: Any,
    table: str,
    key: Mapping[str, str],
    mutate: Callable[[dict[str, Any] | None], dict[str, Any] | None],
    *,
    attempts: int = 8,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Read the item at `key`, let `mutate` compute its next state, write it conditionally.

    `mutate(existing)` returns the complete new item, or None to leave the item as it is (a
    duplicate or stale event). The write succeeds only if nobody wrote in between (`version`
    unchanged, or the item still absent); otherwise the cycle repeats, up to `attempts` times
    (Default: 8) with a short jittered pause. Returns (item before, item written or None).
    Raises ConcurrentUpdateError when every attempt lost the race.
    """
    from botocore.exceptions import ClientError

    for attempt in range(attempts):
        existing = get_item(dynamodb, table, key)
        proposed = mutate(None if existing is None else dict(existing))
        if proposed is None:
            return existing, None
        new = {k: v for k, v in proposed.items() if v is not None}
        new.update(key)
        version = int(existing.get("version", 0)) if existing else 0
        new["version"] = version + 1
        if existing is None:
            condition = "attribute_not_exists(#pk)"
            names = {"#pk": TABLE_PK}
            values: dict[str, Any] = {}
        elif "version" in existing:
            condition = "#version = :version"
            names = {"#version": "version"}
            values = serialize({":version": version})
        else:
            condition = "attribute_exists(#pk) AND attribute_not_exists(#version)"
            names = {"#pk": TABLE_PK, "#version": "version"}
            values = {}
        kwargs: dict[str, Any] = {
            "TableName": table,
            "Item": serialize(new),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
        }
        if values:
            kwargs["ExpressionAttributeValues"] = values
        try:
            dynamodb.put_item(**kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            sleep(min(0.05 * (2**attempt), 1.0) * _JITTER.uniform(0.5, 1.0))
            continue
        return existing, new
    raise ConcurrentUpdateError(
        f"item {dict(key)} in table {table} changed on each of {attempts} attempts to update it"
    )


def store_security_summary(
    dynamodb: Any,
    table: str,
    *,
    execution_id: str,
    pipeline: str | None,
    summary: Mapping[str, Any],
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any] | None:
    """Attach the security gate's summary to the record of the execution as a whole."""

    def mutate(existing: dict[str, Any] | None) -> dict[str, Any] | None:
        item = existing or {
            "execution_id": execution_id,
            GSI_PK: PIPELINE_SCOPE,
        }
        if pipeline and not item.get("pipeline"):
            item["pipeline"] = pipeline
        if item.get("security") == dict(summary):
            return None
        item["security"] = dict(summary)
        return item

    _, written = apply(
        dynamodb, table, record_key(execution_id, PIPELINE_SCOPE), mutate, sleep=sleep
    )
    return written


# ---------------------------------------------------------------------------------------------
# Reading records
# ---------------------------------------------------------------------------------------------


def _pages(call: Callable[..., Mapping[str, Any]], **kwargs: Any) -> Iterator[dict[str, Any]]:
    while True:
        response = call(**kwargs)
        for raw in response.get("Items", []):
            yield deserialize(raw)
        last = response.get("LastEvaluatedKey")
        if not last:
            return
        kwargs["ExclusiveStartKey"] = last


def query_environment(
    dynamodb: Any, table: str, environment: str, *, since: str, until: str | None = None
) -> list[dict[str, Any]]:
    """Records of one environment (or PIPELINE_SCOPE) that started in [since, until]."""
    names = {"#env": GSI_PK, "#start": GSI_SK}
    if until is None:
        condition = "#env = :env AND #start >= :since"
        values = {":env": environment, ":since": since}
    else:
        condition = "#env = :env AND #start BETWEEN :since AND :until"
        values = {":env": environment, ":since": since, ":until": until}
    return list(
        _pages(
            dynamodb.query,
            TableName=table,
            IndexName=GSI_NAME,
            KeyConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=serialize(values),
            ScanIndexForward=False,
        )
    )


def previous_records(
    dynamodb: Any, table: str, environment: str, *, before: str, page_size: int = 25
) -> Iterator[dict[str, Any]]:
    """Records of `environment` that started at or before `before`, newest first, page by page
    (`page_size` items a page, Default: 25) for as long as the caller keeps reading."""
    return _pages(
        dynamodb.query,
        TableName=table,
        IndexName=GSI_NAME,
        KeyConditionExpression="#env = :env AND #start <= :before",
        ExpressionAttributeNames={"#env": GSI_PK, "#start": GSI_SK},
        ExpressionAttributeValues=serialize({":env": environment, ":before": before}),
        ScanIndexForward=False,
        Limit=page_size,
    )


def scan_records(
    dynamodb: Any, table: str, *, since: str, until: str | None = None
) -> list[dict[str, Any]]:
    """Every record (all environments and whole executions) that started in [since, until]."""
    condition = "begins_with(#pk, :prefix) AND #start >= :since"
    values: dict[str, Any] = {":prefix": EXECUTION_PREFIX, ":since": since}
    if until is not None:
        condition += " AND #start <= :until"
        values[":until"] = until
    return list(
        _pages(
            dynamodb.scan,
            TableName=table,
            FilterExpression=condition,
            ExpressionAttributeNames={"#pk": TABLE_PK, "#start": GSI_SK},
            ExpressionAttributeValues=serialize(values),
        )
    )


def get_pipeline_records(
    dynamodb: Any,
    table: str,
    execution_ids: Iterable[str],
    *,
    rounds: int = 8,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, dict[str, Any]]:
    """The whole-execution records of `execution_ids`, by execution ID (BatchGetItem).

    Keys DynamoDB leaves unprocessed are asked for again, up to `rounds` times (Default: 8) with
    a growing pause; if some are still unprocessed, raises IncompleteReadError rather than
    return part of the answer."""
    ids = sorted(set(execution_ids))
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 100):
        keys = [serialize(record_key(i, PIPELINE_SCOPE)) for i in ids[start : start + 100]]
        request: dict[str, Any] = {table: {"Keys": keys}}
        for attempt in range(rounds):
            response = dynamodb.batch_get_item(RequestItems=request)
            for raw in response.get("Responses", {}).get(table, []):
                item = deserialize(raw)
                if item.get("execution_id"):
                    found[str(item["execution_id"])] = item
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
            if attempt + 1 < rounds:
                sleep(min(0.1 * (2**attempt), 2.0))
        if request:
            left = len(request.get(table, {}).get("Keys", []))
            raise IncompleteReadError(
                f"DynamoDB left {left} of {len(keys)} execution record(s) of table {table} "
                f"unprocessed after {rounds} rounds; try again (the table is being throttled)"
            )
    return found


# ---------------------------------------------------------------------------------------------
# The record as callers see it
# ---------------------------------------------------------------------------------------------

#: Fields of the whole-execution record that every environment record of the execution shares.
SHARED_FIELDS = (
    "commit_sha",
    "commit_message",
    "commit_author",
    "commit_url",
    "committed_at",
    "image_tag",
    "image_digest",
    "image_uri",
    "security",
    "trigger",
    "rollback_target",
)

#: Execution triggers of a CodePipeline stage rollback: the execution redeploys an earlier
#: execution's commit, so it restores service but is no new change (no lead time).
ROLLBACK_TRIGGERS = frozenset({"AutomatedRollback", "ManualRollback"})


def _time(item: Mapping[str, Any], name: str) -> datetime | None:
    value = item.get(name)
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_iso(value)
    except ValueError:
        return None


def _text(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    return str(value) if value not in (None, "") else None


@dataclass(frozen=True)
class DeploymentRecord:
    """One environment's deployment in one pipeline execution (or the execution as a whole)."""

    execution_id: str
    environment: str
    status: str | None
    started_at: datetime | None
    ended_at: datetime | None = None
    pipeline: str | None = None
    service: str | None = None
    production: bool = False
    duration_seconds: float | None = None
    commit_sha: str | None = None
    commit_message: str | None = None
    commit_author: str | None = None
    commit_url: str | None = None
    committed_at: datetime | None = None
    image_tag: str | None = None
    image_digest: str | None = None
    image_uri: str | None = None
    approver: str | None = None
    approval_comment: str | None = None
    approval_status: str | None = None
    approved_at: datetime | None = None
    rolled_back: bool = False
    ecs_failed: bool = False
    failed_at: datetime | None = None
    trigger: str | None = None
    rollback_target: str | None = None
    outside_pipeline: bool = False
    canceled_by: str | None = None
    deployment_reason: str | None = None
    security: Mapping[str, Any] | None = None
    deployment_ids: tuple[str, ...] = field(default_factory=tuple)

    @property
    def failed(self) -> bool:
        """A change failure: the deployment failed, ECS failed one of its service deployments,
        or ECS rolled one back."""
        return self.status == "failed" or self.rolled_back or self.ecs_failed

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded" and not self.rolled_back and not self.ecs_failed

    @property
    def is_rollback_execution(self) -> bool:
        """A CodePipeline stage rollback: it redeploys an earlier execution's commit."""
        return self.trigger in ROLLBACK_TRIGGERS

    @classmethod
    def from_item(
        cls, item: Mapping[str, Any], shared: Mapping[str, Any] | None = None
    ) -> DeploymentRecord:
        """Build from a table item; `shared` (the whole-execution item) fills missing fields."""
        merged = dict(item)
        for name in SHARED_FIELDS:
            if merged.get(name) in (None, "") and shared and shared.get(name) not in (None, ""):
                merged[name] = shared[name]
        started = _time(merged, "started_at")
        ended = _time(merged, "ended_at")
        duration = merged.get("duration_seconds")
        if not isinstance(duration, (int, float)) and started and ended:
            duration = (ended - started).total_seconds()
        security = merged.get("security")
        ids = merged.get("deployment_ids") or ()
        return cls(
            execution_id=str(merged.get("execution_id", "")),
            environment=str(merged.get(GSI_PK, "")),
            status=_text(merged, "status"),
            started_at=started,
            ended_at=ended,
            pipeline=_text(merged, "pipeline"),
            service=_text(merged, "service"),
            production=bool(merged.get("production", False)),
            duration_seconds=float(duration) if isinstance(duration, (int, float)) else None,
            commit_sha=_text(merged, "commit_sha"),
            commit_message=_text(merged, "commit_message"),
            commit_author=_text(merged, "commit_author"),
            commit_url=_text(merged, "commit_url"),
            committed_at=_time(merged, "committed_at"),
            image_tag=_text(merged, "image_tag"),
            image_digest=_text(merged, "image_digest"),
            image_uri=_text(merged, "image_uri"),
            approver=_text(merged, "approver"),
            approval_comment=_text(merged, "approval_comment"),
            approval_status=_text(merged, "approval_status"),
            approved_at=_time(merged, "approved_at"),
            rolled_back=bool(merged.get("rolled_back", False)),
            ecs_failed=bool(merged.get("ecs_failed", False)),
            failed_at=_time(merged, "failed_at"),
            trigger=_text(merged, "trigger"),
            rollback_target=_text(merged, "rollback_target"),
            outside_pipeline=bool(merged.get("outside_pipeline", False)),
            canceled_by=_text(merged, "canceled_by"),
            deployment_reason=_text(merged, "deployment_reason"),
            security=dict(security) if isinstance(security, Mapping) else None,
            deployment_ids=tuple(str(i) for i in ids) if isinstance(ids, (list, tuple)) else (),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: times as ISO-8601 strings, absent values as null."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, datetime):
                value = iso(value)
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            out[name] = value
        return out


def join_records(
    items: Sequence[Mapping[str, Any]], shared: Mapping[str, Mapping[str, Any]] | None = None
) -> list[DeploymentRecord]:
    """Environment records, each filled from its execution's whole-execution record.

    `shared` maps execution IDs to whole-execution items; whole-execution items found in `items`
    are used too. Returns environment records only, newest first.
    """
    by_execution: dict[str, Mapping[str, Any]] = dict(shared or {})
    for item in items:
        if item.get(GSI_PK) == PIPELINE_SCOPE and item.get("execution_id"):
            by_execution.setdefault(str(item["execution_id"]), item)
    records = [
        DeploymentRecord.from_item(item, by_execution.get(str(item.get("execution_id", ""))))
        for item in items
        if item.get(GSI_PK) not in (None, PIPELINE_SCOPE)
        and str(item.get(TABLE_PK, EXECUTION_PREFIX)).startswith(EXECUTION_PREFIX)
    ]
    epoch = datetime.min.replace(tzinfo=UTC)
    records.sort(key=lambda r: (r.started_at or epoch, r.execution_id), reverse=True)
    return records
