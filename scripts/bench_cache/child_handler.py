"""A child of the cache bench's cold path, in a fresh interpreter: a Lambda-like cold start of the
handler (its import: model, cache, tier connect) and its first request, a miss.

    python -m scripts.bench_cache.child_handler UNIQUE

UNIQUE makes the request's text one nobody has sent before; prints [init ms, first request ms] as JSON.
"""

import json
import sys
import time
from types import SimpleNamespace


def main(unique: str) -> None:
    started = time.perf_counter()
    import functions.inference.handler as h

    ready = time.perf_counter()
    body = json.dumps(
        {"input": "a sentence nobody has sent before, number " + unique, "model": h.RUNTIME.manifest.name}
    )
    event = {
        "version": "2.0",
        "rawPath": "/v1/embeddings",
        "rawQueryString": "",
        "body": body,
        "headers": {"content-type": "application/json"},
        "isBase64Encoded": False,
        "requestContext": {"http": {"method": "POST", "path": "/v1/embeddings"}},
    }
    result = h.handler(event, SimpleNamespace(aws_request_id="bench"))
    done = time.perf_counter()
    assert result["statusCode"] == 200 and result["headers"]["x-preheat-cache"] == "miss", result
    print(json.dumps([(ready - started) * 1000, (done - ready) * 1000]))


if __name__ == "__main__":
    main(*sys.argv[1:])
