"""SageMaker Serverless Inference in the twin: the runtime API served by local `serve` containers.

Endpoints are defined where AWS defines them, in the control plane: CreateModel, CreateEndpointConfig
and CreateEndpoint calls through the twin's AWS endpoint go to moto as any other call does (the CDK
stack, `preheat deploy sagemaker` and plain boto3 all work unchanged), and endpoints in the twin's
config are created there at start. On the first InvokeEndpoint the twin reads the endpoint, its config
and its model back from moto, and from then on runs it. The parts:

- scripts/twin/sagemaker_control.py: reading and writing moto's endpoints, configs and models;
- scripts/twin/sagemaker_artifacts.py: the model a container runs (ModelDataUrl or a baked-in model);
- scripts/twin/sagemaker_pool.py: each variant's containers (the warm pool's SageMaker face);
- scripts/twin/sagemaker_api.py: InvokeEndpoint, UpdateEndpoint and the twin's control API over HTTP;
- scripts/twin/sagemaker_metrics.py: AWS/SageMaker metrics and preheat's cold/warm split;
- logs: `<state_dir>/logs/sagemaker-<endpoint>.log` and CloudWatch Logs group
  /aws/sagemaker/Endpoints/<endpoint>, stream <variant>/<container id>.

UpdateEndpoint, which moto lacks, is the twin's: it checks the endpoint and the new endpoint config
in moto, swaps the config there (the endpoint keeps its name, ARN and tags), answers EndpointArn and
applies the new config as SageMaker does, while DescribeEndpoint says `Updating`: a variant whose model
is unchanged keeps its containers and only its ServerlessConfig changes (provisioned containers
started or retired to the new ProvisionedConcurrency, the new MaxConcurrency); any other variant is
replaced. The endpoint is `InService` again once every provisioned container of the new config passed
/ping; a second UpdateEndpoint meanwhile is refused, as SageMaker refuses it.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from functions.sagemaker.environment import INVOCATION_TIMEOUT_S
from scripts.twin import emf
from scripts.twin.http11 import Request, Response
from scripts.twin.platform_metrics import PlatformMetrics
from scripts.twin.records import Records
from scripts.twin.sagemaker_api import SageMakerApi
from scripts.twin.sagemaker_artifacts import container_env
from scripts.twin.sagemaker_config import EndpointSpec
from scripts.twin.sagemaker_container import ContainerLaunch, Setup
from scripts.twin.sagemaker_control import ControlPlane, EndpointDefinition, NotServable
from scripts.twin.sagemaker_metrics import EndpointMetrics
from scripts.twin.sagemaker_pool import SETUP_TIMEOUT_S, EndpointLogs, VariantPool

log = logging.getLogger("preheat.twin")


@dataclass
class Endpoint:
    definition: EndpointDefinition
    pools: dict[str, VariantPool] = field(default_factory=dict)


class SageMaker:
    def __init__(
        self,
        *,
        specs: tuple[EndpointSpec, ...],
        region: str,
        account_id: str,
        host: str,
        gateway_url: str,
        moto_url: str,
        code_dir: Path,
        state_dir: Path,
        keep_alive_s: float,
        shipper: emf.Shipper | None,
        records: Records,
        wrapper: tuple[str, ...] = (),
        platform: PlatformMetrics | None = None,
    ) -> None:
        self.specs = {s.name: s for s in specs}
        self.region = region
        self.account_id = account_id
        self.state_dir = state_dir
        self.keep_alive_s = keep_alive_s
        self.shipper = shipper
        self.control_plane = ControlPlane(region, moto_url)
        self.metrics = EndpointMetrics(platform, shipper)
        if platform is not None:
            platform.gauge(lambda: [g for e in self.endpoints.values() for p in e.pools.values() for g in p.pc_gauges()])
        self.records = records
        self.invocation_timeout_s = float(INVOCATION_TIMEOUT_S)
        self.launch = ContainerLaunch(
            host=host, python=sys.executable, code_dir=code_dir, wrapper=wrapper,
            base_env={
                "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONPATH": str(code_dir),
                "PYTHONUNBUFFERED": "1", "AWS_REGION": region, "AWS_DEFAULT_REGION": region,
                "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_ENDPOINT_URL": gateway_url,
            },
        )
        self.endpoints: dict[str, Endpoint] = {}
        self.updating: dict[str, asyncio.Future[None]] = {}  # endpoint -> its UpdateEndpoint, in progress
        self.api = SageMakerApi(self)
        self._logs: dict[str, EndpointLogs] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._background: set[asyncio.Task[Any]] = set()

    # --- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Create the configured endpoints in moto, then load them (provisioned containers start)."""
        if not self.specs:
            return
        await asyncio.to_thread(self.control_plane.register, self.specs.values())
        for name in self.specs:
            try:
                await self.endpoint(name)
            except NotServable as exc:
                log.warning("endpoint %s cannot be served: %s", name, exc)

    async def stop(self) -> None:
        for task in list(self._background):
            task.cancel()
        containers = [c for e in self.endpoints.values() for p in e.pools.values() for c in p.stop_all()]
        await asyncio.gather(*(c.wait_closed(2.0) for c in containers), return_exceptions=True)
        for logs in self._logs.values():
            logs.close()

    def reap(self) -> None:
        for endpoint in list(self.endpoints.values()):
            for pool in endpoint.pools.values():
                try:
                    pool.reap()
                except Exception:
                    log.exception("reaping %s/%s failed", endpoint.definition.name, pool.spec.name)

    def spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def on_setup(self, pool: VariantPool, setup: Setup) -> None:
        self.metrics.setup(pool, setup)

    # --- HTTP ---------------------------------------------------------------------------------

    async def handle(self, request: Request, forward: Callable[[Request], Awaitable[Response]]) -> Response | None:
        """Answer what belongs to SageMaker on the AWS endpoint; None for everything else."""
        return await self.api.handle(request, forward)

    async def control(self, request: Request) -> Response:
        return await self.api.control(request)

    # --- running endpoints as moto defines them -----------------------------------------------

    def _keep_alive_s(self, name: str) -> float:
        spec = self.specs.get(name)
        return spec.keep_alive_s if spec is not None and spec.keep_alive_s is not None else self.keep_alive_s

    async def _container_envs(self, definition: EndpointDefinition) -> dict[str, dict[str, str]]:
        s3 = self.control_plane.s3
        return {v.name: await asyncio.to_thread(container_env, v, s3, self.state_dir) for v in definition.variants}

    async def endpoint(self, name: str) -> Endpoint | None:
        """The running endpoint, read from moto on first use; None if moto has no such endpoint."""
        known = self.endpoints.get(name)
        if known is not None:
            return known
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            known = self.endpoints.get(name)
            if known is not None:
                return known
            definition = await asyncio.to_thread(self.control_plane.describe, name)
            if definition is None:
                return None
            envs = await self._container_envs(definition)
            endpoint = Endpoint(definition)
            logs = self._logs.get(name)
            if logs is None:
                logs = self._logs[name] = EndpointLogs(name, self.state_dir / "logs", self.shipper)
            keep = self._keep_alive_s(name)
            for variant in definition.variants:
                endpoint.pools[variant.name] = VariantPool(self, definition, variant, envs[variant.name], logs, keep)
            self.endpoints[name] = endpoint
            for pool in endpoint.pools.values():
                pool.reconcile()
            return endpoint

    def forget(self, name: str) -> None:
        """The endpoint changed or went away in the control plane: stop its containers."""
        endpoint = self.endpoints.pop(name, None)
        if endpoint is None:
            return
        for pool in endpoint.pools.values():
            for container in pool.stop_all():
                self.spawn(container.wait_closed())

    async def load_quietly(self, name: str) -> None:
        try:
            await self.endpoint(name)
        except Exception as exc:
            log.warning("endpoint %s cannot be served: %s", name, exc)

    async def apply_update(self, name: str) -> None:
        """Run the endpoint's new config; done when its provisioned containers are ready."""
        try:
            running = self.endpoints.get(name)
            definition = await asyncio.to_thread(self.control_plane.describe, name)
            if definition is None:
                return
            if running is None:
                endpoint = await self.endpoint(name)
            else:
                endpoint = running
                envs = await self._container_envs(definition)
                keep = self._keep_alive_s(name)
                pools: dict[str, VariantPool] = {}
                for variant in definition.variants:
                    pool = endpoint.pools.pop(variant.name, None)
                    same_model = pool is not None and (
                        (pool.spec.model_name, dict(pool.spec.environment), pool.spec.model_data_url, pool.spec.image)
                        == (variant.model_name, dict(variant.environment), variant.model_data_url, variant.image))
                    if pool is not None and same_model:
                        pool.spec, pool.endpoint = variant, definition  # only its ServerlessConfig changed
                    else:
                        if pool is not None:
                            for container in pool.stop_all():
                                self.spawn(container.wait_closed())
                        pool = VariantPool(self, definition, variant, envs[variant.name], self._logs[name], keep)
                    pools[variant.name] = pool
                for gone in endpoint.pools.values():
                    for container in gone.stop_all():
                        self.spawn(container.wait_closed())
                endpoint.definition, endpoint.pools = definition, pools
                for pool in pools.values():
                    pool.reconcile()
            deadline = time.monotonic() + SETUP_TIMEOUT_S
            while endpoint is not None and time.monotonic() < deadline:
                if all(p.provisioned_ready() or p.failure for p in endpoint.pools.values()):
                    return
                await asyncio.sleep(0.05)
        except Exception as exc:  # the endpoint keeps what it had; the update is over either way
            log.warning("UpdateEndpoint of %s: %s", name, exc)

    def describe(self) -> list[dict[str, Any]]:
        return [
            {"name": name, "arn": e.definition.arn, "config": e.definition.config_name,
             "log_file": str(self._logs[name].path) if name in self._logs else None,
             "variants": [p.describe() for p in e.pools.values()]}
            for name, e in self.endpoints.items()
        ]
