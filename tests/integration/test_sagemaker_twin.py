"""SageMaker Serverless endpoints in the local twin: unchanged boto3 `sagemaker-runtime` and SageMaker SDK
code against real `serve` containers, with moto as the control plane."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from functions.sagemaker.endpoint import EndpointConfig
from scripts.twin.client import TwinClient
from scripts.twin.config import TwinConfig
from scripts.twin.sagemaker_config import EndpointSpec
from tests.support import tiny_models
from tests.support.twin import ROOT, running, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

DEFAULT_MODEL = ROOT / "build" / "models" / "minilm"
ONE_THREAD = {"PREHEAT_THREADS": "1"}


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory, embedding_dir: Path) -> Iterator[TwinClient]:
    endpoints = [
        EndpointSpec(EndpointConfig("tiny", max_concurrency=2, environment=ONE_THREAD), embedding_dir),
        EndpointSpec(EndpointConfig("single", max_concurrency=1, environment=ONE_THREAD), embedding_dir),
        EndpointSpec(EndpointConfig("ready", max_concurrency=2, provisioned_concurrency=1, environment=ONE_THREAD),
                     embedding_dir),
        EndpointSpec(EndpointConfig("brief", max_concurrency=1, environment=ONE_THREAD), embedding_dir,
                     keep_alive_s=1.0),
    ]
    if (DEFAULT_MODEL / "manifest.json").is_file():
        endpoints.append(EndpointSpec(EndpointConfig("minilm", environment=ONE_THREAD), DEFAULT_MODEL))
    config = TwinConfig(functions=(), endpoints=tuple(endpoints), state_dir=tmp_path_factory.mktemp("sm-twin"))
    with running(config) as client:
        yield client


@pytest.fixture(scope="module")
def runtime(twin: TwinClient) -> Any:
    # No retries: a throttle must reach the test, not be retried away by botocore.
    return twin.boto3_client("sagemaker-runtime", retries={"total_max_attempts": 1}, read_timeout=120)


def invoke(runtime: Any, endpoint: str, payload: Any, **kwargs: Any) -> tuple[dict[str, Any], Any]:
    response = runtime.invoke_endpoint(EndpointName=endpoint, Body=json.dumps(payload).encode(),
                                       ContentType="application/json", Accept="application/json", **kwargs)
    return response, json.loads(response["Body"].read())


def record(twin: TwinClient, endpoint: str) -> dict[str, Any]:
    _, records = twin.invocations(0, endpoint)
    return records[-1]


def variant(twin: TwinClient, endpoint: str) -> dict[str, Any]:
    found = next(e for e in twin.control("GET", "endpoints")["endpoints"] if e["name"] == endpoint)
    return dict(found["variants"][0])


def test_invoke_endpoint_starts_a_container_cold_then_reuses_it_warm(twin: TwinClient, runtime: Any) -> None:
    response, body = invoke(runtime, "tiny", {"input": "hello world"})
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["ContentType"] == "application/json"
    assert response["InvokedProductionVariant"] == "AllTraffic"
    assert body["data"][0]["embedding"] == pytest.approx(tiny_models.expected_embedding("hello world").tolist(),
                                                         abs=1e-5)
    cold = record(twin, "tiny")
    assert cold["cold"] and cold["outcome"] == "ok" and cold["instance_kind"] == "on-demand"
    assert cold["init_ms"] > 0 and cold["request_id"] == response["ResponseMetadata"]["RequestId"]
    _, body = invoke(runtime, "tiny", {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES",
                                                   "data": ["hello world"]}]})
    assert body["outputs"][0]["name"] == "embedding"
    warm = record(twin, "tiny")
    assert not warm["cold"] and warm["instance_id"] == cold["instance_id"] and warm["init_ms"] is None
    setup = variant(twin, "tiny")["containers"][0]["setup"]
    # The container listened before it was ready, and /ping said so.
    assert setup["listening_ms"] <= setup["first_ping_ms"] <= setup["ready_ms"] == cold["init_ms"]


def test_the_default_model_answers_cold_then_warm(twin: TwinClient, runtime: Any) -> None:
    if not (DEFAULT_MODEL / "manifest.json").is_file():
        pytest.skip("build the default model first (`make model`)")
    sentences = ["A cat sits on the mat.", "A kitten is sitting on a rug.", "Stock markets fell sharply."]
    results = []
    for _ in range(2):
        _, body = invoke(runtime, "minilm", {"input": sentences})
        results.append([row["embedding"] for row in body["data"]])
        results[-1].append(record(twin, "minilm")["cold"])
    assert [r[-1] for r in results] == [True, False]
    vectors = results[1][:3]
    assert all(len(v) == 384 for v in vectors)
    dot = lambda a, b: sum(x * y for x, y in zip(a, b, strict=True))  # noqa: E731  (normalized vectors)
    assert dot(vectors[0], vectors[1]) > dot(vectors[0], vectors[2]) + 0.2
    for cold_row, warm_row in zip(results[0][:3], vectors, strict=True):  # cold and warm answer alike
        assert cold_row == pytest.approx(warm_row, abs=1e-4)


def test_provisioned_containers_are_ready_before_the_first_request(twin: TwinClient, runtime: Any) -> None:
    wait_for(lambda: variant(twin, "ready")["provisioned_ready"] == 1, 90, what="the provisioned container")
    invoke(runtime, "ready", {"input": "warm already"})
    first = record(twin, "ready")
    assert not first["cold"] and first["instance_kind"] == "provisioned"
    # Provisioned containers are not reaped and not discarded by a reset, unless asked.
    assert twin.control("POST", "endpoints/ready/reset")["stopped"] == 0
    assert variant(twin, "ready")["provisioned_ready"] == 1


def test_beyond_max_concurrency_requests_are_throttled(twin: TwinClient, runtime: Any) -> None:
    twin.control("POST", "endpoints/single/reset")
    answers: list[Any] = []
    first = threading.Thread(target=lambda: answers.append(invoke(runtime, "single", {"input": "first"})))
    first.start()
    wait_for(lambda: variant(twin, "single")["inflight"] == 1, 30, what="the first request in flight")
    with pytest.raises(ClientError) as caught:
        invoke(runtime, "single", {"input": "second"})
    error = caught.value.response
    assert error["Error"]["Code"] == "ThrottlingException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert "MaxConcurrency (1)" in error["Error"]["Message"]
    first.join(60)
    assert answers and answers[0][0]["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert [r["outcome"] for r in twin.invocations(0, "single")[1][-2:]] == ["throttled", "ok"]


def test_idle_containers_are_reaped_after_the_keep_alive(twin: TwinClient, runtime: Any) -> None:
    invoke(runtime, "brief", {"input": "one"})
    first = record(twin, "brief")
    wait_for(lambda: variant(twin, "brief")["containers"] == [], 30, what="the idle container to be reaped")
    invoke(runtime, "brief", {"input": "two"})
    second = record(twin, "brief")
    assert second["cold"] and second["instance_id"] != first["instance_id"]


def test_payloads_over_4_mb_are_refused_before_any_container(twin: TwinClient, runtime: Any) -> None:
    before = twin.invocations(0, "tiny")[0]
    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint(EndpointName="tiny", Body=b"{" + b" " * (4 * 1024 * 1024) + b"}",
                                ContentType="application/json")
    error = caught.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert error["Error"]["Code"] == "ValidationError" and "4 MB" in error["Error"]["Message"]
    assert twin.invocations(0, "tiny")[0] == before


def test_model_errors_carry_the_containers_status_and_message(twin: TwinClient, runtime: Any) -> None:
    with pytest.raises(ClientError) as caught:
        invoke(runtime, "tiny", {"input": ""})
    error = caught.value.response
    assert error["Error"]["Code"] == "ModelError" and error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == 400
    assert json.loads(error["OriginalMessage"])["error"]["code"] == "invalid_request"
    assert error["LogStreamArn"].endswith(":log-group:/aws/sagemaker/Endpoints/tiny")


def test_unknown_endpoints_and_variants_are_validation_errors(runtime: Any) -> None:
    with pytest.raises(ClientError) as caught:
        invoke(runtime, "nope", {"input": "x"})
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert "Endpoint nope of account" in caught.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as caught:
        invoke(runtime, "tiny", {"input": "x"}, TargetVariant="blue")
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    _, body = invoke(runtime, "tiny", {"input": "x"}, TargetVariant="AllTraffic")
    assert body["data"]


def test_sagemaker_metrics_and_logs_reach_cloudwatch(twin: TwinClient, runtime: Any) -> None:
    invoke(runtime, "tiny", {"input": "metrics"})
    twin.flush()
    cloudwatch = twin.boto3_client("cloudwatch")
    dims = [{"Name": "EndpointName", "Value": "tiny"}, {"Name": "VariantName", "Value": "AllTraffic"}]
    names = {m["MetricName"] for m in cloudwatch.list_metrics(Namespace="AWS/SageMaker", Dimensions=dims)["Metrics"]}
    assert {"Invocations", "ModelLatency", "OverheadLatency", "ModelSetupTime", "Invocation4XXErrors"} <= names
    now = time.time()

    def total(metric: str, namespace: str = "AWS/SageMaker", extra: list[dict[str, str]] | None = None) -> float:
        stats = cloudwatch.get_metric_statistics(
            Namespace=namespace, MetricName=metric, Dimensions=dims + (extra or []), StartTime=now - 600,
            EndTime=now + 60, Period=60, Statistics=["Sum", "Maximum"])["Datapoints"]
        return sum(p["Sum"] for p in stats)

    assert total("Invocations") >= 2
    assert total("ModelSetupTime") > 1000  # microseconds, as SageMaker reports it: a setup takes > 1 ms
    assert total("ColdStarts", "Preheat", [{"Name": "start", "Value": "cold"}]) >= 1
    assert total("Invocations", "Preheat", [{"Name": "start", "Value": "warm"}]) >= 1
    logs = twin.boto3_client("logs")
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/Endpoints/tiny")["logStreams"]
    assert streams and all(s["logStreamName"].startswith("AllTraffic/") for s in streams)
    events = logs.get_log_events(logGroupName="/aws/sagemaker/Endpoints/tiny",
                                 logStreamName=streams[0]["logStreamName"])["events"]
    assert any('"message": "ready"' in e["message"] for e in events)


def test_the_sdk_path_deploys_into_the_twin_and_the_endpoint_serves(
    twin: TwinClient, runtime: Any, embedding_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("sagemaker")
    import boto3

    from layers import sagemaker_artifacts as artifacts
    from scripts import deploy_sagemaker as deploy

    monkeypatch.setenv("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    boto_session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                         region_name=twin.state.region)
    session = deploy.sdk_session(boto_session, twin.state.endpoint)
    description = EndpointConfig("via-sdk", max_concurrency=2, environment=ONE_THREAD)
    tarball = tmp_path / "model.tar.gz"
    artifacts.pack_model(embedding_dir, tarball)
    url = deploy.upload_model(session, tarball, "preheat-sdk-test", description.name)
    deploy.deploy(description, session, image_uri="preheat-sagemaker:local",
                  role_arn=deploy.local_role(boto_session, twin.state.endpoint), model_data_url=url, poll_s=0.05)
    _, body = invoke(runtime, "via-sdk", {"input": "hello world"})
    assert body["data"][0]["embedding"] == pytest.approx(tiny_models.expected_embedding("hello world").tolist(),
                                                         abs=1e-5)
    # The model came from model.tar.gz in (moto's) S3, extracted as SageMaker does, not from embedding_dir.
    model_dir = Path(variant(twin, "via-sdk")["model_dir"])
    assert model_dir != embedding_dir and (model_dir / "manifest.json").read_bytes() == (
        embedding_dir / "manifest.json").read_bytes()
    # Deleting the endpoint in the control plane stops serving it.
    session.sagemaker_client.delete_endpoint(EndpointName="via-sdk")
    with pytest.raises(ClientError) as caught:
        invoke(runtime, "via-sdk", {"input": "gone"})
    assert caught.value.response["Error"]["Code"] == "ValidationError"
