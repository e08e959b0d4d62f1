"""The dashboard's data model: metrics, expressions, graphs, alarms, and the checks CloudWatch would
make of them (ids, references). infra/dashboard.py builds preheat's dashboard out of these; nothing
here imports CDK or boto3."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

START_USER_KINDS = ("cold", "warm", "provisioned", "restore")  # requests; `warmup` pings are not
PERCENTILE = re.compile(r"^p(\d{1,2}(\.\d+)?|100)$")
_ID = re.compile(r"^[a-z][A-Za-z0-9_]*$")

# Colours shared by CloudWatch and the local plots, so the two look alike.
COLD = ("#fdae6b", "#e6550d", "#a63603")  # p50, p90, p99
WARM = ("#9ecae1", "#3182bd", "#08519c")
GREY = "#7f7f7f"


@dataclass(frozen=True)
class Metric:
    """One CloudWatch metric and statistic. `visible=False`: only an input to an Expression."""

    id: str
    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    stat: str  # Sum | Average | Minimum | Maximum | SampleCount | pNN
    label: str = ""
    color: str | None = None
    visible: bool = True
    right: bool = False  # on the right y axis

    @property
    def percentile(self) -> float | None:
        match = PERCENTILE.match(self.stat)
        return float(match.group(1)) if match else None


@dataclass(frozen=True)
class Expression:
    """CloudWatch metric math over the Metrics of the same graph, by id. The local renderer evaluates
    the same text, so keep to `+ - * /`, numbers, parentheses and FILL(id, number)."""

    id: str
    expression: str
    label: str
    color: str | None = None
    right: bool = False
    visible: bool = True


Series = Metric | Expression


@dataclass(frozen=True)
class Annotation:
    label: str
    value: float
    color: str = "#d62728"


@dataclass(frozen=True)
class Graph:
    title: str
    series: tuple[Series, ...]
    left_label: str
    right_label: str = ""
    annotations: tuple[Annotation, ...] = ()
    width: int = 12
    height: int = 6

    def metrics(self) -> tuple[Metric, ...]:
        return tuple(s for s in self.series if isinstance(s, Metric))

    def visible(self) -> tuple[Series, ...]:
        return tuple(s for s in self.series if s.visible)


@dataclass(frozen=True)
class Text:
    markdown: str
    width: int = 24
    height: int = 2


Widget = Graph | Text


@dataclass(frozen=True)
class Alarm:
    id: str  # construct id and alarm name suffix
    description: str
    series: tuple[Series, ...]  # the watched series and any inputs it needs
    watch: str  # id of the watched series
    threshold: float
    evaluation_periods: int
    datapoints_to_alarm: int

    def watched(self) -> Series:
        return next(s for s in self.series if s.id == self.watch)


@dataclass(frozen=True)
class Dashboard:
    name: str
    period_seconds: int
    rows: tuple[tuple[Widget, ...], ...]
    alarms: tuple[Alarm, ...] = ()

    def graphs(self) -> Iterator[Graph]:
        for row in self.rows:
            for widget in row:
                if isinstance(widget, Graph):
                    yield widget


@dataclass(frozen=True)
class Names:
    """What the definition needs to know about the deployed system. In CDK these may be tokens."""

    namespace: str = "Preheat"
    service: str = "preheat"
    function_name: str = "preheat-inference"
    alias: str = "live"
    endpoint_name: str | None = None
    variant_name: str = "AllTraffic"
    cache_levels: tuple[str, ...] = ("memory", "dynamodb", "redis")


@dataclass(frozen=True)
class Thresholds:
    cold_start_rate_percent: float = 5.0
    warm_p99_ms: float = 100.0
    cold_p99_ms: float = 3000.0
    evaluation_periods: int = 3
    utilization_target: float = 0.7


def validate(dashboard: Dashboard) -> None:
    """Ids unique per graph and valid for CloudWatch; every expression refers only to its graph's ids."""
    groups: list[tuple[str, tuple[Series, ...]]] = [(g.title, g.series) for g in dashboard.graphs()]
    groups += [(f"alarm {a.id}", a.series) for a in dashboard.alarms]
    for title, series in groups:
        ids = [s.id for s in series]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{title}: duplicate series ids {ids}")
        for s in series:
            if not _ID.match(s.id):
                raise ValueError(f"{title}: series id {s.id!r} must start with a lower-case letter")
            if isinstance(s, Expression):
                unknown = set(references(s.expression)) - set(ids)
                if unknown:
                    raise ValueError(f"{title}: expression {s.id} refers to unknown ids {sorted(unknown)}")


def references(expression: str) -> list[str]:
    """The series ids an expression reads (function names such as FILL are not ids)."""
    return [t for t in re.findall(r"\b[a-z][A-Za-z0-9_]*\b", expression)]
