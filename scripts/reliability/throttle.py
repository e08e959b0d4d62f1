"""An AWS endpoint that throttles: a proxy in front of the twin's endpoint on 127.0.0.1.

boto3 clients pointed at it (AWS_ENDPOINT_URL) reach the twin (Lambda's Invoke and concurrency APIs,
moto for the rest) except for the calls a run scripts to fail: the next N calls of an operation get
AWS's throttling answer instead (an HTTP status, `x-amzn-ErrorType`, a JSON `__type` and message), so
retry and degrade paths run through real botocore parsing against the real twin.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

_LAMBDA = (
    ("GET", re.compile(r"^/2019-09-30/functions/[^/]+/provisioned-concurrency"), "GetProvisionedConcurrencyConfig"),
    ("PUT", re.compile(r"^/2019-09-30/functions/[^/]+/provisioned-concurrency"), "PutProvisionedConcurrencyConfig"),
    ("DELETE", re.compile(r"^/2019-09-30/functions/[^/]+/provisioned-concurrency"),
     "DeleteProvisionedConcurrencyConfig"),
    ("POST", re.compile(r"^/2015-03-31/functions/[^/]+/invocations"), "Invoke"),
)


def operation(method: str, path: str, headers: dict[str, str], body: bytes) -> str:
    """The AWS operation a request calls, for JSON (X-Amz-Target), CBOR (/service/S/operation/O),
    query (Action=) and Lambda's REST protocols."""
    target = headers.get("x-amz-target")
    if target:
        return target.rsplit(".", 1)[-1]
    cbor = re.match(r"^/service/[^/]+/operation/([^/?]+)", path)
    if cbor:
        return cbor.group(1)
    for verb, pattern, name in _LAMBDA:
        if method == verb and pattern.match(path):
            return name
    action = re.search(rb"(?:^|&)Action=([A-Za-z]+)", body)
    return action.group(1).decode() if action else f"{method} {path.split('?')[0]}"


class ThrottlingEndpoint:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream_host, self.upstream_port = parts.hostname or "127.0.0.1", parts.port or 80
        self.calls: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self._plan: dict[str, tuple[int, int, str]] = {}  # op -> (remaining, status, code)
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, out_headers, payload = proxy.handle(self.command, self.path, headers, body)
                self.send_response(status)
                for key, value in out_headers:
                    if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="throttle-proxy")

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> ThrottlingEndpoint:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def throttle(self, op: str, times: int, *, status: int = 429, code: str = "TooManyRequestsException") -> None:
        """The next `times` calls of `op` are refused with this throttling error."""
        with self._lock:
            self._plan[op] = (times, status, code)

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        op = operation(method, path, headers, body)
        with self._lock:
            self.calls[op] += 1
            remaining, status, code = self._plan.get(op, (0, 0, ""))
            if remaining > 0:
                self._plan[op] = (remaining - 1, status, code)
                self.refused[op] += 1
                payload = json.dumps({"__type": code, "message": "Rate exceeded", "Type": "User"}).encode()
                return status, [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)], payload
        conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=60)
        try:
            forwarded = {k: v for k, v in headers.items() if k not in ("connection", "keep-alive")}
            conn.request(method, path, body=body, headers=forwarded)
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            conn.close()
