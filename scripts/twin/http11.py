"""A small asyncio HTTP/1.1 server and client on h11, used by every server the twin runs.

One implementation for the Runtime API, the Invoke API and the Function URLs, so all of them set
TCP_NODELAY (without it, an HTTP client that writes headers and body separately stalls ~40 ms on
Nagle's algorithm and delayed ACKs), keep connections alive, and bound request bodies.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import h11

log = logging.getLogger("preheat.twin")

READ_CHUNK = 65536


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # path and query, as sent
    headers: tuple[tuple[str, str], ...]  # names in lower case, in order, repeats kept
    body: bytes
    client: str = ""
    scheme: str = "http"

    @property
    def path(self) -> str:
        return urlsplit(self.target).path or "/"

    @property
    def query(self) -> str:
        return urlsplit(self.target).query

    def params(self) -> dict[str, str]:
        return dict(parse_qsl(self.query, keep_blank_values=True))

    def header(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return default


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(cls, status: int, data: Any, headers: Iterable[tuple[str, str]] = ()) -> Response:
        return cls(status, json.dumps(data).encode(), [("content-type", "application/json"), *headers])


Handler = Callable[[Request], Awaitable[Response]]


def _nodelay(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def serve(
    handler: Handler,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    ssl_context: ssl.SSLContext | None = None,
    max_body: int = 6 * 1024 * 1024,
) -> asyncio.Server:
    """Start serving; returns the asyncio server (its port: `bound_port(server)`)."""
    scheme = "https" if ssl_context else "http"

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _nodelay(writer)
        peer = writer.get_extra_info("peername")
        client = str(peer[0]) if peer else ""
        try:
            await _connection(handler, reader, writer, client, scheme, max_body)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, TimeoutError):
            pass
        except asyncio.CancelledError:  # the server is shutting down; long polls end here
            pass
        finally:
            writer.close()

    return await asyncio.start_server(on_connection, host, port, ssl=ssl_context, reuse_address=True)


def bound_port(server: asyncio.Server) -> int:
    port: int = server.sockets[0].getsockname()[1]
    return port


async def _connection(
    handler: Handler,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    client: str,
    scheme: str,
    max_body: int,
) -> None:
    conn = h11.Connection(h11.SERVER)
    while True:
        try:
            request = await _read_request(conn, reader, writer, client, scheme, max_body)
        except h11.RemoteProtocolError as exc:
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                body = json.dumps({"message": f"malformed HTTP request: {exc}", "code": "bad_request"})
                await _send(conn, writer, Response(exc.error_status_hint, body.encode(), [("connection", "close")]))
            return
        except _BodyTooLarge:
            response = Response.json(
                413,
                {"Type": "User", "message": f"request body exceeds {max_body} bytes", "code": "payload_too_large"},
                [("x-amzn-errortype", "RequestTooLargeException"), ("connection", "close")],
            )
            await _send(conn, writer, response)
            return
        if request is None:
            return
        try:
            response = await handler(request)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("handler failed for %s %s", request.method, request.target)
            response = Response.json(
                500, {"Type": "Service", "message": "internal error in the local twin; see .preheat/twin.log"}
            )
        await _send(conn, writer, response, head=request.method == "HEAD")
        if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
            return
        try:
            conn.start_next_cycle()
        except h11.LocalProtocolError:
            return


class _BodyTooLarge(Exception):
    pass


async def _read_request(
    conn: h11.Connection,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    client: str,
    scheme: str,
    max_body: int,
) -> Request | None:
    head: h11.Request | None = None
    chunks: list[bytes] = []
    size = 0
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            if head is not None and conn.they_are_waiting_for_100_continue:
                writer.write(conn.send(h11.InformationalResponse(status_code=100, headers=[])) or b"")
            data = await reader.read(READ_CHUNK)
            conn.receive_data(data)
            if not data and conn.their_state is h11.IDLE:
                return None
            continue
        if isinstance(event, h11.Request):
            head = event
            # A declared length over the limit is refused before any of the body is read, as Lambda's
            # front end does: otherwise a client claiming 1 GB and sending less holds the connection.
            declared = dict(event.headers).get(b"content-length", b"0")
            if declared.isdigit() and int(declared) > max_body:
                raise _BodyTooLarge
        elif isinstance(event, h11.Data):
            size += len(event.data)
            if size > max_body:
                raise _BodyTooLarge
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            assert head is not None
            return Request(
                method=head.method.decode("ascii"),
                target=head.target.decode("latin-1"),
                headers=tuple((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in head.headers),
                body=b"".join(chunks),
                client=client,
                scheme=scheme,
            )
        elif isinstance(event, h11.ConnectionClosed):
            return None


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b""


async def _send(conn: h11.Connection, writer: asyncio.StreamWriter, response: Response, *, head: bool = False) -> None:
    names = {k.lower() for k, _ in response.headers}
    headers = [(k, v) for k, v in response.headers if k.lower() != "content-length"]
    if response.status not in (204, 304) and "transfer-encoding" not in names:
        headers.append(("content-length", str(len(response.body))))
    try:
        data = conn.send(h11.Response(status_code=response.status, headers=headers, reason=_reason(response.status))) or b""
        if response.body and response.status not in (204, 304) and not head:
            data += conn.send(h11.Data(data=response.body)) or b""
        data += conn.send(h11.EndOfMessage()) or b""
    except h11.LocalProtocolError:
        return
    writer.write(data)
    await writer.drain()


async def request(
    host: str,
    port: int,
    method: str,
    target: str,
    *,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    timeout: float = 30.0,
) -> Response:
    """One HTTP/1.1 request on a fresh connection (for forwarding to moto_server)."""

    async def go() -> Response:
        reader, writer = await asyncio.open_connection(host, port)
        _nodelay(writer)
        try:
            conn = h11.Connection(h11.CLIENT)
            skip = ("host", "content-length", "connection", "transfer-encoding", "expect", "keep-alive")
            sent = [(k, v) for k, v in headers if k.lower() not in skip]
            sent += [("host", f"{host}:{port}"), ("content-length", str(len(body))), ("connection", "close")]
            data = conn.send(h11.Request(method=method, target=target, headers=sent)) or b""
            if body:
                data += conn.send(h11.Data(data=body)) or b""
            data += conn.send(h11.EndOfMessage()) or b""
            writer.write(data)
            await writer.drain()
            status, out_headers, chunks = 0, [], []
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await reader.read(READ_CHUNK))
                elif isinstance(event, h11.Response):
                    status = event.status_code
                    out_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers]
                elif isinstance(event, h11.Data):
                    chunks.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    break
            return Response(status, b"".join(chunks), out_headers)
        finally:
            writer.close()

    return await asyncio.wait_for(go(), timeout)
