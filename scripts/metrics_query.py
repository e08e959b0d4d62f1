"""Fetch the series of a dashboard definition (infra/dashboard.py) from a CloudWatch endpoint.

Statistics such as Sum, Average, Minimum, Maximum and SampleCount come from GetMetricData, on AWS and
on moto alike. Percentiles (pNN) come from GetMetricData on AWS; plain moto cannot compute them (its
GetMetricData fails on percentile statistics, and no CloudWatch API returns raw datapoints), so for a
local endpoint the percentiles of the runtime's metrics are computed here from the raw values
themselves: the EMF log events in CloudWatch Logs, the same records CloudWatch extracts the metrics
from (Lambda, and preheat's twin, write every function's stdout to `/aws/lambda/<function>`). The
platform's metrics (AWS/Lambda, AWS/SageMaker) have no log events; the twin publishes their values
with PutMetricData's Values and Counts and its moto computes their percentiles
(scripts/twin/moto_cloudwatch.py), so those come from GetMetricData there too. Each period's values are sorted and the
nearest-rank percentile taken (the smallest value with at least p% of the values at or below it).
The count of raw values per period is checked against GetMetricData's SampleCount, and a mismatch
(log events missing or not yet shipped) is reported with the series instead of drawing a wrong line.

Metric math (`+ - * /`, FILL) is evaluated here over the same period grid, on both paths.
"""

from __future__ import annotations

import ast
import math
import operator
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from infra import dashboard as spec
from scripts.twin import emf

MetricKey = tuple[str, str, frozenset[tuple[str, str]]]  # namespace, name, dimensions


@dataclass(frozen=True)
class Window:
    start: datetime  # aligned to the period
    end: datetime
    period_seconds: int

    @classmethod
    def last(cls, minutes: float, period_seconds: int, now: datetime | None = None) -> Window:
        end = now or datetime.now(UTC)
        start = end - timedelta(minutes=minutes)
        start = datetime.fromtimestamp(start.timestamp() // period_seconds * period_seconds, UTC)
        end = datetime.fromtimestamp(math.ceil(end.timestamp() / period_seconds) * period_seconds, UTC)
        return cls(start, end, period_seconds)

    @property
    def buckets(self) -> int:
        return max(1, int((self.end - self.start).total_seconds() // self.period_seconds))

    def index(self, moment: datetime) -> int | None:
        i = int((moment - self.start).total_seconds() // self.period_seconds)
        return i if 0 <= i < self.buckets else None

    def times(self) -> list[datetime]:
        return [self.start + timedelta(seconds=i * self.period_seconds) for i in range(self.buckets)]


@dataclass(frozen=True)
class SeriesData:
    id: str
    label: str
    values: tuple[float, ...]  # one per bucket of the window; NaN where there is no datapoint
    source: str  # "GetMetricData", "EMF logs", "metric math"
    warnings: tuple[str, ...] = ()

    def points(self, window: Window) -> list[tuple[datetime, float]]:
        return [(t, v) for t, v in zip(window.times(), self.values, strict=True) if not math.isnan(v)]


@dataclass
class RawValues:
    """Raw metric values read from EMF log events, by metric and bucket."""

    values: dict[MetricKey, dict[int, list[float]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )
    events: int = 0
    groups: tuple[str, ...] = ()


def metric_key(m: spec.Metric) -> MetricKey:
    return (m.namespace, m.name, frozenset(m.dimensions))


def nearest_rank(values: Iterable[float], percentile: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(percentile / 100 * len(ordered)))
    return ordered[rank - 1]


def emf_values(message: str) -> list[tuple[MetricKey, int, list[float]]]:
    """(metric, timestamp ms, values) for every metric and dimension set in one EMF log line."""
    return [((m.namespace, m.name, frozenset(m.dimensions)), m.timestamp_ms, list(m.values)) for m in emf.metrics(message)]


class CloudWatchSource:
    def __init__(
        self,
        cloudwatch: Any,
        logs: Any | None,
        *,
        local: bool,
        log_group_prefixes: tuple[str, ...] = ("/aws/lambda/",),
    ) -> None:
        """`local`: the endpoint is moto (percentiles from EMF logs) rather than CloudWatch itself."""
        self.cloudwatch = cloudwatch
        self.logs = logs
        self.local = local
        self.prefixes = log_group_prefixes
        self._raw: RawValues | None = None

    # -- GetMetricData ------------------------------------------------------------------------------
    def metric_data(
        self, metrics: list[spec.Metric], stat_of: Callable[[spec.Metric], str], window: Window
    ) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for i in range(0, len(metrics), 500):
            batch = metrics[i : i + 500]
            queries = [
                {
                    "Id": f"q{j}",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": m.namespace,
                            "MetricName": m.name,
                            "Dimensions": [{"Name": k, "Value": v} for k, v in m.dimensions],
                        },
                        "Period": window.period_seconds,
                        "Stat": stat_of(m),
                    },
                    "ReturnData": True,
                }
                for j, m in enumerate(batch)
            ]
            values = {q["Id"]: [math.nan] * window.buckets for q in queries}
            token: str | None = None
            while True:
                kwargs: dict[str, Any] = {
                    "MetricDataQueries": queries,
                    "StartTime": window.start,
                    "EndTime": window.end,
                }
                if token:
                    kwargs["NextToken"] = token
                reply = self.cloudwatch.get_metric_data(**kwargs)
                for result in reply["MetricDataResults"]:
                    for stamp, value in zip(result["Timestamps"], result["Values"], strict=True):
                        index = window.index(stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC))
                        if index is not None and value is not None:
                            values[result["Id"]][index] = float(value)
                token = reply.get("NextToken")
                if not token:
                    break
            for j, m in enumerate(batch):
                out[m.id] = values[f"q{j}"]
        return out

    # -- raw values from EMF logs -------------------------------------------------------------------
    def raw(self, window: Window) -> RawValues:
        if self._raw is not None:
            return self._raw
        raw = RawValues()
        if self.logs is None:
            self._raw = raw
            return raw
        groups: list[str] = []
        for prefix in self.prefixes:
            for page in self.logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=prefix):
                groups += [g["logGroupName"] for g in page["logGroups"]]
        raw.groups = tuple(groups)
        start_ms = int(window.start.timestamp() * 1000)
        end_ms = int(window.end.timestamp() * 1000)
        for group in groups:
            token: str | None = None
            while True:
                kwargs: dict[str, Any] = {"logGroupName": group, "startTime": start_ms, "endTime": end_ms}
                if token:
                    kwargs["nextToken"] = token
                page = self.logs.filter_log_events(**kwargs)
                for event in page.get("events", []):
                    raw.events += 1
                    for key, stamp, values in emf_values(event["message"]):
                        index = window.index(datetime.fromtimestamp(stamp / 1000, UTC))
                        if index is not None:
                            raw.values[key][index].extend(values)
                new = page.get("nextToken")
                if not new or new == token or not page.get("events"):
                    break
                token = new
        self._raw = raw
        return raw

    # -- one graph ----------------------------------------------------------------------------------
    def fetch(self, series: tuple[spec.Series, ...], window: Window) -> dict[str, SeriesData]:
        metrics = [s for s in series if isinstance(s, spec.Metric)]
        # The platform's own metrics (AWS/*) have no EMF log events: their percentiles come from
        # GetMetricData, which the twin's moto answers (scripts/twin/moto_cloudwatch.py).
        from_logs = [m for m in metrics if m.percentile is not None and self.local and not m.namespace.startswith("AWS/")]
        native = [m for m in metrics if m not in from_logs]
        local_pct = from_logs
        data: dict[str, SeriesData] = {}
        fetched = self.metric_data(native, lambda m: m.stat, window) if native else {}
        for m in native:
            data[m.id] = SeriesData(m.id, m.label or m.id, tuple(fetched[m.id]), "GetMetricData")
        if local_pct:
            counts = self.metric_data(local_pct, lambda m: "SampleCount", window)
            raw = self.raw(window)
            for m in local_pct:
                assert m.percentile is not None
                buckets = raw.values.get(metric_key(m), {})
                values = [nearest_rank(buckets.get(i, []), m.percentile) for i in range(window.buckets)]
                warnings = _count_mismatch(counts[m.id], buckets, window)
                data[m.id] = SeriesData(m.id, m.label or m.id, tuple(values), "EMF logs", warnings)
        for s in series:
            if isinstance(s, spec.Expression):
                inputs = {k: np.array(v.values, dtype=float) for k, v in data.items()}
                result = evaluate(s.expression, inputs, window.buckets)
                data[s.id] = SeriesData(s.id, s.label, tuple(float(x) for x in result), "metric math")
        return data


def _count_mismatch(
    counts: list[float], buckets: Mapping[int, list[float]], window: Window
) -> tuple[str, ...]:
    missing = 0
    expected = 0
    for i in range(window.buckets):
        want = 0 if math.isnan(counts[i]) else round(counts[i])
        have = len(buckets.get(i, []))
        expected += want
        missing += max(0, want - have)
    if missing:
        return (
            f"{missing} of {expected} datapoints have no EMF log event in CloudWatch Logs: percentiles cover the "
            f"rest only (are the function logs shipped to /aws/lambda/<function>?)",
        )
    return ()


# -- metric math ------------------------------------------------------------------------------------

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def evaluate(expression: str, inputs: Mapping[str, np.ndarray[Any, Any]], size: int) -> np.ndarray[Any, Any]:
    """CloudWatch metric math, the subset the dashboard uses. Missing values are NaN and propagate
    (as CloudWatch drops a timestamp where an input has none) unless FILL(series, value) fills them;
    division by zero gives no datapoint."""
    tree = ast.parse(expression, mode="eval")

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = ev(node.left), ev(node.right)
            with np.errstate(divide="ignore", invalid="ignore"):
                result = _BINARY[type(node.op)](np.asarray(left, dtype=float), np.asarray(right, dtype=float))
            return np.where(np.isinf(result), np.nan, result)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return np.full(size, float(node.value))
        if isinstance(node, ast.Name):
            if node.id not in inputs:
                raise ValueError(f"metric math {expression!r}: unknown series {node.id!r}")
            return inputs[node.id]
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "FILL"
            and len(node.args) == 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, int | float)
        ):
            values = np.array(ev(node.args[0]), dtype=float)
            return np.where(np.isnan(values), float(node.args[1].value), values)
        raise ValueError(f"metric math {expression!r}: {ast.dump(node)[:60]} is not supported locally")

    return np.asarray(ev(tree), dtype=float)
