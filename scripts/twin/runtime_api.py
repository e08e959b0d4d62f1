"""The Lambda Runtime API (2018-06-01) that one instance's runtime client polls, and the
Extensions API (2020-01-01) on the same address.

One server per instance: awslambdaric sends no instance id, so the port is the instance's identity.
INIT ends (as in Lambda) when the runtime and every registered extension have called their /next:
the runtime's first GET /invocation/next, each extension's GET /extension/event/next. Each invocation
is handed out once and answered once, by /response or /error.

Extensions register during INIT only (POST /extension/register, Lambda-Extension-Name; the answer's
Lambda-Extension-Identifier names the extension on its /next), for no events or for SHUTDOWN, which
the twin delivers when it ends the environment. A registered extension is what gives the runtime a
shutdown phase: SIGTERM, then SIGKILL after the phase's limit (instance.py). INVOKE events are not
delivered: registering for them is refused, saying so.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from dataclasses import dataclass, field

from scripts.twin import http11
from scripts.twin.http11 import Request, Response

PREFIX = "/2018-06-01/runtime"
EXTENSIONS = "/2020-01-01/extension"
MAX_RESPONSE_BYTES = 6 * 1024 * 1024  # Lambda's synchronous response limit
_INVOCATION = re.compile(rf"^{PREFIX}/invocation/([^/]+)/(response|error)$")


@dataclass(frozen=True)
class InvocationOutcome:
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
    result: asyncio.Future[InvocationOutcome] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    delivered: float = 0.0  # perf_counter() when the runtime received it


@dataclass(frozen=True)
class InitError:
    error_type: str
    body: bytes


@dataclass
class Extension:
    name: str
    events: tuple[str, ...]
    waiting: bool = False  # has called /event/next at least once
    shutdown: asyncio.Future[dict[str, object]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class RuntimeApi:
    def __init__(self, function_name: str = "", version: str = "", handler: str = "") -> None:
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[float] = loop.create_future()  # perf_counter() when INIT ended
        self.init_error: asyncio.Future[InitError] = loop.create_future()
        self._queue: asyncio.Queue[Invocation] = asyncio.Queue(maxsize=1)
        self.current: Invocation | None = None
        self._server: asyncio.Server | None = None
        self.port = 0
        self.extensions: dict[str, Extension] = {}  # by identifier
        self._runtime_waiting = False
        self._function = {"functionName": function_name, "functionVersion": version, "handler": handler}

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

    def shut_down(self, deadline_ms: int) -> None:
        """The environment is ending: SHUTDOWN to the extensions that asked for it."""
        for extension in self.extensions.values():
            if "SHUTDOWN" in extension.events and not extension.shutdown.done():
                extension.shutdown.set_result(
                    {"eventType": "SHUTDOWN", "shutdownReason": "spindown", "deadlineMs": deadline_ms}
                )

    async def handle(self, request: Request) -> Response:
        path = request.path
        if path.startswith(EXTENSIONS):
            return await self._extensions(request)
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

    def _maybe_ready(self) -> None:
        if self._runtime_waiting and all(e.waiting for e in self.extensions.values()) and not self.ready.done():
            self.ready.set_result(time.perf_counter())

    async def _extensions(self, request: Request) -> Response:
        path = request.path
        if request.method == "POST" and path == f"{EXTENSIONS}/register":
            name = request.header("lambda-extension-name") or ""
            if not name:
                return _extension_error(400, "Extension.InvalidRequest", "Lambda-Extension-Name is required")
            if self.ready.done():
                return _extension_error(403, "Extension.InvalidPhase", "extensions register during INIT only")
            try:
                events = json.loads(request.body or b"{}").get("events", [])
                if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
                    raise ValueError
            except (ValueError, AttributeError):
                return _extension_error(400, "Extension.InvalidRequest", 'the body must be {"events": [...]}')
            unknown = sorted(set(events) - {"INVOKE", "SHUTDOWN"})
            if unknown:
                return _extension_error(400, "Extension.InvalidEvent", f"unknown event types {unknown}")
            if "INVOKE" in events:
                return _extension_error(
                    400, "Extension.InvalidEvent",
                    "the local twin delivers SHUTDOWN events only; register for [] or [\"SHUTDOWN\"]",
                )
            if any(e.name == name for e in self.extensions.values()):
                return _extension_error(409, "Extension.AlreadyRegistered", f"an extension named {name!r} exists")
            identifier = str(uuid.uuid4())
            self.extensions[identifier] = Extension(name, tuple(events))
            return Response.json(200, self._function, [("lambda-extension-identifier", identifier)])
        if request.method == "GET" and path == f"{EXTENSIONS}/event/next":
            extension = self.extensions.get(request.header("lambda-extension-identifier") or "")
            if extension is None:
                return _extension_error(403, "Extension.UnknownExtensionIdentifier", "register first")
            extension.waiting = True
            self._maybe_ready()
            event = await extension.shutdown  # an extension registered for no events waits forever
            return Response.json(200, event)
        return _extension_error(404, "Extension.NotFound", f"no route {request.method} {path}")

    async def _next(self) -> Response:
        self._runtime_waiting = True
        self._maybe_ready()
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
            invocation.result.set_result(InvocationOutcome(False, body, "Function.ResponseSizeTooLarge", now))
            return Response.json(413, {"errorType": "RequestEntityTooLarge", "errorMessage": "response too large"})
        error_type = None if ok else (request.header("lambda-runtime-function-error-type") or "Unhandled")
        invocation.result.set_result(InvocationOutcome(ok, request.body, error_type, now))
        return Response.json(202, {"status": "OK"})


def _extension_error(status: int, error_type: str, message: str) -> Response:
    return Response.json(status, {"errorMessage": message, "errorType": error_type})
