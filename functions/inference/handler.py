"""The Lambda entry point: `functions.inference.handler.handler`.

Init (this module's import) loads the model and answers one warm-up inference, so that the first
request finds everything ready. Requests to the API's routes go through a Mangum-style adapter to the
framework-free router; only FastAPI's own pages (/openapi.json, /docs) import FastAPI and go through
Mangum (lifespan="off", since Lambda has no lifespan), on first use.
"""

from __future__ import annotations

import gc
import time

_STARTED = time.perf_counter()
# Init creates ~25,000 objects that live as long as the instance (modules, classes, the session's
# wrappers, the vocabulary); the collector would walk them ~45 times while they load and find
# nothing to free. It is off until init ends, and then those objects are frozen out of its walks, so
# warm requests do not pay for them either.
gc.disable()
# The clock starts before the imports it measures (hence E402 below). The three packages every
# request needs are imported first, one by one, so the init-phases line can say what each cost.
from functions.inference.phases import InitPhases  # noqa: E402

_PHASES = InitPhases(_STARTED)
import numpy  # noqa: E402, F401

_PHASES.mark("import numpy")
import onnxruntime  # noqa: E402, F401

_PHASES.mark("import onnxruntime")
import sys  # noqa: E402

# msgspec reads type hints through typing_extensions when it can import it (3-5 ms), which the deps
# layer carries only for FastAPI's docs pages; the standard library's typing does for preheat's
# types. Hidden while msgspec loads, importable again right after (for those pages).
_hidden = "typing_extensions" not in sys.modules
if _hidden:
    sys.modules["typing_extensions"] = None  # type: ignore[assignment]  # None: "import fails"
try:
    import msgspec  # noqa: F401
finally:
    if _hidden:
        del sys.modules["typing_extensions"]
_PHASES.mark("import msgspec")
from functions.inference.runtime import Runtime  # noqa: E402

_PHASES.mark("import preheat")
try:
    # It imports the serving modules itself, while ONNX Runtime builds the session.
    RUNTIME = Runtime.load(started=_STARTED, phases=_PHASES)
    import base64
    import logging
    from typing import Any

    from functions.inference import adapters, warmup
    from functions.inference.errors import PreheatError
    from functions.inference.protocol import ASGI_ONLY_PATHS, HttpResponse, error_response, status_of
    from functions.metrics import StartTracker, Telemetry

    TRACKER = StartTracker()
    TELEMETRY = Telemetry(
        service=RUNTIME.settings.service, namespace=RUNTIME.settings.metrics_namespace, init_ms=RUNTIME.init_ms
    )
    _PHASES.mark("telemetry")
finally:
    gc.freeze()
    gc.enable()
_PHASES.emit(RUNTIME.settings.service)
_mangum: Any = None
log = logging.getLogger("preheat")


def handler(event: Any, context: Any) -> Any:
    entered = time.perf_counter()
    ping = warmup.is_warmup(event)
    start = TRACKER.enter(warmup=ping)
    request_id = str(getattr(context, "aws_request_id", "") or "")
    status, route = 500, "unknown"
    code: str | None = "internal_error"
    cache: str | None = None
    try:
        if ping:
            result = warmup.answer(
                event, start, init_ms=RUNTIME.init_ms, max_hold_ms=RUNTIME.settings.max_warmup_hold_ms
            )
            status, route, code = (
                (400, "warmup", result["error"]["code"]) if "error" in result else (200, "warmup", None)
            )
            return result
        try:
            adapter = adapters.for_event(event)
        except PreheatError as exc:
            status, code = status_of(exc), exc.code
            return {"error": {"code": exc.code, "message": exc.message, "request_id": request_id}}
        response = _serve(adapter, event, context, request_id)
        response.headers["x-preheat-start"] = start.kind
        if request_id:
            response.headers["x-request-id"] = request_id
        status, route, code = response.status, response.route, response.error_code
        cache = response.cache
        return adapter.response(response)
    finally:
        TELEMETRY.record(
            start,
            latency_ms=(time.perf_counter() - entered) * 1000,
            status=status,
            route=route,
            request_id=request_id,
            error_code=code,
            cache=cache,
        )


def _serve(adapter: adapters.Adapter, event: Any, context: Any, request_id: str) -> HttpResponse:
    try:
        request = adapter.request(event, request_id)
    except PreheatError as exc:
        return error_response(status_of(exc), exc.code, exc.message, request_id)
    except (KeyError, TypeError, AttributeError) as exc:
        return error_response(
            400, "malformed_event", f"malformed {adapter.name} event: missing or wrong {exc}", request_id
        )
    path = RUNTIME.router.strip(request.path)
    if path in ASGI_ONLY_PATHS:
        try:
            return _asgi(event, context)
        except Exception:
            log.exception("the FastAPI fallback failed", extra={"request_id": request_id})
            return error_response(
                500, "internal_error", "unexpected error; quote the request id when reporting it", request_id
            )
    return RUNTIME.router.dispatch(request, path=path)


def _asgi(event: Any, context: Any) -> HttpResponse:
    """FastAPI's generated pages, through Mangum. Imported on first use: ~400 ms nobody else pays."""
    global _mangum
    if _mangum is None:
        from mangum import Mangum

        from functions.inference.app import create_app

        _mangum = Mangum(
            create_app(RUNTIME), lifespan="off", api_gateway_base_path=RUNTIME.settings.base_path or "/"
        )
    result = _mangum(event, context)
    body = result.get("body") or ""
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
    return HttpResponse(int(result["statusCode"]), raw, headers, route="asgi")
