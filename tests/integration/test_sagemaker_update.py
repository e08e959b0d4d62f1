"""UpdateEndpoint in the twin (moto lacks it): provisioned concurrency of a serverless endpoint takes
effect on its containers, and the controller scales the endpoint as it does on AWS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from functions.sagemaker.endpoint import EndpointConfig
from scripts.twin.client import TwinClient
from scripts.twin.config import FunctionSpec, TwinConfig
from scripts.twin.sagemaker_config import EndpointSpec
from tests.support.history import busy_history, put_history, scheduled_event
from tests.support.twin import ROOT, running, wait_for
from warmers.history import floor_minute

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

ONE_THREAD = {"PREHEAT_THREADS": "1"}


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory, embedding_dir: Path) -> Iterator[TwinClient]:
    controller = FunctionSpec(
        "controller", "warmers.controller.handler", ROOT,
        env={"PREHEAT_POLICY": "target-tracking", "PREHEAT_SAGEMAKER_ENDPOINT": "scaled",
             "PREHEAT_PC_MODE": "off", "PREHEAT_METRICS_SERVICE": "scaled", "PREHEAT_MAX_CONCURRENCY": "2",
             "PREHEAT_HISTORY_MINUTES": "60", "PREHEAT_RETRY_BASE_MS": "20", "PREHEAT_RETRY_CAP_MS": "200"},
        memory_mb=256, timeout_s=90, url_qualifier=None,
    )
    config = TwinConfig(
        functions=(controller,),
        endpoints=(
            EndpointSpec(EndpointConfig("ep", max_concurrency=3, environment=ONE_THREAD), embedding_dir),
            EndpointSpec(EndpointConfig("scaled", max_concurrency=3, environment=ONE_THREAD), embedding_dir),
        ),
        state_dir=tmp_path_factory.mktemp("twin-update"),
    )
    with running(config) as client:
        yield client


def variant(twin: TwinClient, endpoint: str) -> dict[str, Any]:
    found = next(e for e in twin.control("GET", "endpoints")["endpoints"] if e["name"] == endpoint)
    return dict(found["variants"][0])


def new_config(sm: Any, endpoint: str, name: str, **serverless: int) -> None:
    current = sm.describe_endpoint_config(EndpointConfigName=sm.describe_endpoint(EndpointName=endpoint)[
        "EndpointConfigName"])["ProductionVariants"][0]
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": current["VariantName"], "ModelName": current["ModelName"],
        "ServerlessConfig": {**current["ServerlessConfig"], **serverless}}])


def test_update_endpoint_applies_provisioned_concurrency_to_the_containers(twin: TwinClient) -> None:
    sm = twin.boto3_client("sagemaker", retries={"total_max_attempts": 1})
    runtime = twin.boto3_client("sagemaker-runtime", retries={"total_max_attempts": 1})
    runtime.invoke_endpoint(EndpointName="ep", ContentType="application/json", Body=json.dumps({"input": "x"}))
    before = variant(twin, "ep")
    assert before["provisioned_concurrency"] == 0 and [c["kind"] for c in before["containers"]] == ["on-demand"]
    arn = sm.describe_endpoint(EndpointName="ep")["EndpointArn"]

    new_config(sm, "ep", "ep-pc2", ProvisionedConcurrency=2)
    assert sm.update_endpoint(EndpointName="ep", EndpointConfigName="ep-pc2")["EndpointArn"] == arn
    assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "Updating"
    with pytest.raises(ClientError) as busy:  # SageMaker refuses a second update while one runs
        sm.update_endpoint(EndpointName="ep", EndpointConfigName="ep-pc2")
    assert busy.value.response["Error"]["Code"] == "ValidationException"
    wait_for(lambda: sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "InService", timeout=120,
             what="the update to finish")
    described = sm.describe_endpoint(EndpointName="ep")
    assert (described["EndpointArn"], described["EndpointConfigName"]) == (arn, "ep-pc2")
    after = variant(twin, "ep")
    assert after["provisioned_concurrency"] == 2 and after["provisioned_ready"] == 2
    kinds = sorted(c["kind"] for c in after["containers"])
    assert kinds == ["on-demand", "provisioned", "provisioned"]  # the on-demand container was kept: same model
    runtime.invoke_endpoint(EndpointName="ep", ContentType="application/json", Body=json.dumps({"input": "y"}))
    _, records = twin.invocations(0, "ep")
    assert records[-1]["instance_kind"] == "provisioned" and not records[-1]["cold"]

    with pytest.raises(ClientError) as missing:
        sm.update_endpoint(EndpointName="ep", EndpointConfigName="no-such-config")
    assert missing.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError):
        sm.update_endpoint(EndpointName="no-such-endpoint", EndpointConfigName="ep-pc2")


def test_the_controller_scales_the_endpoints_provisioned_concurrency(twin: TwinClient) -> None:
    now = floor_minute(datetime.now(UTC)) - timedelta(hours=3)
    put_history(twin.boto3_client("cloudwatch"), busy_history(), 2000.0, now=now, service="scaled")
    lam = twin.boto3_client("lambda", retries={"total_max_attempts": 1}, read_timeout=120)
    sm = twin.boto3_client("sagemaker")

    def run(at: datetime) -> dict[str, Any]:
        reply = lam.invoke(FunctionName="controller", Payload=json.dumps(scheduled_event(at)).encode())
        assert "FunctionError" not in reply
        return dict(json.loads(reply["Payload"].read()))

    report = run(now)
    (action,) = report["actions"]
    assert (action["target"], action["action"], action["previous"], action["desired"]) == ("sagemaker-pc", "set", 0, 2)
    wait_for(lambda: sm.describe_endpoint(EndpointName="scaled")["EndpointStatus"] == "InService", timeout=120,
             what="the update")
    assert sm.describe_endpoint(EndpointName="scaled")["EndpointConfigName"] == action["detail"]["endpoint_config"]
    assert variant(twin, "scaled")["provisioned_ready"] == 2
    # An hour later the load is gone: it scales in, and a provisioned container retires.
    later = run(now + timedelta(hours=1))["actions"][0]
    assert (later["action"], later["previous"], later["desired"]) == ("set", 2, 1)
    wait_for(lambda: [c["kind"] for c in variant(twin, "scaled")["containers"]].count("provisioned") == 1,
             timeout=60, what="one provisioned container to retire")
