"""Traffic for demos and benchmarks: bursts and steady requests through a Function URL, each sample
joined with the twin's record of it (INIT, Duration, whether it waited for a cold start)."""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from scripts.twin.client import Prepared, TwinClient, UrlClient


@dataclass(frozen=True)
class Sample:
    function: str
    phase: str
    status: int
    start: str  # the handler's x-preheat-start header ("-" when it sends none)
    client_ms: float
    request_id: str
    cold: bool | None = None  # from the twin's record: this request waited for an INIT
    init_ms: float | None = None
    duration_ms: float | None = None
    instance_kind: str | None = None
    cache: str = "-"  # the handler's x-preheat-cache header: which cache level answered, or "miss"


def _sample(function: str, phase: str, url: UrlClient, path: str, body: Any, prepared: Prepared | None = None) -> Sample:
    reply = url.send(prepared) if prepared is not None else url.request("POST", path, body)
    return Sample(function, phase, reply.status, reply.headers.get("x-preheat-start", "-"), reply.ms,
                  reply.headers.get("x-amzn-requestid", ""), cache=reply.headers.get("x-preheat-cache", "-"))


def burst(twin: TwinClient, function: str, phase: str, path: str, body: Any, n: int) -> list[Sample]:
    """n requests at the same moment, each on its own connection (opened before the clock starts)."""
    clients = [twin.url_client(function) for _ in range(n)]
    for client in clients:
        client.connect()
    barrier = threading.Barrier(n)

    def one(client: UrlClient) -> Sample:
        prepared = client.prepare("POST", path, body)  # signed before the start: they arrive together
        barrier.wait()
        return _sample(function, phase, client, path, body, prepared)

    try:
        with ThreadPoolExecutor(max_workers=n) as pool:
            return list(pool.map(one, clients))
    finally:
        for client in clients:
            client.close()


def steady(
    twin: TwinClient, function: str, phase: str, path: str, body: Any, total: int, concurrency: int
) -> list[Sample]:
    """`total` requests from `concurrency` closed-loop clients on keep-alive connections. `body` may be
    a function of the request's number (0..total-1), for traffic that is not one repeated request."""
    make = body if callable(body) else (lambda _: body)
    numbers = list(range(total))
    chunks = [numbers[i::concurrency] for i in range(concurrency)]

    def loop(chunk: list[int]) -> list[Sample]:
        client = twin.url_client(function)
        client.connect()
        try:
            return [_sample(function, phase, client, path, make(i)) for i in chunk]
        finally:
            client.close()

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return [s for chunk in pool.map(loop, chunks) for s in chunk]


def one(twin: TwinClient, function: str, phase: str, path: str, body: Any, client: UrlClient | None = None) -> Sample:
    own = client is None
    url = client or twin.url_client(function)
    if own:
        url.connect()
    try:
        return _sample(function, phase, url, path, body)
    finally:
        if own:
            url.close()


def with_records(twin: TwinClient, samples: Sequence[Sample]) -> list[Sample]:
    """Each sample with what the twin recorded for its request id."""
    _, records = twin.invocations(0)
    by_id = {r["request_id"]: r for r in records}
    out = []
    for sample in samples:
        record = by_id.get(sample.request_id)
        if record is None:
            out.append(sample)
            continue
        out.append(dataclasses.replace(
            sample, cold=bool(record["cold"]), init_ms=record["init_ms"], duration_ms=record["duration_ms"],
            instance_kind=record["instance_kind"],
        ))
    return out


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
