"""Lambda's log pipeline, locally: instances' stdout lines go to CloudWatch Logs, and the Embedded
Metric Format (EMF) blobs among them become CloudWatch metrics, in moto.

`metrics(line)` reads the metrics of one EMF line; `parse(line)` turns them into PutMetricData
entries (one per metric per dimension set, with the unit and timestamp it carries). `Shipper` batches metrics and log events on a thread, so the
invocation path never waits for moto, and a moto that is down only costs a warning.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import queue
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("preheat.twin")

_UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
    "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
    "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
    "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
}


@dataclass(frozen=True)
class MetricEntry:
    namespace: str
    datum: dict[str, Any]  # a PutMetricData MetricDatum


@dataclass(frozen=True)
class EmfMetric:
    """One metric of one dimension set in an EMF blob, as the blob states it."""

    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]  # in the directive's order
    timestamp_ms: int
    values: tuple[float, ...]
    unit: str  # as written ("None" if absent), not checked against CloudWatch's units
    storage_resolution: Any  # as written (60 if absent)


def metrics(line: str) -> list[EmfMetric]:
    """Every metric and dimension set in one EMF line; [] for any other line (or malformed EMF, as
    CloudWatch drops it). The one EMF reader: the twin's log pipeline and scripts/metrics_query.py."""
    line = line.strip()
    if not (line.startswith("{") and '"_aws"' in line):
        return []
    try:
        blob = json.loads(line)
        meta = blob["_aws"]
        stamp = int(meta["Timestamp"])
        out = []
        for directive in meta["CloudWatchMetrics"]:
            namespace = str(directive["Namespace"])
            for metric in directive["Metrics"]:
                name = str(metric["Name"])
                if name not in blob:
                    continue
                raw = blob[name]
                values = tuple(float(v) for v in (raw if isinstance(raw, list) else [raw]))
                unit = str(metric.get("Unit") or "None")
                for dims in directive.get("Dimensions") or [[]]:
                    pairs = tuple((str(d), str(blob[d])) for d in dims if d in blob)
                    out.append(EmfMetric(namespace, name, pairs, stamp, values, unit, metric.get("StorageResolution", 60)))
        return out
    except (ValueError, KeyError, TypeError):
        return []


def parse(line: str) -> list[MetricEntry]:
    """The PutMetricData entries of one EMF line (metrics without values left out); [] for any other
    line, or for malformed EMF."""
    entries = []
    try:
        for metric in metrics(line):
            if not metric.values:
                continue
            datum: dict[str, Any] = {
                "MetricName": metric.name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in metric.dimensions],
                "Timestamp": dt.datetime.fromtimestamp(metric.timestamp_ms / 1000, dt.UTC),
                "Values": list(metric.values),
                "Counts": [1.0] * len(metric.values),
                "Unit": metric.unit if metric.unit in _UNITS else "None",
            }
            if int(metric.storage_resolution) == 1:
                datum["StorageResolution"] = 1
            entries.append(MetricEntry(metric.namespace, datum))
    except (ValueError, TypeError):
        return []
    return entries


@dataclass(frozen=True)
class LogEvent:
    group: str
    stream: str
    timestamp_ms: int
    message: str


class Shipper:
    """Sends metric entries and log events to CloudWatch in batches, from one daemon thread."""

    def __init__(self, client_factory: Any, *, interval_s: float = 0.25) -> None:
        self._factory = client_factory  # () -> (cloudwatch client, logs client)
        self._queue: queue.Queue[MetricEntry | LogEvent | None] = queue.Queue()
        self._interval = interval_s
        self._thread = threading.Thread(target=self._run, name="preheat-twin-shipper", daemon=True)
        self._streams: set[tuple[str, str]] = set()
        self.metrics_sent = 0
        self.failures = 0
        self._pending = 0  # queued and not yet sent (or dropped)
        self._done = threading.Condition()

    def start(self) -> None:
        self._thread.start()

    def metric(self, entry: MetricEntry) -> None:
        self._enqueue(entry)

    def log(self, event: LogEvent) -> None:
        self._enqueue(event)

    def _enqueue(self, item: MetricEntry | LogEvent) -> None:
        with self._done:
            self._pending += 1
        self._queue.put(item)

    def stop(self, timeout: float = 5.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far was sent (or dropped)."""
        with self._done:
            return self._done.wait_for(lambda: self._pending == 0, timeout)

    def _run(self) -> None:
        cloudwatch, logs = self._factory()
        stopping = False
        while not stopping:
            batch: list[MetricEntry | LogEvent] = []
            try:
                first = self._queue.get(timeout=1.0)
            except queue.Empty:
                continue
            deadline = time.monotonic() + self._interval
            item: MetricEntry | LogEvent | None = first
            while True:
                if item is None:
                    stopping = True
                    break
                batch.append(item)
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
            try:
                self._send(cloudwatch, logs, batch)
            finally:
                with self._done:
                    self._pending -= len(batch)
                    self._done.notify_all()

    def _send(self, cloudwatch: Any, logs: Any, batch: list[MetricEntry | LogEvent]) -> None:
        metrics: dict[str, list[dict[str, Any]]] = defaultdict(list)
        events: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for item in batch:
            if isinstance(item, MetricEntry):
                metrics[item.namespace].append(item.datum)
            else:
                events[(item.group, item.stream)].append({"timestamp": item.timestamp_ms, "message": item.message})
        for namespace, data in metrics.items():
            for i in range(0, len(data), 500):
                try:
                    cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[i : i + 500])
                    self.metrics_sent += len(data[i : i + 500])
                except Exception as exc:  # CloudWatch down or throttled: metrics are dropped, never the twin
                    self.failures += 1
                    log.warning("could not put %d metrics in %s: %s", len(data[i : i + 500]), namespace, exc)
        for (group, stream), items in events.items():
            try:
                if (group, stream) not in self._streams:
                    _ensure_stream(logs, group, stream)
                    self._streams.add((group, stream))
                items.sort(key=lambda e: e["timestamp"])
                for i in range(0, len(items), 1000):
                    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=items[i : i + 1000])
            except Exception as exc:
                self.failures += 1
                log.warning("could not put %d log events in %s: %s", len(items), group, exc)


def _ensure_stream(logs: Any, group: str, stream: str) -> None:
    for call, kwargs in (
        (logs.create_log_group, {"logGroupName": group}),
        (logs.create_log_stream, {"logGroupName": group, "logStreamName": stream}),
    ):
        try:
            call(**kwargs)
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
