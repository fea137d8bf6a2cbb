"""CodePipeline Lambda invoke jobs: reading the event, checking UserParameters, reporting results.

A job must end in PutJobSuccessResult or PutJobFailureResult, or the pipeline hangs until the
action times out. Never log the job event itself: its `artifactCredentials` are live credentials.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: CodePipeline limits (API reference: FailureDetails.message, ExecutionDetails.summary,
#: PutJobSuccessResult.continuationToken).
MAX_FAILURE_MESSAGE = 5000
MAX_SUMMARY = 2048
MAX_CONTINUATION_TOKEN = 2048

_MISSING: Any = object()


class JobEventError(ValueError):
    """The Lambda event is not a CodePipeline job (no job ID to report to)."""


class ParameterError(ValueError):
    """UserParameters are malformed; the message says what is wrong and how to fix it."""


def truncate(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, ending in an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class PipelineJob:
    """The parts of a CodePipeline job event the handlers use."""

    id: str
    user_parameters: str | None
    continuation_token: str | None
    input_artifacts: tuple[Mapping[str, Any], ...]
    artifact_credentials: Mapping[str, Any] | None
    pipeline_execution_id: str | None
    pipeline_name: str | None

    @classmethod
    def from_event(cls, event: Any) -> PipelineJob:
        """Raises JobEventError when the event carries no job ID."""
        job = event.get("CodePipeline.job") if isinstance(event, Mapping) else None
        if not isinstance(job, Mapping) or not isinstance(job.get("id"), str) or not job["id"]:
            raise JobEventError(
                "event is not a CodePipeline job: expected {'CodePipeline.job': {'id': ...}}"
            )
        raw_data = job.get("data")
        data: Mapping[str, Any] = raw_data if isinstance(raw_data, Mapping) else {}
        action = data.get("actionConfiguration")
        configuration = action.get("configuration") if isinstance(action, Mapping) else None
        raw_params = (
            configuration.get("UserParameters") if isinstance(configuration, Mapping) else None
        )
        artifacts = data.get("inputArtifacts")
        context = data.get("pipelineContext")
        context = context if isinstance(context, Mapping) else {}
        token = data.get("continuationToken")
        credentials = data.get("artifactCredentials")
        return cls(
            id=job["id"],
            user_parameters=raw_params if isinstance(raw_params, str) else None,
            continuation_token=token if isinstance(token, str) and token else None,
            input_artifacts=tuple(a for a in artifacts or () if isinstance(a, Mapping))
            if isinstance(artifacts, list)
            else (),
            artifact_credentials=credentials if isinstance(credentials, Mapping) else None,
            pipeline_execution_id=_str_or_none(context.get("pipelineExecutionId")),
            pipeline_name=_str_or_none(context.get("pipelineName")),
        )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# ---------------------------------------------------------------------------------------------
# UserParameters
# ---------------------------------------------------------------------------------------------


class Parameters:
    """Typed access to a UserParameters JSON object; every getter raises ParameterError."""

    def __init__(self, raw: str | None, *, action: str, example: str, known: Sequence[str]):
        self.action = action
        self.example = example
        if raw is None or not raw.strip():
            raise ParameterError(
                f"{action}: UserParameters is empty; set it to a JSON object like {example}"
            )
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ParameterError(
                f"{action}: UserParameters is not valid JSON ({exc.msg} at line {exc.lineno} "
                f"column {exc.colno}); got {truncate(raw, 200)!r}; expected e.g. {example}"
            ) from None
        if not isinstance(value, dict):
            raise ParameterError(
                f"{action}: UserParameters must be a JSON object, got {type(value).__name__} "
                f"{truncate(raw, 200)!r}; expected e.g. {example}"
            )
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise ParameterError(
                f"{action}: unknown UserParameters key(s) {unknown}; known keys: {sorted(known)}"
            )
        self.values: dict[str, Any] = value

    def _bad(self, key: str, expected: str, got: Any) -> ParameterError:
        return ParameterError(
            f"{self.action}: UserParameters.{key} must be {expected}, got {json.dumps(got)}"
        )

    def string(self, key: str, default: Any = _MISSING, *, nullable: bool = False) -> Any:
        if key not in self.values:
            if default is _MISSING:
                raise ParameterError(
                    f"{self.action}: UserParameters.{key} is required; expected e.g. {self.example}"
                )
            return default
        value = self.values[key]
        if value is None and nullable:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self._bad(key, "a non-empty string" + (" or null" if nullable else ""), value)
        return value.strip()

    def integer(self, key: str, default: int, *, minimum: int, maximum: int) -> int:
        value = self.values.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._bad(key, f"an integer from {minimum} to {maximum}", value)
        if not minimum <= value <= maximum:
            raise self._bad(key, f"an integer from {minimum} to {maximum}", value)
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.values.get(key, default)
        if not isinstance(value, bool):
            raise self._bad(key, "true or false", value)
        return value

    def choice(self, key: str, default: Any, choices: Sequence[str]) -> str:
        value = self.values.get(key, default)
        if value is _MISSING:
            raise ParameterError(f"{self.action}: UserParameters.{key} is required")
        if not isinstance(value, str) or value.lower() not in choices:
            raise self._bad(key, f"one of {list(choices)}", value)
        return value.lower()

    def string_list(self, key: str, default: Sequence[str], choices: Sequence[str]) -> list[str]:
        value = self.values.get(key, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._bad(key, f"a list of strings from {list(choices)}", value)
        bad = [v for v in value if v not in choices]
        if bad:
            raise self._bad(key, f"a list of strings from {list(choices)} (unknown: {bad})", value)
        if len(set(value)) != len(value):
            raise self._bad(key, "a list without repeats", value)
        return list(value)


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


def put_success(
    codepipeline: Any,
    job_id: str,
    *,
    summary: str | None = None,
    continuation_token: str | None = None,
    output_variables: Mapping[str, str] | None = None,
) -> None:
    """PutJobSuccessResult. With a continuation token CodePipeline invokes the function again
    with the token in `data.continuationToken`; output variables are not allowed with one."""
    kwargs: dict[str, Any] = {"jobId": job_id}
    if continuation_token is not None:
        if len(continuation_token) > MAX_CONTINUATION_TOKEN:
            raise ValueError(
                f"continuation token is {len(continuation_token)} characters; the limit is "
                f"{MAX_CONTINUATION_TOKEN}"
            )
        if output_variables:
            raise ValueError("CodePipeline accepts output variables only without a token")
        kwargs["continuationToken"] = continuation_token
    if summary:
        kwargs["executionDetails"] = {"summary": truncate(summary, MAX_SUMMARY)}
    if output_variables:
        kwargs["outputVariables"] = {k: str(v) for k, v in output_variables.items()}
    codepipeline.put_job_success_result(**kwargs)


def put_failure(codepipeline: Any, job_id: str, message: str) -> None:
    """PutJobFailureResult with type JobFailed and `message` (cut to 5000 characters)."""
    codepipeline.put_job_failure_result(
        jobId=job_id,
        failureDetails={"type": "JobFailed", "message": truncate(message, MAX_FAILURE_MESSAGE)},
    )
