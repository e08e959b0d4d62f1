"""The warmer and the controller as Lambda functions on the local twin, against real instances.

Everything goes through the twin: the warmer and controller run as twin functions (awslambdaric
processes, invoked through the Invoke API or by a schedule), their boto3 reaches the twin through
AWS_ENDPOINT_URL, the pings and requests land on instances of preheat's real inference handler
(serving the tiny generated model), the handler's EMF lines reach CloudWatch in moto, provisioned
concurrency starts and retires real instances, and throttling is the twin's: reserved concurrency,
or a fault scripted through its control API (POST /_preheat/faults).

The controller decides for the minute its scheduled event names (EventBridge's `time`): the tests
name minutes relative to the real invocations instead of waiting for them, and say so.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from infra.config import load
from scripts.twin.client import Reply, TwinClient
from scripts.twin.config import (
    DEFAULT_FUNCTION,
    DEFAULT_MODEL_DIR,
    FunctionSpec,
    Schedule,
    TwinConfig,
)
from scripts.twin.stack import TWIN_MAX_CONCURRENCY, default_config
from tests.support.history import BURSTS, busy_history, put_history, scheduled_event
from tests.support.twin import ROOT, running, wait_for
from warmers.controller import decide
from warmers.history import floor_minute, read_history
from warmers.settings import Backoff, ControllerSettings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

INFERENCE = "functions.inference.handler.handler"
FAST_RETRIES = {"PREHEAT_RETRY_BASE_MS": "20", "PREHEAT_RETRY_CAP_MS": "200"}
WARMER_MAX = 4


def tiny(name: str, model_dir: Path, **kwargs: Any) -> FunctionSpec:
    """preheat's inference handler serving the tiny model; its metrics carry service=<name>."""
    env = {"PREHEAT_MODEL_DIR": str(model_dir), "PREHEAT_THREADS": "1", "POWERTOOLS_SERVICE_NAME": name}
    return FunctionSpec(name, INFERENCE, ROOT, env=env, **kwargs)


def controller(name: str, target: str, **env: str) -> FunctionSpec:
    settings = {
        "PREHEAT_LAMBDA_FUNCTION": target,
        "PREHEAT_LAMBDA_ALIAS": "live",
        "PREHEAT_PC_MODE": "direct",
        "PREHEAT_METRICS_SERVICE": target,
        "PREHEAT_MAX_CONCURRENCY": "2",
        "POWERTOOLS_SERVICE_NAME": name,
        **FAST_RETRIES,
        **env,
    }
    return FunctionSpec(
        name,
        "warmers.controller.handler",
        ROOT,
        env=settings,
        memory_mb=256,
        timeout_s=90,
        url_qualifier=None,
    )


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory, embedding_dir: Path) -> Iterator[TwinClient]:
    warmer_env = {
        "PREHEAT_WARM_FUNCTION": "pinged",
        "PREHEAT_WARM_QUALIFIER": "live",
        "PREHEAT_WARM_CONCURRENCY": "2",
        "PREHEAT_WARM_MAX_CONCURRENCY": str(WARMER_MAX),
        "PREHEAT_WARM_HOLD_MS": "500",
        "PREHEAT_RETRY_ATTEMPTS": "3",
        **FAST_RETRIES,
    }
    config = TwinConfig(
        functions=(
            tiny("pinged", embedding_dir),
            tiny("capped", embedding_dir, reserved_concurrency=2),
            tiny("provisioned", embedding_dir),
            tiny("pc-pinged", embedding_dir),
            tiny("throttled", embedding_dir),
            tiny("bursty", embedding_dir),
            tiny("live", embedding_dir),
            FunctionSpec("not-preheat", "tests.support.twin_handlers.echo", ROOT, url_qualifier=None),
            FunctionSpec(
                "warmer",
                "warmers.warmer.handler",
                ROOT,
                env=warmer_env,
                memory_mb=256,
                timeout_s=90,
                url_qualifier=None,
            ),
            controller(
                "controller-pc", "provisioned", PREHEAT_POLICY="target-tracking", PREHEAT_HISTORY_MINUTES="60"
            ),
            controller(
                "controller-throttled", "throttled", PREHEAT_POLICY="scheduled", PREHEAT_RETRY_ATTEMPTS="5"
            ),
            controller(
                "controller-bursts",
                "bursty",
                PREHEAT_POLICY="preheat",
                PREHEAT_PC_MODE="off",
                PREHEAT_MAX_CONCURRENCY="4",
                PREHEAT_WARM_HOLD_MS="600",
                PREHEAT_HISTORY_MINUTES="120",
            ),
            controller(
                "controller-live",
                "live",
                PREHEAT_POLICY="preheat",
                PREHEAT_WARMER_FUNCTION="warmer",
                PREHEAT_HISTORY_MINUTES="20",
            ),
        ),
        # Fired on demand through the control API; an hour keeps it from firing on its own mid-test.
        schedules=(Schedule("warm-pinged", "rate(1 hour)", "warmer", "live"),),
        max_instances=32,
        state_dir=tmp_path_factory.mktemp("twin"),
    )
    with running(config) as client:
        yield client


@pytest.fixture(scope="module")
def lam(twin: TwinClient) -> Any:
    # No botocore retries: what the test sees is what the twin answered.
    return twin.boto3_client("lambda", retries={"total_max_attempts": 1}, read_timeout=120)


@pytest.fixture
def faults(twin: TwinClient) -> Iterator[TwinClient]:
    """The twin, with every scripted fault cleared after the test."""
    twin.control("DELETE", "faults")
    yield twin
    twin.control("DELETE", "faults")


def invoke(lam: Any, name: str, payload: Any) -> tuple[dict[str, Any], Any]:
    response = lam.invoke(FunctionName=name, Qualifier="live", Payload=json.dumps(payload).encode())
    return response, json.loads(response["Payload"].read() or b"null")


def run(lam: Any, name: str, payload: Any) -> dict[str, Any]:
    """Invoke the warmer or controller; it must answer, never fail (a failed async run is retried)."""
    response, body = invoke(lam, name, payload)
    assert response["StatusCode"] == 200 and "FunctionError" not in response, body
    assert isinstance(body, dict)
    return body


def instances(twin: TwinClient, function: str) -> list[dict[str, Any]]:
    described = {f["name"]: f for f in twin.functions()}
    return list(described[function]["instances"])


def records(twin: TwinClient, function: str, since: int) -> list[dict[str, Any]]:
    return twin.invocations(since, function)[1]


def embed(twin: TwinClient, function: str, n: int) -> list[Reply]:
    """n concurrent embedding requests through the function's HTTPS URL."""
    clients = [twin.url_client(function) for _ in range(n)]
    for client in clients:
        client.connect()
    barrier = threading.Barrier(n)

    def send(client: Any) -> Reply:
        prepared = client.prepare("POST", "/v1/embeddings", {"input": "hello world", "model": "tiny"})
        barrier.wait()  # signed before: the requests start together
        try:
            reply: Reply = client.send(prepared)
            return reply
        finally:
            client.close()

    with ThreadPoolExecutor(n) as pool:
        replies = list(pool.map(send, clients))
    assert [r.status for r in replies] == [200] * n, [r.body[:200] for r in replies]
    return replies


def log_blobs(twin: TwinClient, function: str, marker: str) -> list[dict[str, Any]]:
    """The JSON lines a function printed that hold the quoted `marker` (a metric name, a log message)."""
    path = Path(twin.state.functions[function]["log_file"])
    out = []
    for line in path.read_text().splitlines():
        _, _, text = line.partition("] ")
        if text.startswith("{") and f'"{marker}"' in text:
            out.append(json.loads(text))
    return out


def pc_ready(twin: TwinClient, lam: Any, function: str, timeout: float = 90.0) -> dict[str, Any]:
    """Wait for the alias's provisioned concurrency to be READY. A FAILED config fails at once, and a
    timeout names the last status; both carry the function's log tail (why its INIT did not end)."""
    deadline = time.monotonic() + timeout
    config: dict[str, Any] = {}
    while time.monotonic() < deadline:
        config = lam.get_provisioned_concurrency_config(FunctionName=function, Qualifier="live")
        if config["Status"] in ("READY", "FAILED"):
            break
        time.sleep(0.1)
    if config.get("Status") != "READY":
        config.pop("ResponseMetadata", None)
        raise AssertionError(f"provisioned concurrency of {function} is not READY: {config}\n{log_tail(twin, function)}")
    return config


def log_tail(twin: TwinClient, function: str) -> str:
    return Path(twin.state.functions[function]["log_file"]).read_text()[-3000:]


def drop_pc(lam: Any, function: str) -> None:
    with contextlib.suppress(lam.exceptions.ProvisionedConcurrencyConfigNotFoundException):
        lam.delete_provisioned_concurrency_config(FunctionName=function, Qualifier="live")


def of_day(t: datetime) -> int:
    return t.hour * 60 + t.minute


def fault(twin: TwinClient, **spec: Any) -> int:
    return int(twin.control("POST", "faults", spec)["fault"]["id"])


def fault_state(twin: TwinClient, fault_id: int) -> dict[str, Any]:
    return next(f for f in twin.control("GET", "faults")["faults"] if f["id"] == fault_id)


# --- the warmer ---------------------------------------------------------------------------------


def test_warmer_pings_land_on_distinct_instances_cold_then_warm(twin: TwinClient, lam: Any) -> None:
    twin.reset("pinged")
    seq, _ = twin.invocations()
    first = run(lam, "warmer", {"concurrency": 3, "hold_ms": 500})
    assert first["errors"] == []
    assert (first["requested"], first["answered"], first["instances"], first["cold"]) == (3, 3, 3, 3)
    pings = records(twin, "pinged", seq)
    assert len(pings) == 3 and all(r["outcome"] == "ok" and r["cold"] for r in pings)
    started = {r["instance_id"] for r in pings}
    assert len(started) == 3  # the twin agrees: three instances, each initialized for its ping
    assert sorted((i["kind"], i["state"]) for i in instances(twin, "pinged")) == [("on-demand", "idle")] * 3

    # Within the keep-alive the same three answer, none of them cold.
    seq, _ = twin.invocations()
    second = run(lam, "warmer", {"concurrency": 3, "hold_ms": 500})
    assert (second["answered"], second["instances"], second["cold"], second["shared"]) == (3, 3, 0, 0)
    again = records(twin, "pinged", seq)
    assert {r["instance_id"] for r in again} == started and not any(r["cold"] for r in again)

    # A larger fan-out, clamped to PREHEAT_WARM_MAX_CONCURRENCY, starts only the missing instance.
    grown = run(lam, "warmer", {"concurrency": 9, "hold_ms": 500})
    assert (grown["requested"], grown["clamped_from"]) == (WARMER_MAX, 9)
    assert (grown["answered"], grown["instances"], grown["cold"]) == (WARMER_MAX, WARMER_MAX, 1)
    assert len(instances(twin, "pinged")) == WARMER_MAX

    # Its metrics: the EMF the warmer printed (shipped to CloudWatch by the twin's log pipeline).
    blobs = log_blobs(twin, "warmer", "WarmupInstances")[-3:]
    assert [(b["WarmupInstances"], b["WarmupColdStarts"]) for b in blobs] == [(3, 3), (3, 0), (4, 1)]
    assert all(b["function"] == "pinged" and b["qualifier"] == "live" for b in blobs)
    twin.reset("pinged")


def test_a_fan_out_above_reserved_concurrency_degrades_to_what_is_allowed(twin: TwinClient, lam: Any) -> None:
    twin.reset("capped")
    seq, _ = twin.invocations()
    report = run(lam, "warmer", {"concurrency": 4, "hold_ms": 1500, "function": "capped"})
    assert report["qualifier"] == "live"  # the warmer's default qualifier, with the event's function
    assert (report["requested"], report["answered"], report["instances"], report["cold"]) == (4, 2, 2, 2)
    assert report["error_count"] == 2
    assert all(e.startswith("TooManyRequestsException") for e in report["errors"]), report["errors"]
    seen = records(twin, "capped", seq)
    served = [r for r in seen if r["outcome"] == "ok"]
    throttled = [r for r in seen if r["outcome"] == "throttled"]
    assert len(served) == 2 and len({r["instance_id"] for r in served}) == 2
    assert len(throttled) == 2 * 3  # each refused ping was tried PREHEAT_RETRY_ATTEMPTS (3) times
    described = {f["name"]: f for f in twin.functions()}["capped"]
    assert described["reserved_concurrency"] == 2 and len(described["instances"]) == 2
    # The warmer itself is fine: its next run, within the cap, answers fully.
    report = run(lam, "warmer", {"concurrency": 2, "hold_ms": 200, "function": "capped"})
    assert (report["answered"], report["cold"], report["error_count"]) == (2, 0, 0)
    twin.reset("capped")


def test_pings_that_land_on_provisioned_instances_are_not_cold_starts(twin: TwinClient, lam: Any) -> None:
    lam.put_provisioned_concurrency_config(
        FunctionName="pc-pinged", Qualifier="live", ProvisionedConcurrentExecutions=2
    )
    try:
        pc_ready(twin, lam, "pc-pinged")
        seq, _ = twin.invocations()
        report = run(lam, "warmer", {"concurrency": 2, "hold_ms": 500, "function": "pc-pinged"})
        pinged = records(twin, "pc-pinged", seq)
        # The twin's truth: both pings ran on the provisioned instances, neither waited for an INIT.
        assert [(r["instance_kind"], r["cold"]) for r in pinged] == [("provisioned-concurrency", False)] * 2
        assert report["instances"] == 2
        assert report["cold"] == 0
    finally:
        drop_pc(lam, "pc-pinged")
        twin.reset("pc-pinged", provisioned=True)


def test_throttled_pings_are_retried_and_persistent_throttling_is_reported(
    faults: TwinClient, lam: Any
) -> None:
    twin = faults
    blip = fault(twin, operation="Invoke", function="pinged", count=2)
    report = run(lam, "warmer", {"concurrency": 1, "hold_ms": 0})
    assert report["answered"] == 1 and report["errors"] == []
    assert fault_state(twin, blip)["answered"] == 2 and fault_state(twin, blip)["remaining"] == 0

    wall = fault(twin, operation="Invoke", function="pinged", count=1000, status=429)
    report = run(lam, "warmer", {"concurrency": 2, "hold_ms": 0})
    assert (report["answered"], report["error_count"]) == (0, 2)
    assert all(e.startswith("TooManyRequestsException") for e in report["errors"])
    assert fault_state(twin, wall)["answered"] == 2 * 3


def test_answers_that_are_not_preheats_and_bad_events_are_reported(twin: TwinClient, lam: Any) -> None:
    report = run(lam, "warmer", {"concurrency": 1, "function": "not-preheat"})
    assert report["answered"] == 0 and report["errors"][0].startswith("not_preheat")
    # Above the inference function's PREHEAT_WARMUP_MAX_HOLD_MS (5000): its own error comes back.
    report = run(lam, "warmer", {"concurrency": 1, "hold_ms": 6000})
    assert report["answered"] == 0 and report["errors"][0].startswith("invalid_hold")
    seq, _ = twin.invocations()
    for event, code in (
        ({"concurrency": "3"}, "invalid_concurrency"),
        ({"concurrency": -1}, "invalid_concurrency"),
        ({"hold_ms": 1.5}, "invalid_hold"),
        ({"function": ""}, "invalid_function"),
        ({"qualifier": 7}, "invalid_qualifier"),
    ):
        assert run(lam, "warmer", event)["error"]["code"] == code
    assert records(twin, "pinged", seq) == []  # nothing was pinged


def test_the_schedule_fires_the_warmer_and_its_pings_reach_the_inference_function(
    twin: TwinClient,
) -> None:
    twin.reset("pinged")
    seq, _ = twin.invocations()
    fired = twin.control("POST", "schedules/warm-pinged/fire")
    assert fired["event_id"]
    warmer = wait_for(
        lambda: [r for r in records(twin, "warmer", seq) if r["source"] == "schedule:warm-pinged"],
        what="the scheduled warmer run",
    )
    assert warmer[0]["outcome"] == "ok" and warmer[0]["qualifier"] == "live"
    # EventBridge's envelope carries no fan-out: PREHEAT_WARM_CONCURRENCY (2) applies. The warmer's
    # run is recorded when it returns, after its pings.
    pings = records(twin, "pinged", seq)
    assert len(pings) == 2 and all(r["cold"] and r["qualifier"] == "live" for r in pings)
    assert len({r["instance_id"] for r in pings}) == 2
    blob = wait_for(lambda: log_blobs(twin, "warmer", "WarmupInstances")[-1:], what="the warmer's metrics")[0]
    assert (blob["WarmupRequested"], blob["WarmupInstances"], blob["WarmupColdStarts"]) == (2, 2, 2)
    assert [s["fired"] for s in twin.control("GET", "schedules")["schedules"]] == [1]
    twin.reset("pinged")


# --- the controller -----------------------------------------------------------------------------


def test_controller_sets_provisioned_concurrency_within_its_maximum_and_requests_arrive_provisioned(
    twin: TwinClient, lam: Any
) -> None:
    # History at a time of its own, hours before the real invocations below, so they cannot mix.
    now = floor_minute(datetime.now(UTC)) - timedelta(hours=3)
    cloudwatch = twin.boto3_client("cloudwatch")
    put_history(cloudwatch, busy_history(), 2000.0, now=now, service="provisioned")
    twin.reset("provisioned", provisioned=True)
    assert embed(twin, "provisioned", 1)[0].headers["x-preheat-start"] == "cold"

    # Unbounded, the policy would want 3 (an average concurrency of 2 at a 0.7 utilization target).
    history = read_history(
        cloudwatch, namespace="Preheat", service="provisioned", end=now, minutes=60, backoff=Backoff()
    )
    assert (
        decide(ControllerSettings(policy="target-tracking", max_concurrency=10), history).provisioned[0] == 3
    )

    try:
        report = run(lam, "controller-pc", scheduled_event(now))
        assert report.get("decision") == {"provisioned": 2, "pings": 0, "max": 2}, report
        assert report["history"]["invocations"] == 1800
        (action,) = report["actions"]
        assert (action["target"], action["action"], action["previous"], action["desired"]) == (
            "lambda-pc",
            "set",
            0,
            2,
        )
        ready = pc_ready(twin, lam, "provisioned")
        assert ready["RequestedProvisionedConcurrentExecutions"] == 2
        kinds = [i["kind"] for i in instances(twin, "provisioned")]
        assert kinds.count("provisioned-concurrency") == 2

        # With one provisioned instance busy (a warm-up ping holds it), a request still arrives on a
        # provisioned one: the other. Two plain requests would overlap only if the machine is quiet.
        seq, _ = twin.invocations()
        with ThreadPoolExecutor(1) as pool:
            held = pool.submit(invoke, lam, "provisioned", {"preheat": "warmup", "hold_ms": 3000})
            wait_for(
                lambda: [i["state"] for i in instances(twin, "provisioned") if i["kind"] == "provisioned-concurrency"]
                .count("busy") == 1,
                what="the ping to hold a provisioned instance",
            )
            reply = embed(twin, "provisioned", 1)[0]
            assert reply.headers["x-preheat-start"] == "provisioned"
            assert held.result()[1]["preheat"] == "warmup"
        served = records(twin, "provisioned", seq)
        assert all(not r["cold"] and r["instance_kind"] == "provisioned-concurrency" for r in served)
        assert len({r["instance_id"] for r in served}) == 2

        # The same run again changes nothing; an hour later the load is gone and it scales in.
        assert run(lam, "controller-pc", scheduled_event(now))["actions"][0]["action"] == "unchanged"
        later = run(lam, "controller-pc", scheduled_event(now + timedelta(hours=1)))
        assert later["history"]["invocations"] == 0
        assert (
            later["actions"][0]["action"],
            later["actions"][0]["previous"],
            later["actions"][0]["desired"],
        ) == ("set", 2, 1)
        wait_for(
            lambda: [i["kind"] for i in instances(twin, "provisioned")].count("provisioned-concurrency") == 1,
            timeout=30,
            what="one provisioned instance to retire",
        )
    finally:
        drop_pc(lam, "provisioned")
        twin.reset("provisioned", provisioned=True)


def test_throttled_provisioned_concurrency_api_is_retried_with_backoff_and_never_crashes_the_controller(
    faults: TwinClient, lam: Any
) -> None:
    twin = faults
    day = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0)  # `scheduled`: 1 from 08:00
    night = day.replace(hour=21)  # and none after 20:00
    twin.reset("throttled", provisioned=True)
    error = fault(
        twin,
        operation="GetProvisionedConcurrencyConfig",
        function="throttled",
        count=1,
        status=500,
        code="ServiceException",
    )
    throttle = fault(twin, operation="PutProvisionedConcurrencyConfig", function="throttled", count=3)
    try:
        report = run(lam, "controller-throttled", scheduled_event(day))
        (action,) = report["actions"]
        assert (action["action"], action["previous"], action["desired"]) == ("set", 0, 1), action
        assert action["attempts"] == 2 + 4  # get: a 500, then found none; put: 3 throttled, then accepted
        assert 0 < action["slept_ms"] <= 20 + (20 + 40 + 80)  # full-jitter backoff from 20 ms, per call
        hits = fault_state(twin, throttle)["hits"]
        assert len(hits) == 3 and fault_state(twin, error)["answered"] == 1
        wait_for(
            lambda: (
                lam.get_provisioned_concurrency_config(FunctionName="throttled", Qualifier="live")["Status"]
                == "READY"
            ),
            timeout=60,
            what="provisioned concurrency READY",
        )
        assert embed(twin, "throttled", 1)[0].headers["x-preheat-start"] == "provisioned"

        # At night the schedule asks for none, and the API refuses every call: reported, not raised.
        wall = fault(twin, operation="DeleteProvisionedConcurrencyConfig", function="throttled", count=1000)
        report = run(lam, "controller-throttled", scheduled_event(night))
        (action,) = report["actions"]
        assert action["action"] == "error" and action["error"].startswith("TooManyRequestsException"), action
        assert action["attempts"] == 1 + 5 and fault_state(twin, wall)["answered"] == 5
        config = lam.get_provisioned_concurrency_config(FunctionName="throttled", Qualifier="live")
        assert config["RequestedProvisionedConcurrentExecutions"] == 1  # left as it was
        metrics = log_blobs(twin, "controller-throttled", "ControllerErrors")
        assert [m["ControllerErrors"] for m in metrics[-2:]] == [0, 1]

        # Once the API answers again, the next run does what the last one could not.
        twin.control("DELETE", "faults")
        report = run(lam, "controller-throttled", scheduled_event(night))
        assert (report["actions"][0]["action"], report["actions"][0]["previous"]) == ("set", 1)
        wait_for(
            lambda: not [i for i in instances(twin, "throttled") if i["kind"] == "provisioned-concurrency"],
            timeout=30,
            what="the provisioned instance to retire",
        )
    finally:
        twin.control("DELETE", "faults")
        drop_pc(lam, "throttled")
        twin.reset("throttled", provisioned=True)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "bad_json"),
        (b"[]", "bad_json"),
        (b'{"operation": "Put Provisioned"}', "invalid_operation"),
        (b'{"operation": "Invoke", "count": 0}', "invalid_count"),
        (b'{"operation": "Invoke", "status": 200}', "invalid_status"),
        (b'{"operation": "Invoke", "code": "no spaces please"}', "invalid_code"),
        (b'{"operation": "Invoke", "function": ""}', "invalid_function"),
        (b'{"operation": "Invoke", "times": 3}', "unknown_field"),
    ],
)
def test_bad_fault_requests_get_a_400_naming_the_field(faults: TwinClient, body: bytes, code: str) -> None:
    request = urllib.request.Request(f"{faults.state.endpoint}/_preheat/faults", data=body, method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 400 and json.loads(caught.value.read())["code"] == code
    assert faults.control("GET", "faults")["faults"] == []


def test_a_metrics_outage_leaves_every_setting_alone(faults: TwinClient, lam: Any) -> None:
    twin = faults
    day = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0)
    outage = fault(twin, operation="GetMetricData", count=1000, status=503, code="ServiceUnavailable")
    # Probes: had the controller touched provisioned concurrency, these would have answered.
    probes = [
        fault(twin, operation=op, function="throttled", count=1, status=500, code="ServiceException")
        for op in ("GetProvisionedConcurrencyConfig", "PutProvisionedConcurrencyConfig")
    ]
    report = run(lam, "controller-throttled", scheduled_event(day))
    assert report["error"]["code"] == "metrics_unavailable"
    assert "ServiceUnavailable" in report["error"]["message"]
    assert fault_state(twin, outage)["answered"] == 5  # PREHEAT_RETRY_ATTEMPTS
    assert [fault_state(twin, p)["answered"] for p in probes] == [0, 0]


def test_after_bursts_the_controller_warms_as_many_instances_as_they_needed(
    twin: TwinClient, lam: Any
) -> None:
    """preheat's decision is a fan-out: the controller pings that many instances of the function."""
    # Bursts of ~4 requests in flight every 12 minutes, the last 8 minutes ago: Lambda's keep-alive
    # (10 minutes) is about to lose those instances before the next burst, so the pool is pinged now.
    now = floor_minute(datetime.now(UTC)) - timedelta(hours=6)
    cloudwatch = twin.boto3_client("cloudwatch")
    put_history(cloudwatch, BURSTS, 2500.0, now=now, service="bursty")
    history = read_history(
        cloudwatch, namespace="Preheat", service="bursty", end=now, minutes=120, backoff=Backoff()
    )
    unbounded = decide(ControllerSettings(policy="preheat", max_concurrency=10, warm_hold_ms=600), history)
    assert unbounded.pings[0] > 4
    twin.reset("bursty")
    seq, _ = twin.invocations()
    report = run(lam, "controller-bursts", scheduled_event(now))
    k = report["decision"]["pings"]
    assert k == 4 and report["decision"] == {
        "provisioned": 0,
        "pings": 4,
        "max": 4,
    }  # PREHEAT_MAX_CONCURRENCY
    (warm,) = report["actions"]
    assert (warm["target"], warm["action"]) == ("warmer", "invoked"), warm
    assert (warm["detail"]["instances"], warm["detail"]["cold"]) == (k, k)
    pinged = records(twin, "bursty", seq)
    assert len(pinged) == k and len({r["instance_id"] for r in pinged}) == k
    assert len(instances(twin, "bursty")) == k

    # The next burst finds them warm: none of k concurrent requests waits for an INIT.
    seq, _ = twin.invocations()
    replies = embed(twin, "bursty", k)
    assert {r.headers["x-preheat-start"] for r in replies} == {"warm"}
    assert not any(r["cold"] for r in records(twin, "bursty", seq))
    twin.reset("bursty")


def test_real_invocations_drive_the_controller_through_cloudwatch_to_the_warmer(
    twin: TwinClient, lam: Any
) -> None:
    """Requests through the Function URL -> the handler's EMF -> CloudWatch (moto) -> the controller's
    preheat policy -> an asynchronous warmer run -> a warm instance for the next request."""
    twin.reset("live")
    if datetime.now(UTC).second > 40:  # keep the requests inside one minute
        time.sleep(61 - datetime.now(UTC).second)
    minute = floor_minute(datetime.now(UTC))
    client = twin.url_client("live")
    starts = [
        client.request("POST", "/v1/embeddings", {"input": f"request {i}", "model": "tiny"}).headers[
            "x-preheat-start"
        ]
        for i in range(5)
    ]
    client.close()
    assert starts == ["cold"] + ["warm"] * 4
    assert floor_minute(datetime.now(UTC)) == minute
    assert twin.flush()["flushed"]
    # Lambda reclaims idle instances on its own schedule; here, now, so that only pings can warm one.
    twin.reset("live")
    seq, _ = twin.invocations()

    # Two minutes on, the requests themselves are what keeps an instance warm: no ping is due.
    soon = run(lam, "controller-live", scheduled_event(minute + timedelta(minutes=2)))
    assert soon["history"]["invocations"] == 5, soon
    assert soon["decision"]["pings"] == 0
    # Long after, nothing is in the window: a function never seen is kept warm as a plain warmer would,
    # one ping every 8th minute of the day (Lambda's 10-minute keep-alive less 2), so not in this one.
    later = minute + timedelta(minutes=40)
    if of_day(later) % 8 == 0:
        later += timedelta(minutes=1)
    idle = run(lam, "controller-live", scheduled_event(later))
    assert idle["history"]["invocations"] == 0 and idle["decision"] == {
        "provisioned": 0,
        "pings": 0,
        "max": 2,
    }
    assert [a["target"] for a in idle["actions"]] == ["lambda-pc"]
    assert records(twin, "warmer", seq) == [] and instances(twin, "live") == []

    # 8 minutes after the last touch (the requests, or a ping in the minute after them, before they
    # showed in CloudWatch), Lambda's keep-alive is about to lose the instance: one ping, via the warmer.
    due_in = 9 if of_day(minute + timedelta(minutes=1)) % 8 == 0 else 8
    runs = [run(lam, "controller-live", scheduled_event(minute + timedelta(minutes=m))) for m in (8, 9)]
    assert [r["decision"]["pings"] for r in runs] == [int(due_in == 8), int(due_in == 9)], runs
    due = runs[due_in - 8]
    assert due["history"]["invocations"] == 5
    pc, warm = due["actions"]
    assert (pc["target"], pc["action"], pc["desired"]) == ("lambda-pc", "unchanged", 0)
    assert (warm["target"], warm["action"], warm["detail"]) == ("warmer", "invoked", {"warmer": "warmer"})
    run_record = wait_for(
        lambda: [r for r in records(twin, "warmer", seq) if r["source"] == "event"],
        what="the warmer's asynchronous run",
    )[0]
    assert run_record["outcome"] == "ok", f"{run_record}\n{log_tail(twin, 'warmer')}"
    ping = wait_for(lambda: records(twin, "live", seq), what="the warmer's ping")[0]
    assert ping["cold"] and ping["outcome"] == "ok"
    assert [(i["kind"], i["state"]) for i in instances(twin, "live")] == [("on-demand", "idle")]

    reply = embed(twin, "live", 1)[0]
    assert reply.headers["x-preheat-start"] == "warm"
    served = twin.record(reply.headers["x-amzn-requestid"], "live")
    assert served is not None and served["instance_id"] == ping["instance_id"] and not served["cold"]
    twin.reset("live")


# --- the default stack --------------------------------------------------------------------------


def test_the_default_stack_wires_warmer_and_controller_to_the_inference_function(tmp_path: Path) -> None:
    """`preheat up`'s config: its schedules fire the warmer and controller, which reach the real model."""
    if not (ROOT / DEFAULT_MODEL_DIR / "manifest.json").is_file():
        pytest.fail(f"{ROOT / DEFAULT_MODEL_DIR} is missing: run `make model` (make test builds it first)")
    config = default_config(ROOT, state_dir=tmp_path)
    stack = load(ROOT)  # what cdk.json configures: the twin runs it
    assert {(s.name, s.expression) for s in config.schedules} == {
        ("preheat-warmer", stack.warmer.schedule),
        ("preheat-controller", stack.controller.schedule),
    }
    k = stack.warmer.concurrency
    with running(config) as twin:
        twin.control("POST", "schedules/preheat-warmer/fire")
        warmer = wait_for(lambda: records(twin, "preheat-warmer", 0), timeout=60, what="the warmer run")[0]
        assert warmer["outcome"] == "ok" and warmer["source"] == "schedule:preheat-warmer"
        ping = wait_for(lambda: records(twin, DEFAULT_FUNCTION, 0), timeout=60, what="the warmer's ping")[0]
        assert ping["outcome"] == "ok" and ping["cold"] and ping["qualifier"] == "live"
        blob = wait_for(
            lambda: log_blobs(twin, "preheat-warmer", "WarmupInstances"), what="the warmer's metrics"
        )[0]
        assert (blob["WarmupInstances"], blob["WarmupColdStarts"], blob["WarmupErrors"]) == (k, k, 0)

        twin.control("POST", "schedules/preheat-controller/fire")
        report = wait_for(
            lambda: log_blobs(twin, "preheat-controller", "controller run"),
            timeout=60,
            what="the controller's report",
        )[0]
        assert "error" not in report, report
        assert report["decision"]["max"] == min(stack.lambda_.provisioned.max, TWIN_MAX_CONCURRENCY)
        pc = report["actions"][0]
        assert (pc["target"], pc["detail"]["alias"]) == ("lambda-pc", "live")
        # And the stack's SageMaker endpoint, as the stack's controller does (UpdateEndpoint is the twin's).
        sm = next(a for a in report["actions"] if a["target"] == "sagemaker-pc")
        assert sm["detail"]["endpoint"] == stack.sagemaker.endpoint_name
        assert all(a["action"] != "error" for a in report["actions"]), json.dumps(report["actions"])
