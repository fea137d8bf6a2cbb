"""ECS service deployment events ("ECS Deployment State Change"), read into one shape.

ECS documents three events (Amazon ECS Developer Guide, "Amazon ECS service deployment state
change events"), each with `eventType`, `eventName`, `deploymentId`, `updatedAt` and `reason` in
its detail and the service's ARN in `resources`:

- `SERVICE_DEPLOYMENT_IN_PROGRESS`: a deployment started; a rollback deployment starts with the
  same event, told apart by its reason ("ECS deployment circuit breaker: rolling back to
  deploymentId ecs-svc/...");
- `SERVICE_DEPLOYMENT_COMPLETED`: the service reached a steady state;
- `SERVICE_DEPLOYMENT_FAILED`: the circuit breaker or a deployment alarm failed it (with rollback
  on, ECS then rolls back).

ECS names new events as its deployments grow (blue/green, canary and linear since 2025), so the
names are not matched one by one: a name or reason that speaks of a rollback marks a rollback, a
name with FAIL a failure, COMPLETED or SUCCE a success, IN_PROGRESS or START a start; any other
name is still an event of that deployment (phase "unknown"), recorded rather than dropped.

Standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: The EventBridge detail-type of every ECS service deployment event.
DETAIL_TYPE = "ECS Deployment State Change"
SOURCE = "aws.ecs"

#: Phases, in the order a deployment goes through them.
STARTED = "started"
SUCCEEDED = "succeeded"
FAILED = "failed"
UNKNOWN = "unknown"
PHASE_RANK = {UNKNOWN: 0, STARTED: 10, SUCCEEDED: 30, FAILED: 30}

_ROLLBACK_REASON = re.compile(r"roll(?:ing|ed)?[\s_-]*back", re.IGNORECASE)
_SERVICE_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):ecs:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"service/(?:(?P<cluster>[A-Za-z0-9_-]{1,255})/)?(?P<service>[A-Za-z0-9_-]{1,255})$"
)


class EcsEventError(ValueError):
    """Not a usable ECS deployment event; the message says what is missing."""


@dataclass(frozen=True)
class ServiceRef:
    """An ECS service as its ARN names it (old-format ARNs carry no cluster)."""

    account: str
    region: str
    cluster: str | None
    service: str

    @classmethod
    def parse(cls, arn: str) -> ServiceRef | None:
        match = _SERVICE_ARN.match(arn)
        if match is None:
            return None
        return cls(
            account=match["account"],
            region=match["region"],
            cluster=match["cluster"],
            service=match["service"],
        )


@dataclass(frozen=True)
class DeploymentEvent:
    """One ECS service deployment event.

    Attributes:
        deployment_id: ECS's ID of the deployment (`ecs-svc/...`).
        service: the service it deploys.
        phase: started, succeeded, failed or unknown (see the module docstring).
        rollback: the event tells of a rollback (a rollback deployment, or one rolled back).
        name: `eventName` as ECS sent it.
        reason: ECS's reason, if any.
    """

    deployment_id: str
    service: ServiceRef
    phase: str
    rollback: bool
    name: str
    reason: str | None

    def summary(self) -> dict[str, Any]:
        """What the record keeps of this event."""
        return {
            "phase": self.phase,
            "event": self.name,
            "reason": self.reason,
            "rollback": self.rollback,
        }


def classify(name: str, reason: str | None, event_type: str | None = None) -> tuple[str, bool]:
    """(phase, rollback) of an event name and reason; see the module docstring."""
    upper = name.upper()
    rollback = "ROLLBACK" in upper or "ROLLED_BACK" in upper
    rollback = rollback or bool(reason and _ROLLBACK_REASON.search(reason))
    if "FAIL" in upper:
        phase = FAILED
    elif "COMPLETE" in upper or "SUCCE" in upper:
        phase = SUCCEEDED
    elif "IN_PROGRESS" in upper or "START" in upper:
        phase = STARTED
    elif (event_type or "").upper() == "ERROR":
        phase = FAILED
    else:
        phase = UNKNOWN
    return phase, rollback


def parse(event: Mapping[str, Any]) -> DeploymentEvent:
    """Read an EventBridge event of type DETAIL_TYPE; EcsEventError names what is missing."""
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise EcsEventError("ECS event has no detail object")
    deployment_id = detail.get("deploymentId")
    if not isinstance(deployment_id, str) or not deployment_id:
        raise EcsEventError("ECS event detail has no 'deploymentId'")
    name = detail.get("eventName")
    if not isinstance(name, str) or not name:
        raise EcsEventError("ECS event detail has no 'eventName'")
    reason = detail.get("reason")
    reason = reason[:500] if isinstance(reason, str) and reason else None
    resources = event.get("resources")
    arns = [r for r in resources if isinstance(r, str)] if isinstance(resources, list) else []
    services = [s for s in (ServiceRef.parse(arn) for arn in arns) if s is not None]
    if not services:
        raise EcsEventError(f"ECS event names no service ARN in 'resources' (got {arns[:3]})")
    event_type = detail.get("eventType")
    phase, rollback = classify(name, reason, event_type if isinstance(event_type, str) else None)
    return DeploymentEvent(
        deployment_id=deployment_id,
        service=services[0],
        phase=phase,
        rollback=rollback,
        name=name,
        reason=reason,
    )
