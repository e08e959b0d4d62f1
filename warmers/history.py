"""Recent invocations of the inference function, per minute, from its EMF metrics in CloudWatch.

The inference handler emits `Invocations` (Count) and `Latency` (Milliseconds) with dimensions
`service` and `start` (cold | provisioned | restore | warm | warmup). Real demand is every start kind
but `warmup`: the Sum of Invocations per minute is the policy's invocation count, the Sum of Latency
is its busy time (Little's law gives the average concurrency from it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from warmers import retry
from warmers.settings import Backoff

SERVED_STARTS = ("cold", "provisioned", "restore", "warm")


@dataclass(frozen=True)
class History:
    start: datetime  # UTC, on a minute boundary: the first minute of the arrays
    invocations: npt.NDArray[np.int64]
    busy_s: npt.NDArray[np.float64]

    @property
    def minutes(self) -> int:
        return int(self.invocations.shape[0])

    @property
    def day_offset_min(self) -> int:
        return self.start.hour * 60 + self.start.minute

    def from_midnight(self) -> History:
        """The same minutes, after zero minutes back to UTC midnight of the first one.

        Policies keep time by the minute index of their replay (`ping` every 5 minutes, pings that
        refresh Lambda's keep-alive every 8). The controller replays a window that has moved by a
        minute since its last run; started at the window's first minute, those clocks restart with
        it, and every run repeats the same decision (a ping every minute, or never). Started at
        midnight, as the simulator's traces are, they follow the wall clock. The zeros add nothing
        the replay did not already assume: it knows of no invocation before its window.
        """
        pad = self.day_offset_min
        if pad == 0:
            return self
        return History(
            self.start - timedelta(minutes=pad),
            np.concatenate([np.zeros(pad, dtype=np.int64), self.invocations]),
            np.concatenate([np.zeros(pad, dtype=np.float64), self.busy_s]),
        )


def floor_minute(t: datetime) -> datetime:
    t = t.astimezone(UTC) if t.tzinfo else t.replace(tzinfo=UTC)
    return t.replace(second=0, microsecond=0)


def read_history(
    cloudwatch: Any,
    *,
    namespace: str,
    service: str,
    end: datetime,
    minutes: int,
    backoff: Backoff,
) -> History:
    """Minutes [end - minutes, end) of real (non-warm-up) invocations and their busy seconds."""
    end = floor_minute(end)
    start = end - timedelta(minutes=minutes)
    queries = []
    for i, kind in enumerate(SERVED_STARTS):
        for metric, prefix in (("Invocations", "inv"), ("Latency", "lat")):
            queries.append(
                {
                    "Id": f"{prefix}{i}",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": namespace,
                            "MetricName": metric,
                            "Dimensions": [
                                {"Name": "service", "Value": service},
                                {"Name": "start", "Value": kind},
                            ],
                        },
                        "Period": 60,
                        "Stat": "Sum",
                    },
                    "ReturnData": True,
                }
            )
    invocations = np.zeros(minutes, dtype=np.float64)
    latency_ms = np.zeros(minutes, dtype=np.float64)
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"MetricDataQueries": queries, "StartTime": start, "EndTime": end}
        if token:
            kwargs["NextToken"] = token
        page = retry.call(lambda kw=kwargs: cloudwatch.get_metric_data(**kw), backoff)  # type: ignore[misc]
        for result in page.get("MetricDataResults", []):
            target = invocations if result["Id"].startswith("inv") else latency_ms
            for ts, value in zip(result.get("Timestamps", []), result.get("Values", []), strict=False):
                idx = int((floor_minute(ts) - start).total_seconds() // 60)
                if 0 <= idx < minutes:
                    target[idx] += float(value)
        token = page.get("NextToken")
        if not token:
            break
    return History(start, np.rint(invocations).astype(np.int64), latency_ms / 1000.0)
