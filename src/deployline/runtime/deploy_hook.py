"""ECS lifecycle hook at POST_TEST_TRAFFIC_SHIFT: are the new (green) tasks healthy before
production traffic moves to them?

ECS invokes the function once it has moved all test traffic to the new service revision. The
function needs no network path to the tasks: it reads the test listener rule to find the target
group that receives all test traffic (the green tasks), and asks Elastic Load Balancing for the
health of that group's targets, which the load balancer measures on the health check path. So the
test listener may stay closed to everyone (`test_listener_cidrs`, default: nobody).

Event (from ECS): {"executionId", "lifecycleStage", "resourceArn", "executionDetails":
{"serviceArn", "targetServiceRevisionArn", ...}, "hookDetails" (optional)}.

Answer (the return value is the protocol):
    {"hookStatus": "SUCCEEDED"}  every registered target is healthy;
    {"hookStatus": "IN_PROGRESS", "callBackDelay": N, "hookDetails": {"deployline": {...}}}
                                 targets are still registering or passing their first checks,
                                 or ELB throttled: ECS invokes the function again after N seconds;
    {"hookStatus": "FAILED"}     a target is unhealthy, the deadline passed, or the event or the
                                 configuration is wrong: ECS rolls the deployment back.

State across invocations lives in hookDetails (`deployline.deadline`, epoch seconds, set by the
first invocation; `deployline.checks`): ECS passes back what an IN_PROGRESS answer returned.

Environment:
    TEST_RULE_ARN         the test listener rule ECS re-weights (required)
    DEADLINE_SECONDS      how long after the first invocation the targets may take to become
                          healthy. Default: 300
    CALLBACK_SECONDS      how long ECS waits before invoking again. Default: 15
    MIN_HEALTHY_TARGETS   healthy targets required. Default: 1

The function never raises: a raised error (or an answer without hookStatus) also rolls back, but
ECS then reports "HookStatus must not be null" instead of the reason, which is logged here.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from . import clients

HookStatus = Literal["SUCCEEDED", "FAILED", "IN_PROGRESS"]
#: The lifecycle stage this hook judges.
STAGE = "POST_TEST_TRAFFIC_SHIFT"
#: The key of the hook's own state inside hookDetails.
STATE_KEY = "deployline"
#: ELB error codes a later invocation may not see again: the hook answers IN_PROGRESS.
TRANSIENT_ERRORS = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalError",
    }
)
#: Target states that no longer count: the target is leaving the group.
LEAVING = frozenset({"draining", "unhealthy.draining"})

_log = clients.logger("deploy_hook")


class SettingsError(ValueError):
    """The function's environment variables are wrong; the message names the fix."""


class EventError(ValueError):
    """The event is not an ECS lifecycle hook invocation."""


@dataclass(frozen=True)
class HookSettings:
    """The hook's configuration, from its environment variables (see the module docstring)."""

    test_rule_arn: str
    deadline_seconds: int = 300
    callback_seconds: int = 15
    min_healthy_targets: int = 1

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> HookSettings:
        arn = env.get("TEST_RULE_ARN", "").strip()
        if ":listener-rule/app/" not in arn:
            raise SettingsError(
                "TEST_RULE_ARN must be the ARN of the test listener rule (arn:aws:"
                f"elasticloadbalancing:<region>:<account>:listener-rule/app/...), got {arn!r}"
            )
        return cls(
            test_rule_arn=arn,
            deadline_seconds=_int(env, "DEADLINE_SECONDS", 300, 10, 86_400),
            callback_seconds=_int(env, "CALLBACK_SECONDS", 15, 1, 900),
            min_healthy_targets=_int(env, "MIN_HEALTHY_TARGETS", 1, 1, 1000),
        )


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(
            f"{name} must be an integer from {low} to {high}, got {raw!r}"
        ) from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be an integer from {low} to {high}, got {value}")
    return value


@dataclass(frozen=True)
class HookEvent:
    """What the hook reads from an ECS lifecycle hook invocation."""

    execution_id: str
    stage: str
    service_arn: str
    revision_arn: str
    details: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, event: Any) -> HookEvent:
        if not isinstance(event, Mapping):
            raise EventError(f"expected a JSON object, got {type(event).__name__}")
        execution = event.get("executionDetails")
        if not isinstance(execution, Mapping):
            raise EventError("no executionDetails: is this an ECS lifecycle hook invocation?")
        values = {
            "executionId": event.get("executionId"),
            "lifecycleStage": event.get("lifecycleStage"),
            "executionDetails.serviceArn": execution.get("serviceArn"),
            "executionDetails.targetServiceRevisionArn": execution.get("targetServiceRevisionArn"),
        }
        missing = [name for name, value in values.items() if not isinstance(value, str)]
        if missing:
            raise EventError(f"missing {', '.join(missing)}")
        details = event.get("hookDetails")
        return cls(
            execution_id=str(event["executionId"]),
            stage=str(event["lifecycleStage"]),
            service_arn=str(execution["serviceArn"]),
            revision_arn=str(execution["targetServiceRevisionArn"]),
            details=details if isinstance(details, Mapping) else {},
        )


@dataclass(frozen=True)
class HookState:
    """What one invocation hands the next: the deadline and how many checks ran."""

    deadline: float
    checks: int

    @classmethod
    def next(cls, details: Mapping[str, Any], now: float, settings: HookSettings) -> HookState:
        """The state of this invocation: the deadline the first one set (now + the deadline
        when this is the first, or when what came back is not ours), one more check."""
        saved = details.get(STATE_KEY)
        deadline = saved.get("deadline") if isinstance(saved, Mapping) else None
        checks = saved.get("checks") if isinstance(saved, Mapping) else None
        if not isinstance(deadline, int | float) or isinstance(deadline, bool):
            return cls(deadline=now + settings.deadline_seconds, checks=1)
        return cls(
            deadline=float(deadline),
            checks=(checks if isinstance(checks, int) and checks >= 0 else 0) + 1,
        )

    def to_details(self) -> dict[str, Any]:
        return {STATE_KEY: {"deadline": round(self.deadline, 3), "checks": self.checks}}


@dataclass(frozen=True)
class HookOutcome:
    """The hook's answer and why."""

    status: HookStatus
    message: str
    callback_delay: int | None = None
    details: Mapping[str, Any] | None = None

    def response(self) -> dict[str, Any]:
        """The answer ECS reads: hookStatus, and for IN_PROGRESS callBackDelay and hookDetails."""
        answer: dict[str, Any] = {"hookStatus": self.status}
        if self.status == "IN_PROGRESS":
            answer["callBackDelay"] = self.callback_delay
            answer["hookDetails"] = dict(self.details or {})
        return answer


@dataclass(frozen=True)
class Verdict:
    """What the targets' health says: passed, failed, or not yet (pending)."""

    status: Literal["passed", "failed", "pending"]
    message: str


def group_name(target_group_arn: str) -> str:
    """`name` of arn:...:targetgroup/<name>/<id> (the ARN itself when it has no such part)."""
    parts = target_group_arn.split(":targetgroup/", 1)
    return parts[1].split("/", 1)[0] if len(parts) == 2 else target_group_arn


def test_target_group(elbv2: Any, rule_arn: str) -> tuple[str | None, str]:
    """(the target group that receives all test traffic, or None; why not)."""
    rules = elbv2.describe_rules(RuleArns=[rule_arn]).get("Rules", [])
    actions = rules[0].get("Actions", []) if rules else []
    forward = next((a for a in actions if a.get("Type") == "forward"), None)
    if forward is None:
        raise LookupError(f"the test listener rule {rule_arn} has no forward action")
    weighted = [
        (g["TargetGroupArn"], g.get("Weight", 1))
        for g in forward.get("ForwardConfig", {}).get("TargetGroups", [])
    ] or [(forward["TargetGroupArn"], 1)]
    receiving = [arn for arn, weight in weighted if weight > 0]
    if len(receiving) == 1:
        return receiving[0], ""
    split = ", ".join(f"{group_name(arn)}={weight}" for arn, weight in weighted)
    return None, f"test traffic is not on one target group yet ({split})"


def judge(descriptions: Sequence[Mapping[str, Any]], group: str, min_healthy: int) -> Verdict:
    """Passed when every target still in `group` is healthy (at least `min_healthy`), failed
    when one is unhealthy, pending otherwise."""
    active = [d for d in descriptions if d["TargetHealth"]["State"] not in LEAVING]
    for description in active:
        health = description["TargetHealth"]
        if health["State"] == "unhealthy":
            target = description["Target"]
            return Verdict(
                "failed",
                f"target {target['Id']}:{target.get('Port', '?')} in {group} is unhealthy: "
                f"{health.get('Reason', 'no reason given')} ({health.get('Description', '')}). "
                "ECS rolls back; look at the new tasks' logs and the health check path.",
            )
    healthy = sum(1 for d in active if d["TargetHealth"]["State"] == "healthy")
    if active and healthy == len(active) and healthy >= min_healthy:
        return Verdict("passed", f"all {healthy} target(s) in {group} are healthy")
    if not active:
        return Verdict("pending", f"no target registered in {group} yet")
    states = sorted({d["TargetHealth"]["State"] for d in active} - {"healthy"})
    return Verdict(
        "pending",
        f"{healthy} of {len(active)} target(s) in {group} healthy "
        f"(need {min_healthy}; others {', '.join(states) or 'too few'})",
    )


def check_targets(elbv2: Any, settings: HookSettings) -> Verdict:
    """Read the test listener rule, then the health of the group it sends all test traffic to."""
    group_arn, why = test_target_group(elbv2, settings.test_rule_arn)
    if group_arn is None:
        return Verdict("pending", why)
    descriptions = elbv2.describe_target_health(TargetGroupArn=group_arn).get(
        "TargetHealthDescriptions", []
    )
    return judge(descriptions, group_name(group_arn), settings.min_healthy_targets)


def _verdict_or_error(elbv2: Any, settings: HookSettings) -> Verdict:
    """check_targets, with ELB's errors turned into a verdict: transient ones pending, the rest
    failed (a missing rule or group, a denied call: the configuration is wrong)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return check_targets(elbv2, settings)
    except ClientError as exc:
        code = clients.error_code(exc)
        if code in TRANSIENT_ERRORS:
            return Verdict("pending", f"Elastic Load Balancing answered {code}; trying again")
        return Verdict(
            "failed",
            f"could not read the test listener rule or its target group ({code}: {exc}); "
            "check TEST_RULE_ARN and the hook role's elasticloadbalancing:DescribeRules and "
            "DescribeTargetHealth permissions",
        )
    except BotoCoreError as exc:  # connection errors after botocore's own retries
        return Verdict("pending", f"Elastic Load Balancing did not answer ({exc}); trying again")
    except LookupError as exc:
        return Verdict("failed", str(exc))


def run(
    raw_event: Any,
    *,
    elbv2: Any,
    env: Mapping[str, str],
    now: Callable[[], float] = time.time,
) -> HookOutcome:
    """Judge the green tasks once and answer. Never raises."""
    try:
        event = HookEvent.parse(raw_event)
    except EventError as exc:
        return HookOutcome("FAILED", f"not an ECS lifecycle hook event: {exc}")
    if event.stage != STAGE:
        return HookOutcome(
            "FAILED",
            f"this hook judges {STAGE} but ECS invoked it at {event.stage}: set the service's "
            f"lifecycle hook stages to [{STAGE}]",
        )
    try:
        settings = HookSettings.from_env(env)
    except SettingsError as exc:
        return HookOutcome("FAILED", f"the hook is misconfigured: {exc}")
    started = now()
    state = HookState.next(event.details, started, settings)
    try:
        verdict = _verdict_or_error(elbv2, settings)
    except Exception as exc:  # an unexpected answer: report it, never leave ECS without one
        verdict = Verdict("failed", f"the hook could not judge the targets: {exc!r}")
    if verdict.status == "passed":
        return HookOutcome("SUCCEEDED", verdict.message)
    if verdict.status == "failed":
        return HookOutcome("FAILED", verdict.message)
    if started + settings.callback_seconds > state.deadline:
        window = settings.deadline_seconds
        return HookOutcome(
            "FAILED",
            f"the new tasks were not healthy within {window}s of the first check "
            f"({state.checks} checks): {verdict.message}",
        )
    return HookOutcome(
        "IN_PROGRESS",
        verdict.message,
        callback_delay=settings.callback_seconds,
        details=state.to_details(),
    )


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Lambda entry point (ECS lifecycle hook)."""
    try:
        elbv2 = clients.client("elbv2")
    except Exception as exc:  # no region, no credentials: answer rather than raise
        outcome = HookOutcome(
            "FAILED", f"could not create the Elastic Load Balancing client: {exc}"
        )
    else:
        outcome = run(event, elbv2=elbv2, env=os.environ)
    execution = event.get("executionDetails", {}) if isinstance(event, Mapping) else {}
    clients.log_json(
        _log,
        logging.ERROR if outcome.status == "FAILED" else logging.INFO,
        f"{STAGE} hook: {outcome.status}",
        execution_id=event.get("executionId") if isinstance(event, Mapping) else None,
        service=execution.get("serviceArn") if isinstance(execution, Mapping) else None,
        revision=execution.get("targetServiceRevisionArn")
        if isinstance(execution, Mapping)
        else None,
        message=outcome.message,
    )
    return outcome.response()
