"""Retrying AWS calls that failed for a passing reason: throttling, 5xx, a dropped connection.

Full-jitter exponential backoff ("Exponential Backoff And Jitter", AWS Architecture Blog): before
retry n the caller sleeps a uniform random time in [0, min(cap, base * 2**n)], at most `attempts`
calls in all. botocore's own retries are switched off on our clients (`clients.py`) so that this is
the one place retries happen, and the number of attempts is what the settings say.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from warmers.settings import Backoff

T = TypeVar("T")

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
# Not throttling, but gone on their own: Lambda's "the function is being updated", 5xx.
TRANSIENT_CODES = frozenset(
    {
        "ResourceConflictException",
        "ServiceUnavailable",
        "ServiceException",
        "InternalFailure",
        "InternalError",
    }
)


@dataclass
class Attempts:
    """How a retried call went, for the caller's report."""

    count: int = 0
    slept_s: float = 0.0


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    return type(exc).__name__


def is_retryable(exc: BaseException) -> bool:
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(exc, ClientError):
        code = error_code(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return code in THROTTLING_CODES or code in TRANSIENT_CODES or status == 429 or status >= 500
    return isinstance(exc, ConnectionError | HTTPClientError)


def call(
    fn: Callable[[], T],
    backoff: Backoff,
    *,
    attempts: Attempts | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rand: Callable[[], float] = random.random,
) -> T:
    """fn(), retried on retryable errors; the last error is raised when attempts run out."""
    record = attempts if attempts is not None else Attempts()
    for n in range(backoff.attempts):
        record.count += 1
        try:
            return fn()
        except Exception as exc:
            if n == backoff.attempts - 1 or not is_retryable(exc):
                raise
            pause = rand() * min(backoff.cap_s, backoff.base_s * 2**n)
            record.slept_s += pause
            sleep(pause)
    raise AssertionError("unreachable: the loop returns or raises")
