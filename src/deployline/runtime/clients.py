"""boto3 clients and logging for the runtime handlers.

Every client retries with botocore's "standard" mode (throttling and transient errors, with
exponential backoff and jitter) and short connect/read timeouts, so a slow AWS API cannot eat a
function's whole time budget. boto3 honours `AWS_ENDPOINT_URL` (and `AWS_ENDPOINT_URL_<SERVICE>`)
natively, which is how the tests point the handlers at a local moto server.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from typing import Any

#: Attempts per API call, the first included. Default: 5.
DEFAULT_MAX_ATTEMPTS = 5
#: Seconds to open a connection to an AWS endpoint. Default: 5.
CONNECT_TIMEOUT = 5.0
#: Seconds to wait for an AWS response. Default: 20.
READ_TIMEOUT = 20.0


def config(*, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> Any:
    """The botocore Config every deployline client uses. Default: 5 attempts, standard mode."""
    from botocore.config import Config

    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
    return Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        user_agent_extra="deployline",
    )


@functools.cache
def client(service: str) -> Any:
    """A cached client for `service` (one per cold start, as Lambda recommends)."""
    import boto3

    return boto3.client(service, config=config())


def reset() -> None:
    """Forget cached clients (tests change AWS_ENDPOINT_URL between modules)."""
    client.cache_clear()


def logger(name: str) -> logging.Logger:
    """A logger at LOG_LEVEL (Default: INFO); Lambda's runtime ships its records to CloudWatch."""
    log = logging.getLogger(f"deployline.{name}")
    level = os.environ.get("LOG_LEVEL", "INFO").upper()
    log.setLevel(level if level in logging.getLevelNamesMapping() else "INFO")
    return log


def log_json(log: logging.Logger, level: int, message: str, /, **fields: Any) -> None:
    """One JSON object per line, so CloudWatch Logs Insights can query the fields. A field
    called "message" is logged as "detail"."""
    record = {"detail" if key == "message" else key: value for key, value in fields.items()}
    log.log(level, json.dumps({"message": message, **record}, default=str, sort_keys=True))


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError, or the exception's class name."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if isinstance(code, str) and code:
            return code
    return type(exc).__name__
