"""The interface every policy implements, shared by the simulator and the live controller.

A policy is called once per minute, in order, for all the functions it manages at once (arrays over
functions, so the simulator runs 679 functions in one numpy step). It sees what CloudWatch would show
at that moment — invocations and busy seconds (the Sum of Latency) per minute, up to `visible`
minutes — and returns a `Decision` for the current minute:

  provisioned  instances kept initialized: Lambda provisioned concurrency / SageMaker Serverless
               ProvisionedConcurrency in *aws* mode; instances the provider pre-loads in *provider* mode
  pings        warm-up invocations fanned out at the start of the minute (the warmer's fan-out)
  keepalive_s  *provider* mode: how long an instance stays loaded after it finishes (NaN = platform's)
  prewarm_s    *provider* mode: unload for this long after finishing, then load for keepalive_s

In *aws* mode the platform keeps idle instances for its own keep-alive; a policy that wants longer
windows asks for pings instead (`PingKeeper`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

Mode = Literal["provider", "aws"]
MODES: tuple[Mode, ...] = ("provider", "aws")

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class PolicyContext:
    mode: Mode
    memory_mb: FloatArray  # [F]
    platform_keepalive_s: float = 600.0
    cold_start_s: float = 0.364
    ping_hold_s: float = 0.1
    max_concurrency: int = 1000  # no decision ever exceeds it (provisioned or pings)

    @property
    def n_functions(self) -> int:
        return int(self.memory_mb.shape[0])


@dataclass(frozen=True)
class Observation:
    """What is known at the start of `minute`: metrics for minutes [0, visible)."""

    minute: int
    visible: int
    invocations: IntArray  # [F, >= visible]; only columns < visible may be read
    busy_s: FloatArray  # [F, >= visible]
    day_offset_min: int = 0  # UTC minute of day of minute 0 (the simulator's traces start at midnight)

    @property
    def minute_of_day(self) -> int:
        return (self.minute + self.day_offset_min) % 1440

    def latest(self) -> tuple[IntArray, FloatArray] | None:
        if self.visible <= 0:
            return None
        return self.invocations[:, self.visible - 1], self.busy_s[:, self.visible - 1]


@dataclass(frozen=True)
class Decision:
    provisioned: IntArray
    pings: IntArray
    keepalive_s: FloatArray
    prewarm_s: FloatArray

    @classmethod
    def idle(cls, n: int) -> Decision:
        return cls(
            provisioned=np.zeros(n, dtype=np.int64),
            pings=np.zeros(n, dtype=np.int64),
            keepalive_s=np.full(n, np.nan),
            prewarm_s=np.zeros(n),
        )

    def bounded(self, maximum: int) -> Decision:
        """The same decision with counts clipped to [0, maximum]: the one place the bound is enforced."""
        return Decision(
            provisioned=np.clip(self.provisioned, 0, maximum).astype(np.int64),
            pings=np.clip(self.pings, 0, maximum).astype(np.int64),
            keepalive_s=self.keepalive_s,
            prewarm_s=np.maximum(self.prewarm_s, 0.0),
        )


class Policy(ABC):
    """Base class: `reset` once, then `decide` for minutes 0, 1, 2, ... in order."""

    name: str = "policy"
    # The oracle: the simulator serves every would-be cold start from an instance started just in time.
    clairvoyant: bool = False

    def reset(self, ctx: PolicyContext) -> None:
        self.ctx = ctx
        self.n = ctx.n_functions

    @abstractmethod
    def decide(self, obs: Observation) -> Decision: ...

    def describe(self) -> str:
        return self.name


@dataclass
class LastSeen:
    """Minute of the latest visible invocation of each function (-inf before the first)."""

    n: int
    minute: FloatArray = field(init=False)

    def __post_init__(self) -> None:
        self.minute = np.full(self.n, -np.inf)

    def update(self, obs: Observation) -> FloatArray:
        latest = obs.latest()
        if latest is not None:
            self.minute[latest[0] > 0] = obs.visible - 1
        return self.minute


class PingKeeper:
    """Turns "keep this function warm now" into warm-up pings on a platform with its own keep-alive.

    Lambda keeps an idle instance for roughly `platform_keepalive_s` after its last invocation. A ping
    refreshes that clock (or, if the instance is gone, starts a new one and absorbs the cold start).
    So a function that should stay warm needs a ping only when its last touch — a real invocation
    or our last ping — is about to fall out of the platform's window.
    """

    def __init__(self, n: int, platform_keepalive_s: float, safety_min: float = 2.0) -> None:
        self.touch = np.full(n, -np.inf)
        self.refresh_after_min = max(1.0, platform_keepalive_s / 60.0 - safety_min)

    def observe(self, last_seen: FloatArray) -> None:
        np.maximum(self.touch, last_seen, out=self.touch)

    def pings(self, minute: int, want_warm: BoolArray, fanout: IntArray | int = 1) -> IntArray:
        due = want_warm & (minute - self.touch >= self.refresh_after_min)
        self.touch[due] = minute
        k = np.broadcast_to(np.asarray(fanout, dtype=np.int64), due.shape)
        return np.where(due, k, 0).astype(np.int64)
