"""`preheat dashboard` against a real moto_server holding real EMF metric data.

The EMF comes from the runtime's own Telemetry (functions/metrics), is shipped the way Lambda (and the
twin) ships it, as CloudWatch metrics plus the raw log events, and is read back through the same
dashboard definition the stack deploys.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from functions.metrics import Start, Telemetry
from scripts.metrics_query import emf_values, evaluate, nearest_rank
from tests.infra.moto_server import MotoServer

GROUP = "/aws/lambda/preheat-inference"


def test_nearest_rank() -> None:
    values = list(range(1, 101))
    assert [nearest_rank(values, p) for p in (50, 90, 99, 100)] == [50, 90, 99, 100]
    assert nearest_rank([3.0], 99) == 3.0
    assert nearest_rank([10, 20, 30], 50) == 20
    assert math.isnan(nearest_rank([], 50))


def test_metric_math_fill_and_division() -> None:
    nan = math.nan
    inputs = {"a": np.array([1.0, nan, 2.0]), "b": np.array([3.0, 4.0, nan])}
    out = evaluate("100 * FILL(a, 0) / (FILL(a, 0) + FILL(b, 0))", inputs, 3)
    assert out[0] == 25.0 and out[1] == 0.0 and out[2] == 100.0
    zero = evaluate("a / (FILL(b, 0) - FILL(b, 0))", inputs, 3)
    assert all(math.isnan(x) for x in zero), "division by zero gives no datapoint"
    assert math.isnan(evaluate("a + b", inputs, 3)[1]), "a missing input without FILL gives no datapoint"
    with pytest.raises(ValueError, match="not supported"):
        evaluate("__import__('os')", inputs, 3)
    with pytest.raises(ValueError, match="unknown series"):
        evaluate("c * 2", inputs, 3)


def emf_lines(records: list[tuple[str, float]], *, init_ms: float = 250.0) -> list[dict[str, Any]]:
    """EMF blobs exactly as the runtime prints them, one per (start kind, latency ms) record."""
    telemetry = Telemetry(service="preheat", namespace="Preheat", init_ms=init_ms)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for i, (kind, latency) in enumerate(records):
            start = Start(kind, kind != "warm", f"i{i}")
            telemetry.record(
                start, latency_ms=latency, status=200, route="/v1/embeddings", request_id=f"r{i}"
            )
    return [json.loads(line) for line in out.getvalue().splitlines() if '"_aws"' in line]


def ship(moto: MotoServer, blobs: list[dict[str, Any]], *, logs: bool = True) -> None:
    """What CloudWatch does with EMF log lines: metrics from the blobs, and the lines kept as log events."""
    cloudwatch = moto.client("cloudwatch")
    for blob in blobs:
        for (namespace, name, dims), stamp, values in emf_values(json.dumps(blob)):
            unit = next(
                m.get("Unit", "None")
                for d in blob["_aws"]["CloudWatchMetrics"]
                for m in d["Metrics"]
                if m["Name"] == name
            )
            cloudwatch.put_metric_data(
                Namespace=namespace,
                MetricData=[
                    {
                        "MetricName": name,
                        "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(dims)],
                        "Timestamp": datetime.fromtimestamp(stamp / 1000, UTC),
                        "Values": values,
                        "Unit": unit,
                    }
                ],
            )
    if logs:
        client = moto.client("logs")
        with contextlib.suppress(client.exceptions.ResourceAlreadyExistsException):
            client.create_log_group(logGroupName=GROUP)
        stream = f"2026/01/01/[$LATEST]{len(blobs)}"
        client.create_log_stream(logGroupName=GROUP, logStreamName=stream)
        events = sorted(
            ({"timestamp": b["_aws"]["Timestamp"], "message": json.dumps(b)} for b in blobs),
            key=lambda e: e["timestamp"],
        )
        client.put_log_events(logGroupName=GROUP, logStreamName=stream, logEvents=events)


@pytest.fixture
def moto(tmp_path: Path) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path / "moto.log")
    yield server
    server.stop()


def minute(minutes_ago: int) -> datetime:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return now - timedelta(minutes=minutes_ago)


def at(blobs: list[dict[str, Any]], moment: datetime) -> list[dict[str, Any]]:
    for i, blob in enumerate(blobs):
        blob["_aws"]["Timestamp"] = int((moment + timedelta(milliseconds=10 * i)).timestamp() * 1000)
    return blobs


def series(data: dict[str, Any], graph: str) -> dict[str, dict[str, float]]:
    (g,) = [g for g in data["graphs"] if g["title"] == graph]
    return {s["label"]: {t: v for t, v in s["points"]} for s in g["series"]}


def run_dashboard(moto: MotoServer, out: Path) -> tuple[dict[str, Any], str]:
    from scripts.cli import main

    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["dashboard", "--endpoint-url", moto.url, "--out", str(out), "--minutes", "30"])
    assert code == 0
    return json.loads((out / "dashboard.json").read_text()), stdout.getvalue()


def test_dashboard_draws_cold_and_warm_apart_with_exact_percentiles(moto: MotoServer, tmp_path: Path) -> None:
    a, b = minute(10), minute(5)
    # Minute a: three cold starts (10, 20, 30 ms of handling + 250 ms init) and warm requests of 1..100 ms;
    # minute b: warm requests of 101..200 ms. Shuffled order: percentiles must not depend on arrival.
    first = [("cold", 30.0), ("cold", 10.0), ("cold", 20.0)] + [("warm", float(v)) for v in range(100, 0, -1)]
    second = [("warm", float(v)) for v in range(101, 201)]
    ship(moto, at(emf_lines(first), a) + at(emf_lines(second), b))

    data, printed = run_dashboard(moto, tmp_path / "out")
    ta, tb = a.isoformat(), b.isoformat()
    cold = series(data, "Cold-start latency (ms), start=cold")
    assert cold == {"cold p50": {ta: 270.0}, "cold p90": {ta: 280.0}, "cold p99": {ta: 280.0}}
    warm = series(data, "Warm latency (ms), start=warm")
    assert warm == {
        "warm p50": {ta: 50.0, tb: 150.0},
        "warm p90": {ta: 90.0, tb: 190.0},
        "warm p99": {ta: 99.0, tb: 199.0},
    }
    rate = series(data, "Cold-start rate (% of requests)")["cold starts, % of requests"]
    assert rate[ta] == pytest.approx(100 * 3 / 103) and rate[tb] == 0.0
    init = series(data, "Init duration (ms)")
    assert init["cold p50"] == {ta: 250.0} and init["cold max"] == {ta: 250.0}
    graphs = {g["title"]: g for g in data["graphs"]}
    sources = {s["label"]: s["source"] for s in graphs["Warm latency (ms), start=warm"]["series"]}
    assert set(sources.values()) == {"EMF logs"}
    assert all(not s["warnings"] for g in data["graphs"] for s in g["series"])
    errors = series(data, "Errors")
    # FILL(…, 0) draws a flat zero over the whole window, as CloudWatch does.
    assert errors["5xx"][ta] == 0.0 and set(errors["5xx"].values()) == {0.0} and len(errors["5xx"]) >= 30

    png = (tmp_path / "out" / "dashboard.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000
    page = (tmp_path / "out" / "dashboard.html").read_text()
    for label in ("cold p99", "warm p99", "Cold-start rate (% of requests)", "SageMaker errors"):
        assert label in page
    # One <svg> per graph, drawn in the browser from the series the page carries
    # (tests/infra/test_dashboard_browser.py runs it in Chromium).
    assert page.count("<svg class='graph'") == len(data["graphs"])
    assert '"label": "warm p99"' in page
    assert "warm p99" in printed


def test_percentiles_without_log_events_are_flagged_not_invented(moto: MotoServer, tmp_path: Path) -> None:
    ship(moto, at(emf_lines([("warm", 5.0), ("warm", 7.0)]), minute(3)), logs=False)
    data, printed = run_dashboard(moto, tmp_path / "out")
    (g,) = [g for g in data["graphs"] if g["title"] == "Warm latency (ms), start=warm"]
    for s in g["series"]:
        assert s["points"] == []
        assert "2 of 2 datapoints have no EMF log event" in s["warnings"][0]
    assert "no EMF log event" in " ".join(printed.split())
    # Statistics moto computes itself still come through.
    invocations = series(data, "Cold-start rate (% of requests)")
    assert list(invocations["cold starts, % of requests"].values()) == [0.0]


def test_target_comes_from_the_twin_state(tmp_path: Path) -> None:
    import argparse

    from scripts.dashboard import add_arguments, resolve_target

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    state = tmp_path / ".preheat"
    state.mkdir()
    assert resolve_target(parser.parse_args(["--state-dir", str(state)])) is None  # no twin running
    (state / "twin.json").write_text(json.dumps({"moto": "http://127.0.0.1:5555", "region": "eu-west-1"}))
    target = resolve_target(parser.parse_args(["--state-dir", str(state)]))
    assert (target.endpoint_url, target.region, target.local) == ("http://127.0.0.1:5555", "eu-west-1", True)
    explicit = resolve_target(
        parser.parse_args(["--state-dir", str(state), "--endpoint-url", "http://127.0.0.1:1"])
    )
    assert explicit.endpoint_url == "http://127.0.0.1:1"
    aws = resolve_target(parser.parse_args(["--state-dir", str(tmp_path / "none"), "--aws"]))
    assert aws.endpoint_url is None and aws.local is False


def test_dashboard_draws_what_the_real_handler_emitted(
    moto: MotoServer,
    tmp_path: Path,
    load_handler: Any,
    embedding_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """End to end on one machine: the Lambda handler serves requests (one cold, then warm), its stdout
    goes to moto as Lambda ships it, and the dashboard shows its cold and warm latency apart."""
    from tests.conftest import context, event

    handler = load_handler(embedding_dir)
    capsys.readouterr()
    for i in range(12):
        reply = handler.handler(event("function_url"), context(f"req-{i}"))
        assert reply["statusCode"] == 200
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [b["start"] for b in blobs] == ["cold"] + ["warm"] * 11
    moment = minute(2)
    ship(moto, at(blobs, moment))
    latencies = {
        kind: sorted(b["Latency"][0] for b in blobs if b["start"] == kind) for kind in ("cold", "warm")
    }

    data, _ = run_dashboard(moto, tmp_path / "out")
    t = moment.isoformat()
    cold = series(data, "Cold-start latency (ms), start=cold")
    assert cold["cold p99"] == {t: latencies["cold"][0]}
    warm = series(data, "Warm latency (ms), start=warm")
    assert warm["warm p50"] == {t: latencies["warm"][5]}  # nearest rank: ceil(0.5 * 11) = 6th
    assert warm["warm p99"] == {t: latencies["warm"][-1]}
    assert cold["cold p99"][t] > warm["warm p99"][t], "a cold start includes the instance's init"
    rate = series(data, "Cold-start rate (% of requests)")["cold starts, % of requests"]
    assert rate[t] == pytest.approx(100 / 12)


def test_without_a_twin_or_a_recorded_run_it_says_what_to_run(tmp_path: Path) -> None:
    from scripts.cli import main

    with pytest.raises(SystemExit, match="make demo"):
        main(["dashboard", "--state-dir", str(tmp_path / "none"), "--out", str(tmp_path / "out")])


def test_a_recorded_run_is_redrawn_after_its_moto_is_gone(tmp_path: Path) -> None:
    """What `make demo` then `preheat dashboard` does: record the run's AWS traffic, stop that moto,
    replay the recording into a fresh one, and draw the same series."""
    from scripts import recording
    from scripts.cli import main
    from scripts.metrics_query import Window

    server = MotoServer(tmp_path / "moto.log", env={"MOTO_RECORDER_FILEPATH": str(tmp_path / "rec.jsonl")})
    try:
        recording.start(server.url)
        a = minute(4)
        records = [("cold", 12.0), ("cold", 18.0)] + [("warm", float(v)) for v in range(1, 41)]
        ship(server, at(emf_lines(records), a))
        live, _ = run_dashboard(server, tmp_path / "live")
        window = Window(
            datetime.fromisoformat(live["start"]), datetime.fromisoformat(live["end"]), live["period_seconds"]
        )
        saved = recording.save(
            server.url,
            tmp_path / "out",
            recording.Run(window.start, window.end, window.period_seconds, "f"),
        )
    finally:
        server.stop()
    assert saved.read_text().count("PutMetricData") >= 1
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["dashboard", "--state-dir", str(tmp_path / "none"), "--out", str(tmp_path / "out")])
    assert code == 0 and "replaying the last demo run" in " ".join(stdout.getvalue().split())
    replayed = json.loads((tmp_path / "out" / "dashboard.json").read_text())
    assert (replayed["start"], replayed["end"]) == (live["start"], live["end"])
    ta = a.isoformat()
    assert series(replayed, "Cold-start latency (ms), start=cold")["cold p50"] == {ta: 262.0}
    assert series(replayed, "Warm latency (ms), start=warm")["warm p50"] == {ta: 20.0}
    for title in (
        "Cold-start latency (ms), start=cold",
        "Warm latency (ms), start=warm",
        "Cold-start rate (% of requests)",
    ):
        assert series(replayed, title) == series(live, title)
