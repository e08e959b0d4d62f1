"""Hostile input: zero 5xx, zero hangs, every rejection a 4xx with {"error": {"code", "message"}}.

Fuzzing and hand-written cases ran once in the package's `report` (uvicorn and the twin's Function
URLs, a text and a tensor model); the tests here read it. Two things run in-process instead: the size
limit checked before the JSON decoder (counted), and arbitrary Lambda events to the handler.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.inference import dataplane
from functions.inference.app import create_app
from functions.inference.runtime import Runtime
from scripts.reliability import hostile, replies
from scripts.reliability.rawhttp import HttpTarget, send
from scripts.reliability.stack import uvicorn_app
from tests.conftest import context, event

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

KINDS = ("embedding", "tensor", "classifier", "reranker")
TARGETS = {f"{path} ({kind})" for path in ("uvicorn", "lambda") for kind in KINDS}


def by_case(report: dict[str, Any], target: str) -> dict[str, dict[str, Any]]:
    cases = next(c for c in report["hostile"]["cases"] if c["target"] == target)
    return {o["case"]: o for o in cases["outcomes"]}


def test_fuzzing_every_route_of_the_served_spec_finds_no_5xx_on_either_path(
    report: dict[str, Any],
    embedding_dir: Path,
    tensor_dir: Path,
    classifier_dir: Path,
    cross_encoder_dir: Path,
    make_runtime: Callable[..., Runtime],
) -> None:
    dirs = dict(zip(KINDS, (embedding_dir, tensor_dir, classifier_dir, cross_encoder_dir), strict=True))
    served = {kind: {r.path for r in make_runtime(d).router.routes} for kind, d in dirs.items()}
    # Each task's own routes are in its spec: /v1/classify for the classifier, /v1/rerank for the reranker.
    assert "/v1/classify" in served["classifier"] and "/v1/rerank" in served["reranker"]
    fuzzed = {f["target"]: f for f in report["hostile"]["fuzz"]}
    assert set(fuzzed) == TARGETS
    for target, run in fuzzed.items():
        routes = len(served[target.split("(")[1].rstrip(")")])
        assert run["operations"] == routes, target  # every route in the spec was fuzzed
        assert run["requests"] >= 2 * routes and not run["out_of_time"], target
        assert run["server_errors"] == 0 and run["bad"] == 0, (target, run["samples"])
        # schemathesis' checks: documented statuses and content types, bodies matching their schemas,
        # schema-violating requests refused.
        assert run["check_failures"] == {}, (target, run["samples"])
        assert run["statuses"].get("200", 0) > 0, target  # anchored cases reached the model
        assert set(run["verdicts"]) <= {replies.OK, replies.REJECTED}, target


def test_hand_written_hostile_requests_are_refused_with_a_reason(report: dict[str, Any]) -> None:
    cases = {c["target"]: c for c in report["hostile"]["cases"]}
    assert set(cases) == TARGETS
    for target, ran in cases.items():
        failed = [f"{o['case']}: {o['why']}" for o in ran["outcomes"] if not o["passed"]]
        assert failed == [], target
        assert ran["server_errors"] == 0 and ran["hangs"] == 0
    for path in ("uvicorn", "lambda"):
        text, tensor = by_case(report, f"{path} (embedding)"), by_case(report, f"{path} (tensor)")
        assert (text["10^5 inputs"]["status"], text["10^5 inputs"]["code"]) == (400, "too_many_inputs")
        assert text["invalid UTF-8"]["code"] == "invalid_json"
        assert text["text/plain"]["status"] == 415
        assert text["deeply nested arrays (100k)"]["status"] == 400
        assert tensor["NaN literal"]["status"] == 400 and tensor["1e39 (overflows float32)"]["code"] == "invalid_tensor"
        assert tensor["shape holds more than data"]["code"] == "invalid_tensor"
        over = text["body over PREHEAT_MAX_REQUEST_BYTES (2098176 B)"]
        assert (over["status"], over["verdict"], over["code"]) == (413, "rejected", "payload_too_large")
        for kind in ("classifier", "reranker"):
            labels = by_case(report, f"{path} ({kind})")
            assert (labels["10^5 inputs"]["status"], labels["10^5 inputs"]["code"]) == (400, "too_many_inputs")
            assert labels["invalid UTF-8"]["code"] == "invalid_json" and labels["unknown model"]["status"] == 404
    # Over Lambda's 6 MB: the Function URL refuses it in Lambda's shape; uvicorn's app by its own limit.
    # Both answer before the body is all sent (the declared length is checked first).
    # The Function URL is AWS_IAM (the stack's default): every unsigned, tampered, stale or mis-scoped
    # request is refused with Lambda's 403 before the function runs.
    signed = by_case(report, "lambda (embedding)")
    for name, error_type in hostile.AUTH.values():
        assert (signed[name]["status"], signed[name]["verdict"], signed[name]["code"]) == (403, "platform", error_type)
    lam = by_case(report, "lambda (embedding)")["body over Lambda's 6 MB"]
    app = by_case(report, "uvicorn (embedding)")["body over Lambda's 6 MB"]
    assert (lam["status"], lam["verdict"], lam["code"]) == (413, "platform", "RequestTooLargeException")
    assert (app["status"], app["verdict"], app["code"]) == (413, "rejected", "payload_too_large")
    assert lam["sent"] < lam["size"] and app["sent"] < app["size"]


def test_the_size_limit_is_enforced_before_the_json_decoder_runs(
    embedding_dir: Path,
    load_handler: Callable[..., ModuleType],
    make_runtime: Callable[..., Runtime],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decoded: list[int] = []
    real = dataplane.decode

    def counting(body: bytes, kind: Any) -> Any:
        decoded.append(len(body))
        return real(body, kind)

    monkeypatch.setattr(dataplane, "decode", counting)
    limit = 64 * 1024
    huge = json.dumps({"input": "a" * (2 * limit), "model": "tiny"}).encode()
    small = json.dumps({"input": "hello world", "model": "tiny"}).encode()

    # The Lambda path: a Function URL event straight into the handler.
    handler = load_handler(embedding_dir, PREHEAT_MAX_REQUEST_BYTES=str(limit))
    for body, status in ((huge, 413), (small, 200)):
        url_event = event("function_url", body=base64.b64encode(body).decode(), isBase64Encoded=True)
        assert handler.handler(url_event, context())["statusCode"] == status
    assert decoded == [len(small)]  # the huge body never reached the decoder

    # uvicorn: refused on its declared length, before the body is read (let alone parsed).
    decoded.clear()
    runtime = make_runtime(embedding_dir, max_request_bytes=limit)
    with uvicorn_app(create_app(runtime)) as url:
        target = HttpTarget("uvicorn", url)
        eight_mb = b'{"input": "' + b"a" * (8 << 20) + b'"}'
        reply = send(target, "POST", "/v1/embeddings", eight_mb, headers=[("content-type", "application/json")])
        assert reply.status == 413 and replies.error_shape(reply.body)["code"] == "payload_too_large"
        assert reply.sent < len(eight_mb) // 2
        lying = send(target, "POST", "/v1/embeddings", small, content_length=1 << 30, timeout=10,
                     headers=[("content-type", "application/json")])
        assert lying.status == 413  # a Content-Length that lies cannot make it wait for a gigabyte
    assert decoded == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"requestContext": {"http": {"method": 5}}}, "requestContext.http.method"),
        ({"rawPath": ["/v1/embeddings"]}, "rawPath"),
        ({"rawQueryString": {"a": 1}}, "rawQueryString"),
        # bytes(10**9) would have allocated a gigabyte from a 10-byte field.
        ({"body": 10**9, "isBase64Encoded": False}, "body"),
    ],
)
def test_a_direct_invoke_shaped_like_an_http_event_with_wrong_types_is_a_400(
    changes: dict[str, Any], field: str, embedding_dir: Path, load_handler: Callable[..., ModuleType]
) -> None:
    handler = load_handler(embedding_dir)
    shaped = event("function_url")
    for key, value in changes.items():
        if key == "requestContext":
            shaped["requestContext"]["http"].update(value["http"])
        else:
            shaped[key] = value
    result = handler.handler(shaped, context())
    assert result["statusCode"] == 400
    error = json.loads(result["body"])["error"]
    assert error["code"] == "malformed_event" and field in error["message"]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
ANY_TEXT = st.one_of(st.text(max_size=30), JSON)


def _http_v2() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"version": st.just("2.0"), "requestContext": st.fixed_dictionaries({"http": st.fixed_dictionaries(
            {}, optional={"method": st.sampled_from(["GET", "POST", "PUT"]) | ANY_TEXT, "path": ANY_TEXT})})},
        optional={
            "rawPath": st.sampled_from(["/v1/embeddings", "/v2/models/tiny/infer", "/invocations", "/v1/models"])
            | ANY_TEXT,
            "headers": st.dictionaries(st.text(max_size=15), ANY_TEXT, max_size=3) | JSON,
            "body": st.sampled_from(['{"input": "hi", "model": "tiny"}', "{}", "[]", "aGk="]) | ANY_TEXT,
            "isBase64Encoded": st.booleans() | JSON,
            "rawQueryString": ANY_TEXT,
        },
    )


def _rest_v1() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"httpMethod": st.sampled_from(["GET", "POST"]) | ANY_TEXT, "resource": st.just("/{proxy+}"),
         "requestContext": st.just({})},
        optional={"path": ANY_TEXT, "body": ANY_TEXT, "multiValueHeaders": JSON, "headers": JSON,
                  "isBase64Encoded": st.booleans()},
    )


def _alb() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"requestContext": st.just({"elb": {"targetGroupArn": "arn"}})},
        optional={"httpMethod": ANY_TEXT, "path": ANY_TEXT, "body": ANY_TEXT, "multiValueHeaders": JSON,
                  "headers": JSON},
    )


def _warmup() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"preheat": st.just("warmup")}, optional={"hold_ms": JSON})


EVENTS = st.one_of(_http_v2(), _rest_v1(), _alb(), _warmup(), JSON,
                   st.dictionaries(st.sampled_from(["input", "inputs", "model", "id"]), JSON, max_size=3))


def test_any_event_gets_an_answer_never_a_crash_or_a_5xx(
    embedding_dir: Path, load_handler: Callable[..., ModuleType]
) -> None:
    """A direct invoke can carry any JSON: every event, however malformed, gets a 4xx-shaped answer."""
    handler = load_handler(embedding_dir, PREHEAT_WARMUP_MAX_HOLD_MS="2")

    @settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(EVENTS)
    def check(raw: Any) -> None:
        result = handler.handler(raw, context())
        if isinstance(result, dict) and "statusCode" in result:
            assert result["statusCode"] < 500, result
            body = result["body"]
            body = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
            if result["statusCode"] >= 400:
                assert replies.error_shape(body) is not None, result
        elif isinstance(result, dict) and "error" in result:
            assert result["error"].get("code") not in (None, "internal_error"), result
            assert result["error"].get("message"), result

    check()
