"""Scaling as Lambda does it, per function.

- One request at a time per instance. A request that finds no idle instance of its version starts
  one and waits for its INIT (a cold start); provisioned instances are preferred, then the most
  recently used, so that spare on-demand instances age out.
- Reserved concurrency caps concurrent executions (429 ReservedFunctionConcurrentInvocationLimitExceeded);
  the twin's `max_instances` plays the account limit (ConcurrentInvocationLimitExceeded), first
  reaping the longest-idle on-demand instance anywhere to make room.
- Provisioned concurrency keeps N instances of an alias's version initialized ahead, with
  AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency; they are never reaped, and are replaced
  when they crash.
- Idle on-demand instances are reaped after the keep-alive.
- A crash or timeout fails only its own invocation; the environment is discarded.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import datetime as dt
import json
import logging
import math
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from scripts.twin.config import LATEST, PUBLISHED_VERSION, FunctionSpec, TwinConfig
from scripts.twin.instance import ON_DEMAND, PROVISIONED, FunctionError, Instance, Launch, State
from scripts.twin.logs import FunctionLogs
from scripts.twin.platform_metrics import LAMBDA, Dims, PlatformMetrics, lambda_dimensions
from scripts.twin.runtime_api import Invocation

log = logging.getLogger("preheat.twin")
TAIL_BYTES = 4096


class Throttled(Exception):
    def __init__(self, reason: str, message: str = "Rate Exceeded.") -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class UnknownQualifier(Exception):
    pass


class ConfigConflict(Exception):
    """A request the function's configuration does not allow (Lambda's InvalidParameterValueException)."""


@dataclass(frozen=True)
class Record:
    """One invocation as the platform saw it (the twin's equivalent of a REPORT line, queryable)."""

    seq: int
    request_id: str
    function: str
    version: str
    qualifier: str | None
    source: str  # invoke | event | url | schedule:<name>
    started_at: float  # epoch seconds
    outcome: str  # ok | error | crash | timeout | init_error | throttled
    cold: bool  # this request waited for an INIT
    instance_id: str | None = None
    instance_kind: str | None = None  # on-demand | provisioned-concurrency
    init_ms: float | None = None  # the INIT this request waited for (cold only)
    duration_ms: float | None = None  # runtime handling time (REPORT's Duration)
    billed_ms: int | None = None
    max_memory_mb: int | None = None
    total_ms: float | None = None  # inside the twin, from arrival to answer
    error_type: str | None = None


class Records:
    def __init__(self, size: int = 20000) -> None:
        self._items: collections.deque[Record] = collections.deque(maxlen=size)
        self._seq = 0

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def add(self, record: Record) -> None:
        self._items.append(record)

    def since(self, seq: int = 0, function: str | None = None) -> list[Record]:
        return [r for r in self._items if r.seq > seq and (function is None or r.function == function)]

    @property
    def last_seq(self) -> int:
        return self._seq


@dataclass(frozen=True)
class InvokeResult:
    request_id: str
    payload: bytes
    version: str
    function_error: str | None  # "Unhandled" when the function failed
    log_tail: str | None  # base64 of the last 4 KB of this invocation's log, when asked for
    record: Record


@dataclass
class PcConfig:
    requested: int
    last_modified: str
    failure: str | None = None


@dataclass
class Fleet:
    """Every function's instances: the account-wide concurrency the twin allows."""

    max_instances: int
    functions: list[Function] = field(default_factory=list)

    def live(self) -> int:
        return sum(1 for f in self.functions for i in f.instances() if i.alive)

    def make_room(self) -> bool:
        if self.live() < self.max_instances:
            return True
        idle = [i for f in self.functions for i in f.instances()
                if i.state is State.IDLE and not i.provisioned]
        if not idle:
            return False
        oldest = min(idle, key=lambda i: i.last_used)
        oldest.stop(graceful=True)
        return True


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


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
        self.reserved: int | None = spec.reserved_concurrency
        self.pc: dict[str, PcConfig] = {}
        self.executions = 0
        self._pools: dict[str, list[Instance]] = {LATEST: [], PUBLISHED_VERSION: []}
        self._background: set[asyncio.Task[Any]] = set()
        self.arn = f"arn:aws:lambda:{config.region}:{config.account_id}:function:{spec.name}"
        fleet.functions.append(self)
        for qualifier, count in spec.provisioned.items():
            if count:
                self.pc[qualifier] = PcConfig(count, _now_iso())

    @property
    def keep_alive_s(self) -> float:
        return self.spec.keep_alive_s if self.spec.keep_alive_s is not None else self.config.keep_alive_s

    def instances(self) -> Iterator[Instance]:
        for pool in self._pools.values():
            yield from pool

    def start(self) -> None:
        self.reconcile()

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
        version = self.spec.resolve_qualifier(qualifier)
        if version is None:
            raise UnknownQualifier(f"Function not found: {self.arn}:{qualifier}")
        arrived = time.perf_counter()
        started_at = time.time()
        request_id = request_id or str(uuid.uuid4())
        seq = self.records.next_seq()
        base = dict(seq=seq, request_id=request_id, function=self.spec.name, version=version,
                    qualifier=qualifier, source=source, started_at=started_at)
        if self.reserved is not None and self.executions >= self.reserved:
            self.records.add(Record(**base, outcome="throttled", cold=False))  # type: ignore[arg-type]
            self._report(qualifier, version, throttled=True)
            raise Throttled("ReservedFunctionConcurrentInvocationLimitExceeded")
        pool = self._pools[version]
        idle = [i for i in pool if i.state is State.IDLE and not i.retiring]
        instance: Instance
        init_ms: float | None = None
        self.executions += 1
        try:
            if idle:
                instance = max(idle, key=lambda i: (i.provisioned, i.last_used))
                instance.state = State.BUSY
            else:
                if not self.fleet.make_room():
                    self.records.add(Record(**base, outcome="throttled", cold=False))  # type: ignore[arg-type]
                    self._report(qualifier, version, throttled=True)
                    raise Throttled("ConcurrentInvocationLimitExceeded")
                instance = Instance(self.spec, version, ON_DEMAND, self.launch, self.logs.line)
                pool.append(instance)
                try:
                    # Lambda re-runs an INIT that overran its limit inside the invoke phase, under the
                    # function's timeout; the twin lets the first attempt run as long as both together.
                    init_ms = await instance.start(self.config.init_timeout_s + self.spec.timeout_s)
                except FunctionError as exc:
                    self._discard(instance)
                    self.logs.platform(instance, f"INIT_REPORT Init Duration: {(time.perf_counter() - arrived) * 1000:.2f} ms\t"
                                                 f"Phase: init\tStatus: error\tError Type: {exc.error_type}")
                    record = Record(**base, outcome="init_error", cold=True, instance_id=instance.id,  # type: ignore[arg-type]
                                    instance_kind=ON_DEMAND, error_type=exc.error_type,
                                    total_ms=(time.perf_counter() - arrived) * 1000)
                    self.records.add(record)
                    self._report(qualifier, version, error=True, concurrency=self.executions)
                    tail_b64 = self._tail(instance.captured) if tail else None
                    return InvokeResult(request_id, exc.payload, version, "Unhandled", tail_b64, record)
                self._log_extensions(instance)
                instance.state = State.BUSY
            concurrency = (self.executions, self._busy_provisioned(version))
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
            function_error, error_type = "Unhandled", exc.error_type
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
        if not instance.alive:
            self._discard(instance)
            return
        if instance.retiring or (not instance.provisioned and self.keep_alive_s == 0):
            instance.stop(graceful=True)
            self._discard(instance)
            return
        instance.release()

    def _discard(self, instance: Instance) -> None:
        instance.stop(graceful=True)
        pool = self._pools[instance.version]
        if instance in pool:
            pool.remove(instance)
        self._spawn(instance.wait_closed())
        if instance.provisioned and not instance.retiring:
            self.reconcile()

    # --- AWS/Lambda metrics -------------------------------------------------------------------

    def _busy_provisioned(self, version: str) -> int:
        return sum(1 for i in self._pools[version] if i.provisioned and i.state is State.BUSY)

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
        pc = self.pc.get(qualifier) if qualifier else None
        if pc is not None and instance is not None:
            put(LAMBDA, "ProvisionedConcurrencyInvocations", sets, int(instance.provisioned))
            put(LAMBDA, "ProvisionedConcurrencySpilloverInvocations", sets, int(not instance.provisioned))
            put(LAMBDA, "ProvisionedConcurrentExecutions", sets, busy_provisioned)
            put(LAMBDA, "ProvisionedConcurrencyUtilization", sets, busy_provisioned / pc.requested)

    def pc_gauges(self) -> list[tuple[str, str, Dims, float]]:
        """Provisioned-concurrency levels now, per alias or version that has it (sampled each minute)."""
        out: list[tuple[str, str, Dims, float]] = []
        for qualifier, config in self.pc.items():
            version = self.spec.resolve_qualifier(qualifier)
            if version is None:
                continue
            busy = self._busy_provisioned(version)
            for dims in lambda_dimensions(self.spec.name, qualifier, version).values():
                out.append((LAMBDA, "ProvisionedConcurrentExecutions", dims, busy))
                out.append((LAMBDA, "ProvisionedConcurrencyUtilization", dims, busy / config.requested))
        return out

    def _log_extensions(self, instance: Instance) -> None:
        """The line Lambda writes for each extension registered during INIT."""
        for extension in instance.api.extensions.values():
            events = ",".join(extension.events)
            self.logs.platform(instance, f"EXTENSION\tName: {extension.name}\tState: Ready\tEvents: [{events}]")

    @staticmethod
    def _tail(lines: list[str]) -> str:
        text = "\n".join(lines) + "\n"
        return base64.b64encode(text.encode()[-TAIL_BYTES:]).decode("ascii")

    def invoke_async(self, payload: bytes, qualifier: str | None, *, source: str = "event") -> str:
        """InvocationType=Event: queued and run in the background. A throttled event is retried, as
        Lambda's internal queue does, for up to a minute; function errors are not retried."""
        if self.spec.resolve_qualifier(qualifier) is None:
            raise UnknownQualifier(f"Function not found: {self.arn}:{qualifier}")
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

    # --- configuration ------------------------------------------------------------------------

    def set_reserved(self, value: int | None) -> None:
        if value is not None:
            provisioned = sum(c.requested for c in self.pc.values())
            if value < provisioned:
                raise ConfigConflict(
                    f"ReservedConcurrentExecutions {value} is less than the function's provisioned concurrency "
                    f"({provisioned}): lower provisioned concurrency first"
                )
        self.reserved = value

    def put_pc(self, qualifier: str, count: int) -> dict[str, Any]:
        version = self.spec.resolve_qualifier(qualifier)
        if version is None:
            raise UnknownQualifier(f"Function not found: {self.arn}:{qualifier}")
        if version == LATEST:
            raise ConfigConflict("Provisioned Concurrency Configs cannot be applied to unpublished function versions.")
        if count < 1:
            raise ConfigConflict("ProvisionedConcurrentExecutions must be at least 1 (delete the config instead)")
        others = sum(c.requested for q, c in self.pc.items() if q != qualifier)
        if self.reserved is not None and others + count > self.reserved:
            raise ConfigConflict(
                f"Requested Provisioned Concurrency ({others + count}) exceeds the function's reserved concurrency "
                f"({self.reserved})"
            )
        if self.fleet.max_instances < others + count:
            raise ConfigConflict(
                f"Requested Provisioned Concurrency ({others + count}) exceeds the twin's max_instances "
                f"({self.fleet.max_instances})"
            )
        self.pc[qualifier] = PcConfig(count, _now_iso())
        self.reconcile()
        return self.pc_status(qualifier)

    def delete_pc(self, qualifier: str) -> bool:
        if self.spec.resolve_qualifier(qualifier) is None:
            raise UnknownQualifier(f"Function not found: {self.arn}:{qualifier}")
        found = self.pc.pop(qualifier, None) is not None
        self.reconcile()
        return found

    def pc_status(self, qualifier: str) -> dict[str, Any]:
        config = self.pc[qualifier]
        version = self.spec.resolve_qualifier(qualifier)
        ready = sum(1 for i in self._pools.get(version or "", [])
                    if i.provisioned and not i.retiring and i.state in (State.IDLE, State.BUSY))
        allocated = min(ready, config.requested)
        status = "FAILED" if config.failure else ("READY" if allocated >= config.requested else "IN_PROGRESS")
        out: dict[str, Any] = {
            "RequestedProvisionedConcurrentExecutions": config.requested,
            "AvailableProvisionedConcurrentExecutions": allocated,
            "AllocatedProvisionedConcurrentExecutions": allocated,
            "Status": status,
            "LastModified": config.last_modified,
        }
        if config.failure:
            out["StatusReason"] = config.failure
        return out

    def reconcile(self) -> None:
        """Start or retire provisioned instances so each version has what its configs ask for."""
        for version, pool in self._pools.items():
            wanted = sum(c.requested for q, c in self.pc.items() if self.spec.resolve_qualifier(q) == version)
            current = [i for i in pool if i.provisioned and i.alive and not i.retiring]
            for _ in range(wanted - len(current)):
                self._spawn(self._provision(version))
            if len(current) > wanted:
                order = {State.STARTING: 0, State.IDLE: 1, State.BUSY: 2}
                for instance in sorted(current, key=lambda i: order.get(i.state, 3))[: len(current) - wanted]:
                    instance.retiring = True
                    if instance.state is not State.BUSY:
                        instance.stop(graceful=True)
                        pool.remove(instance)
                        self._spawn(instance.wait_closed())

    async def _provision(self, version: str) -> None:
        qualifiers = [q for q in self.pc if self.spec.resolve_qualifier(q) == version]
        if not self.fleet.make_room():
            for q in qualifiers:
                self.pc[q].failure = f"the twin's max_instances ({self.fleet.max_instances}) is reached"
            return
        instance = Instance(self.spec, version, PROVISIONED, self.launch, self.logs.line)
        self._pools[version].append(instance)
        try:
            init_ms = await instance.start(max(self.config.init_timeout_s, 60.0))
        except FunctionError as exc:
            if instance in self._pools[version]:
                self._pools[version].remove(instance)
            if instance.retiring:  # provisioned concurrency was lowered while it initialized
                return
            for q in qualifiers:
                if q in self.pc:
                    self.pc[q].failure = f"{exc.error_type}: {exc.message}"
            log.warning("provisioned instance of %s failed to initialize: %s", self.spec.name, exc.message)
            return
        if instance.retiring or not instance.alive:
            instance.stop(graceful=True)
            return
        instance.state = State.IDLE
        self._log_extensions(instance)
        self.logs.platform(instance, f"INIT_REPORT Init Duration: {init_ms:.2f} ms\tPhase: init\tStatus: success")
        for q in qualifiers:
            if q in self.pc:
                self.pc[q].failure = None

    def reap(self) -> int:
        """Stop on-demand instances idle for longer than the keep-alive; returns how many."""
        now = time.monotonic()
        stopped = 0
        lost_provisioned = False
        for pool in self._pools.values():
            for instance in list(pool):
                if (instance.state is State.IDLE and not instance.provisioned and not instance.exited.done()
                        and now - instance.last_used > self.keep_alive_s):
                    instance.stop(graceful=True)
                    pool.remove(instance)
                    self._spawn(instance.wait_closed())
                    stopped += 1
                elif instance.state is State.DEAD or (instance.state is State.IDLE and instance.exited.done()):
                    # Died while idle (nothing was waiting on it): discard, and replace if provisioned.
                    instance.stop()
                    pool.remove(instance)
                    self._spawn(instance.wait_closed())
                    lost_provisioned |= instance.provisioned and not instance.retiring
        if lost_provisioned:
            self.reconcile()
        return stopped

    def reset(self, *, provisioned: bool = False) -> int:
        """Discard idle instances (like a configuration update does), so the next request starts cold.
        Busy and initializing ones serve their request first. Provisioned instances are re-initialized
        if asked."""
        count = 0
        for pool in self._pools.values():
            for instance in list(pool):
                if instance.provisioned and not provisioned:
                    continue
                count += 1
                if instance.state in (State.BUSY, State.STARTING):  # a request is waiting on it
                    instance.retiring = True
                    continue
                instance.stop(graceful=True)
                pool.remove(instance)
                self._spawn(instance.wait_closed())
        if provisioned:
            self.reconcile()
        return count

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.spec.name,
            "arn": self.arn,
            "reserved_concurrency": self.reserved,
            "executions": self.executions,
            "provisioned": {q: self.pc_status(q) for q in self.pc},
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
        instances = list(self.instances())
        for instance in instances:
            instance.retiring = True
            instance.stop(graceful=True)
        await asyncio.gather(*(i.wait_closed(2.0) for i in instances), return_exceptions=True)
        for pool in self._pools.values():
            pool.clear()

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

