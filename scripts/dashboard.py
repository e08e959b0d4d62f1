"""`preheat dashboard`: draw the CloudWatch dashboard the stack deploys, locally, with real data.

The same definition (infra/dashboard.py) the CDK stack turns into a CloudWatch dashboard is queried
from a CloudWatch endpoint (the local twin's moto by default, from .preheat/twin.json; any other with
--endpoint-url; real CloudWatch with --aws) and drawn to a PNG and an HTML page, cold and warm latency
as separate series. See scripts/metrics_query.py for how percentiles are computed without CloudWatch.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from infra.dashboard import Dashboard, Graph
    from scripts.metrics_query import CloudWatchSource, SeriesData, Window

DEFAULT_FUNCTION = "preheat-inference"  # the twin's name for the inference function


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint-url", help="CloudWatch endpoint (default: the running twin's moto)")
    parser.add_argument("--aws", action="store_true", help="query real CloudWatch with your AWS credentials")
    parser.add_argument("--region", help="AWS region (default: the twin's, else AWS_REGION, else us-east-1)")
    parser.add_argument("--minutes", type=float, default=60.0, help="how far back to look (default 60)")
    parser.add_argument("--period", type=int, help="seconds per datapoint (default: the dashboard's, 60)")
    parser.add_argument("--function-name", default=DEFAULT_FUNCTION, help="the inference function's name")
    parser.add_argument(
        "--state-dir", type=Path, default=Path(".preheat"), help="where the twin keeps twin.json"
    )
    parser.add_argument("--out", type=Path, default=Path("build/dashboard"), help="output directory")


@dataclass(frozen=True)
class MetricsEndpoint:
    endpoint_url: str | None
    region: str
    local: bool


def resolve_target(args: argparse.Namespace) -> MetricsEndpoint | None:
    """Where to read from: --endpoint-url, else --aws, else the twin recorded in <state-dir>/twin.json;
    None when there is no twin running."""
    state: dict[str, Any] = {}
    path = args.state_dir / "twin.json"
    if path.is_file():
        try:
            state = json.loads(path.read_text())
        except ValueError:
            state = {}
    region = args.region or state.get("region") or os.environ.get("AWS_REGION") or "us-east-1"
    if args.endpoint_url:
        return MetricsEndpoint(args.endpoint_url, region, local=True)
    if args.aws:
        return MetricsEndpoint(None, region, local=False)
    url = state.get("moto")
    if not isinstance(url, str) or not url:
        return None
    return MetricsEndpoint(url, region, local=True)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from scripts import recording
    from scripts.metrics_query import Window

    console = Console(width=max(120, Console().width))
    target = resolve_target(args)
    if target is not None:
        draw(
            target,
            args.out,
            minutes=args.minutes,
            period_seconds=args.period,
            function_name=args.function_name,
            console=console,
        )
        return 0
    # No twin running: the last `preheat demo` left its AWS traffic recorded beside its dashboard.
    demo = recording.load_run(args.out)
    if demo is None:
        raise SystemExit(
            f"preheat dashboard: no CloudWatch to read: {args.state_dir / 'twin.json'} has no running twin's "
            f"moto, and {args.out} holds no recorded demo run. Run `make demo` (it records its run), start "
            "the twin (`preheat up`), or pass --endpoint-url URL, or --aws for real CloudWatch."
        )
    console.print(
        f"no twin running: replaying the last demo run ({demo.start:%Y-%m-%d %H:%M}–{demo.end:%H:%M} UTC, "
        f"{demo.requests} recorded AWS requests) into a local moto"
    )
    with recording.replayed(args.out / recording.RECORDING) as url:
        draw(
            MetricsEndpoint(url, args.region or "us-east-1", local=True),
            args.out,
            function_name=demo.function_name,
            console=console,
            window=Window(demo.start, demo.end, demo.period_seconds),
        )
    return 0


def draw(
    target: MetricsEndpoint,
    out: Path,
    *,
    minutes: float = 60.0,
    period_seconds: int | None = None,
    function_name: str = DEFAULT_FUNCTION,
    console: Any = None,
    summary: bool = True,
    window: Window | None = None,
) -> tuple[Path, Path, Path]:
    """Query `target` for the deployed dashboard's series and write dashboard.{png,html,json} to `out`.
    Also what `preheat demo` calls before its twin (and the twin's moto) stops."""
    import boto3
    from rich.console import Console
    from rich.table import Table

    from infra import dashboard as spec
    from infra.config import ROOT, PreheatConfig
    from scripts.metrics_query import CloudWatchSource, Window

    console = console or Console()
    context = json.loads((ROOT / "cdk.json").read_text()).get("context", {})
    config = PreheatConfig.from_context(context)
    definition = spec.for_config(config, function_name=function_name)
    if window is not None:
        period_seconds = window.period_seconds
    if period_seconds:
        definition = replace(definition, period_seconds=period_seconds)
    kwargs: dict[str, Any] = {"region_name": target.region}
    if target.endpoint_url:
        kwargs["endpoint_url"] = target.endpoint_url
        if not os.environ.get("AWS_ACCESS_KEY_ID"):  # moto accepts any credentials
            kwargs |= {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    source = CloudWatchSource(
        boto3.client("cloudwatch", **kwargs), boto3.client("logs", **kwargs), local=target.local
    )
    window = window or Window.last(minutes, definition.period_seconds)
    with console.status(
        f"querying {target.endpoint_url or 'CloudWatch'} for {len(list(definition.graphs()))} graphs"
    ):
        report = collect(definition, source, window)
    out.mkdir(parents=True, exist_ok=True)
    png = out / "dashboard.png"
    page = out / "dashboard.html"
    data = out / "dashboard.json"
    with console.status("drawing"):
        png.write_bytes(render_png(definition, report, window))
        from scripts.dashboard_html import render_html

        page.write_text(render_html(definition, report, window, target))
        data.write_text(json.dumps(to_json(report, window), indent=1))
    if summary:
        table = Table(
            title=f"{definition.name}: {window.start:%H:%M}–{window.end:%H:%M} UTC, "
            f"{window.period_seconds} s periods"
        )
        for column in ("graph", "series", "points", "last", "max", "from"):
            table.add_column(column)
        for graph, series in report:
            for s in series:
                points = [v for v in s.values if not math.isnan(v)]
                if points:
                    table.add_row(
                        graph.title,
                        s.label,
                        str(len(points)),
                        f"{points[-1]:.4g}",
                        f"{max(points):.4g}",
                        s.source,
                    )
        console.print(table)
    for graph, series in report:
        for s in series:
            for warning in s.warnings:
                console.print(f"[yellow]{graph.title} / {s.label}: {warning}")
    console.print(f"wrote {png}, {page} and {data}")
    return png, page, data


Report = list[tuple["Graph", list["SeriesData"]]]  # each graph with the data of its visible series


def collect(definition: Dashboard, source: CloudWatchSource, window: Window) -> Report:
    report: Report = []
    for graph in definition.graphs():
        fetched = source.fetch(graph.series, window)
        report.append((graph, [fetched[s.id] for s in graph.visible()]))
    return report


def to_json(report: Report, window: Window) -> dict[str, Any]:
    return {
        "start": window.start.isoformat(),
        "end": window.end.isoformat(),
        "period_seconds": window.period_seconds,
        "graphs": [
            {
                "title": graph.title,
                "series": [
                    {
                        "id": s.id,
                        "label": s.label,
                        "source": s.source,
                        "warnings": list(s.warnings),
                        "points": [[t.isoformat(), v] for t, v in s.points(window)],
                    }
                    for s in series
                ],
            }
            for graph, series in report
        ],
    }


# -- drawing ------------------------------------------------------------------------------------------


def _draw(ax: Any, graph: Graph, series: list[SeriesData], window: Window) -> None:
    import matplotlib.dates as mdates

    by_id = {s.id: s for s in graph.series}
    right = None
    drawn = 0
    for data in series:
        spec_series = by_id[data.id]
        points = data.points(window)
        if not points:
            continue
        axis = ax
        if spec_series.right:
            right = right or ax.twinx()
            axis = right
        times, values = zip(*points, strict=True)
        axis.plot(
            times, values, marker="o", markersize=3, linewidth=1.4, label=data.label, color=spec_series.color
        )
        drawn += 1
    peak = max((v for d in series for v in d.values if not math.isnan(v)), default=math.nan)
    for note in graph.annotations:
        if not math.isnan(peak) and note.value > 3 * peak:
            # Far above the data: drawn, it would flatten every line to the axis. Named instead.
            ax.plot([], [], linestyle="--", color=note.color, label=f"{note.label} at {note.value:g} (off scale)")
            continue
        ax.axhline(note.value, linestyle="--", linewidth=0.9, color=note.color, label=note.label)
    ax.set_title(graph.title, fontsize=10, loc="left")
    ax.set_ylabel(graph.left_label, fontsize=8)
    if right is not None:
        right.set_ylabel(graph.right_label, fontsize=8)
        right.set_ylim(bottom=0)
    ax.set_xlim(window.start, window.end)
    ax.set_ylim(bottom=0)
    short = (window.end - window.start).total_seconds() <= 900
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S" if short else "%H:%M"))  # type: ignore[no-untyped-call]
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    if drawn == 0:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="#999999")
    handles, labels = ax.get_legend_handles_labels()
    if right is not None:
        more_h, more_l = right.get_legend_handles_labels()
        handles, labels = handles + more_h, labels + more_l
    if handles:
        ax.legend(handles, labels, fontsize=7, loc="upper left")


def render_png(definition: Dashboard, report: Report, window: Window) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.gridspec import GridSpec

    from infra import dashboard as spec

    rows = [row for row in definition.rows if any(isinstance(w, spec.Graph) for w in row)]
    data = {graph.title: series for graph, series in report}
    height = 3.4 * len(rows) + 0.6
    fig = plt.figure(figsize=(16, height))
    grid = GridSpec(
        len(rows), 24, figure=fig, hspace=0.55, wspace=1.2, top=1 - 0.7 / height, bottom=0.4 / height
    )
    fig.suptitle(
        f"{definition.name}: {window.start:%Y-%m-%d %H:%M}–{window.end:%H:%M} UTC, {window.period_seconds} s periods",
        fontsize=12,
        y=1 - 0.25 / height,
    )
    for r, row in enumerate(rows):
        col = 0
        for widget in row:
            if not isinstance(widget, spec.Graph):
                continue
            ax = fig.add_subplot(
                grid[r, col : min(24, col + widget.width) - (1 if col + widget.width < 24 else 0)]
            )
            _draw(ax, widget, data[widget.title], window)
            col += widget.width
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()
