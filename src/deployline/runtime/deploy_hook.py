"""CodeDeploy AfterAllowTestTraffic hook for ECS blue/green: test the green tasks before
production traffic moves to them.

Event (from CodeDeploy): {"DeploymentId": "d-...", "LifecycleEventHookExecutionId": "..."}.

Environment:
    TEST_URL               base URL of the test listener, e.g. http://my-alb.elb.amazonaws.com:8080
                           (required)
    HEALTH_CHECK_PATH      Default: /health
    CHECK_TIMEOUT_SECONDS  how long the green tasks may take to pass. Default: 120 (bounded by
                           the invocation's remaining time)
    EXPECTED_STATUS        Default: 200
    REQUIRED_SUCCESSES     consecutive healthy answers required. Default: 3

The hook always reports PutLifecycleEventHookExecutionStatus, Succeeded or Failed, even when its
own configuration is wrong or it crashes: a hook that never reports holds the deployment until
CodeDeploy's one-hour hook timeout. A Failed status makes CodeDeploy stop and roll back.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from . import clients, http_check

#: Seconds kept free at the end of an invocation to report the status. Default: 5.
SAFETY_MARGIN = 5.0
#: Budget assumed when the handler runs without a Lambda context. Default: 60 s.
DEFAULT_BUDGET_MS = 60_000

_log = clients.logger("deploy_hook")


class SettingsError(ValueError):
    """The function's environment variables are wrong; the message names the fix."""


@dataclass(frozen=True)
class HookSettings:
    """The hook's configuration, from its environment variables (see the module docstring)."""

    test_url: str
    health_path: str = "/health"
    timeout_seconds: int = 120
    expected_status: int = 200
    required_successes: int = 3

    @property
    def health_url(self) -> str:
        return http_check.join_url(self.test_url, self.health_path)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> HookSettings:
        url = env.get("TEST_URL", "").strip()
        if not url:
            raise SettingsError(
                "TEST_URL is not set: set it to the test listener's base URL, e.g. "
                "http://my-alb.elb.amazonaws.com:8080"
            )
        try:
            http_check.check_url(url)
        except ValueError as exc:
            raise SettingsError(f"TEST_URL: {exc}") from None
        path = env.get("HEALTH_CHECK_PATH", "/health").strip() or "/health"
        if not path.startswith("/"):
            raise SettingsError(f"HEALTH_CHECK_PATH must start with '/', got {path!r}")
        return cls(
            test_url=url,
            health_path=path,
            timeout_seconds=_int(env, "CHECK_TIMEOUT_SECONDS", 120, 1, 3600),
            expected_status=_int(env, "EXPECTED_STATUS", 200, 100, 599),
            required_successes=_int(env, "REQUIRED_SUCCESSES", 3, 1, 20),
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
class HookOutcome:
    status: Literal["Succeeded", "Failed"]
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"status": self.status, "message": self.message}


def check_green(
    settings: HookSettings,
    *,
    budget_seconds: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    probe_timeout: float = http_check.PROBE_TIMEOUT,
) -> HookOutcome:
    """Probe the test listener until enough consecutive successes or the time is up."""
    window = max(0.0, min(float(settings.timeout_seconds), budget_seconds))
    result = http_check.wait_healthy(
        settings.health_url,
        deadline=clock() + window,
        expected_status=settings.expected_status,
        required=settings.required_successes,
        clock=clock,
        sleep=sleep,
        probe_timeout=probe_timeout,
    )
    if result.ok:
        return HookOutcome(
            "Succeeded",
            f"green tasks answered HTTP {settings.expected_status} at {settings.health_url} "
            f"{result.consecutive} times in a row",
        )
    return HookOutcome(
        "Failed",
        f"green tasks did not answer HTTP {settings.expected_status} at {settings.health_url} "
        f"{settings.required_successes} times in a row within {window:.0f}s: "
        f"{result.describe()}. CodeDeploy will roll back; look at the green task set's logs.",
    )


def run(
    event: Mapping[str, Any],
    *,
    codedeploy: Any,
    env: Mapping[str, str],
    remaining_ms: Callable[[], int],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    margin: float = SAFETY_MARGIN,
    probe_timeout: float = http_check.PROBE_TIMEOUT,
) -> HookOutcome:
    """Check the green tasks and report the hook's status. Raises only when the event has no
    IDs to report to, or when CodeDeploy refuses the report itself."""
    deployment_id = event.get("DeploymentId") if isinstance(event, Mapping) else None
    hook_id = event.get("LifecycleEventHookExecutionId") if isinstance(event, Mapping) else None
    if not isinstance(deployment_id, str) or not isinstance(hook_id, str):
        raise ValueError(
            "event is not a CodeDeploy lifecycle hook: expected DeploymentId and "
            "LifecycleEventHookExecutionId"
        )
    try:
        settings = HookSettings.from_env(env)
        budget = remaining_ms() / 1000.0 - margin
        outcome = check_green(
            settings,
            budget_seconds=budget,
            clock=clock,
            sleep=sleep,
            probe_timeout=probe_timeout,
        )
    except Exception as exc:  # report Failed whatever went wrong, never leave the hook pending
        outcome = HookOutcome("Failed", f"the hook could not check the green tasks: {exc}")
    clients.log_json(
        _log,
        logging.INFO if outcome.status == "Succeeded" else logging.ERROR,
        "AfterAllowTestTraffic",
        deployment_id=deployment_id,
        **outcome.to_dict(),
    )
    codedeploy.put_lifecycle_event_hook_execution_status(
        deploymentId=deployment_id,
        lifecycleEventHookExecutionId=hook_id,
        status=outcome.status,
    )
    return outcome


def handler(event: Mapping[str, Any], context: Any) -> dict[str, str]:
    """Lambda entry point (CodeDeploy lifecycle hook)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None) or (
        lambda: DEFAULT_BUDGET_MS
    )
    try:
        outcome = run(
            event, codedeploy=clients.client("codedeploy"), env=os.environ, remaining_ms=remaining
        )
    except ValueError as exc:
        clients.log_json(_log, logging.ERROR, "not a lifecycle hook event; ignored", error=str(exc))
        return {"status": "ignored", "message": str(exc)}
    return outcome.to_dict()
