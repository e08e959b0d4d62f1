"""Lambda event sources as HTTP, after Mangum: one small class per source, dispatched in `for_event`.

Each adapter turns its event into an `HttpRequest` and an `HttpResponse` into the result shape that
source expects. Unlike Mangum there is no ASGI in between, which keeps FastAPI off the cold path.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, ClassVar

import msgspec

from functions.inference.errors import InvalidRequest, PreheatError
from functions.inference.protocol import HttpRequest, HttpResponse


class Adapter:
    """One event source: recognise its events, read a request out of one, shape the result."""

    name: ClassVar[str] = ""

    @staticmethod
    def infer(event: Any) -> bool:
        raise NotImplementedError

    def request(self, event: Mapping[str, Any], request_id: str) -> HttpRequest:
        raise NotImplementedError

    def response(self, response: HttpResponse) -> Any:
        raise NotImplementedError


def _body(event: Mapping[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequest("the event says its body is base64 but it is not valid base64") from None
    if isinstance(body, bytes):
        return body
    # Not bytes(body): for an int that allocates that many zero bytes (a 1 GB body from 10 bytes of event).
    return _text(body, "body").encode("utf-8", "surrogatepass")


def _text(value: Any, name: str) -> str:
    """A field that must be a string; a direct invoke can send anything (handler.py answers 400)."""
    if not isinstance(value, str):
        raise TypeError(f"'{name}': expected a string, got {type(value).__name__}")
    return value


def _lower(headers: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (headers or {}).items()}


def _lower_multi(headers: Mapping[str, list[Any]] | None) -> dict[str, str]:
    return {str(k).lower(): ", ".join(str(x) for x in v) for k, v in (headers or {}).items()}


# As Mangum's text_mime_types: other content types (the v2 binary tensor data) go back base64-encoded.
_TEXT_TYPES = ("text/", "application/json", "application/javascript", "application/xml", "+json", "+xml")


def _text_body(response: HttpResponse) -> tuple[str, bool]:
    media = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if any(media.startswith(t) or media.endswith(t) for t in _TEXT_TYPES):
        try:
            return response.body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(response.body).decode("ascii"), True


def _v1_request(event: Mapping[str, Any], headers: dict[str, str], request_id: str) -> HttpRequest:
    """A request from the payload format 1.0 fields REST APIs and ALBs share (httpMethod, path, body)."""
    return HttpRequest(
        method=_text(event["httpMethod"], "httpMethod"),
        path=_text(event.get("path") or "/", "path"),
        body=_body(event),
        headers=headers,
        request_id=request_id,
    )


class ProxyAdapter(Adapter):
    """Answers in the result shape Function URLs and both API Gateway payload formats take."""

    def response(self, response: HttpResponse) -> dict[str, Any]:
        body, encoded = _text_body(response)
        return {"statusCode": response.status, "headers": response.headers, "body": body, "isBase64Encoded": encoded}


class HttpApiV2(ProxyAdapter):
    """Lambda Function URLs and API Gateway HTTP APIs (payload format 2.0)."""

    name = "http-v2"

    @staticmethod
    def infer(event: Any) -> bool:
        return (
            isinstance(event, dict)
            and event.get("version") == "2.0"
            and "http" in (event.get("requestContext") or {})
        )

    def request(self, event: Mapping[str, Any], request_id: str) -> HttpRequest:
        http = event["requestContext"]["http"]
        return HttpRequest(
            method=_text(http["method"], "requestContext.http.method"),
            path=_text(event.get("rawPath") or http.get("path") or "/", "rawPath"),
            body=_body(event),
            headers=_lower(event.get("headers")),
            query=_text(event.get("rawQueryString") or "", "rawQueryString"),
            request_id=request_id,
        )


class RestApiV1(ProxyAdapter):
    """API Gateway REST APIs (and HTTP APIs on payload format 1.0)."""

    name = "rest-v1"

    @staticmethod
    def infer(event: Any) -> bool:
        return (
            isinstance(event, dict)
            and "httpMethod" in event
            and "resource" in event
            and "requestContext" in event
        )

    def request(self, event: Mapping[str, Any], request_id: str) -> HttpRequest:
        headers = _lower_multi(event.get("multiValueHeaders")) or _lower(event.get("headers"))
        return _v1_request(event, headers, request_id)


class Alb(Adapter):
    """Application Load Balancer targets. Answers in the header mode the request came in."""

    name = "alb"

    def __init__(self) -> None:
        self._multi = False

    @staticmethod
    def infer(event: Any) -> bool:
        return isinstance(event, dict) and "elb" in (event.get("requestContext") or {})

    def request(self, event: Mapping[str, Any], request_id: str) -> HttpRequest:
        self._multi = "multiValueHeaders" in event
        headers = (
            _lower_multi(event.get("multiValueHeaders")) if self._multi else _lower(event.get("headers"))
        )
        return _v1_request(event, headers, request_id)

    def response(self, response: HttpResponse) -> dict[str, Any]:
        body, encoded = _text_body(response)
        try:
            phrase = HTTPStatus(response.status).phrase
        except ValueError:
            phrase = ""
        result: dict[str, Any] = {
            "statusCode": response.status,
            "statusDescription": f"{response.status} {phrase}".strip(),
            "body": body,
            "isBase64Encoded": encoded,
        }
        if self._multi:
            result["multiValueHeaders"] = {k: [v] for k, v in response.headers.items()}
        else:
            result["headers"] = response.headers
        return result


class Direct(Adapter):
    """A plain `lambda.invoke` payload: handled as SageMaker's POST /invocations; returns the JSON."""

    name = "direct"

    @staticmethod
    def infer(event: Any) -> bool:
        return isinstance(event, dict)

    def request(self, event: Mapping[str, Any], request_id: str) -> HttpRequest:
        return HttpRequest(
            method="POST",
            path="/invocations",
            body=msgspec.json.encode(event),
            headers={},
            request_id=request_id,
        )

    def response(self, response: HttpResponse) -> Any:
        return msgspec.json.decode(response.body)


class UnsupportedEvent(PreheatError):
    code = "unsupported_event"


ADAPTERS: tuple[type[Adapter], ...] = (Alb, HttpApiV2, RestApiV1, Direct)


def for_event(event: Any) -> Adapter:
    """The one place an event's source is decided. Order matters: Direct accepts any object."""
    for adapter in ADAPTERS:
        if adapter.infer(event):
            return adapter()
    raise UnsupportedEvent(
        f"cannot handle a {type(event).__name__} event: invoke with a JSON object, or through a Function URL, "
        "API Gateway or an ALB"
    )
