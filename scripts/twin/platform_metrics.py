"""What AWS itself publishes about functions and endpoints, published by the twin (the platform here)
into moto's CloudWatch the way AWS publishes it.

- `AWS/Lambda`: Invocations, Errors, Throttles (Count; Errors and Throttles as 0/1 indicators with every
  request, so Sum counts them), Duration (Milliseconds, REPORT's), ConcurrentExecutions (Count, the
  function's executions in flight when a request starts; read with Maximum), and on an alias or version
  with provisioned concurrency: ProvisionedConcurrentExecutions (Count, provisioned instances busy),
  ProvisionedConcurrencyUtilization (None, busy / allocated), ProvisionedConcurrencyInvocations and
  ProvisionedConcurrencySpilloverInvocations (Count). Dimensions as Lambda's: none (the account),
  FunctionName, FunctionName + Resource (`name:alias` or `name:version`) and, for alias invocations,
  FunctionName + Resource + ExecutedVersion; ProvisionedConcurrencyUtilization is not published per
  FunctionName alone.
- `AWS/SageMaker`, per EndpointName + VariantName, the metrics of a serverless endpoint (SageMaker's
  list for serverless endpoints is exhaustive): Invocations, Invocation4XXErrors, Invocation5XXErrors
  (None), ModelLatency, OverheadLatency, ModelSetupTime (Microseconds),
  ServerlessConcurrentExecutionsUtilization (None, in flight / MaxConcurrency) and, with provisioned
  concurrency, ServerlessProvisionedConcurrencyExecutions (Count), ...Utilization (None),
  ...Invocations and ...SpilloverInvocations (Count).

Standard resolution, as AWS publishes these: every value is stamped with the start of its minute and
sent with PutMetricData's Values and Counts (the distribution itself, so percentiles are exact), in
batches as the minute goes on; a minute's data sent in several batches adds up as one. At each
minute's end the provisioned-concurrency gauges are sampled too, so an idle alias with provisioned
concurrency reads 0 rather than nothing, as Lambda emits them for every alias and version that has it.

`CATALOG` is the reference: name -> unit, the statistic AWS's documentation says to read it with, and
the dimension sets it is published under. tests/unit/test_platform_metrics.py checks it against the
dashboard's queries, the stack's scaling metric and aws-cdk-lib's generated metric catalog.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from scripts.twin import emf

LAMBDA = "AWS/Lambda"
SAGEMAKER = "AWS/SageMaker"
MAX_VALUES = 150  # distinct values per PutMetricData datum

Dims = tuple[tuple[str, str], ...]
ACCOUNT: tuple[str, ...] = ()
FUNCTION = ("FunctionName",)
RESOURCE = ("FunctionName", "Resource")
EXECUTED = ("ExecutedVersion", "FunctionName", "Resource")
VARIANT = ("EndpointName", "VariantName")


@dataclass(frozen=True)
class MetricSpec:
    unit: str
    statistic: str  # the one AWS's documentation says to read it with
    dimension_sets: tuple[tuple[str, ...], ...]  # dimension names, sorted


_ALL = (ACCOUNT, FUNCTION, RESOURCE, EXECUTED)
CATALOG: dict[str, dict[str, MetricSpec]] = {
    LAMBDA: {
        "Invocations": MetricSpec("Count", "Sum", _ALL),
        "Errors": MetricSpec("Count", "Sum", _ALL),
        "Throttles": MetricSpec("Count", "Sum", _ALL),
        "Duration": MetricSpec("Milliseconds", "Average", _ALL),
        "ConcurrentExecutions": MetricSpec("Count", "Maximum", _ALL),
        "ProvisionedConcurrentExecutions": MetricSpec("Count", "Maximum", _ALL),
        "ProvisionedConcurrencyUtilization": MetricSpec("None", "Maximum", (ACCOUNT, RESOURCE, EXECUTED)),
        "ProvisionedConcurrencyInvocations": MetricSpec("Count", "Sum", _ALL),
        "ProvisionedConcurrencySpilloverInvocations": MetricSpec("Count", "Sum", _ALL),
    },
    SAGEMAKER: {
        "Invocations": MetricSpec("None", "Sum", (VARIANT,)),
        "Invocation4XXErrors": MetricSpec("None", "Sum", (VARIANT,)),
        "Invocation5XXErrors": MetricSpec("None", "Sum", (VARIANT,)),
        "ModelLatency": MetricSpec("Microseconds", "Average", (VARIANT,)),
        "OverheadLatency": MetricSpec("Microseconds", "Average", (VARIANT,)),
        "ModelSetupTime": MetricSpec("Microseconds", "Average", (VARIANT,)),
        "ServerlessConcurrentExecutionsUtilization": MetricSpec("None", "Maximum", (VARIANT,)),
        "ServerlessProvisionedConcurrencyExecutions": MetricSpec("Count", "Maximum", (VARIANT,)),
        "ServerlessProvisionedConcurrencyUtilization": MetricSpec("None", "Maximum", (VARIANT,)),
        "ServerlessProvisionedConcurrencyInvocations": MetricSpec("Count", "Sum", (VARIANT,)),
        "ServerlessProvisionedConcurrencySpilloverInvocations": MetricSpec("Count", "Sum", (VARIANT,)),
    },
}


def lambda_dimensions(function: str, qualifier: str | None, version: str) -> dict[tuple[str, ...], Dims]:
    """Every dimension set an invocation of `function` through `qualifier` is counted under."""
    sets: dict[tuple[str, ...], Dims] = {ACCOUNT: (), FUNCTION: (("FunctionName", function),)}
    if qualifier and qualifier != "$LATEST":
        resource = (("FunctionName", function), ("Resource", f"{function}:{qualifier}"))
        sets[RESOURCE] = resource
        if qualifier != version:  # an alias: which version it ran
            sets[EXECUTED] = (("ExecutedVersion", version), *resource)
    return sets


def variant_dimensions(endpoint: str, variant: str) -> Dims:
    return (("EndpointName", endpoint), ("VariantName", variant))


Gauge = Callable[[], Iterable[tuple[str, str, Dims, float]]]  # -> (namespace, metric, dims, value)


class PlatformMetrics:
    def __init__(self, shipper: emf.Shipper | None, *, clock: Callable[[], float] = time.time) -> None:
        self._shipper = shipper
        self._clock = clock
        self._lock = threading.Lock()
        # (namespace, metric, dims, minute) -> value -> count
        self._pending: dict[tuple[str, str, Dims, int], collections.Counter[float]] = {}
        self._gauges: list[Gauge] = []
        self._minute = int(clock() // 60)

    def put(self, namespace: str, metric: str, dims: Dims, value: float, at: float | None = None) -> None:
        spec = CATALOG[namespace][metric]  # a KeyError here is a metric AWS does not publish
        if tuple(sorted(name for name, _ in dims)) not in spec.dimension_sets:
            return  # not published under this dimension set
        minute = int((self._clock() if at is None else at) // 60)
        key = (namespace, metric, tuple(sorted(dims)), minute)
        with self._lock:
            counter = self._pending.get(key)
            if counter is None:
                counter = self._pending[key] = collections.Counter()
            counter[float(value)] += 1

    def put_all(self, namespace: str, metric: str, dim_sets: Iterable[Dims], value: float) -> None:
        now = self._clock()
        for dims in dim_sets:
            self.put(namespace, metric, dims, value, now)

    def gauge(self, sample: Gauge) -> None:
        """`sample()` is read at the end of every minute (provisioned-concurrency levels)."""
        self._gauges.append(sample)

    def tick(self) -> None:
        """Called often (the twin's reaper loop): at a minute's end, sample the gauges into it; then
        send what is pending."""
        now = self._clock()
        minute = int(now // 60)
        if minute != self._minute:
            closing = self._minute * 60 + 59.999
            self._minute = minute
            for sample in self._gauges:
                for namespace, metric, dims, value in sample():
                    self.put(namespace, metric, dims, value, closing)
        self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        if self._shipper is None:
            return
        for (namespace, metric, dims, minute), counter in pending.items():
            values = sorted(counter.items())
            for i in range(0, len(values), MAX_VALUES):
                chunk = values[i : i + MAX_VALUES]
                self._shipper.metric(emf.MetricEntry(namespace, {
                    "MetricName": metric,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in dims],
                    "Timestamp": _stamp(minute),
                    "Values": [v for v, _ in chunk],
                    "Counts": [float(c) for _, c in chunk],
                    "Unit": CATALOG[namespace][metric].unit,
                }))


def _stamp(minute: int) -> object:
    import datetime as dt

    return dt.datetime.fromtimestamp(minute * 60, dt.UTC)
