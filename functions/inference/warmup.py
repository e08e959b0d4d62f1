"""Warm-up pings: answered before any HTTP handling, never touching the model, cache or latency metrics.

A ping is `{"preheat": "warmup", "hold_ms": 100}` (from preheat's warmer) or an EventBridge
scheduled event. `hold_ms` keeps this instance busy for that long, so that concurrent pings land on
distinct instances instead of queueing on one.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from functions.metrics import Start


def is_warmup(event: Any) -> bool:
    if not isinstance(event, dict):
        return False
    if event.get("preheat") == "warmup":
        return True
    return event.get("source") == "aws.events" and event.get("detail-type") == "Scheduled Event"


def answer(event: Mapping[str, Any], start: Start, *, init_ms: float, max_hold_ms: int) -> dict[str, Any]:
    hold = event.get("hold_ms", 0)
    if isinstance(hold, bool) or not isinstance(hold, int | float) or not 0 <= hold <= max_hold_ms:
        return {
            "preheat": "warmup",
            "error": {
                "code": "invalid_hold",
                "message": f"hold_ms must be a number from 0 to {max_hold_ms} (PREHEAT_WARMUP_MAX_HOLD_MS), got {hold!r}",
            },
        }
    if hold:
        time.sleep(hold / 1000)
    return {
        "preheat": "warmup",
        "instance_id": start.instance_id,
        # Whether this ping absorbed a start some request would otherwise have waited for.
        "cold": start.paid_init,
        "init_ms": round(init_ms, 3),
        "held_ms": hold,
    }
