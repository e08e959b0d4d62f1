"""The SageMaker HTTP API of the twin, on its AWS endpoint.

- `POST /endpoints/{name}/invocations` (InvokeEndpoint, rest-json as botocore's model describes it):
  ContentType, Accept and CustomAttributes go to the container; the answer carries Content-Type,
  x-Amzn-Invoked-Production-Variant and X-Amzn-SageMaker-Custom-Attributes. Payloads over 4 MB get
  413 ValidationError; a container's 4xx/5xx, crash or 60 s overrun gets 424 ModelError (with
  OriginalStatusCode, OriginalMessage, LogStreamArn); beyond MaxConcurrency, 429 ThrottlingException.
- UpdateEndpoint, which moto lacks, is answered here (scripts/twin/sagemaker.py applies it);
  DescribeEndpoint says `Updating` meanwhile; CreateEndpoint and DeleteEndpoint go to moto and stop the
  endpoint's containers, so the next request runs the new definition.
- The twin's own control API: GET /_preheat/endpoints, POST /_preheat/endpoints/{name}/reset.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from functions.sagemaker.environment import SERVERLESS_PAYLOAD_BYTES
from scripts.twin.http11 import Request, Response
from scripts.twin.records import Record
from scripts.twin.sagemaker_container import Container, ContainerError
from scripts.twin.sagemaker_control import NotServable
from scripts.twin.sagemaker_pool import Throttled, VariantPool

if TYPE_CHECKING:
    from scripts.twin.sagemaker import SageMaker

log = logging.getLogger("preheat.twin")

_INVOKE_PATH = "/endpoints/"
_FORWARDED_HEADERS = ("content-type", "accept", "x-amzn-sagemaker-custom-attributes")
_CONTROL_OPS = ("SageMaker.CreateEndpoint", "SageMaker.DeleteEndpoint")


def aws_error(status: int, error_type: str, message: str, **extra: Any) -> Response:
    body = {"message": message, "Message": message, **extra}
    return Response.json(status, body, [("x-amzn-errortype", error_type), ("x-amzn-requestid", str(uuid.uuid4()))])


class SageMakerApi:
    def __init__(self, service: SageMaker) -> None:
        self.service = service

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
                self.service.forget(name)
                if not target.endswith("DeleteEndpoint"):
                    self.service.spawn(self.service.load_quietly(name))  # provisioned containers start now, as on AWS
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
        arn = f"arn:aws:sagemaker:{self.service.region}:{self.service.account_id}:endpoint/{name.lower()}"
        if name in self.service.updating:
            return _control_error("ValidationException", f'Cannot update in-progress endpoint "{arn}".')
        try:
            arn = await asyncio.to_thread(self.service.control_plane.swap_config, name, config)
        except LookupError as exc:
            return _control_error("ValidationException", str(exc))
        task = asyncio.ensure_future(self.service.apply_update(name))
        self.service.updating[name] = task
        task.add_done_callback(lambda _: self.service.updating.pop(name, None))
        return Response.json(200, {"EndpointArn": arn}, [("x-amzn-requestid", str(uuid.uuid4()))])

    def _while_updating(self, request: Request, response: Response) -> Response:
        """DescribeEndpoint says `Updating` until the new config runs."""
        try:
            name = json.loads(request.body or b"{}").get("EndpointName")
        except (ValueError, AttributeError):
            return response
        if response.status != 200 or name not in self.service.updating:
            return response
        try:
            data = json.loads(response.body)
        except ValueError:
            return response
        data["EndpointStatus"] = "Updating"
        return Response(200, json.dumps(data).encode(), [(k, v) for k, v in response.headers if k.lower() != "content-length"])

    # --- InvokeEndpoint ----------------------------------------------------------------------------

    async def invoke(self, name: str, request: Request) -> Response:
        arrived = time.perf_counter()
        request_id = str(uuid.uuid4())
        if len(request.body) > SERVERLESS_PAYLOAD_BYTES:
            return aws_error(413, "ValidationError",
                             f"Request payload is {len(request.body)} bytes; a serverless endpoint accepts at most "
                             f"{SERVERLESS_PAYLOAD_BYTES} bytes (4 MB)")
        try:
            endpoint = await self.service.endpoint(name)
        except NotServable as exc:
            return aws_error(400, "ValidationError", f"Endpoint {name} cannot be served by the local twin: {exc}")
        except Exception as exc:  # moto unreachable or failing: an AWS-shaped 500, never a hang
            log.warning("could not read endpoint %s from moto: %s", name, exc)
            return aws_error(500, "InternalFailure", f"could not read endpoint {name} from the control plane: {exc}")
        if endpoint is None:
            return aws_error(400, "ValidationError", f"Endpoint {name} of account {self.service.account_id} not found.")
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
        base = dict(seq=self.service.records.next_seq(), request_id=request_id, function=name, version=pool.spec.name,
                    qualifier=None, source="sagemaker", started_at=time.time())
        try:
            outcome = await pool.invoke(request.body, headers)
        except Throttled:
            self.service.records.add(Record(**base, outcome="throttled", cold=False))  # type: ignore[arg-type]
            return aws_error(429, "ThrottlingException",
                             f"The endpoint {name} is at its MaxConcurrency ({pool.spec.max_concurrency}); retry later "
                             "or raise MaxConcurrency")
        except ContainerError as exc:  # the cold start failed
            self.service.records.add(Record(**base, outcome="init_error", cold=True, error_type=exc.kind,  # type: ignore[arg-type]
                                    total_ms=round((time.perf_counter() - arrived) * 1000, 3)))
            self.service.metrics.request(pool, errors_5xx=1)
            return self._model_error(pool, 0, exc.message)
        total_ms = (time.perf_counter() - arrived) * 1000
        container = outcome.container
        cold = outcome.setup is not None
        start = "cold" if cold else ("provisioned" if container.provisioned else "warm")
        status = outcome.response.status
        outcome_name = "ok" if outcome.error is None and status < 400 else (
            outcome.error.kind if outcome.error is not None else "error")
        self.service.records.add(Record(
            **base, outcome={"exited": "crash"}.get(outcome_name, outcome_name), cold=cold,  # type: ignore[arg-type]
            instance_id=container.id, instance_kind=container.kind,
            init_ms=outcome.setup.ready_ms if outcome.setup else None, duration_ms=round(outcome.model_ms, 3),
            max_memory_mb=container.max_memory_mb(), total_ms=round(total_ms, 3),
            error_type=outcome.error.kind if outcome.error else (str(status) if status >= 400 else None),
        ))
        model_us = outcome.model_ms * 1000
        setup_ms = outcome.setup.ready_ms if outcome.setup else 0.0
        overhead_us = max(0.0, (total_ms - outcome.model_ms - setup_ms) * 1000)
        self.service.metrics.request(pool, errors_4xx=int(400 <= status < 500), errors_5xx=int(status >= 500 or outcome.error is not None),
                     model_us=model_us, overhead_us=overhead_us, outcome=outcome)
        self.service.metrics.preheat_split(pool, start, total_ms)
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
                   f"https://{self.service.region}.console.aws.amazon.com/cloudwatch/home?region={self.service.region}#logEventViewer:"
                   f"group={group} in account {self.service.account_id} for more information.")
        return aws_error(424, "ModelError", message, OriginalStatusCode=status, OriginalMessage=original,
                         LogStreamArn=f"arn:aws:logs:{self.service.region}:{self.service.account_id}:log-group:{group}")

    # --- the twin's control API (/_preheat/endpoints) -----------------------------------------

    async def control(self, request: Request) -> Response:
        parts = [unquote(p) for p in request.path.split("/") if p][1:]
        params = request.params()
        if parts == ["endpoints"] and request.method == "GET":
            return Response.json(200, {"endpoints": self.service.describe()})
        if len(parts) == 3 and parts[2] == "reset" and request.method == "POST":
            try:
                endpoint = await self.service.endpoint(parts[1])
            except NotServable as exc:
                return Response.json(400, {"code": "not_servable", "message": str(exc)})
            if endpoint is None:
                return Response.json(404, {"code": "unknown_endpoint", "message": f"no endpoint {parts[1]!r}"})
            provisioned = params.get("provisioned") in ("1", "true")
            return Response.json(200, {"stopped": sum(p.reset(provisioned=provisioned) for p in endpoint.pools.values())})
        return Response.json(404, {"code": "not_found", "message": f"no control route {request.method} {request.path}"})


def _control_error(code: str, message: str, status: int = 400) -> Response:
    """An error of the SageMaker control plane (JSON protocol: botocore reads `__type`)."""
    return Response.json(status, {"__type": code, "message": message},
                         [("x-amzn-errortype", code), ("x-amzn-requestid", str(uuid.uuid4()))])


def _header(response: Response, name: str) -> str | None:
    for key, value in response.headers:
        if key.lower() == name:
            return value
    return None
