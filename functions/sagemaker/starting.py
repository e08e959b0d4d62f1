"""An ASGI app that serves while the model loads, then hands every request to the real app.

SageMaker connects to the container from the moment it starts and wants `/ping` answered within
2 s, but the model (imports, ONNX Runtime session, warm-up inference) takes longer than that to
load. So `serve` listens first and runs this app: until `load()` (in a thread) returns the FastAPI
app, `/ping` and the readiness routes answer 503 `not_ready` with how long loading has taken, the
liveness route answers 200, and any other request waits for the model (bounded by the invocation
timeout) instead of being refused. Afterwards everything goes to the app `load()` returned, and a
request whose response has not started within the timeout gets a 504 `timeout` (the inference
thread cannot be killed; the answer is not held back for it).

This module imports only the standard library, so that the first 503 goes out before FastAPI,
numpy and ONNX Runtime are imported (they are, by `load()`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("preheat.sagemaker")

# Routes answered by the platform-facing health logic while loading; GET only.
READINESS_PATHS = frozenset({"/ping", "/v2/health/ready"})
LIVENESS_PATHS = frozenset({"/v2/health/live"})


def error_body(code: str, message: str) -> bytes:
    """The runtime's error document ({"error": {"code", "message"}}), without importing it."""
    return json.dumps({"error": {"code": code, "message": message}}, separators=(",", ":")).encode()


class StartingApp:
    def __init__(
        self,
        load: Callable[[], ASGIApp],
        *,
        timeout_s: float = 60.0,
        on_failure: Callable[[BaseException], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
        started: float | None = None,  # a clock() reading from the process start, if the caller has one
    ) -> None:
        self._load = load
        self._timeout_s = timeout_s
        self._on_failure = on_failure
        self._clock = clock
        self._started = clock() if started is None else started
        self._app: ASGIApp | None = None
        self._error: BaseException | None = None
        self._done: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self.ready_ms: float | None = None

    # -- loading ---------------------------------------------------------------------------------

    def start_loading(self, loop: asyncio.AbstractEventLoop) -> None:
        """Load in a thread, so this loop keeps answering /ping; idempotent."""
        if self._thread is not None:
            return
        self._done = asyncio.Event()
        done = self._done

        def run() -> None:
            try:
                app = self._load()
            except BaseException as exc:  # handed to the loop: every waiting request gets the reason
                log.error("the model failed to load: %s", exc)
                if self._on_failure is not None:
                    self._on_failure(exc)
                self._error = exc  # published last: whoever sees the state sees everything done
            else:
                self.ready_ms = (self._clock() - self._started) * 1000
                self._app = app
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting
                loop.call_soon_threadsafe(done.set)

        self._thread = threading.Thread(target=run, name="preheat-load", daemon=True)
        self._thread.start()

    @property
    def state(self) -> str:
        if self._error is not None:
            return "failed"
        return "ready" if self._app is not None else "loading"

    # -- ASGI ------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":  # websockets: not part of SageMaker's contract
            return
        self.start_loading(asyncio.get_running_loop())  # servers without lifespan events
        path = scope.get("path", "")
        health = scope.get("method") == "GET" and (path in READINESS_PATHS or path in LIVENESS_PATHS)
        if self._app is None and self._error is None:
            if health:
                await self._health(path, send)
                return
            assert self._done is not None
            try:
                await asyncio.wait_for(self._done.wait(), self._timeout_s)
            except TimeoutError:
                await _respond(send, 503, error_body(
                    "not_ready", f"the model is still loading after {self._timeout_s:.0f} s: retry later"))
                return
        if self._error is not None:
            await _respond(send, 500, error_body("model_load_failed", f"the model failed to load: {self._error}"))
            return
        assert self._app is not None
        if health:  # cheap, never blocked: answer without a deadline
            await self._app(scope, receive, send)
            return
        await self._with_deadline(self._app, scope, receive, send)

    async def _health(self, path: str, send: Send) -> None:
        if path in LIVENESS_PATHS:
            await _respond(send, 200, b'{"live":true}')
            return
        elapsed = (self._clock() - self._started) * 1000
        await _respond(
            send, 503,
            error_body("not_ready", f"the model is loading ({elapsed:.0f} ms so far); this answers 200 once the "
                                    "model has answered its warm-up inference"),
            [(b"retry-after", b"1")],
        )

    async def _with_deadline(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        started = False
        expired = False

        async def guarded(message: Message) -> None:
            nonlocal started
            if expired:
                return  # the 504 went out; drop what the abandoned request sends later
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        task = asyncio.ensure_future(app(scope, receive, guarded))
        done, _ = await asyncio.wait({task}, timeout=self._timeout_s)
        if task in done:
            task.result()
            return
        expired = True
        # Not awaited: a model call in the thread pool finishes on its own; its answer is dropped.
        task.cancel()
        if not started:
            await _respond(send, 504, error_body(
                "timeout", f"the request did not finish within {self._timeout_s:.0f} s "
                           "(SAGEMAKER_MODEL_SERVER_TIMEOUT): send less per request"))

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.start_loading(asyncio.get_running_loop())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    *(headers or [])],
    })
    await send({"type": "http.response.body", "body": body})
