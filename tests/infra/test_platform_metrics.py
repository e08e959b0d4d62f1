"""The AWS metrics the twin publishes (scripts/twin/platform_metrics.py) are the ones AWS publishes,
and the ones the dashboard and the stack's scaling policy read.

Two references besides AWS's documentation (quoted in the module): aws-cdk-lib's generated catalog of
Lambda's and SageMaker's CloudWatch metrics (names, default statistic, dimension sets), which ships
in this environment inside aws-cdk-lib's jsii bundle; and the synthesized stack."""

from __future__ import annotations

import re
import tarfile
from pathlib import Path
from typing import Any

import pytest

from infra import dashboard as spec
from scripts.twin.platform_metrics import CATALOG, LAMBDA, SAGEMAKER, MetricSpec


def canned(service: str) -> dict[str, tuple[str, set[tuple[str, ...]]]]:
    """aws-cdk-lib's `<Service>Metrics`: metric -> (default statistic, dimension sets)."""
    import aws_cdk

    bundle = next((Path(aws_cdk.__file__).parent / "_jsii").glob("aws-cdk-lib@*.jsii.tgz"))
    base = f"package/aws-{service}/lib/{service}-canned-metrics.generated"
    with tarfile.open(bundle) as tar:
        members = {m.name: m for m in tar.getmembers() if m.name.startswith(base)}
        js = tar.extractfile(members[f"{base}.js"]).read().decode()  # type: ignore[union-attr]
        dts = tar.extractfile(members[f"{base}.d.ts"]).read().decode()  # type: ignore[union-attr]
    out: dict[str, tuple[str, set[tuple[str, ...]]]] = {}
    for method, name, stat in re.findall(r'static (\w+)\(dimensions\)\{return\{namespace:"[^"]+",metricName:"(\w+)",'
                                         r'dimensionsMap:dimensions,statistic:"(\w+)"', js):
        sets = {tuple(sorted(re.findall(r"(\w+): string", dims)))
                for dims in re.findall(rf"static {method}\((?:this: void, )?dimensions: \{{([^}}]*)\}}", dts)}
        out[name] = (stat, sets)
    return out


@pytest.fixture(scope="module")
def cdk_lambda() -> dict[str, tuple[str, set[tuple[str, ...]]]]:
    return canned("lambda")


def test_lambda_metrics_match_cdks_catalog(cdk_lambda: dict[str, tuple[str, set[tuple[str, ...]]]]) -> None:
    for name, metric in CATALOG[LAMBDA].items():
        assert name in cdk_lambda, f"{name} is not a Lambda metric"
        statistic, sets = cdk_lambda[name]
        assert metric.statistic == statistic, name
        assert set(metric.dimension_sets) == sets, name


def test_sagemaker_metrics_are_sagemakers() -> None:
    cdk = canned("sagemaker")  # the invocation metrics only; the serverless ones are not in it
    for name, (_, sets) in cdk.items():
        if name in CATALOG[SAGEMAKER]:
            assert set(CATALOG[SAGEMAKER][name].dimension_sets) == sets, name
    assert {"Invocations", "Invocation4XXErrors", "Invocation5XXErrors", "ModelLatency", "OverheadLatency"} <= set(cdk)
    # Units as SageMaker documents them: latencies in microseconds, invocation counts unit-less.
    assert {n for n, m in CATALOG[SAGEMAKER].items() if m.unit == "Microseconds"} == {
        "ModelLatency", "OverheadLatency", "ModelSetupTime"}


def readable_with(metric: MetricSpec, stat: str) -> bool:
    """Statistics that mean something for the metric: counts are summed, gauges read at their peak,
    durations by any statistic (percentiles included)."""
    if metric.statistic == "Sum":
        return stat in ("Sum", "SampleCount", "Average")
    if metric.statistic == "Maximum":
        return stat in ("Maximum", "Average", "Minimum")
    return stat in ("Average", "Minimum", "Maximum", "Sum", "SampleCount") or spec.PERCENTILE.match(stat) is not None


def queried(definition: spec.Dashboard) -> list[spec.Metric]:
    return [m for g in definition.graphs() for m in g.metrics() if m.namespace.startswith("AWS/")]


def test_every_aws_metric_the_dashboard_reads_is_published_as_it_reads_it() -> None:
    definition = spec.build("d", spec.Names(function_name="fn", endpoint_name="ep"))
    metrics = queried(definition)
    assert {m.namespace for m in metrics} == {LAMBDA, SAGEMAKER}
    for m in metrics:
        published = CATALOG[m.namespace].get(m.name)
        assert published is not None, f"the dashboard reads {m.namespace} {m.name}, which AWS does not publish"
        assert tuple(sorted(k for k, _ in m.dimensions)) in published.dimension_sets, (m.name, m.dimensions)
        assert readable_with(published, m.stat), (m.name, m.stat)


def test_the_stacks_scaling_metric_is_published_as_it_reads_it(synth: Any, outputs: Any) -> None:
    _, template = synth(outputs.context())
    policies = template.find_resources("AWS::ApplicationAutoScaling::ScalingPolicy")
    custom = [p["Properties"]["TargetTrackingScalingPolicyConfiguration"]["CustomizedMetricSpecification"]
              for p in policies.values()
              if "CustomizedMetricSpecification" in p["Properties"]["TargetTrackingScalingPolicyConfiguration"]]
    assert custom
    for metric in custom:
        published = CATALOG[metric["Namespace"]][metric["MetricName"]]
        assert tuple(sorted(d["Name"] for d in metric["Dimensions"])) in published.dimension_sets
        assert readable_with(published, metric["Statistic"])
