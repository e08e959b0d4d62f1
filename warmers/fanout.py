"""Concurrent warm-up pings, each held long enough that every one lands on its own instance.

preheat's inference handler answers `{"preheat": "warmup", "hold_ms": N}` before any HTTP handling
with `{"preheat": "warmup", "instance_id", "cold", "init_ms", "held_ms"}` after keeping the instance
busy for N ms. k concurrent pings therefore need k distinct instances: Lambda starts the missing ones
(the pings absorb those cold starts) and refreshes the idle timer of the rest.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from warmers import retry
from warmers.settings import Backoff


@dataclass(frozen=True)
class Answer:
    instance_id: str | None = None
    cold: bool = False
    init_ms: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class FanOut:
    function: str
    qualifier: str | None
    requested: int
    answers: tuple[Answer, ...]
    duration_ms: float

    @property
    def answered(self) -> int:
        return sum(1 for a in self.answers if a.error is None)

    @property
    def instances(self) -> int:
        return len({a.instance_id for a in self.answers if a.instance_id})

    @property
    def cold(self) -> int:
        return sum(1 for a in self.answers if a.error is None and a.cold)

    @property
    def errors(self) -> list[str]:
        return [a.error for a in self.answers if a.error]

    def as_dict(self) -> dict[str, Any]:
        return {
            "preheat": "warmer",
            "function": self.function,
            "qualifier": self.qualifier,
            "requested": self.requested,
            "answered": self.answered,
            "instances": self.instances,
            "cold": self.cold,
            # Pings that found an instance another ping had used: hold_ms was shorter than the spread.
            "shared": self.answered - self.instances,
            "errors": self.errors[:10],
            "error_count": len(self.errors),
            "duration_ms": round(self.duration_ms, 1),
        }


def fan_out(
    lambda_client: Any,
    function: str,
    qualifier: str | None,
    concurrency: int,
    hold_ms: int,
    backoff: Backoff,
) -> FanOut:
    payload = json.dumps({"preheat": "warmup", "hold_ms": hold_ms}).encode()
    target: dict[str, Any] = {
        "FunctionName": function,
        "InvocationType": "RequestResponse",
        "Payload": payload,
    }
    if qualifier:
        target["Qualifier"] = qualifier

    def ping(_: int) -> Answer:
        try:
            response = retry.call(lambda: lambda_client.invoke(**target), backoff)
        except Exception as exc:
            return Answer(error=f"{retry.error_code(exc)}: {exc}"[:300])
        return _parse(response)

    started = time.perf_counter()
    if concurrency <= 0:
        return FanOut(function, qualifier, 0, (), 0.0)
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="warmup") as pool:
        answers = tuple(pool.map(ping, range(concurrency)))
    return FanOut(function, qualifier, concurrency, answers, (time.perf_counter() - started) * 1000)


def _parse(response: dict[str, Any]) -> Answer:
    raw = response["Payload"].read() if response.get("Payload") is not None else b""
    if response.get("FunctionError"):
        return Answer(error=f"function_error: {raw[:200].decode(errors='replace')}")
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        return Answer(error="bad_answer: the warm-up answer is not JSON")
    if not isinstance(body, dict) or body.get("preheat") != "warmup":
        return Answer(error="not_preheat: the function did not answer as preheat's warm-up handler")
    if isinstance(body.get("error"), dict):
        return Answer(error=f"{body['error'].get('code', 'error')}: {body['error'].get('message', '')}"[:300])
    init = body.get("init_ms")
    return Answer(
        instance_id=str(body.get("instance_id") or "") or None,
        cold=bool(body.get("cold")),
        init_ms=float(init) if isinstance(init, int | float) else None,
    )
