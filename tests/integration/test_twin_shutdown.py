"""Lambda's shutdown phase in the twin, and what preheat uses it for: the cache counters of an
instance that is never called again still reach CloudWatch."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts.twin.client import TwinClient
from scripts.twin.config import FunctionSpec, TwinConfig
from tests.support.twin import ROOT, running, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

S = "tests.support.twin_shutdown"


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory, embedding_dir: Path) -> Iterator[TwinClient]:
    tiny = {
        "PREHEAT_MODEL_DIR": str(embedding_dir),
        "PREHEAT_THREADS": "1",
        "POWERTOOLS_SERVICE_NAME": "shutdown-test",
        # No flush on the interval: only the end of the environment can bring the counts out.
        "PREHEAT_CACHE_METRICS_INTERVAL_MS": "60000",
    }
    config = TwinConfig(
        functions=(
            FunctionSpec("graceful", f"{S}.handler", ROOT),
            # awslambdaric polls from a thread on python3.12+ runtimes, so SIGTERM reaches the main
            # thread's handler there; elsewhere the extension thread catches it. Both ways, here.
            FunctionSpec("graceful312", f"{S}.handler", ROOT, env={"AWS_EXECUTION_ENV": "AWS_Lambda_python3.12"}),
            FunctionSpec("unregistered", f"{S}.unregistered", ROOT),
            FunctionSpec("probe", f"{S}.probe", ROOT),
            FunctionSpec("tiny", "functions.inference.handler.handler", ROOT, env=tiny),
        ),
        state_dir=tmp_path_factory.mktemp("twin-shutdown"),
    )
    with running(config) as client:
        yield client


def invoke(twin: TwinClient, name: str, payload: Any = None) -> Any:
    lam = twin.boto3_client("lambda", retries={"total_max_attempts": 1})
    response = lam.invoke(FunctionName=name, Payload=json.dumps(payload or {}).encode())
    return json.loads(response["Payload"].read())


def log_text(twin: TwinClient, name: str) -> str:
    return Path(twin.state.functions[name]["log_file"]).read_text()


@pytest.mark.parametrize("name", ["graceful", "graceful312"])
def test_an_environment_with_an_extension_gets_sigterm_before_it_ends(twin: TwinClient, name: str) -> None:
    first, second = invoke(twin, name), invoke(twin, name)
    assert first["arranged"] is True and first["pid"] == second["pid"]
    assert "EXTENSION\tName: preheat-shutdown\tState: Ready\tEvents: []" in log_text(twin, name)
    ended = time.time()
    assert twin.reset(name) == 1
    line = wait_for(
        lambda: re.search(rf"SHUTDOWN pid={first['pid']} served=2 at=([0-9.]+)", log_text(twin, name)),
        timeout=5, what="the SIGTERM callback's line",
    )
    assert float(line.group(1)) - ended < 0.5  # within Lambda's 500 ms shutdown phase
    gone = wait_for(lambda: not [i for f in twin.functions() if f["name"] == name for i in f["instances"]],
                    timeout=5, what="the instance to be gone")
    assert gone


def test_without_an_extension_there_is_no_shutdown_phase(twin: TwinClient) -> None:
    pid = invoke(twin, "unregistered")["pid"]
    twin.reset("unregistered")
    time.sleep(1.0)
    assert f"SIGTERM pid={pid}" not in log_text(twin, "unregistered")


def test_extensions_register_during_init_only(twin: TwinClient) -> None:
    assert invoke(twin, "probe") == {"late_register": 403, "unknown_next": 403}


def test_cache_counts_of_an_instance_never_called_again_reach_cloudwatch(twin: TwinClient) -> None:
    body = json.dumps({"input": "the same text twice", "model": "tiny"})
    event = {"version": "2.0", "rawPath": "/v1/embeddings", "headers": {"content-type": "application/json"},
             "requestContext": {"http": {"method": "POST", "path": "/v1/embeddings"}}, "body": body,
             "isBase64Encoded": False}
    started = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    assert invoke(twin, "tiny", event)["statusCode"] == 200
    assert invoke(twin, "tiny", event)["statusCode"] == 200
    cloudwatch = twin.boto3_client("cloudwatch")

    def hits() -> float:
        twin.flush()
        points = cloudwatch.get_metric_statistics(
            Namespace="Preheat", MetricName="CacheHits", Statistics=["Sum"], Period=60,
            Dimensions=[{"Name": "service", "Value": "shutdown-test"}, {"Name": "level", "Value": "memory"}],
            StartTime=started, EndTime=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1),
        )["Datapoints"]
        return sum(p["Sum"] for p in points)

    assert hits() == 0  # the interval is a minute: nothing flushed yet
    twin.reset("tiny")  # Lambda reclaims the idle environment; nobody calls it again
    assert wait_for(hits, timeout=10, what="CacheHits from the shutdown phase") == 1
