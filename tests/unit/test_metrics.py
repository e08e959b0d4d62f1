"""functions/metrics writes what Powertools writes, and classifies starts as Lambda defines them."""

from __future__ import annotations

import io
import json
import logging

import pytest

from functions.metrics import Start, StartTracker, Telemetry
from functions.metrics.emf import COUNT, MILLISECONDS, EmfWriter, emit
from functions.metrics.logs import configure_stdlib


def test_emf_matches_powertools_byte_for_byte_but_the_timestamp(capsys: pytest.CaptureFixture[str]) -> None:
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    powertools = Metrics(namespace="Compat", service="svc")
    powertools.add_dimension(name="start", value="cold")
    powertools.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=12.5)
    powertools.add_metric(name="ColdStarts", unit=MetricUnit.Count, value=1)
    capsys.readouterr()
    powertools.flush_metrics()
    theirs = json.loads(capsys.readouterr().out)

    stream = io.StringIO()
    EmfWriter("Compat", {"service": "svc"}, stream).emit(
        {"Latency": (12.5, MILLISECONDS), "ColdStarts": (1, COUNT)}, {"start": "cold"}
    )
    ours = json.loads(stream.getvalue())
    for blob in (theirs, ours):
        assert abs(blob["_aws"].pop("Timestamp") / 1000 - __import__("time").time()) < 60
    assert ours == theirs
    assert list(ours) == list(theirs)  # same key order, too


def test_emf_directives_are_reused_but_values_are_fresh() -> None:
    stream = io.StringIO()
    writer = EmfWriter("N", {"service": "s"}, stream)
    writer.emit({"A": (1, COUNT)}, {"start": "warm"})
    writer.emit({"A": (2, COUNT)}, {"start": "cold"})
    writer.emit({"A": (3, COUNT), "B": (4, MILLISECONDS)}, {"start": "warm"})
    blobs = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(b["start"], b["A"]) for b in blobs] == [("warm", [1.0]), ("cold", [2.0]), ("warm", [3.0])]
    assert [m["Name"] for m in blobs[2]["_aws"]["CloudWatchMetrics"][0]["Metrics"]] == ["A", "B"]
    assert blobs[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["start", "service"]]


def test_emit_writes_the_warmers_one_line_blob_with_plain_numbers() -> None:
    stream = io.StringIO()
    returned = emit(
        "Preheat", "preheat-warmer", {"WarmupInstances": 3, "WarmupColdStarts": 1},
        properties={"function": "fn", "qualifier": None}, stream=stream,
    )  # fmt: skip
    (line,) = stream.getvalue().splitlines()
    blob = json.loads(line)
    assert blob == returned
    assert list(blob) == ["_aws", "service", "function", "qualifier", "WarmupInstances", "WarmupColdStarts"]
    assert blob["_aws"]["CloudWatchMetrics"] == [
        {
            "Namespace": "Preheat",
            "Dimensions": [["service"]],
            "Metrics": [{"Name": "WarmupInstances", "Unit": "Count"}, {"Name": "WarmupColdStarts", "Unit": "Count"}],
        }
    ]
    assert (blob["service"], blob["WarmupInstances"], blob["WarmupColdStarts"]) == ("preheat-warmer", 3.0, 1.0)
    assert abs(blob["_aws"]["Timestamp"] / 1000 - __import__("time").time()) < 60


def test_without_msgspec_the_stdlib_writes_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The warmer's runtime has no msgspec: its lines must not differ from the inference function's."""
    metrics, properties = {"DesiredProvisionedConcurrency": 2, "ControllerErrors": 0}, {"policy": "preheat"}
    lines = []
    for missing in (False, True):
        if missing:
            for name in ("msgspec", "msgspec.json"):
                monkeypatch.setitem(__import__("sys").modules, name, None)
        stream = io.StringIO()
        monkeypatch.setattr("time.time", lambda: 1_700_000_000.0)
        emit("N", "s", metrics, properties=properties, stream=stream)
        lines.append(stream.getvalue())
    assert lines[0] == lines[1]
    assert '"ControllerErrors":0.0' in lines[1]


def test_importing_the_emf_writer_imports_only_the_standard_library() -> None:
    import subprocess
    import sys

    probe = "import sys, functions.metrics.emf; print(sorted(m for m in sys.modules if m.startswith(('msgspec', 'functions'))))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['functions', 'functions.lazy', 'functions.metrics', 'functions.metrics.emf']"


def test_the_invocation_record_has_powertools_logger_layout(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from aws_lambda_powertools import Logger

    monkeypatch.setenv(
        "_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    )
    Logger(service="compat-svc").info("invocation", extra={"status": 200, "route": "embeddings"})
    theirs = json.loads(capsys.readouterr().out)
    tracker = StartTracker()
    telemetry = Telemetry(service="compat-svc", namespace="Compat", init_ms=10.0)
    telemetry.record(
        tracker.enter(warmup=False, env={}), latency_ms=1.5, status=200, route="embeddings", request_id="r-1"
    )
    ours = json.loads(capsys.readouterr().out)  # one line: the EMF blob, the record as its metadata
    assert "_aws" in ours and set(theirs) <= set(ours)
    for key in ("level", "message", "service", "xray_trace_id", "status", "route"):
        assert ours[key] == theirs[key]
    assert len(ours["timestamp"]) == len(theirs["timestamp"]) and ours["timestamp"][-5:] == "+0000"


def test_stdlib_records_become_json_with_their_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    logger = configure_stdlib("preheat-test", "svc")
    try:
        raise ValueError("bad thing")
    except ValueError:
        logger.exception("it failed", extra={"request_id": "r-9"})
    line = json.loads(capsys.readouterr().out)
    assert line["level"] == "ERROR" and line["message"] == "it failed" and line["request_id"] == "r-9"
    assert line["exception_name"] == "ValueError" and "bad thing" in line["exception"]
    logging.getLogger("preheat-test").handlers.clear()


@pytest.mark.parametrize(
    ("init_type", "first"),
    [
        (None, "cold"),
        ("on-demand", "cold"),
        ("provisioned-concurrency", "provisioned"),
        ("snap-start", "restore"),
    ],
)
def test_start_kinds(init_type: str | None, first: str) -> None:
    env = {} if init_type is None else {"AWS_LAMBDA_INITIALIZATION_TYPE": init_type}
    tracker = StartTracker()
    a = tracker.enter(warmup=False, env=env)
    b = tracker.enter(warmup=False, env=env)
    c = tracker.enter(warmup=True, env=env)
    assert (a.kind, a.first) == (first, True)
    assert (b.kind, b.first) == ("warm", False)
    assert (c.kind, c.first) == ("warmup", False)
    assert a.instance_id == b.instance_id == c.instance_id != ""


@pytest.mark.parametrize(
    ("init_type", "paid"), [("on-demand", True), ("snap-start", True), ("provisioned-concurrency", False)]
)
def test_a_first_warmup_absorbs_a_start_only_if_someone_would_have_waited(init_type: str, paid: bool) -> None:
    tracker = StartTracker()
    ping = tracker.enter(warmup=True, env={"AWS_LAMBDA_INITIALIZATION_TYPE": init_type})
    assert (ping.kind, ping.first, ping.paid_init) == ("warmup", True, paid)
    assert tracker.enter(warmup=True).paid_init is False


def test_instances_get_distinct_ids_drawn_at_first_invocation() -> None:
    """SnapStart restores many instances from one snapshot taken after init: ids must not be drawn at init."""
    trackers = [StartTracker() for _ in range(3)]
    assert all(t.instance_id == "" for t in trackers)
    ids = {t.enter(warmup=True).instance_id for t in trackers}
    assert len(ids) == 3
    assert isinstance(trackers[0].enter(warmup=False), Start)
