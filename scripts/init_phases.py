"""Where a cold start's time goes, read from a function's own logs (the twin's or CloudWatch Logs).

Each instance writes one `init phases` line during INIT (functions/inference/phases.py: the handler
module's own steps) and Lambda writes one REPORT line for its first invocation, with `Init
Duration` (spawn to the runtime's first /next) and `Duration` (the first invocation). From the two:

- interpreter and runtime client = Init Duration - the handler module's own time;
- each phase the module marked (imports by package, manifest, checksums, session, ...);
- first response = the first invocation's Duration.

The same events come from the twin (`<state>/logs/<function>.log`, and CloudWatch Logs in its moto)
and from AWS (`filter_log_events` on `/aws/lambda/<function>`), so the breakdown is the same on both.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MESSAGE = "init phases"  # functions.inference.phases.MESSAGE (scripts read logs; they need not import it)
RUNTIME = "interpreter + runtime client"
FIRST = "first response"
_REPORT = re.compile(r"^REPORT RequestId: \S+\s+Duration: ([\d.]+) ms.*?Init Duration: ([\d.]+) ms")
_FILE_LINE = re.compile(r"^\[(?P<stream>[^\]]*\][^\]]*)\] (?P<text>.*)$")


@dataclass(frozen=True)
class InstanceInit:
    """One instance's cold start, as its log stream tells it."""

    stream: str
    init_ms: float  # Lambda's Init Duration
    first_ms: float  # the first invocation's Duration
    module_ms: float  # the part of INIT the handler module's marks cover
    phases: dict[str, float] = field(default_factory=dict)  # in sequence: they add up to module_ms
    beside: dict[str, float] = field(default_factory=dict)  # ran in threads beside them

    def breakdown(self) -> dict[str, float]:
        """Every phase in order, from spawn to the first response."""
        return {RUNTIME: self.init_ms - self.module_ms, **self.phases, FIRST: self.first_ms}


def parse(events: Iterable[tuple[str, str]]) -> list[InstanceInit]:
    """(log stream, message) pairs in time order -> one InstanceInit per stream that has both lines."""
    lines: dict[str, dict[str, Any]] = {}
    reports: dict[str, tuple[float, float]] = {}
    order: list[str] = []
    for stream, message in events:
        text = message.rstrip("\n")
        if stream not in lines and stream not in reports:
            order.append(stream)
        if text.startswith("{") and MESSAGE in text:
            try:
                record = json.loads(text)
            except ValueError:
                continue
            if record.get("message") == MESSAGE and stream not in lines:
                lines[stream] = record
        elif stream not in reports and (match := _REPORT.match(text)):
            reports[stream] = (float(match.group(1)), float(match.group(2)))
    out = []
    for stream in order:
        if stream in lines and stream in reports:
            record, (duration, init) = lines[stream], reports[stream]
            out.append(
                InstanceInit(
                    stream=stream,
                    init_ms=init,
                    first_ms=duration,
                    module_ms=float(record["module_ms"]),
                    phases={k: float(v) for k, v in record["phases_ms"].items()},
                    beside={k: float(v) for k, v in record.get("beside_ms", {}).items()},
                )
            )
    return out


def from_file(path: Path) -> Iterator[tuple[str, str]]:
    """The twin's log file: one `[stream] text` line per event."""
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            match = _FILE_LINE.match(line.rstrip("\n"))
            if match:
                yield match.group("stream"), match.group("text")


def from_cloudwatch(logs: Any, function: str, *, start_ms: int | None = None) -> Iterator[tuple[str, str]]:
    """CloudWatch Logs of a Lambda function (boto3 `logs` client: AWS, or the twin's endpoint)."""
    kwargs: dict[str, Any] = {"logGroupName": f"/aws/lambda/{function}"}
    if start_ms is not None:
        kwargs["startTime"] = start_ms
    events = []
    for page in logs.get_paginator("filter_log_events").paginate(**kwargs):
        events.extend(page.get("events", []))
    events.sort(key=lambda e: (e["timestamp"], e.get("ingestionTime", 0)))
    for event in events:
        yield event["logStreamName"], event["message"]


def merge_orders(orders: list[list[str]]) -> list[str]:
    """One sequence holding every phase of every list, each where its own list has it: a phase only
    one function has goes right after the phase before it in that function's list."""
    merged: list[str] = []
    for order in orders:
        at = 0
        for phase in order:
            if phase in merged:
                at = merged.index(phase) + 1
            else:
                merged.insert(at, phase)
                at += 1
    return merged


def medians(instances: list[InstanceInit], *, beside: bool = False) -> dict[str, float]:
    """The median of every phase over the instances, in the order the phases happen (`beside`: of
    the work that ran in threads beside them)."""
    columns: dict[str, list[float]] = {}
    for instance in instances:
        for name, ms in (instance.beside if beside else instance.breakdown()).items():
            columns.setdefault(name, []).append(ms)
    return {name: statistics.median(values) for name, values in columns.items()}


def summary(instances: list[InstanceInit]) -> dict[str, Any]:
    return {
        "instances": len(instances),
        "phases_p50_ms": {k: round(v, 3) for k, v in medians(instances).items()},
        "beside_p50_ms": {k: round(v, 3) for k, v in medians(instances, beside=True).items()},
        "init_p50_ms": round(statistics.median(i.init_ms for i in instances), 3) if instances else None,
        "first_p50_ms": round(statistics.median(i.first_ms for i in instances), 3) if instances else None,
    }
