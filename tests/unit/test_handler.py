"""The Lambda handler driven with Function URL, API Gateway v2/v1, ALB and scheduled events."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from tests.conftest import context, emf_lines, event, log_lines
from tests.support import tiny_models

LoadHandler = Callable[..., ModuleType]


def body_of(result: dict[str, Any]) -> Any:
    raw = result["body"]
    return json.loads(base64.b64decode(raw) if result.get("isBase64Encoded") else raw)


@pytest.mark.parametrize("name", ["function_url", "http_api_v2", "rest_api_v1", "alb", "alb_multi_value"])
def test_http_events_get_embeddings(name: str, embedding_dir: Path, load_handler: LoadHandler) -> None:
    handler = load_handler(embedding_dir, PREHEAT_BASE_PATH="/prod")
    result = handler.handler(event(name), context())
    assert result["statusCode"] == 200
    headers = result["multiValueHeaders"] if name == "alb_multi_value" else result["headers"]
    flat = {k: (v[0] if isinstance(v, list) else v) for k, v in headers.items()}
    assert flat["content-type"] == "application/json"
    assert flat["x-preheat-start"] == "cold"
    assert flat["x-request-id"] == "req-0001"
    np.testing.assert_allclose(
        body_of(result)["data"][0]["embedding"], tiny_models.expected_embedding("hello world"), atol=1e-6
    )
    if name.startswith("alb"):
        assert result["statusDescription"] == "200 OK"
        assert ("multiValueHeaders" in result) == (name == "alb_multi_value")


def test_http_errors_keep_the_event_source_shape(embedding_dir: Path, load_handler: LoadHandler) -> None:
    handler = load_handler(embedding_dir)
    bad = event("alb", body='{"input": ""}', isBase64Encoded=False)
    result = handler.handler(bad, context())
    assert result["statusCode"] == 400 and result["statusDescription"] == "400 Bad Request"
    assert body_of(result)["error"]["code"] == "invalid_request"
    broken = event("function_url", body="not base64!!", isBase64Encoded=True)
    assert body_of(handler.handler(broken, context()))["error"]["code"] == "invalid_request"


def test_a_malformed_http_event_is_a_400_not_a_crash(embedding_dir: Path, load_handler: LoadHandler) -> None:
    handler = load_handler(embedding_dir)
    malformed = event("function_url")
    del malformed["requestContext"]["http"]["method"]
    result = handler.handler(malformed, context())
    assert result["statusCode"] == 400 and body_of(result)["error"]["code"] == "malformed_event"


def test_direct_invoke_takes_a_plain_payload(embedding_dir: Path, load_handler: LoadHandler) -> None:
    handler = load_handler(embedding_dir)
    result = handler.handler({"input": ["hello world"], "model": "tiny"}, context())
    np.testing.assert_allclose(
        result["data"][0]["embedding"], tiny_models.expected_embedding("hello world"), atol=1e-6
    )
    assert handler.handler({"input": []}, context())["error"]["code"] == "invalid_request"
    assert handler.handler(["not", "an", "object"], context())["error"]["code"] == "unsupported_event"


def test_openapi_is_served_through_mangum(embedding_dir: Path, load_handler: LoadHandler) -> None:
    handler = load_handler(embedding_dir)
    result = handler.handler(
        event(
            "function_url",
            rawPath="/openapi.json",
            body="",
            isBase64Encoded=False,
            requestContext={
                **event("function_url")["requestContext"],
                "http": {
                    **event("function_url")["requestContext"]["http"],
                    "method": "GET",
                    "path": "/openapi.json",
                },
            },
        ),
        context(),
    )
    assert result["statusCode"] == 200
    spec = body_of(result)
    assert "/v1/embeddings" in spec["paths"] and "EmbeddingsRequest" in spec["components"]["schemas"]


# -- cold and warm -------------------------------------------------------------------------------


def metrics(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return emf_lines(capsys.readouterr().out, kind="invocation")


def test_cold_then_warm_with_metrics(
    embedding_dir: Path, load_handler: LoadHandler, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = load_handler(
        embedding_dir, POWERTOOLS_METRICS_NAMESPACE="PreheatTest", POWERTOOLS_SERVICE_NAME="svc"
    )
    capsys.readouterr()
    first = handler.handler(event("function_url"), context("a"))
    second = handler.handler(event("function_url"), context("b"))
    assert first["headers"]["x-preheat-start"] == "cold"
    assert second["headers"]["x-preheat-start"] == "warm"
    out = capsys.readouterr().out
    cold, warm = emf_lines(out, kind="invocation")
    for blob in (cold, warm):
        (directive,) = blob["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "PreheatTest"
        assert sorted(directive["Dimensions"][0]) == ["service", "start"]
        assert blob["service"] == "svc" and blob["Invocations"] == [1.0]
    assert cold["start"] == "cold" and cold["ColdStarts"] == [1.0]
    assert cold["InitDuration"][0] == pytest.approx(handler.RUNTIME.init_ms)
    assert warm["start"] == "warm" and warm["ColdStarts"] == [0.0] and "InitDuration" not in warm
    logs = log_lines(out)
    # A cold request waited for this instance's init: its Latency adds init to the handler's time.
    assert cold["Latency"][0] == pytest.approx(logs[0]["latency_ms"] + handler.RUNTIME.init_ms, abs=0.01)
    assert warm["Latency"][0] == pytest.approx(logs[1]["latency_ms"], abs=0.01)
    assert [entry["start"] for entry in logs] == ["cold", "warm"]
    assert all(entry["route"] == "embeddings" and entry["status"] == 200 for entry in logs)
    # One line per invocation: the log record rides in its EMF blob, as Powertools' metadata does.
    assert len(logs) == 2 and all("_aws" in entry for entry in logs)
    assert [entry["message"] for entry in logs] == ["invocation", "invocation"]
    assert "hello world" not in out  # request bodies are never logged


@pytest.mark.parametrize(
    ("init_type", "first"),
    [("provisioned-concurrency", "provisioned"), ("snap-start", "restore"), ("on-demand", "cold")],
)
def test_first_invocation_follows_the_initialization_type(
    init_type: str,
    first: str,
    embedding_dir: Path,
    load_handler: LoadHandler,
    capsys: pytest.CaptureFixture[str],
) -> None:
    handler = load_handler(embedding_dir, AWS_LAMBDA_INITIALIZATION_TYPE=init_type)
    capsys.readouterr()
    kinds = [
        handler.handler(event("function_url"), context())["headers"]["x-preheat-start"] for _ in range(2)
    ]
    assert kinds == [first, "warm"]
    out = capsys.readouterr().out
    blobs, logs = emf_lines(out, kind="invocation"), log_lines(out)
    assert [b["ColdStarts"] for b in blobs] == [[1.0 if first == "cold" else 0.0], [0.0]]
    waited = handler.RUNTIME.init_ms if first == "cold" else 0.0  # nobody waited for a provisioned init
    assert blobs[0]["Latency"][0] == pytest.approx(logs[0]["latency_ms"] + waited, abs=0.01)


def test_warmups_never_touch_the_model_or_latency(
    embedding_dir: Path, load_handler: LoadHandler, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = load_handler(embedding_dir)

    class Untouchable:
        def embed(self, texts: list[str]) -> None:
            raise AssertionError("a warm-up ran the model")

    handler.RUNTIME.plane.embedder = Untouchable()
    capsys.readouterr()
    ping = handler.handler({"preheat": "warmup", "hold_ms": 20}, context())
    scheduled = handler.handler(event("eventbridge_scheduled"), context())
    assert ping["preheat"] == "warmup" and ping["cold"] is True and ping["held_ms"] == 20
    assert scheduled["cold"] is False and scheduled["instance_id"] == ping["instance_id"]
    blobs = metrics(capsys)
    assert [b["start"] for b in blobs] == ["warmup", "warmup"]
    assert all("Latency" not in b and b["ColdStarts"] == [0.0] for b in blobs)
    assert "InitDuration" in blobs[0]


def test_a_warmup_absorbs_the_cold_start(embedding_dir: Path, load_handler: LoadHandler) -> None:
    handler = load_handler(embedding_dir)
    handler.handler({"preheat": "warmup"}, context())
    assert handler.handler(event("function_url"), context())["headers"]["x-preheat-start"] == "warm"


@pytest.mark.parametrize("hold", [-1, 10_000, "5", True])
def test_a_bad_hold_is_refused_without_sleeping(
    hold: object, embedding_dir: Path, load_handler: LoadHandler
) -> None:
    handler = load_handler(embedding_dir, PREHEAT_WARMUP_MAX_HOLD_MS="1000")
    result = handler.handler({"preheat": "warmup", "hold_ms": hold}, context())
    assert result["error"]["code"] == "invalid_hold" and "1000" in result["error"]["message"]


def test_failures_are_counted_and_classified(
    embedding_dir: Path, load_handler: LoadHandler, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = load_handler(embedding_dir)

    class Broken:
        dimensions = 8

        def embed(self, texts: list[str]) -> None:
            raise RuntimeError("boom")

    handler.RUNTIME.plane.embedder = Broken()
    capsys.readouterr()
    result = handler.handler(event("function_url"), context("req-x"))
    bad = handler.handler(event("function_url", body="{", isBase64Encoded=False), context("req-y"))
    assert result["statusCode"] == 500 and body_of(result)["error"]["request_id"] == "req-x"
    assert bad["statusCode"] == 400
    out = capsys.readouterr().out
    blobs = emf_lines(out, kind="invocation")
    assert [(b["start"], b["Errors"], b["ClientErrors"]) for b in blobs] == [
        ("cold", [1.0], [0.0]),
        ("warm", [0.0], [1.0]),
    ]
    # The core's exception log is a Powertools JSON line carrying the request id and the traceback.
    (logged,) = [e for e in log_lines(out) if e["level"] == "ERROR"]
    assert logged["request_id"] == "req-x" and "RuntimeError: boom" in logged["exception"]


def test_an_escaping_exception_is_still_recorded(
    embedding_dir: Path, load_handler: LoadHandler, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = load_handler(embedding_dir)

    def explode(*args: Any) -> Any:
        raise MemoryError("simulated")

    handler._serve = explode
    capsys.readouterr()
    with pytest.raises(MemoryError):
        handler.handler(event("function_url"), context())
    (blob,) = metrics(capsys)
    assert blob["start"] == "cold" and blob["Errors"] == [1.0]


def test_init_fails_on_bad_config_naming_the_key(embedding_dir: Path, load_handler: LoadHandler) -> None:
    from functions.inference.errors import ConfigError

    with pytest.raises(ConfigError, match="PREHEAT_MAX_INPUTS"):
        load_handler(embedding_dir, PREHEAT_MAX_INPUTS="lots")
