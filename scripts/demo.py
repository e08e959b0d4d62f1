"""`preheat demo` (`make demo`): the default model on the local twin, cold then warm then provisioned.

Builds the model if it is missing, starts a twin of its own (its state in .preheat/demo), and sends
through the HTTPS Function URL: a burst of concurrent requests to no instances (cold starts), steady
traffic (warm), then sets provisioned concurrency with boto3 and sends a burst again (no cold start).
Prints latency with cold, warm and provisioned apart, client-seen and INIT, and what CloudWatch (moto)
received from the function's EMF metrics. Stops the twin at the end.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--burst", type=int, default=2,
                        help="concurrent requests in the cold burst (instances share this machine's cores: a burst "
                        "larger than the core count inflates INIT, unlike Lambda)")
    parser.add_argument("--warm", type=int, default=80, help="warm requests after the burst")
    parser.add_argument("--concurrency", type=int, default=1, help="concurrent clients for warm traffic")
    parser.add_argument("--provisioned", type=int, default=2, help="provisioned concurrency for the last burst")
    parser.add_argument("--state-dir", type=Path, default=Path(".preheat/demo"))


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from scripts.twin import state as twin_state
    from scripts.twin.config import DEFAULT_FUNCTION, TwinConfig, inference_function
    from scripts.twin.models import ensure_default_model

    if min(args.burst, args.warm, args.concurrency, args.provisioned) < 1:
        raise SystemExit("--burst, --warm, --concurrency and --provisioned must be >= 1")
    # A log or a CI page is not a terminal: give the tables room instead of rich's 80 columns.
    console = Console() if sys.stdout.isatty() else Console(width=120)
    root = Path.cwd()
    model_dir = ensure_default_model(root, console)
    spec = inference_function(root)
    config = TwinConfig(functions=(spec,), state_dir=args.state_dir, max_instances=max(8, args.burst + args.provisioned))
    twin_state.stop(args.state_dir)  # a demo twin left over from an interrupted run
    started = time.perf_counter()
    with console.status("starting the local twin…"):
        state, _ = twin_state.start(config, cwd=root)
    console.print(f"twin up in {time.perf_counter() - started:.1f} s: {DEFAULT_FUNCTION} at "
                  f"[bold]{state.url(DEFAULT_FUNCTION)}[/] (HTTPS); "
                  f"{'isolated, from the built layers' if spec.isolated else 'on this environment'}; "
                  f"model {spec.env['PREHEAT_MODEL_DIR']}", highlight=False)
    try:
        _record(console, state)
        code = _demo(console, state, args, model_dir)
        _draw_dashboard(console, state, started)
        return code
    finally:
        with console.status("stopping the twin…"):
            twin_state.stop(args.state_dir)


def _demo(console: object, state: object, args: argparse.Namespace, model_dir: Path) -> int:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from layers.model_requests import ModelRequests
    from scripts.twin.client import TwinClient
    from scripts.twin.config import DEFAULT_FUNCTION
    from scripts.twin.state import TwinState
    from scripts.twin.traffic import Sample, burst, percentile, steady, with_records

    assert isinstance(console, Console) and isinstance(state, TwinState)
    twin = TwinClient(state)
    requests = ModelRequests.of(model_dir)  # the task's own route and body, whatever the model
    body, path = requests.sample().body, requests.path

    def distinct(i: int) -> dict[str, Any]:  # new inputs per request: the model runs every time
        return requests.request(i + 1).body

    samples: list[Sample] = []
    with console.status(f"cold burst: {args.burst} concurrent requests, no instance running…"):
        samples += burst(twin, DEFAULT_FUNCTION, "cold burst", path, body, args.burst)
    with console.status(f"warm traffic: {args.warm} requests from {args.concurrency} clients…"):
        samples += steady(twin, DEFAULT_FUNCTION, "warm", path, distinct, args.warm, args.concurrency)
    repeats = max(1, args.warm // 4)
    with console.status(f"repeats: {repeats} requests for texts already answered (the cache tier)…"):
        samples += steady(twin, DEFAULT_FUNCTION, "repeat", path, distinct, repeats, args.concurrency)
    lam = twin.boto3_client("lambda")
    with console.status(f"put_provisioned_concurrency_config(live, {args.provisioned}) and waiting for READY…"):
        lam.put_provisioned_concurrency_config(
            FunctionName=DEFAULT_FUNCTION, Qualifier="live", ProvisionedConcurrentExecutions=args.provisioned
        )
        deadline = time.monotonic() + 120
        status = ""
        while time.monotonic() < deadline:
            status = lam.get_provisioned_concurrency_config(FunctionName=DEFAULT_FUNCTION, Qualifier="live")["Status"]
            if status in ("READY", "FAILED"):
                break
            time.sleep(0.1)
        twin.reset(DEFAULT_FUNCTION)  # drop the on-demand instances: the next burst can only use provisioned ones
    if status != "READY":
        console.print(f"[red]provisioned concurrency did not become READY ({status})[/]")
        return 1
    with console.status(f"provisioned burst: {args.provisioned} concurrent requests…"):
        samples += burst(twin, DEFAULT_FUNCTION, "provisioned burst", path, body, args.provisioned)
    samples = with_records(twin, samples)
    failed = [s for s in samples if s.status != 200]
    if failed:
        console.print(f"[red]{len(failed)} request(s) failed[/], e.g. status {failed[0].status}; see {state.log_dir}")

    table = Table(title="latency through the HTTPS Function URL, ms", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("start", "cache", "n", "client p50", "client p99", "INIT p50", "Duration p50", "instances"):
        table.add_column(column, justify="left" if column in ("start", "cache", "instances") else "right",
                         min_width={"start": 11, "instances": 11, "n": 4}.get(column), no_wrap=True)
    # A repeat answered by an instance's own cache is a different thing from a warm model run: apart.
    groups: dict[tuple[str, str], list[Sample]] = {}
    for sample in samples:
        groups.setdefault((sample.start, "miss" if sample.cache == "miss" else sample.cache), []).append(sample)
    order = {"cold": 0, "provisioned": 1, "warm": 2}
    for (start, cache), group in sorted(groups.items(), key=lambda kv: (order.get(kv[0][0], 9), kv[0][1] != "miss")):
        client = [s.client_ms for s in group]
        inits = [s.init_ms for s in group if s.init_ms is not None]
        durations = [s.duration_ms for s in group if s.duration_ms is not None]
        kinds = sorted({(s.instance_kind or "?").replace("-concurrency", "") for s in group})
        table.add_row(
            start, cache, str(len(group)), f"{percentile(client, 50):.1f}", f"{percentile(client, 99):.1f}",
            f"{percentile(inits, 50):.1f}" if inits else "-",
            f"{percentile(durations, 50):.2f}" if durations else "-", ", ".join(kinds),
        )
    console.print(table)
    console.print("INIT = instance spawn -> first Runtime API /next (as Lambda's Init Duration); Duration = "
                  "Lambda's REPORT Duration. A cold request waits for INIT; warm and provisioned ones do not. "
                  "cache: which level answered (miss = the model ran; memory = this instance's LRU).",
                  style="dim")
    _cloudwatch(console, twin)
    return 0 if not failed else 1


def _cloudwatch(console: object, twin: object) -> None:
    """What the function's EMF lines became in CloudWatch (moto), per start kind."""
    import datetime as dt

    from rich import box
    from rich.console import Console
    from rich.table import Table

    from scripts.twin.client import TwinClient

    assert isinstance(console, Console) and isinstance(twin, TwinClient)
    twin.flush()
    cloudwatch = twin.boto3_client("cloudwatch")
    now = dt.datetime.now(dt.UTC)
    table = Table(title="CloudWatch (moto), namespace Preheat, from the instances' EMF lines", title_justify="left",
                  box=box.SIMPLE_HEAD)
    for column in ("start", "Invocations", "Latency avg", "Latency max", "InitDuration avg"):
        table.add_column(column, justify="left" if column == "start" else "right")
    for start in ("cold", "provisioned", "warm"):
        values = []
        for metric, stat in (("Invocations", "Sum"), ("Latency", "Average"), ("Latency", "Maximum"),
                             ("InitDuration", "Average")):
            points = cloudwatch.get_metric_statistics(
                Namespace="Preheat", MetricName=metric,
                Dimensions=[{"Name": "service", "Value": "preheat"}, {"Name": "start", "Value": start}],
                StartTime=now - dt.timedelta(minutes=15), EndTime=now + dt.timedelta(minutes=1),
                Period=3600, Statistics=[stat],
            )["Datapoints"]
            values.append(f"{sum(p[stat] for p in points):.1f}" if stat == "Sum" and points else
                          (f"{max(p[stat] for p in points):.1f}" if points else "-"))
        table.add_row(start, *values)
    console.print(table)


def _record(console: object, state: object) -> None:
    """Record what reaches the twin's moto, so that `preheat dashboard` can redraw this run after the
    twin is gone (scripts/recording.py)."""
    from scripts import recording

    try:
        recording.start(state.moto)  # type: ignore[attr-defined]
    except OSError as exc:
        console.print(f"[yellow]not recording this run for `preheat dashboard`: {exc}")  # type: ignore[attr-defined]


def _draw_dashboard(console: object, state: object, started: float) -> None:
    """The deployed dashboard, drawn from this run's metrics while the twin's moto still holds them
    (build/dashboard/), and the run's AWS traffic saved beside it for `preheat dashboard` later; a
    failure here only costs the picture, never the demo."""
    from scripts import recording
    from scripts.dashboard import Target, draw
    from scripts.metrics_query import Window
    from scripts.twin.config import DEFAULT_FUNCTION

    out = Path("build/dashboard")
    try:
        window = Window.last((time.perf_counter() - started) / 60 + 2, 10)
        target = Target(state.moto, state.region, local=True)  # type: ignore[attr-defined]
        draw(target, out, console=console, summary=False, window=window)
        saved = recording.save(
            state.moto,  # type: ignore[attr-defined]
            out,
            recording.Run(window.start, window.end, window.period_seconds, DEFAULT_FUNCTION),
        )
        console.print(f"recorded this run's AWS traffic in {saved}: `preheat dashboard` redraws it after the twin stops")  # type: ignore[attr-defined]
    except Exception as exc:
        console.print(f"[yellow]could not draw the dashboard: {exc}")  # type: ignore[attr-defined]
