"""Invoking a Lambda function as Lambda does it: the Lambda face of the warm pool
(scripts/twin/warm_pool.py), one pool per version.

- One request at a time per instance. A request that finds no idle instance of its version starts
  one and waits for its INIT (a cold start).
- Throttling: beyond reserved concurrency, 429 ReservedFunctionConcurrentInvocationLimitExceeded;
  beyond the twin's `max_instances` (the account limit), ConcurrentInvocationLimitExceeded. Reserved
  and provisioned concurrency are configured in scripts/twin/concurrency.py; each request is kept
  as a Record (scripts/twin/records.py).
- Idle on-demand instances are reaped after the keep-alive.
- A crash or timeout fails only its own invocation; the environment is discarded.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from scripts.twin.concurrency import Concurrency, Fleet, UnknownQualifier, log_extensions
from scripts.twin.config import LATEST, PUBLISHED_VERSION, FunctionSpec, TwinConfig
from scripts.twin.instance import ON_DEMAND, FunctionError, Instance, Launch
from scripts.twin.logs import FunctionLogs
from scripts.twin.platform_metrics import LAMBDA, PlatformMetrics, lambda_dimensions
from scripts.twin.records import Record, Records
from scripts.twin.runtime_api import Invocation
from scripts.twin.warm_pool import WarmPool
from scripts.twin.worker import State

log = logging.getLogger("preheat.twin")
TAIL_BYTES = 4096


class Throttled(Exception):
    def __init__(self, reason: str, message: str = "Rate Exceeded.") -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class InvokeResult:
    request_id: str
    payload: bytes
    version: str
    function_error: str | None  # "Unhandled" when the function failed
    log_tail: str | None  # base64 of the last 4 KB of this invocation's log, when asked for
    record: Record


class Function:
    def __init__(
        self, spec: FunctionSpec, config: TwinConfig, launch: Launch, logs: FunctionLogs, fleet: Fleet,
        records: Records, platform: PlatformMetrics | None = None,
    ) -> None:
        self.spec = spec
        self.platform = platform
        self.config = config
        self.launch = launch
        self.logs = logs
        self.fleet = fleet
        self.records = records
        self.executions = 0
        self._background: set[asyncio.Task[Any]] = set()
        self._pools: dict[str, WarmPool[Instance]] = {
            version: WarmPool(self._spawn, self._replace) for version in (LATEST, PUBLISHED_VERSION)
        }
        self.arn = f"arn:aws:lambda:{config.region}:{config.account_id}:function:{spec.name}"
        self.concurrency = Concurrency(spec, self.arn, config, launch, logs, fleet, self._pools, self._spawn)
        fleet.functions.append(self)

    @property
    def keep_alive_s(self) -> float:
        return self.spec.keep_alive_s if self.spec.keep_alive_s is not None else self.config.keep_alive_s

    def instances(self) -> Iterator[Instance]:
        for pool in self._pools.values():
            yield from pool

    def start(self) -> None:
        self.concurrency.reconcile()

    def _replace(self) -> None:
        self.concurrency.reconcile()

    # --- invocations --------------------------------------------------------------------------

    async def invoke(
        self,
        payload: bytes,
        qualifier: str | None = None,
        *,
        source: str = "invoke",
        client_context: str | None = None,
        tail: bool = False,
        request_id: str | None = None,
    ) -> InvokeResult:
        version = self._version(qualifier)
        arrived = time.perf_counter()
        started_at = time.time()
        request_id = request_id or str(uuid.uuid4())
        seq = self.records.next_seq()
        base = dict(seq=seq, request_id=request_id, function=self.spec.name, version=version,
                    qualifier=qualifier, source=source, started_at=started_at)
        reserved = self.concurrency.reserved
        if reserved is not None and self.executions >= reserved:
            self.records.add(Record(**base, outcome="throttled", cold=False))  # type: ignore[arg-type]
            self._report(qualifier, version, throttled=True)
            raise Throttled("ReservedFunctionConcurrentInvocationLimitExceeded")
        pool = self._pools[version]
        init_ms: float | None = None
        self.executions += 1
        try:
            instance = pool.take_idle()
            if instance is None:
                if not self.fleet.make_room():
                    self.records.add(Record(**base, outcome="throttled", cold=False))  # type: ignore[arg-type]
                    self._report(qualifier, version, throttled=True)
                    raise Throttled("ConcurrentInvocationLimitExceeded")
                instance = pool.add(Instance(self.spec, version, ON_DEMAND, self.launch, self.logs.line))
                try:
                    # Lambda re-runs an INIT that overran its limit inside the invoke phase, under the
                    # function's timeout; the twin lets the first attempt run as long as both together.
                    init_ms = await instance.start(self.config.init_timeout_s + self.spec.timeout_s)
                except FunctionError as exc:
                    pool.discard(instance)
                    self.logs.platform(instance, f"INIT_REPORT Init Duration: {(time.perf_counter() - arrived) * 1000:.2f} ms\t"
                                                 f"Phase: init\tStatus: error\tError Type: {exc.error_type}")
                    record = Record(**base, outcome="init_error", cold=True, instance_id=instance.id,  # type: ignore[arg-type]
                                    instance_kind=ON_DEMAND, error_type=exc.error_type, error_message=exc.message,
                                    total_ms=(time.perf_counter() - arrived) * 1000)
                    self.records.add(record)
                    self._report(qualifier, version, error=True, concurrency=self.executions)
                    tail_b64 = self._tail(instance.captured) if tail else None
                    return InvokeResult(request_id, exc.payload, version, "Unhandled", tail_b64, record)
                log_extensions(self.logs, instance)
                instance.state = State.BUSY
            concurrency = (self.executions, pool.busy_provisioned())
            return await self._run(instance, payload, qualifier, base, arrived, init_ms, client_context, tail,
                                   concurrency)
        finally:
            self.executions -= 1

    async def _run(
        self,
        instance: Instance,
        payload: bytes,
        qualifier: str | None,
        base: dict[str, Any],
        arrived: float,
        init_ms: float | None,
        client_context: str | None,
        tail: bool,
        concurrency: tuple[int, int] = (1, 0),  # executions, busy provisioned instances, at its start
    ) -> InvokeResult:
        request_id = base["request_id"]
        timeout = self.spec.timeout_s
        arn = f"{self.arn}:{qualifier}" if qualifier else self.arn
        invocation = Invocation(
            request_id=request_id,
            payload=payload,
            function_arn=arn,
            deadline_epoch_ms=int((time.time() + timeout) * 1000),
            trace_id=_trace_id(),
            client_context=client_context,
        )
        self.logs.platform(instance, f"START RequestId: {request_id} Version: {instance.version}")
        function_error: str | None = None
        error_type: str | None = None
        error_message: str | None = None
        try:
            outcome = await instance.invoke(invocation, timeout)
            body = outcome.body
            duration_ms = (outcome.at - invocation.delivered) * 1000
            status = "ok" if outcome.ok else "error"
            if not outcome.ok:
                function_error, error_type = "Unhandled", _error_type(body) or outcome.error_type
        except FunctionError as exc:
            body = exc.payload
            duration_ms = (time.perf_counter() - (invocation.delivered or arrived)) * 1000
            status = "timeout" if exc.error_type == "Sandbox.Timedout" else "crash"
            function_error, error_type, error_message = "Unhandled", exc.error_type, exc.message
            self.logs.platform(instance, f"{time.strftime('%Y-%m-%dT%H:%M:%S')}Z {request_id} {exc.message}")
        memory = instance.max_memory_mb()
        # Since August 2025 Lambda bills the INIT phase of on-demand instances too.
        billed = math.ceil(duration_ms + (init_ms or 0.0))
        report = (
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\tBilled Duration: {billed} ms\t"
            f"Memory Size: {self.spec.memory_mb} MB\tMax Memory Used: {memory if memory is not None else '-'} MB"
        )
        if init_ms is not None:
            report += f"\tInit Duration: {init_ms:.2f} ms"
        if status in ("crash", "timeout"):
            report += f"\tStatus: {status}"
        self.logs.platform(instance, f"END RequestId: {request_id}")
        self.logs.platform(instance, report)
        record = Record(
            **base, outcome=status, cold=init_ms is not None, instance_id=instance.id,
            instance_kind=instance.init_type, init_ms=init_ms, duration_ms=round(duration_ms, 3), billed_ms=billed,
            max_memory_mb=memory, total_ms=round((time.perf_counter() - arrived) * 1000, 3), error_type=error_type,
            error_message=error_message,
        )
        self.records.add(record)
        self._report(qualifier, instance.version, error=function_error is not None, duration_ms=duration_ms,
                     instance=instance, concurrency=concurrency[0], busy_provisioned=concurrency[1])
        tail_b64 = None
        if tail:
            # The instance's stdout pipe is read on this loop: let lines printed before the answer land.
            await asyncio.sleep(0.01)
            tail_b64 = self._tail([*instance.captured, f"END RequestId: {request_id}", report])
        self._after(instance)
        return InvokeResult(request_id, body, instance.version, function_error, tail_b64, record)

    def _after(self, instance: Instance) -> None:
        pool = self._pools[instance.version]
        if not instance.alive:
            pool.discard(instance)
        elif instance.retiring or (not instance.provisioned and self.keep_alive_s == 0):
            pool.discard(instance)
        else:
            instance.release()

    # --- AWS/Lambda metrics -------------------------------------------------------------------

    def _report(
        self, qualifier: str | None, version: str, *, throttled: bool = False, error: bool = False,
        duration_ms: float | None = None, instance: Instance | None = None, concurrency: int = 0,
        busy_provisioned: int = 0,
    ) -> None:
        """One request, in Lambda's metrics (scripts/twin/platform_metrics.py)."""
        if self.platform is None:
            return
        put = self.platform.put_all
        sets = list(lambda_dimensions(self.spec.name, qualifier, version).values())
        put(LAMBDA, "Throttles", sets, int(throttled))
        if throttled:
            return  # a throttled request is not an invocation
        put(LAMBDA, "Invocations", sets, 1)
        put(LAMBDA, "Errors", sets, int(error))
        put(LAMBDA, "ConcurrentExecutions", sets, concurrency)
        if duration_ms is not None:
            put(LAMBDA, "Duration", sets, round(duration_ms, 3))
        pc = self.concurrency.pc.get(qualifier) if qualifier else None
        if pc is not None and instance is not None:
            put(LAMBDA, "ProvisionedConcurrencyInvocations", sets, int(instance.provisioned))
            put(LAMBDA, "ProvisionedConcurrencySpilloverInvocations", sets, int(not instance.provisioned))
            put(LAMBDA, "ProvisionedConcurrentExecutions", sets, busy_provisioned)
            put(LAMBDA, "ProvisionedConcurrencyUtilization", sets, busy_provisioned / pc.requested)

    @staticmethod
    def _tail(lines: list[str]) -> str:
        text = "\n".join(lines) + "\n"
        return base64.b64encode(text.encode()[-TAIL_BYTES:]).decode("ascii")

    def invoke_async(self, payload: bytes, qualifier: str | None, *, source: str = "event") -> str:
        """InvocationType=Event: queued and run in the background. A throttled event is retried, as
        Lambda's internal queue does, for up to a minute; function errors are not retried."""
        self._version(qualifier)
        event_id = str(uuid.uuid4())

        async def run() -> None:
            delay = 0.5
            deadline = time.monotonic() + 60
            while True:
                try:
                    await self.invoke(payload, qualifier, source=source)
                    return
                except Throttled:
                    if time.monotonic() > deadline:
                        log.warning("dropped an event for %s: throttled for a minute", self.spec.name)
                        return
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 8.0)

        self._spawn(run())
        return event_id

    def _version(self, qualifier: str | None) -> str:
        version = self.spec.resolve_qualifier(qualifier)
        if version is None:
            raise UnknownQualifier(f"Function not found: {self.arn}:{qualifier}")
        return version

    def reap(self) -> int:
        """Stop on-demand instances idle for longer than the keep-alive; returns how many. Provisioned
        instances that found no room earlier are started now, if there is room."""
        stopped = sum(pool.reap(self.keep_alive_s) for pool in self._pools.values())
        self.concurrency.retry_starved()
        return stopped

    def reset(self, *, provisioned: bool = False) -> int:
        """Discard idle instances (like a configuration update does), so the next request starts cold.
        Busy and initializing ones serve their request first. Provisioned instances are re-initialized
        if asked."""
        count = sum(pool.reset(provisioned=provisioned) for pool in self._pools.values())
        if provisioned:
            self.concurrency.reconcile()
        return count

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.spec.name,
            "arn": self.arn,
            "reserved_concurrency": self.concurrency.reserved,
            "executions": self.executions,
            "provisioned": {q: self.concurrency.pc_status(q) for q in self.concurrency.pc},
            "instances": [
                {
                    "id": i.id, "pid": i.pid, "version": i.version, "kind": i.init_type, "state": i.state.value,
                    "init_ms": i.init_ms, "invocations": i.invocations,
                    "idle_s": round(time.monotonic() - i.last_used, 3) if i.state is State.IDLE else None,
                    "max_memory_mb": i.max_memory_mb(), "log_stream": i.log_stream,
                }
                for i in self.instances()
            ],
            "log_file": str(self.logs.path),
        }

    async def stop(self) -> None:
        for task in list(self._background):
            task.cancel()
        instances = [i for pool in self._pools.values() for i in pool.stop_all()]
        await asyncio.gather(*(i.wait_closed(2.0) for i in instances), return_exceptions=True)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _trace_id() -> str:
    # Sampled=0: active tracing is off, as on a function without it (Powertools Tracer then sends nothing).
    return f"Root=1-{int(time.time()):08x}-{os.urandom(12).hex()};Parent={os.urandom(8).hex()};Sampled=0;Lineage=1"


def _error_type(body: bytes) -> str | None:
    """The errorType of a runtime's error document (its header only says Unhandled)."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    value = data.get("errorType") if isinstance(data, dict) else None
    return str(value) if value else None

