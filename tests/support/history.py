"""Inference metrics in CloudWatch (moto) for controller tests, in the shape the handler's EMF leaves."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any


def put_history(
    cloudwatch: Any,
    counts: dict[int, int],
    latency_ms: float,
    *,
    now: datetime,
    service: str = "preheat",
    namespace: str = "Preheat",
) -> None:
    """counts[k] invocations k minutes before `now` (start=warm), each taking latency_ms."""
    data: list[dict[str, Any]] = []
    for ago, n in counts.items():
        ts = now - timedelta(minutes=ago)
        dims = [{"Name": "service", "Value": service}, {"Name": "start", "Value": "warm"}]
        data.append(
            {"MetricName": "Invocations", "Dimensions": dims, "Timestamp": ts, "Value": n, "Unit": "Count"}
        )
        data.append(
            {
                "MetricName": "Latency",
                "Dimensions": dims,
                "Timestamp": ts,
                "Value": n * latency_ms,
                "Unit": "Milliseconds",
            }
        )
    for i in range(0, len(data), 500):
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[i : i + 500])


def scheduled_event(at: datetime) -> dict[str, Any]:
    """EventBridge's "Scheduled Event" for a rule firing at `at` (the controller decides for that minute)."""
    return {
        "version": "0",
        "source": "aws.events",
        "detail-type": "Scheduled Event",
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "detail": {},
    }


# A burst every 12 minutes for two hours (~4 requests in flight each), the last one 8 minutes ago.
BURSTS = {ago: 90 for ago in range(8, 120, 12)}


def busy_history() -> dict[int, int]:
    """The last 30 minutes: 60 requests a minute of 2 s each (at 2000 ms), an average concurrency of 2."""
    return {ago: 60 for ago in range(2, 32)}
