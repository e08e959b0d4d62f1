"""One HTTP/1.1 request on its own connection, byte for byte as given, always bounded by a deadline.

Hostile requests need what ordinary clients refuse or hide: invalid UTF-8, a Content-Length that lies,
a body far over a limit. A server may answer before the body is sent (as it should for a body over
its limit): the sender watches for that between chunks, stops sending and reads the answer, and
reports how many body bytes went out first. That count is how a test shows a limit was enforced
before the body was read, let alone parsed.
"""

from __future__ import annotations

import select
import socket
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import h11

CHUNK = 64 * 1024


@dataclass(frozen=True)
class HttpTarget:
    """Where requests go: the app under uvicorn (http) or a Function URL on the twin (https + its CA,
    and a SigV4 signer when the URL's AuthType is AWS_IAM: scripts/twin/sigv4.py)."""

    name: str
    base_url: str
    ca: str | None = None
    signer: Any = None  # sigv4.Signer: every request is signed, unless `send(..., signed=False)`

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urlsplit(self.base_url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def tls(self) -> bool:
        return urlsplit(self.base_url).scheme == "https"

    def ssl_context(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cafile=self.ca) if self.tls else None


@dataclass(frozen=True)
class RawReply:
    status: int  # 0: no answer (see error)
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    ms: float = 0.0
    sent: int = 0  # body bytes written before the answer came (or all of them)
    error: str | None = None  # "timeout", "closed: ..." when there was no answer


def send(
    target: HttpTarget,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    headers: Iterable[tuple[str, str]] = (),
    content_length: int | None = None,
    timeout: float = 30.0,
    signed: bool = True,
) -> RawReply:
    """Send one request; `content_length` overrides the declared length (a lie, when it differs).
    With the target's signer (and `signed`), the headers are signed for `body` as given."""
    started = time.perf_counter()
    deadline = time.monotonic() + timeout
    declared = len(body) if content_length is None else content_length
    sent = 0
    try:
        sock = socket.create_connection((target.host, target.port), timeout=timeout)
    except OSError as exc:
        return RawReply(0, error=f"connect: {exc}", ms=(time.perf_counter() - started) * 1000)
    try:
        # Headers and body go out in separate writes: without NODELAY, Nagle holds the second ~40 ms.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        context = target.ssl_context()
        if context is not None:
            sock = context.wrap_socket(sock, server_hostname=target.host)
        conn = h11.Connection(h11.CLIENT)
        host = f"{target.host}:{target.port}"
        extra = [(k, v) for k, v in headers if k.lower() not in ("host", "content-length")]
        if target.signer is not None and signed:
            scheme = "https" if target.tls else "http"
            signed_headers = target.signer.headers(method, f"{scheme}://{host}{path}", {**dict(extra), "host": host}, body)
            extra = [(k, v) for k, v in signed_headers.items() if k.lower() != "host"]
        head = [("host", host), ("content-length", str(declared)), *extra]
        sock.sendall(conn.send(h11.Request(method=method, target=path, headers=head)) or b"")
        view = memoryview(body)
        while sent < len(body):
            if _answered(sock, conn):
                break  # the server answered early: stop sending, read its answer
            if time.monotonic() > deadline:
                return RawReply(0, sent=sent, error="timeout", ms=(time.perf_counter() - started) * 1000)
            try:
                sock.sendall(view[sent : sent + CHUNK])
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                break  # closed on us mid-body; an answer may still be waiting in the buffer
            sent += min(CHUNK, len(body) - sent)
        return _read(sock, conn, deadline, started, sent)
    except TimeoutError:
        return RawReply(0, sent=sent, error="timeout", ms=(time.perf_counter() - started) * 1000)
    except (OSError, h11.ProtocolError) as exc:
        return RawReply(0, sent=sent, error=f"closed: {exc}", ms=(time.perf_counter() - started) * 1000)
    finally:
        sock.close()


def _answered(sock: socket.socket, conn: h11.Connection) -> bool:
    """Has the server sent any of its answer yet? Data read here stays in `conn` for `_read`.
    (Readable is not enough: a TLS 1.3 server sends session tickets, which are no answer.)"""
    pending = isinstance(sock, ssl.SSLSocket) and sock.pending()
    if not pending and not select.select([sock], [], [], 0)[0]:
        return False
    previous = sock.gettimeout()
    sock.setblocking(False)
    try:
        data = sock.recv(CHUNK)
    except (ssl.SSLWantReadError, BlockingIOError):
        return False
    except (ConnectionResetError, BrokenPipeError):
        return True
    finally:
        sock.settimeout(previous)
    conn.receive_data(data)
    return True


def _read(sock: socket.socket, conn: h11.Connection, deadline: float, started: float, sent: int) -> RawReply:
    status, headers, chunks = 0, {}, []
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            left = deadline - time.monotonic()
            if left <= 0:
                return RawReply(0, sent=sent, error="timeout", ms=(time.perf_counter() - started) * 1000)
            sock.settimeout(left)
            try:
                data = sock.recv(CHUNK)
            except ConnectionResetError:
                data = b""
            conn.receive_data(data)
            if not data and status == 0:
                return RawReply(0, sent=sent, error="closed: no answer", ms=(time.perf_counter() - started) * 1000)
            continue
        if isinstance(event, h11.InformationalResponse):
            continue
        if isinstance(event, h11.Response):
            status = event.status_code
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers}
        elif isinstance(event, h11.Data):
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            break
    return RawReply(status, headers, b"".join(chunks), (time.perf_counter() - started) * 1000, sent)
