"""A real HTTP server in front of moto_server, for what moto does not do.

boto3 talks to it through AWS_ENDPOINT_URL like to any AWS endpoint. Every request is forwarded to
moto, except:
  * failures a test scripts (`fail`): the first N calls of an operation answer a throttling or
    server error, so retry and degrade paths run against real HTTP and real botocore parsing;
  * operations moto 5.2 lacks, answered by a test's own handler (`on`) — Lambda provisioned
    concurrency (`LambdaStandIn`) and SageMaker UpdateEndpoint (`SageMakerUpdates`).
The local twin (scripts/twin/) is the fuller replacement for these stand-ins.
"""

from __future__ import annotations

import http.client
import importlib.util
import itertools
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

Reply = tuple[int, dict[str, str], bytes]

_LAMBDA_ROUTES = (
    (
        "GET",
        re.compile(r"^/2019-09-30/functions/([^/]+)/provisioned-concurrency$"),
        "GetProvisionedConcurrencyConfig",
    ),
    (
        "PUT",
        re.compile(r"^/2019-09-30/functions/([^/]+)/provisioned-concurrency$"),
        "PutProvisionedConcurrencyConfig",
    ),
    (
        "DELETE",
        re.compile(r"^/2019-09-30/functions/([^/]+)/provisioned-concurrency$"),
        "DeleteProvisionedConcurrencyConfig",
    ),
    ("POST", re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$"), "Invoke"),
)


@dataclass
class Req:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    op: str
    function: str | None = None

    def json(self) -> Any:
        return json.loads(self.body or b"{}")


def aws_error(status: int, code: str, message: str) -> Reply:
    body = json.dumps({"__type": code, "message": message, "Type": "User"}).encode()
    return status, {"Content-Type": "application/json", "x-amzn-ErrorType": code}, body


def json_reply(status: int, payload: Any) -> Reply:
    return status, {"Content-Type": "application/json"}, json.dumps(payload).encode()


@dataclass
class _Failure:
    remaining: int
    reply: Reply


class AwsFront:
    def __init__(self, upstream: str | None = None) -> None:
        self.upstream = urlsplit(upstream) if upstream else None
        self.calls: list[str] = []
        self._failures: dict[str, _Failure] = {}
        self._handlers: dict[str, Callable[[Req], Reply]] = {}
        self._filters: dict[str, Callable[[Req, Reply], Reply]] = {}
        self._lock = threading.Lock()
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = front.dispatch(self.command, self.path, dict(self.headers), body)
                self.send_response(status)
                for k, v in headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> AwsFront:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> AwsFront:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripting ----------------------------------------------------------------------------
    def fail(self, op: str, times: int, *, status: int = 429, code: str = "TooManyRequestsException") -> None:
        """The next `times` calls of `op` answer this error instead of reaching moto or a stand-in."""
        with self._lock:
            self._failures[op] = _Failure(times, aws_error(status, code, f"scripted {code} for {op}"))

    def on(self, op: str, handler: Callable[[Req], Reply]) -> None:
        self._handlers[op] = handler

    def after(self, op: str, rewrite: Callable[[Req, Reply], Reply]) -> None:
        """Rewrite moto's answer to `op` (a stand-in for state moto cannot change)."""
        self._filters[op] = rewrite

    def count(self, op: str) -> int:
        return sum(1 for c in self.calls if c == op)

    # -- serving ------------------------------------------------------------------------------
    def dispatch(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Reply:
        parts = urlsplit(raw_path)
        req = Req(method, parts.path, parse_qs(parts.query), headers, body, op="")
        req.op, req.function = _operation(req)
        with self._lock:
            self.calls.append(req.op)
            failure = self._failures.get(req.op)
            if failure and failure.remaining > 0:
                failure.remaining -= 1
                return failure.reply
        handler = self._handlers.get(req.op)
        if handler is not None:
            return handler(req)
        if self.upstream is None:
            return aws_error(501, "NotImplemented", f"{req.op} has no stand-in and no upstream")
        reply = self._forward(method, raw_path, headers, body)
        rewrite = self._filters.get(req.op)
        return rewrite(req, reply) if rewrite else reply

    def _forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        assert self.upstream is not None
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
            return resp.status, dict(resp.getheaders()), payload
        finally:
            conn.close()


def _operation(req: Req) -> tuple[str, str | None]:
    target = req.headers.get("X-Amz-Target") or req.headers.get("x-amz-target")
    if target:
        return target.split(".")[-1], None
    cbor = re.match(r"^/service/[^/]+/operation/([^/]+)$", req.path)
    if cbor:
        return cbor.group(1), None
    for method, pattern, op in _LAMBDA_ROUTES:
        m = pattern.match(req.path)
        if m and req.method == method:
            return op, unquote(m.group(1))
    return f"{req.method} {req.path}", None


# -- stand-ins --------------------------------------------------------------------------------
HANDLER_FILE = Path(__file__).resolve().parents[2] / "functions" / "inference" / "handler.py"
_instance_ids = itertools.count()


def load_instance() -> Callable[[Any, Any], Any]:
    """A new Lambda instance of the real inference handler: its own module, model, tracker, init."""
    spec = importlib.util.spec_from_file_location(f"preheat_instance_{next(_instance_ids)}", HANDLER_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler: Callable[[Any, Any], Any] = module.handler
    return handler


@dataclass
class _Pool:
    idle: list[Callable[[Any, Any], Any]] = field(default_factory=list)
    started: int = 0


class LambdaStandIn:
    """Lambda's provisioned-concurrency config API and Invoke, on an AwsFront.

    Invoke runs the real handler, one request per instance: a request takes an idle instance or
    starts a new one (its module import is the init), so concurrent warm-up pings that hold their
    instance land on distinct instances, as on Lambda.
    """

    def __init__(
        self, front: AwsFront, factory: Callable[[], Callable[[Any, Any], Any]] = load_instance
    ) -> None:
        self.factory = factory
        self.provisioned: dict[tuple[str, str], int] = {}
        self.pools: dict[str, _Pool] = {}
        self._lock = threading.Lock()
        front.on("GetProvisionedConcurrencyConfig", self._get)
        front.on("PutProvisionedConcurrencyConfig", self._put)
        front.on("DeleteProvisionedConcurrencyConfig", self._delete)
        front.on("Invoke", self._invoke)

    def instances(self, function: str) -> int:
        pool = self.pools.get(function)
        return pool.started if pool else 0

    @staticmethod
    def _key(req: Req) -> tuple[str, str]:
        return req.function or "", (req.query.get("Qualifier") or [""])[0]

    def _get(self, req: Req) -> Reply:
        n = self.provisioned.get(self._key(req))
        if n is None:
            return aws_error(
                404,
                "ProvisionedConcurrencyConfigNotFoundException",
                "No Provisioned Concurrency Config found",
            )
        return json_reply(
            200,
            {
                "RequestedProvisionedConcurrentExecutions": n,
                "AvailableProvisionedConcurrentExecutions": n,
                "AllocatedProvisionedConcurrentExecutions": n,
                "Status": "READY",
            },
        )

    def _put(self, req: Req) -> Reply:
        n = int(req.json()["ProvisionedConcurrentExecutions"])
        self.provisioned[self._key(req)] = n
        return json_reply(202, {"RequestedProvisionedConcurrentExecutions": n, "Status": "IN_PROGRESS"})

    def _delete(self, req: Req) -> Reply:
        self.provisioned.pop(self._key(req), None)
        return 204, {}, b""

    def _invoke(self, req: Req) -> Reply:
        function = req.function or ""
        event = req.json()
        if (req.headers.get("X-Amz-Invocation-Type") or req.headers.get("x-amz-invocation-type")) == "Event":
            threading.Thread(target=self._run, args=(function, event), daemon=True).start()
            return 202, {}, b""
        try:
            result = self._run(function, event)
        except Exception as exc:
            body = json.dumps({"errorMessage": str(exc), "errorType": type(exc).__name__}).encode()
            return 200, {"X-Amz-Function-Error": "Unhandled", "Content-Type": "application/json"}, body
        return (
            200,
            {"Content-Type": "application/json", "X-Amz-Executed-Version": "1"},
            json.dumps(result).encode(),
        )

    def _run(self, function: str, event: Any) -> Any:
        with self._lock:
            pool = self.pools.setdefault(function, _Pool())
            instance = pool.idle.pop() if pool.idle else None
            if instance is None:
                pool.started += 1
        if instance is None:
            instance = self.factory()
        try:
            context = SimpleNamespace(
                aws_request_id=f"req-{next(_instance_ids)}",
                function_name=function,
                memory_limit_in_mb=1024,
                get_remaining_time_in_millis=lambda: 30_000,
            )
            return instance(event, context)
        finally:
            with self._lock:
                pool.idle.append(instance)


class SageMakerUpdates:
    """UpdateEndpoint, which moto 5.2 does not implement: remembered here, and DescribeEndpoint
    answers with the new config (the endpoint stays InService: updates complete at once)."""

    def __init__(self, front: AwsFront) -> None:
        self.updates: list[tuple[str, str]] = []
        front.on("UpdateEndpoint", self._update)
        front.after("DescribeEndpoint", self._describe)

    def _update(self, req: Req) -> Reply:
        body = req.json()
        self.updates.append((body["EndpointName"], body["EndpointConfigName"]))
        arn = f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{body['EndpointName'].lower()}"
        return json_reply(200, {"EndpointArn": arn})

    def _describe(self, req: Req, reply: Reply) -> Reply:
        status, headers, payload = reply
        if status != 200:
            return reply
        data = json.loads(payload)
        for name, config in self.updates:
            if data.get("EndpointName") == name:
                data["EndpointConfigName"] = config
        return status, headers, json.dumps(data).encode()
