"""A handler that asks for Lambda's shutdown phase (functions/metrics/shutdown.py) and says when it
gets it: what the cache metrics rely on to reach CloudWatch from an instance nobody calls again."""

from __future__ import annotations

import os
import time
from typing import Any

from functions.metrics import shutdown

_served = 0


def _last_words() -> None:
    print(f"SHUTDOWN pid={os.getpid()} served={_served} at={time.time():.3f}", flush=True)


ARRANGED = shutdown.at_environment_end(_last_words)


def handler(event: Any, context: Any) -> dict[str, Any]:
    global _served
    _served += 1
    return {"pid": os.getpid(), "arranged": ARRANGED}


def unregistered(event: Any, context: Any) -> dict[str, Any]:
    """Catches SIGTERM without registering an extension: Lambda never sends it one."""
    import signal

    signal.signal(signal.SIGTERM, lambda *_: print(f"SIGTERM pid={os.getpid()}", flush=True))
    return {"pid": os.getpid()}


def probe(event: Any, context: Any) -> dict[str, Any]:
    """Calls the Extensions API after INIT, as a misbehaving extension would: what does it answer?"""
    import http.client

    def call(method: str, path: str, body: bytes | None = None, **headers: str) -> int:
        conn = http.client.HTTPConnection(os.environ["AWS_LAMBDA_RUNTIME_API"], timeout=5)
        conn.request(method, path, body=body, headers=headers)
        status = conn.getresponse().status
        conn.close()
        return status

    return {
        "late_register": call("POST", shutdown.REGISTER_PATH, b'{"events": []}', **{"Lambda-Extension-Name": "late"}),
        "unknown_next": call("GET", shutdown.NEXT_PATH, **{"Lambda-Extension-Identifier": "nope"}),
    }
