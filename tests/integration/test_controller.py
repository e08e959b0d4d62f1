"""The controller Lambda: CloudWatch metrics in, bounded actions out, errors survived.

AWS is moto_server; tests/support/aws_front.py sits in front of it for what moto 5.2 lacks
(Lambda provisioned-concurrency configs and Invoke, SageMaker UpdateEndpoint) and to script
throttling. Everything goes over real HTTP through boto3.
"""

from __future__ import annotations

import importlib
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import numpy as np
import pytest
from moto.server import ThreadedMotoServer

from tests.conftest import context, emf_lines
from tests.support.aws_front import AwsFront, LambdaStandIn, SageMakerUpdates
from warmers import clients
from warmers.history import History
from warmers.policies import make_policy
from warmers.simulator.run import SimConfig, plan_policy
from warmers.simulator.workload import Workload
from warmers.traces import Trace

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
ROLE = "arn:aws:iam::123456789012:role/sagemaker"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsFront]:
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")).read()
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    with AwsFront(moto_url) as front:
        monkeypatch.setenv("AWS_ENDPOINT_URL", front.url)
        clients.reset()
        yield front
    clients.reset()


@pytest.fixture
def load_controller(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., ModuleType]]:
    def load(**env: str) -> ModuleType:
        env = {"PREHEAT_RETRY_BASE_MS": "2", "PREHEAT_RETRY_CAP_MS": "20", **env}
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        sys.modules.pop("warmers.controller", None)
        return importlib.import_module("warmers.controller")

    yield load
    sys.modules.pop("warmers.controller", None)


def put_history(counts: dict[int, int], latency_ms: float, *, service: str = "preheat") -> None:
    """counts[k] invocations k minutes before NOW (start=warm), each taking latency_ms."""
    cw = boto3.client("cloudwatch")
    data: list[dict[str, Any]] = []
    for ago, n in counts.items():
        ts = NOW - timedelta(minutes=ago)
        dims = [{"Name": "service", "Value": service}, {"Name": "start", "Value": "warm"}]
        data.append(
            {"MetricName": "Invocations", "Dimensions": dims, "Timestamp": ts, "Value": n, "Unit": "Count"}
        )
        data.append(
            {
                "MetricName": "Latency",
                "Dimensions": dims,
                "Timestamp": ts,
                "Value": n * latency_ms,
                "Unit": "Milliseconds",
            }
        )
    for i in range(0, len(data), 500):
        cw.put_metric_data(Namespace="Preheat", MetricData=data[i : i + 500])


def scheduled_event(at: datetime = NOW) -> dict[str, Any]:
    return {
        "source": "aws.events",
        "detail-type": "Scheduled Event",
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


BURSTS = {ago: 90 for ago in range(8, 120, 12)}


def busy_history() -> dict[int, int]:
    # The last 30 minutes: 60 requests a minute of 2 s each, an average concurrency of 2.
    return {ago: 60 for ago in range(2, 32)}


def test_target_tracking_scales_provisioned_concurrency_with_a_scheduled_action(aws, load_controller):
    put_history(busy_history(), 2000.0)
    controller = load_controller(
        PREHEAT_POLICY="target-tracking",
        PREHEAT_LAMBDA_FUNCTION="inference",
        PREHEAT_LAMBDA_ALIAS="live",
        PREHEAT_PC_MODE="scheduled",
        PREHEAT_MAX_CONCURRENCY="10",
    )
    report = controller.handler(scheduled_event(), context())
    # 1 -> 2 -> 3 after 3-minute runs above 70% (a concurrency of 2 on 3 is 67%: it stops there).
    assert report["decision"]["provisioned"] == 3
    aas = boto3.client("application-autoscaling")
    actions = aas.describe_scheduled_actions(ServiceNamespace="lambda", ResourceId="function:inference:live")[
        "ScheduledActions"
    ]
    assert actions[0]["ScalableTargetAction"] == {"MinCapacity": 3, "MaxCapacity": 3}
    assert actions[0]["Schedule"] == "at(2026-11-23T10:01:00)"
    target = aas.describe_scalable_targets(ServiceNamespace="lambda")["ScalableTargets"][0]
    assert target["MaxCapacity"] == 10
    again = controller.handler(scheduled_event(), context())
    assert again["actions"][0]["action"] == "unchanged"


def test_never_more_than_the_configured_maximum(aws, load_controller):
    put_history(busy_history(), 2000.0)
    controller = load_controller(
        PREHEAT_POLICY="target-tracking",
        PREHEAT_LAMBDA_FUNCTION="inference",
        PREHEAT_LAMBDA_ALIAS="live",
        PREHEAT_PC_MODE="scheduled",
        PREHEAT_MAX_CONCURRENCY="2",
    )
    report = controller.handler(scheduled_event(), context())
    assert report["decision"]["provisioned"] == 2
    actions = boto3.client("application-autoscaling").describe_scheduled_actions(ServiceNamespace="lambda")
    assert actions["ScheduledActions"][0]["ScalableTargetAction"]["MaxCapacity"] == 2


def make_serverless_endpoint(max_concurrency: int = 5) -> None:
    sm = boto3.client("sagemaker")
    sm.create_model(ModelName="minilm", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "1.dkr.ecr/x:1"})
    sm.create_endpoint_config(
        EndpointConfigName="minilm-v1",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "minilm",
                "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": max_concurrency},
            }
        ],
    )
    sm.create_endpoint(EndpointName="minilm", EndpointConfigName="minilm-v1")


def test_sagemaker_serverless_provisioned_concurrency_follows_the_schedule(aws, load_controller):
    updates = SageMakerUpdates(aws)
    make_serverless_endpoint()
    controller = load_controller(PREHEAT_POLICY="scheduled", PREHEAT_SAGEMAKER_ENDPOINT="minilm")
    sm = boto3.client("sagemaker")

    day = controller.handler(scheduled_event(NOW), context())  # 10:00 UTC: business hours, 1
    action = day["actions"][0]
    assert (action["action"], action["previous"], action["desired"]) == ("set", 0, 1)
    config = sm.describe_endpoint_config(EndpointConfigName=action["detail"]["endpoint_config"])
    variant = config["ProductionVariants"][0]
    assert variant["ServerlessConfig"] == {
        "MemorySizeInMB": 2048,
        "MaxConcurrency": 5,
        "ProvisionedConcurrency": 1,
    }
    assert variant["ModelName"] == "minilm"
    assert updates.updates == [("minilm", action["detail"]["endpoint_config"])]

    assert controller.handler(scheduled_event(NOW), context())["actions"][0]["action"] == "unchanged"

    night = controller.handler(scheduled_event(NOW + timedelta(hours=11)), context())  # 21:00: none
    off = night["actions"][0]
    assert (off["action"], off["previous"], off["desired"]) == ("set", 1, 0)
    config = sm.describe_endpoint_config(EndpointConfigName=off["detail"]["endpoint_config"])
    assert "ProvisionedConcurrency" not in config["ProductionVariants"][0]["ServerlessConfig"]


def test_sagemaker_target_is_capped_by_the_variants_max_concurrency(aws, load_controller):
    SageMakerUpdates(aws)
    make_serverless_endpoint(max_concurrency=2)
    put_history(busy_history(), 2000.0)
    controller = load_controller(
        PREHEAT_POLICY="target-tracking", PREHEAT_SAGEMAKER_ENDPOINT="minilm", PREHEAT_MAX_CONCURRENCY="10"
    )
    report = controller.handler(scheduled_event(), context())
    assert report["decision"]["provisioned"] == 3
    assert report["actions"][0]["desired"] == 2


def test_direct_provisioned_concurrency_retries_throttling(aws, load_controller):
    lam = LambdaStandIn(aws)
    aws.fail("PutProvisionedConcurrencyConfig", 3)
    put_history(busy_history(), 2000.0)
    controller = load_controller(
        PREHEAT_POLICY="target-tracking",
        PREHEAT_LAMBDA_FUNCTION="inference",
        PREHEAT_LAMBDA_ALIAS="live",
        PREHEAT_RETRY_ATTEMPTS="5",
    )
    report = controller.handler(scheduled_event(), context())
    action = report["actions"][0]
    assert (action["action"], action["previous"], action["desired"]) == ("set", 0, 3)
    assert action["attempts"] == 5  # 1 get + 3 throttled puts + 1 put
    assert lam.provisioned[("inference", "live")] == 3
    assert aws.count("PutProvisionedConcurrencyConfig") == 4


def test_persistent_throttling_is_reported_and_the_controller_returns(aws, load_controller, capsys):
    lam = LambdaStandIn(aws)
    aws.fail("PutProvisionedConcurrencyConfig", 1000)
    put_history(busy_history(), 2000.0)
    controller = load_controller(
        PREHEAT_POLICY="target-tracking",
        PREHEAT_LAMBDA_FUNCTION="inference",
        PREHEAT_LAMBDA_ALIAS="live",
        PREHEAT_RETRY_ATTEMPTS="3",
    )
    report = controller.handler(scheduled_event(), context())
    action = report["actions"][0]
    assert action["action"] == "error" and action["error"].startswith("TooManyRequestsException")
    assert aws.count("PutProvisionedConcurrencyConfig") == 3
    assert ("inference", "live") not in lam.provisioned
    metrics = [b for b in emf_lines(capsys.readouterr().out) if "ControllerErrors" in b]
    assert metrics[-1]["ControllerErrors"] == 1.0


def test_metrics_outage_leaves_every_setting_alone(aws, load_controller):
    LambdaStandIn(aws)
    aws.fail("GetMetricData", 1000, status=503, code="ServiceUnavailable")
    controller = load_controller(
        PREHEAT_POLICY="scheduled", PREHEAT_LAMBDA_FUNCTION="inference", PREHEAT_LAMBDA_ALIAS="live"
    )
    report = controller.handler(scheduled_event(), context())
    assert report["error"]["code"] == "metrics_unavailable"
    assert aws.count("GetMetricData") == 5  # the default attempts
    assert (
        aws.count("PutProvisionedConcurrencyConfig") == 0
        and aws.count("GetProvisionedConcurrencyConfig") == 0
    )


def test_a_metrics_blip_is_retried(aws, load_controller):
    aws.fail("GetMetricData", 2, status=400, code="ThrottlingException")
    put_history(busy_history(), 2000.0)
    controller = load_controller(PREHEAT_POLICY="target-tracking")
    report = controller.handler(scheduled_event(), context())
    assert report["decision"]["provisioned"] == 3 and report["history"]["last_hour"] == 1800


def test_the_decision_changes_how_many_instances_are_warm(aws, load_controller, embedding_dir, monkeypatch):
    """preheat, after bursts that needed several instances, warms that many through the pings."""
    monkeypatch.setenv("PREHEAT_MODEL_DIR", str(embedding_dir))
    monkeypatch.setenv("PREHEAT_THREADS", "1")
    lam = LambdaStandIn(aws)
    # A burst every 12 minutes (~4 requests in flight), the last 8 minutes ago: Lambda's keep-alive
    # (10 minutes) is about to lose the instances before the next burst, so the pool is pinged now.
    put_history(BURSTS, 2500.0)
    controller = load_controller(
        PREHEAT_POLICY="preheat",
        PREHEAT_LAMBDA_FUNCTION="inference",
        PREHEAT_LAMBDA_ALIAS="live",
        PREHEAT_PC_MODE="off",
        PREHEAT_WARM_HOLD_MS="400",
        PREHEAT_HISTORY_MINUTES="120",
    )
    report = controller.handler(scheduled_event(), context())
    k = report["decision"]["pings"]
    assert k >= 3
    warm = report["actions"][0]
    assert (warm["target"], warm["action"]) == ("warmer", "invoked")
    assert warm["detail"]["instances"] == k and warm["detail"]["cold"] == k
    assert lam.instances("inference") == k


def test_an_idle_function_gets_no_pings_and_no_capacity(aws, load_controller):
    LambdaStandIn(aws)
    put_history({600: 1}, 100.0)  # one request ten hours ago
    controller = load_controller(
        PREHEAT_POLICY="preheat", PREHEAT_LAMBDA_FUNCTION="inference", PREHEAT_LAMBDA_ALIAS="live"
    )
    report = controller.handler(scheduled_event(), context())
    assert report["decision"] == {"provisioned": 0, "pings": 0, "max": 10}
    assert [a["target"] for a in report["actions"]] == ["lambda-pc"]
    assert aws.count("Invoke") == 0


def test_warmer_function_is_invoked_asynchronously_with_the_fan_out(aws, load_controller):
    lam = LambdaStandIn(aws, factory=lambda: lambda event, ctx: {"seen": event})
    put_history(BURSTS, 2500.0)
    controller = load_controller(
        PREHEAT_POLICY="preheat",
        PREHEAT_LAMBDA_FUNCTION="inference",
        PREHEAT_LAMBDA_ALIAS="live",
        PREHEAT_PC_MODE="off",
        PREHEAT_WARMER_FUNCTION="preheat-warmer",
        PREHEAT_HISTORY_MINUTES="120",
    )
    report = controller.handler(scheduled_event(), context())
    assert report["actions"][0]["detail"] == {"warmer": "preheat-warmer"}
    assert aws.count("Invoke") == 1
    deadline = time.monotonic() + 5
    while lam.instances("preheat-warmer") == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert lam.instances("preheat-warmer") == 1


def test_dry_run_decides_but_does_not_act(aws, load_controller):
    put_history(busy_history(), 2000.0)
    controller = load_controller(
        PREHEAT_POLICY="target-tracking",
        PREHEAT_LAMBDA_FUNCTION="inference",
        PREHEAT_LAMBDA_ALIAS="live",
        PREHEAT_PC_MODE="scheduled",
        PREHEAT_DRY_RUN="true",
    )
    report = controller.handler(scheduled_event(), context())
    assert report["decision"]["provisioned"] == 3 and report["actions"] == []
    assert aws.count("PutScheduledAction") == 0


@pytest.mark.parametrize("policy", ["preheat", "hybrid-histogram", "target-tracking", "ping", "keepalive-20"])
def test_the_controller_runs_the_simulators_policy_unchanged(policy, load_controller, monkeypatch):
    """Same minutes in, same decision out: the live replay equals the simulator's plan."""
    rng = np.random.default_rng(7)
    minutes = 300
    counts = np.zeros(minutes, dtype=np.int64)
    counts[::17] = rng.integers(1, 40, size=len(counts[::17]))
    counts[200:230] = rng.integers(0, 5, size=30)
    busy = counts * rng.uniform(0.1, 3.0, size=minutes)
    trace = Trace(("f",), ("f",), counts[None, :], None, "minute_N", "test")
    workload = Workload(
        trace, np.array([0, 0]), np.zeros(0), np.zeros(0), np.array([1024.0]), busy[None, :], 0
    )
    plan = plan_policy(make_policy(policy), workload, SimConfig(mode="aws", max_concurrency=10))
    controller = load_controller(
        PREHEAT_POLICY=policy, PREHEAT_MEMORY_MB="1024", PREHEAT_MAX_CONCURRENCY="10"
    )
    for m in (5, 60, 201, 215, 240, 299):
        history = History(datetime(2026, 11, 23, tzinfo=UTC), counts[:m], busy[:m])
        decision = controller.decide(controller.SETTINGS, history)
        assert (decision.provisioned[0], decision.pings[0]) == (plan.provisioned[0, m], plan.pings[0, m]), m


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"PREHEAT_POLICY": "oracle"}, "PREHEAT_POLICY"),
        ({"PREHEAT_POLICY": "magic"}, "PREHEAT_POLICY"),
        ({"PREHEAT_PC_MODE": "sometimes"}, "PREHEAT_PC_MODE"),
        ({"PREHEAT_LAMBDA_FUNCTION": "inference"}, "PREHEAT_LAMBDA_ALIAS"),
        ({"PREHEAT_LAMBDA_ALIAS": "live"}, "PREHEAT_LAMBDA_FUNCTION"),
        ({"PREHEAT_MAX_CONCURRENCY": "-1"}, "PREHEAT_MAX_CONCURRENCY"),
        ({"PREHEAT_HISTORY_MINUTES": "a day"}, "PREHEAT_HISTORY_MINUTES"),
        ({"PREHEAT_DRY_RUN": "maybe"}, "PREHEAT_DRY_RUN"),
        ({"PREHEAT_RETRY_ATTEMPTS": "0"}, "PREHEAT_RETRY_ATTEMPTS"),
    ],
)
def test_bad_settings_fail_at_init_naming_the_variable(env, key, load_controller, monkeypatch):
    for k in ("PREHEAT_LAMBDA_FUNCTION", "PREHEAT_LAMBDA_ALIAS", "PREHEAT_POLICY"):
        monkeypatch.delenv(k, raising=False)
    with pytest.raises(ValueError, match=key):
        load_controller(**env)
