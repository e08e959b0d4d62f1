"""The SageMaker face of the warm pool (scripts/twin/warm_pool.py): the containers of one
production variant of a serverless endpoint.

One request at a time per container, as Serverless Inference runs them. A request that finds no idle
container starts one (a cold start: spawn -> /ping 200 is ModelSetupTime) while the variant is under
its MaxConcurrency, else waits for one that is starting, else is throttled. ProvisionedConcurrency
containers are started ahead and never reaped; idle on-demand ones go after the keep-alive.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from scripts.twin import emf
from scripts.twin.http11 import Response
from scripts.twin.logs import FunctionLogs
from scripts.twin.platform_metrics import SAGEMAKER, Dims, variant_dimensions
from scripts.twin.sagemaker_container import (
    ON_DEMAND,
    PROVISIONED,
    Container,
    ContainerError,
    ContainerLaunch,
    Setup,
)
from scripts.twin.sagemaker_control import EndpointDefinition, VariantSpec
from scripts.twin.warm_pool import WarmPool
from scripts.twin.worker import State

log = logging.getLogger("preheat.twin")

SETUP_TIMEOUT_S = 120.0  # a loaded laptop can be slow; SageMaker allows minutes for a container to pass /ping


class Throttled(Exception):
    pass


class EndpointLogs(FunctionLogs):
    """A FunctionLogs whose CloudWatch group is SageMaker's for the endpoint."""

    def __init__(self, endpoint: str, directory: Path, shipper: emf.Shipper | None) -> None:
        super().__init__(f"sagemaker-{endpoint}", directory, shipper)
        self.group = f"/aws/sagemaker/Endpoints/{endpoint}"


@dataclass
class ContainerOutcome:
    response: Response
    container: Container
    setup: Setup | None
    model_ms: float
    error: ContainerError | None = None
    inflight: int = 1  # requests in flight on the variant when this one got its container
    busy_provisioned: int = 0  # provisioned containers busy then, this one's included


class Host(Protocol):
    """What a variant's pool needs of the service that runs the endpoint."""

    launch: ContainerLaunch
    invocation_timeout_s: float

    def spawn(self, coro: Awaitable[Any]) -> None: ...

    def on_setup(self, pool: VariantPool, setup: Setup) -> None: ...


class VariantPool:
    def __init__(self, service: Host, endpoint: EndpointDefinition, spec: VariantSpec, env: Mapping[str, str],
                 logs: EndpointLogs, keep_alive_s: float) -> None:
        self.service = service
        self.endpoint = endpoint
        self.spec = spec
        self.env = dict(env)
        self.logs = logs
        self.keep_alive_s = keep_alive_s
        self.pool: WarmPool[Container] = WarmPool(service.spawn, self.reconcile)
        self.inflight = 0
        self.failure: str | None = None  # why the last provisioned container failed to start

    @property
    def containers(self) -> list[Container]:
        return self.pool.workers

    def _new(self, kind: str) -> Container:
        return self.pool.add(
            Container(self.endpoint.name, self.spec.name, kind, self.env, self.service.launch, self.logs.line))

    async def acquire(self) -> tuple[Container, Setup | None]:
        """An idle container (provisioned first, then the most recently used), or a new one."""
        deadline = time.monotonic() + SETUP_TIMEOUT_S
        while True:
            idle = self.pool.take_idle()
            if idle is not None:
                return idle, None
            live = self.pool.live()
            if len(live) < self.spec.max_concurrency:
                break
            # Every container is busy or still starting (provisioned ones warming): wait for one.
            if not any(c.state is State.STARTING for c in live) or time.monotonic() > deadline:
                raise Throttled
            await asyncio.sleep(0.01)
        container = self._new(ON_DEMAND)
        try:
            setup = await container.start(SETUP_TIMEOUT_S)
        except ContainerError:
            self.pool.discard(container)
            raise
        self.service.on_setup(self, setup)
        container.state = State.BUSY
        return container, setup

    async def invoke(self, body: bytes, headers: list[tuple[str, str]]) -> ContainerOutcome:
        if self.inflight >= self.spec.max_concurrency:
            raise Throttled
        self.inflight += 1
        try:
            container, setup = await self.acquire()
            inflight, busy = self.inflight, self.pool.busy_provisioned()
            started = time.perf_counter()
            try:
                response = await container.invoke(body, headers, self.service.invocation_timeout_s)
            except ContainerError as exc:
                self.pool.discard(container)
                return ContainerOutcome(Response(0), container, setup, (time.perf_counter() - started) * 1000, exc, inflight, busy)
            model_ms = (time.perf_counter() - started) * 1000
            if container.retiring:
                self.pool.discard(container)
            else:
                container.release()
            return ContainerOutcome(response, container, setup, model_ms, None, inflight, busy)
        finally:
            self.inflight -= 1

    def pc_gauges(self) -> list[tuple[str, str, Dims, float]]:
        if self.spec.provisioned <= 0:
            return []
        dims = variant_dimensions(self.endpoint.name, self.spec.name)
        busy = self.pool.busy_provisioned()
        return [(SAGEMAKER, "ServerlessProvisionedConcurrencyExecutions", dims, busy),
                (SAGEMAKER, "ServerlessProvisionedConcurrencyUtilization", dims, busy / self.spec.provisioned)]

    def reconcile(self) -> None:
        """Start or retire provisioned containers until ProvisionedConcurrency of them are up or
        starting (a busy one retires after its request)."""
        self.pool.reconcile(self.spec.provisioned, self._provision)

    def provisioned_ready(self) -> bool:
        return self.pool.ready_provisioned() >= self.spec.provisioned

    async def _provision(self) -> None:
        container = self._new(PROVISIONED)
        try:
            setup = await container.start(SETUP_TIMEOUT_S)
        except ContainerError as exc:
            if container in self.pool:
                self.containers.remove(container)
            self.failure = exc.message
            log.warning("a provisioned container of %s failed to start: %s", self.endpoint.name, exc.message)
            return
        self.failure = None
        self.service.on_setup(self, setup)

    def reap(self) -> int:
        return self.pool.reap(self.keep_alive_s)

    def reset(self, *, provisioned: bool) -> int:
        """Stop idle containers so the next request starts cold; busy ones finish their request first."""
        count = self.pool.reset(provisioned=provisioned)
        if provisioned:
            self.reconcile()
        return count

    def stop_all(self) -> list[Container]:
        return self.pool.stop_all()

    def describe(self) -> dict[str, Any]:
        ready = sum(1 for c in self.containers if c.provisioned and c.state in (State.IDLE, State.BUSY))
        return {
            "variant": self.spec.name, "model": self.spec.model_name, "memory_mb": self.spec.memory_mb,
            "max_concurrency": self.spec.max_concurrency, "provisioned_concurrency": self.spec.provisioned,
            "provisioned_ready": ready, "provisioned_failure": self.failure, "inflight": self.inflight,
            "model_dir": self.env.get("PREHEAT_MODEL_DIR"),
            "containers": [
                {"id": c.id, "pid": c.pid, "port": c.port, "kind": c.kind, "state": c.state.value,
                 "invocations": c.invocations, "setup": c.setup.__dict__ if c.setup else None,
                 "idle_s": round(time.monotonic() - c.last_used, 3) if c.state is State.IDLE else None,
                 "max_memory_mb": c.max_memory_mb(), "log_stream": c.log_stream}
                for c in self.containers
            ],
        }

