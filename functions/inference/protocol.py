"""The HTTP protocol layer: the route table, request checks, and the one map from errors to status.

It needs no web framework, so the Lambda handler serves every route in this table without importing
FastAPI (~330 ms of imports on a cold start). The FastAPI app (app.py) is built from the same table
and calls the same `Router.dispatch`, so both answer byte-for-byte alike.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

import msgspec

from functions.inference import binary
from functions.inference.dataplane import ENCODER, JSON, DataPlane, Reply
from functions.inference.errors import (
    ConfigError,
    InvalidRequest,
    MethodNotAllowed,
    ModelLoadError,
    NotFound,
    NotReady,
    PayloadTooLarge,
    PreheatError,
    ResponseTooLarge,
    UnsupportedMediaType,
)
from functions.inference.schemas import ErrorBody, ErrorDetail, InferenceError

log = logging.getLogger("preheat")

# The one place where core errors become HTTP status codes; subclasses inherit their base's code.
STATUS: dict[type[PreheatError], int] = {
    InvalidRequest: 400,
    NotFound: 404,
    MethodNotAllowed: 405,
    PayloadTooLarge: 413,
    ResponseTooLarge: 413,
    UnsupportedMediaType: 415,
    NotReady: 503,
    ConfigError: 500,
    ModelLoadError: 500,
}

# Paths only the FastAPI app serves (its generated spec and docs page).
OPENAPI_PATH = "/openapi.json"
DOCS_PATH = "/docs"
ASGI_ONLY_PATHS = frozenset({OPENAPI_PATH, DOCS_PATH, DOCS_PATH + "/oauth2-redirect"})
# Errors on these paths take the Open Inference Protocol's shape ({"error": "<message>"}), which its
# clients (tritonclient, KServe's) parse; everywhere else preheat's {"error": {"code", "message"}}.
OIP_PREFIX = "/v2"
ERROR_CODE_HEADER = "x-preheat-error-code"


class HttpRequest(msgspec.Struct, frozen=True):
    method: str
    path: str
    body: bytes = b""
    headers: Mapping[str, str] = msgspec.field(default_factory=dict)  # names in lower case
    query: str = ""
    request_id: str = ""


class HttpResponse(msgspec.Struct, frozen=True):
    status: int
    body: bytes
    headers: dict[str, str]
    route: str = ""  # the route's name, for logs and metrics
    error_code: str | None = None
    cache: str | None = None  # which cache level answered, for metrics (and the x-preheat-cache header)


Handler = Callable[[HttpRequest, Mapping[str, str]], Reply]


class Route(msgspec.Struct, frozen=True):
    method: str
    path: str
    name: str
    call: Handler
    summary: str
    body: type[Any] | None = None  # the schema of a JSON body, if the route takes one
    response: type[Any] | None = None
    blocking: bool = False  # runs the model: keep it off an event loop
    binary: bool = False  # also takes the binary tensor data extension (application/octet-stream)

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(self.path.strip("/").split("/"))


def status_of(exc: PreheatError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]  # type: ignore[index]
    return 500


def error_response(
    status: int,
    code: str,
    message: str,
    request_id: str = "",
    headers: Mapping[str, str] | None = None,
    *,
    path: str = "",
    route: str = "",
) -> HttpResponse:
    """The one error shape per protocol: `path` (after the stage prefix) picks it."""
    if path == OIP_PREFIX or path.startswith(OIP_PREFIX + "/"):
        body = ENCODER.encode(InferenceError(error=message, code=code, request_id=request_id or None))
    else:
        body = ENCODER.encode(ErrorBody(error=ErrorDetail(code=code, message=message, request_id=request_id or None)))
    extra = {"content-type": JSON, ERROR_CODE_HEADER: code, **(headers or {})}
    return HttpResponse(status, body, extra, route=route, error_code=code)


def routes(plane: DataPlane) -> tuple[Route, ...]:
    from functions.inference import schemas as s

    return (
        Route(
            "POST",
            "/v1/embeddings",
            "embeddings",
            lambda r, p: plane.embeddings(r.body),
            "Create embeddings (OpenAI-compatible)",
            s.EmbeddingsRequest,
            s.EmbeddingsResponse,
            blocking=True,
        ),
        Route(
            "POST",
            "/v1/classify",
            "classify",
            lambda r, p: plane.classify(r.body),
            "Classify texts, or pairs of texts (text-classification models)",
            s.ClassifyRequest,
            s.ClassifyResponse,
            blocking=True,
        ),
        Route(
            "POST",
            "/v1/rerank",
            "rerank",
            lambda r, p: plane.rerank(r.body),
            "Rank documents against a query (cross-encoders; Cohere, Jina and TEI request shape)",
            s.RerankRequest,
            s.RerankResponse,
            blocking=True,
        ),
        Route(
            "GET",
            "/v1/models",
            "models",
            lambda r, p: plane.models(),
            "List models (OpenAI-compatible)",
            response=s.ModelList,
        ),
        Route(
            "GET",
            "/v2",
            "server_metadata",
            lambda r, p: plane.server_metadata(),
            "Server metadata",
            response=s.ServerMetadata,
        ),
        Route("GET", "/v2/health/live", "live", lambda r, p: plane.live(), "Liveness", response=s.Health),
        Route("GET", "/v2/health/ready", "ready", lambda r, p: plane.ready(), "Readiness", response=s.Health),
        Route(
            "GET",
            "/v2/models/{name}",
            "model_metadata",
            lambda r, p: plane.model_metadata(p["name"]),
            "Model metadata",
            response=s.ModelMetadata,
        ),
        Route(
            "GET",
            "/v2/models/{name}/ready",
            "model_ready",
            lambda r, p: plane.model_ready(p["name"]),
            "Model readiness",
            response=s.Health,
        ),
        Route(
            "POST",
            "/v2/models/{name}/infer",
            "infer",
            lambda r, p: plane.infer(p["name"], r.body, headers=r.headers),
            "Inference (Open Inference Protocol v2, JSON or binary tensor data)",
            s.InferenceRequest,
            s.InferenceResponse,
            blocking=True,
            binary=True,
        ),
        Route(
            "GET",
            "/v2/models/{name}/versions/{version}",
            "model_version_metadata",
            lambda r, p: plane.model_metadata(p["name"], p["version"]),
            "Model version metadata",
            response=s.ModelMetadata,
        ),
        Route(
            "POST",
            "/v2/models/{name}/versions/{version}/infer",
            "infer_version",
            lambda r, p: plane.infer(p["name"], r.body, p["version"], headers=r.headers),
            "Inference on a model version",
            s.InferenceRequest,
            s.InferenceResponse,
            blocking=True,
            binary=True,
        ),
        Route(
            "GET", "/ping", "ping", lambda r, p: plane.ready(), "SageMaker health check", response=s.Health
        ),
        Route(
            "POST",
            "/invocations",
            "invocations",
            lambda r, p: plane.invocations(r.body),
            "SageMaker invocation: an OpenAI or Open Inference Protocol request",
            dict,
            blocking=True,
        ),
    )


class Router:
    def __init__(self, plane: DataPlane, *, max_request_bytes: int, base_path: str = ""):
        self.routes = routes(plane)
        self.max_request_bytes = max_request_bytes
        self.base_path = base_path
        self._by_length: dict[int, list[Route]] = {}
        for route in self.routes:
            self._by_length.setdefault(len(route.segments), []).append(route)

    def strip(self, path: str) -> str:
        """Remove a stage prefix such as /prod, as Mangum's api_gateway_base_path does."""
        if self.base_path and (path == self.base_path or path.startswith(self.base_path + "/")):
            path = path[len(self.base_path) :] or "/"
        return path

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        parts = tuple(path.strip("/").split("/"))
        allowed: list[str] = []
        for route in self._by_length.get(len(parts), ()):
            params: dict[str, str] = {}
            for want, got in zip(route.segments, parts, strict=True):
                if want.startswith("{"):
                    if not got:
                        break
                    params[want[1:-1]] = unquote(got)
                elif want != got:
                    break
            else:
                if route.method == method:
                    return route, params
                allowed.append(route.method)
        if allowed:
            raise MethodNotAllowed(
                f"{method} is not allowed on {path}; use {', '.join(allowed)}", allowed=tuple(allowed)
            )
        raise NotFound(f"no route for {path}: see {OPENAPI_PATH} for the API")

    def dispatch(self, request: HttpRequest, *, path: str | None = None) -> HttpResponse:
        """Never raises: every outcome is a response, errors included. `path`: the request's path
        with the stage prefix already stripped, when the caller has done it."""
        name = ""
        path = self.strip(request.path) if path is None else path
        try:
            route, params = self.match(request.method.upper(), path)
            name = route.name
            if route.body is not None:
                self._check_body(request, route)
            reply = route.call(request, params)
            headers = {"content-type": JSON, **reply.headers}
            if reply.cache is not None:
                headers["x-preheat-cache"] = reply.cache
            return HttpResponse(reply.status, reply.body, headers, route=name, cache=reply.cache)
        except PreheatError as exc:
            extra = {"allow": ", ".join(exc.allowed)} if isinstance(exc, MethodNotAllowed) else None
            return error_response(
                status_of(exc), exc.code, exc.message, request.request_id, extra, path=path, route=name
            )
        except Exception:
            log.exception("unexpected error", extra={"request_id": request.request_id, "route": name})
            return error_response(
                500,
                "internal_error",
                "unexpected error; quote the request id when reporting it",
                request.request_id,
                path=path,
                route=name,
            )

    def _check_body(self, request: HttpRequest, route: Route) -> None:
        if len(request.body) > self.max_request_bytes:
            raise PayloadTooLarge(
                f"the body is {len(request.body)} bytes, over the limit of {self.max_request_bytes}"
            )
        content_type = request.headers.get("content-type", "")
        media = content_type.split(";", 1)[0].strip().lower()
        if route.binary and media == binary.OCTET_STREAM:
            return
        if media and media != JSON and not media.endswith("+json"):
            also = f" (or {binary.OCTET_STREAM} with the {binary.HEADER} header)" if route.binary else ""
            raise UnsupportedMediaType(
                f"Content-Type {media!r} is not supported: send JSON with 'Content-Type: application/json'{also}"
            )
        if not request.body:
            raise InvalidRequest("the body is empty: send a JSON request")
