"""The warm pool's bookkeeping (scripts/twin/warm_pool.py), with workers that are plain objects:
which worker a request gets, how many provisioned workers are started, retired, reaped."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any

from scripts.twin.warm_pool import WarmPool
from scripts.twin.worker import State


class FakeWorker:
    def __init__(self, provisioned: bool, state: State = State.IDLE, last_used: float = 0.0) -> None:
        self.state = state
        self.retiring = False
        self.last_used = last_used
        self._provisioned = provisioned
        self.exited = False
        self.stopped: list[bool] = []

    @property
    def provisioned(self) -> bool:
        return self._provisioned

    @property
    def alive(self) -> bool:  # as the real workers: ended, or its process gone, is not alive
        return self.state is not State.DEAD and not self.exited

    @property
    def process_exited(self) -> bool:
        return self.exited

    def stop(self, *, graceful: bool = False) -> None:
        self.stopped.append(graceful)
        self.state = State.DEAD

    async def wait_closed(self, timeout: float = 5.0) -> None:
        return None


class Harness:
    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[Any]] = []
        self.replaced = 0
        self.pool: WarmPool[FakeWorker] = WarmPool(self.spawn, self.replace)

    def spawn(self, coro: Awaitable[Any]) -> None:
        self.tasks.append(asyncio.ensure_future(coro))

    def replace(self) -> None:
        self.replaced += 1

    async def provision(self) -> None:
        worker = self.pool.add(FakeWorker(True, State.STARTING))
        await asyncio.sleep(0)
        worker.state = State.IDLE

    async def settle(self) -> None:
        while self.tasks:
            await self.tasks.pop()


def test_an_idle_provisioned_worker_is_taken_first_then_the_most_recent() -> None:
    h = Harness()
    old, recent, provisioned = FakeWorker(False, last_used=1.0), FakeWorker(False, last_used=2.0), FakeWorker(True)
    for worker in (old, recent, provisioned):
        h.pool.add(worker)
    assert [h.pool.take_idle() for _ in range(4)] == [provisioned, recent, old, None]
    assert provisioned.state is State.BUSY


def test_a_worker_whose_process_died_while_idle_gets_no_request() -> None:
    async def scenario() -> None:
        h = Harness()
        dead, live = FakeWorker(False, last_used=2.0), FakeWorker(False, last_used=1.0)
        dead.exited = True  # the more recent one: it would be taken first
        h.pool.add(dead)
        h.pool.add(live)
        assert [h.pool.take_idle(), h.pool.take_idle()] == [live, None]
        assert h.pool.reap(keep_alive_s=600) == 0  # dropped, not counted as reaped
        assert h.pool.workers == [live] and dead.stopped == [False]
        await h.settle()

    asyncio.run(scenario())


def test_reconciling_twice_before_the_provisionings_run_starts_each_worker_once() -> None:
    async def scenario() -> None:
        h = Harness()
        h.pool.reconcile(2, h.provision)
        h.pool.reconcile(2, h.provision)  # e.g. a lost worker replaced in the same tick
        await h.settle()
        assert h.pool.ready_provisioned() == 2 and len(h.pool.workers) == 2
        h.pool.reconcile(3, h.provision)
        h.pool.reconcile(1, h.provision)  # lowered before the third one started: it is not started
        await h.settle()
        assert len(h.pool.live()) == 1 and h.pool.ready_provisioned() == 1

    asyncio.run(scenario())


def test_lowering_retires_starting_then_idle_and_a_busy_one_after_its_request() -> None:
    async def scenario() -> None:
        h = Harness()
        busy, idle, starting = FakeWorker(True, State.BUSY), FakeWorker(True), FakeWorker(True, State.STARTING)
        for worker in (busy, idle, starting):
            h.pool.add(worker)
        h.pool.reconcile(1, h.provision)
        assert h.pool.workers == [busy] and not busy.retiring
        h.pool.reconcile(0, h.provision)
        assert h.pool.workers == [busy] and busy.retiring and busy.state is State.BUSY
        await h.settle()

    asyncio.run(scenario())


def test_reaping_stops_expired_on_demand_workers_and_replaces_dead_provisioned_ones() -> None:
    async def scenario() -> None:
        h = Harness()
        now = time.monotonic()
        expired, fresh, crashed = FakeWorker(False, last_used=now - 60), FakeWorker(False, last_used=now), FakeWorker(True)
        crashed.exited = True
        for worker in (expired, fresh, crashed):
            h.pool.add(worker)
        assert h.pool.reap(keep_alive_s=30) == 1
        assert h.pool.workers == [fresh] and expired.stopped == [True] and crashed.stopped == [False]
        assert h.replaced == 1
        await h.settle()

    asyncio.run(scenario())
