"""`preheat bench coldstart`: cold starts and warm latency for three functions, in one run.

- default: preheat's handler (functions.inference.handler) with the slim model (--model, default preheat.model);
- naive:   FastAPI + Mangum + Powertools Logger/Metrics/Tracer created eagerly, the fp32 model,
           default ONNX Runtime session options (functions/baselines/naive.py);
- floor:   awslambdaric + the slim model + a bare handler (functions/baselines/floor.py).

Each cold sample discards the function's instances, then sends one request through its HTTPS
Function URL (on a connection opened beforehand, so TLS set-up is not counted); functions take turns
within each round, so machine noise spreads evenly across them. Warm samples follow on keep-alive
connections. Reports client-seen cold latency, INIT (spawn -> first /next, as Lambda's Init
Duration), warm latency, and the ratios; writes a PNG, and JSON with --json.

`--target` selects where the functions run; `lambda` is the local twin. `sagemaker` runs the same
three functions and, beside them, a SageMaker Serverless endpoint in the twin serving the same
model with real `serve` containers: each cold sample discards its containers and calls
`invoke_endpoint` through boto3; it reports process start -> /ping ready (ModelSetupTime), the
client-seen first response, and warm latency (the `sagemaker` object of --json).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from layers.model_requests import ModelRequests, Request

FUNCTIONS = ("default", "naive", "floor")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cold", type=int, default=20, help="cold starts per function (default 20)")
    parser.add_argument("--warm", type=int, default=100, help="warm requests per function (default 100)")
    parser.add_argument("--target", choices=sorted(TARGETS), default="lambda", help="where the functions run")
    parser.add_argument("--model", metavar="NAME|DIR",
                        help="a model name under build/models or a model directory (default: preheat.model in cdk.json)")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--png", type=Path, default=Path("build/bench/coldstart.png"), help="the plot")
    parser.add_argument("--state-dir", type=Path, default=Path(".preheat/bench"))


@dataclass(frozen=True)
class Sample:
    client_ms: float
    init_ms: float | None  # cold samples only


@dataclass
class Series:
    cold: list[Sample] = field(default_factory=list)
    warm: list[float] = field(default_factory=list)
    failures: int = 0
    note: str = ""


class Target(Protocol):
    """Where the benchmarked functions run; one method per kind of sample."""

    def describe(self, name: str) -> str: ...

    def cold(self, name: str) -> Sample: ...

    def warm(self, name: str) -> float: ...


class TwinTarget:
    """The three functions on the local twin, each behind its own HTTPS Function URL."""

    def __init__(self, twin: Any, requests: dict[str, ModelRequests], notes: dict[str, str]) -> None:
        from scripts.twin.client import TwinClient, UrlClient

        self.twin: TwinClient = twin
        self.requests = requests  # function -> requests for the model it serves
        self.notes = notes
        self._warm: dict[str, UrlClient] = {}
        self._sent: dict[str, int] = {}

    def describe(self, name: str) -> str:
        return self.notes[name]

    def _request(self, name: str) -> Request:
        """The task's own route, with inputs new to this function: every request runs the model."""
        self._sent[name] = self._sent.get(name, 0) + 1
        return self.requests[name].request(self._sent[name])

    def cold(self, name: str) -> Sample:
        function = f"bench-{name}"
        self.twin.reset(function)
        client = self.twin.url_client(function)
        client.connect()
        request = self._request(name)
        try:
            reply = client.request("POST", request.path, request.body)
        finally:
            client.close()
        if reply.status != 200:
            raise RuntimeError(f"{function} answered {reply.status}: {reply.body[:300]!r}")
        record = self.twin.record(reply.headers.get("x-amzn-requestid", ""), function)
        if record is None or not record["cold"]:
            raise RuntimeError(f"{function}: the request after a reset was not a cold start ({record})")
        return Sample(reply.ms, record["init_ms"])

    def warm(self, name: str) -> float:
        function = f"bench-{name}"
        client = self._warm.get(name)
        if client is None:
            client = self._warm[name] = self.twin.url_client(function)
            client.connect()
        request = self._request(name)
        reply = client.request("POST", request.path, request.body)
        if reply.status != 200:
            raise RuntimeError(f"{function} answered {reply.status}: {reply.body[:300]!r}")
        return reply.ms

    def close(self) -> None:
        for client in self._warm.values():
            client.close()


@contextmanager
def lambda_twin(
    root: Path, state_dir: Path, console: Any, endpoints: tuple[Any, ...] = (), model: str | None = None
) -> Iterator[TwinTarget]:
    from layers.model_requests import ModelRequests
    from scripts.twin import state as twin_state
    from scripts.twin.client import TwinClient
    from scripts.twin.config import TwinConfig, inference_function
    from scripts.twin.models import naive_model_dir

    slim = bench_model(root, console, model)
    naive_dir = naive_model_dir(root, slim)
    keep = 3600.0  # instances go only when a cold sample resets them
    default = inference_function(root, name="bench-default", model_dir=slim, keep_alive_s=keep)
    slim_env = {"PREHEAT_MODEL_DIR": default.env["PREHEAT_MODEL_DIR"]}  # the same model, from the same place
    functions = (
        default,
        # The naive function is what a user deploys as one fat package (FastAPI, Mangum, Powertools):
        # never from the slim deps layer, which leaves those out.
        dataclasses.replace(
            inference_function(
                root,
                name="bench-naive",
                handler="functions.baselines.naive.handler",
                model_dir=naive_dir,
                keep_alive_s=keep,
            ),
            layers=(),
            isolated=False,
        ),
        inference_function(
            root,
            name="bench-floor",
            handler="functions.baselines.floor.handler",
            env=slim_env,
            keep_alive_s=keep,
        ),
    )
    # A loaded laptop can take longer than Lambda's 10 s INIT limit; a benchmark should measure, not fail.
    config = TwinConfig(
        functions=functions, state_dir=state_dir, max_instances=8, init_timeout_s=120.0, endpoints=endpoints
    )
    twin_state.stop(state_dir)
    with console.status("starting the local twin with default, naive and floor…"):
        state, _ = twin_state.start(config, cwd=root)
    where = "built layers" if default.isolated else "local environment"
    notes = {
        "default": f"preheat handler, {default.env['PREHEAT_MODEL_DIR']} ({where})",
        "naive": f"FastAPI+Mangum+Powertools, default ORT options, {naive_dir.relative_to(root) if naive_dir.is_relative_to(root) else naive_dir}",
        "floor": f"bare handler, {default.env['PREHEAT_MODEL_DIR']}",
    }
    slim_requests = ModelRequests.of(slim)
    requests = {"default": slim_requests, "naive": ModelRequests.of(naive_dir), "floor": slim_requests}
    target = TwinTarget(TwinClient(state), requests, notes)
    try:
        yield target
    finally:
        target.close()
        twin_state.stop(state_dir)


def bench_model(root: Path, console: Any, model: str | None) -> Path:
    """The model directory to measure: --model, else preheat.model (the default is built if missing)."""
    from infra.config import ConfigError
    from scripts.twin.models import chosen_model

    try:
        return chosen_model(model, console=console, build_default=True)[1].directory
    except ConfigError as exc:
        raise SystemExit(f"preheat bench coldstart: {exc}") from None


SAGEMAKER_ENDPOINT = "bench-sagemaker"


class SageMakerTwinTarget:
    """The Lambda functions (delegated to the lambda target), plus a SageMaker Serverless endpoint in the
    same twin, which `bench` measures."""

    def __init__(self, functions: TwinTarget, endpoint: str, model_dir: str) -> None:
        self.functions = functions
        self.twin = functions.twin
        self.requests = functions.requests["default"]
        self._sent = 0
        self.endpoint = endpoint
        self.model_dir = model_dir
        self.runtime = self.twin.boto3_client(
            "sagemaker-runtime", retries={"total_max_attempts": 1}, read_timeout=300
        )

    def describe(self, name: str) -> str:
        return self.functions.describe(name)

    def cold(self, name: str) -> Sample:
        return self.functions.cold(name)

    def warm(self, name: str) -> float:
        return self.functions.warm(name)

    def _invoke(self) -> float:
        from layers.model_requests import INVOCATIONS

        self._sent += 1  # inputs the endpoint has not seen: the model runs
        payload = self.requests.request(self._sent, INVOCATIONS).json()
        started = time.perf_counter()
        response = self.runtime.invoke_endpoint(
            EndpointName=self.endpoint,
            Body=payload,
            ContentType="application/json",
            Accept="application/json",
        )
        response["Body"].read()
        return (time.perf_counter() - started) * 1000

    def sagemaker_cold(self) -> tuple[float, dict[str, float]]:
        self.twin.control("POST", f"endpoints/{self.endpoint}/reset")
        ms = self._invoke()
        _, records = self.twin.invocations(0, self.endpoint)
        if not records or not records[-1]["cold"]:
            raise RuntimeError(f"{self.endpoint}: the request after a reset was not a cold start")
        containers = next(
            e for e in self.twin.control("GET", "endpoints")["endpoints"] if e["name"] == self.endpoint
        )["variants"][0]["containers"]
        setup = next(c["setup"] for c in containers if c["id"] == records[-1]["instance_id"])
        return ms, setup

    def bench(self, cold: int, warm: int, progress: Any) -> dict[str, Any]:
        from scripts.twin.traffic import percentile

        task = progress.add_task("SageMaker cold starts", total=cold)
        colds: list[float] = []
        setups: list[dict[str, float]] = []
        for _ in range(cold):
            ms, setup = self.sagemaker_cold()
            colds.append(ms)
            setups.append(setup)
            progress.advance(task)
        task = progress.add_task("SageMaker warm requests", total=warm)
        self._invoke()  # untimed: the last cold container is warm now
        warms = []
        for _ in range(warm):
            warms.append(self._invoke())
            progress.advance(task)
        ready = [s["ready_ms"] for s in setups]
        summary = {
            "ping_ready_p50_ms": round(percentile(ready, 50), 2),
            "ping_ready_p99_ms": round(percentile(ready, 99), 2),
            "listening_p50_ms": round(percentile([s["listening_ms"] for s in setups], 50), 2),
            "cold_p50_ms": round(percentile(colds, 50), 2),
            "cold_p99_ms": round(percentile(colds, 99), 2),
            "warm_p50_ms": round(percentile(warms, 50), 3),
            "warm_p99_ms": round(percentile(warms, 99), 3),
            "cold_n": len(colds),
            "warm_n": len(warms),
            "what": f"SageMaker Serverless endpoint {self.endpoint}: `serve` containers, {self.model_dir}, "
            "boto3 invoke_endpoint through the twin",
        }
        return {"sagemaker": summary, "_sagemaker_series": {"cold": colds, "ready": ready, "warm": warms}}


@contextmanager
def sagemaker_twin(
    root: Path, state_dir: Path, console: Any, model: str | None = None
) -> Iterator[SageMakerTwinTarget]:
    """The lambda target's twin with a SageMaker Serverless endpoint serving the same model beside it."""
    from functions.sagemaker.endpoint import ServerlessEndpoint
    from scripts.twin.sagemaker_config import EndpointSpec

    model_dir = bench_model(root, console, model)
    # keep_alive: containers go only when a cold sample resets them.
    # One intra-op thread, as the Lambda functions get at 2048 MB (one vCPU), so the two compare like for like.
    spec = EndpointSpec(
        ServerlessEndpoint(SAGEMAKER_ENDPOINT, max_concurrency=2, environment={"PREHEAT_THREADS": "1"}),
        model_dir,
        keep_alive_s=3600.0,
    )
    with lambda_twin(root, state_dir, console, endpoints=(spec,), model=model) as functions:
        yield SageMakerTwinTarget(functions, SAGEMAKER_ENDPOINT, str(model_dir))


# --target name -> (root, state_dir, console, model=) -> a context manager yielding a Target.
TARGETS: dict[str, Callable[..., AbstractContextManager[Target]]] = {
    "lambda": lambda_twin,
    "sagemaker": sagemaker_twin,
}


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import Progress

    if args.cold < 1 or args.warm < 1:
        raise SystemExit("--cold and --warm must be >= 1")
    console = Console()
    root = Path.cwd()
    series = {name: Series() for name in FUNCTIONS}
    started = time.perf_counter()
    with TARGETS[args.target](root, args.state_dir, console, model=args.model) as target:
        for name in FUNCTIONS:
            series[name].note = target.describe(name)
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("cold starts", total=args.cold * len(FUNCTIONS))
            for round_ in range(args.cold):
                # Rotate who goes first, so no function always follows the same one.
                order = FUNCTIONS[round_ % 3 :] + FUNCTIONS[: round_ % 3]
                for name in order:
                    series[name].cold.append(target.cold(name))
                    progress.advance(task)
            task = progress.add_task("warm requests", total=args.warm * len(FUNCTIONS))
            for name in FUNCTIONS:
                target.warm(name)  # the cold round's last instance is warm; make sure of it, untimed
            for _ in range(args.warm):
                for name in FUNCTIONS:
                    series[name].warm.append(target.warm(name))
                    progress.advance(task)
            extra = getattr(target, "bench", None)  # targets that measure more than the three functions
            extra_results: dict[str, Any] = extra(args.cold, args.warm, progress) if extra else {}
    elapsed = time.perf_counter() - started
    results = summarize(series)
    results.update(extra_results)
    report(console, series, results, args, elapsed)
    return 0


def summarize(series: dict[str, Series]) -> dict[str, Any]:
    from scripts.twin.traffic import percentile

    out: dict[str, Any] = {}
    for name, s in series.items():
        cold = [x.client_ms for x in s.cold]
        inits = [x.init_ms for x in s.cold if x.init_ms is not None]
        out[name] = {
            "cold_p50_ms": round(percentile(cold, 50), 2),
            "cold_p99_ms": round(percentile(cold, 99), 2),
            "init_p50_ms": round(percentile(inits, 50), 2),
            "init_p99_ms": round(percentile(inits, 99), 2),
            "warm_p50_ms": round(percentile(s.warm, 50), 3),
            "warm_p99_ms": round(percentile(s.warm, 99), 3),
            "cold_n": len(cold),
            "warm_n": len(s.warm),
            "what": s.note,
        }
    d, n, f = out["default"], out["naive"], out["floor"]
    out["ratios"] = {
        "default_over_floor_cold_p50": round(d["cold_p50_ms"] / f["cold_p50_ms"], 3),
        "default_over_naive_cold_p50": round(d["cold_p50_ms"] / n["cold_p50_ms"], 3),
        "default_over_floor_init_p50": round(d["init_p50_ms"] / f["init_p50_ms"], 3),
        "default_over_naive_init_p50": round(d["init_p50_ms"] / n["init_p50_ms"], 3),
        "default_over_floor_warm_p50": round(d["warm_p50_ms"] / f["warm_p50_ms"], 3),
    }
    out["targets"] = {
        "cold_at_most_1.5x_floor": out["ratios"]["default_over_floor_cold_p50"] <= 1.5,
        "cold_at_most_one_third_of_naive": out["ratios"]["default_over_naive_cold_p50"] <= 1 / 3,
    }
    return out


def report(
    console: Any, series: dict[str, Series], results: dict[str, Any], args: argparse.Namespace, elapsed: float
) -> None:
    import os
    import platform

    from rich.table import Table

    table = Table(
        title=f"cold starts ({args.cold} each) and warm requests ({args.warm} each), ms, through the "
        "HTTPS Function URL",
        title_justify="left",
    )
    for column in ("function", "cold p50", "cold p99", "INIT p50", "INIT p99", "warm p50", "warm p99"):
        table.add_column(column, justify="left" if column == "function" else "right")
    for name in FUNCTIONS:
        r = results[name]
        table.add_row(
            name,
            f"{r['cold_p50_ms']:.1f}",
            f"{r['cold_p99_ms']:.1f}",
            f"{r['init_p50_ms']:.1f}",
            f"{r['init_p99_ms']:.1f}",
            f"{r['warm_p50_ms']:.2f}",
            f"{r['warm_p99_ms']:.2f}",
        )
    console.print(table)
    for name in FUNCTIONS:
        console.print(f"  {name}: {results[name]['what']}", style="dim", highlight=False)
    ratios, targets = results["ratios"], results["targets"]
    console.print(
        f"default / floor: cold p50 {ratios['default_over_floor_cold_p50']:.2f}x, INIT p50 "
        f"{ratios['default_over_floor_init_p50']:.2f}x, warm p50 {ratios['default_over_floor_warm_p50']:.2f}x  "
        f"(target cold <= 1.5x: {'[green]met[/]' if targets['cold_at_most_1.5x_floor'] else '[red]not met[/]'})"
    )
    console.print(
        f"default / naive: cold p50 {ratios['default_over_naive_cold_p50']:.2f}x, INIT p50 "
        f"{ratios['default_over_naive_init_p50']:.2f}x  (target cold <= 0.33x: "
        f"{'[green]met[/]' if targets['cold_at_most_one_third_of_naive'] else '[red]not met[/]'})"
    )
    if "sagemaker" in results:
        report_sagemaker(console, results, args)
    results["meta"] = {
        "target": args.target,
        "cold": args.cold,
        "warm": args.warm,
        "seconds": round(elapsed, 1),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    plot(series, results, args.png)
    console.print(f"plot: {args.png}   ({elapsed:.0f} s)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({k: v for k, v in results.items() if not k.startswith("_")}, indent=2)
        )
        console.print(f"json: {args.json}")


def report_sagemaker(console: Any, results: dict[str, Any], args: argparse.Namespace) -> None:
    from rich.table import Table

    sm, default = results["sagemaker"], results["default"]
    table = Table(
        title=f"SageMaker Serverless beside Lambda ({args.cold} cold, {args.warm} warm), ms",
        title_justify="left",
    )
    for column in (
        "where",
        "start -> ready p50",
        "start -> ready p99",
        "cold p50",
        "cold p99",
        "warm p50",
        "warm p99",
    ):
        table.add_column(column, justify="left" if column == "where" else "right")
    table.add_row(
        "SageMaker (process -> /ping 200)",
        f"{sm['ping_ready_p50_ms']:.1f}",
        f"{sm['ping_ready_p99_ms']:.1f}",
        f"{sm['cold_p50_ms']:.1f}",
        f"{sm['cold_p99_ms']:.1f}",
        f"{sm['warm_p50_ms']:.2f}",
        f"{sm['warm_p99_ms']:.2f}",
    )
    table.add_row(
        "Lambda default (spawn -> INIT done)",
        f"{default['init_p50_ms']:.1f}",
        f"{default['init_p99_ms']:.1f}",
        f"{default['cold_p50_ms']:.1f}",
        f"{default['cold_p99_ms']:.1f}",
        f"{default['warm_p50_ms']:.2f}",
        f"{default['warm_p99_ms']:.2f}",
    )
    console.print(table)
    console.print(
        f"  SageMaker: {sm['what']}; the socket accepted connections after {sm['listening_p50_ms']:.1f} ms "
        "(p50). Lambda: HTTPS Function URL, raw client; SageMaker: boto3 (signing included).",
        style="dim",
        highlight=False,
    )
    series = results.get("_sagemaker_series")
    if series:
        plot_sagemaker(series, results, args.png.with_name(args.png.stem + "-sagemaker.png"))


def plot_sagemaker(series: dict[str, list[float]], results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    panels = (
        ("process start -> /ping 200 (ms)", series["ready"]),
        ("cold request, client-seen (ms)", series["cold"]),
        ("warm request, client-seen (ms)", series["warm"]),
    )
    for ax, (title, data) in zip(axes, panels, strict=True):
        ax.boxplot([data], showfliers=True)
        ax.scatter([1] * len(data), data, s=8, alpha=0.5, color="#2ca02c")
        ax.set_xticks([1], ["sagemaker"])
        ax.set_title(title)
        ax.set_ylim(bottom=0)
        ax.grid(axis="y", alpha=0.3)
    sm = results["sagemaker"]
    fig.suptitle(
        f"SageMaker Serverless in the twin: ready p50 {sm['ping_ready_p50_ms']:.0f} ms, "
        f"cold p50 {sm['cold_p50_ms']:.0f} ms, warm p50 {sm['warm_p50_ms']:.1f} ms"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot(series: dict[str, Series], results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.5))
    panels = (
        ("cold start, client-seen (ms)", {n: [s.client_ms for s in series[n].cold] for n in FUNCTIONS}),
        (
            "INIT: spawn -> first /next (ms)",
            {n: [s.init_ms or 0.0 for s in series[n].cold] for n in FUNCTIONS},
        ),
        ("warm request, client-seen (ms)", {n: series[n].warm for n in FUNCTIONS}),
    )
    colors = {"default": "#1f77b4", "naive": "#d62728", "floor": "#7f7f7f"}
    for ax, (title, data) in zip(axes, panels, strict=True):
        ax.boxplot([data[n] for n in FUNCTIONS], showfliers=True)
        ax.set_xticks(range(1, len(FUNCTIONS) + 1), list(FUNCTIONS))
        for i, name in enumerate(FUNCTIONS, start=1):
            ax.scatter([i] * len(data[name]), data[name], s=8, alpha=0.5, color=colors[name])
        ax.set_title(title)
        ax.set_ylim(bottom=0)
        ax.grid(axis="y", alpha=0.3)
    ratios = results["ratios"]
    fig.suptitle(
        f"preheat bench coldstart: default cold p50 = {ratios['default_over_floor_cold_p50']:.2f}x floor, "
        f"{ratios['default_over_naive_cold_p50']:.2f}x naive"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
