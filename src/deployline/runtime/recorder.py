"""The deployment recorder: pipeline and ECS deployment events in, deployment records and DORA
metrics out.

Invoked by EventBridge rules on "CodePipeline Pipeline Execution State Change", "CodePipeline
Stage Execution State Change", "CodePipeline Action Execution State Change" (among them the
CloudFormation deploy of each environment) and "ECS Deployment State Change" of the
environments' services (forwarded to the pipeline's deployment event bus from other accounts and
regions).

Environment:
    TABLE_NAME              the deployment table (required)
    METRICS_NAMESPACE       Default: deployline
    SERVICE_NAME            the service (dimension Service) (required)
    PIPELINE_NAME           events of other pipelines are ignored (required)
    PIPELINE_ACCOUNT        the pipeline's account and region: the default of an environment's
    PIPELINE_REGION         (required)
    ENVIRONMENTS            JSON list of {"name", "stage" (its deploy stage), "approve_stage" (or
                            null), "cluster", "service", "account", "region" (null: the
                            pipeline's)} (required)
    PRODUCTION_ENVIRONMENT  the environment the DORA metrics are about (Default: none flagged)
    SELF_UPDATE_STAGE       the stage that updates the pipeline itself (Default: UpdatePipeline)
    GATE_ACTION             the security gate's action (Default: SecurityGate)

Per pipeline execution it keeps one record for the execution as a whole and one per environment
(records.py has the key layout). EventBridge delivers at least once and in no particular order,
so every write merges: a state never replaces one of higher rank (STATUS_RANK), equal ranks go to
the later event ("time"), duplicates change nothing, and conditional writes make concurrent
invocations safe.

What each source tells:
- the `Deploy-<env>` stage: the environment record's state (the CloudFormation deploy and the
  validation after it); its Deploy action: when the stack update ran;
- the execution: its state, trigger (a stage rollback's target), and whether a self-update
  cancelled it; GetPipelineExecution: the commit (SHA, message, time); ListActionExecutions:
  approvals (in `Approve-<env>` or the deploy stage), the image (IMAGE_TAG, IMAGE_URI,
  IMAGE_DIGEST of the build) and the security gate's summary;
- ECS: each service deployment (started, succeeded, failed, rolled back; ecs_events.py). An ECS
  deployment belongs to the execution whose Deploy action in the environment's stage ran when it
  happened (ListPipelineExecutions and ListActionExecutions say which; the answer is kept on a
  link item so later events of that deployment need no lookup). One that no execution covers was
  made outside the pipeline (`cdk deploy` from a laptop) and becomes a record of its own, so no
  deployment goes unrecorded.

When an environment's deployment ends (succeeded or failed) the ending is published once
(endings.py) with dimensions Service and Environment: DeploymentCount (1), DeploymentFailed
(0 or 1), LeadTimeSeconds (commit to success, when the commit time is known and the execution is
no stage rollback) and TimeToRestoreSeconds (when a success ends a run of failures).

Only malformed events are ignored (logged). AWS errors that outlast the clients' retries, missing
configuration and bugs raise, so Lambda's retries and then the dead-letter queue take over
(`deployline history redrive` replays it).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from . import clients, contract, dora, ecs_events, endings, records
from .deployment_links import DeploymentLinker, action_details
from .recorder_settings import EnvironmentSpec, RecorderSettings, SettingsError
from .records import FINAL_STATUSES, PIPELINE_SCOPE, DeploymentRecord, iso, parse_iso

__all__ = [
    "EnvironmentSpec",
    "EventError",
    "Observation",
    "Recorder",
    "RecorderSettings",
    "SettingsError",
    "handler",
    "merge",
]

PIPELINE_EXECUTION = "CodePipeline Pipeline Execution State Change"
STAGE_EXECUTION = "CodePipeline Stage Execution State Change"
ACTION_EXECUTION = "CodePipeline Action Execution State Change"
ECS_DEPLOYMENT = ecs_events.DETAIL_TYPE

_STATES = {
    "STARTED": "started",
    "RESUMED": "resumed",
    "STOPPING": "stopping",
    "SUCCEEDED": "succeeded",
    "FAILED": "failed",
    "STOPPED": "stopped",
    "CANCELED": "canceled",
    "CANCELLED": "canceled",
    "SUPERSEDED": "superseded",
}
_IMAGE_VARIABLES = ("image_tag", "image_uri", "image_digest")
_GATE_COUNTS = (*contract.SEVERITIES, "unverified")
_log = clients.logger("recorder")


class EventError(ValueError):
    """An event this function cannot use (unknown type, missing fields)."""


@dataclass(frozen=True)
class Observation:
    """One fact about one record: a state at a time, fields to set, fields to set only when
    missing, flags that stay true, and an ECS deployment event."""

    execution_id: str
    scope: str
    time: str
    status: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    flags: frozenset[str] = frozenset()
    deployment: ecs_events.DeploymentEvent | None = None


def _later(a: str | None, b: str | None) -> str | None:
    return max(x for x in (a, b) if x) if (a or b) else None


def _merge_status(item: dict[str, Any], obs: Observation, *, deployment: bool) -> None:
    """State and times; a `deployment` record (an environment's) also marks its endings."""
    # started_at: the earliest state change seen; another fact only stands in until one arrives.
    if obs.status:
        if item.get("started_provisional") or not item.get("started_at"):
            item["started_at"] = obs.time
            item.pop("started_provisional", None)
        else:
            item["started_at"] = min(item["started_at"], obs.time)
    elif not item.get("started_at"):
        item["started_at"] = obs.time
        item["started_provisional"] = True
    if obs.status:
        old = item.get("status")
        old_time = item.get("status_time") or ""
        new_rank, old_rank = records.status_rank(obs.status), records.status_rank(old)
        if (
            old is None
            or new_rank > old_rank
            or (new_rank == old_rank and obs.status != old and obs.time > old_time)
        ):
            item["status"] = obs.status
            item["status_time"] = obs.time
            if obs.status in FINAL_STATUSES:
                item["ended_at"] = obs.time
                if deployment:
                    endings.add_pending(item)
            else:
                item.pop("ended_at", None)
        if obs.status == "failed":
            item["failed_at"] = min(item.get("failed_at") or obs.time, obs.time)
    if item.get("ended_at") and item.get("started_at"):
        seconds = (parse_iso(item["ended_at"]) - parse_iso(item["started_at"])).total_seconds()
        item["duration_seconds"] = max(int(seconds), 0)
    else:
        item.pop("duration_seconds", None)


def _merge_deployment(item: dict[str, Any], event: ecs_events.DeploymentEvent, when: str) -> None:
    """Keep the furthest phase of each ECS deployment (the later event among equals)."""
    known = dict(item.get("ecs_deployments") or {})
    old = known.get(event.deployment_id) or {}
    new = {**event.summary(), "at": when}
    new["rollback"] = bool(old.get("rollback")) or event.rollback
    old_rank = ecs_events.PHASE_RANK.get(str(old.get("phase")), 0)
    new_rank = ecs_events.PHASE_RANK[event.phase]
    if old and (old_rank > new_rank or (old_rank == new_rank and str(old.get("at")) >= when)):
        new = {**old, "rollback": new["rollback"]}
    known[event.deployment_id] = new
    item["ecs_deployments"] = known
    item["deployment_ids"] = sorted(known)
    if event.rollback:
        item["rolled_back"] = True
    if event.phase == ecs_events.FAILED:
        item["ecs_failed"] = True
    if (event.rollback or event.phase == ecs_events.FAILED) and event.reason:
        item["deployment_reason"] = event.reason


def merge(
    existing: Mapping[str, Any] | None, obs: Observation, settings: RecorderSettings
) -> dict[str, Any] | None:
    """The record after `obs`, or None when `obs` changes nothing (a duplicate or stale event)."""
    item: dict[str, Any] = dict(existing or {})
    item["execution_id"] = obs.execution_id
    item[records.GSI_PK] = obs.scope
    item["pipeline"] = settings.pipeline
    item["service"] = settings.service
    if obs.scope != PIPELINE_SCOPE:
        item["production"] = obs.scope == settings.production
    _merge_status(item, obs, deployment=obs.scope != PIPELINE_SCOPE)
    for name, value in obs.fields.items():
        if value is not None and value != "":
            item[name] = value
    for name, value in obs.defaults.items():
        if value not in (None, "") and item.get(name) in (None, ""):
            item[name] = value
    for flag in obs.flags:
        item[flag] = True
    if obs.deployment is not None:
        _merge_deployment(item, obs.deployment, obs.time)
    if item.get("status") in ("canceled", "superseded", "stopped") and item.get(
        "self_update_started"
    ):
        item["canceled_by"] = "self-update"
    item["last_event_at"] = _later(item.get("last_event_at"), obs.time)
    comparable = {k: v for k, v in item.items() if k != "version"}
    previous = {k: v for k, v in (existing or {}).items() if k != "version"}
    for key in (records.TABLE_PK, records.TABLE_SK):
        comparable.pop(key, None)
        previous.pop(key, None)
    return None if comparable == previous else item


def _event_time(event: Mapping[str, Any]) -> str:
    raw = event.get("time")
    if not isinstance(raw, str):
        raise EventError("event has no 'time'")
    try:
        return records.normalize_time(raw)
    except ValueError as exc:
        raise EventError(str(exc)) from None


def _detail_str(detail: Mapping[str, Any], name: str) -> str:
    value = detail.get(name)
    if not isinstance(value, str) or not value:
        raise EventError(f"event detail has no {name!r}")
    return value


def _status(detail: Mapping[str, Any]) -> str:
    state = _detail_str(detail, "state")
    status = _STATES.get(state.upper())
    if status is None:
        raise EventError(f"unknown state {state!r}")
    return status


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def parse_revision_summary(summary: str | None) -> dict[str, str]:
    """Commit message and author from an artifact revision summary.

    Connections (GitHub, Bitbucket, GitLab) give JSON like {"ProviderType": "GitHub",
    "CommitMessage": "..."}; CodeCommit and S3 give plain text (the message, or the object's
    revision-summary metadata).
    """
    if not summary:
        return {}
    text = summary.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, Mapping):
            out = {}
            message = data.get("CommitMessage") or data.get("commitMessage")
            author = data.get("AuthorName") or data.get("Author") or data.get("author")
            if isinstance(message, str) and message.strip():
                out["commit_message"] = message.strip()[:1000]
            if isinstance(author, str) and author.strip():
                out["commit_author"] = author.strip()[:200]
            return out
    return {"commit_message": text[:1000]}


class Recorder:
    """Applies events to the table and publishes metrics. Clients are passed in (tests use moto
    and, where moto lacks an API, botocore's Stubber)."""

    def __init__(
        self,
        settings: RecorderSettings,
        *,
        dynamodb: Any,
        cloudwatch: Any,
        codepipeline: Any,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        lease: timedelta = endings.DEFAULT_LEASE,
    ) -> None:
        self.settings = settings
        self.dynamodb = dynamodb
        self.codepipeline = codepipeline
        self.sleep = sleep
        self.now = now
        self.links = DeploymentLinker(
            settings, dynamodb=dynamodb, codepipeline=codepipeline, sleep=sleep
        )
        self.publisher = endings.EndingPublisher(
            dynamodb=dynamodb,
            cloudwatch=cloudwatch,
            table=settings.table_name,
            namespace=settings.namespace,
            now=now,
            sleep=sleep,
            lease=lease,
        )

    # ---- entry point ---------------------------------------------------------------------

    def handle(self, event: Any) -> dict[str, Any]:
        """Record one EventBridge event. Returns what happened (for the log and the tests).

        Malformed events are ignored; AWS errors and bugs raise."""
        if not isinstance(event, Mapping):
            return self._ignore("event is not a JSON object", None)
        detail_type = event.get("detail-type")
        detail = event.get("detail")
        if not isinstance(detail, Mapping):
            return self._ignore("event has no detail object", detail_type)
        try:
            when = _event_time(event)
            if detail_type == PIPELINE_EXECUTION:
                return self._pipeline_event(detail, when)
            if detail_type == STAGE_EXECUTION:
                return self._stage_event(detail, when)
            if detail_type == ACTION_EXECUTION:
                return self._action_event(detail, when)
            if detail_type == ECS_DEPLOYMENT:
                return self._ecs_event(ecs_events.parse(event), when)
        except (EventError, ecs_events.EcsEventError) as exc:
            return self._ignore(str(exc), detail_type)
        return self._ignore("unknown detail-type", detail_type)

    def _ignore(self, reason: str, detail_type: Any) -> dict[str, Any]:
        clients.log_json(_log, logging.WARNING, "event ignored", reason=reason, type=detail_type)
        return {"result": "ignored", "reason": reason}

    def _own_pipeline(self, detail: Mapping[str, Any]) -> str:
        pipeline = _detail_str(detail, "pipeline")
        if pipeline != self.settings.pipeline:
            raise EventError(f"event of pipeline {pipeline!r}, not {self.settings.pipeline!r}")
        return _detail_str(detail, "execution-id")

    # ---- writes ----------------------------------------------------------------------------

    def observe(self, obs: Observation) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """Merge `obs` into its record; publish the endings of an environment's deployment."""
        before, after = records.apply(
            self.dynamodb,
            self.settings.table_name,
            records.record_key(obs.execution_id, obs.scope),
            lambda existing: merge(existing, obs, self.settings),
            sleep=self.sleep,
        )
        current = after or before
        if current is not None and obs.scope != PIPELINE_SCOPE:
            self._publish_endings(current, obs.time)
        return before, after

    # ---- CodePipeline ----------------------------------------------------------------------

    def _pipeline_event(self, detail: Mapping[str, Any], when: str) -> dict[str, Any]:
        execution_id = self._own_pipeline(detail)
        status = _status(detail)
        trigger = _mapping(detail.get("execution-trigger")).get("trigger-type")
        _, after = self.observe(
            Observation(
                execution_id,
                PIPELINE_SCOPE,
                when,
                status,
                {"trigger": trigger if isinstance(trigger, str) else None},
            )
        )
        self._ensure_revision(execution_id, when)
        if status in FINAL_STATUSES:
            self._record_actions(execution_id, when)
        return {"result": "recorded" if after else "unchanged", "scope": PIPELINE_SCOPE}

    def _stage_event(self, detail: Mapping[str, Any], when: str) -> dict[str, Any]:
        execution_id = self._own_pipeline(detail)
        stage = _detail_str(detail, "stage")
        status = _status(detail)
        env = self.settings.by_stage(stage)
        if env is None:
            return {"result": "skipped", "reason": f"stage {stage!r} deploys no environment"}
        _, after = self.observe(Observation(execution_id, env.name, when, status))
        return {"result": "recorded" if after else "unchanged", "scope": env.name}

    def _action_event(self, detail: Mapping[str, Any], when: str) -> dict[str, Any]:
        execution_id = self._own_pipeline(detail)
        state = _detail_str(detail, "state").upper()
        action_type = _mapping(detail.get("type"))
        category = action_type.get("category")
        stage = detail.get("stage")
        done = []
        if category == "Deploy" and stage == self.settings.self_update_stage:
            done.append(self._self_update(execution_id, state, when))
        env = self.settings.by_stage(stage)
        if category == "Deploy" and env is not None:
            done.append(self._deploy_action(execution_id, env, state, detail, when))
        approval_done = category == "Approval" and state in ("SUCCEEDED", "FAILED")
        if approval_done or (category == "Build" and state == "SUCCEEDED"):
            done += self._record_actions(execution_id, when)
        if not done:
            return {"result": "skipped", "reason": f"nothing to record for {category} {state}"}
        return {"result": "recorded", "facts": done}

    def _self_update(self, execution_id: str, state: str, when: str) -> str:
        fields: dict[str, Any] = {"self_update": state.lower()}
        flags = frozenset({"self_update_started"})
        self.observe(Observation(execution_id, PIPELINE_SCOPE, when, fields=fields, flags=flags))
        return f"self-update {state.lower()}"

    def _deploy_action(
        self,
        execution_id: str,
        env: EnvironmentSpec,
        state: str,
        detail: Mapping[str, Any],
        when: str,
    ) -> str:
        """The CloudFormation deploy of `env`: when it ran, and what it reported."""
        fields: dict[str, Any] = {}
        if state == "STARTED":
            fields["deploy_started_at"] = when
        else:
            fields["deploy_ended_at"] = when
            fields["deploy_state"] = state.lower()
        result = _mapping(detail.get("execution-result"))
        summary = result.get("external-execution-summary")
        if isinstance(summary, str) and summary:
            fields["deploy_summary"] = summary[:500]
        self.observe(Observation(execution_id, env.name, when, fields=fields))
        return f"deploy {state.lower()} in {env.name}"

    def _ensure_revision(self, execution_id: str, when: str) -> None:
        """Read the execution's commit once (GetPipelineExecution); errors raise."""
        current = records.get_item(
            self.dynamodb,
            self.settings.table_name,
            records.record_key(execution_id, PIPELINE_SCOPE),
        )
        if current is not None and current.get("revision_checked"):
            return
        execution = self.codepipeline.get_pipeline_execution(
            pipelineName=self.settings.pipeline, pipelineExecutionId=execution_id
        )["pipelineExecution"]
        fields: dict[str, Any] = {"revision_checked": True}
        for revision in execution.get("artifactRevisions") or ():
            if not revision.get("revisionId"):
                continue
            fields["commit_sha"] = str(revision["revisionId"])
            fields["commit_url"] = revision.get("revisionUrl")
            fields["committed_at"] = records.time_of(revision.get("created"))
            fields.update(parse_revision_summary(revision.get("revisionSummary")))
            break
        target = _mapping(execution.get("rollbackMetadata")).get(
            "rollbackTargetPipelineExecutionId"
        )
        fields["rollback_target"] = target if isinstance(target, str) else None
        trigger = _mapping(execution.get("trigger")).get("triggerType")
        defaults = {"trigger": trigger if isinstance(trigger, str) else None}
        self.observe(
            Observation(execution_id, PIPELINE_SCOPE, when, fields=fields, defaults=defaults)
        )

    def _record_actions(self, execution_id: str, when: str) -> list[str]:
        """Approvals, image, source and security gate facts from ListActionExecutions."""
        done = []
        pipeline_fields: dict[str, Any] = {}
        pipeline_defaults: dict[str, Any] = {}
        for detail in action_details(self.codepipeline, self.settings.pipeline, execution_id):
            action_type = _mapping(_mapping(detail.get("input")).get("actionTypeId"))
            category = action_type.get("category")
            output = _mapping(detail.get("output"))
            variables = _mapping(output.get("outputVariables"))
            lowered = {str(k).lower(): v for k, v in variables.items()}
            for name in _IMAGE_VARIABLES:
                if lowered.get(name):
                    pipeline_fields[name] = str(lowered[name])
            if category == "Source":
                pipeline_defaults.update(_source_facts(lowered))
            if lowered.get("security_summary"):
                pipeline_defaults["security"] = _gate_facts(lowered)
            elif detail.get("actionName") == self.settings.gate_action:
                failed = _failed_gate_facts(detail)
                if failed:
                    pipeline_defaults["security"] = failed
            if category == "Approval" and detail.get("status") in ("Succeeded", "Failed"):
                approval = self._approval(execution_id, detail, when)
                pipeline_fields.update(approval)
                done.append(f"approval {approval['approval_status']} in {detail.get('stageName')}")
        if pipeline_fields or pipeline_defaults:
            self.observe(
                Observation(
                    execution_id,
                    PIPELINE_SCOPE,
                    when,
                    fields=pipeline_fields,
                    defaults=pipeline_defaults,
                )
            )
            done.append("pipeline facts")
        return done

    def _approval(self, execution_id: str, detail: Mapping[str, Any], when: str) -> dict[str, Any]:
        env = self.settings.by_any_stage(detail.get("stageName"))
        scope = env.name if env else self.settings.production
        result = _mapping(_mapping(detail.get("output")).get("executionResult"))
        approval = {
            "approver": detail.get("updatedBy"),
            "approval_comment": result.get("externalExecutionSummary"),
            "approval_status": "approved" if detail.get("status") == "Succeeded" else "rejected",
            "approved_at": records.time_of(detail.get("lastUpdateTime")) or when,
        }
        if scope:
            self.observe(Observation(execution_id, scope, when, fields=approval))
        return approval

    # ---- ECS -----------------------------------------------------------------------------------

    def _ecs_event(self, event: ecs_events.DeploymentEvent, when: str) -> dict[str, Any]:
        env = self.settings.by_service(event.service)
        if env is None:
            ref = event.service
            return {
                "result": "skipped",
                "reason": f"service {ref.cluster}/{ref.service} in {ref.account} {ref.region} "
                "is not one of this pipeline's environments",
            }
        link = self.links.link(env, event, when)
        execution_id = str(link["execution_id"])
        outside = bool(link.get("outside_pipeline"))
        status = None
        if outside and not link.get("attached") and event.phase != ecs_events.UNKNOWN:
            status = event.phase
        fields = {"outside_pipeline": True} if outside else {}
        _, after = self.observe(
            Observation(execution_id, env.name, when, status, fields=fields, deployment=event)
        )
        return {
            "result": "recorded" if after else "unchanged",
            "scope": env.name,
            "execution_id": execution_id,
            "outside_pipeline": outside,
        }

    # ---- metrics -----------------------------------------------------------------------------

    def _publish_endings(self, item: Mapping[str, Any], when: str) -> None:
        open_ = endings.unpublished(item)
        if not open_:
            return
        environment = str(item[records.GSI_PK])
        execution_id = str(item["execution_id"])
        if not item.get("outside_pipeline"):
            self._ensure_revision(execution_id, when)
        dimensions = [
            {"Name": "Service", "Value": self.settings.service},
            {"Name": "Environment", "Value": environment},
        ]
        for ending in open_:
            self.publisher.publish(
                records.record_key(execution_id, environment),
                ending,
                self._metrics,
                dimensions,
            )

    def _metrics(self, item: Mapping[str, Any], ending: str) -> endings.Metrics:
        """What `ending` of the record `item` publishes."""
        status, _, at = ending.partition("@")
        execution_id = str(item["execution_id"])
        shared = records.get_item(
            self.dynamodb,
            self.settings.table_name,
            records.record_key(execution_id, PIPELINE_SCOPE),
        )
        record = DeploymentRecord.from_item(
            {**item, "status": status, "ended_at": at, "status_time": at}, shared
        )
        values: list[tuple[str, float, str]] = [
            ("DeploymentCount", 1.0, "Count"),
            ("DeploymentFailed", 1.0 if record.failed else 0.0, "Count"),
        ]
        facts: dict[str, Any] = {}
        ended = parse_iso(at)
        if record.succeeded and record.committed_at and not record.is_rollback_execution:
            lead = max((ended - record.committed_at).total_seconds(), 0.0)
            values.append(("LeadTimeSeconds", lead, "Seconds"))
            facts["lead_time_seconds"] = int(lead)
        if record.succeeded and record.started_at:
            restore = dora.restore_seconds(record, self._earlier(record))
            if restore is not None:
                values.append(("TimeToRestoreSeconds", restore, "Seconds"))
                facts["time_to_restore_seconds"] = int(restore)
        return endings.Metrics(timestamp=at, values=values, facts=facts)

    def _earlier(self, record: DeploymentRecord) -> list[DeploymentRecord]:
        """The environment's deployments before `record`, newest first, back to the first
        success (the start of the outage `record` may end)."""
        assert record.started_at is not None
        earlier: list[DeploymentRecord] = []
        for item in records.previous_records(
            self.dynamodb,
            self.settings.table_name,
            record.environment,
            before=iso(record.started_at),
        ):
            previous = DeploymentRecord.from_item(item)
            if previous.execution_id == record.execution_id:
                continue
            earlier.append(previous)
            if dora.is_deployment(previous) and not previous.failed:
                break
        return earlier


def _source_facts(variables: Mapping[str, Any]) -> dict[str, Any]:
    """Commit facts from a source action's output variables (used when GetPipelineExecution
    gave none)."""
    facts: dict[str, Any] = {}
    if variables.get("commitid"):
        facts["commit_sha"] = str(variables["commitid"])
    if variables.get("commitmessage"):
        facts["commit_message"] = str(variables["commitmessage"])[:1000]
    if variables.get("authordate") and records.time_of(variables["authordate"]):
        facts["committed_at"] = records.time_of(variables["authordate"])
    return facts


def _gate_facts(variables: Mapping[str, Any]) -> dict[str, Any]:
    """The security gate's summary from its output variables (a passing gate's; the gate also
    writes a fuller one itself)."""
    counts = {}
    for name in _GATE_COUNTS:
        try:
            counts[name.upper()] = int(str(variables.get(name, "")))
        except ValueError:
            continue
    return {
        "passed": True,
        "summary": str(variables["security_summary"])[:1000],
        "counts": counts,
        "source": "pipeline output variables",
    }


def _failed_gate_facts(detail: Mapping[str, Any]) -> dict[str, Any] | None:
    """A failing security gate's verdict from its failure message."""
    if detail.get("status") != "Failed":
        return None
    result = _mapping(_mapping(detail.get("output")).get("executionResult"))
    message = _mapping(result.get("errorDetails")).get("message") or result.get(
        "externalExecutionSummary"
    )
    if not isinstance(message, str) or not message:
        return None
    return {
        "passed": False,
        "summary": message.splitlines()[0][:1000],
        "source": "pipeline action result",
    }


def _recorder_from_env(env: Mapping[str, str], context: Any) -> Recorder:
    settings = RecorderSettings.from_env(env)
    lease = endings.DEFAULT_LEASE
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining):
        lease = timedelta(milliseconds=int(remaining())) + endings.LEASE_MARGIN
    return Recorder(
        settings,
        dynamodb=clients.client("dynamodb"),
        cloudwatch=clients.client("cloudwatch"),
        codepipeline=clients.client("codepipeline"),
        lease=lease,
    )


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Lambda entry point (EventBridge rule target). Misconfiguration and AWS errors raise, so
    the event is retried and then kept in the dead-letter queue."""
    try:
        recorder = _recorder_from_env(os.environ, context)
    except SettingsError as exc:
        clients.log_json(_log, logging.ERROR, "recorder misconfigured", error=str(exc))
        raise
    outcome = recorder.handle(event)
    clients.log_json(
        _log,
        logging.INFO,
        "event handled",
        type=event.get("detail-type") if isinstance(event, Mapping) else None,
        **outcome,
    )
    return outcome
