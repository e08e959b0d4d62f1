"""The Lambda Runtime API (2018-06-01) that one instance's runtime client polls.

One server per instance: awslambdaric sends no instance id, so the port is the instance's identity.
The instance's first GET /invocation/next ends its INIT phase (as in Lambda, INIT runs from spawn to
that call). Each invocation is handed out once and answered once, by /response or /error.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field

from scripts.twin import http11
from scripts.twin.http11 import Request, Response

PREFIX = "/2018-06-01/runtime"
MAX_RESPONSE_BYTES = 6 * 1024 * 1024  # Lambda's synchronous response limit
_INVOCATION = re.compile(rf"^{PREFIX}/invocation/([^/]+)/(response|error)$")


@dataclass(frozen=True)
class Outcome:
    """What the runtime answered for one invocation."""

    ok: bool
    body: bytes
    error_type: str | None  # from Lambda-Runtime-Function-Error-Type, on errors
    at: float  # perf_counter() when the answer arrived


@dataclass
class Invocation:
    request_id: str
    payload: bytes
    function_arn: str
    deadline_epoch_ms: int
    trace_id: str
    client_context: str | None = None  # JSON (the Invoke API's base64 already decoded)
    result: asyncio.Future[Outcome] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    delivered: float = 0.0  # perf_counter() when the runtime received it


@dataclass(frozen=True)
class InitError:
    error_type: str
    body: bytes


class RuntimeApi:
    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[float] = loop.create_future()  # perf_counter() of the first /next
        self.init_error: asyncio.Future[InitError] = loop.create_future()
        self._queue: asyncio.Queue[Invocation] = asyncio.Queue(maxsize=1)
        self.current: Invocation | None = None
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self, host: str) -> None:
        # The runtime's own limit is enforced in `_answer`, so bodies are accepted a little past it.
        self._server = await http11.serve(self.handle, host, 0, max_body=MAX_RESPONSE_BYTES * 2)
        self.port = http11.bound_port(self._server)

    def submit(self, invocation: Invocation) -> None:
        self._queue.put_nowait(invocation)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for future in (self.ready, self.init_error):
            if not future.done():
                future.cancel()

    async def handle(self, request: Request) -> Response:
        path = request.path
        if request.method == "GET" and path == f"{PREFIX}/invocation/next":
            return await self._next()
        if request.method == "POST":
            match = _INVOCATION.match(path)
            if match:
                return self._answer(request, match.group(1), match.group(2) == "response")
            if path == f"{PREFIX}/init/error":
                error_type = request.header("lambda-runtime-function-error-type") or "Runtime.Unknown"
                if not self.init_error.done():
                    self.init_error.set_result(InitError(error_type, request.body))
                return Response.json(202, {"status": "OK"})
        return Response.json(404, {"errorType": "NotFound", "errorMessage": f"no route {request.method} {path}"})

    async def _next(self) -> Response:
        if not self.ready.done():
            self.ready.set_result(time.perf_counter())
        invocation = await self._queue.get()
        self.current = invocation
        headers = [
            ("lambda-runtime-aws-request-id", invocation.request_id),
            ("lambda-runtime-deadline-ms", str(invocation.deadline_epoch_ms)),
            ("lambda-runtime-invoked-function-arn", invocation.function_arn),
            ("lambda-runtime-trace-id", invocation.trace_id),
            ("content-type", "application/json"),
        ]
        if invocation.client_context:
            headers.append(("lambda-runtime-client-context", invocation.client_context))
        invocation.delivered = time.perf_counter()
        return Response(200, invocation.payload, headers)

    def _answer(self, request: Request, request_id: str, ok: bool) -> Response:
        invocation = self.current
        if invocation is None or invocation.request_id != request_id or invocation.result.done():
            return Response.json(
                400,
                {"errorType": "InvalidRequestID", "errorMessage": f"no invocation {request_id} is in progress"},
            )
        now = time.perf_counter()
        if ok and len(request.body) > MAX_RESPONSE_BYTES:
            body = json.dumps({
                "errorType": "Function.ResponseSizeTooLarge",
                "errorMessage": f"Response payload size ({len(request.body)} bytes) exceeded maximum allowed "
                f"payload size ({MAX_RESPONSE_BYTES} bytes).",
            }).encode()
            invocation.result.set_result(Outcome(False, body, "Function.ResponseSizeTooLarge", now))
            return Response.json(413, {"errorType": "RequestEntityTooLarge", "errorMessage": "response too large"})
        error_type = None if ok else (request.header("lambda-runtime-function-error-type") or "Unhandled")
        invocation.result.set_result(Outcome(ok, request.body, error_type, now))
        return Response.json(202, {"status": "OK"})
