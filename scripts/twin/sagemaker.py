"""SageMaker Serverless Inference in the twin: the runtime API served by local `serve` containers.

Endpoints are defined where AWS defines them, in the control plane: CreateModel, CreateEndpointConfig
and CreateEndpoint calls through the twin's AWS endpoint go to moto as any other call does (the CDK
stack, `preheat deploy sagemaker` and plain boto3 all work unchanged), and endpoints in the twin's
config are created there at start. On the first InvokeEndpoint the twin reads the endpoint, its config
and its model back from moto, and from then on runs it:

- `POST /endpoints/{name}/invocations` (InvokeEndpoint, rest-json as botocore's model describes it):
  ContentType, Accept and CustomAttributes go to the container; the answer carries Content-Type,
  x-Amzn-Invoked-Production-Variant and X-Amzn-SageMaker-Custom-Attributes. Payloads over 4 MB get
  413 ValidationError; a container's 4xx/5xx, crash or 60 s overrun gets 424 ModelError (with
  OriginalStatusCode, OriginalMessage, LogStreamArn); beyond MaxConcurrency, 429 ThrottlingException.
- One request at a time per container, as Serverless Inference runs them. A request that finds no idle
  container starts one (a cold start: spawn -> /ping 200 is ModelSetupTime); ProvisionedConcurrency
  containers are started ahead and never reaped; idle on-demand ones go after the keep-alive.
- The model comes from ModelDataUrl (model.tar.gz in moto's S3, extracted once per URL as SageMaker
  extracts it into /opt/ml/model), or from PREHEAT_MODEL_DIR in the model's environment (a model
  baked into the image). The image itself is not run (no Docker engine): every container runs this
  repository's `serve` in the twin's Python environment.
- Metrics as SageMaker publishes them for a serverless endpoint (scripts/twin/platform_metrics.py:
  namespace AWS/SageMaker, EndpointName + VariantName, per minute); and preheat's cold/warm split in
  namespace Preheat (Invocations, ColdStarts, Latency in ms, with dimension `start`).
- Logs: `<state_dir>/logs/sagemaker-<endpoint>.log` and CloudWatch Logs group
  /aws/sagemaker/Endpoints/<endpoint>, stream <variant>/<container id>.

UpdateEndpoint, which moto lacks, is the twin's: it checks the endpoint and the new endpoint config
in moto, swaps the config there (the endpoint keeps its name, ARN and tags), answers EndpointArn and
applies the new config as SageMaker does, while DescribeEndpoint says `Updating`: a variant whose model
is unchanged keeps its containers and only its ServerlessConfig changes (provisioned containers
started or retired to the new ProvisionedConcurrency, the new MaxConcurrency); any other variant is
replaced. The endpoint is `InService` again once every provisioned container of the new config passed
/ping; a second UpdateEndpoint meanwhile is refused, as SageMaker refuses it. CreateEndpoint and
DeleteEndpoint stop the endpoint's containers, so the next request runs the new definition.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import random
import sys
import tarfile
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from functions.sagemaker.environment import (
    INVOCATION_TIMEOUT_S,
    SAGEMAKER_MODEL_DIR,
    SERVERLESS_PAYLOAD_BYTES,
)
from scripts.aws_roles import service_role
from scripts.twin import emf
from scripts.twin.http11 import Request, Response
from scripts.twin.instance import State
from scripts.twin.logs import FunctionLogs
from scripts.twin.platform_metrics import SAGEMAKER, Dims, PlatformMetrics, variant_dimensions
from scripts.twin.pool import Record, Records
from scripts.twin.sagemaker_config import LOCAL_IMAGE, EndpointSpec
from scripts.twin.sagemaker_container import (
    ON_DEMAND,
    PROVISIONED,
    Container,
    ContainerError,
    ContainerLaunch,
    Setup,
)

log = logging.getLogger("preheat.twin")

SETUP_TIMEOUT_S = 120.0  # a loaded laptop can be slow; SageMaker allows minutes for a container to pass /ping
PREHEAT_NAMESPACE = "Preheat"
ROLE = "preheat-twin-sagemaker"
_INVOKE_PATH = "/endpoints/"
_FORWARDED_HEADERS = ("content-type", "accept", "x-amzn-sagemaker-custom-attributes")
_CONTROL_OPS = ("SageMaker.CreateEndpoint", "SageMaker.DeleteEndpoint")


class Throttled(Exception):
    pass


class NotServable(Exception):
    """The endpoint exists but the twin cannot run it (the message says why)."""


@dataclass(frozen=True)
class VariantSpec:
    name: str
    model_name: str
    memory_mb: int
    max_concurrency: int
    provisioned: int
    weight: float
    environment: Mapping[str, str]
    model_data_url: str | None
    image: str | None


@dataclass(frozen=True)
class EndpointDefinition:
    name: str
    arn: str
    config_name: str
    status: str
    variants: tuple[VariantSpec, ...]


def aws_error(status: int, error_type: str, message: str, **extra: Any) -> Response:
    body = {"message": message, "Message": message, **extra}
    return Response.json(status, body, [("x-amzn-errortype", error_type), ("x-amzn-requestid", str(uuid.uuid4()))])


class EndpointLogs(FunctionLogs):
    """A FunctionLogs whose CloudWatch group is SageMaker's for the endpoint."""

    def __init__(self, endpoint: str, directory: Path, shipper: emf.Shipper | None) -> None:
        super().__init__(f"sagemaker-{endpoint}", directory, shipper)
        self.group = f"/aws/sagemaker/Endpoints/{endpoint}"


@dataclass
class Outcome:
    response: Response
    container: Container
    setup: Setup | None
    model_ms: float
    error: ContainerError | None = None
    inflight: int = 1  # requests in flight on the variant when this one got its container
    busy_provisioned: int = 0  # provisioned containers busy then, this one's included


class VariantPool:
    def __init__(self, service: SageMaker, endpoint: EndpointDefinition, spec: VariantSpec, env: Mapping[str, str],
                 logs: EndpointLogs, keep_alive_s: float) -> None:
        self.service = service
        self.endpoint = endpoint
        self.spec = spec
        self.env = dict(env)
        self.logs = logs
        self.keep_alive_s = keep_alive_s
        self.containers: list[Container] = []
        self.inflight = 0
        self.failure: str | None = None  # why the last provisioned container failed to start

    def _new(self, kind: str) -> Container:
        container = Container(self.endpoint.name, self.spec.name, kind, self.env, self.service.launch, self.logs.line)
        self.containers.append(container)
        return container

    async def acquire(self) -> tuple[Container, Setup | None]:
        """An idle container (provisioned first, then the most recently used), or a new one."""
        deadline = time.monotonic() + SETUP_TIMEOUT_S
        while True:
            idle = [c for c in self.containers if c.state is State.IDLE and c.alive and not c.retiring]
            if idle:
                container = max(idle, key=lambda c: (c.provisioned, c.last_used))
                container.state = State.BUSY
                return container, None
            live = [c for c in self.containers if c.alive and not c.retiring]
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
            self._discard(container)
            raise
        self.service.setup_metric(self, setup)
        container.state = State.BUSY
        return container, setup

    async def invoke(self, body: bytes, headers: list[tuple[str, str]]) -> Outcome:
        if self.inflight >= self.spec.max_concurrency:
            raise Throttled
        self.inflight += 1
        try:
            container, setup = await self.acquire()
            inflight, busy = self.inflight, self.busy_provisioned()
            started = time.perf_counter()
            try:
                response = await container.invoke(body, headers, self.service.invocation_timeout_s)
            except ContainerError as exc:
                self._discard(container)
                return Outcome(Response(0), container, setup, (time.perf_counter() - started) * 1000, exc, inflight, busy)
            model_ms = (time.perf_counter() - started) * 1000
            if container.retiring:
                self._discard(container)
            else:
                container.release()
            return Outcome(response, container, setup, model_ms, None, inflight, busy)
        finally:
            self.inflight -= 1

    def busy_provisioned(self) -> int:
        return sum(1 for c in self.containers if c.provisioned and c.state is State.BUSY)

    def pc_gauges(self) -> list[tuple[str, str, Dims, float]]:
        if self.spec.provisioned <= 0:
            return []
        dims = variant_dimensions(self.endpoint.name, self.spec.name)
        busy = self.busy_provisioned()
        return [(SAGEMAKER, "ServerlessProvisionedConcurrencyExecutions", dims, busy),
                (SAGEMAKER, "ServerlessProvisionedConcurrencyUtilization", dims, busy / self.spec.provisioned)]

    def _discard(self, container: Container) -> None:
        container.stop()
        if container in self.containers:
            self.containers.remove(container)
        self.service.spawn(container.wait_closed())
        if container.provisioned and not container.retiring:
            self.reconcile()

    def reconcile(self) -> None:
        """Start or retire provisioned containers until ProvisionedConcurrency of them are up or
        starting (a busy one retires after its request)."""
        current = [c for c in self.containers if c.provisioned and c.alive and not c.retiring]
        for _ in range(self.spec.provisioned - len(current)):
            self.service.spawn(self._provision())
        order = {State.STARTING: 0, State.IDLE: 1, State.BUSY: 2}
        for container in sorted(current, key=lambda c: order.get(c.state, 3))[: max(0, len(current) - self.spec.provisioned)]:
            container.retiring = True
            if container.state is not State.BUSY:
                container.stop()
                self.containers.remove(container)
                self.service.spawn(container.wait_closed())

    def provisioned_ready(self) -> bool:
        ready = [c for c in self.containers if c.provisioned and not c.retiring and c.state in (State.IDLE, State.BUSY)]
        return len(ready) >= self.spec.provisioned

    async def _provision(self) -> None:
        container = self._new(PROVISIONED)
        try:
            setup = await container.start(SETUP_TIMEOUT_S)
        except ContainerError as exc:
            if container in self.containers:
                self.containers.remove(container)
            self.failure = exc.message
            log.warning("a provisioned container of %s failed to start: %s", self.endpoint.name, exc.message)
            return
        self.failure = None
        self.service.setup_metric(self, setup)

    def reap(self) -> int:
        now = time.monotonic()
        stopped = 0
        lost = False
        for container in list(self.containers):
            if container.state is State.IDLE and not container.alive:
                lost |= container.provisioned
                self.containers.remove(container)
                container.stop()
                self.service.spawn(container.wait_closed())
            elif (container.state is State.IDLE and not container.provisioned
                  and now - container.last_used > self.keep_alive_s):
                container.stop()
                self.containers.remove(container)
                self.service.spawn(container.wait_closed())
                stopped += 1
        if lost:
            self.reconcile()
        return stopped

    def reset(self, *, provisioned: bool) -> int:
        """Stop idle containers so the next request starts cold; busy ones finish their request first."""
        count = 0
        for container in list(self.containers):
            if container.provisioned and not provisioned:
                continue
            count += 1
            if container.state in (State.BUSY, State.STARTING):
                container.retiring = True
                continue
            container.stop()
            self.containers.remove(container)
            self.service.spawn(container.wait_closed())
        if provisioned:
            self.reconcile()
        return count

    def stop_all(self) -> list[Container]:
        containers = list(self.containers)
        for container in containers:
            container.retiring = True
            container.stop()
        self.containers.clear()
        return containers

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
        self.moto_url = moto_url
        self.state_dir = state_dir
        self.keep_alive_s = keep_alive_s
        self.shipper = shipper
        self.platform = platform
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
        self._logs: dict[str, EndpointLogs] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._clients: tuple[Any, Any] | None = None
        self._updating: dict[str, asyncio.Future[None]] = {}  # endpoint -> its UpdateEndpoint, in progress

    # --- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Create the configured endpoints in moto, then load them (provisioned containers start)."""
        if not self.specs:
            return
        await asyncio.to_thread(self._register)
        for name in self.specs:
            try:
                await self.endpoint(name)
            except NotServable as exc:
                log.warning("endpoint %s cannot be served: %s", name, exc)

    def _register(self) -> None:
        sm, _ = self.clients()
        import boto3

        iam = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    region_name=self.region).client("iam", endpoint_url=self.moto_url)
        role = service_role(iam, ROLE, "sagemaker.amazonaws.com")
        for spec in self.specs.values():
            description = spec.registered()
            try:
                sm.create_model(**description.create_model_request(LOCAL_IMAGE, role))
                sm.create_endpoint_config(**description.create_endpoint_config_request())
                sm.create_endpoint(**description.create_endpoint_request())
            except Exception as exc:
                log.warning("could not create endpoint %s in moto: %s", spec.name, exc)

    def clients(self) -> tuple[Any, Any]:
        if self._clients is None:
            import boto3

            session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                            region_name=self.region)
            self._clients = (session.client("sagemaker", endpoint_url=self.moto_url),
                             session.client("s3", endpoint_url=self.moto_url))
        return self._clients

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

    # --- resolving endpoints from moto --------------------------------------------------------

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
            definition = await asyncio.to_thread(self._describe, name)
            if definition is None:
                return None
            envs = {v.name: await asyncio.to_thread(self._container_env, definition, v) for v in definition.variants}
            endpoint = Endpoint(definition)
            logs = self._logs.get(name)
            if logs is None:
                logs = self._logs[name] = EndpointLogs(name, self.state_dir / "logs", self.shipper)
            spec = self.specs.get(name)
            keep = spec.keep_alive_s if spec is not None and spec.keep_alive_s is not None else self.keep_alive_s
            for variant in definition.variants:
                endpoint.pools[variant.name] = VariantPool(self, definition, variant, envs[variant.name], logs, keep)
            self.endpoints[name] = endpoint
            for pool in endpoint.pools.values():
                pool.reconcile()
            return endpoint

    def _describe(self, name: str) -> EndpointDefinition | None:
        sm, _ = self.clients()
        try:
            described = sm.describe_endpoint(EndpointName=name)
        except sm.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("ValidationException", "ValidationError",
                                                             "ResourceNotFound"):
                return None
            raise
        config = sm.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
        variants = []
        for pv in config["ProductionVariants"]:
            serverless = pv.get("ServerlessConfig")
            if not serverless:
                raise NotServable(
                    f"variant {pv['VariantName']} of endpoint {name} is instance-based; the twin runs serverless "
                    "variants (ServerlessConfig) only")
            model = sm.describe_model(ModelName=pv["ModelName"])
            container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
            variants.append(VariantSpec(
                name=pv["VariantName"], model_name=pv["ModelName"], memory_mb=int(serverless["MemorySizeInMB"]),
                max_concurrency=int(serverless["MaxConcurrency"]),
                provisioned=int(serverless.get("ProvisionedConcurrency") or 0),
                weight=float(pv.get("InitialVariantWeight", 1.0)),
                environment=dict(container.get("Environment") or {}),
                model_data_url=container.get("ModelDataUrl"), image=container.get("Image"),
            ))
        return EndpointDefinition(name, described["EndpointArn"], described["EndpointConfigName"],
                                  described.get("EndpointStatus", "InService"), tuple(variants))

    def _container_env(self, endpoint: EndpointDefinition, variant: VariantSpec) -> dict[str, str]:
        """The model's environment, with PREHEAT_MODEL_DIR where this machine has the model."""
        env = dict(variant.environment)
        baked = env.get("PREHEAT_MODEL_DIR", "").strip()
        if baked and baked != SAGEMAKER_MODEL_DIR:
            if not (Path(baked) / "manifest.json").is_file():
                raise NotServable(f"model {variant.model_name}: PREHEAT_MODEL_DIR {baked} has no manifest.json")
            return env
        if not variant.model_data_url:
            raise NotServable(
                f"model {variant.model_name} has no ModelDataUrl and no PREHEAT_MODEL_DIR: give it model.tar.gz in S3 "
                "or a model baked into the image")
        env["PREHEAT_MODEL_DIR"] = str(self._extract(variant.model_data_url))
        return env

    def _extract(self, url: str) -> Path:
        """Download model.tar.gz from (moto's) S3 and extract it once, as SageMaker does into /opt/ml/model."""
        if not url.startswith("s3://") or "/" not in url[5:]:
            raise NotServable(f"ModelDataUrl {url!r} is not an s3://bucket/key URL")
        bucket, key = url[5:].split("/", 1)
        _, s3 = self.clients()
        try:
            head = s3.head_object(Bucket=bucket, Key=key)
        except Exception as exc:
            raise NotServable(f"ModelDataUrl {url}: {exc}") from None
        digest = hashlib.sha256(f"{url}\n{head.get('ETag', '')}".encode()).hexdigest()[:16]
        target = self.state_dir / "sagemaker" / "models" / digest
        if (target / ".extracted").is_file():
            return target
        target.mkdir(parents=True, exist_ok=True)
        archive = target.with_suffix(".tar.gz")
        s3.download_file(bucket, key, str(archive))
        try:
            with tarfile.open(archive, "r:*") as tar:
                tar.extractall(target, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise NotServable(f"ModelDataUrl {url} is not a readable tar.gz: {exc}") from None
        finally:
            archive.unlink(missing_ok=True)
        (target / ".extracted").write_text(url)
        return target

    def forget(self, name: str) -> None:
        """The endpoint changed or went away in the control plane: stop its containers."""
        endpoint = self.endpoints.pop(name, None)
        if endpoint is None:
            return
        for pool in endpoint.pools.values():
            for container in pool.stop_all():
                self.spawn(container.wait_closed())

    # --- the AWS endpoint ---------------------------------------------------------------------

    async def handle(self, request: Request, forward: Callable[[Request], Awaitable[Response]]) -> Response | None:
        """Answer what belongs to SageMaker here; None for everything else."""
        path = request.path
        if request.method == "POST" and path.startswith(_INVOKE_PATH) and path.endswith("/invocations"):
            name = unquote(path[len(_INVOKE_PATH) : -len("/invocations")])
            if name and "/" not in name:
                return await self.invoke(name, request)
        target = request.header("x-amz-target") or ""
        if request.method == "POST" and target == "SageMaker.UpdateEndpoint":
            return await self._update_endpoint(request)
        if request.method == "POST" and target == "SageMaker.DescribeEndpoint":
            return self._while_updating(request, await forward(request))
        if request.method == "POST" and target in _CONTROL_OPS:
            response = await forward(request)
            if 200 <= response.status < 300:
                try:
                    name = str(json.loads(request.body)["EndpointName"])
                except (ValueError, KeyError, TypeError):
                    return response
                self.forget(name)
                if not target.endswith("DeleteEndpoint"):
                    self.spawn(self._load_quietly(name))  # provisioned containers start now, as on AWS
            return response
        return None

    # --- UpdateEndpoint ---------------------------------------------------------------------------

    async def _update_endpoint(self, request: Request) -> Response:
        try:
            body = json.loads(request.body or b"{}")
            name, config = body["EndpointName"], body["EndpointConfigName"]
            if not (isinstance(name, str) and name and isinstance(config, str) and config):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return _control_error("ValidationException",
                                  "UpdateEndpoint needs EndpointName and EndpointConfigName (non-empty strings)")
        arn = f"arn:aws:sagemaker:{self.region}:{self.account_id}:endpoint/{name.lower()}"
        if name in self._updating:
            return _control_error("ValidationException", f'Cannot update in-progress endpoint "{arn}".')
        try:
            arn = await asyncio.to_thread(self._swap_config, name, config)
        except LookupError as exc:
            return _control_error("ValidationException", str(exc))
        task = asyncio.ensure_future(self._apply_update(name))
        self._updating[name] = task
        task.add_done_callback(lambda _: self._updating.pop(name, None))
        return Response.json(200, {"EndpointArn": arn}, [("x-amzn-requestid", str(uuid.uuid4()))])

    def _swap_config(self, name: str, config: str) -> str:
        """Point the endpoint at `config` in moto (which has no UpdateEndpoint): delete it and create
        it again with the same name (hence the same ARN) and tags."""
        sm, _ = self.clients()
        try:
            described = sm.describe_endpoint(EndpointName=name)
        except sm.exceptions.ClientError as exc:
            raise LookupError(exc.response.get("Error", {}).get("Message", str(exc))) from None
        if described.get("EndpointStatus") != "InService":
            raise LookupError(f'Cannot update in-progress endpoint "{described["EndpointArn"]}".')
        try:
            sm.describe_endpoint_config(EndpointConfigName=config)
        except sm.exceptions.ClientError as exc:
            raise LookupError(exc.response.get("Error", {}).get("Message", str(exc))) from None
        tags = sm.list_tags(ResourceArn=described["EndpointArn"]).get("Tags", [])
        sm.delete_endpoint(EndpointName=name)
        sm.create_endpoint(EndpointName=name, EndpointConfigName=config, **({"Tags": tags} if tags else {}))
        return str(described["EndpointArn"])

    async def _apply_update(self, name: str) -> None:
        """Run the endpoint's new config; done when its provisioned containers are ready."""
        try:
            running = self.endpoints.get(name)
            definition = await asyncio.to_thread(self._describe, name)
            if definition is None:
                return
            if running is None:
                endpoint = await self.endpoint(name)
            else:
                endpoint = running
                envs = {v.name: await asyncio.to_thread(self._container_env, definition, v) for v in definition.variants}
                spec = self.specs.get(name)
                keep = spec.keep_alive_s if spec is not None and spec.keep_alive_s is not None else self.keep_alive_s
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

    def _while_updating(self, request: Request, response: Response) -> Response:
        """DescribeEndpoint says `Updating` until the new config runs."""
        try:
            name = json.loads(request.body or b"{}").get("EndpointName")
        except (ValueError, AttributeError):
            return response
        if response.status != 200 or name not in self._updating:
            return response
        try:
            data = json.loads(response.body)
        except ValueError:
            return response
        data["EndpointStatus"] = "Updating"
        return Response(200, json.dumps(data).encode(), [(k, v) for k, v in response.headers if k.lower() != "content-length"])

    async def _load_quietly(self, name: str) -> None:
        try:
            await self.endpoint(name)
        except Exception as exc:
            log.warning("endpoint %s cannot be served: %s", name, exc)

    async def invoke(self, name: str, request: Request) -> Response:
        arrived = time.perf_counter()
        request_id = str(uuid.uuid4())
        if len(request.body) > SERVERLESS_PAYLOAD_BYTES:
            return aws_error(413, "ValidationError",
                             f"Request payload is {len(request.body)} bytes; a serverless endpoint accepts at most "
                             f"{SERVERLESS_PAYLOAD_BYTES} bytes (4 MB)")
        try:
            endpoint = await self.endpoint(name)
        except NotServable as exc:
            return aws_error(400, "ValidationError", f"Endpoint {name} cannot be served by the local twin: {exc}")
        except Exception as exc:  # moto unreachable or failing: an AWS-shaped 500, never a hang
            log.warning("could not read endpoint %s from moto: %s", name, exc)
            return aws_error(500, "InternalFailure", f"could not read endpoint {name} from the control plane: {exc}")
        if endpoint is None:
            return aws_error(400, "ValidationError", f"Endpoint {name} of account {self.account_id} not found.")
        definition = endpoint.definition
        if definition.status != "InService":
            return aws_error(400, "ValidationError", f"Endpoint {name} is not in service (status {definition.status})")
        wanted = request.header("x-amzn-sagemaker-target-variant")
        if wanted:
            pool = endpoint.pools.get(wanted)
            if pool is None:
                return aws_error(400, "ValidationError", f"Variant {wanted} does not exist for endpoint {name}. "
                                 f"Variants: {', '.join(endpoint.pools)}")
        else:
            pools = list(endpoint.pools.values())
            pool = random.choices(pools, weights=[max(p.spec.weight, 0.0) or 1e-9 for p in pools])[0]
        headers = [(k, v) for k, v in request.headers if k in _FORWARDED_HEADERS]
        headers.append(("x-amzn-sagemaker-inference-id", request.header("x-amzn-sagemaker-inference-id") or request_id))
        base = dict(seq=self.records.next_seq(), request_id=request_id, function=name, version=pool.spec.name,
                    qualifier=None, source="sagemaker", started_at=time.time())
        try:
            outcome = await pool.invoke(request.body, headers)
        except Throttled:
            self.records.add(Record(**base, outcome="throttled", cold=False))  # type: ignore[arg-type]
            return aws_error(429, "ThrottlingException",
                             f"The endpoint {name} is at its MaxConcurrency ({pool.spec.max_concurrency}); retry later "
                             "or raise MaxConcurrency")
        except ContainerError as exc:  # the cold start failed
            self.records.add(Record(**base, outcome="init_error", cold=True, error_type=exc.kind,  # type: ignore[arg-type]
                                    total_ms=round((time.perf_counter() - arrived) * 1000, 3)))
            self._report(pool, errors_5xx=1)
            return self._model_error(pool, 0, exc.message)
        total_ms = (time.perf_counter() - arrived) * 1000
        container = outcome.container
        cold = outcome.setup is not None
        start = "cold" if cold else ("provisioned" if container.provisioned else "warm")
        status = outcome.response.status
        outcome_name = "ok" if outcome.error is None and status < 400 else (
            outcome.error.kind if outcome.error is not None else "error")
        self.records.add(Record(
            **base, outcome={"exited": "crash"}.get(outcome_name, outcome_name), cold=cold,  # type: ignore[arg-type]
            instance_id=container.id, instance_kind=container.kind,
            init_ms=outcome.setup.ready_ms if outcome.setup else None, duration_ms=round(outcome.model_ms, 3),
            max_memory_mb=container.max_memory_mb(), total_ms=round(total_ms, 3),
            error_type=outcome.error.kind if outcome.error else (str(status) if status >= 400 else None),
        ))
        model_us = outcome.model_ms * 1000
        setup_ms = outcome.setup.ready_ms if outcome.setup else 0.0
        overhead_us = max(0.0, (total_ms - outcome.model_ms - setup_ms) * 1000)
        self._report(pool, errors_4xx=int(400 <= status < 500), errors_5xx=int(status >= 500 or outcome.error is not None),
                     model_us=model_us, overhead_us=overhead_us, outcome=outcome)
        self._preheat_split(pool, start, total_ms)
        if outcome.error is not None:
            return self._model_error(pool, 0, outcome.error.message, container)
        if status >= 400:
            return self._model_error(pool, status, outcome.response.body.decode("utf-8", "replace"), container)
        out = [("content-type", _header(outcome.response, "content-type") or "application/octet-stream"),
               ("x-amzn-invoked-production-variant", pool.spec.name), ("x-amzn-requestid", request_id)]
        custom = _header(outcome.response, "x-amzn-sagemaker-custom-attributes")
        if custom is not None:
            out.append(("x-amzn-sagemaker-custom-attributes", custom))
        return Response(200, outcome.response.body, out)

    def _model_error(self, pool: VariantPool, status: int, original: str, container: Container | None = None) -> Response:
        name = pool.endpoint.name
        kind = "client" if 400 <= status < 500 else "server"
        group = f"/aws/sagemaker/Endpoints/{name}"
        message = (f"Received {kind} error ({status}) from primary with message \"{original}\". See "
                   f"https://{self.region}.console.aws.amazon.com/cloudwatch/home?region={self.region}#logEventViewer:"
                   f"group={group} in account {self.account_id} for more information.")
        return aws_error(424, "ModelError", message, OriginalStatusCode=status, OriginalMessage=original,
                         LogStreamArn=f"arn:aws:logs:{self.region}:{self.account_id}:log-group:{group}")

    # --- metrics ------------------------------------------------------------------------------

    def setup_metric(self, pool: VariantPool, setup: Setup) -> None:
        if self.platform is not None:
            dims = variant_dimensions(pool.endpoint.name, pool.spec.name)
            self.platform.put(SAGEMAKER, "ModelSetupTime", dims, round(setup.ready_ms * 1000, 1))

    def _report(self, pool: VariantPool, *, errors_4xx: int = 0, errors_5xx: int = 0, model_us: float | None = None,
                overhead_us: float | None = None, outcome: Outcome | None = None) -> None:
        """One request, in SageMaker's metrics (scripts/twin/platform_metrics.py)."""
        if self.platform is None:
            return
        dims = variant_dimensions(pool.endpoint.name, pool.spec.name)
        put = self.platform.put
        put(SAGEMAKER, "Invocations", dims, 1)
        put(SAGEMAKER, "Invocation4XXErrors", dims, errors_4xx)
        put(SAGEMAKER, "Invocation5XXErrors", dims, errors_5xx)
        if model_us is not None:
            put(SAGEMAKER, "ModelLatency", dims, round(model_us, 1))
        if overhead_us is not None:
            put(SAGEMAKER, "OverheadLatency", dims, round(overhead_us, 1))
        if outcome is None:
            return
        put(SAGEMAKER, "ServerlessConcurrentExecutionsUtilization", dims, outcome.inflight / pool.spec.max_concurrency)
        if pool.spec.provisioned > 0:
            on_pc = outcome.container.provisioned
            put(SAGEMAKER, "ServerlessProvisionedConcurrencyInvocations", dims, int(on_pc))
            put(SAGEMAKER, "ServerlessProvisionedConcurrencySpilloverInvocations", dims, int(not on_pc))
            put(SAGEMAKER, "ServerlessProvisionedConcurrencyExecutions", dims, outcome.busy_provisioned)
            put(SAGEMAKER, "ServerlessProvisionedConcurrencyUtilization", dims,
                outcome.busy_provisioned / pool.spec.provisioned)

    def _preheat_split(self, pool: VariantPool, start: str, latency_ms: float) -> None:
        """preheat's own cold/warm split for the endpoint, per request, in namespace Preheat."""
        if self.shipper is None:
            return
        dims = [{"Name": "EndpointName", "Value": pool.endpoint.name}, {"Name": "VariantName", "Value": pool.spec.name},
                {"Name": "start", "Value": start}]
        stamp = dt.datetime.now(dt.UTC)
        for metric, value, unit in (("Invocations", 1.0, "Count"), ("ColdStarts", float(start == "cold"), "Count"),
                                    ("Latency", latency_ms, "Milliseconds")):
            self.shipper.metric(emf.MetricEntry(PREHEAT_NAMESPACE, {
                "MetricName": metric, "Dimensions": dims, "Timestamp": stamp, "Values": [value], "Counts": [1.0],
                "Unit": unit,
            }))

    # --- the twin's control API (/_preheat/endpoints) -----------------------------------------

    async def control(self, request: Request) -> Response:
        parts = [unquote(p) for p in request.path.split("/") if p][1:]
        params = request.params()
        if parts == ["endpoints"] and request.method == "GET":
            return Response.json(200, {"endpoints": self.describe()})
        if len(parts) == 3 and parts[2] == "reset" and request.method == "POST":
            try:
                endpoint = await self.endpoint(parts[1])
            except NotServable as exc:
                return Response.json(400, {"code": "not_servable", "message": str(exc)})
            if endpoint is None:
                return Response.json(404, {"code": "unknown_endpoint", "message": f"no endpoint {parts[1]!r}"})
            provisioned = params.get("provisioned") in ("1", "true")
            return Response.json(200, {"stopped": sum(p.reset(provisioned=provisioned) for p in endpoint.pools.values())})
        return Response.json(404, {"code": "not_found", "message": f"no control route {request.method} {request.path}"})

    def describe(self) -> list[dict[str, Any]]:
        return [
            {"name": name, "arn": e.definition.arn, "config": e.definition.config_name,
             "log_file": str(self._logs[name].path) if name in self._logs else None,
             "variants": [p.describe() for p in e.pools.values()]}
            for name, e in self.endpoints.items()
        ]


def _control_error(code: str, message: str, status: int = 400) -> Response:
    """An error of the SageMaker control plane (JSON protocol: botocore reads `__type`)."""
    return Response.json(status, {"__type": code, "message": message},
                         [("x-amzn-errortype", code), ("x-amzn-requestid", str(uuid.uuid4()))])


def _header(response: Response, name: str) -> str | None:
    for key, value in response.headers:
        if key.lower() == name:
            return value
    return None
