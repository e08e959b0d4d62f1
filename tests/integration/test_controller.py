"""The controller Lambda: CloudWatch metrics in, bounded actions out, errors survived.

AWS is moto_server; tests/support/aws_front.py sits in front of it for what moto 5.2 lacks
(SageMaker UpdateEndpoint: the twin serves it, and test_sagemaker_update.py runs the controller against
it there) and to script throttling of moto's APIs. Everything
goes over real HTTP through boto3. What involves Lambda itself (provisioned concurrency changing
which instances serve, pings, the warmer, throttled Lambda APIs) runs on the local twin, in
test_warmers_twin.py.
"""

from __future__ import annotations

import importlib
import sys
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import numpy as np
import pytest
from moto.server import ThreadedMotoServer

from tests.conftest import context
from tests.support import history as metrics
from tests.support.aws_front import AwsFront, SageMakerUpdates
from tests.support.history import busy_history
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
    metrics.put_history(boto3.client("cloudwatch"), counts, latency_ms, now=NOW, service=service)


def scheduled_event(at: datetime = NOW) -> dict[str, Any]:
    return metrics.scheduled_event(at)


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


def test_a_metrics_blip_is_retried(aws, load_controller):
    aws.fail("GetMetricData", 2, status=400, code="ThrottlingException")
    put_history(busy_history(), 2000.0)
    controller = load_controller(PREHEAT_POLICY="target-tracking")
    report = controller.handler(scheduled_event(), context())
    assert report["decision"]["provisioned"] == 3 and report["history"]["last_hour"] == 1800


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


@pytest.mark.parametrize(("policy", "every"), [("ping", 5), ("preheat", 8)])
def test_consecutive_runs_keep_the_policys_cadence_on_the_wall_clock(policy, every, load_controller):
    """Each run replays a window that has moved by a minute; the pings must still follow the wall
    clock (`ping`: every 5 minutes; preheat, for a function not seen all day: one instance, refreshed
    every 8 minutes, Lambda's 10-minute keep-alive less 2), not repeat at every run or never come."""
    controller = load_controller(PREHEAT_POLICY=policy)
    minutes = controller.SETTINGS.history_minutes
    pinged = []
    for t in range(24):
        end = NOW + timedelta(minutes=t)
        idle = History(end - timedelta(minutes=minutes), np.zeros(minutes, dtype=np.int64), np.zeros(minutes))
        pinged.append(int(controller.decide(controller.SETTINGS, idle).pings[0]))
    of_day = NOW.hour * 60 + NOW.minute
    assert [t for t, k in enumerate(pinged) if k] == [t for t in range(24) if (of_day + t) % every == 0]


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
