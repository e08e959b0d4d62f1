"""One EMF metrics blob and one JSON log line per invocation, through Powertools.

Metrics (namespace configurable, dimensions `service` and `start`):
  Invocations, ColdStarts, Errors (5xx), ClientErrors (4xx): Count, on every invocation (0 or 1),
    so rates are Sum/Sum and no series has gaps;
  Latency: Milliseconds, on every request except warm-up pings. For `cold` it includes this
    instance's init, because the request waited for it; Lambda's own REPORT line has the same split;
  InitDuration: Milliseconds, once per instance, on its first invocation.
Request bodies are never logged.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from functions.metrics.coldstart import Start


class Telemetry:
    def __init__(self, *, service: str, namespace: str, init_ms: float) -> None:
        self.init_ms = init_ms
        self.metrics = Metrics(namespace=namespace, service=service)
        # logger_name "preheat" makes the core's stdlib `logging.getLogger("preheat")` log as JSON too.
        self.logger = Logger(service=service, logger_name="preheat")

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
        metrics = self.metrics
        metrics.add_dimension(name="start", value=start.kind)
        if start.first:
            metrics.add_metric(name="InitDuration", unit=MetricUnit.Milliseconds, value=self.init_ms)
        if start.kind != "warmup":
            total = latency_ms + (self.init_ms if start.kind == "cold" else 0.0)
            metrics.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=round(total, 3))
        metrics.add_metric(name="Invocations", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="ColdStarts", unit=MetricUnit.Count, value=1 if start.kind == "cold" else 0)
        metrics.add_metric(name="Errors", unit=MetricUnit.Count, value=1 if status >= 500 else 0)
        metrics.add_metric(name="ClientErrors", unit=MetricUnit.Count, value=1 if 400 <= status < 500 else 0)
        metrics.flush_metrics()
        fields = {
            "start": start.kind,
            "first_invocation": start.first,
            "instance_id": start.instance_id,
            "route": route,
            "status": status,
            "latency_ms": round(latency_ms, 3),
            "request_id": request_id,
        }
        if start.first:
            fields["init_ms"] = round(self.init_ms, 3)
        if error_code:
            fields["error_code"] = error_code
        if cache:
            fields["cache"] = cache
        self.logger.info("invocation", extra=fields)
