"""The twin publishes AWS/Lambda and AWS/SageMaker metrics as AWS does, and they add up to what the
twin did: its own invocation records are the ground truth here."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from functions.sagemaker.endpoint import EndpointConfig
from infra import dashboard as spec
from scripts.metrics_query import CloudWatchSource, Window, nearest_rank
from scripts.twin.client import TwinClient
from scripts.twin.config import FunctionSpec, TwinConfig
from scripts.twin.platform_metrics import CATALOG
from scripts.twin.sagemaker_config import EndpointSpec
from tests.support.twin import ROOT, running, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory, embedding_dir: Path) -> Iterator[TwinClient]:
    endpoint = EndpointConfig("ep", max_concurrency=2, provisioned_concurrency=1,
                                  environment={"PREHEAT_THREADS": "1"})
    config = TwinConfig(
        functions=(FunctionSpec("fn", "tests.support.twin_handlers.sleep", ROOT, reserved_concurrency=3),),
        endpoints=(EndpointSpec(endpoint, embedding_dir),),
        state_dir=tmp_path_factory.mktemp("twin-platform"),
    )
    with running(config) as client:
        yield client


@pytest.fixture(scope="module")
def traffic(twin: TwinClient) -> dict[str, Any]:
    """On-demand calls, an error, provisioned concurrency with spillover and a throttle; an endpoint
    with one provisioned container, called alone and two at a time."""
    lam = twin.boto3_client("lambda", retries={"total_max_attempts": 1})
    started = dt.datetime.now(dt.UTC)
    for _ in range(2):
        lam.invoke(FunctionName="fn", Payload=b'{"seconds": 0.01}')
    lam.invoke(FunctionName="fn", Payload=b'{"seconds": "not a number"}')  # a function error
    lam.put_provisioned_concurrency_config(FunctionName="fn", Qualifier="live", ProvisionedConcurrentExecutions=1)
    wait_for(lambda: lam.get_provisioned_concurrency_config(FunctionName="fn", Qualifier="live")["Status"] == "READY",
             what="provisioned concurrency")

    def live(_: int) -> str:
        try:
            return str(lam.invoke(FunctionName="fn", Qualifier="live", Payload=b'{"seconds": 0.6}')["StatusCode"])
        except lam.exceptions.TooManyRequestsException:
            return "throttled"

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(live, range(4)))  # reserved 3: one of the four is throttled
    sm = twin.boto3_client("sagemaker-runtime", retries={"total_max_attempts": 1})
    wait_for(lambda: any(v["provisioned_ready"] for e in twin.control("GET", "endpoints")["endpoints"]
                         for v in e["variants"]), what="the provisioned container")

    def call(i: int) -> int:
        # 300 texts: long enough a model run that two requests sent together overlap.
        reply = sm.invoke_endpoint(EndpointName="ep", ContentType="application/json",
                                   Body=json.dumps({"input": [f"text {i} {j}" for j in range(300)]}))
        return int(reply["ResponseMetadata"]["HTTPStatusCode"])

    alone = [call(i) for i in range(3)]
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(call, range(3, 5)))
    twin.flush()
    return {"started": started, "lambda": outcomes, "sagemaker": alone + together}


def query(twin: TwinClient, namespace: str, name: str, stat: str, dims: dict[str, str], since: dt.datetime) -> float:
    cloudwatch = twin.boto3_client("cloudwatch")
    result = cloudwatch.get_metric_data(
        MetricDataQueries=[{"Id": "q", "MetricStat": {"Metric": {
            "Namespace": namespace, "MetricName": name, "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()]},
            "Period": 3600, "Stat": stat}}],
        StartTime=since - dt.timedelta(hours=1), EndTime=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2),
    )["MetricDataResults"][0]
    values = [v for v in result["Values"] if v is not None]
    return float(values[0]) if values else float("nan")


def test_lambda_metrics_add_up_to_the_twins_records(twin: TwinClient, traffic: dict[str, Any]) -> None:
    assert sorted(traffic["lambda"]) == ["200", "200", "200", "throttled"]
    _, records = twin.invocations(0, "fn")
    ran = [r for r in records if r["outcome"] != "throttled"]
    live = [r for r in ran if r["qualifier"] == "live"]
    since = traffic["started"]
    fn = {"FunctionName": "fn"}
    alias = {**fn, "Resource": "fn:live"}
    assert query(twin, "AWS/Lambda", "Invocations", "Sum", fn, since) == len(ran) == 6
    assert query(twin, "AWS/Lambda", "Invocations", "Sum", alias, since) == len(live) == 3
    assert query(twin, "AWS/Lambda", "Invocations", "Sum", {**alias, "ExecutedVersion": "1"}, since) == 3
    assert query(twin, "AWS/Lambda", "Errors", "Sum", fn, since) == 1
    assert query(twin, "AWS/Lambda", "Throttles", "Sum", alias, since) == 1
    on_pc = sum(1 for r in live if r["instance_kind"] == "provisioned-concurrency")
    assert query(twin, "AWS/Lambda", "ProvisionedConcurrencyInvocations", "Sum", alias, since) == on_pc == 1
    assert query(twin, "AWS/Lambda", "ProvisionedConcurrencySpilloverInvocations", "Sum", alias, since) == 2
    assert query(twin, "AWS/Lambda", "ProvisionedConcurrencyUtilization", "Maximum", alias, since) == 1.0
    assert query(twin, "AWS/Lambda", "ConcurrentExecutions", "Maximum", fn, since) == 3
    durations = [r["duration_ms"] for r in ran]
    assert query(twin, "AWS/Lambda", "Duration", "p50", fn, since) == pytest.approx(nearest_rank(durations, 50), abs=0.01)
    # Published only under Lambda's dimension sets, never under made-up ones.
    listed = twin.boto3_client("cloudwatch").list_metrics(Namespace="AWS/Lambda")["Metrics"]
    for metric in listed:
        names = tuple(sorted(d["Name"] for d in metric["Dimensions"]))
        assert names in CATALOG["AWS/Lambda"][metric["MetricName"]].dimension_sets


def test_sagemaker_metrics_add_up_to_the_twins_records(twin: TwinClient, traffic: dict[str, Any]) -> None:
    assert traffic["sagemaker"] == [200] * 5
    _, records = twin.invocations(0, "ep")
    since = traffic["started"]
    dims = {"EndpointName": "ep", "VariantName": "AllTraffic"}
    assert query(twin, "AWS/SageMaker", "Invocations", "Sum", dims, since) == len(records) == 5
    on_pc = sum(1 for r in records if r["instance_kind"] == "provisioned")
    assert query(twin, "AWS/SageMaker", "ServerlessProvisionedConcurrencyInvocations", "Sum", dims, since) == on_pc
    assert query(twin, "AWS/SageMaker", "ServerlessProvisionedConcurrencySpilloverInvocations", "Sum", dims,
                 since) == 5 - on_pc >= 1
    assert query(twin, "AWS/SageMaker", "ServerlessProvisionedConcurrencyUtilization", "Maximum", dims, since) == 1.0
    model_us = [r["duration_ms"] * 1000 for r in records]
    assert query(twin, "AWS/SageMaker", "ModelLatency", "p99", dims, since) == pytest.approx(
        nearest_rank(model_us, 99), rel=1e-3)
    assert query(twin, "AWS/SageMaker", "ModelSetupTime", "Maximum", dims, since) > 1000  # µs: a setup takes > 1 ms


def test_every_aws_graph_of_the_dashboard_draws_from_them(twin: TwinClient, traffic: dict[str, Any]) -> None:
    definition = spec.build("d", spec.Names(function_name="fn", endpoint_name="ep"))
    source = CloudWatchSource(twin.boto3_client("cloudwatch"), twin.boto3_client("logs"), local=True)
    window = Window.last(10, 60)
    for graph in definition.graphs():
        aws = [m for m in graph.metrics() if m.namespace.startswith("AWS/")]
        if not aws:
            continue
        data = source.fetch(graph.series, window)
        drawn = [s.id for s in graph.visible() if data[s.id].points(window)]
        assert drawn, f"{graph.title}: no series has data"
        for metric in aws:
            if metric.name not in ("Errors", "Throttles", "Invocation4XXErrors", "Invocation5XXErrors"):
                assert data[metric.id].points(window), (graph.title, metric.id)
