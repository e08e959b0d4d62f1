"""Small Lambda handlers for the twin's tests: each shows one platform behaviour."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

_LOADED = time.time()
print("twin_handlers init", flush=True)


def echo(event: Any, context: Any) -> dict[str, Any]:
    """Returns what it got and where it ran."""
    return {
        "event": event,
        "pid": os.getpid(),
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "memory": context.memory_limit_in_mb,
        "arn": context.invoked_function_arn,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "client_custom": getattr(getattr(context, "client_context", None), "custom", None),
        "init_type": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"),
        "env": {
            k: v
            for k, v in os.environ.items()
            if k.startswith(("AWS_LAMBDA_", "LAMBDA_", "_HANDLER", "TWIN_"))
        },
        "sys_path": sys.path,
        "loaded_at": _LOADED,
    }


def sleep(event: Any, context: Any) -> dict[str, Any]:
    time.sleep(float(event.get("seconds", 0.5)))
    return {"pid": os.getpid(), "slept": event.get("seconds", 0.5)}


def crash(event: Any, context: Any) -> dict[str, Any]:
    if event.get("crash"):
        print("about to exit", flush=True)
        os._exit(3)
    return {"pid": os.getpid()}


def fail(event: Any, context: Any) -> dict[str, Any]:
    raise ValueError(f"bad input: {event.get('value')!r}")


def emf(event: Any, context: Any) -> dict[str, Any]:
    """Prints one EMF blob, as Powertools Metrics does."""
    blob = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": "TwinTest",
                    "Dimensions": [["service", "kind"]],
                    "Metrics": [
                        {"Name": "Things", "Unit": "Count"},
                        {"Name": "Took", "Unit": "Milliseconds"},
                    ],
                }
            ],
        },
        "service": "twin-test",
        "kind": str(event.get("kind", "a")),
        "Things": event.get("things", 1),
        "Took": [1.5, 2.5],
    }
    print(json.dumps(blob), flush=True)
    return {"ok": True}


def http(event: Any, context: Any) -> dict[str, Any]:
    """A Function URL handler: echoes the event back as the JSON body, with a cookie and a header."""
    return {
        "statusCode": 201,
        "headers": {"content-type": "application/json", "x-twin-test": "yes"},
        "cookies": ["a=1; Path=/", "b=2"],
        "body": json.dumps(event),
    }


def tick(event: Any, context: Any) -> None:
    """A schedule's target: says what woke it."""
    print(
        f"TICK {event.get('detail-type')} from {event.get('source')} rule {event.get('resources')}",
        flush=True,
    )


def relay(event: Any, context: Any) -> Any:
    """Invokes another function with the runtime's boto3, through AWS_ENDPOINT_URL (as a warmer does)."""
    import boto3

    response = boto3.client("lambda").invoke(
        FunctionName=event["target"],
        Qualifier=event.get("qualifier", "$LATEST"),
        Payload=json.dumps(event["payload"]),
    )
    return {"status": response["StatusCode"], "payload": json.loads(response["Payload"].read())}
