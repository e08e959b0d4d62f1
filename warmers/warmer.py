"""The warmer Lambda: `warmers.warmer.handler`.

Invoked by an EventBridge schedule (fan-out from PREHEAT_WARM_CONCURRENCY) or by the controller
with `{"concurrency": k, "hold_ms": h}` (optionally "function" and "qualifier"). It sends k concurrent
warm-up pings to the inference function, each holding its instance for h ms so that each lands on
its own instance, and reports how many distinct instances answered and how many of them were cold.
k is clamped to PREHEAT_WARM_MAX_CONCURRENCY. A bad event gets an error answer naming the field,
never an exception (an async invocation that raises is retried twice by Lambda).
"""

from __future__ import annotations

import json
from typing import Any

from functions.metrics import emf
from warmers import clients
from warmers.fanout import fan_out
from warmers.settings import WarmerSettings

SETTINGS = WarmerSettings.from_env()


def handler(event: Any, context: Any) -> dict[str, Any]:
    request = parse_event(event, SETTINGS)
    if "error" in request:
        print(json.dumps({"level": "WARNING", "message": "bad warmer event", **request}))
        return request
    lam = clients.client("lambda", read_timeout_s=SETTINGS.timeout_s, max_pool=SETTINGS.max_concurrency)
    result = fan_out(
        lam,
        request["function"],
        request["qualifier"],
        request["concurrency"],
        request["hold_ms"],
        SETTINGS.backoff,
    ).as_dict()
    if "clamped_from" in request:
        result["clamped_from"] = request["clamped_from"]
    emf.emit(
        SETTINGS.namespace,
        SETTINGS.service,
        {
            "WarmupRequested": result["requested"],
            "WarmupAnswered": result["answered"],
            "WarmupInstances": result["instances"],
            "WarmupColdStarts": result["cold"],
            "WarmupErrors": result["error_count"],
        },
        properties={"function": result["function"], "qualifier": result["qualifier"]},
    )
    return result


def parse_event(event: Any, settings: WarmerSettings) -> dict[str, Any]:
    """The fan-out asked for, or {"preheat": "warmer", "error": {...}} naming the bad field."""
    event = event if isinstance(event, dict) else {}
    concurrency = event.get("concurrency", settings.concurrency)
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 0:
        return _error("invalid_concurrency", f"concurrency must be a whole number >= 0, got {concurrency!r}")
    hold = event.get("hold_ms", settings.hold_ms)
    if isinstance(hold, bool) or not isinstance(hold, int) or not 0 <= hold <= 60_000:
        return _error("invalid_hold", f"hold_ms must be a whole number from 0 to 60000, got {hold!r}")
    function = event.get("function", settings.function)
    qualifier = event.get("qualifier", settings.qualifier)
    if not isinstance(function, str) or not function:
        return _error("invalid_function", f"function must be a function name or ARN, got {function!r}")
    if qualifier is not None and not isinstance(qualifier, str):
        return _error("invalid_qualifier", f"qualifier must be an alias or version string, got {qualifier!r}")
    request: dict[str, Any] = {
        "concurrency": min(concurrency, settings.max_concurrency),
        "hold_ms": hold,
        "function": function,
        "qualifier": qualifier or None,
    }
    if concurrency > settings.max_concurrency:
        request["clamped_from"] = concurrency
    return request


def _error(code: str, message: str) -> dict[str, Any]:
    return {"preheat": "warmer", "error": {"code": code, "message": message}}
