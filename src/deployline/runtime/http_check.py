"""HTTP health checks with a deadline: single probes and "N consecutive successes" polling.

Redirects are not followed: a health endpoint that answers 301 is not answering 200.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

#: Seconds one probe may take. Default: 5.
PROBE_TIMEOUT = 5.0
#: First pause between failed probes, doubled after each failure up to MAX_BACKOFF. Default: 1 s.
INITIAL_BACKOFF = 1.0
#: Longest pause between failed probes. Default: 15 s.
MAX_BACKOFF = 15.0
#: Pause between successful probes while collecting consecutive successes. Default: 1 s.
SUCCESS_INTERVAL = 1.0
_BODY_SNIPPET = 200


def check_url(url: str) -> str:
    """Return `url` if it is an absolute http(s) URL with a host, else raise ValueError."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"expected an absolute http:// or https:// URL with a host, got {url!r}")
    return url


def join_url(base: str, path: str) -> str:
    """`base` (scheme, host, port, optional prefix) followed by `path` (starting with /)."""
    if not path.startswith("/"):
        raise ValueError(f"health check path must start with '/', got {path!r}")
    return check_url(base.rstrip("/") + path)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


@dataclass(frozen=True)
class Probe:
    """One request's outcome."""

    ok: bool
    status: int | None
    error: str | None
    elapsed: float
    body: str = ""

    def describe(self) -> str:
        if self.status is not None:
            snippet = f", body {self.body!r}" if self.body and not self.ok else ""
            return f"HTTP {self.status} in {self.elapsed:.1f}s{snippet}"
        return f"no response: {self.error}"


def probe(url: str, *, expected_status: int = 200, timeout: float = PROBE_TIMEOUT) -> Probe:
    """GET `url` once. Never raises for network errors: they come back as a failed Probe."""
    check_url(url)
    request = urllib.request.Request(  # noqa: S310 - scheme checked by check_url
        url, headers={"User-Agent": "deployline-health-check", "Accept": "*/*"}, method="GET"
    )
    started = time.monotonic()
    try:
        with _OPENER.open(request, timeout=max(timeout, 0.1)) as response:  # nosec B310
            body = response.read(_BODY_SNIPPET).decode("utf-8", "replace")
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        body = exc.read(_BODY_SNIPPET).decode("utf-8", "replace") if exc.fp else ""
        status = int(exc.code)
    except TimeoutError:
        return Probe(False, None, f"timed out after {timeout:.1f}s", time.monotonic() - started)
    except urllib.error.URLError as exc:
        reason = exc.reason
        text = "timed out" if isinstance(reason, TimeoutError) else str(reason)
        return Probe(False, None, text, time.monotonic() - started)
    except (OSError, ValueError) as exc:
        return Probe(False, None, f"{type(exc).__name__}: {exc}", time.monotonic() - started)
    elapsed = time.monotonic() - started
    return Probe(status == expected_status, status, None, elapsed, body.strip())


@dataclass(frozen=True)
class HealthResult:
    """The outcome of polling: ok once `required` consecutive probes succeeded."""

    ok: bool
    attempts: int
    consecutive: int
    last: Probe | None

    def describe(self) -> str:
        if self.last is None:
            return "no probe was made (no time left)"
        return (
            f"{self.attempts} probe(s), {self.consecutive} consecutive success(es); last: "
            f"{self.last.describe()}"
        )


def wait_healthy(
    url: str,
    *,
    deadline: float,
    expected_status: int = 200,
    required: int = 3,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    probe_timeout: float = PROBE_TIMEOUT,
    initial_backoff: float = INITIAL_BACKOFF,
    max_backoff: float = MAX_BACKOFF,
    success_interval: float = SUCCESS_INTERVAL,
) -> HealthResult:
    """Probe `url` until `required` consecutive probes answer `expected_status` or `deadline`
    (a `clock()` value) passes. Failures back off exponentially (1, 2, 4, ... 15 s)."""
    if required < 1:
        raise ValueError(f"required must be at least 1, got {required}")
    attempts = consecutive = 0
    backoff = initial_backoff
    last: Probe | None = None
    while True:
        left = deadline - clock()
        if left <= 0.2:
            return HealthResult(False, attempts, consecutive, last)
        last = probe(url, expected_status=expected_status, timeout=min(probe_timeout, left))
        attempts += 1
        if last.ok:
            consecutive += 1
            backoff = initial_backoff
            if consecutive >= required:
                return HealthResult(True, attempts, consecutive, last)
            pause = success_interval
        else:
            consecutive = 0
            pause = backoff
            backoff = min(backoff * 2, max_backoff)
        left = deadline - clock()
        if left <= pause:
            return HealthResult(False, attempts, consecutive, last)
        sleep(pause)
