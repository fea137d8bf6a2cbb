"""The deployment recorder: pipeline and CodeDeploy events in, deployment records and DORA
metrics out.

Invoked by EventBridge rules on "CodePipeline Pipeline Execution State Change", "CodePipeline
Stage Execution State Change", "CodePipeline Action Execution State Change" and "CodeDeploy
Deployment State-change Notification".

Environment:
    TABLE_NAME              the deployment table (required)
    METRICS_NAMESPACE       Default: deployline
    SERVICE_NAME            the service (dimension Service) (required)
    PIPELINE_NAME           events of other pipelines are ignored (required)
    ENVIRONMENTS            JSON list of {"name": env, "stage": its pipeline stage,
                            "deployment_group": its CodeDeploy group or null} (required)
    PRODUCTION_ENVIRONMENT  the environment the DORA metrics are about (Default: none flagged)

Per pipeline execution it keeps one record for the execution as a whole and one per environment
(see records.py for the key layout). EventBridge delivers at least once and in no particular
order, so every write merges: a state never replaces one of higher rank (STATUS_RANK), equal
ranks go to the later event ("time"), duplicates change nothing, and conditional writes make
concurrent invocations safe.

Extra facts come from the APIs: commit SHA, message and time from GetPipelineExecution's
artifactRevisions; approver and comment from ListActionExecutions (Manual approval actions);
image tag, URI and digest from the build action's output variables (IMAGE_TAG, IMAGE_URI,
IMAGE_DIGEST); rollbacks from CodeDeploy (a deployment whose rollbackInfo names a rollback, or a
rollback deployment). A CodeDeploy deployment is tied to its pipeline execution by the deploy
action's external execution ID; until that arrives, its facts wait on a link item.

When an environment's deployment ends (succeeded or failed) the recorder publishes, with
dimensions Service and Environment: DeploymentCount (1), DeploymentFailed (0 or 1),
LeadTimeSeconds (commit to success, when the commit time is known) and TimeToRestoreSeconds (when
a success ends a run of failures). Each ending is published once.

Unknown or malformed events are logged and ignored. AWS errors that outlast the clients' retries
raise, so Lambda's asynchronous retries (and the dead-letter queue) take over.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from . import clients, dora, records
from .records import FINAL_STATUSES, PIPELINE_SCOPE, DeploymentRecord, iso, parse_iso

PIPELINE_EXECUTION = "CodePipeline Pipeline Execution State Change"
STAGE_EXECUTION = "CodePipeline Stage Execution State Change"
ACTION_EXECUTION = "CodePipeline Action Execution State Change"
CODEDEPLOY_DEPLOYMENT = "CodeDeploy Deployment State-change Notification"

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
_CODEDEPLOY_PROVIDERS = {"CodeDeployToECS", "CodeDeploy"}
_IMAGE_VARIABLES = {
    "image_tag": "image_tag",
    "image_uri": "image_uri",
    "image_digest": "image_digest",
}
#: CloudWatch accepts data points up to two weeks old.
_MAX_METRIC_AGE = timedelta(days=14)

_log = clients.logger("recorder")


class SettingsError(ValueError):
    """The function's environment variables are wrong; the message names the fix."""


class EventError(ValueError):
    """An event this function cannot use (unknown type, missing fields)."""


@dataclass(frozen=True)
class EnvironmentSpec:
    """An environment the pipeline deploys: its name, stage and CodeDeploy group (if any)."""

    name: str
    stage: str
    deployment_group: str | None = None


@dataclass(frozen=True)
class RecorderSettings:
    """The recorder's configuration (see the module docstring)."""

    table_name: str
    service: str
    pipeline: str
    environments: tuple[EnvironmentSpec, ...]
    namespace: str = "deployline"
    production: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RecorderSettings:
        missing = [
            name
            for name in ("TABLE_NAME", "SERVICE_NAME", "PIPELINE_NAME", "ENVIRONMENTS")
            if not env.get(name, "").strip()
        ]
        if missing:
            raise SettingsError(f"environment variable(s) {missing} must be set")
        raw = env["ENVIRONMENTS"]
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SettingsError(
                f"ENVIRONMENTS is not valid JSON ({exc.msg}): {raw[:200]!r}"
            ) from None
        if not isinstance(value, list):
            raise SettingsError(
                'ENVIRONMENTS must be a JSON list like [{"name": "staging", "stage": '
                '"Deploy-staging", "deployment_group": null}]'
            )
        specs = []
        for index, entry in enumerate(value):
            if (
                not isinstance(entry, Mapping)
                or not isinstance(entry.get("name"), str)
                or not isinstance(entry.get("stage"), str)
                or not isinstance(entry.get("deployment_group"), (str, type(None)))
            ):
                raise SettingsError(
                    f"ENVIRONMENTS[{index}] must be an object with string name and stage and a "
                    f"string or null deployment_group, got {json.dumps(entry)[:200]}"
                )
            specs.append(
                EnvironmentSpec(entry["name"], entry["stage"], entry.get("deployment_group"))
            )
        production = env.get("PRODUCTION_ENVIRONMENT", "").strip() or None
        if production and production not in {s.name for s in specs}:
            raise SettingsError(
                f"PRODUCTION_ENVIRONMENT {production!r} is not one of the ENVIRONMENTS "
                f"{[s.name for s in specs]}"
            )
        return cls(
            table_name=env["TABLE_NAME"].strip(),
            service=env["SERVICE_NAME"].strip(),
            pipeline=env["PIPELINE_NAME"].strip(),
            environments=tuple(specs),
            namespace=env.get("METRICS_NAMESPACE", "").strip() or "deployline",
            production=production,
        )

    def by_stage(self, stage: str | None) -> EnvironmentSpec | None:
        return next((e for e in self.environments if e.stage == stage), None)

    def by_group(self, group: str | None) -> EnvironmentSpec | None:
        if not group:
            return None
        return next((e for e in self.environments if e.deployment_group == group), None)


@dataclass(frozen=True)
class Observation:
    """One fact about one record: a state at a time, fields to set, flags that stay true."""

    execution_id: str
    scope: str
    time: str
    status: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    flags: frozenset[str] = frozenset()
    deployment_id: str | None = None


def _later(a: str | None, b: str | None) -> str | None:
    return max(x for x in (a, b) if x) if (a or b) else None


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
            else:
                item.pop("ended_at", None)
        if obs.status == "failed":
            item["failed_at"] = min(item.get("failed_at") or obs.time, obs.time)
    if item.get("ended_at") and item.get("started_at"):
        seconds = (parse_iso(item["ended_at"]) - parse_iso(item["started_at"])).total_seconds()
        item["duration_seconds"] = max(int(seconds), 0)
    else:
        item.pop("duration_seconds", None)
    for name, value in obs.fields.items():
        if value is not None and value != "":
            item[name] = value
    for flag in obs.flags:
        item[flag] = True
    if obs.deployment_id:
        ids = set(item.get("deployment_ids") or ())
        ids.add(obs.deployment_id)
        item["deployment_ids"] = sorted(ids)
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


def _when(value: Any) -> str | None:
    if isinstance(value, datetime):
        return iso(value if value.tzinfo else value.replace(tzinfo=UTC))
    if isinstance(value, str) and value:
        try:
            return records.normalize_time(value)
        except ValueError:
            return None
    return None


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
        codedeploy: Any,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.dynamodb = dynamodb
        self.cloudwatch = cloudwatch
        self.codepipeline = codepipeline
        self.codedeploy = codedeploy
        self.sleep = sleep
        self.now = now

    # ---- entry point ---------------------------------------------------------------------

    def handle(self, event: Any) -> dict[str, Any]:
        """Record one EventBridge event. Returns what happened (for the log and the tests)."""
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
            if detail_type == CODEDEPLOY_DEPLOYMENT:
                return self._codedeploy_event(detail, when)
        except EventError as exc:
            return self._ignore(str(exc), detail_type)
        except (KeyError, TypeError, AttributeError) as exc:
            # A shape no documented event has: retrying would fail the same way.
            return self._ignore(f"malformed event ({type(exc).__name__}: {exc})", detail_type)
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
        """Merge `obs` into its record; publish metrics if an environment's deployment ended."""
        before, after = records.apply(
            self.dynamodb,
            self.settings.table_name,
            records.record_key(obs.execution_id, obs.scope),
            lambda existing: merge(existing, obs, self.settings),
            sleep=self.sleep,
        )
        current = after or before
        if current is not None and obs.scope != PIPELINE_SCOPE:
            self._publish_if_ended(current)
        return before, after

    # ---- CodePipeline ----------------------------------------------------------------------

    def _pipeline_event(self, detail: Mapping[str, Any], when: str) -> dict[str, Any]:
        execution_id = self._own_pipeline(detail)
        status = _status(detail)
        trigger = detail.get("execution-trigger")
        trigger_type = trigger.get("trigger-type") if isinstance(trigger, Mapping) else None
        _, after = self.observe(
            Observation(
                execution_id,
                PIPELINE_SCOPE,
                when,
                status,
                {"trigger": trigger_type if isinstance(trigger_type, str) else None},
            )
        )
        current = after or records.get_item(
            self.dynamodb,
            self.settings.table_name,
            records.record_key(execution_id, PIPELINE_SCOPE),
        )
        if current is not None and not current.get("revision_checked"):
            self._record_revision(execution_id, when)
        if status in FINAL_STATUSES:
            self._record_actions(execution_id, when)
        return {"result": "recorded" if after else "unchanged", "scope": PIPELINE_SCOPE}

    def _stage_event(self, detail: Mapping[str, Any], when: str) -> dict[str, Any]:
        execution_id = self._own_pipeline(detail)
        stage = _detail_str(detail, "stage")
        env = self.settings.by_stage(stage)
        if env is None:
            return {"result": "skipped", "reason": f"stage {stage!r} deploys no environment"}
        _, after = self.observe(Observation(execution_id, env.name, when, _status(detail)))
        return {"result": "recorded" if after else "unchanged", "scope": env.name}

    def _action_event(self, detail: Mapping[str, Any], when: str) -> dict[str, Any]:
        execution_id = self._own_pipeline(detail)
        state = _detail_str(detail, "state").upper()
        raw_type = detail.get("type")
        action_type: Mapping[str, Any] = raw_type if isinstance(raw_type, Mapping) else {}
        category = action_type.get("category")
        provider = action_type.get("provider")
        stage = detail.get("stage")
        done = []
        approval_done = category == "Approval" and state in ("SUCCEEDED", "FAILED")
        if approval_done or (category == "Build" and state == "SUCCEEDED"):
            done += self._record_actions(execution_id, when)
        result = detail.get("execution-result")
        external = result.get("external-execution-id") if isinstance(result, Mapping) else None
        env = self.settings.by_stage(stage if isinstance(stage, str) else None)
        if (
            category == "Deploy"
            and provider in _CODEDEPLOY_PROVIDERS
            and isinstance(external, str)
            and external
            and env is not None
        ):
            self._link_deployment(external, execution_id, env.name, when)
            done.append(f"linked {external}")
        if not done:
            return {"result": "skipped", "reason": f"nothing to record for {category} {state}"}
        return {"result": "recorded", "facts": done}

    def _record_revision(self, execution_id: str, when: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            execution = self.codepipeline.get_pipeline_execution(
                pipelineName=self.settings.pipeline, pipelineExecutionId=execution_id
            )["pipelineExecution"]
        except (ClientError, BotoCoreError) as exc:
            clients.log_json(_log, logging.WARNING, "GetPipelineExecution failed", error=repr(exc))
            return
        fields: dict[str, Any] = {"revision_checked": True}
        for revision in execution.get("artifactRevisions") or ():
            if not revision.get("revisionId"):
                continue
            fields["commit_sha"] = str(revision["revisionId"])
            fields["commit_url"] = revision.get("revisionUrl")
            fields["committed_at"] = _when(revision.get("created"))
            fields.update(parse_revision_summary(revision.get("revisionSummary")))
            break
        self.observe(Observation(execution_id, PIPELINE_SCOPE, when, fields=fields))

    def _action_details(self, execution_id: str) -> list[Mapping[str, Any]]:
        from botocore.exceptions import BotoCoreError, ClientError

        details: list[Mapping[str, Any]] = []
        kwargs: dict[str, Any] = {
            "pipelineName": self.settings.pipeline,
            "filter": {"pipelineExecutionId": execution_id},
            "maxResults": 100,
        }
        try:
            for _ in range(5):
                response = self.codepipeline.list_action_executions(**kwargs)
                details.extend(response.get("actionExecutionDetails") or ())
                if not response.get("nextToken"):
                    break
                kwargs["nextToken"] = response["nextToken"]
        except (ClientError, BotoCoreError) as exc:
            clients.log_json(_log, logging.WARNING, "ListActionExecutions failed", error=repr(exc))
        return details

    def _record_actions(self, execution_id: str, when: str) -> list[str]:
        """Approvals, image and source variables from ListActionExecutions."""
        done = []
        pipeline_fields: dict[str, Any] = {}
        for detail in self._action_details(execution_id):
            action_type = (detail.get("input") or {}).get("actionTypeId") or {}
            category = action_type.get("category")
            status = detail.get("status")
            output = detail.get("output") or {}
            variables = output.get("outputVariables") or {}
            lowered = {str(k).lower(): v for k, v in variables.items()}
            for key, name in _IMAGE_VARIABLES.items():
                if lowered.get(key):
                    pipeline_fields[name] = str(lowered[key])
            if category == "Source":
                if lowered.get("commitid"):
                    pipeline_fields.setdefault("commit_sha", str(lowered["commitid"]))
                if lowered.get("commitmessage"):
                    pipeline_fields.setdefault(
                        "commit_message", str(lowered["commitmessage"])[:1000]
                    )
                if lowered.get("authordate") and _when(lowered["authordate"]):
                    pipeline_fields.setdefault("committed_at", _when(lowered["authordate"]))
            if category == "Approval" and status in ("Succeeded", "Failed"):
                stage = detail.get("stageName")
                env = self.settings.by_stage(stage)
                scope = env.name if env else self.settings.production
                result = output.get("executionResult") or {}
                approval = {
                    "approver": detail.get("updatedBy"),
                    "approval_comment": result.get("externalExecutionSummary"),
                    "approval_status": "approved" if status == "Succeeded" else "rejected",
                    "approved_at": _when(detail.get("lastUpdateTime")) or when,
                }
                if scope:
                    self.observe(Observation(execution_id, scope, when, fields=approval))
                pipeline_fields.update(approval)
                done.append(f"approval {approval['approval_status']} in {stage}")
            if category == "Deploy" and action_type.get("provider") in _CODEDEPLOY_PROVIDERS:
                external = (output.get("executionResult") or {}).get("externalExecutionId")
                env = self.settings.by_stage(detail.get("stageName"))
                if external and env:
                    self._link_deployment(str(external), execution_id, env.name, when)
        if pipeline_fields:
            self.observe(Observation(execution_id, PIPELINE_SCOPE, when, fields=pipeline_fields))
            done.append("pipeline facts")
        return done

    # ---- CodeDeploy ------------------------------------------------------------------------

    def _link_deployment(
        self,
        deployment_id: str,
        execution_id: str | None,
        environment: str,
        when: str,
        *,
        rolled_back: bool = False,
        state: str | None = None,
    ) -> None:
        """Record what is known about a CodeDeploy deployment; once both its pipeline execution
        and a rollback are known, flag the environment record."""

        def mutate(existing: dict[str, Any] | None) -> dict[str, Any] | None:
            item = dict(existing or {})
            item["deployment_id"] = deployment_id
            item["deploy_environment"] = environment
            if execution_id:
                item["execution_id"] = execution_id
            if rolled_back:
                item["rolled_back"] = True
            if state:
                item["codedeploy_state"] = state
            same = {k: v for k, v in item.items() if k != "version"} == {
                k: v for k, v in (existing or {}).items() if k != "version"
            }
            return None if same else item

        before, after = records.apply(
            self.dynamodb,
            self.settings.table_name,
            records.deployment_key(deployment_id),
            mutate,
            sleep=self.sleep,
        )
        link = after or before or {}
        linked_execution = link.get("execution_id")
        if linked_execution:
            self.observe(
                Observation(
                    str(linked_execution),
                    str(link.get("deploy_environment", environment)),
                    when,
                    flags=frozenset({"rolled_back"}) if link.get("rolled_back") else frozenset(),
                    deployment_id=deployment_id,
                )
            )

    def _codedeploy_event(self, detail: Mapping[str, Any], when: str) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        deployment_id = _detail_str(detail, "deploymentId")
        group = _detail_str(detail, "deploymentGroup")
        state = _detail_str(detail, "state").upper()
        env = self.settings.by_group(group)
        if env is None:
            return {"result": "skipped", "reason": f"deployment group {group!r} is not ours"}
        info: Mapping[str, Any] = {}
        try:
            info = self.codedeploy.get_deployment(deploymentId=deployment_id).get(
                "deploymentInfo", {}
            )
        except (ClientError, BotoCoreError) as exc:
            clients.log_json(_log, logging.WARNING, "GetDeployment failed", error=repr(exc))
        rollback = info.get("rollbackInfo") or {}
        if info.get("creator") == "codeDeployRollback" and rollback.get(
            "rollbackTriggeringDeploymentId"
        ):
            # A rollback deployment: the deployment it undoes was rolled back.
            target = str(rollback["rollbackTriggeringDeploymentId"])
            self._link_deployment(target, None, env.name, when, rolled_back=True)
            return {"result": "recorded", "rolled_back": target}
        rolled_back = state in ("FAILURE", "STOP") and bool(rollback.get("rollbackDeploymentId"))
        self._link_deployment(
            deployment_id, None, env.name, when, rolled_back=rolled_back, state=state
        )
        return {"result": "recorded", "deployment": deployment_id, "rolled_back": rolled_back}

    # ---- metrics -----------------------------------------------------------------------------

    def _publish_if_ended(self, item: Mapping[str, Any]) -> None:
        status = item.get("status")
        if status not in ("succeeded", "failed") or not item.get("ended_at"):
            return
        marker = f"{status}@{item.get('status_time')}"
        if item.get("metrics_published") == marker:
            return
        environment = str(item[records.GSI_PK])
        execution_id = str(item["execution_id"])
        pipeline_item = records.get_item(
            self.dynamodb,
            self.settings.table_name,
            records.record_key(execution_id, PIPELINE_SCOPE),
        )
        record = DeploymentRecord.from_item(item, pipeline_item)
        ended = record.ended_at
        if ended is None:
            return
        extra: dict[str, Any] = {"metrics_published": marker}
        metrics: list[tuple[str, float, str]] = [
            ("DeploymentCount", 1.0, "Count"),
            ("DeploymentFailed", 1.0 if record.failed else 0.0, "Count"),
        ]
        if record.succeeded and record.committed_at:
            lead = max((ended - record.committed_at).total_seconds(), 0.0)
            metrics.append(("LeadTimeSeconds", lead, "Seconds"))
            extra["lead_time_seconds"] = int(lead)
        if record.succeeded and record.started_at:
            earlier = [
                DeploymentRecord.from_item(i)
                for i in records.previous_records(
                    self.dynamodb,
                    self.settings.table_name,
                    environment,
                    before=iso(record.started_at),
                )
            ]
            restore = dora.restore_seconds(record, earlier)
            if restore is not None:
                metrics.append(("TimeToRestoreSeconds", restore, "Seconds"))
                extra["time_to_restore_seconds"] = int(restore)
        if self.now() - ended <= _MAX_METRIC_AGE:
            dimensions = [
                {"Name": "Service", "Value": self.settings.service},
                {"Name": "Environment", "Value": environment},
            ]
            self.cloudwatch.put_metric_data(
                Namespace=self.settings.namespace,
                MetricData=[
                    {
                        "MetricName": name,
                        "Dimensions": dimensions,
                        "Timestamp": ended,
                        "Value": value,
                        "Unit": unit,
                    }
                    for name, value, unit in metrics
                ],
            )
        else:
            clients.log_json(
                _log, logging.WARNING, "deployment too old for CloudWatch metrics", ended=iso(ended)
            )

        def mark(existing: dict[str, Any] | None) -> dict[str, Any] | None:
            if existing is None or existing.get("metrics_published") == marker:
                return None
            if f"{existing.get('status')}@{existing.get('status_time')}" != marker:
                return None  # a newer state arrived; it publishes for itself
            existing.update(extra)
            return existing

        records.apply(
            self.dynamodb,
            self.settings.table_name,
            records.record_key(execution_id, environment),
            mark,
            sleep=self.sleep,
        )
        clients.log_json(
            _log,
            logging.INFO,
            "metrics published",
            environment=environment,
            execution_id=execution_id,
            metrics={name: value for name, value, _ in metrics},
        )


def _recorder_from_env(env: Mapping[str, str]) -> Recorder:
    settings = RecorderSettings.from_env(env)
    return Recorder(
        settings,
        dynamodb=clients.client("dynamodb"),
        cloudwatch=clients.client("cloudwatch"),
        codepipeline=clients.client("codepipeline"),
        codedeploy=clients.client("codedeploy"),
    )


def handle_events(recorder: Recorder, events: Sequence[Any]) -> list[dict[str, Any]]:
    """Record several events in order (replays, tests)."""
    return [recorder.handle(event) for event in events]


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Lambda entry point (EventBridge rule target)."""
    try:
        recorder = _recorder_from_env(os.environ)
    except SettingsError as exc:
        # Misconfiguration: retrying cannot help, and raising would only fill the DLQ.
        clients.log_json(_log, logging.ERROR, "recorder misconfigured", error=str(exc))
        return {"result": "misconfigured", "reason": str(exc)}
    outcome = recorder.handle(event)
    clients.log_json(
        _log,
        logging.INFO,
        "event handled",
        type=event.get("detail-type") if isinstance(event, Mapping) else None,
        **outcome,
    )
    return outcome
