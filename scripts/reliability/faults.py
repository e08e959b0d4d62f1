"""Faults injected into a running twin (stack.py), each checked end to end through the Function URL or
Lambda's Invoke API, with the outcome a person would look for:

- kill_mid_request: a provisioned instance is SIGSTOPped, handed a request, then SIGKILLed. Only that
  request fails (Lambda's 502 with errorType Runtime.ExitError); a request at the same time succeeds
  on another instance; the twin replaces the provisioned instance; the next request succeeds on it.
- broken_model: the function's weights are truncated. Every request fails at INIT with a message
  naming the file (Invoke's errorMessage and the function's log); none is ever answered with 200.
- cache_outage: the Redis shared tier is killed, restarted, then paused (SIGSTOP: connections hang)
  under load. Every answer is still correct; latency stays bounded by the tier's timeout.
- controller_throttled: CloudWatch and the provisioned-concurrency API throttle the controller. It
  retries with backoff, never raises, never sets more than its maximum; persistent throttling is
  reported (ControllerErrors), not raised.
- warmer_fanout: the warmer is asked for more pings than the target's reserved concurrency, and for
  an absurd fan-out. Throttled pings are counted, the fan-out is clamped, nothing crashes.
"""

from __future__ import annotations

import base64
import contextlib
import importlib
import io
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from scripts.reliability import load, stack


@dataclass
class FaultResult:
    name: str
    passed: bool = False
    outcome: str = ""  # one line for the table
    details: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def check(self, condition: bool, problem: str) -> None:
        if not condition:
            self.problems.append(problem)

    def finish(self, outcome: str) -> FaultResult:
        self.passed = not self.problems
        self.outcome = outcome if self.passed else f"{outcome} — FAILED: {'; '.join(self.problems)}"
        return self

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "outcome": self.outcome, "problems": self.problems,
                "details": self.details}


def _instances(twin: Any, function: str) -> list[dict[str, Any]]:
    return next((f["instances"] for f in twin.functions() if f["name"] == function), [])


def _wait(check: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    return None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


# --- an instance killed mid-request ---------------------------------------------------------------


def kill_mid_request(
    twin: Any, model: str, reference: dict[str, np.ndarray], atol: float, *, function: str = stack.VICTIM,
    ready_timeout: float = 120.0,
) -> FaultResult:
    result = FaultResult("instance killed mid-request")
    text = next(iter(reference))
    body = {"input": [text], "model": model}

    def provisioned_idle() -> list[dict[str, Any]]:
        return [i for i in _instances(twin, function) if i["kind"] == "provisioned-concurrency" and i["state"] == "idle"]

    first = _wait(provisioned_idle, ready_timeout)
    if not first:
        result.check(False, f"no provisioned instance of {function} became ready in {ready_timeout:.0f} s")
        return result.finish("not run")
    victim = first[0]
    seq, _ = twin.invocations()
    os.kill(victim["pid"], signal.SIGSTOP)
    killed: dict[str, Any] = {}
    try:
        def send_killed() -> None:
            client = twin.url_client(function)
            try:
                killed["reply"] = client.request("POST", "/v1/embeddings", body)
            except Exception as exc:  # the test reads what happened from here
                killed["error"] = repr(exc)
            finally:
                client.close()

        sender = threading.Thread(target=send_killed, daemon=True)
        sender.start()
        busy = _wait(lambda: any(i["pid"] == victim["pid"] and i["state"] == "busy"
                                 for i in _instances(twin, function)), 30)
        result.check(bool(busy), "the request never reached the stopped instance")
        # Meanwhile another request arrives: it must be served by another instance.
        other_client = twin.url_client(function)
        other = other_client.request("POST", "/v1/embeddings", body)
        other_client.close()
        os.kill(victim["pid"], signal.SIGKILL)
        sender.join(60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim["pid"], signal.SIGKILL)
    reply = killed.get("reply")
    result.check(reply is not None, f"the killed request got no answer: {killed.get('error')}")
    error_type = (_json(reply.body) or {}).get("errorType") if reply is not None else None
    result.check(reply is not None and reply.status == 502, f"killed request: status {getattr(reply, 'status', None)}, expected 502")
    result.check(error_type == "Runtime.ExitError", f"killed request: errorType {error_type!r}, expected Runtime.ExitError")
    result.check(other.status == 200 and load.check_answer(other.body, [text], reference, atol) is None,
                 f"the concurrent request failed: {other.status} {other.body[:200]!r}")
    replaced = _wait(lambda: [i for i in provisioned_idle() if i["pid"] != victim["pid"]], ready_timeout)
    result.check(bool(replaced), "the provisioned instance was not replaced")
    client = twin.url_client(function)
    after = client.request("POST", "/v1/embeddings", body)
    client.close()
    result.check(after.status == 200 and load.check_answer(after.body, [text], reference, atol) is None,
                 f"the next request failed: {after.status} {after.body[:200]!r}")
    _, records = twin.invocations(seq, function)
    outcomes = [r["outcome"] for r in records]
    result.check(outcomes.count("crash") == 1, f"platform outcomes {outcomes}: expected exactly one crash")
    result.details = {
        "killed_status": getattr(reply, "status", None),
        "killed_error_type": error_type,
        "concurrent_status": other.status,
        "concurrent_start": other.headers.get("x-preheat-start"),
        "next_status": after.status,
        "next_start": after.headers.get("x-preheat-start"),
        "old_pid": victim["pid"],
        "new_pid": replaced[0]["pid"] if replaced else None,
        "platform_outcomes": outcomes,
    }
    return result.finish(
        f"only the killed request failed (502 {error_type}); concurrent one {other.status}; instance replaced "
        f"(pid {victim['pid']} -> {result.details['new_pid']}); next {after.status} "
        f"({after.headers.get('x-preheat-start')})"
    )


# --- a corrupted model --------------------------------------------------------------------------


def broken_model(twin: Any, damaged_file: str, *, function: str = stack.BROKEN, attempts: int = 3) -> FaultResult:
    result = FaultResult("truncated model file")
    seq, _ = twin.invocations()
    statuses = []
    for _ in range(attempts):
        client = twin.url_client(function)
        statuses.append(client.request("POST", "/v1/embeddings", {"input": "hello", "model": "any"}))
        client.close()
    lam = twin.boto3_client("lambda", retries={"total_max_attempts": 1}, read_timeout=120)
    invoked = lam.invoke(FunctionName=function, Qualifier="live", Payload=b'{"input": "hello"}', LogType="Tail")
    payload = _json(invoked["Payload"].read()) or {}
    message = str(payload.get("errorMessage", ""))
    tail = base64.b64decode(invoked.get("LogResult", "")).decode(errors="replace")
    _, records = twin.invocations(seq, function)
    outcomes = [r["outcome"] for r in records]
    result.check(all(r.status == 502 for r in statuses), f"URL statuses {[r.status for r in statuses]}, expected 502s")
    result.check(invoked.get("FunctionError") == "Unhandled", f"Invoke FunctionError {invoked.get('FunctionError')!r}")
    result.check(damaged_file in message, f"the init error does not name {damaged_file}: {message[:300]!r}")
    result.check(damaged_file in tail, "the function's log does not name the damaged file")
    result.check("ok" not in outcomes, f"a request was served by the broken model: {outcomes}")
    result.check(not _instances(twin, function), "a broken instance was kept")
    result.details = {"url_statuses": [r.status for r in statuses], "error_type": payload.get("errorType"),
                      "message": message[:400], "platform_outcomes": outcomes}
    return result.finish(
        f"{len(outcomes)}/{len(outcomes)} requests failed at INIT ({payload.get('errorType')}), 0 served; "
        f"message names {damaged_file}"
    )


# --- the shared cache down or slow --------------------------------------------------------------


def cache_outage(
    twin: Any, redis: Any, model: str, pool: Sequence[str], reference: dict[str, np.ndarray], atol: float, *,
    function: str = stack.CACHED, phase_s: float = 2.0, clients: int = 2, hang_s: float = 5.0,
    progress: Callable[[str], None] | None = None,
) -> FaultResult:
    result = FaultResult("shared cache (Redis) killed, then paused")
    client = twin.url_client(function)
    client.request("POST", "/v1/embeddings", {"input": [pool[0]], "model": model})  # INIT outside the phases
    client.close()
    actions: list[tuple[str, Callable[[], None]]] = [
        ("healthy", lambda: None),
        ("killed", redis.kill),
        ("restarted", lambda: redis.start(redis.port)),
        ("paused", redis.pause),
        ("resumed", redis.resume),
    ]
    phases = {}
    try:
        for name, action in actions:
            if progress:
                progress(f"cache outage: {name}")
            action()
            phases[name] = load.run_level(lambda: twin.url_client(function), model, pool, reference,
                                          concurrency=clients, seconds=phase_s, atol=atol, timeout=hang_s)
    finally:
        with contextlib.suppress(Exception):
            redis.resume()
    for name, report in phases.items():
        bad = report.errors + report.wrong + report.hangs + report.throttled
        result.check(bad == 0, f"{name}: {report.errors} errors, {report.wrong} wrong, {report.hangs} hangs: {report.samples}")
        result.check(report.correct > 0, f"{name}: no request completed")
    result.check(phases["healthy"].cache.get("redis", 0) > 0, "no answer came from Redis while it was up")
    result.details = {name: r.as_dict() for name, r in phases.items()}
    worst = max((r.percentile(99) or 0.0) for r in phases.values())
    total = sum(r.correct for r in phases.values())
    return result.finish(f"{total} requests, 0 failed, 0 wrong; worst phase p99 {worst:.1f} ms")


# --- the controller throttled -------------------------------------------------------------------


@contextlib.contextmanager
def patched_env(values: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def put_history(cloudwatch: Any, service: str, now: datetime, minutes: int = 30, per_minute: int = 60,
                latency_ms: float = 2000.0) -> None:
    """A busy history: `per_minute` invocations of `latency_ms` each, for the last `minutes` minutes."""
    dims = [{"Name": "service", "Value": service}, {"Name": "start", "Value": "warm"}]
    data = []
    for ago in range(2, minutes + 2):
        ts = now - timedelta(minutes=ago)
        data.append({"MetricName": "Invocations", "Dimensions": dims, "Timestamp": ts, "Value": per_minute,
                     "Unit": "Count"})
        data.append({"MetricName": "Latency", "Dimensions": dims, "Timestamp": ts,
                     "Value": per_minute * latency_ms, "Unit": "Milliseconds"})
    for i in range(0, len(data), 500):
        cloudwatch.put_metric_data(Namespace="Preheat", MetricData=data[i : i + 500])


def _run_controller(env: Mapping[str, str], now: datetime) -> tuple[dict[str, Any], str, float]:
    """One controller run in this process, as a fresh Lambda instance (its settings read at import)."""
    from warmers import clients

    with patched_env(env):
        clients.reset()
        sys.modules.pop("warmers.controller", None)
        controller = importlib.import_module("warmers.controller")
        out = io.StringIO()
        started = time.perf_counter()
        with contextlib.redirect_stdout(out):
            report = controller.handler({"source": "aws.events", "detail-type": "Scheduled Event",
                                         "time": now.strftime("%Y-%m-%dT%H:%M:%SZ")}, None)
        elapsed = time.perf_counter() - started
        clients.reset()
        sys.modules.pop("warmers.controller", None)
    return report, out.getvalue(), elapsed


def _fault(twin: Any, **spec: Any) -> int:
    """Script a failure into the twin's AWS endpoint (scripts/twin/faults.py); returns its id."""
    return int(twin.control("POST", "faults", spec)["fault"]["id"])


def _answered(twin: Any, fault_id: int) -> int:
    return int(next(f["answered"] for f in twin.control("GET", "faults")["faults"] if f["id"] == fault_id))


def controller_throttled(twin: Any, *, function: str = stack.TENSOR, maximum: int = 2) -> FaultResult:
    result = FaultResult("CloudWatch and the provisioned-concurrency API throttle the controller")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    service = f"rel-history-{int(time.time())}"
    put_history(twin.boto3_client("cloudwatch"), service, now)
    lam = twin.boto3_client("lambda")
    with contextlib.suppress(Exception):
        lam.delete_provisioned_concurrency_config(FunctionName=function, Qualifier="live")
    env = {
        "AWS_ENDPOINT_URL": twin.state.endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": twin.state.region, "AWS_REGION": twin.state.region,
        "PREHEAT_POLICY": "target-tracking", "PREHEAT_METRICS_SERVICE": service, "PREHEAT_HISTORY_MINUTES": "60",
        "PREHEAT_LAMBDA_FUNCTION": function, "PREHEAT_LAMBDA_ALIAS": "live", "PREHEAT_PC_MODE": "direct",
        "PREHEAT_RETRY_ATTEMPTS": "5", "PREHEAT_RETRY_BASE_MS": "20", "PREHEAT_RETRY_CAP_MS": "200",
        "PREHEAT_WARM_HOLD_MS": "0", "PREHEAT_MAX_CONCURRENCY": str(maximum), "PREHEAT_DRY_RUN": "false",
    }
    twin.control("DELETE", "faults")
    try:
        # What the policy wants with room to spare (a dry run), then under the maximum, throttled.
        wish, _, _ = _run_controller({**env, "PREHEAT_MAX_CONCURRENCY": "50", "PREHEAT_DRY_RUN": "true"}, now)
        reads = _fault(twin, operation="GetMetricData", count=2, status=400, code="ThrottlingException")
        puts = _fault(twin, operation="PutProvisionedConcurrencyConfig", function=function, count=3)
        report, _, elapsed = _run_controller(env, now)
        throttled_reads, throttled_puts = _answered(twin, reads), _answered(twin, puts)
        action: dict[str, Any] = next((a for a in report.get("actions", []) if "desired" in a), {})
        requested = lam.get_provisioned_concurrency_config(FunctionName=function, Qualifier="live")[
            "RequestedProvisionedConcurrentExecutions"
        ]
        # Persistent throttling: reported and counted, the setting left as it was.
        lam.put_provisioned_concurrency_config(FunctionName=function, Qualifier="live", ProvisionedConcurrentExecutions=1)
        wall = _fault(twin, operation="PutProvisionedConcurrencyConfig", function=function, count=1000)
        stuck, stuck_out, stuck_elapsed = _run_controller(env, now)
        after_stuck = lam.get_provisioned_concurrency_config(FunctionName=function, Qualifier="live")
        stuck_calls = _answered(twin, wall)
        # CloudWatch down: nothing to decide on, nothing touched.
        _fault(twin, operation="GetMetricData", count=1000, status=400, code="ThrottlingException")
        blind, _, blind_elapsed = _run_controller(env, now)
    finally:
        twin.control("DELETE", "faults")
        with contextlib.suppress(Exception):
            lam.delete_provisioned_concurrency_config(FunctionName=function, Qualifier="live")
    wanted = wish.get("decision", {}).get("provisioned", 0)
    result.check(wanted > maximum, f"the scenario needs a policy that wants more than {maximum}, it wanted {wanted}")
    result.check("error" not in report, f"the throttled run failed: {report.get('error')}")
    result.check(action.get("action") == "set" and action.get("desired") == maximum,
                 f"expected a set to {maximum}, got {action}")
    result.check(requested == maximum, f"provisioned concurrency is {requested}, the maximum is {maximum}")
    result.check(throttled_reads == 2 and throttled_puts == 3, f"throttled {throttled_reads} reads, {throttled_puts} puts")
    result.check(action.get("attempts", 0) >= 4 and action.get("slept_ms", 0) > 0,
                 f"the throttled put was not retried with backoff: {action}")
    stuck_action: dict[str, Any] = next((a for a in stuck.get("actions", []) if a.get("action") == "error"), {})
    result.check(bool(stuck_action), f"persistent throttling was not reported: {stuck}")
    result.check(stuck_calls == 5, f"persistent throttling: {stuck_calls} calls, PREHEAT_RETRY_ATTEMPTS is 5")
    result.check('"ControllerErrors": 1' in stuck_out or '"ControllerErrors":1' in stuck_out,
                 "persistent throttling was not counted in ControllerErrors")
    result.check(after_stuck["RequestedProvisionedConcurrentExecutions"] == 1, "a throttled put changed the setting")
    result.check(blind.get("error", {}).get("code") == "metrics_unavailable",
                 f"a CloudWatch outage was not reported as metrics_unavailable: {blind}")
    result.details = {
        "policy_wants": wanted, "maximum": maximum, "set_to": requested, "attempts": action.get("attempts"),
        "slept_ms": action.get("slept_ms"), "throttled_reads": throttled_reads, "throttled_puts": throttled_puts,
        "run_s": round(elapsed, 2), "persistent_run_s": round(stuck_elapsed, 2), "persistent_calls": stuck_calls,
        "metrics_outage_run_s": round(blind_elapsed, 2),
        "persistent_error": str(stuck_action.get("error", ""))[:200],
    }
    return result.finish(
        f"policy wanted {wanted}, set {requested} (max {maximum}) after 2 throttled reads and 3 throttled puts "
        f"({action.get('slept_ms')} ms of backoff); persistent throttling reported after {stuck_calls} tries "
        f"({stuck_elapsed:.1f} s), CloudWatch down reported; never raised"
    )


# --- a warmer fan-out beyond the reserved concurrency ------------------------------------------


def warmer_fanout(twin: Any, reserved: int, maximum: int, *, warmer: str = stack.WARMER,
                  target: str = stack.TARGET) -> FaultResult:
    result = FaultResult("warmer fan-out beyond the reserved concurrency")
    lam = twin.boto3_client("lambda", retries={"total_max_attempts": 1}, read_timeout=120)

    def invoke(function: str, payload: dict[str, Any]) -> tuple[dict[str, Any], Any, float]:
        started = time.perf_counter()
        response = lam.invoke(FunctionName=function, Payload=json.dumps(payload).encode())
        return response, _json(response["Payload"].read()), time.perf_counter() - started

    seq, _ = twin.invocations()
    fanout = reserved + 4
    response, over, _ = invoke(warmer, {"concurrency": fanout, "hold_ms": 500})
    _, records = twin.invocations(seq, target)
    instances = {r["instance_id"] for r in records if r.get("instance_id")}
    throttled_platform = sum(1 for r in records if r["outcome"] == "throttled")
    result.check("FunctionError" not in response, f"the warmer failed: {over}")
    over = over or {}
    result.check(over.get("requested") == fanout, f"requested {over.get('requested')}, expected {fanout}")
    result.check(over.get("answered", 0) <= reserved, f"{over.get('answered')} pings answered, reserved is {reserved}")
    result.check(over.get("error_count", 0) == fanout - over.get("answered", 0), f"uncounted pings: {over}")
    result.check(all(str(e).startswith("TooManyRequestsException") for e in over.get("errors", [])),
                 f"errors other than throttles: {over.get('errors')}")
    result.check(len(instances) <= reserved, f"{len(instances)} instances ran, reserved is {reserved}")
    response2, absurd, _ = invoke(warmer, {"concurrency": 10**9, "hold_ms": 0})
    absurd = absurd or {}
    result.check("FunctionError" not in response2 and absurd.get("requested") == maximum
                 and absurd.get("clamped_from") == 10**9, f"an absurd fan-out was not clamped: {absurd}")
    _, bad, _ = invoke(warmer, {"concurrency": "all of them"})
    result.check((bad or {}).get("error", {}).get("code") == "invalid_concurrency", f"a bad fan-out: {bad}")
    _, hold, hold_s = invoke(target, {"preheat": "warmup", "hold_ms": 10**9})
    result.check((hold or {}).get("error", {}).get("code") == "invalid_hold" and hold_s < 10,
                 f"a ping asking to hold 10^9 ms: {hold} after {hold_s:.1f} s")
    result.details = {
        "fanout": fanout, "reserved": reserved, "answered": over.get("answered"), "throttled": over.get("error_count"),
        "throttled_platform": throttled_platform, "instances": len(instances), "absurd": absurd,
        "bad_event": bad, "huge_hold": hold,
    }
    return result.finish(
        f"{fanout} pings: {over.get('answered')} answered, {over.get('error_count')} throttled and counted "
        f"({throttled_platform} refusals at the platform, retries included); 10^9 clamped to {absurd.get('requested')}"
    )
