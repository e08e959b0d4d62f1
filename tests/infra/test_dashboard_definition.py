"""The dashboard definition as data: what both CloudWatch and `preheat dashboard` draw."""

from __future__ import annotations

import pytest

from infra import dashboard as spec


def definition(endpoint: str | None = "ep") -> spec.Dashboard:
    return spec.build(
        "d", spec.Names(function_name="fn", endpoint_name=endpoint, cache_levels=("memory", "redis"))
    )


def test_latency_lines_never_mix_start_kinds() -> None:
    for graph in definition().graphs():
        for s in graph.metrics():
            if s.name == "Latency":
                starts = [v for k, v in s.dimensions if k == "start"]
                assert len(starts) == 1, f"{graph.title}/{s.id} must select exactly one start kind"
                assert s.label.startswith(starts[0]) or starts[0] in s.label
                assert s.dimensions[0] == ("service", "preheat"), "EMF dimensions are service + start"


def test_cold_and_warm_each_have_p50_p90_p99() -> None:
    graphs = {g.title: g for g in definition().graphs()}
    for title, start in (
        ("Cold-start latency (ms), start=cold", "cold"),
        ("Warm latency (ms), start=warm", "warm"),
    ):
        stats = [(m.stat, dict(m.dimensions)["start"]) for m in graphs[title].metrics()]
        assert stats == [("p50", start), ("p90", start), ("p99", start)]


def test_cache_levels_follow_the_config() -> None:
    graphs = {g.title: g for g in definition().graphs()}
    levels = {dict(m.dimensions)["level"] for m in graphs["Cache hit rate (%)"].metrics()}
    assert levels == {"memory", "redis"}


def test_sagemaker_graphs_only_with_an_endpoint() -> None:
    assert any("SageMaker" in g.title for g in definition().graphs())
    assert not any("SageMaker" in g.title for g in definition(None).graphs())


def test_alarms_watch_cold_rate_and_p99() -> None:
    alarms = {a.id: a for a in definition().alarms}
    assert set(alarms) == {"ColdStartRate", "WarmLatencyP99", "ColdLatencyP99"}
    assert isinstance(alarms["ColdStartRate"].watched(), spec.Expression)
    watched = alarms["WarmLatencyP99"].watched()
    assert (
        isinstance(watched, spec.Metric) and watched.stat == "p99" and ("start", "warm") in watched.dimensions
    )


def test_widgets_fit_the_24_column_grid() -> None:
    for row in definition().rows:
        assert sum(w.width for w in row) <= 24


def test_validate_rejects_broken_definitions() -> None:
    m = spec.Metric("a", "N", "M", (), "Sum")
    with pytest.raises(ValueError, match="duplicate"):
        spec.validate(spec.Dashboard("d", 60, ((spec.Graph("g", (m, m), "x"),),)))
    with pytest.raises(ValueError, match="unknown ids"):
        spec.validate(
            spec.Dashboard("d", 60, ((spec.Graph("g", (m, spec.Expression("e", "a / b", "e")), "x"),),))
        )
    with pytest.raises(ValueError, match="lower-case"):
        spec.validate(
            spec.Dashboard("d", 60, ((spec.Graph("g", (spec.Metric("A", "N", "M", (), "Sum"),), "x"),),))
        )


def test_percentile_parsing() -> None:
    assert spec.Metric("a", "N", "M", (), "p99").percentile == 99.0
    assert spec.Metric("a", "N", "M", (), "p99.9").percentile == 99.9
    assert spec.Metric("a", "N", "M", (), "Maximum").percentile is None
