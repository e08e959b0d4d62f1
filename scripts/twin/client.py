"""Talking to a running twin from Python: its Function URLs over HTTPS (trusting its CA, signing
for AWS_IAM ones), its control API, and boto3 clients pointed at its endpoint."""

from __future__ import annotations

import http.client
import json
import ssl
import time
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from scripts.twin import sigv4
from scripts.twin.state import TwinState


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes
    ms: float  # client-seen: request sent to response read (connection set up beforehand)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Prepared:
    method: str
    path: str
    body: bytes | None
    headers: dict[str, str]


class UrlClient:
    """A keep-alive HTTPS connection to one Function URL; with a `signer`, every request is
    SigV4-signed (AuthType AWS_IAM), before its clock starts."""

    def __init__(self, url: str, ca: str | None, timeout: float = 60.0, signer: sigv4.Signer | None = None) -> None:
        parts = urlsplit(url)
        self.url = url
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 443
        self.context = ssl.create_default_context(cafile=ca)
        self.timeout = timeout
        self.signer = signer
        self._conn: http.client.HTTPSConnection | None = None

    def connect(self) -> None:
        """Open a fresh connection (TCP + TLS handshake), so a timed request does not include it."""
        self.close()
        self._conn = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=self.timeout)
        self._conn.connect()

    def prepare(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Prepared:
        """The request as it will be sent, signed now (a SigV4 signature stays valid for 5 minutes):
        senders that must start together (bursts) prepare first, then `send`."""
        data = body if isinstance(body, bytes | None) else json.dumps(body).encode()
        sent = {"content-type": "application/json", **(headers or {})}
        if self.signer is not None:
            netloc = self.host if self.port == 443 else f"{self.host}:{self.port}"
            sent = self.signer.headers(method, f"https://{netloc}{path}", {**sent, "host": netloc}, data or b"")
        return Prepared(method, path, data, sent)

    def send(self, prepared: Prepared) -> Reply:
        if self._conn is None:
            self.connect()
        assert self._conn is not None
        started = time.perf_counter()
        try:
            self._conn.request(prepared.method, prepared.path, body=prepared.body, headers=prepared.headers)
            response = self._conn.getresponse()
            raw = response.read()
        except (http.client.HTTPException, OSError):
            self.close()
            raise
        ms = (time.perf_counter() - started) * 1000
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, raw, ms)

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Reply:
        return self.send(self.prepare(method, path, body, headers))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class TwinClient:
    def __init__(self, state: TwinState) -> None:
        self.state = state

    def url_client(self, function: str, *, signed: bool | None = None) -> UrlClient:
        """A client for the function's URL, signing when its AuthType is AWS_IAM (or as `signed` says)."""
        sign = self.state.url_auth(function) == "AWS_IAM" if signed is None else signed
        return UrlClient(self.state.url(function), self.state.ca, signer=sigv4.Signer(self.state.region) if sign else None)

    def control(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.state.endpoint}/_preheat/{path.lstrip('/')}", data=data, method=method,
            headers={"content-type": "application/json"} if data is not None else {},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def reset(self, function: str, *, provisioned: bool = False) -> int:
        suffix = "?provisioned=1" if provisioned else ""
        return int(self.control("POST", f"functions/{function}/reset{suffix}")["stopped"])

    def invocations(self, since: int = 0, function: str | None = None) -> tuple[int, list[dict[str, Any]]]:
        query = f"invocations?since={since}" + (f"&function={function}" if function else "")
        data = self.control("GET", query)
        return int(data["last_seq"]), list(data["invocations"])

    def record(self, request_id: str, function: str | None = None) -> dict[str, Any] | None:
        _, records = self.invocations(0, function)
        return next((r for r in reversed(records) if r["request_id"] == request_id), None)

    def functions(self) -> list[dict[str, Any]]:
        return list(self.control("GET", "functions")["functions"])

    def flush(self) -> dict[str, Any]:
        result: dict[str, Any] = self.control("POST", "flush")
        return result

    def boto3_client(self, service: str, **config: Any) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            service,
            endpoint_url=self.state.endpoint,
            region_name=self.state.region,
            aws_access_key_id=sigv4.ACCESS_KEY,
            aws_secret_access_key=sigv4.SECRET_KEY,
            config=Config(**config) if config else None,
        )
