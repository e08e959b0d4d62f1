"""The warmer Lambda against real inference-handler instances behind a Lambda Invoke endpoint.

The endpoint (tests/support/aws_front.py) starts one instance of functions.inference.handler per
concurrent request, as Lambda does; the warm-up answers are the handler's own.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import context, emf_lines, event
from tests.support.aws_front import AwsFront, LambdaStandIn
from warmers import clients

pytestmark = pytest.mark.integration


@pytest.fixture
def lambda_api(
    embedding_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[AwsFront, LambdaStandIn]]:
    monkeypatch.setenv("PREHEAT_MODEL_DIR", str(embedding_dir))
    monkeypatch.setenv("PREHEAT_THREADS", "1")
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    with AwsFront() as front:
        monkeypatch.setenv("AWS_ENDPOINT_URL", front.url)
        clients.reset()
        yield front, LambdaStandIn(front)
    clients.reset()


@pytest.fixture
def load_warmer(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., ModuleType]]:
    def load(**env: str) -> ModuleType:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        sys.modules.pop("warmers.warmer", None)
        return importlib.import_module("warmers.warmer")

    yield load
    sys.modules.pop("warmers.warmer", None)


def test_concurrent_pings_land_on_distinct_instances_cold_then_warm(lambda_api, load_warmer, capsys):
    _, stand_in = lambda_api
    warmer = load_warmer(PREHEAT_WARM_FUNCTION="preheat-inference", PREHEAT_WARM_QUALIFIER="live")

    first = warmer.handler({"concurrency": 3, "hold_ms": 300}, context())
    assert first["errors"] == []
    assert (first["requested"], first["answered"], first["instances"], first["cold"]) == (3, 3, 3, 3)
    assert stand_in.instances("preheat-inference") == 3

    second = warmer.handler({"concurrency": 3, "hold_ms": 300}, context())
    assert (second["answered"], second["instances"], second["cold"]) == (3, 3, 0)
    assert stand_in.instances("preheat-inference") == 3  # the same three, refreshed
    metrics = [b for b in emf_lines(capsys.readouterr().out) if "WarmupInstances" in b]
    assert [m["WarmupInstances"] for m in metrics] == [3.0, 3.0]
    assert [m["WarmupColdStarts"] for m in metrics] == [3.0, 0.0]


def test_a_larger_fan_out_starts_only_the_missing_instances(lambda_api, load_warmer):
    _, stand_in = lambda_api
    warmer = load_warmer(PREHEAT_WARM_FUNCTION="fn")
    warmer.handler({"concurrency": 2, "hold_ms": 250}, context())
    grown = warmer.handler({"concurrency": 4, "hold_ms": 250}, context())
    assert (grown["instances"], grown["cold"]) == (4, 2)
    assert stand_in.instances("fn") == 4


def test_scheduled_event_uses_the_configured_fan_out(lambda_api, load_warmer):
    _, stand_in = lambda_api
    warmer = load_warmer(PREHEAT_WARM_FUNCTION="fn", PREHEAT_WARM_CONCURRENCY="2", PREHEAT_WARM_HOLD_MS="250")
    result = warmer.handler(event("eventbridge_scheduled"), context())
    assert (result["requested"], result["instances"]) == (2, 2)
    assert stand_in.instances("fn") == 2


def test_fan_out_is_clamped_to_the_maximum(lambda_api, load_warmer):
    _, stand_in = lambda_api
    warmer = load_warmer(PREHEAT_WARM_FUNCTION="fn", PREHEAT_WARM_MAX_CONCURRENCY="2")
    result = warmer.handler({"concurrency": 9, "hold_ms": 200}, context())
    assert result["requested"] == 2 and result["clamped_from"] == 9
    assert stand_in.instances("fn") == 2


@pytest.mark.parametrize(
    ("event_", "code"),
    [
        ({"concurrency": "3"}, "invalid_concurrency"),
        ({"concurrency": -1}, "invalid_concurrency"),
        ({"concurrency": True}, "invalid_concurrency"),
        ({"hold_ms": 1.5}, "invalid_hold"),
        ({"hold_ms": 600_000}, "invalid_hold"),
        ({"function": ""}, "invalid_function"),
        ({"qualifier": 7}, "invalid_qualifier"),
    ],
)
def test_bad_events_get_an_error_naming_the_field_and_invoke_nothing(lambda_api, load_warmer, event_, code):
    front, _ = lambda_api
    warmer = load_warmer(PREHEAT_WARM_FUNCTION="fn")
    result = warmer.handler(event_, context())
    assert result["error"]["code"] == code
    assert front.count("Invoke") == 0


def test_throttled_pings_are_retried(lambda_api, load_warmer):
    front, _ = lambda_api
    front.fail("Invoke", 2)  # TooManyRequestsException, twice
    warmer = load_warmer(PREHEAT_WARM_FUNCTION="fn", PREHEAT_RETRY_BASE_MS="5", PREHEAT_RETRY_ATTEMPTS="3")
    result = warmer.handler({"concurrency": 1, "hold_ms": 0}, context())
    assert result["answered"] == 1 and result["errors"] == []
    assert front.count("Invoke") == 3


def test_persistent_throttling_is_reported_not_raised(lambda_api, load_warmer):
    front, _ = lambda_api
    front.fail("Invoke", 100)
    warmer = load_warmer(PREHEAT_WARM_FUNCTION="fn", PREHEAT_RETRY_BASE_MS="1", PREHEAT_RETRY_ATTEMPTS="2")
    result = warmer.handler({"concurrency": 2, "hold_ms": 0}, context())
    assert result["answered"] == 0 and result["error_count"] == 2
    assert all(e.startswith("TooManyRequestsException") for e in result["errors"])
    assert front.count("Invoke") == 4


def test_a_function_that_is_not_preheat_is_reported(lambda_api, load_warmer):
    front, _ = lambda_api
    front.on("Invoke", lambda req: (200, {}, json.dumps({"statusCode": 200}).encode()))
    warmer = load_warmer(PREHEAT_WARM_FUNCTION="someone-elses")
    result = warmer.handler({"concurrency": 1}, context())
    assert result["answered"] == 0 and result["errors"][0].startswith("not_preheat")


def test_hold_above_the_functions_limit_comes_back_as_its_error(lambda_api, load_warmer, monkeypatch):
    monkeypatch.setenv("PREHEAT_WARMUP_MAX_HOLD_MS", "100")
    warmer = load_warmer(PREHEAT_WARM_FUNCTION="fn")
    result = warmer.handler({"concurrency": 1, "hold_ms": 500}, context())
    assert result["answered"] == 0 and result["errors"][0].startswith("invalid_hold")


def test_missing_target_fails_at_init_naming_the_variable(load_warmer, monkeypatch):
    monkeypatch.delenv("PREHEAT_WARM_FUNCTION", raising=False)
    with pytest.raises(ValueError, match="PREHEAT_WARM_FUNCTION"):
        load_warmer()
    with pytest.raises(ValueError, match="PREHEAT_WARM_MAX_CONCURRENCY"):
        load_warmer(PREHEAT_WARM_FUNCTION="fn", PREHEAT_WARM_MAX_CONCURRENCY="lots")
