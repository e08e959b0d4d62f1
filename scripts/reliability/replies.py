"""What an answer to a request was, in one place: the verdicts every driver counts.

- ok:        2xx.
- rejected:  4xx with preheat's error shape {"error": {"code": str, "message": str}}, or on /v2 routes
             the Open Inference Protocol's {"error": str, "code": str}.
- platform:  a 4xx that Lambda's front end gives before the function runs, in Lambda's shape (header
             x-amzn-errortype, a JSON message): 413 RequestTooLargeException over 6 MB, 429
             TooManyRequestsException. The function cannot shape these; a client must handle both.
- unshaped:  a 4xx without either shape (a bug: a client cannot tell why).
- server_error: 5xx.
- hang:      no answer within the request's timeout.
- no_answer: the connection closed without an answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

OK = "ok"
REJECTED = "rejected"
PLATFORM = "platform"
UNSHAPED = "unshaped"
SERVER_ERROR = "server_error"
HANG = "hang"
NO_ANSWER = "no_answer"
BAD = frozenset({UNSHAPED, SERVER_ERROR, HANG, NO_ANSWER})


def error_shape(body: bytes) -> dict[str, Any] | None:
    """The {"code", "message"} of an error body in either of preheat's shapes (its own, or the Open
    Inference Protocol's on /v2 routes), or None if the body has another shape."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, str) and isinstance(data.get("code"), str):
        error = {"code": data["code"], "message": error}
    if isinstance(error, dict) and isinstance(error.get("code"), str) and isinstance(error.get("message"), str):
        if error["code"] and error["message"]:
            return error
    return None


def lambda_shape(headers: Mapping[str, str], body: bytes) -> str | None:
    """The error type of a Lambda front-end error (x-amzn-errortype + a JSON message), else None."""
    kind = headers.get("x-amzn-errortype")
    if not kind:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if isinstance(data, dict) and any(isinstance(data.get(k), str) for k in ("Message", "message")):
        return kind.split(":", 1)[0]
    return None


def verdict(status: int, headers: Mapping[str, str], body: bytes, error: str | None = None) -> str:
    if status == 0:
        return HANG if error == "timeout" else NO_ANSWER
    if status >= 500:
        return SERVER_ERROR
    if status >= 400:
        if error_shape(body) is not None:
            return REJECTED
        if status in (413, 429) and lambda_shape(headers, body) is not None:
            return PLATFORM
        return UNSHAPED
    return OK
