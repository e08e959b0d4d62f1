"""Sockets with a deadline on every step, a small connection pool, and just enough HTTP/1.1.

Both shared-tier clients (Redis, DynamoDB) are built on this instead of redis-py or boto3: those cost
~200 ms each to import on a cold start, and neither lets a call be bounded by one overall deadline
(their timeouts restart on every socket operation). Here every connect, send and receive gets only
what is left of the caller's budget, so a sick tier can never hold a request longer than
PREHEAT_CACHE_TIMEOUT_MS.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from functions.cache.errors import TierError

__all__ = ["Conn", "Pool", "TierError", "http_request", "remaining"]


def remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TierError("timed out")
    return left


class Conn:
    """One socket with a read buffer. Any failure leaves it unusable: the pool then discards it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buf = bytearray()
        self.used = False  # served a call before: the peer may have closed it while it sat idle

    @classmethod
    def open(
        cls, host: str, port: int, deadline: float, *, tls: bool = False, server_hostname: str | None = None
    ) -> Conn:
        try:
            sock = socket.create_connection((host, port), timeout=remaining(deadline))
        except OSError as exc:
            raise TierError(f"cannot connect to {host}:{port}: {exc}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:
            import ssl  # ~12 ms: paid only by a TLS endpoint, on its first connection

            try:
                sock.settimeout(remaining(deadline))
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=server_hostname or host)
            except (OSError, TierError) as exc:
                sock.close()
                raise TierError(f"TLS handshake with {host}:{port} failed: {exc}") from None
        return cls(sock)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def dropped(self) -> bool:
        """An idle connection that is readable has been closed (or spoken to) by the peer: unusable."""
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable) or bool(self._buf)

    def send(self, data: bytes, deadline: float) -> None:
        try:
            self.sock.settimeout(remaining(deadline))
            self.sock.sendall(data)
        except OSError as exc:
            raise TierError(f"send failed: {exc}") from None

    def _fill(self, deadline: float) -> None:
        try:
            self.sock.settimeout(remaining(deadline))
            chunk = self.sock.recv(65536)
        except OSError as exc:  # socket.timeout is an OSError
            raise TierError(f"receive failed: {exc or 'timed out'}") from None
        if not chunk:
            raise TierError("the server closed the connection")
        self._buf += chunk

    def readline(self, deadline: float, limit: int = 65536) -> bytes:
        """One line without its CRLF."""
        while True:
            end = self._buf.find(b"\r\n")
            if end >= 0:
                line = bytes(self._buf[:end])
                del self._buf[: end + 2]
                return line
            if len(self._buf) > limit:
                raise TierError("protocol error: line too long")
            self._fill(deadline)

    def readexact(self, n: int, deadline: float) -> bytes:
        while len(self._buf) < n:
            self._fill(deadline)
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data


class Pool:
    """Idle connections to one endpoint, reused LIFO (the most recently used is the least likely to
    have been closed by the peer). Threads never share a connection."""

    def __init__(self, connect: Callable[[float], Conn], *, max_idle: int = 8) -> None:
        self._connect = connect
        self._idle: list[Conn] = []
        self._lock = threading.Lock()
        self.max_idle = max_idle

    def call(self, deadline: float, use: Callable[[Conn], Any]) -> Any:
        """Run `use` on a connection. A reused connection that fails before the deadline is retried
        once on a fresh one: keep-alive connections die while idle (the server's idle timeout, or
        a Lambda freeze), and that is no reason to call the tier down."""
        conn = self._take()
        fresh = conn is None
        if conn is None:
            conn = self._connect(deadline)
        try:
            result = use(conn)
        except TierError as exc:
            conn.close()
            if fresh or not exc.retry_fresh or time.monotonic() >= deadline:
                raise
            conn = self._connect(deadline)
            try:
                result = use(conn)
            except BaseException:
                conn.close()
                raise
        except BaseException:
            conn.close()
            raise
        conn.used = True
        self._give(conn)
        return result

    def _take(self) -> Conn | None:
        while True:
            with self._lock:
                if not self._idle:
                    return None
                conn = self._idle.pop()
            if not conn.dropped():
                return conn
            conn.close()

    def _give(self, conn: Conn) -> None:
        with self._lock:
            if len(self._idle) < self.max_idle:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


# -- HTTP/1.1, as much as an AWS JSON API needs ----------------------------------------------------


def http_request(
    conn: Conn, method: str, path: str, headers: Mapping[str, str], body: bytes, deadline: float
) -> tuple[int, dict[str, str], bytes]:
    """Send one request on a keep-alive connection; return status, headers (lower-case), body."""
    head = [f"{method} {path} HTTP/1.1"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    head.append(f"Content-Length: {len(body)}")
    conn.send(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body, deadline)
    status_line = conn.readline(deadline)
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise TierError(f"protocol error: bad HTTP status line {status_line[:80]!r}")
    status = int(parts[1])
    response_headers: dict[str, str] = {}
    while True:
        line = conn.readline(deadline)
        if not line:
            break
        name, _, value = line.decode("latin-1").partition(":")
        response_headers[name.strip().lower()] = value.strip()
    if response_headers.get("transfer-encoding", "").lower() == "chunked":
        data = bytearray()
        while True:
            size_line = conn.readline(deadline).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise TierError(f"protocol error: bad chunk size {size_line[:20]!r}") from None
            if size == 0:
                while conn.readline(deadline):  # trailers, then the blank line
                    pass
                break
            data += conn.readexact(size, deadline)
            conn.readexact(2, deadline)
        payload = bytes(data)
    else:
        length = response_headers.get("content-length", "0")
        if not length.isdigit():
            raise TierError(f"protocol error: bad Content-Length {length!r}")
        payload = conn.readexact(int(length), deadline)
    if response_headers.get("connection", "").lower() == "close":
        # Not an error, but this connection must not go back to the pool.
        conn.sock.close()
    return status, response_headers, payload
