"""A real HTTP server in front of moto_server, for what neither moto nor the local twin does.

boto3 talks to it through AWS_ENDPOINT_URL like to any AWS endpoint. Every request is forwarded to
moto, except:
  * failures a test scripts (`fail`): the first N calls of an operation answer a throttling or
    server error, so retry and degrade paths run against real HTTP and real botocore parsing;
  * operations moto 5.2 lacks, answered by a test's own handler (`on`): SageMaker UpdateEndpoint
    (`SageMakerUpdates`), for the controller's unit-level tests on plain moto; the twin serves it for
    real (tests/integration/test_sagemaker_update.py).
Lambda itself (Invoke, provisioned concurrency, throttling of its APIs) is the local twin's: tests
of the warmer and controller against Lambda run there (tests/integration/test_warmers_twin.py).
"""

from __future__ import annotations

import http.client
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Reply = tuple[int, dict[str, str], bytes]


@dataclass
class Req:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    op: str

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
        req.op = _operation(req)
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


def _operation(req: Req) -> str:
    target = req.headers.get("X-Amz-Target") or req.headers.get("x-amz-target")
    if target:
        return target.split(".")[-1]
    cbor = re.match(r"^/service/[^/]+/operation/([^/]+)$", req.path)
    if cbor:
        return cbor.group(1)
    return f"{req.method} {req.path}"


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
