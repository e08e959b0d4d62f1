"""A Function URL per function: HTTPS requests in, payload format 2.0 events to the function, its
result back as HTTP, following Lambda's rules.

- The event: version 2.0, routeKey $default, rawPath, rawQueryString, cookies, headers (lower case,
  repeats joined by commas), queryStringParameters (repeats joined by commas), requestContext (http
  method/path/protocol/sourceIp/userAgent, requestId, time, timeEpoch), body (base64 unless textual).
- The response: a result with `statusCode` is used as given (headers, cookies, body, isBase64Encoded);
  any other JSON result is returned as a 200 application/json body.
- A function error is a 502, a throttle a 429, with a JSON body naming the reason.
- Auth type AWS_IAM (the default, as CDK's): every request must be SigV4-signed for service `lambda`
  with the twin's credentials (scripts/twin/sigv4.py), else 403 in Lambda's shape before the function
  runs; the event's requestContext carries the caller (`authorizer.iam`). NONE: anyone may call.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import ssl
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from scripts.twin import http11, sigv4
from scripts.twin.http11 import Request, Response
from scripts.twin.pool import Function, Throttled

_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript",
               "application/x-www-form-urlencoded", "+json", "+xml")


def url_id(function: str) -> str:
    """A stable 32-character id, as in <url-id>.lambda-url.<region>.on.aws."""
    digest = hashlib.sha256(function.encode()).digest()
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(alphabet[b % 36] for b in digest[:32])


def is_text(content_type: str | None) -> bool:
    value = (content_type or "").split(";")[0].strip().lower()
    return any(value.startswith(t) or value.endswith(t) for t in _TEXT_TYPES if t)


def to_event(
    request: Request, *, api_id: str, account_id: str = "anonymous", request_id: str | None = None,
    caller: sigv4.Caller | None = None,
) -> dict[str, Any]:
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
        if name == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
            continue
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    host = headers.get("host", "")
    headers.setdefault("x-forwarded-proto", request.scheme)
    headers.setdefault("x-forwarded-for", request.client)
    headers.setdefault("x-forwarded-port", host.rsplit(":", 1)[1] if ":" in host else "443")
    now = dt.datetime.now(dt.UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": request.path,
        "rawQueryString": request.query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    if request.query:
        params: dict[str, str] = {}
        for key, value in parse_qsl(request.query, keep_blank_values=True):
            params[key] = f"{params[key]},{value}" if key in params else value
        event["queryStringParameters"] = params
    event["requestContext"] = {
        "accountId": caller.account_id if caller is not None else account_id,
        "apiId": api_id,
        "domainName": host.split(":")[0],
        "domainPrefix": api_id,
        "http": {
            "method": request.method,
            "path": request.path,
            "protocol": "HTTP/1.1",
            "sourceIp": request.client,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": request_id or str(uuid.uuid4()),
        "routeKey": "$default",
        "stage": "$default",
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now.timestamp() * 1000),
    }
    if caller is not None:
        event["requestContext"]["authorizer"] = caller.authorizer()
    if request.body:
        if is_text(headers.get("content-type")):
            try:
                event["body"], event["isBase64Encoded"] = request.body.decode("utf-8"), False
            except UnicodeDecodeError:
                event["body"], event["isBase64Encoded"] = base64.b64encode(request.body).decode("ascii"), True
        else:
            event["body"], event["isBase64Encoded"] = base64.b64encode(request.body).decode("ascii"), True
    else:
        event["isBase64Encoded"] = False
    return event


def to_response(payload: bytes, request_id: str) -> Response:
    base = [("x-amzn-requestid", request_id)]
    try:
        result = json.loads(payload) if payload else None
    except ValueError:
        return _error(502, "invalid_response", "the function returned a payload that is not JSON", request_id)
    if not (isinstance(result, Mapping) and "statusCode" in result):
        return Response(200, payload if payload else b"", [("content-type", "application/json"), *base])
    try:
        status = int(result["statusCode"])
        if not 100 <= status <= 599:
            raise ValueError(status)
        headers = [(str(k).lower(), str(v)) for k, v in (result.get("headers") or {}).items()]
        headers += [("set-cookie", str(c)) for c in (result.get("cookies") or [])]
        body = result.get("body")
        if body is None:
            raw = b""
        elif result.get("isBase64Encoded"):
            raw = base64.b64decode(str(body), validate=True)
        else:
            raw = body.encode("utf-8") if isinstance(body, str) else json.dumps(body).encode()
    except (ValueError, TypeError, AttributeError, binascii.Error):
        return _error(502, "invalid_response", "the function returned a malformed statusCode/headers/body", request_id)
    if not any(k == "content-type" for k, _ in headers):
        headers.append(("content-type", "application/json"))
    return Response(status, raw, [*headers, *base])


def _error(status: int, code: str, message: str, request_id: str, **extra: str) -> Response:
    body = {"Message": message, "code": code, "requestId": request_id, **extra}
    return Response.json(status, body, [("x-amzn-requestid", request_id), ("x-amzn-errortype", code)])


class FunctionUrl:
    def __init__(self, function: Function, host: str, ssl_context: ssl.SSLContext) -> None:
        self.function = function
        self.host = host
        self.api_id = url_id(function.spec.name)
        self._ssl = ssl_context
        self._server: Any = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}/"

    async def start(self) -> None:
        self._server = await http11.serve(self.handle, self.host, 0, ssl_context=self._ssl)
        self.port = http11.bound_port(self._server)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def handle(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        caller = None
        if self.function.spec.url_auth == "AWS_IAM":
            verdict = sigv4.verify(request, region=self.function.config.region, account_id=self.function.config.account_id)
            if isinstance(verdict, Response):
                verdict.headers.append(("x-amzn-requestid", request_id))
                return verdict
            caller = verdict
        event = to_event(request, api_id=self.api_id, request_id=request_id, caller=caller)
        started = time.perf_counter()
        try:
            result = await self.function.invoke(
                json.dumps(event).encode(), self.function.spec.url_qualifier, source="url", request_id=request_id
            )
        except Throttled as exc:
            return _error(429, "TooManyRequestsException", "Rate Exceeded.", request_id, reason=exc.reason)
        if result.function_error:
            return _error(502, "function_error", "Internal Server Error", request_id,
                          errorType=result.record.error_type or "Unhandled")
        response = to_response(result.payload, request_id)
        response.headers.append(("x-preheat-twin-ms", f"{(time.perf_counter() - started) * 1000:.3f}"))
        return response
