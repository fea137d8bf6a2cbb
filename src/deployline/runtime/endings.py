"""Each deployment ending published once: pending, claimed, published.

An ending is `<status>@<status time>` of an environment's record (a failed stage retried to
success has two). The write that gives a record its final status also marks the ending
`pending` in the record's `endings` map, in the same conditional write, so no ending can be
forgotten between "the deployment ended" and "its metrics went out". Then:

1. **claim**: a conditional write (`records.apply`: it succeeds only if nobody wrote the record
   in between) turns the ending `claimed`, with a token, a lease and the metrics to publish.
   Of concurrent invocations exactly one claims; another that finds the claim held raises
   ClaimHeldError, and its retry finds the ending published.
2. **publish**: PutMetricData with the metrics stored in the claim. If it fails the claim is
   released (conditional on the token) and the error raised, so the retry claims again.
3. **confirm**: `published`, conditional on the token, retried; facts computed for the ending
   (lead time, time to restore) are written with it.

What cannot be told apart is a claimer that died (timeout, crash) between its claim and its
confirmation: nobody knows whether PutMetricData went through. Once its lease has run out (its
remaining Lambda time plus a margin, so it cannot still be running) the next invocation that
reads the record takes the claim over and publishes the same metrics. Losing an ending would
hide a failed deployment from its alarm; publishing one twice needs the publisher to die, or
DynamoDB to refuse its confirmation through every retry, in the moment after PutMetricData.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from . import clients, records

PENDING = "pending"
CLAIMED = "claimed"
PUBLISHED = "published"
#: CloudWatch accepts data points up to two weeks old.
MAX_METRIC_AGE = timedelta(days=14)
#: How long a claim outlives its claimer's deadline before another invocation may take it over.
LEASE_MARGIN = timedelta(seconds=30)
#: Default lease when the claimer's deadline is unknown (tests, `deployline history redrive`).
DEFAULT_LEASE = timedelta(minutes=2)

_log = clients.logger("recorder")


class ClaimHeldError(RuntimeError):
    """Another invocation holds the claim on an ending and its lease has not run out: retry
    later (by then it is published, or the lease is over and the claim can be taken over)."""


def marker(status: str, status_time: str) -> str:
    return f"{status}@{status_time}"


def add_pending(item: dict[str, Any]) -> None:
    """Mark the item's current ending pending, unless it is known already (called from the
    write that gives the item a final status)."""
    status, when = item.get("status"), item.get("status_time")
    if status not in ("succeeded", "failed") or not when:
        return
    key = marker(status, when)
    endings = dict(item.get("endings") or {})
    if key in endings or item.get("metrics_published") == key:
        return
    endings[key] = {"state": PENDING}
    item["endings"] = endings


def unpublished(item: Mapping[str, Any]) -> list[str]:
    """Endings of `item` not known to be published: pending, or claimed (publishing one that is
    claimed raises ClaimHeldError until its lease lapses, so the event is retried rather than
    trusting a claimer that may have died)."""
    return sorted(
        key
        for key, state in (item.get("endings") or {}).items()
        if isinstance(state, Mapping) and state.get("state") in (PENDING, CLAIMED)
    )


def _lapsed(state: Mapping[str, Any], now: datetime) -> bool:
    lease = state.get("lease_until")
    return not isinstance(lease, str) or records.parse_iso(lease) <= now


@dataclass(frozen=True)
class Metrics:
    """What an ending publishes: metrics (name, value, unit) at `timestamp`, and facts to write
    on the record when they are out."""

    timestamp: str
    values: Sequence[tuple[str, float, str]]
    facts: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class EndingPublisher:
    """Claims, publishes and confirms endings of the records in one table.

    Attributes:
        dimensions: the metric dimensions of a record (Service and Environment).
        lease: how long a claim holds, counted from the claim (Default: DEFAULT_LEASE).
    """

    dynamodb: Any
    cloudwatch: Any
    table: str
    namespace: str
    now: Callable[[], datetime]
    sleep: Callable[[float], None] = time.sleep
    lease: timedelta = DEFAULT_LEASE
    confirm_attempts: int = 5

    def publish(
        self,
        key: Mapping[str, str],
        ending: str,
        compute: Callable[[Mapping[str, Any], str], Metrics],
        dimensions: Sequence[Mapping[str, str]],
    ) -> str:
        """Publish `ending` of the record at `key` once. `compute(record, ending)` gives its metrics
        (called at claim time, so a takeover publishes the same ones). Returns what happened:
        "published", "published earlier" or "too old to publish"."""
        token = uuid.uuid4().hex
        claimed = self._claim(key, ending, token, compute)
        if claimed is None:
            return "published earlier"
        metrics = Metrics(
            timestamp=str(claimed["timestamp"]),
            values=[(str(n), float(v), str(u)) for n, v, u in claimed["values"]],
            facts=dict(claimed.get("facts") or {}),
        )
        moment = records.parse_iso(metrics.timestamp)
        too_old = self.now() - moment > MAX_METRIC_AGE
        if not too_old:
            try:
                self._put(metrics, moment, dimensions)
            except Exception:
                self._release(key, ending, token)
                raise
        self._confirm(key, ending, token, metrics.facts)
        clients.log_json(
            _log,
            logging.INFO,
            "deployment ending published" if not too_old else "deployment too old for metrics",
            ending=ending,
            key=dict(key),
            metrics={name: value for name, value, _ in metrics.values},
        )
        return "too old to publish" if too_old else "published"

    # ---- the three writes ---------------------------------------------------------------------

    def _claim(
        self,
        key: Mapping[str, str],
        ending: str,
        token: str,
        compute: Callable[[Mapping[str, Any], str], Metrics],
    ) -> dict[str, Any] | None:
        now = self.now()
        outcome: dict[str, Any] = {}

        def mutate(existing: dict[str, Any] | None) -> dict[str, Any] | None:
            outcome.clear()
            if existing is None:
                raise LookupError(f"no record at {dict(key)} to publish {ending} of")
            endings = dict(existing.get("endings") or {})
            state = endings.get(ending)
            if existing.get("metrics_published") == ending or (
                isinstance(state, Mapping) and state.get("state") == PUBLISHED
            ):
                return None
            if isinstance(state, Mapping) and state.get("state") == CLAIMED:
                if not _lapsed(state, now):
                    outcome["held"] = state
                    return None
                outcome["took_over"] = state.get("token")
                metrics = {k: state[k] for k in ("timestamp", "values", "facts") if k in state}
            else:
                computed = compute(existing, ending)
                metrics = {
                    "timestamp": computed.timestamp,
                    "values": [[n, v, u] for n, v, u in computed.values],
                    "facts": dict(computed.facts),
                }
            endings[ending] = {
                "state": CLAIMED,
                "token": token,
                "lease_until": records.iso(now + self.lease),
                **metrics,
            }
            existing["endings"] = endings
            outcome["claim"] = endings[ending]
            return existing

        records.apply(self.dynamodb, self.table, key, mutate, sleep=self.sleep)
        if "held" in outcome:
            raise ClaimHeldError(
                f"ending {ending} of {dict(key)} is being published by another invocation "
                f"(lease until {outcome['held'].get('lease_until')}); retry later"
            )
        if outcome.get("took_over"):
            clients.log_json(
                _log,
                logging.WARNING,
                "took over a lapsed claim: its claimer stopped before confirming",
                ending=ending,
                key=dict(key),
            )
        claim: dict[str, Any] | None = outcome.get("claim")
        return claim

    def _put(
        self, metrics: Metrics, moment: datetime, dimensions: Sequence[Mapping[str, str]]
    ) -> None:
        self.cloudwatch.put_metric_data(
            Namespace=self.namespace,
            MetricData=[
                {
                    "MetricName": name,
                    "Dimensions": [dict(d) for d in dimensions],
                    "Timestamp": moment,
                    "Value": value,
                    "Unit": unit,
                }
                for name, value, unit in metrics.values
            ],
        )

    def _release(self, key: Mapping[str, str], ending: str, token: str) -> None:
        def mutate(existing: dict[str, Any] | None) -> dict[str, Any] | None:
            state = ((existing or {}).get("endings") or {}).get(ending)
            if existing is None or not isinstance(state, Mapping) or state.get("token") != token:
                return None
            existing["endings"] = {**existing["endings"], ending: {"state": PENDING}}
            return existing

        try:
            records.apply(self.dynamodb, self.table, key, mutate, sleep=self.sleep)
        except Exception as exc:  # the lease lapses instead; the caller raises the first error
            clients.log_json(
                _log, logging.ERROR, "could not release a claim", ending=ending, error=repr(exc)
            )

    def _confirm(
        self, key: Mapping[str, str], ending: str, token: str, facts: Mapping[str, Any]
    ) -> None:
        def mutate(existing: dict[str, Any] | None) -> dict[str, Any] | None:
            state = ((existing or {}).get("endings") or {}).get(ending)
            if existing is None or not isinstance(state, Mapping) or state.get("token") != token:
                return None  # taken over after our lease: the taker confirms
            existing["endings"] = {**existing["endings"], ending: {"state": PUBLISHED}}
            existing["metrics_published"] = ending
            existing.update(facts)
            return existing

        for attempt in range(self.confirm_attempts):
            try:
                records.apply(self.dynamodb, self.table, key, mutate, sleep=self.sleep)
                return
            except Exception as exc:
                if attempt + 1 == self.confirm_attempts:
                    # Raising would only make a retry wait for the lease and publish again.
                    clients.log_json(
                        _log,
                        logging.ERROR,
                        "metrics published but not confirmed; the claim stays until its lease "
                        "lapses",
                        ending=ending,
                        key=dict(key),
                        error=repr(exc),
                    )
                    return
                self.sleep(min(0.5 * (2**attempt), 5.0))
