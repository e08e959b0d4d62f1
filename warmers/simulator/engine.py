"""The platform, one function at a time: instances, keep-alive, provisioned capacity, pings.

Model (the same in both modes; what differs is who sets the knobs):
  * one request per instance (Lambda's concurrency model): a request takes an idle warm instance if
    there is one, else it is a cold start — a new instance busy for the cold-start penalty plus the
    request's duration;
  * provisioned (pre-loaded) instances serve first, up to the minute's count;
  * an idle on-demand instance is kept for its keep-alive window after it finishes. In provider
    mode the policy may also set a pre-warm: the instance is unloaded and comes back `prewarm` later
    for `keepalive` (Shahrad et al.); a request arriving meanwhile is a cold start and takes over
    that pending load. Among idle instances the most recently used is taken first;
  * a minute's pings arrive together at its start, each holding an instance for `hold_s`: an idle
    provisioned one, else an idle warm one, else a new one (the ping absorbs that cold start);
  * the oracle (`clairvoyant`) has an instance started just in time for every would-be cold start.

Times are seconds from the start of the trace. Wasted memory time counts seconds an instance is
loaded and initialized but idle (the provider's cost); provisioned seconds are counted separately.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt


@dataclass
class FunctionRun:
    cold: int = 0  # real requests that waited for an init
    warm_provisioned: int = 0  # real requests served by provisioned instances
    pings: int = 0
    ping_cold: int = 0  # pings that started a new instance
    ping_batches: int = 0  # warmer invocations (one per minute with pings)
    ping_batches_cold: int = 0  # ... of which at least one ping was cold (the warmer waits for the init)
    jit_starts: int = 0  # oracle: instances started just in time
    od_busy_s: float = 0.0  # real request time on on-demand instances
    pc_busy_s: float = 0.0  # real request time on provisioned instances
    ping_od_s: float = 0.0
    ping_pc_s: float = 0.0
    idle_s: float = 0.0  # on-demand instances loaded but idle (wasted memory time, before x memory)
    cold_minutes: list[int] = field(default_factory=list)  # only when recording
    warm_per_minute: list[int] = field(default_factory=list)  # only when recording


def simulate_function(
    arrivals: npt.NDArray[np.float64],
    durations: npt.NDArray[np.float64],
    provisioned: npt.NDArray[np.int64],
    pings: npt.NDArray[np.int64],
    keepalive_s: npt.NDArray[np.float64],
    prewarm_s: npt.NDArray[np.float64],
    *,
    init_s: float,
    hold_s: float,
    clairvoyant: bool = False,
    record: bool = False,
) -> FunctionRun:
    minutes = len(provisioned)
    end_of_trace = minutes * 60.0
    run = FunctionRun()
    P = provisioned.tolist()
    KA = keepalive_s.tolist()
    PW = prewarm_s.tolist()
    K = pings.tolist()
    ticks = list(range(minutes)) if record else np.flatnonzero(pings).tolist()
    heappush, heappop = heapq.heappush, heapq.heappop
    busy: list[float] = []  # end times of busy on-demand instances
    busy_pc: list[float] = []  # end times of busy provisioned instances
    idle: list[list[float]] = []  # [warm_from, warm_until], most recently released last
    last_minute = minutes - 1

    def release(t: float) -> None:
        while busy and busy[0] <= t:
            e = heappop(busy)
            m = int(e // 60.0)
            if m > last_minute:
                m = last_minute
            ka = KA[m]
            if ka > 0.0:
                pw = PW[m]
                idle.append([e + pw, e + pw + ka])
        while busy_pc and busy_pc[0] <= t:
            heappop(busy_pc)

    def take_idle(t: float) -> bool:
        """Take the most recently used warm instance; drop expired ones met on the way."""
        j = len(idle) - 1
        while j >= 0:
            a, b = idle[j]
            if b <= t:
                run.idle_s += b - a
                del idle[j]
            elif a <= t:
                run.idle_s += t - a
                del idle[j]
                return True
            j -= 1
        return False

    def cancel_pending(t: float) -> None:
        """A cold start takes over the earliest pending pre-warm load (provider mode, Shahrad et al.)."""
        best = -1
        for j, (a, _) in enumerate(idle):
            if a > t and (best < 0 or a < idle[best][0]):
                best = j
        if best >= 0:
            del idle[best]

    def purge(t: float) -> None:
        keep = []
        for a, b in idle:
            if b <= t:
                run.idle_s += b - a
            else:
                keep.append([a, b])
        idle[:] = keep

    def tick(m: int) -> None:
        t = m * 60.0
        release(t)
        k = K[m]
        if k > 0:
            any_cold = False
            for _ in range(k):
                if len(busy_pc) < P[m]:
                    heappush(busy_pc, t + hold_s)
                    run.ping_pc_s += hold_s
                elif take_idle(t):
                    heappush(busy, t + hold_s)
                    run.ping_od_s += hold_s
                else:
                    heappush(busy, t + init_s + hold_s)
                    run.ping_od_s += hold_s
                    run.ping_cold += 1
                    any_cold = True
            run.pings += k
            run.ping_batches += 1
            run.ping_batches_cold += any_cold
        if record:
            warm = sum(1 for a, b in idle if a <= t < b)
            run.warm_per_minute.append(len(busy) + warm + max(P[m], len(busy_pc)))

    ti, n_ticks = 0, len(ticks)
    arr = arrivals.tolist()
    dur = durations.tolist()
    for i in range(len(arr)):
        t = arr[i]
        while ti < n_ticks and ticks[ti] * 60.0 <= t:
            tick(ticks[ti])
            ti += 1
        d = dur[i]
        # release() and take_idle() are inlined in their usual cases: this loop runs once
        # per request of the trace, so the usual case must not pay for function calls.
        while busy and busy[0] <= t:
            e = heappop(busy)
            me = int(e // 60.0)
            if me > last_minute:
                me = last_minute
            ka = KA[me]
            if ka > 0.0:
                pw = PW[me]
                idle.append([e + pw, e + pw + ka])
        while busy_pc and busy_pc[0] <= t:
            heappop(busy_pc)
        m = int(t // 60.0)
        if P[m] and len(busy_pc) < P[m]:
            heappush(busy_pc, t + d)
            run.warm_provisioned += 1
            run.pc_busy_s += d
            continue
        run.od_busy_s += d
        if idle:
            top = idle[-1]
            if top[0] <= t < top[1]:
                run.idle_s += t - top[0]
                idle.pop()
                heappush(busy, t + d)
                continue
            if take_idle(t):
                heappush(busy, t + d)
                continue
        if clairvoyant:
            run.jit_starts += 1
            heappush(busy, t + d)
        else:
            run.cold += 1
            if record:
                run.cold_minutes.append(m)
            heappush(busy, t + init_s + d)
            if idle:
                cancel_pending(t)
        if len(idle) > 64:
            purge(t)
    while ti < n_ticks:
        tick(ticks[ti])
        ti += 1
    release(float("inf"))
    for a, b in idle:
        a, b = min(a, end_of_trace), min(b, end_of_trace)
        run.idle_s += max(0.0, b - a)
    return run
