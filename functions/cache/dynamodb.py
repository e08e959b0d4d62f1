"""The DynamoDB shared tier: BatchGetItem to read, BatchWriteItem to write, over SigV4-signed HTTP.

Table contract: partition key `key` (String); attribute `v` (Binary) holds the codec's bytes;
`expires_at` (Number, epoch seconds) is the table's TTL attribute. DynamoDB deletes expired items
lazily (typically within days), so items past `expires_at` are dropped here on read.

No boto3: importing it costs ~200 ms (botocore alone ~170 ms) of every cold start, before the first
request could use the cache. This client is the stdlib plus the deadline-bounded sockets of wire.py.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from functions.cache import credentials
from functions.cache.sigv4 import Credentials, Signer
from functions.cache.wire import Conn, Pool, TierError, http_request

log = logging.getLogger("preheat")

TARGET = "DynamoDB_20120810"
MAX_BATCH_GET = 100  # BatchGetItem's limit
MAX_BATCH_WRITE = 25  # BatchWriteItem's limit
BACKGROUND_SECONDS = 10.0  # the budget of a credentials fetch in the background thread


class DynamoTier:
    name = "dynamodb"
    read_batch = MAX_BATCH_GET
    write_batch = MAX_BATCH_WRITE

    def __init__(
        self,
        table: str,
        *,
        region: str,
        endpoint_url: str = "",
        env: Mapping[str, str] | None = None,
        max_idle: int = 8,
    ) -> None:
        self.table = table
        endpoint = endpoint_url or f"https://dynamodb.{region}.amazonaws.com"
        parts = urlsplit(endpoint)
        self._tls = parts.scheme == "https"
        self._hostname = parts.hostname or ""
        self._port = parts.port or (443 if self._tls else 80)
        default_port = 443 if self._tls else 80
        self._host = self._hostname if self._port == default_port else f"{self._hostname}:{self._port}"
        self._signer = Signer(region, "dynamodb")
        self._env = dict(os.environ if env is None else env)
        self._credentials: Credentials | None = None
        self._refresh_at: float | None = None
        self._refreshing = threading.Lock()
        self._pool = Pool(self._connect, max_idle=max_idle)

    def _connect(self, deadline: float) -> Conn:
        return Conn.open(self._hostname, self._port, deadline, tls=self._tls)

    # -- credentials: resolved in the background, never on a request -----------------------------

    def prepare(self, budget: float) -> None:
        """Credentials and one open (TLS) connection, ahead of the first request. Reading one key also
        checks the table name, the region and the permissions at init, where a mistake gets logged
        before any request needs the tier."""
        self._load_credentials(time.monotonic() + BACKGROUND_SECONDS)
        self.get_many(["preheat:ping"], time.monotonic() + budget)

    def _load_credentials(self, deadline: float) -> None:
        found, source = credentials.resolve(self._env, deadline)
        self._credentials = found
        self._refresh_at = credentials.refresh_at(found, source, time.time())

    def _refresh_in_background(self) -> None:
        if not self._refreshing.acquire(blocking=False):
            return

        def run() -> None:
            try:
                self._load_credentials(time.monotonic() + BACKGROUND_SECONDS)
            except Exception as exc:  # the next call will try again; requests meanwhile skip the tier
                log.warning("cache tier dynamodb: could not refresh AWS credentials: %s", exc)
            finally:
                self._refreshing.release()

        threading.Thread(target=run, name="preheat-cache-credentials", daemon=True).start()

    def _current_credentials(self) -> Credentials:
        found = self._credentials
        now = time.time()
        if found is None or (self._refresh_at is not None and now >= self._refresh_at):
            self._refresh_in_background()
        if found is None:
            raise TierError("no AWS credentials yet (being fetched in the background)")
        if found.expires_at is not None and found.expires_at <= now + 5:
            raise TierError("the AWS credentials have expired (new ones are being fetched)")
        return found

    # -- the API -----------------------------------------------------------------------------------

    def _call(self, operation: str, payload: dict[str, Any], deadline: float) -> dict[str, Any]:
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = self._signer.sign(
            "POST",
            "/",
            {
                "Host": self._host,
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": f"{TARGET}.{operation}",
            },
            body,
            self._current_credentials(),
            datetime.now(UTC),
        )
        status, _, data = self._pool.call(
            deadline, lambda conn: http_request(conn, "POST", "/", headers, body, deadline)
        )
        try:
            answer: dict[str, Any] = json.loads(data) if data else {}
        except ValueError:
            raise TierError(f"DynamoDB {operation}: HTTP {status} with a body that is not JSON") from None
        if status != 200:
            kind = str(answer.get("__type", "")).rsplit("#", 1)[-1] or f"HTTP {status}"
            message = answer.get("message") or answer.get("Message") or ""
            hint = (
                " (check PREHEAT_CACHE_TABLE and the region)" if kind == "ResourceNotFoundException" else ""
            )
            raise TierError(f"DynamoDB {operation} on {self.table!r}: {kind}: {message}{hint}")
        return answer

    def get_many(self, keys: Sequence[str], deadline: float) -> list[bytes | None]:
        found: dict[str, bytes] = {}
        unique = list(dict.fromkeys(keys))  # BatchGetItem refuses duplicate keys
        now = time.time()
        for start in range(0, len(unique), MAX_BATCH_GET):
            chunk = unique[start : start + MAX_BATCH_GET]
            answer = self._call(
                "BatchGetItem",
                {"RequestItems": {self.table: {"Keys": [{"key": {"S": k}} for k in chunk]}}},
                deadline,
            )
            # UnprocessedKeys (throttling, or over 16 MB) are simply misses: no retries on a budget.
            for item in answer.get("Responses", {}).get(self.table, []):
                try:
                    expires_at = int(item.get("expires_at", {}).get("N", "0"))
                    if expires_at > now:
                        found[item["key"]["S"]] = base64.b64decode(item["v"]["B"])
                except (KeyError, TypeError, ValueError):
                    continue  # not one of ours: a miss
        return [found.get(k) for k in keys]

    def put_many(self, items: Sequence[tuple[str, bytes]], expires_at: int, deadline: float) -> None:
        unique = list(dict(items).items())  # BatchWriteItem refuses duplicate keys too
        expiry = str(expires_at)
        for start in range(0, len(unique), MAX_BATCH_WRITE):
            chunk = unique[start : start + MAX_BATCH_WRITE]
            self._call(
                "BatchWriteItem",
                {
                    "RequestItems": {
                        self.table: [
                            {
                                "PutRequest": {
                                    "Item": {
                                        "key": {"S": key},
                                        "v": {"B": base64.b64encode(value).decode()},
                                        "expires_at": {"N": expiry},
                                    }
                                }
                            }
                            for key, value in chunk
                        ]
                    }
                },
                deadline,
            )

    def close(self) -> None:
        self._pool.close()
