"""The FastAPI app: the same routes as the Lambda handler, for uvicorn (SageMaker, `preheat serve`),
Mangum, and the OpenAPI spec.

It is built from the protocol layer's route table and answers through the same `Router.dispatch`,
so every surface behaves alike. Model routes run in the thread pool, so that health checks (SageMaker
wants /ping within 2 s) answer while a long inference runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from functions.inference import schemas
from functions.inference.protocol import (
    DOCS_PATH,
    OIP_PREFIX,
    OPENAPI_PATH,
    HttpRequest,
    HttpResponse,
    Route,
    error_response,
)
from functions.inference.runtime import Runtime

REF = "#/components/schemas/{name}"
# /invocations takes any protocol's request (told apart by its keys) and answers in kind.
_INVOCATION_REQUESTS = ("EmbeddingsRequest", "ClassifyRequest", "RerankRequest", "InferenceRequest")
_INVOCATION_RESPONSES = ("EmbeddingsResponse", "ClassifyResponse", "RerankResponse", "InferenceResponse")


def create_app(runtime: Runtime | None = None) -> FastAPI:
    """`uvicorn --factory functions.inference.app:create_app` loads the runtime from the environment."""
    runtime = Runtime.load() if runtime is None else runtime
    router = runtime.router
    limit = runtime.settings.max_request_bytes
    app = FastAPI(
        title="preheat",
        version=runtime.manifest.tools.get("preheat", "0.1.0"),
        description=f"Serving {runtime.manifest.name} ({runtime.manifest.task}) from {runtime.settings.model_dir}",
        openapi_url=OPENAPI_PATH,
        docs_url=DOCS_PATH,
        redoc_url=None,
    )
    app.state.runtime = runtime

    def error(request: Request, status: int, code: str, message: str, **kwargs: Any) -> Response:
        return _response(error_response(status, code, message, path=router.strip(request.url.path), **kwargs))

    def endpoint(route: Route) -> Callable[[Request], Awaitable[Response]]:
        async def call(request: Request) -> Response:
            declared = request.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                return error(request, 413, "payload_too_large", f"the body is {declared} bytes, over the limit of {limit}")
            body = await _read(request, limit)
            if body is None:
                return error(request, 413, "payload_too_large", f"the body is over the limit of {limit} bytes")
            incoming = HttpRequest(
                method=request.method,
                path=request.url.path,
                body=body,
                headers={k.lower(): v for k, v in request.headers.items()},
                query=request.url.query,
                request_id=request.headers.get("x-request-id", ""),
            )
            if route.blocking:
                return _response(await run_in_threadpool(router.dispatch, incoming))
            return _response(router.dispatch(incoming))

        return call

    for route in router.routes:
        app.add_api_route(
            route.path,
            endpoint(route),
            methods=[route.method],
            name=route.name,
            summary=route.summary,
            openapi_extra=_openapi(route),
            response_class=Response,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code in (404, 405):  # the router words these the same way Lambda does
            return _response(router.dispatch(HttpRequest(request.method, request.url.path)))
        return error(request, exc.status_code, "http_error", str(exc.detail), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return error(request, 400, "invalid_request", str(exc.errors()))

    _publish_schemas(app)
    return app


async def _read(request: Request, limit: int) -> bytes | None:
    """The body, or None once it passes `limit`: a lying Content-Length cannot make us buffer more."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _response(response: HttpResponse) -> Response:
    return Response(content=response.body, status_code=response.status, headers=response.headers)


def _openapi(route: Route) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    params = [s[1:-1] for s in route.segments if s.startswith("{")]
    if params:
        extra["parameters"] = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in params
        ]
    if route.body is dict:
        body_schema: dict[str, Any] = {"anyOf": [{"$ref": REF.format(name=n)} for n in _INVOCATION_REQUESTS]}
    elif route.body is not None:
        body_schema = {"$ref": REF.format(name=route.body.__name__)}
    if route.body is not None:
        extra["requestBody"] = {"required": True, "content": {"application/json": {"schema": body_schema}}}
    responses: dict[str, Any] = {}
    if route.response is not None:
        responses["200"] = {
            "description": "OK",
            "content": {"application/json": {"schema": {"$ref": REF.format(name=route.response.__name__)}}},
        }
    shape = "InferenceError" if route.path.startswith(OIP_PREFIX + "/") else "ErrorBody"
    error = {"content": {"application/json": {"schema": {"$ref": REF.format(name=shape)}}}}
    if route.body is not None or "{" in route.path:
        responses["4XX"] = {"description": "Client error: the body names the reason", **error}
    if route.body is dict:
        responses["200"] = {
            "description": "OK",
            "content": {
                "application/json": {
                    "schema": {"anyOf": [{"$ref": REF.format(name=n)} for n in _INVOCATION_RESPONSES]}
                }
            },
        }
    if responses:
        extra["responses"] = responses
    return extra


def _publish_schemas(app: FastAPI) -> None:
    """Add the msgspec structs' JSON Schemas to the generated spec."""
    _, components = msgspec.json.schema_components(schemas.SCHEMA_TYPES, ref_template=REF)
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = original()
            spec.setdefault("components", {}).setdefault("schemas", {}).update(components)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
