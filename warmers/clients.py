"""boto3 clients, created on first use and reused by every later invocation of the instance.

boto3 is imported here, lazily: creating a client costs ~200 ms of imports, paid once per instance
and never by code paths that do not call AWS. botocore's retries are off (`retry.py` retries), and
timeouts are explicit. Endpoints follow the standard AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE>
variables, so the same code talks to AWS, moto_server or the local twin.
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_clients: dict[tuple[str, float, int], Any] = {}


def client(service: str, *, read_timeout_s: float = 10.0, max_pool: int = 10) -> Any:
    key = (service, read_timeout_s, max_pool)
    found = _clients.get(key)
    if found is not None:
        return found
    with _lock:
        found = _clients.get(key)
        if found is None:
            import boto3
            from botocore.config import Config

            config = Config(
                retries={"total_max_attempts": 1, "mode": "standard"},
                connect_timeout=5,
                read_timeout=read_timeout_s,
                max_pool_connections=max_pool,
            )
            found = boto3.session.Session().client(service, config=config)
            _clients[key] = found
    return found


def reset() -> None:
    """Forget every client (tests that change endpoints or credentials between cases)."""
    with _lock:
        _clients.clear()
