"""The Redis (ElastiCache, Valkey) shared tier: pipelined GETs to read, one pipelined batch of SET ... PX to write.

A RESP2 client of its own rather than redis-py, whose import alone costs ~200 ms of cold start
(measured here, see README "Cache tier"); this one needs `socket` (~4 ms) and `ssl` for rediss://.
Redis expires keys itself; the value's own expiry is still checked on read (codec.decode).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from urllib.parse import unquote, urlsplit

from functions.cache.wire import Conn, Pool, TierError


def command(*args: bytes | str | int) -> bytes:
    """One command in RESP: an array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class ReplyError(TierError):
    """Redis answered with an error (-ERR ..., -MOVED ..., -NOAUTH ...): a fresh connection would get
    the same answer, so it is not retried."""

    retry_fresh = False


def read_reply(conn: Conn, deadline: float) -> bytes | int | list[object] | None:
    line = conn.readline(deadline)
    if not line:
        raise TierError("protocol error: empty reply line")
    kind, rest = line[:1], line[1:]
    if kind == b"+":
        return rest
    if kind == b"-":
        raise ReplyError(f"redis error: {rest.decode(errors='replace')[:200]}")
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = conn.readexact(n + 2, deadline)
        return data[:-2]
    if kind == b"*":
        n = int(rest)
        if n < 0:
            return None
        return [read_reply(conn, deadline) for _ in range(n)]
    raise TierError(f"protocol error: unexpected reply {line[:40]!r}")


class RedisTier:
    name = "redis"
    read_batch = 100  # pipelined: one round trip, but the time to move the values grows with them
    write_batch = 100

    def __init__(self, url: str, *, max_idle: int = 8) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "localhost"
        self.port = parts.port or 6379
        self.tls = parts.scheme == "rediss"
        self.db = int(parts.path.strip("/") or 0)
        self._username = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self._pool = Pool(self._connect, max_idle=max_idle)

    def _connect(self, deadline: float) -> Conn:
        conn = Conn.open(self.host, self.port, deadline, tls=self.tls)
        try:
            setup: list[bytes] = []
            if self._password is not None:
                auth = (
                    ("AUTH", self._username, self._password) if self._username else ("AUTH", self._password)
                )
                setup.append(command(*auth))
            if self.db:
                setup.append(command("SELECT", self.db))
            if setup:
                conn.send(b"".join(setup), deadline)
                for _ in setup:
                    read_reply(conn, deadline)
        except BaseException:
            conn.close()
            raise
        return conn

    def prepare(self, budget: float) -> None:
        """Open one connection ahead of the first request, and check that the server answers."""
        deadline = time.monotonic() + budget

        def ping(conn: Conn) -> None:
            conn.send(command("PING"), deadline)
            if read_reply(conn, deadline) != b"PONG":
                raise TierError("protocol error: PING was not answered with PONG")

        self._pool.call(deadline, ping)

    def get_many(self, keys: Sequence[str], deadline: float) -> list[bytes | None]:
        # Pipelined GETs rather than one MGET: the same single round trip, and a proxy in front of a
        # sharded cache (ElastiCache Serverless) can route each key on its own instead of refusing
        # keys that live in different slots.
        def use(conn: Conn) -> list[bytes | None]:
            conn.send(b"".join(command("GET", key) for key in keys), deadline)
            values = [read_reply(conn, deadline) for _ in keys]
            return [v if isinstance(v, bytes) else None for v in values]

        result: list[bytes | None] = self._pool.call(deadline, use)
        return result

    def put_many(self, items: Sequence[tuple[str, bytes]], expires_at: int, deadline: float) -> None:
        ttl_ms = max(1, int((expires_at - time.time()) * 1000))

        def use(conn: Conn) -> None:
            conn.send(b"".join(command("SET", key, value, "PX", ttl_ms) for key, value in items), deadline)
            for _ in items:
                read_reply(conn, deadline)  # +OK, or raises on -ERR (e.g. OOM with noeviction)

        self._pool.call(deadline, use)

    def close(self) -> None:
        self._pool.close()
