"""The four DORA metrics over deployment records: pure functions, no AWS.

Definitions (over the records of one environment, by default the production one, whose
deployment finished inside the window [since, until]):

- A **deployment** is a record whose final status is `succeeded` or `failed`: an environment's
  deploy stage in a pipeline execution, or an ECS service deployment made outside the pipeline.
  Stopped, canceled and superseded executions are left out: a person withdrew the change, a
  self-update restarted the pipeline, or it never deployed. A deployment with an ECS service
  deployment that failed or was rolled back counts as failed whatever the stage's final status.
- **Deployment frequency**: successful deployments per day of the window.
- **Lead time for changes**: median time from the commit (the source revision's time) to the
  successful deployment's end. Deployments whose commit time is unknown, and stage rollbacks
  (they redeploy an earlier commit), are left out.
- **Change failure rate**: failed (or rolled-back) deployments / all deployments, 0.0 to 1.0.
- **Time to restore service**: median time from a failed deployment to the end of the next
  successful one. A streak of failures counts once, from its first failure. A deployment that
  failed, was retried and then succeeded restores from its own first failure.

With no deployment in the window every metric is None ("no data"), never a division by zero;
with deployments but no success, frequency is 0.0 and lead time None.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .records import DeploymentRecord, iso

_SECONDS_PER_DAY = 86_400.0


def _finish(record: DeploymentRecord) -> datetime | None:
    return record.ended_at or record.started_at


def is_deployment(record: DeploymentRecord) -> bool:
    """A finished deployment: succeeded or failed (or rolled back)."""
    return record.status in ("succeeded", "failed") and _finish(record) is not None


def _failure_time(record: DeploymentRecord) -> datetime | None:
    return record.failed_at or record.ended_at or record.started_at


def select(
    records: Iterable[DeploymentRecord],
    *,
    since: datetime,
    until: datetime,
    environment: str | None = None,
) -> list[DeploymentRecord]:
    """Deployments of `environment` (Default: records flagged production) that finished in
    [since, until], oldest first."""
    chosen = []
    for record in records:
        if environment is not None and record.environment != environment:
            continue
        if environment is None and not record.production:
            continue
        finish = _finish(record)
        if not is_deployment(record) or finish is None or not since <= finish <= until:
            continue
        chosen.append(record)
    chosen.sort(key=lambda r: (_finish(r), r.execution_id))
    return chosen


def deployment_frequency(
    deployments: Sequence[DeploymentRecord], *, since: datetime, until: datetime
) -> float | None:
    """Successful deployments per day of [since, until]; None without deployments."""
    if not deployments:
        return None
    days = max((until - since).total_seconds() / _SECONDS_PER_DAY, 1 / 24)
    return sum(1 for d in deployments if d.succeeded) / days


def lead_time_samples(deployments: Sequence[DeploymentRecord]) -> list[float]:
    """Seconds from commit to the end of each successful deployment with a known commit time."""
    samples = []
    for record in deployments:
        if (
            record.succeeded
            and record.committed_at
            and record.ended_at
            and not record.is_rollback_execution
        ):
            samples.append(max((record.ended_at - record.committed_at).total_seconds(), 0.0))
    return samples


def change_failure_rate(deployments: Sequence[DeploymentRecord]) -> float | None:
    """Failed or rolled-back deployments / all deployments; None without deployments."""
    if not deployments:
        return None
    return sum(1 for d in deployments if d.failed) / len(deployments)


def restore_intervals(deployments: Sequence[DeploymentRecord]) -> list[float]:
    """Seconds from the first failure of each outage to the end of the success that ended it."""
    timeline: list[tuple[datetime, int, DeploymentRecord]] = []
    for record in deployments:
        if record.failed:
            failure = _failure_time(record)
            if failure is not None:
                timeline.append((failure, 0, record))
        elif record.succeeded and record.ended_at:
            if record.failed_at:
                timeline.append((record.failed_at, 0, record))
            timeline.append((record.ended_at, 1, record))
    timeline.sort(key=lambda entry: (entry[0], entry[1]))
    intervals = []
    outage_start: datetime | None = None
    for moment, kind, _record in timeline:
        if kind == 0:
            outage_start = outage_start or moment
        elif outage_start is not None:
            intervals.append(max((moment - outage_start).total_seconds(), 0.0))
            outage_start = None
    return intervals


def restore_seconds(success: DeploymentRecord, earlier: Sequence[DeploymentRecord]) -> float | None:
    """How long the outage that `success` ended lasted, given the environment's earlier
    deployments (any order); None when `success` ended no outage."""
    if not success.succeeded or success.ended_at is None:
        return None
    history = sorted(
        (r for r in earlier if is_deployment(r) and r.execution_id != success.execution_id),
        key=lambda r: (_finish(r), r.execution_id),
        reverse=True,
    )
    start: datetime | None = success.failed_at
    for record in history:
        if not record.failed:
            break
        failure = _failure_time(record)
        if failure is not None and (start is None or failure < start):
            start = failure
    if start is None:
        return None
    return max((success.ended_at - start).total_seconds(), 0.0)


@dataclass(frozen=True)
class DoraMetrics:
    """The four metrics for one environment over one window (None: no data)."""

    environment: str | None
    since: datetime
    until: datetime
    deployments: int
    successful: int
    failed: int
    deployment_frequency_per_day: float | None
    lead_time_seconds: float | None
    change_failure_rate: float | None
    time_to_restore_seconds: float | None
    lead_time_samples: int = 0
    restores: int = 0

    @property
    def window(self) -> timedelta:
        return self.until - self.since

    def to_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "since": iso(self.since),
            "until": iso(self.until),
            "deployments": self.deployments,
            "successful": self.successful,
            "failed": self.failed,
            "deployment_frequency_per_day": self.deployment_frequency_per_day,
            "lead_time_seconds": self.lead_time_seconds,
            "change_failure_rate": self.change_failure_rate,
            "time_to_restore_seconds": self.time_to_restore_seconds,
            "lead_time_samples": self.lead_time_samples,
            "restores": self.restores,
        }


def compute(
    records: Iterable[DeploymentRecord],
    *,
    since: datetime,
    until: datetime,
    environment: str | None = None,
) -> DoraMetrics:
    """All four metrics for `environment` (Default: the records flagged production)."""
    if until < since:
        raise ValueError(f"until ({iso(until)}) must not be before since ({iso(since)})")
    deployments = select(records, since=since, until=until, environment=environment)
    samples = lead_time_samples(deployments)
    intervals = restore_intervals(deployments)
    return DoraMetrics(
        environment=environment
        if environment is not None
        else next((d.environment for d in deployments), None),
        since=since,
        until=until,
        deployments=len(deployments),
        successful=sum(1 for d in deployments if d.succeeded),
        failed=sum(1 for d in deployments if d.failed),
        deployment_frequency_per_day=deployment_frequency(deployments, since=since, until=until),
        lead_time_seconds=float(statistics.median(samples)) if samples else None,
        change_failure_rate=change_failure_rate(deployments),
        time_to_restore_seconds=float(statistics.median(intervals)) if intervals else None,
        lead_time_samples=len(samples),
        restores=len(intervals),
    )
