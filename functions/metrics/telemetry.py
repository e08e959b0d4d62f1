"""One line per invocation: an EMF metrics blob that carries the invocation's log record as metadata.

Metrics (namespace configurable, dimensions `service` and `start`):
  Invocations, ColdStarts, Errors (5xx), ClientErrors (4xx): Count, on every invocation (0 or 1),
    so rates are Sum/Sum and no series has gaps;
  Latency: Milliseconds, on every request except warm-up pings. For `cold` it includes this
    instance's init, because the request waited for it; Lambda's own REPORT line has the same split;
  InitDuration: Milliseconds, once per instance, on its first invocation.
The log record (Powertools Logger's layout: level, location, message "invocation", timestamp, service,
then start, instance id, route, status, latency, request id) rides in the same blob as metadata, as
Powertools' `add_metadata` puts it: one encode and one write instead of two. Measured here right after
a model run (the case that counts: the run evicts the interpreter's working set from the CPU caches),
194 -> 126 µs p50 per invocation (1.55x). Request bodies are never logged.
"""

from __future__ import annotations

import time
from typing import Any

from functions.metrics.coldstart import Start
from functions.metrics.emf import COUNT, MILLISECONDS, EmfWriter
from functions.metrics.logs import Clock, configure_stdlib, trace_id


class Telemetry:
    def __init__(self, *, service: str, namespace: str, init_ms: float) -> None:
        self.init_ms = init_ms
        self.service = service
        self.emf = EmfWriter(namespace, {"service": service})
        self._clock = Clock()
        self._directives: dict[tuple[bool, bool], list[dict[str, Any]]] = {}
        # The serving core logs through stdlib `logging.getLogger("preheat")`; same JSON layout.
        configure_stdlib("preheat", service)

    def record(
        self,
        start: Start,
        *,
        latency_ms: float,
        status: int,
        route: str,
        request_id: str,
        error_code: str | None = None,
        cache: str | None = None,
    ) -> None:
        # Hot path: after a model run, every object touched here is a cache miss, so the blob is
        # built in one literal around a directive cached per shape (first invocation, warm-up).
        kind, first = start.kind, start.first
        shape = (first, kind == "warmup")
        directive = self._directives.get(shape)
        if directive is None:
            directive = self._directives[shape] = self.emf.directive(
                ("start", *self.emf.dimensions), _metrics(*shape)
            )
        now = time.time()
        latency = round(latency_ms, 3)
        blob: dict[str, Any] = {
            "_aws": {"Timestamp": int(now * 1000), "CloudWatchMetrics": directive},
            "start": kind,
            "service": self.service,
        }
        if first:
            blob["InitDuration"] = [float(self.init_ms)]
        if not shape[1]:
            blob["Latency"] = [round(latency_ms + self.init_ms, 3) if kind == "cold" else latency]
        blob["Invocations"] = [1.0]
        blob["ColdStarts"] = [1.0 if kind == "cold" else 0.0]
        blob["Errors"] = [1.0 if status >= 500 else 0.0]
        blob["ClientErrors"] = [1.0 if 400 <= status < 500 else 0.0]
        # The log record, as metadata (Powertools Logger's layout).
        blob["level"] = "INFO"
        blob["location"] = "record"
        blob["message"] = "invocation"
        blob["timestamp"] = self._clock.timestamp(now)
        blob["first_invocation"] = first
        blob["instance_id"] = start.instance_id
        blob["route"] = route
        blob["status"] = status
        blob["latency_ms"] = latency
        blob["request_id"] = request_id
        if first:
            blob["init_ms"] = round(self.init_ms, 3)
        if error_code:
            blob["error_code"] = error_code
        if cache:
            blob["cache"] = cache
        trace = trace_id()
        if trace:
            blob["xray_trace_id"] = trace
        self.emf.write(blob)


def _metrics(first: bool, warmup: bool) -> tuple[tuple[str, str], ...]:
    """The metrics an invocation carries, in the order the blob lists them."""
    head = (("InitDuration", MILLISECONDS),) if first else ()
    latency = () if warmup else (("Latency", MILLISECONDS),)
    return (
        *head,
        *latency,
        ("Invocations", COUNT),
        ("ColdStarts", COUNT),
        ("Errors", COUNT),
        ("ClientErrors", COUNT),
    )
