"""Scripted AWS API failures: the next N calls of an operation answer an error instead of working.

Lambda throttles control-plane calls (PutProvisionedConcurrencyConfig is rate-limited per account),
CloudWatch throttles GetMetricData, and any of them can answer a 5xx. Code that must degrade rather
than crash (the warmer, the controller) is tested against these answers through real HTTP and
botocore's own parsing. A fault matches an operation name as botocore calls it (`Invoke`,
`PutProvisionedConcurrencyConfig`, `GetMetricData`, ...), optionally only for one function, and
answers `count` calls with `status` and the error `code`, then stops matching.

Control API: POST /_preheat/faults {"operation", "count", "status", "code", "message", "function"},
GET /_preheat/faults (each fault with `remaining` and the times of the calls it answered),
DELETE /_preheat/faults.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from scripts.twin.http11 import Request

# The Lambda routes the twin serves itself: (method, API version, path after the function) -> operation.
LAMBDA_OPERATIONS = {
    ("POST", "2015-03-31", "/invocations"): "Invoke",
    ("GET", "2019-09-30", "/provisioned-concurrency"): "GetProvisionedConcurrencyConfig",
    ("PUT", "2019-09-30", "/provisioned-concurrency"): "PutProvisionedConcurrencyConfig",
    ("DELETE", "2019-09-30", "/provisioned-concurrency"): "DeleteProvisionedConcurrencyConfig",
    ("PUT", "2017-10-31", "/concurrency"): "PutFunctionConcurrency",
    ("GET", "2019-09-30", "/concurrency"): "GetFunctionConcurrency",
    ("DELETE", "2017-10-31", "/concurrency"): "DeleteFunctionConcurrency",
    ("GET", "2021-10-31", "/url"): "GetFunctionUrlConfig",
}
_MAX_COUNT = 1_000_000
_KEPT_HITS = 100


class FaultError(ValueError):
    """A fault request is malformed; the message names the field."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Fault:
    id: int
    operation: str
    function: str | None
    remaining: int
    status: int
    code: str
    message: str
    hits: list[float] = field(default_factory=list)  # epoch seconds of the calls it answered (the last 100)
    answered: int = 0

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id, "operation": self.operation, "function": self.function, "remaining": self.remaining,
            "status": self.status, "code": self.code, "message": self.message, "answered": self.answered,
            "hits": list(self.hits),
        }


def lambda_operation(method: str, api: str, rest: str, params: Mapping[str, str]) -> str | None:
    if rest == "/provisioned-concurrency" and method == "GET" and params.get("List") == "ALL":
        return "ListProvisionedConcurrencyConfigs"
    return LAMBDA_OPERATIONS.get((method, api, rest))


def forwarded_operation(request: Request) -> str | None:
    """The operation of a request for moto: JSON (X-Amz-Target), RPC v2 CBOR (path) or query (Action)."""
    target = request.header("x-amz-target")
    if target:
        return target.rsplit(".", 1)[-1]
    parts = request.path.strip("/").split("/")
    if len(parts) == 4 and parts[0] == "service" and parts[2] == "operation":
        return parts[3]
    action = request.params().get("Action")
    if action:
        return action
    if (request.header("content-type") or "").startswith("application/x-www-form-urlencoded"):
        return dict(parse_qsl(request.body.decode("utf-8", "replace"))).get("Action")
    return None


class Faults:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, body: bytes) -> Fault:
        try:
            spec = json.loads(body or b"null")
        except ValueError:
            raise FaultError("bad_json", "the body must be a JSON object") from None
        if not isinstance(spec, dict):
            raise FaultError("bad_json", "the body must be a JSON object")
        known = {"operation", "function", "count", "status", "code", "message"}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise FaultError("unknown_field", f"unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        operation = spec.get("operation")
        if not isinstance(operation, str) or not operation.isidentifier():
            raise FaultError("invalid_operation", f"operation must be an API operation name such as "
                                                  f"PutProvisionedConcurrencyConfig, got {operation!r}")
        function = spec.get("function")
        if function is not None and (not isinstance(function, str) or not function):
            raise FaultError("invalid_function", f"function must be a function name, got {function!r}")
        count = spec.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= _MAX_COUNT:
            raise FaultError("invalid_count", f"count must be a whole number from 1 to {_MAX_COUNT}, got {count!r}")
        status = spec.get("status", 429)
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise FaultError("invalid_status", f"status must be an HTTP error status (400-599), got {status!r}")
        code = spec.get("code", "TooManyRequestsException")
        if not isinstance(code, str) or not code.isidentifier():
            raise FaultError("invalid_code", f"code must be an AWS error code such as ThrottlingException, got {code!r}")
        message = spec.get("message", f"Rate exceeded (a fault injected into the twin for {operation})")
        if not isinstance(message, str):
            raise FaultError("invalid_message", f"message must be a string, got {message!r}")
        fault = Fault(next(self._ids), operation, function, count, status, code, message)
        self._faults.append(fault)
        return fault

    def take(self, operation: str | None, function: str | None = None) -> Fault | None:
        """The first live fault matching this call, which it then answers (one of its `count`)."""
        if operation is None:
            return None
        for fault in self._faults:
            if fault.remaining > 0 and fault.operation == operation and fault.function in (None, function):
                fault.remaining -= 1
                fault.answered += 1
                fault.hits = [*fault.hits[-(_KEPT_HITS - 1):], time.time()]
                return fault
        return None

    def describe(self) -> list[dict[str, Any]]:
        return [f.describe() for f in self._faults]

    def clear(self) -> int:
        count = len(self._faults)
        self._faults.clear()
        return count
