"""Post-deploy validation: a CodePipeline Lambda invoke action that runs after each deploy.

UserParameters (a JSON object), naming the environment's stack:

    {"stack_name": "payment-processor-service-staging",   # the environment stack
     "region": "eu-west-1",                               # Default: the function's own
     "role_arn": "arn:aws:iam::222222222222:role/cdk-hnb659fds-lookup-role-222222222222-eu-west-1",
                                      # read-only role in the environment's account; Default: none
     "health_path": "/health",        # Default: /health
     "expected_image": "111111111111.dkr.ecr.us-east-1.amazonaws.com/payment-processor:abc123",
                                      # Default: null (no image check); the primary deployment's
                                      # task definition must run an image starting with it
     "timeout_seconds": 900,          # Default: 900 (15 minutes), 30 to 3600
     "expected_status": 200}          # Default: 200

The stack's outputs name the cluster (`ClusterName`), the service (`ServiceName`) and the URL
(`ServiceUrl`); or, for a service deployline did not build, give `cluster`, `service` and `url`
instead of `stack_name`.

The job passes once (1) the ECS service reached a steady state on the new task definition (the
PRIMARY deployment's rolloutState is COMPLETED, its runningCount equals its desiredCount and no
other deployment is still active: rolling and ECS blue/green alike), then (2) the health URL
answered `expected_status` three times in a row. Between checks it backs off exponentially.

The function never sleeps for minutes: when its invocation is about to end it returns the job
with a continuation token (JSON: when the first attempt started, the phase reached, the last
observation), and CodePipeline invokes it again. Once `timeout_seconds` have passed since the
first attempt, or on a definite failure (the deployment FAILED, the wrong image, the service or
stack missing, a role that cannot be assumed), it fails the job with a message that says what was
expected, what was seen and where to look. Malformed UserParameters fail the job at once.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from . import accounts, clients, contract, http_check
from .jobs import JobEventError, ParameterError, Parameters, PipelineJob, put_failure, put_success

ACTION = "deployline validation"
#: Seconds between ECS checks while the rollout is in progress. Default: 10.
POLL_INTERVAL = 10.0
#: Seconds kept free at the end of an invocation to report the result. Default: 5.
SAFETY_MARGIN = 5.0
#: Consecutive healthy answers required. Default: 3.
REQUIRED_SUCCESSES = 3
#: Budget assumed when the handler runs without a Lambda context. Default: 60 s.
DEFAULT_BUDGET_MS = 60_000

#: The outputs every environment stack has.
OUTPUT_CLUSTER_NAME = contract.OUTPUT_CLUSTER_NAME
OUTPUT_SERVICE_NAME = contract.OUTPUT_SERVICE_NAME
OUTPUT_SERVICE_URL = contract.OUTPUT_SERVICE_URL

_EXAMPLE = (
    '{"stack_name": "svc-service-staging", "region": "eu-west-1", "role_arn": '
    '"arn:aws:iam::<account>:role/cdk-hnb659fds-lookup-role-<account>-eu-west-1", '
    '"health_path": "/health", "expected_image": "<registry>/svc:<tag>", "timeout_seconds": 900}'
)
_KEYS = (
    "stack_name",
    "region",
    "role_arn",
    "cluster",
    "service",
    "url",
    "health_path",
    "expected_image",
    "timeout_seconds",
    "expected_status",
)
_DEFINITE_ECS_ERRORS = {
    "ClusterNotFoundException",
    "ServiceNotFoundException",
    "AccessDeniedException",
    "InvalidParameterException",
    "UnrecognizedClientException",
}

_log = clients.logger("validation")


@dataclass(frozen=True)
class ValidationParams:
    """Validated UserParameters (see the module docstring for meaning and defaults).

    `cluster`, `service` and `url` are empty when `stack_name` names them through its outputs
    (see `resolve`).
    """

    cluster: str = ""
    service: str = ""
    url: str = ""
    stack_name: str | None = None
    region: str | None = None
    role_arn: str | None = None
    health_path: str = "/health"
    expected_image: str | None = None
    timeout_seconds: int = 900
    expected_status: int = 200

    @property
    def health_url(self) -> str:
        return http_check.join_url(self.url, self.health_path)

    @classmethod
    def parse(cls, raw: str | None) -> ValidationParams:
        """Raises ParameterError with a message that names the key, the value and the fix."""
        params = Parameters(raw, action=ACTION, example=_EXAMPLE, known=_KEYS)
        stack_name = params.string("stack_name", None, nullable=True)
        direct = [k for k in ("cluster", "service", "url") if k in params.values]
        if stack_name is None and len(direct) < 3:
            raise ParameterError(
                f"{ACTION}: UserParameters needs stack_name (whose outputs name the service), "
                f"or all of cluster, service and url; expected e.g. {_EXAMPLE}"
            )
        if stack_name is not None and direct:
            raise ParameterError(
                f"{ACTION}: give stack_name or cluster/service/url, not both (got "
                f"{', '.join(direct)} with stack_name)"
            )
        url = params.string("url", "")
        if url:
            _check_url(url)
        health_path = params.string("health_path", "/health")
        if not health_path.startswith("/"):
            raise ParameterError(
                f"{ACTION}: UserParameters.health_path must start with '/', got "
                f"{json.dumps(health_path)}"
            )
        region, role_arn = accounts.placement_parameters(params)
        return cls(
            cluster=params.string("cluster", ""),
            service=params.string("service", ""),
            url=url,
            stack_name=stack_name,
            region=region,
            role_arn=role_arn,
            health_path=health_path,
            expected_image=params.string("expected_image", None, nullable=True),
            timeout_seconds=params.integer("timeout_seconds", 900, minimum=30, maximum=3600),
            expected_status=params.integer("expected_status", 200, minimum=100, maximum=599),
        )


def _check_url(url: str) -> None:
    try:
        http_check.check_url(url)
    except ValueError as exc:
        raise ParameterError(f"{ACTION}: UserParameters.url: {exc}") from None


class StackError(Exception):
    """The stack named by stack_name cannot tell where the service is (a definite failure)."""


def resolve(params: ValidationParams, cloudformation: Any) -> ValidationParams:
    """`params` with cluster, service and url read from the stack's outputs (when stack_name)."""
    from botocore.exceptions import ClientError

    if params.stack_name is None:
        return params
    try:
        stacks = cloudformation.describe_stacks(StackName=params.stack_name).get("Stacks") or []
    except ClientError as exc:
        raise StackError(
            f"stack {params.stack_name} cannot be read ({clients.error_code(exc)}: {exc}); "
            "check that it exists in the environment's account and region"
        ) from None
    outputs = (
        {o.get("OutputKey"): o.get("OutputValue") for o in (stacks[0].get("Outputs") or ())}
        if stacks
        else {}
    )
    wanted = (OUTPUT_CLUSTER_NAME, OUTPUT_SERVICE_NAME, OUTPUT_SERVICE_URL)
    missing = [k for k in wanted if not outputs.get(k)]
    if missing:
        raise StackError(
            f"stack {params.stack_name} has no output(s) {missing}; it must output the "
            "service's cluster, name and URL (every deployline environment stack does)"
        )
    url = str(outputs[OUTPUT_SERVICE_URL])
    try:
        _check_url(url)
    except ParameterError as exc:
        raise StackError(f"stack {params.stack_name}: output {OUTPUT_SERVICE_URL}: {exc}") from None
    return replace(
        params,
        cluster=str(outputs[OUTPUT_CLUSTER_NAME]),
        service=str(outputs[OUTPUT_SERVICE_NAME]),
        url=url,
    )


# ---------------------------------------------------------------------------------------------
# ECS
# ---------------------------------------------------------------------------------------------

CheckState = Literal["ready", "waiting", "failed"]


@dataclass(frozen=True)
class ServiceCheck:
    """What the ECS service looks like now."""

    state: CheckState
    message: str
    task_definition: str | None = None


def short_task_definition(arn: str | None) -> str:
    """`arn:aws:ecs:...:task-definition/family:7` -> `family:7`."""
    if not arn:
        return "(unknown task definition)"
    return arn.rsplit("/", 1)[-1]


def primary_task_definition(service: Mapping[str, Any]) -> str | None:
    """The task definition the service is moving to (its PRIMARY deployment)."""
    for entry in service.get("deployments") or ():
        if entry.get("status") == "PRIMARY" and entry.get("taskDefinition"):
            return str(entry["taskDefinition"])
    return None


def _latest_event(service: Mapping[str, Any]) -> str:
    events = service.get("events") or []
    if events and isinstance(events[0], Mapping) and events[0].get("message"):
        return f" Latest service event: {events[0]['message']}"
    return ""


def assess_service(
    service: Mapping[str, Any],
    *,
    expected_image: str | None = None,
    images: Sequence[str] | None = None,
) -> ServiceCheck:
    """Decide from one DescribeServices entry (and the primary task definition's images)."""
    name = service.get("serviceName", "(service)")
    event = _latest_event(service)
    status = service.get("status")
    if status != "ACTIVE":
        return ServiceCheck("failed", f"service {name} is {status}, not ACTIVE.{event}")
    desired = int(service.get("desiredCount", 0))
    if desired == 0:
        return ServiceCheck(
            "failed",
            f"service {name} has desiredCount 0: there is nothing to validate; set the desired "
            f"count to at least 1.{event}",
        )
    controller = (service.get("deploymentController") or {}).get("type", "ECS")
    task_definition = primary_task_definition(service)
    td = short_task_definition(task_definition)
    if (
        task_definition
        and expected_image
        and images is not None
        and not any(image.startswith(expected_image) for image in images)
    ):
        return ServiceCheck(
            "failed",
            f"service {name} runs task definition {td} with image(s) {sorted(images)}, but the "
            f"image should start with {expected_image}. The stack's ImageTag parameter is not "
            f"the tag this execution built: check the Deploy action's parameter overrides and "
            f"the stack's parameters in the CloudFormation console.",
            task_definition,
        )
    if controller != "ECS":
        return ServiceCheck(
            "failed",
            f"service {name} uses the {controller} deployment controller; deployline validates "
            "services on the ECS controller (rolling or ECS blue/green)",
            task_definition,
        )
    return _assess_rolling(service, name, desired, task_definition, event)


def _assess_rolling(
    service: Mapping[str, Any],
    name: str,
    desired: int,
    task_definition: str | None,
    event: str,
) -> ServiceCheck:
    deployments = list(service.get("deployments") or ())
    primary = next((d for d in deployments if d.get("status") == "PRIMARY"), None)
    td = short_task_definition(task_definition)
    if primary is None:
        return ServiceCheck("waiting", f"service {name} has no PRIMARY deployment yet.{event}")
    deployment_id = primary.get("id", "?")
    rollout = primary.get("rolloutState")
    running = int(primary.get("runningCount", 0))
    wanted = int(primary.get("desiredCount", desired))
    failed_tasks = int(primary.get("failedTasks", 0))
    if rollout == "FAILED":
        reason = primary.get("rolloutStateReason") or "no reason given"
        return ServiceCheck(
            "failed",
            f"ECS deployment {deployment_id} of {td} on service {name} FAILED: {reason} "
            f"({failed_tasks} task(s) failed). Look at the service's Events tab and the stopped "
            f"tasks' 'Stopped reason' and logs in the ECS console.{event}",
            task_definition,
        )
    if rollout not in (None, "COMPLETED"):
        return ServiceCheck(
            "waiting",
            f"deployment {deployment_id} of {td} is {rollout}: {running}/{wanted} task(s) "
            f"running, {failed_tasks} failed.{event}",
            task_definition,
        )
    if running != wanted or int(service.get("runningCount", 0)) != desired:
        return ServiceCheck(
            "waiting",
            f"deployment {deployment_id} of {td}: {running}/{wanted} task(s) running; service "
            f"{service.get('runningCount', 0)}/{desired}.{event}",
            task_definition,
        )
    others = [d for d in deployments if d is not primary and d.get("status") != "INACTIVE"]
    if others:
        old = ", ".join(
            f"{d.get('id', '?')} ({short_task_definition(d.get('taskDefinition'))}, "
            f"{d.get('runningCount', 0)} running)"
            for d in others
        )
        return ServiceCheck(
            "waiting", f"older deployment(s) still active on {name}: {old}.{event}", task_definition
        )
    return ServiceCheck(
        "ready",
        f"service {name} is steady on {td}: deployment {deployment_id} COMPLETED with "
        f"{running}/{wanted} task(s) running",
        task_definition,
    )


def check_service(
    ecs: Any, params: ValidationParams, image_cache: dict[str, list[str]] | None = None
) -> ServiceCheck:
    """DescribeServices (and DescribeTaskDefinition for the image check), then assess."""
    from botocore.exceptions import BotoCoreError, ClientError

    cache = image_cache if image_cache is not None else {}
    try:
        response = ecs.describe_services(cluster=params.cluster, services=[params.service])
        services = response.get("services") or []
        if not services:
            reasons = ", ".join(
                f"{f.get('arn', params.service)}: {f.get('reason', '?')}"
                for f in response.get("failures") or ()
            )
            return ServiceCheck(
                "failed",
                f"service {params.service} not found in cluster {params.cluster} ({reasons or 'no'}"
                f" failure reason). Check UserParameters.cluster and .service against the "
                f"deployed stack's outputs.",
            )
        service = services[0]
        images: list[str] | None = None
        task_definition = primary_task_definition(service)
        if params.expected_image and task_definition:
            if task_definition not in cache:
                described = ecs.describe_task_definition(taskDefinition=task_definition)
                containers = described["taskDefinition"].get("containerDefinitions") or []
                cache[task_definition] = [str(c.get("image", "")) for c in containers]
            images = cache[task_definition]
    except ClientError as exc:
        code = clients.error_code(exc)
        message = f"ECS {code} for service {params.service} in cluster {params.cluster}: {exc}"
        if code in _DEFINITE_ECS_ERRORS:
            return ServiceCheck("failed", message)
        return ServiceCheck("waiting", message)
    except BotoCoreError as exc:
        return ServiceCheck("waiting", f"ECS could not be reached: {exc}")
    return assess_service(service, expected_image=params.expected_image, images=images)


# ---------------------------------------------------------------------------------------------
# The job, across invocations
# ---------------------------------------------------------------------------------------------


@dataclass
class ValidationState:
    """What one invocation hands the next through the continuation token."""

    started: float
    phase: Literal["service", "health"] = "service"
    invocations: int = 0
    last: str = ""

    def to_token(self) -> str:
        return json.dumps(
            {
                "v": 1,
                "started": round(self.started, 3),
                "phase": self.phase,
                "invocations": self.invocations,
                "last": self.last[:1500],
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_token(cls, token: str | None, *, now: float) -> ValidationState:
        if not token:
            return cls(started=now)
        try:
            data = json.loads(token)
            phase = data["phase"]
            if phase not in ("service", "health"):
                raise ValueError(phase)
            return cls(
                started=float(data["started"]),
                phase=phase,
                invocations=int(data.get("invocations", 0)),
                last=str(data.get("last", "")),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ParameterError(
                f"{ACTION}: the continuation token is not one this function wrote ({exc!r}); "
                f"retry the stage to start a fresh validation"
            ) from None


@dataclass(frozen=True)
class Outcome:
    """How an invocation ended: reported succeeded, failed, or continued (token)."""

    result: Literal["succeeded", "failed", "continued"]
    message: str
    state: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"result": self.result, "message": self.message, **self.state}


def _stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _timeout_message(params: ValidationParams, state: ValidationState, now: float) -> str:
    return (
        f"Validation did not pass within {params.timeout_seconds}s (started {_stamp(state.started)}"
        f", {now - state.started:.0f}s ago, {state.invocations} invocation(s)). "
        f"Expected: ECS service {params.service} in cluster {params.cluster} steady on the new "
        f"task definition, then HTTP {params.expected_status} from {params.health_url} "
        f"{REQUIRED_SUCCESSES} times in a row. Last seen ({state.phase} phase): "
        f"{state.last or 'nothing'}. Where to look: the ECS service's Events tab, the stopped "
        f"tasks' reasons and their CloudWatch logs, and the target group's health checks."
    )


#: Connects to the environment's account and region: `connect(params)("ecs")` is an ECS client.
Connect = Callable[[ValidationParams], Callable[[str], Any]]


def connect(params: ValidationParams) -> Callable[[str], Any]:
    """Clients in the environment's region, through its lookup role when one is given."""
    return accounts.client_factory(
        role_arn=params.role_arn, region=params.region, session_name="deployline-validation"
    )


def run(
    job: PipelineJob,
    *,
    connect: Connect = connect,
    codepipeline: Any,
    remaining_ms: Callable[[], int],
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    poll_interval: float = POLL_INTERVAL,
    margin: float = SAFETY_MARGIN,
    probe_timeout: float = http_check.PROBE_TIMEOUT,
) -> Outcome:
    """Validate, then report the job's result (success, failure or a continuation token).

    `connect` gives the clients of the environment's account and region (Default: through
    `role_arn`, in `region`). `clock` is wall-clock seconds (the first attempt's time travels in
    the token); `sleep`, `poll_interval` (Default: 10 s), `margin` (Default: 5 s) and
    `probe_timeout` (Default: 5 s) are parameters so tests can run the whole loop without waiting.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        params = ValidationParams.parse(job.user_parameters)
        state = ValidationState.from_token(job.continuation_token, now=clock())
    except ParameterError as exc:
        put_failure(codepipeline, job.id, str(exc))
        return Outcome("failed", str(exc))
    try:
        aws = connect(params)
        params = resolve(params, aws("cloudformation"))
        ecs = aws("ecs")
    except StackError as exc:
        message = f"Validation failed: {exc}"
        put_failure(codepipeline, job.id, message)
        return Outcome("failed", message)
    except (ClientError, BotoCoreError) as exc:
        message = (
            f"Validation could not reach the environment's account through {params.role_arn}: "
            f"{exc}. Bootstrap that account with `cdk bootstrap --trust <pipeline account>`."
        )
        put_failure(codepipeline, job.id, message)
        return Outcome("failed", message)
    state.invocations += 1
    overall_deadline = state.started + params.timeout_seconds
    invocation_deadline = clock() + remaining_ms() / 1000.0 - margin
    images: dict[str, list[str]] = {}

    def finish_fail(message: str) -> Outcome:
        put_failure(codepipeline, job.id, message)
        return Outcome("failed", message, {"invocations": state.invocations})

    def finish_continue() -> Outcome:
        token = state.to_token()
        put_success(
            codepipeline,
            job.id,
            continuation_token=token,
            summary=f"still validating ({state.phase}): {state.last}",
        )
        return Outcome("continued", state.last, {"token": token})

    while True:
        if state.phase == "service":
            check = check_service(ecs, params, images)
            state.last = check.message
            if check.state == "failed":
                return finish_fail(f"Validation failed: {check.message}")
            if check.state == "ready":
                state.phase = "health"
                clients.log_json(_log, logging.INFO, "service steady", detail=check.message)
                continue
            now = clock()
            if now >= overall_deadline:
                return finish_fail(_timeout_message(params, state, now))
            if now + poll_interval >= invocation_deadline:
                return finish_continue()
            sleep(min(poll_interval, max(overall_deadline - now, 0.0)))
            continue

        deadline = min(invocation_deadline, overall_deadline)
        health = http_check.wait_healthy(
            params.health_url,
            deadline=deadline,
            expected_status=params.expected_status,
            required=REQUIRED_SUCCESSES,
            clock=clock,
            sleep=sleep,
            probe_timeout=probe_timeout,
        )
        if health.ok:
            message = (
                f"{state.last}; {params.health_url} answered HTTP {params.expected_status} "
                f"{REQUIRED_SUCCESSES} times in a row"
            )
            put_success(codepipeline, job.id, summary=message)
            return Outcome("succeeded", message, {"invocations": state.invocations})
        if health.last is not None:
            state.last = f"health check of {params.health_url}: {health.describe()}"
        if overall_deadline <= invocation_deadline or clock() >= overall_deadline:
            return finish_fail(_timeout_message(params, state, clock()))
        return finish_continue()


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point (CodePipeline invoke action)."""
    try:
        job = PipelineJob.from_event(event)
    except JobEventError as exc:
        clients.log_json(_log, logging.ERROR, "not a CodePipeline job; ignored", error=str(exc))
        return {"result": "ignored", "message": str(exc)}
    codepipeline = clients.client("codepipeline")
    remaining = getattr(context, "get_remaining_time_in_millis", None) or (
        lambda: DEFAULT_BUDGET_MS
    )
    try:
        outcome = run(job, codepipeline=codepipeline, remaining_ms=remaining)
    except Exception as exc:  # the job must end in a result, whatever went wrong
        message = (
            f"Validation could not run: {type(exc).__name__}: {exc}. See the log of the "
            f"function {getattr(context, 'function_name', 'validation')} in CloudWatch Logs."
        )
        clients.log_json(_log, logging.ERROR, "validation crashed", job_id=job.id, error=repr(exc))
        put_failure(codepipeline, job.id, message)
        return {"result": "failed", "message": message}
    clients.log_json(_log, logging.INFO, "validation", job_id=job.id, **outcome.to_dict())
    return outcome.to_dict()
