"""Concurrency control of one Lambda function, as Lambda configures it.

- Reserved concurrency caps concurrent executions (the invoking side throttles with 429
  ReservedFunctionConcurrentInvocationLimitExceeded); it cannot go below the provisioned concurrency.
- The twin's `max_instances` plays the account limit (`Fleet`): a new instance first reaps the
  longest-idle on-demand instance anywhere to make room.
- Provisioned concurrency keeps N instances of an alias's version initialized ahead, with
  AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency; they are never reaped, and are replaced
  when they crash. A config is IN_PROGRESS until its instances passed INIT, FAILED (with the
  reason) when one could not.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from scripts.twin.config import LATEST, FunctionSpec, TwinConfig
from scripts.twin.instance import PROVISIONED, FunctionError, Instance, Launch
from scripts.twin.logs import FunctionLogs
from scripts.twin.platform_metrics import LAMBDA, Dims, lambda_dimensions
from scripts.twin.warm_pool import WarmPool
from scripts.twin.worker import State

log = logging.getLogger("preheat.twin")


class UnknownQualifier(Exception):
    pass


class ConfigConflict(Exception):
    """A request the function's configuration does not allow (Lambda's InvalidParameterValueException)."""


@dataclass
class PcConfig:
    requested: int
    last_modified: str
    failure: str | None = None


class HasInstances(Protocol):
    """What the fleet sees of a function."""

    def instances(self) -> Iterator[Instance]: ...


@dataclass
class Fleet:
    """Every function's instances: the account-wide concurrency the twin allows."""

    max_instances: int
    functions: list[HasInstances] = field(default_factory=list)

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


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def log_extensions(logs: FunctionLogs, instance: Instance) -> None:
    """The line Lambda writes for each extension registered during INIT."""
    for extension in instance.api.extensions.values():
        events = ",".join(extension.events)
        logs.platform(instance, f"EXTENSION\tName: {extension.name}\tState: Ready\tEvents: [{events}]")


class Concurrency:
    """Reserved and provisioned concurrency of one function, over its versions' warm pools."""

    def __init__(
        self, spec: FunctionSpec, arn: str, config: TwinConfig, launch: Launch, logs: FunctionLogs, fleet: Fleet,
        pools: dict[str, WarmPool[Instance]], spawn: Callable[[Awaitable[Any]], None],
    ) -> None:
        self.spec = spec
        self.arn = arn
        self.config = config
        self.launch = launch
        self.logs = logs
        self.fleet = fleet
        self.pools = pools
        self._spawn = spawn
        self.reserved: int | None = spec.reserved_concurrency
        self.starved = False  # a provisioning found no room: retried by `retry_starved`
        self.pc: dict[str, PcConfig] = {}
        for qualifier, count in spec.provisioned.items():
            if count:
                self.pc[qualifier] = PcConfig(count, now_iso())

    def version_of(self, qualifier: str) -> str:
        version = self.spec.resolve_qualifier(qualifier)
        if version is None:
            raise UnknownQualifier(f"Function not found: {self.arn}:{qualifier}")
        return version

    # --- reserved -------------------------------------------------------------------------------

    def set_reserved(self, value: int | None) -> None:
        if value is not None:
            provisioned = sum(c.requested for c in self.pc.values())
            if value < provisioned:
                raise ConfigConflict(
                    f"ReservedConcurrentExecutions {value} is less than the function's provisioned concurrency "
                    f"({provisioned}): lower provisioned concurrency first"
                )
        self.reserved = value

    # --- provisioned ----------------------------------------------------------------------------

    def put_pc(self, qualifier: str, count: int) -> dict[str, Any]:
        version = self.version_of(qualifier)
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
        self.pc[qualifier] = PcConfig(count, now_iso())
        self.reconcile()
        return self.pc_status(qualifier)

    def delete_pc(self, qualifier: str) -> bool:
        self.version_of(qualifier)
        found = self.pc.pop(qualifier, None) is not None
        self.reconcile()
        return found

    def pc_status(self, qualifier: str) -> dict[str, Any]:
        config = self.pc[qualifier]
        pool = self.pools.get(self.spec.resolve_qualifier(qualifier) or "")
        allocated = min(pool.ready_provisioned() if pool is not None else 0, config.requested)
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

    def pc_gauges(self) -> list[tuple[str, str, Dims, float]]:
        """Provisioned-concurrency levels now, per alias or version that has it (sampled each minute)."""
        out: list[tuple[str, str, Dims, float]] = []
        for qualifier, config in self.pc.items():
            version = self.spec.resolve_qualifier(qualifier)
            if version is None:
                continue
            busy = self.pools[version].busy_provisioned()
            for dims in lambda_dimensions(self.spec.name, qualifier, version).values():
                out.append((LAMBDA, "ProvisionedConcurrentExecutions", dims, busy))
                out.append((LAMBDA, "ProvisionedConcurrencyUtilization", dims, busy / config.requested))
        return out

    def _qualifiers(self, version: str) -> list[str]:
        return [q for q in self.pc if self.spec.resolve_qualifier(q) == version]

    def retry_starved(self) -> None:
        if self.starved:
            self.starved = False
            self.reconcile()

    def reconcile(self) -> None:
        """Start or retire provisioned instances so each version has what its configs ask for."""
        for version, pool in self.pools.items():
            wanted = sum(self.pc[q].requested for q in self._qualifiers(version))
            pool.reconcile(wanted, functools.partial(self._provision, version))

    async def _provision(self, version: str) -> None:
        qualifiers = self._qualifiers(version)
        if not self.fleet.make_room():
            # Every slot busy or starting right now: the config stays IN_PROGRESS and the next reap
            # tries again (Lambda allocates provisioned concurrency as capacity allows; it does not
            # fail a config that PutProvisionedConcurrencyConfig accepted for want of a free moment).
            self.starved = True
            return
        pool = self.pools[version]
        instance = pool.add(Instance(self.spec, version, PROVISIONED, self.launch, self.logs.line))
        try:
            init_ms = await instance.start(max(self.config.init_timeout_s, 60.0))
        except FunctionError as exc:
            if instance in pool:
                pool.workers.remove(instance)
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
        log_extensions(self.logs, instance)
        self.logs.platform(instance, f"INIT_REPORT Init Duration: {init_ms:.2f} ms\tPhase: init\tStatus: success")
        for q in qualifiers:
            if q in self.pc:
                self.pc[q].failure = None
