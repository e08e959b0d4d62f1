"""One warm pool: the workers of one Lambda function version or one SageMaker variant, and what
both platforms do with them alike.

- One request at a time per worker; an idle one is taken provisioned first, then the most recently
  used, so that spare on-demand workers age out.
- Provisioned workers are started ahead up to what is asked for, never reaped, replaced when they
  die, and retired (the least useful first: starting, then idle, a busy one after its request) when
  fewer are asked for.
- Idle on-demand workers are reaped after the keep-alive; dead ones are dropped.

The faces (scripts/twin/pool.py for Lambda, scripts/twin/sagemaker_pool.py for SageMaker) say how a
worker starts and what a request is.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Generic, Protocol, TypeVar

from scripts.twin.worker import State

_RETIRE_ORDER = {State.STARTING: 0, State.IDLE: 1, State.BUSY: 2}


class Worker(Protocol):
    """A Lambda execution environment (scripts/twin/instance.py) or a SageMaker container
    (scripts/twin/sagemaker_container.py)."""

    state: State
    retiring: bool  # provisioned concurrency lowered, or the pool reset: stop after the request
    last_used: float

    @property
    def provisioned(self) -> bool: ...

    @property
    def alive(self) -> bool: ...

    @property
    def process_exited(self) -> bool: ...

    def stop(self, *, graceful: bool = False) -> None: ...

    async def wait_closed(self, timeout: float = 5.0) -> None: ...


W = TypeVar("W", bound=Worker)


class WarmPool(Generic[W]):
    def __init__(self, spawn: Callable[[Awaitable[Any]], None], replace: Callable[[], None]) -> None:
        """`spawn` runs a coroutine in the background; `replace` is called when a provisioned
        worker was lost (it starts what is missing)."""
        self.workers: list[W] = []
        self._spawn = spawn
        self._replace = replace
        self._wanted = 0  # provisioned workers asked for, as of the last reconcile
        self._pending = 0  # provisionings spawned whose worker is not in `workers` yet

    def __iter__(self) -> Iterator[W]:
        return iter(self.workers)

    def __contains__(self, worker: W) -> bool:
        return worker in self.workers

    def add(self, worker: W) -> W:
        self.workers.append(worker)
        return worker

    def take_idle(self) -> W | None:
        """An idle, live worker, marked busy: provisioned first, then the most recently used."""
        idle = [w for w in self.workers if w.state is State.IDLE and w.alive and not w.retiring]
        if not idle:
            return None
        worker = max(idle, key=lambda w: (w.provisioned, w.last_used))
        worker.state = State.BUSY
        return worker

    def live(self) -> list[W]:
        return [w for w in self.workers if w.alive and not w.retiring]

    def ready_provisioned(self) -> int:
        return sum(1 for w in self.workers
                   if w.provisioned and not w.retiring and w.state in (State.IDLE, State.BUSY))

    def busy_provisioned(self) -> int:
        return sum(1 for w in self.workers if w.provisioned and w.state is State.BUSY)

    def remove(self, worker: W, *, graceful: bool = True) -> None:
        """Stop the worker and forget it (its process is reaped in the background)."""
        worker.stop(graceful=graceful)
        if worker in self.workers:
            self.workers.remove(worker)
        self._spawn(worker.wait_closed())

    def discard(self, worker: W) -> None:
        """A worker that failed or is done: gone, and replaced if it was provisioned."""
        self.remove(worker)
        if worker.provisioned and not worker.retiring:
            self._replace()

    def reconcile(self, wanted: int, provision: Callable[[], Awaitable[None]]) -> None:
        """Start (`provision`, which adds its worker before its first await) or retire provisioned
        workers until `wanted` of them are up or starting."""
        self._wanted = wanted
        current = [w for w in self.live() if w.provisioned]
        for _ in range(wanted - len(current) - self._pending):
            self._pending += 1
            self._spawn(self._provision_one(provision))
        extra = max(0, len(current) - wanted)
        for worker in sorted(current, key=lambda w: _RETIRE_ORDER.get(w.state, 3))[:extra]:
            worker.retiring = True
            if worker.state is not State.BUSY:
                self.remove(worker)

    async def _provision_one(self, provision: Callable[[], Awaitable[None]]) -> None:
        # A spawned provisioning has no worker until it runs: counted as pending until then, so that a
        # second reconcile in the meantime does not start another, and skipped if fewer are wanted now.
        self._pending -= 1
        if sum(1 for w in self.live() if w.provisioned) >= self._wanted:
            return
        await provision()

    def reap(self, keep_alive_s: float) -> int:
        """Stop on-demand workers idle for longer than the keep-alive and drop dead ones (replacing
        provisioned ones); returns how many were reaped."""
        now = time.monotonic()
        stopped = 0
        lost_provisioned = False
        for worker in list(self.workers):
            if worker.state is State.DEAD or (worker.state is State.IDLE and worker.process_exited):
                # Died while idle (nothing was waiting on it).
                self.remove(worker, graceful=False)
                lost_provisioned |= worker.provisioned and not worker.retiring
            elif worker.state is State.IDLE and not worker.provisioned and now - worker.last_used > keep_alive_s:
                self.remove(worker)
                stopped += 1
        if lost_provisioned:
            self._replace()
        return stopped

    def reset(self, *, provisioned: bool) -> int:
        """Stop idle workers so the next request starts cold; busy and starting ones serve their
        request first. Provisioned ones only if asked (the caller then starts them again)."""
        count = 0
        for worker in list(self.workers):
            if worker.provisioned and not provisioned:
                continue
            count += 1
            if worker.state in (State.BUSY, State.STARTING):  # a request is waiting on it
                worker.retiring = True
                continue
            self.remove(worker)
        return count

    def stop_all(self) -> list[W]:
        """Stop every worker now; returns them (to wait until they are closed)."""
        workers = list(self.workers)
        for worker in workers:
            worker.retiring = True
            worker.stop(graceful=True)
        self.workers.clear()
        return workers
