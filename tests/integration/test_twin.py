"""The local twin, end to end: real processes (awslambdaric), real boto3 clients, real HTTPS."""

from __future__ import annotations

import base64
import datetime as dt
import json
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from scripts.twin.client import TwinClient
from scripts.twin.config import FunctionSpec, Schedule, TwinConfig
from tests.support.twin import ROOT, running, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

H = "tests.support.twin_handlers"


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory, embedding_dir: Path) -> Iterator[TwinClient]:
    tiny_env = {
        "PREHEAT_MODEL_DIR": str(embedding_dir),
        "PREHEAT_THREADS": "1",
        "POWERTOOLS_SERVICE_NAME": "tiny",
    }
    config = TwinConfig(
        functions=(
            FunctionSpec("echo", f"{H}.echo", ROOT, env={"TWIN_COLOR": "blue"}, memory_mb=512),
            FunctionSpec("single", f"{H}.sleep", ROOT, reserved_concurrency=1),
            FunctionSpec("slow", f"{H}.sleep", ROOT, timeout_s=1.0),
            FunctionSpec("crash", f"{H}.crash", ROOT),
            FunctionSpec("fail", f"{H}.fail", ROOT),
            FunctionSpec("initfail", "tests.support.twin_initfail.handler", ROOT),
            FunctionSpec("emf", f"{H}.emf", ROOT),
            FunctionSpec("http", f"{H}.http", ROOT, url_auth="NONE"),
            FunctionSpec("brief", f"{H}.echo", ROOT, keep_alive_s=1.0),
            FunctionSpec("tick", f"{H}.tick", ROOT),
            FunctionSpec("relay", f"{H}.relay", ROOT),
            FunctionSpec("tiny", "functions.inference.handler.handler", ROOT, env=tiny_env),
        ),
        # rate(1 minute) at 30x: every 2 s.
        schedules=(Schedule("tick-every-minute", "rate(1 minute)", "tick", "live"),),
        schedule_time_scale=30.0,
        state_dir=tmp_path_factory.mktemp("twin"),
    )
    with running(config) as client:
        yield client


@pytest.fixture(scope="module")
def lam(twin: TwinClient) -> Any:
    # No retries: a throttle must reach the test, not be retried away by botocore.
    return twin.boto3_client("lambda", retries={"total_max_attempts": 1}, read_timeout=60)


def executions(twin: TwinClient, function: str) -> int:
    """Invocations of the function in flight in the twin."""
    return int(next(f for f in twin.functions() if f["name"] == function)["executions"])


def invoke(lam: Any, name: str, payload: Any, **kwargs: Any) -> tuple[dict[str, Any], Any]:
    response = lam.invoke(FunctionName=name, Payload=json.dumps(payload).encode(), **kwargs)
    return response, json.loads(response["Payload"].read() or b"null")


def test_boto3_invoke_runs_the_function_in_a_lambda_environment(lam: Any) -> None:
    response, body = invoke(lam, "echo", {"hello": "world"}, Qualifier="live", LogType="Tail")
    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    assert response["ExecutedVersion"] == "1"
    assert body["event"] == {"hello": "world"}
    assert body["function_name"] == "echo"
    assert body["memory"] == "512"
    assert body["arn"].endswith(":function:echo:live")
    assert 0 < body["remaining_ms"] <= 30_000
    env = body["env"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "echo"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "1"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert env["AWS_LAMBDA_RUNTIME_API"].startswith("127.0.0.1:")
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"].endswith(f"[1]{env['AWS_LAMBDA_LOG_STREAM_NAME'][-32:]}")
    assert env["_HANDLER"] == f"{H}.echo"
    assert env["LAMBDA_TASK_ROOT"] == str(ROOT)
    assert env["TWIN_COLOR"] == "blue"
    tail = base64.b64decode(response["LogResult"]).decode()
    assert f"REPORT RequestId: {body['request_id']}" in tail
    assert "Init Duration:" in tail  # this was the alias's first request: a cold start
    assert "twin_handlers init" in tail  # INIT's own output belongs to the first invocation's log

    context = base64.b64encode(json.dumps({"custom": {"caller": "test"}}).encode()).decode()
    response, again = invoke(lam, "echo", {"n": 2}, Qualifier="live", LogType="Tail", ClientContext=context)
    assert again["pid"] == body["pid"]  # warm: the same instance
    assert again["client_custom"] == {"caller": "test"}
    tail = base64.b64decode(response["LogResult"]).decode()
    assert "REPORT RequestId" in tail and "Init Duration" not in tail
    for field in ("Duration:", "Billed Duration:", "Memory Size: 512 MB", "Max Memory Used:"):
        assert field in tail


def test_versions_have_their_own_instances_and_unknown_qualifiers_are_404(lam: Any) -> None:
    _, latest = invoke(lam, "echo", {})
    _, live = invoke(lam, "echo", {}, Qualifier="live")
    _, version = invoke(lam, "echo", {}, Qualifier="1")
    assert latest["env"]["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert latest["pid"] != live["pid"]
    assert version["pid"] == live["pid"]  # the alias points at version 1
    with pytest.raises(ClientError) as caught:
        invoke(lam, "echo", {}, Qualifier="nope")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
    # FunctionName as an ARN with a qualifier works too.
    _, by_arn = invoke(lam, "arn:aws:lambda:us-east-1:123456789012:function:echo:live", {})
    assert by_arn["pid"] == live["pid"]


def test_bad_payloads_are_rejected_with_lambdas_errors(lam: Any) -> None:
    with pytest.raises(ClientError) as caught:
        lam.invoke(FunctionName="echo", Payload=b"{not json")
    assert caught.value.response["Error"]["Code"] == "InvalidRequestContentException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as caught:
        lam.invoke(FunctionName="no-such-function", Payload=b"{}")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_dry_run_and_event_invocations(lam: Any, twin: TwinClient) -> None:
    assert lam.invoke(FunctionName="echo", InvocationType="DryRun")["StatusCode"] == 204
    seq, _ = twin.invocations()
    response = lam.invoke(FunctionName="echo", InvocationType="Event", Payload=b'{"async": true}')
    assert response["StatusCode"] == 202
    records = wait_for(
        lambda: [r for r in twin.invocations(seq, "echo")[1] if r["source"] == "event"],
        what="the event invocation",
    )
    assert records[0]["outcome"] == "ok"


def test_function_errors_are_lambda_shaped(lam: Any) -> None:
    response, body = invoke(lam, "fail", {"value": 7})
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "bad input: 7"


def test_init_failure_fails_the_request_with_the_init_error(lam: Any, twin: TwinClient) -> None:
    response, body = invoke(lam, "initfail", {})
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "RuntimeError"
    assert "refuses to load" in body["errorMessage"]
    describe = {f["name"]: f for f in twin.functions()}
    assert describe["initfail"]["instances"] == []  # the failed environment is gone


def test_a_crash_fails_only_its_own_request_and_the_instance_is_replaced(lam: Any, twin: TwinClient) -> None:
    _, first = invoke(lam, "crash", {})
    # Another instance busy at the same time must not be disturbed by the crash.
    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(invoke, lam, "single", {"seconds": 0.5})
        time.sleep(0.1)
        crashed, body = invoke(lam, "crash", {"crash": True})
        _, slept = slow.result()
    assert crashed["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in body["errorMessage"]
    assert slept["slept"] == 0.5
    _, after = invoke(lam, "crash", {})
    assert after["pid"] != first["pid"]  # a new environment
    _, records = twin.invocations(0, "crash")
    assert [r["outcome"] for r in records[-3:]] == ["ok", "crash", "ok"]
    assert records[-1]["cold"] is True


def test_a_timeout_kills_the_instance_and_is_reported(lam: Any, twin: TwinClient) -> None:
    started = time.monotonic()
    response, body = invoke(lam, "slow", {"seconds": 10})
    elapsed = time.monotonic() - started
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in body["errorMessage"]
    assert elapsed < 8  # the twin did not wait for the handler
    _, ok = invoke(lam, "slow", {"seconds": 0})
    assert ok["slept"] == 0
    _, records = twin.invocations(0, "slow")
    assert records[-2]["outcome"] == "timeout" and records[-1]["cold"] is True


def test_reserved_concurrency_throttles_beyond_the_cap(lam: Any, twin: TwinClient) -> None:
    barrier = threading.Barrier(2)

    def call(_: int) -> str:
        barrier.wait()
        try:
            invoke(lam, "single", {"seconds": 1.0})
            return "ok"
        except ClientError as exc:
            assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 429
            assert exc.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
            return exc.response["Error"]["Code"]

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(call, range(2)))
    assert outcomes == ["TooManyRequestsException", "ok"]
    # The Function URL answers a throttle with 429 and the reason.
    with ThreadPoolExecutor(1) as pool:
        busy = pool.submit(invoke, lam, "single", {"seconds": 1.0})
        wait_for(lambda: executions(twin, "single") == 1, what="the first invocation to start")
        url = twin.url_client("single")
        reply = url.request("POST", "/", {"seconds": 0})
        url.close()
        busy.result()
    assert reply.status == 429
    assert reply.json()["reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    # Raised through the concurrency API, the cap lifts.
    lam.put_function_concurrency(FunctionName="single", ReservedConcurrentExecutions=2)
    try:
        assert lam.get_function_concurrency(FunctionName="single")["ReservedConcurrentExecutions"] == 2
        barrier.reset()
        with ThreadPoolExecutor(2) as pool:
            assert sorted(pool.map(call, range(2))) == ["ok", "ok"]
    finally:
        lam.put_function_concurrency(FunctionName="single", ReservedConcurrentExecutions=1)


def test_idle_instances_are_reaped_after_the_keep_alive(lam: Any) -> None:
    response, first = invoke(lam, "brief", {}, LogType="Tail")
    _, warm = invoke(lam, "brief", {})
    assert warm["pid"] == first["pid"]
    time.sleep(2.5)  # keep-alive 1 s, reaper every 0.5 s
    response, later = invoke(lam, "brief", {}, LogType="Tail")
    assert later["pid"] != first["pid"]
    assert "Init Duration" in base64.b64decode(response["LogResult"]).decode()


def test_provisioned_concurrency_serves_concurrent_requests_without_cold_starts(
    lam: Any, twin: TwinClient
) -> None:
    with pytest.raises(ClientError) as caught:
        lam.get_provisioned_concurrency_config(FunctionName="tiny", Qualifier="live")
    assert caught.value.response["Error"]["Code"] == "ProvisionedConcurrencyConfigNotFoundException"
    with pytest.raises(ClientError) as caught:
        lam.put_provisioned_concurrency_config(
            FunctionName="tiny", Qualifier="$LATEST", ProvisionedConcurrentExecutions=1
        )
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValueException"

    put = lam.put_provisioned_concurrency_config(
        FunctionName="tiny", Qualifier="live", ProvisionedConcurrentExecutions=2
    )
    assert put["RequestedProvisionedConcurrentExecutions"] == 2
    assert put["Status"] in ("IN_PROGRESS", "READY")
    try:
        ready = wait_for(
            lambda: (
                (c := lam.get_provisioned_concurrency_config(FunctionName="tiny", Qualifier="live"))["Status"]
                == "READY"
                and c
            ),
            timeout=60,
            what="provisioned concurrency READY",
        )
        assert ready["AvailableProvisionedConcurrentExecutions"] == 2
        listed = lam.list_provisioned_concurrency_configs(FunctionName="tiny")[
            "ProvisionedConcurrencyConfigs"
        ]
        assert [c["FunctionArn"].rsplit(":", 1)[1] for c in listed] == ["live"]

        url = twin.url_client("tiny")
        url.close()
        body = {"input": "hello world", "model": "tiny"}
        seq, _ = twin.invocations()
        # Two requests at once: the first held on its instance by a warm-up ping (two plain requests of
        # a few ms overlap only on a quiet machine), the second must land on the other provisioned one.
        with ThreadPoolExecutor(1) as pool:
            held = pool.submit(invoke, lam, "tiny", {"preheat": "warmup", "hold_ms": 3000}, Qualifier="live")
            wait_for(lambda: executions(twin, "tiny") == 1, what="the ping to hold a provisioned instance")
            client = twin.url_client("tiny")
            reply = client.request("POST", "/v1/embeddings", body)
            client.close()
            assert held.result()[1]["preheat"] == "warmup"
        assert reply.status == 200
        assert reply.headers["x-preheat-start"] == "provisioned"
        _, records = twin.invocations(seq, "tiny")
        assert len(records) == 2
        assert all(not r["cold"] and r["instance_kind"] == "provisioned-concurrency" for r in records)
        assert records[0]["instance_id"] != records[1]["instance_id"]
        # The metrics the handler printed reached CloudWatch in moto, with their dimensions.
        twin.flush()
        cloudwatch = twin.boto3_client("cloudwatch")
        now = dt.datetime.now(dt.UTC)
        points = cloudwatch.get_metric_statistics(
            Namespace="Preheat",
            MetricName="Invocations",
            Dimensions=[{"Name": "service", "Value": "tiny"}, {"Name": "start", "Value": "provisioned"}],
            StartTime=now - dt.timedelta(minutes=10),
            EndTime=now + dt.timedelta(minutes=1),
            Period=3600,
            Statistics=["Sum"],
        )["Datapoints"]
        assert sum(p["Sum"] for p in points) == 1  # the request (the ping is a start=warmup one)
        cold_starts = cloudwatch.get_metric_statistics(
            Namespace="Preheat",
            MetricName="ColdStarts",
            Dimensions=[{"Name": "service", "Value": "tiny"}, {"Name": "start", "Value": "provisioned"}],
            StartTime=now - dt.timedelta(minutes=10),
            EndTime=now + dt.timedelta(minutes=1),
            Period=3600,
            Statistics=["Sum"],
        )["Datapoints"]
        assert sum(p["Sum"] for p in cold_starts) == 0
    finally:
        lam.delete_provisioned_concurrency_config(FunctionName="tiny", Qualifier="live")
    wait_for(
        lambda: (
            not [
                i
                for f in twin.functions()
                if f["name"] == "tiny"
                for i in f["instances"]
                if i["kind"] == "provisioned-concurrency"
            ]
        ),
        what="provisioned instances to go",
    )


def test_emf_lines_become_cloudwatch_metrics_with_their_units(lam: Any, twin: TwinClient) -> None:
    invoke(lam, "emf", {"kind": "x", "things": 3})
    invoke(lam, "emf", {"kind": "x", "things": 4})
    assert twin.flush()["flushed"]
    cloudwatch = twin.boto3_client("cloudwatch")
    metrics = cloudwatch.list_metrics(Namespace="TwinTest")["Metrics"]
    assert {m["MetricName"] for m in metrics} == {"Things", "Took"}
    assert {(d["Name"], d["Value"]) for m in metrics for d in m["Dimensions"]} == {
        ("service", "twin-test"),
        ("kind", "x"),
    }
    now = dt.datetime.now(dt.UTC)
    stats = cloudwatch.get_metric_statistics(
        Namespace="TwinTest",
        MetricName="Things",
        Dimensions=[{"Name": "service", "Value": "twin-test"}, {"Name": "kind", "Value": "x"}],
        StartTime=now - dt.timedelta(minutes=10),
        EndTime=now + dt.timedelta(minutes=1),
        Period=3600,
        Statistics=["Sum", "SampleCount"],
    )["Datapoints"]
    assert sum(p["Sum"] for p in stats) == 7 and sum(p["SampleCount"] for p in stats) == 2
    assert {p["Unit"] for p in stats} == {"Count"}
    took = cloudwatch.get_metric_statistics(
        Namespace="TwinTest",
        MetricName="Took",
        Dimensions=[{"Name": "service", "Value": "twin-test"}, {"Name": "kind", "Value": "x"}],
        StartTime=now - dt.timedelta(minutes=10),
        EndTime=now + dt.timedelta(minutes=1),
        Period=3600,
        Statistics=["SampleCount", "Maximum"],
        Unit="Milliseconds",
    )["Datapoints"]
    assert sum(p["SampleCount"] for p in took) == 4 and max(p["Maximum"] for p in took) == 2.5
    # The log lines went to CloudWatch Logs as well, under Lambda's group name.
    logs = twin.boto3_client("logs")
    streams = logs.describe_log_streams(logGroupName="/aws/lambda/emf")["logStreams"]
    assert streams
    messages = [
        e["message"]
        for s in streams
        for e in logs.get_log_events(logGroupName="/aws/lambda/emf", logStreamName=s["logStreamName"])[
            "events"
        ]
    ]
    assert any(m.startswith("REPORT RequestId") for m in messages)
    assert any('"TwinTest"' in m for m in messages)


def test_function_url_over_https_sends_payload_v2_events(twin: TwinClient) -> None:
    url = twin.state.url("http")
    assert url.startswith("https://127.0.0.1:")
    request = urllib.request.Request(
        url + "items/42?color=red&color=blue&empty=",
        data=b'{"a": 1}',
        method="PUT",
        headers={"content-type": "application/json", "cookie": "session=abc; theme=dark", "x-custom": "v"},
    )
    context = ssl.create_default_context(cafile=twin.state.ca)
    with urllib.request.urlopen(request, context=context, timeout=30) as response:
        assert response.status == 201
        assert response.headers["x-twin-test"] == "yes"
        assert response.headers.get_all("set-cookie") == ["a=1; Path=/", "b=2"]
        assert response.headers["x-amzn-requestid"]
        event = json.loads(response.read())
    assert event["version"] == "2.0" and event["routeKey"] == "$default"
    assert event["rawPath"] == "/items/42"
    assert event["rawQueryString"] == "color=red&color=blue&empty="
    assert event["queryStringParameters"] == {"color": "red,blue", "empty": ""}
    assert event["cookies"] == ["session=abc", "theme=dark"]
    assert event["headers"]["x-custom"] == "v" and "cookie" not in event["headers"]
    assert event["headers"]["x-forwarded-proto"] == "https"
    assert event["body"] == '{"a": 1}' and event["isBase64Encoded"] is False
    http = event["requestContext"]["http"]
    assert http["method"] == "PUT" and http["path"] == "/items/42" and http["sourceIp"] == "127.0.0.1"
    assert event["requestContext"]["requestId"] == response.headers["x-amzn-requestid"]
    # Binary bodies arrive base64-encoded.
    client = twin.url_client("http")
    reply = client.request(
        "POST", "/bin", b"\x00\xff\x10", headers={"content-type": "application/octet-stream"}
    )
    client.close()
    sent = reply.json()
    assert sent["isBase64Encoded"] is True and base64.b64decode(sent["body"]) == b"\x00\xff\x10"
    # Without the twin's CA, TLS verification fails: the certificate is really checked.
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, context=ssl.create_default_context(), timeout=10)


def _signed_request(url: str, body: bytes, region: str, secret: str = "testing") -> urllib.request.Request:
    """What the README shows: botocore's SigV4Auth on an AWSRequest, sent with any HTTP client."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="POST", url=url, data=body, headers={"content-type": "application/json"})
    SigV4Auth(Credentials("testing", secret), "lambda", region).add_auth(request)
    return urllib.request.Request(url, data=body, method="POST", headers=dict(request.headers.items()))


def test_an_iam_function_url_answers_signed_requests_only(twin: TwinClient, lam: Any) -> None:
    url = twin.state.url("echo") + "signed?x=1"
    context = ssl.create_default_context(cafile=twin.state.ca)
    assert lam.get_function_url_config(FunctionName="echo")["AuthType"] == "AWS_IAM"
    with urllib.request.urlopen(_signed_request(url, b'{"a": 1}', twin.state.region), context=context,
                                timeout=30) as response:
        assert response.status == 200
        event = json.loads(response.read())["event"]
    iam = event["requestContext"]["authorizer"]["iam"]
    assert (iam["accessKey"], event["requestContext"]["accountId"]) == ("testing", "123456789012")

    def refused(request: urllib.request.Request) -> tuple[int, str, dict[str, Any]]:
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, context=context, timeout=30)
        return caught.value.code, caught.value.headers["x-amzn-errortype"], json.loads(caught.value.read())

    seq, _ = twin.invocations()
    status, kind, body = refused(urllib.request.Request(url, data=b'{"a": 1}', method="POST"))
    assert (status, kind) == (403, "AccessDeniedException") and body["Message"].startswith("Forbidden.")
    tampered = _signed_request(url, b'{"a": 1}', twin.state.region)
    tampered.data = b'{"a": 2}'
    assert refused(tampered)[:2] == (403, "InvalidSignatureException")
    assert refused(_signed_request(url, b"{}", twin.state.region, secret="wrong"))[:2] == (403, "InvalidSignatureException")
    assert refused(_signed_request(url, b"{}", "eu-north-1"))[:2] == (403, "InvalidSignatureException")
    assert twin.invocations(seq, "echo")[1] == []  # refused before the function ran


def test_function_url_maps_function_errors_and_plain_results(twin: TwinClient) -> None:
    with pytest.raises(KeyError):
        twin.state.url("no-such")
    # A function whose result has no statusCode: the JSON is the body, status 200.
    echo = twin.url_client("echo")
    reply = echo.request("GET", "/plain")
    echo.close()
    assert reply.status == 200 and reply.headers["content-type"] == "application/json"
    assert reply.json()["event"]["rawPath"] == "/plain"
    # A function error is a 502 with a reason.
    fail = twin.url_client("fail")
    reply = fail.request("POST", "/", {"value": 1})
    fail.close()
    assert reply.status == 502
    assert reply.json()["errorType"] == "ValueError"


def test_the_tiny_model_answers_through_its_url_cold_then_warm(twin: TwinClient) -> None:
    twin.reset("tiny", provisioned=True)
    client = twin.url_client("tiny")
    first = client.request("POST", "/v1/embeddings", {"input": ["the cat sat", "a dog ran"], "model": "tiny"})
    second = client.request("POST", "/v1/embeddings", {"input": "hello world", "model": "tiny"})
    bad = client.request("POST", "/v1/embeddings", b"{broken")
    client.close()
    assert first.status == 200 and second.status == 200
    assert first.headers["x-preheat-start"] == "cold" and second.headers["x-preheat-start"] == "warm"
    assert len(first.json()["data"]) == 2 and len(first.json()["data"][0]["embedding"]) == 8
    assert bad.status == 400 and bad.json()["error"]["code"]


def test_schedules_fire_the_target_with_a_scheduled_event(twin: TwinClient) -> None:
    records = wait_for(
        lambda: [r for r in twin.invocations(0, "tick")[1] if r["source"] == "schedule:tick-every-minute"],
        timeout=20,
        what="the schedule to fire",
    )
    assert records[0]["outcome"] == "ok" and records[0]["qualifier"] == "live"
    schedules = twin.control("GET", "schedules")["schedules"]
    assert schedules[0]["fired"] >= 1 and schedules[0]["interval_s"] == 2.0
    # What the function received was EventBridge's envelope for this rule.
    log = Path(twin.state.log_dir) / "tick.log"
    wait_for(
        lambda: "TICK Scheduled Event from aws.events" in log.read_text(),
        timeout=10,
        what="the tick's log line",
    )
    assert "rule/tick-every-minute" in log.read_text()
    # And a schedule can be fired on demand through the control API.
    seq, _ = twin.invocations()
    twin.control("POST", "schedules/tick-every-minute/fire")
    wait_for(
        lambda: [r for r in twin.invocations(seq, "tick")[1] if r["source"].startswith("schedule:")],
        what="a fired schedule",
    )


def test_other_aws_apis_are_moto_behind_the_same_endpoint(twin: TwinClient) -> None:
    lam = twin.boto3_client("lambda")
    config = lam.get_function(FunctionName="echo")["Configuration"]
    assert config["Handler"] == f"{H}.echo" and config["MemorySize"] == 512
    assert [a["Name"] for a in lam.list_aliases(FunctionName="echo")["Aliases"]] == ["live"]
    assert lam.get_function_url_config(FunctionName="http")["FunctionUrl"] == twin.state.url("http")
    dynamodb = twin.boto3_client("dynamodb")
    dynamodb.create_table(
        TableName="twin-test",
        KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "key", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName="twin-test", Item={"key": {"S": "a"}, "v": {"N": "1"}})
    assert dynamodb.get_item(TableName="twin-test", Key={"key": {"S": "a"}})["Item"]["v"] == {"N": "1"}


def test_functions_call_aws_apis_through_the_twin(lam: Any) -> None:
    """A function's boto3 (the runtime's) reaches the twin via AWS_ENDPOINT_URL, as a warmer would."""
    response, body = invoke(
        lam, "relay", {"target": "echo", "qualifier": "live", "payload": {"via": "relay"}}
    )
    assert "FunctionError" not in response, body
    assert body["status"] == 200
    assert body["payload"]["event"] == {"via": "relay"}
    assert body["payload"]["env"]["AWS_LAMBDA_FUNCTION_NAME"] == "echo"


def test_head_and_malformed_http_get_answers_not_hangs(twin: TwinClient) -> None:
    import socket

    client = twin.url_client("echo")
    reply = client.request("HEAD", "/anything")
    again = client.request("GET", "/after-head")  # the connection is still usable
    client.close()
    assert reply.status == 200 and reply.body == b""
    assert again.status == 200 and again.json()["event"]["rawPath"] == "/after-head"
    host, port = twin.state.endpoint.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400")
