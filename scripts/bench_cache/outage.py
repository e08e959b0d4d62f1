"""The outage phase: a fleet keeps serving while redis-server is killed and started again."""

from __future__ import annotations

import argparse
import time
from typing import Any

from scripts.bench_cache.replay import Phase, ms, pct
from scripts.bench_cache.workload import zipf_stream


def outage(
    args: argparse.Namespace,
    texts: list[str],
    redis: Any,
    progress: Any,
    phases: dict[str, Phase],
    build_cached: Any,
) -> dict[str, Any]:
    """Fresh instances with a small LRU (so Redis keeps being asked) serve the stream for
    --outage-seconds; redis-server is killed (SIGKILL) at 1/4 of that time and started again on the
    same port at 1/2, leaving time for the breakers' probes (1 s, then 2 s, ...) to find it back."""
    stream = zipf_stream(len(texts), 100_000, args.skew, args.seed + 10)
    env = {
        "PREHEAT_CACHE_REDIS_URL": redis.url,
        "PREHEAT_CACHE_TIMEOUT_MS": str(args.timeout_ms),
        "PREHEAT_CACHE_MEMORY_BYTES": str(64 * 1024),
    }
    fleet = [build_cached(env) for _ in range(args.instances)]
    phase = phases["outage"] = Phase("outage")
    down: list[float] = []
    after_hits = failures = 0
    total = args.outage_seconds
    kill_at, restart_at = total / 4, total / 2
    killed = restarted = 0.0
    bar = progress.add_task("outage", total=round(total, 1))
    began = time.monotonic()
    i = 0
    while (now := time.monotonic() - began) < total:
        if not killed and now >= kill_at:
            redis.kill()
            killed = now
        if killed and not restarted and now >= restart_at:
            redis.start(redis.port)
            restarted = time.monotonic() - began
        text = texts[stream[i % len(stream)]]
        cached = fleet[i % len(fleet)]
        i += 1
        started = time.perf_counter()
        try:
            got = cached.rows([text])
        except Exception:
            failures += 1
            continue
        elapsed = time.perf_counter() - started
        phase.add(got.served_by, elapsed)
        if killed and not restarted:
            down.append(elapsed)
        elif restarted and got.served_by == "redis":
            after_hits += 1
        progress.update(bar, completed=round(now, 1))
    progress.update(bar, completed=round(total, 1))
    return {
        "tier": "redis",
        "requests": i,
        "failed_requests": failures,
        "down_requests": len(down),
        "down_seconds": round(restarted - killed, 2),
        "p50_ms": ms(pct(down, 50)),
        "p99_ms": ms(pct(down, 99)),
        "max_ms": ms(max(down) if down else None),
        "redis_hits_after_restart": after_hits,
        # The most any request of the phase waited on Redis (connects refused, probes, timeouts):
        # the bound PREHEAT_CACHE_TIMEOUT_MS promises, apart from the model's own time.
        "longest_tier_wait_ms": ms(max(c.shared.longest_call for c in fleet if c.shared is not None)),
    }
