"""Which record an ECS service deployment belongs to.

An ECS deployment belongs to the pipeline execution whose Deploy action in the environment's
deploy stage ran when it happened: ListPipelineExecutions names the executions running around
that moment, ListActionExecutions when each one's Deploy action ran. The answer is written once
to the deployment's link item (the first writer's answer stands), so later events of that
deployment need no lookup. A deployment no execution covers was made outside the pipeline (a
`cdk deploy` from a laptop) and is a record of its own; a rollback ECS made outside the pipeline
joins the record of the outside deployment it undoes.

CodePipeline errors raise (the event is retried, then kept in the dead-letter queue) rather than
let a deployment be put down as "outside the pipeline" for want of an answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from . import ecs_events, records
from .recorder_settings import EnvironmentSpec, RecorderSettings
from .records import iso, parse_iso

#: An ECS event may be stamped this much before the Deploy action's recorded start.
CLOCK_SKEW = timedelta(seconds=60)
#: ECS events of a deploy may trail its Deploy action's end by this much (the last events of a
#: rollback).
DEPLOY_GRACE = timedelta(minutes=10)
#: Executions that started longer ago than this before an ECS event are not searched (a manual
#: approval times out after 7 days).
EXECUTION_HORIZON = timedelta(days=8)
#: Pages of 100 executions searched before the recorder refuses to guess.
MAX_EXECUTION_PAGES = 20
#: Pages of 100 action executions read for one execution.
MAX_ACTION_PAGES = 20
#: A rollback ECS made outside the pipeline belongs to the outside deployment it undoes if that
#: started this recently.
OUTSIDE_ROLLBACK_WINDOW = timedelta(hours=1)


def action_details(codepipeline: Any, pipeline: str, execution_id: str) -> list[Mapping[str, Any]]:
    """Every action execution of `execution_id`; errors, and more pages than
    MAX_ACTION_PAGES, raise."""
    details: list[Mapping[str, Any]] = []
    kwargs: dict[str, Any] = {
        "pipelineName": pipeline,
        "filter": {"pipelineExecutionId": execution_id},
        "maxResults": 100,
    }
    for _ in range(MAX_ACTION_PAGES):
        response = codepipeline.list_action_executions(**kwargs)
        details.extend(response.get("actionExecutionDetails") or ())
        if not response.get("nextToken"):
            return details
        kwargs["nextToken"] = response["nextToken"]
    raise records.IncompleteReadError(
        f"execution {execution_id} has more than {MAX_ACTION_PAGES * 100} action executions"
    )


@dataclass(frozen=True)
class DeployRun:
    """A Deploy action of one execution in one environment's stage, as ListActionExecutions
    reports it."""

    execution_id: str
    started: datetime
    ended: datetime | None

    def covers(self, moment: datetime) -> bool:
        if self.started - CLOCK_SKEW > moment:
            return False
        return self.ended is None or moment <= self.ended + DEPLOY_GRACE


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


class DeploymentLinker:
    """Finds, and remembers, the record each ECS deployment belongs to."""

    def __init__(
        self,
        settings: RecorderSettings,
        *,
        dynamodb: Any,
        codepipeline: Any,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.dynamodb = dynamodb
        self.codepipeline = codepipeline
        self.sleep = sleep

    def link(
        self, env: EnvironmentSpec, event: ecs_events.DeploymentEvent, when: str
    ) -> Mapping[str, Any]:
        """The record an ECS deployment belongs to: kept on its link item, found once."""
        key = records.deployment_key(env.name, event.deployment_id)
        link = records.get_item(self.dynamodb, self.settings.table_name, key)
        if link is not None:
            return link
        proposed: dict[str, Any] = {"deployment_id": event.deployment_id, "env": env.name}
        execution_id = self._execution_deploying(env, parse_iso(when))
        if execution_id is not None:
            proposed["execution_id"] = execution_id
        else:
            proposed["outside_pipeline"] = True
            undone = self._outside_deployment_undone(env, event, when)
            proposed["execution_id"] = undone or f"ecs:{event.deployment_id}"
            proposed["attached"] = undone is not None
        # The first writer's answer stands: concurrent events of one deployment agree on it.
        before, after = records.apply(
            self.dynamodb,
            self.settings.table_name,
            key,
            lambda existing: None if existing is not None else proposed,
            sleep=self.sleep,
        )
        return after or before or proposed

    def _execution_deploying(self, env: EnvironmentSpec, moment: datetime) -> str | None:
        """The execution whose Deploy action in `env`'s stage ran at `moment` (the latest to
        start, if several), or None. CodePipeline errors raise; so does a search that cannot
        reach EXECUTION_HORIZON within MAX_EXECUTION_PAGES."""
        runs = [
            run
            for execution_id in self._executions_around(moment)
            for run in self._deploy_runs(execution_id, env)
            if run.covers(moment)
        ]
        if not runs:
            return None
        return max(runs, key=lambda run: run.started).execution_id

    def _executions_around(self, moment: datetime) -> Iterator[str]:
        """IDs of executions that started before `moment` and ran until at least DEPLOY_GRACE
        before it (or still run), newest first."""
        horizon = moment - EXECUTION_HORIZON
        kwargs: dict[str, Any] = {"pipelineName": self.settings.pipeline, "maxResults": 100}
        for _ in range(MAX_EXECUTION_PAGES):
            page = self.codepipeline.list_pipeline_executions(**kwargs)
            reached_horizon = False
            for summary in page.get("pipelineExecutionSummaries") or ():
                started = records.moment_of(summary.get("startTime"))
                updated = records.moment_of(summary.get("lastUpdateTime")) or started
                execution_id = summary.get("pipelineExecutionId")
                if started is None or not isinstance(execution_id, str):
                    continue
                if started < horizon:
                    reached_horizon = True
                    continue
                running = summary.get("status") in ("InProgress", "Stopping")
                if started - CLOCK_SKEW <= moment and (
                    running or (updated is not None and updated + DEPLOY_GRACE >= moment)
                ):
                    yield execution_id
            if reached_horizon or not page.get("nextToken"):
                return
            kwargs["nextToken"] = page["nextToken"]
        raise records.IncompleteReadError(
            f"pipeline {self.settings.pipeline} has more than {MAX_EXECUTION_PAGES * 100} "
            f"executions in the {EXECUTION_HORIZON.days} days before {iso(moment)}; cannot tell "
            "which one deployed"
        )

    def _deploy_runs(self, execution_id: str, env: EnvironmentSpec) -> Iterator[DeployRun]:
        for detail in action_details(self.codepipeline, self.settings.pipeline, execution_id):
            action_type = _mapping(_mapping(detail.get("input")).get("actionTypeId"))
            if detail.get("stageName") != env.stage or action_type.get("category") != "Deploy":
                continue
            started = records.moment_of(detail.get("startTime"))
            if started is None:
                continue
            running = detail.get("status") == "InProgress"
            ended = (
                None if running else (records.moment_of(detail.get("lastUpdateTime")) or started)
            )
            yield DeployRun(execution_id, started, ended)

    def _outside_deployment_undone(
        self, env: EnvironmentSpec, event: ecs_events.DeploymentEvent, when: str
    ) -> str | None:
        """For a rollback ECS made outside the pipeline: the record of the outside deployment
        it undoes (the latest one of `env` that started within OUTSIDE_ROLLBACK_WINDOW)."""
        if not event.rollback:
            return None
        earliest = iso(parse_iso(when) - OUTSIDE_ROLLBACK_WINDOW)
        for item in records.previous_records(
            self.dynamodb, self.settings.table_name, env.name, before=when
        ):
            if str(item.get(records.GSI_SK, "")) < earliest:
                return None
            if item.get("outside_pipeline") and item.get("status") != "succeeded":
                return str(item["execution_id"])
        return None
