"""DORA metrics on a generated history whose answers are worked out by hand below."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from deployline.runtime import dora
from deployline.runtime.records import DeploymentRecord

SINCE = datetime(2026, 1, 1, tzinfo=UTC)
UNTIL = datetime(2026, 1, 11, tzinfo=UTC)  # a 10-day window


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


def deploy(
    execution: str,
    status: str,
    ended: datetime | None,
    *,
    committed: datetime | None = None,
    failed_at: datetime | None = None,
    rolled_back: bool = False,
    environment: str = "production",
) -> DeploymentRecord:
    return DeploymentRecord(
        execution_id=execution,
        environment=environment,
        status=status,
        started_at=(ended or at(10, 0)) - timedelta(minutes=20),
        ended_at=ended,
        production=environment == "production",
        committed_at=committed,
        failed_at=failed_at,
        rolled_back=rolled_back,
    )


HISTORY = [
    # E1 succeeds: lead time 10:00 - 08:00 = 2 h.
    deploy("E1", "succeeded", at(1, 10), committed=at(1, 8)),
    # E2 fails at 01-02 12:00: an outage starts.
    deploy("E2", "failed", at(2, 12), committed=at(2, 9), failed_at=at(2, 12)),
    # E3 succeeds at 14:00: lead 1 h; restores E2's outage after 2 h.
    deploy("E3", "succeeded", at(2, 14), committed=at(2, 13)),
    # E4 fails at 08:45 and is rolled back; E5 fails at 10:00 (the same outage).
    deploy("E4", "failed", at(3, 9), failed_at=at(3, 8, 45), rolled_back=True),
    deploy("E5", "failed", at(3, 10)),
    # E6 succeeds at 12:45: lead 12:45 - 10:30 = 2 h 15 m; restores after 4 h (from 08:45).
    deploy("E6", "succeeded", at(3, 12, 45), committed=at(3, 10, 30)),
    # E7 failed at 01:00, was retried and succeeded at 01:30: lead 1 h 30 m; restore 30 m.
    deploy("E7", "succeeded", at(5, 1, 30), committed=at(5, 0), failed_at=at(5, 1)),
    # E8 succeeds without a known commit time: counted, but no lead-time sample.
    deploy("E8", "succeeded", at(6, 9)),
    # Not deployments: stopped, superseded, still running.
    deploy("E9", "stopped", at(7, 9)),
    deploy("E10", "superseded", at(7, 10)),
    deploy("E11", "started", None),
    # Staging, and production outside the window: left out.
    deploy("E12", "failed", at(4, 9), environment="staging"),
    deploy("E0", "failed", datetime(2025, 12, 31, 23, 0, tzinfo=UTC)),
]


def test_four_metrics_on_a_known_history() -> None:
    metrics = dora.compute(HISTORY, since=SINCE, until=UNTIL)

    assert metrics.environment == "production"
    assert metrics.deployments == 8  # E1-E8
    assert (metrics.successful, metrics.failed) == (5, 3)  # E1 E3 E6 E7 E8 / E2 E4 E5
    assert metrics.deployment_frequency_per_day == pytest.approx(0.5)  # 5 successes / 10 days
    # Lead samples 3600 (E3), 5400 (E7), 7200 (E1), 8100 (E6): median (5400 + 7200) / 2.
    assert metrics.lead_time_seconds == pytest.approx(6300)
    assert metrics.lead_time_samples == 4
    assert metrics.change_failure_rate == pytest.approx(3 / 8)
    # Restores 1800 (E7), 7200 (E3), 14400 (E6): median 7200.
    assert metrics.time_to_restore_seconds == pytest.approx(7200)
    assert metrics.restores == 3


def test_restore_intervals_count_a_streak_of_failures_once_from_its_first() -> None:
    deployments = dora.select(HISTORY, since=SINCE, until=UNTIL)
    assert dora.restore_intervals(deployments) == [7200.0, 14400.0, 1800.0]


def test_no_deployments_means_no_data_not_zero() -> None:
    metrics = dora.compute([], since=SINCE, until=UNTIL)

    assert metrics.deployments == 0
    assert metrics.deployment_frequency_per_day is None
    assert metrics.lead_time_seconds is None
    assert metrics.change_failure_rate is None
    assert metrics.time_to_restore_seconds is None
    assert metrics.to_dict()["change_failure_rate"] is None


def test_only_failures_give_zero_frequency_and_full_failure_rate() -> None:
    failures = [deploy("F1", "failed", at(2, 9)), deploy("F2", "failed", at(3, 9))]

    metrics = dora.compute(failures, since=SINCE, until=UNTIL)

    assert metrics.deployment_frequency_per_day == 0.0
    assert metrics.change_failure_rate == 1.0
    assert metrics.lead_time_seconds is None
    assert metrics.time_to_restore_seconds is None  # never restored inside the window


def test_metrics_for_a_named_environment() -> None:
    metrics = dora.compute(HISTORY, since=SINCE, until=UNTIL, environment="staging")

    assert (metrics.environment, metrics.deployments, metrics.change_failure_rate) == (
        "staging",
        1,
        1.0,
    )


def test_restore_seconds_for_the_recorder() -> None:
    by_id = {r.execution_id: r for r in HISTORY}
    earlier = [by_id[e] for e in ("E1", "E2", "E3", "E4", "E5")]

    assert dora.restore_seconds(by_id["E6"], earlier) == 14400.0
    assert dora.restore_seconds(by_id["E3"], earlier[:2]) == 7200.0
    assert dora.restore_seconds(by_id["E1"], []) is None
    assert dora.restore_seconds(by_id["E7"], [by_id["E6"]]) == 1800.0
    assert dora.restore_seconds(by_id["E2"], earlier) is None  # a failure restores nothing


def test_window_must_not_end_before_it_starts() -> None:
    with pytest.raises(ValueError, match="must not be before since"):
        dora.compute(HISTORY, since=UNTIL, until=SINCE)


def test_a_stage_rollback_restores_service_but_adds_no_lead_time_sample() -> None:
    failed = deploy("R1", "failed", at(8, 10), committed=at(8, 9), failed_at=at(8, 10))
    rollback = replace(
        deploy("R2", "succeeded", at(8, 11), committed=at(1, 8)), trigger="AutomatedRollback"
    )

    metrics = dora.compute([failed, rollback], since=SINCE, until=UNTIL)

    # the rollback redeploys a week-old commit: no 7-day "lead time", one 1-hour restore
    assert (metrics.lead_time_samples, metrics.lead_time_seconds) == (0, None)
    assert (metrics.restores, metrics.time_to_restore_seconds) == (1, 3600.0)
    assert metrics.change_failure_rate == 0.5


def test_a_deployment_with_a_failed_ecs_deployment_is_a_change_failure() -> None:
    record = replace(deploy("F1", "succeeded", at(8, 10)), ecs_failed=True)

    assert (record.failed, record.succeeded) == (True, False)
    assert dora.compute([record], since=SINCE, until=UNTIL).change_failure_rate == 1.0
