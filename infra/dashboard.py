"""The dashboard and its alarms, as data: what CloudWatch shows and what `preheat dashboard` draws.

One definition, two readers: infra/constructs/observability.py turns it into a CloudWatch dashboard and
alarms; scripts/dashboard.py queries the same metrics from a CloudWatch endpoint (moto locally) and
draws the same graphs. Nothing here imports CDK or boto3.

Cold and warm are never mixed: the runtime emits `Latency` with dimensions `service` and `start`
(cold | provisioned | restore | warm | warmup, see functions/metrics/coldstart.py), and every latency
line here selects one `start`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from infra.dashboard_model import (
    COLD,
    GREY,
    PERCENTILE,
    START_USER_KINDS,
    WARM,
    Alarm,
    Annotation,
    Dashboard,
    Expression,
    Graph,
    Metric,
    Names,
    Series,
    Text,
    Thresholds,
    Widget,
    references,
    validate,
)

# The model's names are re-exported: readers use infra.dashboard as the one module.
__all__ = [
    "COLD",
    "GREY",
    "PERCENTILE",
    "START_USER_KINDS",
    "WARM",
    "Alarm",
    "Annotation",
    "Dashboard",
    "Expression",
    "Graph",
    "Metric",
    "Names",
    "Series",
    "Text",
    "Thresholds",
    "Widget",
    "build",
    "for_config",
    "references",
    "validate",
]

if TYPE_CHECKING:
    from infra.config import PreheatConfig

@dataclass(frozen=True)
class _Build:
    names: Names
    limits: Thresholds = field(default_factory=Thresholds)

    def preheat(
        self,
        mid: str,
        name: str,
        stat: str,
        *,
        start: str | None = None,
        level: str | None = None,
        label: str = "",
        color: str | None = None,
        visible: bool = True,
    ) -> Metric:
        dims: list[tuple[str, str]] = [("service", self.names.service)]
        if start is not None:
            dims.append(("start", start))
        if level is not None:
            dims.append(("level", level))
        return Metric(mid, self.names.namespace, name, tuple(dims), stat, label, color, visible)

    def lam(
        self,
        mid: str,
        name: str,
        stat: str,
        *,
        alias: bool = False,
        label: str = "",
        color: str | None = None,
    ) -> Metric:
        dims: list[tuple[str, str]] = [("FunctionName", self.names.function_name)]
        if alias:
            dims.append(("Resource", f"{self.names.function_name}:{self.names.alias}"))
        return Metric(mid, "AWS/Lambda", name, tuple(dims), stat, label, color)

    def sm(
        self,
        mid: str,
        name: str,
        stat: str,
        *,
        label: str = "",
        color: str | None = None,
        visible: bool = True,
        right: bool = False,
    ) -> Metric:
        assert self.names.endpoint_name is not None
        dims = (("EndpointName", self.names.endpoint_name), ("VariantName", self.names.variant_name))
        return Metric(mid, "AWS/SageMaker", name, dims, stat, label, color, visible, right)

    # -- Lambda -------------------------------------------------------------------------------------
    def latency(self, start: str, colors: tuple[str, str, str]) -> tuple[Metric, ...]:
        return tuple(
            self.preheat(f"{start}_{p}", "Latency", p, start=start, label=f"{start} {p}", color=c)
            for p, c in zip(("p50", "p90", "p99"), colors, strict=True)
        )

    def cold_start_rate(self) -> tuple[Series, ...]:
        inputs = [self.preheat("coldstarts", "ColdStarts", "Sum", start="cold", visible=False)]
        inputs += [
            self.preheat(f"inv_{kind}", "Invocations", "Sum", start=kind, visible=False)
            for kind in START_USER_KINDS
        ]
        total = " + ".join(f"FILL(inv_{kind}, 0)" for kind in START_USER_KINDS)
        rate = Expression(
            "cold_rate", f"100 * FILL(coldstarts, 0) / ({total})", "cold starts, % of requests", COLD[1]
        )
        return (*inputs, rate)

    def graphs(self) -> list[tuple[Widget, ...]]:
        n, limits = self.names, self.limits
        intro = Text(
            f"## {n.service}: cold and warm apart\n"
            "`cold` = the first request on a new instance, including its init; `warm` = every later request; "
            "`provisioned` / `restore` = the first request on a provisioned or SnapStart-restored instance "
            "(init paid ahead of time). Warm-up pings are counted apart and never in latency."
        )
        cold = Graph(
            "Cold-start latency (ms), start=cold",
            self.latency("cold", COLD),
            "ms",
            annotations=(Annotation("cold p99 alarm", limits.cold_p99_ms),),
        )
        warm = Graph(
            "Warm latency (ms), start=warm",
            self.latency("warm", WARM),
            "ms",
            annotations=(Annotation("warm p99 alarm", limits.warm_p99_ms),),
        )
        preinit = Graph(
            "First request on pre-initialized instances (ms)",
            (
                self.preheat(
                    "prov_p50",
                    "Latency",
                    "p50",
                    start="provisioned",
                    label="provisioned p50",
                    color="#74c476",
                ),
                self.preheat(
                    "prov_p99",
                    "Latency",
                    "p99",
                    start="provisioned",
                    label="provisioned p99",
                    color="#238b45",
                ),
                self.preheat(
                    "rest_p50", "Latency", "p50", start="restore", label="restore p50", color="#bcbddc"
                ),
                self.preheat(
                    "rest_p99", "Latency", "p99", start="restore", label="restore p99", color="#6a51a3"
                ),
            ),
            "ms",
        )
        init = Graph(
            "Init duration (ms)",
            (
                self.preheat(
                    "init_cold_p50", "InitDuration", "p50", start="cold", label="cold p50", color=COLD[0]
                ),
                self.preheat(
                    "init_cold_max", "InitDuration", "Maximum", start="cold", label="cold max", color=COLD[2]
                ),
                self.preheat(
                    "init_warmup_p50",
                    "InitDuration",
                    "p50",
                    start="warmup",
                    label="absorbed by warmer p50",
                    color=GREY,
                ),
                self.preheat(
                    "init_prov_p50",
                    "InitDuration",
                    "p50",
                    start="provisioned",
                    label="provisioned p50",
                    color="#238b45",
                ),
            ),
            "ms",
        )
        rate = Graph(
            "Cold-start rate (% of requests)",
            self.cold_start_rate(),
            "%",
            annotations=(Annotation("alarm", limits.cold_start_rate_percent),),
        )
        utilization = Graph(
            "Provisioned concurrency utilization (Maximum)",
            (
                self.lam(
                    "pc_util",
                    "ProvisionedConcurrencyUtilization",
                    "Maximum",
                    alias=True,
                    label="utilization (max)",
                    color=WARM[2],
                ),
            ),
            "fraction",
            annotations=(Annotation("scaling target", limits.utilization_target, "#2ca02c"),),
        )
        spillover = Graph(
            "Provisioned vs spillover invocations",
            (
                self.lam(
                    "pc_inv",
                    "ProvisionedConcurrencyInvocations",
                    "Sum",
                    alias=True,
                    label="on provisioned instances",
                    color=WARM[1],
                ),
                self.lam(
                    "pc_spill",
                    "ProvisionedConcurrencySpilloverInvocations",
                    "Sum",
                    alias=True,
                    label="spillover (on-demand)",
                    color=COLD[1],
                ),
            ),
            "count",
        )
        cache_series: list[Series] = []
        palette = ("#31a354", "#756bb1", "#636363", "#e6550d")
        for i, level in enumerate(n.cache_levels):
            key = re.sub(r"[^A-Za-z0-9]", "_", level)
            hits = self.preheat(f"hits_{key}", "CacheHits", "Sum", level=level, visible=False)
            misses = self.preheat(f"misses_{key}", "CacheMisses", "Sum", level=level, visible=False)
            cache_series += [
                hits,
                misses,
                Expression(
                    f"hit_rate_{key}",
                    f"100 * FILL({hits.id}, 0) / (FILL({hits.id}, 0) + FILL({misses.id}, 0))",
                    f"{level} hit rate",
                    palette[i % len(palette)],
                ),
            ]
        cache = Graph("Cache hit rate (%)", tuple(cache_series), "%")
        errs: list[Series] = [
            self.lam(
                "l_errors", "Errors", "Sum", label="Lambda errors (incl. init, timeouts)", color="#d62728"
            ),
            self.lam("l_throttles", "Throttles", "Sum", label="throttles", color="#9467bd"),
        ]
        for metric, eid, label, color in (
            ("Errors", "e5xx", "5xx", "#8c564b"),
            ("ClientErrors", "e4xx", "4xx", GREY),
        ):
            parts = [
                self.preheat(f"{eid}_{kind}", metric, "Sum", start=kind, visible=False)
                for kind in (*START_USER_KINDS, "warmup")
            ]
            errs += [*parts, Expression(eid, " + ".join(f"FILL({p.id}, 0)" for p in parts), label, color)]
        errors = Graph("Errors", tuple(errs), "count")
        return [(intro,), (cold, warm), (rate, init), (preinit, utilization), (spillover, cache), (errors,)]

    # -- SageMaker ----------------------------------------------------------------------------------
    def sagemaker(self) -> list[tuple[Widget, ...]]:
        if self.names.endpoint_name is None:
            return []
        # SageMaker reports ModelLatency, OverheadLatency and ModelSetupTime in microseconds.
        lat: list[Series] = []
        for name, key, colors in (("ModelLatency", "model", WARM), ("OverheadLatency", "overhead", COLD)):
            for p, color in (("p50", colors[0]), ("p99", colors[2])):
                raw = self.sm(f"{key}_{p}_us", name, p, visible=False)
                lat += [raw, Expression(f"{key}_{p}", f"{raw.id} / 1000", f"{name} {p}", color)]
        latency = Graph(f"SageMaker {self.names.endpoint_name}: latency (ms)", tuple(lat), "ms")
        setup: list[Series] = []
        for stat, key, color in (("Average", "avg", COLD[0]), ("Maximum", "max", COLD[2])):
            raw = self.sm(f"setup_{key}_us", "ModelSetupTime", stat, visible=False)
            setup += [
                raw,
                Expression(
                    f"setup_{key}", f"{raw.id} / 1000", f"model setup (cold start) {stat.lower()}", color
                ),
            ]
        setup.append(self.sm("sm_inv", "Invocations", "Sum", label="invocations", color=GREY, right=True))
        cold = Graph(
            "SageMaker cold starts: model setup time (ms)", tuple(setup), "ms", right_label="invocations"
        )
        pc = Graph(
            "SageMaker provisioned concurrency",
            (
                self.sm(
                    "sm_util",
                    "ServerlessProvisionedConcurrencyUtilization",
                    "Maximum",
                    label="utilization (max)",
                    color=WARM[2],
                ),
                self.sm(
                    "sm_spill",
                    "ServerlessProvisionedConcurrencySpilloverInvocations",
                    "Sum",
                    label="spillover invocations",
                    color=COLD[1],
                    right=True,
                ),
            ),
            "fraction",
            right_label="count",
            annotations=(Annotation("scaling target", self.limits.utilization_target, "#2ca02c"),),
        )
        errors = Graph(
            "SageMaker errors",
            (
                self.sm("sm_4xx", "Invocation4XXErrors", "Sum", label="4xx", color=GREY),
                # A container's own 4xx/5xx (InvokeEndpoint's 424 ModelError) are counted here: the list
                # of metrics a serverless endpoint publishes has no separate model-error metric.
                self.sm("sm_5xx", "Invocation5XXErrors", "Sum", label="5xx", color="#8c564b"),
            ),
            "count",
        )
        return [(latency, cold), (pc, errors)]

    def alarms(self) -> tuple[Alarm, ...]:
        limits = self.limits
        periods = limits.evaluation_periods
        return (
            Alarm(
                "ColdStartRate",
                f"More than {limits.cold_start_rate_percent}% of requests were cold starts in "
                f"{periods} consecutive periods: warm more instances or raise provisioned concurrency.",
                self.cold_start_rate(),
                "cold_rate",
                limits.cold_start_rate_percent,
                periods,
                periods,
            ),
            Alarm(
                "WarmLatencyP99",
                f"Warm p99 latency above {limits.warm_p99_ms} ms.",
                self.latency("warm", WARM)[2:],
                "warm_p99",
                limits.warm_p99_ms,
                periods,
                periods,
            ),
            Alarm(
                "ColdLatencyP99",
                f"Cold-start p99 latency (including init) above {limits.cold_p99_ms} ms.",
                self.latency("cold", COLD)[2:],
                "cold_p99",
                limits.cold_p99_ms,
                periods,
                periods,
            ),
        )


def build(
    name: str, names: Names, *, period_seconds: int = 60, thresholds: Thresholds | None = None
) -> Dashboard:
    b = _Build(names, thresholds or Thresholds())
    dashboard = Dashboard(name, period_seconds, tuple(b.graphs() + b.sagemaker()), b.alarms())
    validate(dashboard)
    return dashboard


def for_config(config: PreheatConfig, *, function_name: str) -> Dashboard:
    """The dashboard of a deployment: the stack passes its function's name (a token), `preheat
    dashboard` the name the twin runs it under; everything else comes from the config."""
    alarms = config.dashboard.alarms
    return build(
        config.dashboard.name,
        Names(
            namespace=config.namespace,
            service=config.service,
            function_name=function_name,
            endpoint_name=config.sagemaker.endpoint_name if config.sagemaker.enabled else None,
            cache_levels=config.dashboard.cache_levels,
        ),
        period_seconds=config.dashboard.period_seconds,
        thresholds=Thresholds(
            cold_start_rate_percent=alarms.cold_start_rate_percent,
            warm_p99_ms=alarms.warm_p99_ms,
            cold_p99_ms=alarms.cold_p99_ms,
            evaluation_periods=alarms.evaluation_periods,
            utilization_target=config.lambda_.provisioned.utilization_target,
        ),
    )
