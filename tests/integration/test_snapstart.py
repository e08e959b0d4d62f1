"""SnapStart: the handler's hooks, run by awslambdaric's own hook runner in the order Lambda runs them.

Lambda takes one snapshot after init (before-snapshot hooks first) and restores many environments
from it, each running the after-restore hooks. Here: a process inits the SnapStart handler with a
real Redis shared tier, runs the before-snapshot hooks, then forks: every child starts from the
same memory, as clones restored from one snapshot do. Each clone runs the after-restore hooks and
answers a request. The clones must have their own instance ids, their own random state and their
own Redis connections; control clones that skip the after-restore hooks show what would go wrong.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts.cache_servers import RedisServer, redis_binary

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, os, random, sys

import numpy as np
from awslambdaric import lambda_runtime_hooks_runner as hooks  # what the Lambda runtime calls

import functions.inference.snapstart as entry

runtime = entry._entry.RUNTIME
cached = runtime.task.source  # the rows behind the cache
assert cached.shared is not None and cached.shared.wait_ready(10), "the Redis tier did not connect"
pool = cached.shared.tier._pool


def ports():
    return sorted(conn.sock.getsockname()[1] for conn in pool._idle)


before = ports()  # the connection opened at init (the tier connects while the model loads)
warmups = []
original = runtime.task.warmup
runtime.task.warmup = lambda: (warmups.append(1), original())[1]
np.random.random()  # numpy's global generator exists before the snapshot (any init may touch it)
hooks.run_before_snapshot()  # checkpoint
snapshot_random = random.getstate()
out = {"before": before, "warmups_at_checkpoint": len(warmups), "clones": []}
body = json.dumps({"input": "a request after the restore", "model": "tiny"})
event = {
    "version": "2.0", "routeKey": "$default", "rawPath": "/v1/embeddings", "rawQueryString": "",
    "headers": {"content-type": "application/json", "host": "fn.lambda-url.us-east-1.on.aws"},
    "requestContext": {"http": {"method": "POST", "path": "/v1/embeddings", "protocol": "HTTP/1.1",
                                "sourceIp": "127.0.0.1", "userAgent": "test"},
                       "requestId": "r", "stage": "$default", "domainName": "fn.lambda-url.us-east-1.on.aws"},
    "body": body, "isBase64Encoded": False,
}
for hooked in (True, True, False, False):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # a clone restored from the snapshot
        os.close(read)
        # fork() re-seeds `random` in the child (an at-fork hook); a restored snapshot does not:
        # its memory, the generator's state included, is the snapshot's.
        random.setstate(snapshot_random)
        if hooked:
            hooks.run_after_restore()
        ctx = type("Ctx", (), {"aws_request_id": f"clone-{os.getpid()}"})()
        result = entry.handler(event, ctx)
        report = {
            "hooked": hooked,
            "status": result["statusCode"],
            "start": result["headers"].get("x-preheat-start"),
            "instance_id": entry._entry.TRACKER.instance_id,
            "random": random.random(),
            "numpy": float(np.random.random()),
            "ports": ports(),
        }
        os.write(write, json.dumps(report).encode())
        os._exit(0)
    os.close(write)
    data = b""
    while chunk := os.read(read, 65536):
        data += chunk
    os.waitpid(pid, 0)
    out["clones"].append(json.loads(data))
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    if redis_binary() is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is missing in CI: .ci/run must install it (apt-get install redis-server)")
        pytest.skip("redis-server is not installed here: apt-get install -y redis-server (.ci/run does it)")
    with RedisServer() as server:
        yield server.url


def run_snapshot_and_clones(model_dir: Path, redis_url: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PREHEAT_MODEL_DIR": str(model_dir),
        "PREHEAT_THREADS": "1",
        "PREHEAT_CACHE_REDIS_URL": redis_url,
        "PREHEAT_CACHE_METRICS_INTERVAL_MS": "0",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start",
    }
    done = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    return result


def test_checkpoint_then_restore_gives_each_clone_its_own_state(embedding_dir: Path, redis_url: str) -> None:
    result = run_snapshot_and_clones(embedding_dir, redis_url)
    assert len(result["before"]) == 1  # init opened one Redis connection, which the snapshot holds
    assert result["warmups_at_checkpoint"] == 1  # the before-snapshot hook ran one more inference
    hooked = [c for c in result["clones"] if c["hooked"]]
    control = [c for c in result["clones"] if not c["hooked"]]
    for clone in result["clones"]:
        assert clone["status"] == 200
        assert clone["start"] == "restore"  # the first invocation after a restore, not a cold start
    # Instance ids are drawn at the first invocation, after the restore: distinct in every clone.
    ids = [c["instance_id"] for c in result["clones"]]
    assert len(set(ids)) == len(ids)
    # Randomness: re-seeded per clone; without the hook, clones repeat each other's "random" numbers.
    assert hooked[0]["random"] != hooked[1]["random"] and hooked[0]["numpy"] != hooked[1]["numpy"]
    assert control[0]["random"] == control[1]["random"] and control[0]["numpy"] == control[1]["numpy"]
    # Clients: the restored clone drops the snapshot's socket and connects afresh; without the hook
    # every clone would write on the one socket the snapshot captured.
    snapshot_port = result["before"][0]
    for clone in hooked:
        assert clone["ports"] and snapshot_port not in clone["ports"]
    assert hooked[0]["ports"] != hooked[1]["ports"]
    for clone in control:
        assert clone["ports"] == [snapshot_port]
