"""The twin's pure parts: config, EMF parsing, Function URL events and responses, Lambda's environment."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from layers import deps_layer, model_layer
from scripts.twin import emf, tls
from scripts.twin.config import FunctionSpec, Schedule, TwinConfig, TwinConfigError
from scripts.twin.function_url import to_event, to_response, url_id
from scripts.twin.http11 import Request
from scripts.twin.instance import Launch, environment, resolve_opt
from scripts.twin.invoke_api import split_name
from scripts.twin.stack import default_config
from scripts.twin.traffic import percentile
from scripts.twin.worker import exit_description
from tests.conftest import EVENTS, ROOT


def spec(**changes: Any) -> FunctionSpec:
    return FunctionSpec(**{"name": "f", "handler": "m.h", "code_dir": ROOT, **changes})


# --- config ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(1 minute)", 60), ("rate(5 minutes)", 300), ("rate(2 hours)", 7200), ("rate(1 day)", 86400)],
)
def test_rate_expressions(expression: str, seconds: float) -> None:
    assert Schedule("s", expression, "f").interval_s == seconds


@pytest.mark.parametrize(
    "expression",
    [
        "rate(1 minutes)",
        "rate(5 minute)",
        "rate(0 minutes)",
        "cron(0 12 * * ? *)",
        "rate(10 seconds)",
        "every minute",
    ],
)
def test_bad_rate_expressions_name_the_schedule(expression: str) -> None:
    with pytest.raises(TwinConfigError, match="schedule 's'"):
        _ = Schedule("s", expression, "f").interval_s


def test_qualifiers_resolve_to_versions() -> None:
    f = spec(aliases=("live", "blue"))
    assert f.resolve_qualifier(None) == "$LATEST"
    assert f.resolve_qualifier("$LATEST") == "$LATEST"
    assert f.resolve_qualifier("live") == "1" and f.resolve_qualifier("blue") == "1"
    assert f.resolve_qualifier("1") == "1"
    assert f.resolve_qualifier("2") is None and f.resolve_qualifier("green") is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"functions": []}, "at least one function"),
        (
            {"functions": [{"name": "f", "handler": "nodot", "code_dir": str(ROOT)}]},
            r"functions\[0\].handler",
        ),
        (
            {"functions": [{"name": "f", "handler": "m.h", "code_dir": "/no/such/dir"}]},
            r"functions\[0\].code_dir",
        ),
        (
            {"functions": [{"name": "f", "handler": "m.h", "code_dir": str(ROOT), "memory_mb": 64}]},
            "memory_mb",
        ),
        (
            {"functions": [{"name": "f", "handler": "m.h", "code_dir": str(ROOT), "memory_mb": "big"}]},
            "memory_mb must be an integer",
        ),
        (
            {"functions": [{"name": "f", "handler": "m.h", "code_dir": str(ROOT), "timeout_s": 901}]},
            "timeout_s",
        ),
        (
            {
                "functions": [
                    {"name": "f", "handler": "m.h", "code_dir": str(ROOT), "provisioned": {"$LATEST": 1}}
                ]
            },
            "provisioned concurrency needs an alias",
        ),
        (
            {"functions": [{"name": "f", "handler": "m.h", "code_dir": str(ROOT), "colour": "red"}]},
            "unknown key.*colour",
        ),
        ({"functions": [{"name": "f", "handler": "m.h", "code_dir": str(ROOT)}] * 2}, "used twice"),
        (
            {
                "functions": [{"name": "f", "handler": "m.h", "code_dir": str(ROOT)}],
                "schedules": [{"name": "s", "expression": "rate(1 minute)", "function": "g"}],
            },
            r"schedules\[0\].function 'g'",
        ),
        (
            {"functions": [{"name": "f", "handler": "m.h", "code_dir": str(ROOT)}], "max_instances": 0},
            "max_instances",
        ),
    ],
)
def test_bad_config_fails_naming_the_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(TwinConfigError, match=message):
        TwinConfig.from_dict(data)


def test_config_round_trips_through_json() -> None:
    config = TwinConfig(
        functions=(
            spec(env={"A": "1"}, provisioned={"live": 2}, reserved_concurrency=3, layers=(ROOT / "tests",)),
        ),
        schedules=(Schedule("s", "rate(2 minutes)", "f", "live", {"x": 1}),),
        keep_alive_s=12.5,
    )
    again = TwinConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config


def test_default_config_runs_the_inference_function_with_its_url_on_live() -> None:
    config = default_config(ROOT)
    inference = config.function("preheat-inference")
    assert inference is not None
    assert inference.handler == "functions.inference.handler.handler"
    assert inference.url_qualifier == "live"
    model = inference.env["PREHEAT_MODEL_DIR"]
    layer_built = model_layer.holds(ROOT / "build/layers/model-minilm", ROOT / "build/models/minilm")
    assert model == "/opt/model" if layer_built else model.endswith("build/models/minilm")
    deps = ROOT / "build/layers/deps-local"
    current = (deps / "python").is_dir() and deps_layer.is_current(deps, deps_layer.local_target())
    assert inference.isolated == current


# --- EMF --------------------------------------------------------------------------------------------


def test_emf_lines_become_metric_data_per_dimension_set() -> None:
    line = json.dumps(
        {
            "_aws": {
                "Timestamp": 1795435200000,
                "CloudWatchMetrics": [
                    {
                        "Namespace": "Preheat",
                        "Dimensions": [["service", "start"], ["service"]],
                        "Metrics": [
                            {"Name": "Latency", "Unit": "Milliseconds"},
                            {"Name": "Hits"},
                            {"Name": "Fast", "Unit": "Count", "StorageResolution": 1},
                            {"Name": "Absent"},
                        ],
                    }
                ],
            },
            "service": "preheat",
            "start": "cold",
            "Latency": [12.5, 3.0],
            "Hits": 2,
            "Fast": 1,
        }
    )
    entries = emf.parse(line)
    assert {e.namespace for e in entries} == {"Preheat"}
    by_key = {(e.datum["MetricName"], len(e.datum["Dimensions"])): e.datum for e in entries}
    assert set(by_key) == {("Latency", 2), ("Latency", 1), ("Hits", 2), ("Hits", 1), ("Fast", 2), ("Fast", 1)}
    latency = by_key[("Latency", 2)]
    assert latency["Values"] == [12.5, 3.0] and latency["Counts"] == [1.0, 1.0]
    assert latency["Unit"] == "Milliseconds"
    assert latency["Dimensions"] == [
        {"Name": "service", "Value": "preheat"},
        {"Name": "start", "Value": "cold"},
    ]
    assert latency["Timestamp"] == dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
    assert by_key[("Hits", 1)]["Unit"] == "None"
    assert by_key[("Fast", 1)]["StorageResolution"] == 1


@pytest.mark.parametrize(
    "line", ["plain text", '{"message": "a log"}', '{"_aws": {"Timestamp": "x"}}', '{"_aws": broken', ""]
)
def test_non_emf_and_malformed_lines_are_ignored(line: str) -> None:
    assert emf.parse(line) == []


# --- Function URL -------------------------------------------------------------------------------------


def request(**changes: Any) -> Request:
    base: dict[str, Any] = {
        "method": "POST",
        "target": "/v1/embeddings?a=1&a=2&b=",
        "body": b'{"input": "hi"}',
        "client": "127.0.0.1",
        "scheme": "https",
        "headers": (
            ("host", "127.0.0.1:8443"),
            ("content-type", "application/json"),
            ("cookie", "x=1; y=2"),
            ("accept", "a"),
            ("accept", "b"),
            ("user-agent", "test/1"),
        ),
    }
    return Request(**{**base, **changes})


def test_function_url_events_have_the_fixture_shape() -> None:
    fixture = json.loads((EVENTS / "function_url.json").read_text())
    event = to_event(request(), api_id=url_id("f"), request_id="r-1")
    assert set(fixture) - {"body"} <= set(event) | {"queryStringParameters", "cookies"}
    # `authorizer` is there only for AWS_IAM auth; the twin's URLs are auth type NONE.
    assert set(fixture["requestContext"]) - {"authorizer"} <= set(event["requestContext"])
    assert set(fixture["requestContext"]["http"]) == set(event["requestContext"]["http"])
    assert event["rawPath"] == "/v1/embeddings" and event["rawQueryString"] == "a=1&a=2&b="
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""}
    assert event["cookies"] == ["x=1", "y=2"]
    assert event["headers"]["accept"] == "a,b"
    assert event["requestContext"]["requestId"] == "r-1"
    assert event["requestContext"]["http"]["userAgent"] == "test/1"
    assert event["body"] == '{"input": "hi"}' and event["isBase64Encoded"] is False
    assert len(event["requestContext"]["apiId"]) == 32


def test_function_url_events_base64_binary_bodies_and_omit_empty_ones() -> None:
    binary = to_event(request(body=b"\x00\x01", headers=(("content-type", "image/png"),)), api_id="x")
    assert binary["isBase64Encoded"] is True and base64.b64decode(binary["body"]) == b"\x00\x01"
    empty = to_event(request(method="GET", target="/", body=b"", headers=()), api_id="x")
    assert "body" not in empty and "queryStringParameters" not in empty and "cookies" not in empty


def test_the_runtime_accepts_twin_events(load_handler: Any, embedding_dir: Path) -> None:
    """The inference handler's adapter takes the twin's events as it takes the fixture."""
    handler = load_handler(embedding_dir)
    body = json.dumps({"input": "the cat", "model": "tiny"}).encode()
    event = to_event(request(body=body), api_id="x", request_id="r-2")
    from tests.conftest import context

    result = handler.handler(event, context("r-2"))
    assert result["statusCode"] == 200
    response = to_response(json.dumps(result).encode(), "r-2")
    assert response.status == 200 and json.loads(response.body)["data"][0]["index"] == 0


@pytest.mark.parametrize(
    ("result", "status", "body", "content_type"),
    [
        ({"statusCode": 204}, 204, b"", "application/json"),
        (
            {"statusCode": 200, "body": "hi", "headers": {"Content-Type": "text/plain"}},
            200,
            b"hi",
            "text/plain",
        ),
        (
            {"statusCode": 200, "body": base64.b64encode(b"\x00").decode(), "isBase64Encoded": True},
            200,
            b"\x00",
            "application/json",
        ),
        ({"message": "no statusCode"}, 200, b'{"message": "no statusCode"}', "application/json"),
        ("just a string", 200, b'"just a string"', "application/json"),
        ({"statusCode": 999}, 502, None, "application/json"),
        ({"statusCode": 200, "body": "!!", "isBase64Encoded": True}, 502, None, "application/json"),
    ],
)
def test_function_url_responses_follow_lambdas_rules(
    result: Any, status: int, body: bytes | None, content_type: str
) -> None:
    response = to_response(json.dumps(result).encode(), "r-3")
    assert response.status == status
    if body is not None:
        assert response.body == body
    headers = dict(response.headers)
    assert headers["content-type"] == content_type
    assert headers["x-amzn-requestid"] == "r-3"


def test_cookies_become_set_cookie_headers() -> None:
    response = to_response(json.dumps({"statusCode": 200, "cookies": ["a=1", "b=2"]}).encode(), "r")
    assert [v for k, v in response.headers if k == "set-cookie"] == ["a=1", "b=2"]


# --- instance environment ----------------------------------------------------------------------------


def test_opt_paths_resolve_to_the_last_layer_that_has_them(tmp_path: Path) -> None:
    first, second = tmp_path / "l1", tmp_path / "l2"
    (first / "model").mkdir(parents=True)
    (second / "model").mkdir(parents=True)
    (first / "only-here").mkdir()
    layers = (first, second)
    assert resolve_opt("/opt/model", layers) == str(second / "model")
    assert resolve_opt("/opt/only-here", layers) == str(first / "only-here")
    assert resolve_opt("/opt/missing", layers) == "/opt/missing"
    assert resolve_opt("/optional", layers) == "/optional"
    assert resolve_opt("relative", layers) == "relative"


def test_lambda_environment(tmp_path: Path) -> None:
    layer = tmp_path / "deps"
    (layer / "python").mkdir(parents=True)
    model_layer = tmp_path / "model"
    (model_layer / "model").mkdir(parents=True)
    f = spec(
        layers=(layer, model_layer),
        env={"PREHEAT_MODEL_DIR": "/opt/model", "X": "y"},
        isolated=True,
        memory_mb=1024,
    )
    launch = Launch(
        host="127.0.0.1",
        region="eu-west-1",
        account_id="1",
        gateway_url="http://127.0.0.1:1",
        runtime_dir=tmp_path / "runtime",
    )
    env = environment(
        f,
        version="1",
        init_type="provisioned-concurrency",
        runtime_api="127.0.0.1:9",
        log_stream="s",
        launch=launch,
    )
    assert env["PYTHONPATH"].split(":") == [str(ROOT), str(layer / "python"), str(tmp_path / "runtime")]
    assert env["PREHEAT_MODEL_DIR"] == str(model_layer / "model")
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "provisioned-concurrency"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "1024"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"
    assert env["_HANDLER"] == "m.h" and env["LAMBDA_TASK_ROOT"] == str(ROOT)
    assert env["X"] == "y"
    assert "HOME" not in env and "VIRTUAL_ENV" not in env  # nothing leaks from the twin's own environment


def test_exit_descriptions_read_like_lambdas() -> None:
    assert exit_description(3) == "exit status 3"
    assert exit_description(-9) == "signal: kill"
    assert exit_description(-11) == "signal: segv"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("my-fn", ("my-fn", None)),
        ("my-fn:live", ("my-fn", "live")),
        ("arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Amy-fn", ("my-fn", None)),
        ("arn:aws:lambda:us-east-1:123456789012:function:my-fn:7", ("my-fn", "7")),
        ("123456789012:function:my-fn", ("my-fn", None)),
    ],
)
def test_function_names_as_lambda_accepts_them(raw: str, expected: tuple[str, str | None]) -> None:
    assert split_name(raw) == expected


def test_percentiles_interpolate() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 99) == 5.0
    assert percentile(list(map(float, range(101))), 99) == 99.0


def test_certificates_chain_to_the_written_ca_and_are_reused(tmp_path: Path) -> None:
    from cryptography import x509

    certs = tls.ensure(tmp_path)
    cert = x509.load_pem_x509_certificate(certs.cert.read_bytes())
    ca = x509.load_pem_x509_certificate(certs.ca.read_bytes())
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert oct(certs.key.stat().st_mode & 0o777) == "0o600"
    before = certs.ca.read_bytes()
    assert tls.ensure(tmp_path).ca.read_bytes() == before


def test_a_deps_layer_built_from_other_requirements_is_not_run_from(tmp_path: Path) -> None:
    from layers import paths
    from scripts.twin.config import inference_function

    deps = tmp_path / paths.DEPS_LOCAL.relative_to(paths.ROOT)
    (deps / "python").mkdir(parents=True)
    target = deps_layer.local_target()
    stamp = deps / deps_layer.STAMP
    for requirements, isolated in (
        (("numpy",), False),  # built before today's dependencies (e.g. one was added since)
        (deps_layer.runtime_requirements(), True),
    ):
        stamp.write_text(json.dumps({"fingerprint": deps_layer.fingerprint(target, requirements)}))
        spec = inference_function(tmp_path, model_dir=tmp_path / "model")
        assert (spec.isolated, deps in spec.layers) == (isolated, isolated)
