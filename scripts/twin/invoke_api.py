"""The twin's AWS endpoint: Lambda's Invoke and concurrency APIs served by the twin, everything else
forwarded to moto_server, so one `endpoint_url` serves unchanged boto3 code.

Served here (rest-json, as botocore's service model describes them):
  POST   /2015-03-31/functions/{name}/invocations                 Invoke (RequestResponse, Event, DryRun)
  PUT    /2019-09-30/functions/{name}/provisioned-concurrency     PutProvisionedConcurrencyConfig
  GET    /2019-09-30/functions/{name}/provisioned-concurrency     Get... (List=ALL: List...)
  DELETE /2019-09-30/functions/{name}/provisioned-concurrency     Delete...
  PUT    /2017-10-31/functions/{name}/concurrency                 PutFunctionConcurrency (mirrored to moto)
  GET    /2019-09-30/functions/{name}/concurrency                 GetFunctionConcurrency
  DELETE /2017-10-31/functions/{name}/concurrency                 DeleteFunctionConcurrency (mirrored)
  GET    /2021-10-31/functions/{name}/url                         GetFunctionUrlConfig (the twin's HTTPS URL)
and the twin's own control API under /_preheat/ (functions, invocation records, reset, schedules,
faults). Functions the twin does not run are left to moto, as are all other paths. A scripted fault
(faults.py) answers a matching call, served here or forwarded, with its error instead.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict
from typing import Any
from urllib.parse import unquote

from scripts.twin import http11
from scripts.twin.concurrency import ConfigConflict, UnknownQualifier
from scripts.twin.faults import Fault, FaultError, Faults, forwarded_operation, lambda_operation
from scripts.twin.http11 import Request, Response
from scripts.twin.pool import Function, Throttled
from scripts.twin.records import Records

log = logging.getLogger("preheat.twin")

SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024
ASYNC_PAYLOAD_BYTES = 1024 * 1024
_FUNCTION_PATH = re.compile(r"^/(\d{4}-\d{2}-\d{2})/functions/([^/]+)(/.*)?$")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "trailer", "upgrade"}


def aws_error(status: int, error_type: str, message: str, **extra: Any) -> Response:
    body = {"Type": "User" if status < 500 else "Service", "message": message, **extra}
    return Response.json(status, body, [("x-amzn-errortype", error_type), ("x-amzn-requestid", str(uuid.uuid4()))])


def split_name(raw: str) -> tuple[str, str | None]:
    """A FunctionName as Lambda accepts it (name, name:qualifier, full or partial ARN) -> (name, qualifier)."""
    value = unquote(raw)
    parts = value.split(":")
    if value.startswith("arn:"):
        # arn:aws:lambda:region:account:function:name[:qualifier]
        if len(parts) < 7 or parts[5] != "function":
            return value, None
        return parts[6], parts[7] if len(parts) > 7 else None
    if len(parts) >= 3 and parts[1] == "function":  # account:function:name[:qualifier]
        return parts[2], parts[3] if len(parts) > 3 else None
    if len(parts) == 2:
        return parts[0], parts[1]
    return value, None


class Gateway:
    def __init__(
        self,
        functions: Mapping[str, Function],
        records: Records,
        moto: tuple[str, int],
        *,
        url_of: Callable[[str], str | None],
        control: Mapping[str, Callable[[Request], Awaitable[Response]]] | None = None,
        faults: Faults | None = None,
    ) -> None:
        self.functions = functions
        self.records = records
        self.moto = moto
        self.url_of = url_of
        self.control = dict(control or {})
        self.faults = faults if faults is not None else Faults()

    async def handle(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/_preheat/"):
            return await self._control(request)
        match = _FUNCTION_PATH.match(path)
        if match:
            api, raw_name, rest = match.group(1), match.group(2), match.group(3) or ""
            name, arn_qualifier = split_name(raw_name)
            function = self.functions.get(name)
            fault = self.faults.take(lambda_operation(request.method, api, rest, request.params()), name)
            if fault is not None:
                return _fault_response(fault)
            if function is not None:
                route = (request.method, api, rest)
                try:
                    if route == ("POST", "2015-03-31", "/invocations"):
                        return await self._invoke(function, request, arn_qualifier)
                    if api == "2019-09-30" and rest == "/provisioned-concurrency":
                        return self._provisioned(function, request, arn_qualifier)
                    if rest == "/concurrency" and route in (
                        ("PUT", "2017-10-31", rest), ("DELETE", "2017-10-31", rest), ("GET", "2019-09-30", rest)
                    ):
                        return await self._reserved(function, request)
                    if route == ("GET", "2021-10-31", "/url"):
                        return self._url(function)
                except UnknownQualifier as exc:
                    return aws_error(404, "ResourceNotFoundException", str(exc))
                except ConfigConflict as exc:
                    return aws_error(400, "InvalidParameterValueException", str(exc))
        else:
            fault = self.faults.take(forwarded_operation(request))
            if fault is not None:
                return _fault_response(fault)
        return await self.forward(request)

    # --- Invoke -------------------------------------------------------------------------------

    async def _invoke(self, function: Function, request: Request, arn_qualifier: str | None) -> Response:
        qualifier = request.params().get("Qualifier") or None
        if arn_qualifier and qualifier and arn_qualifier != qualifier:
            return aws_error(
                400, "InvalidParameterValueException",
                f"The derived qualifier from the function name ({arn_qualifier}) does not match the specified "
                f"qualifier ({qualifier}).",
            )
        qualifier = qualifier or arn_qualifier
        kind = request.header("x-amz-invocation-type") or "RequestResponse"
        if kind not in ("RequestResponse", "Event", "DryRun"):
            return aws_error(400, "InvalidParameterValueException",
                             f"X-Amz-Invocation-Type must be RequestResponse, Event or DryRun, got {kind!r}")
        tail = (request.header("x-amz-log-type") or "None") == "Tail"
        payload = request.body or b"{}"
        limit = ASYNC_PAYLOAD_BYTES if kind == "Event" else SYNC_PAYLOAD_BYTES
        if len(payload) > limit:
            return aws_error(413, "RequestTooLargeException",
                             f"Request must be smaller than {limit} bytes for the {kind} invocation type")
        try:
            json.loads(payload)
        except ValueError:
            return aws_error(400, "InvalidRequestContentException", "Could not parse request body into json: "
                             "the payload must be a JSON document")
        if function.spec.resolve_qualifier(qualifier) is None:
            raise UnknownQualifier(f"Function not found: {function.arn}:{qualifier}")
        if kind == "DryRun":
            return Response(204, b"", [("x-amzn-requestid", str(uuid.uuid4()))])
        if kind == "Event":
            event_id = function.invoke_async(payload, qualifier)
            return Response(202, b"", [("x-amzn-requestid", event_id)])
        client_context = None
        if request.header("x-amz-client-context"):
            # Base64 JSON on the Invoke API; the Runtime API hands the runtime the JSON itself.
            try:
                client_context = base64.b64decode(request.header("x-amz-client-context") or "", validate=True).decode()
                json.loads(client_context)
            except (ValueError, binascii.Error):
                return aws_error(400, "InvalidRequestContentException",
                                 "X-Amz-Client-Context must be base64-encoded JSON")
        try:
            result = await function.invoke(payload, qualifier, client_context=client_context, tail=tail)
        except Throttled as exc:
            return aws_error(429, "TooManyRequestsException", exc.message, Reason=exc.reason)
        headers = [
            ("content-type", "application/json"),
            ("x-amzn-requestid", result.request_id),
            ("x-amz-executed-version", result.version),
        ]
        if result.function_error:
            headers.append(("x-amz-function-error", result.function_error))
        if result.log_tail is not None:
            headers.append(("x-amz-log-result", result.log_tail))
        return Response(200, result.payload, headers)

    # --- concurrency --------------------------------------------------------------------------

    def _provisioned(self, function: Function, request: Request, arn_qualifier: str | None) -> Response:
        params = request.params()
        control = function.concurrency
        if request.method == "GET" and params.get("List") == "ALL":
            configs = [{"FunctionArn": f"{function.arn}:{q}", **control.pc_status(q)} for q in sorted(control.pc)]
            return Response.json(200, {"ProvisionedConcurrencyConfigs": configs})
        qualifier = params.get("Qualifier") or arn_qualifier
        if not qualifier:
            return aws_error(400, "InvalidParameterValueException", "Qualifier is required (an alias or a version)")
        if request.method == "PUT":
            try:
                count = json.loads(request.body or b"{}")["ProvisionedConcurrentExecutions"]
            except (ValueError, KeyError, TypeError):
                return aws_error(400, "InvalidParameterValueException",
                                 "the body must be {\"ProvisionedConcurrentExecutions\": N}")
            if isinstance(count, bool) or not isinstance(count, int):
                return aws_error(400, "InvalidParameterValueException",
                                 f"ProvisionedConcurrentExecutions must be an integer, got {count!r}")
            return Response.json(202, control.put_pc(qualifier, count))
        if request.method == "GET":
            if function.spec.resolve_qualifier(qualifier) is None:
                raise UnknownQualifier(f"Function not found: {function.arn}:{qualifier}")
            if qualifier not in control.pc:
                return aws_error(404, "ProvisionedConcurrencyConfigNotFoundException",
                                 f"No Provisioned Concurrency Config found for this function ({function.arn}:{qualifier})")
            return Response.json(200, control.pc_status(qualifier))
        if request.method == "DELETE":
            if not control.delete_pc(qualifier):
                return aws_error(404, "ProvisionedConcurrencyConfigNotFoundException",
                                 f"No Provisioned Concurrency Config found for this function ({function.arn}:{qualifier})")
            return Response(204, b"", [("x-amzn-requestid", str(uuid.uuid4()))])
        return aws_error(405, "MethodNotAllowedException", f"{request.method} is not supported here")

    async def _reserved(self, function: Function, request: Request) -> Response:
        if request.method == "GET":
            reserved = function.concurrency.reserved
            body = {} if reserved is None else {"ReservedConcurrentExecutions": reserved}
            return Response.json(200, body)
        if request.method == "DELETE":
            function.concurrency.set_reserved(None)
            await self._mirror(request)
            return Response(204, b"", [("x-amzn-requestid", str(uuid.uuid4()))])
        try:
            value = json.loads(request.body or b"{}")["ReservedConcurrentExecutions"]
        except (ValueError, KeyError, TypeError):
            return aws_error(400, "InvalidParameterValueException",
                             "the body must be {\"ReservedConcurrentExecutions\": N}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return aws_error(400, "InvalidParameterValueException",
                             f"ReservedConcurrentExecutions must be an integer >= 0, got {value!r}")
        function.concurrency.set_reserved(value)
        await self._mirror(request)
        return Response.json(200, {"ReservedConcurrentExecutions": value})

    def _url(self, function: Function) -> Response:
        url = self.url_of(function.spec.name)
        if url is None:
            return aws_error(404, "ResourceNotFoundException", f"The resource you requested does not exist: {function.arn}")
        return Response.json(200, {
            "FunctionUrl": url, "FunctionArn": f"{function.arn}:{function.spec.url_qualifier}", "AuthType": function.spec.url_auth,
            "CreationTime": "2026-01-01T00:00:00.000+0000", "LastModifiedTime": "2026-01-01T00:00:00.000+0000",
            "InvokeMode": "BUFFERED",
        })

    # --- the twin's control API ---------------------------------------------------------------

    async def _control(self, request: Request) -> Response:
        parts = [unquote(p) for p in request.path.split("/") if p][1:]
        params = request.params()
        if parts == ["health"]:
            return Response.json(200, {"ok": True})
        if parts == ["functions"] and request.method == "GET":
            return Response.json(200, {"functions": [f.describe() for f in self.functions.values()]})
        if parts == ["invocations"] and request.method == "GET":
            try:
                since = int(params.get("since", "0"))
            except ValueError:
                return Response.json(400, {"code": "bad_since", "message": "since must be an integer sequence number"})
            records = self.records.since(since, params.get("function") or None)
            return Response.json(200, {"last_seq": self.records.last_seq, "invocations": [asdict(r) for r in records]})
        if len(parts) == 3 and parts[0] == "functions" and parts[2] == "reset" and request.method == "POST":
            function = self.functions.get(parts[1])
            if function is None:
                return Response.json(404, {"code": "unknown_function", "message": f"no twin function {parts[1]!r}"})
            count = function.reset(provisioned=params.get("provisioned") in ("1", "true"))
            return Response.json(200, {"stopped": count})
        if parts == ["faults"]:
            return self._faults(request)
        handler = self.control.get(parts[0]) if parts else None
        if handler is not None:
            return await handler(request)
        return Response.json(404, {"code": "not_found", "message": f"no control route {request.method} {request.path}"})

    def _faults(self, request: Request) -> Response:
        if request.method == "GET":
            return Response.json(200, {"faults": self.faults.describe()})
        if request.method == "DELETE":
            return Response.json(200, {"cleared": self.faults.clear()})
        if request.method == "POST":
            try:
                fault = self.faults.add(request.body)
            except FaultError as exc:
                return Response.json(400, {"code": exc.code, "message": exc.message})
            return Response.json(201, {"fault": fault.describe()})
        return Response.json(405, {"code": "method_not_allowed", "message": "faults takes GET, POST or DELETE"})

    # --- moto ---------------------------------------------------------------------------------

    async def forward(self, request: Request) -> Response:
        host, port = self.moto
        try:
            upstream = await http11.request(
                host, port, request.method, request.target, headers=request.headers, body=request.body, timeout=60
            )
        except (OSError, TimeoutError) as exc:
            return aws_error(503, "ServiceUnavailableException", f"moto_server at {host}:{port} did not answer: {exc}")
        headers = [(k, v) for k, v in upstream.headers if k.lower() not in _HOP_BY_HOP]
        return Response(upstream.status, upstream.body, headers)

    async def _mirror(self, request: Request) -> None:
        """Keep moto's view of the function's configuration the same as the twin's."""
        try:
            response = await self.forward(request)
            if response.status >= 300:
                log.info("moto did not take %s %s: %s", request.method, request.path, response.status)
        except Exception as exc:  # moto is the store of record only for reads: never fail the twin's answer
            log.warning("could not mirror %s %s to moto: %s", request.method, request.path, exc)


def _fault_response(fault: Fault) -> Response:
    # rest-json clients (Lambda) read the code from the header; JSON and CBOR ones from `__type`.
    return aws_error(fault.status, fault.code, fault.message, **{"__type": fault.code})
