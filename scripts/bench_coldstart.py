"""`preheat bench coldstart`: cold starts and warm latency for three functions, in one run.

- default: preheat's handler (functions.inference.handler) with the default (slim) model;
- naive:   FastAPI + Mangum + Powertools Logger/Metrics/Tracer created eagerly, the fp32 model,
           default ONNX Runtime session options (functions/baselines/naive.py);
- floor:   awslambdaric + the slim model + a bare handler (functions/baselines/floor.py).

Each cold sample discards the function's instances, then sends one request through its HTTPS
Function URL (on a connection opened beforehand, so TLS set-up is not counted); functions take turns
within each round, so machine noise spreads evenly across them. Warm samples follow on keep-alive
connections, every one a text no function has seen (scripts/bench_texts.py: the same texts for every
function, lengths from one fixed distribution), so every warm request runs the model; the default's
answers must say so (`x-preheat-cache: miss`). Repeats of texts it already answered are its cache
hits, reported as their own row. Reports client-seen cold latency, INIT (spawn -> first /next, as
Lambda's Init Duration), warm latency, and the ratios; writes a PNG, and JSON with --json.

`--phases` adds, for the default and the floor, the median of every init phase inside their
instances, read back from the functions' CloudWatch Logs (scripts/init_phases.py), as on AWS.
`--variant LABEL:code=DIR:model=DIR:KEY=VALUE` adds another copy of the default function (code from
another checkout, another model directory, extra environment) that takes turns with the others: an
A/B of a change in one run.

`--target` selects where the functions run; `lambda` is the local twin. `sagemaker` runs the same
three functions and, beside them, a SageMaker Serverless endpoint in the twin serving the default
model with real `serve` containers: each cold sample discards its containers and calls
`invoke_endpoint` through boto3; it reports process start -> /ping ready (ModelSetupTime), the
client-seen first response, and warm latency (the `sagemaker` object of --json).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

FUNCTIONS = ("default", "naive", "floor")
# Targets (issue 16): the distance to the floor is what preheat controls; naive moves with the machine.
COLD_OVER_FLOOR_MAX = 1.2
COLD_OVER_NAIVE_MAX = 1 / 3
WARM_OVER_FLOOR_MAX_MS = 0.3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cold", type=int, default=20, help="cold starts per function (default 20)")
    parser.add_argument("--warm", type=int, default=100, help="warm requests per function (default 100)")
    parser.add_argument("--target", choices=sorted(TARGETS), default="lambda", help="where the functions run")
    parser.add_argument("--phases", action="store_true",
                        help="print the median of each init phase of default and floor, from their logs")
    parser.add_argument("--variant", action="append", default=[], metavar="LABEL:code=DIR:model=DIR:K=V",
                        help="another copy of the default function taking turns with the others (A/B); "
                        "code= another checkout, model= another model directory, K=V extra environment")
    parser.add_argument("--skip-naive", action="store_true", help="leave the naive baseline out (A/B runs)")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--png", type=Path, default=Path("build/bench/coldstart.png"), help="the plot")
    parser.add_argument("--state-dir", type=Path, default=Path(".preheat/bench"))


@dataclass(frozen=True)
class Variant:
    """A copy of the default function that differs in code, model or environment."""

    label: str
    code_dir: Path | None = None
    model_dir: Path | None = None
    env: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Variant:
        label, *items = text.split(":")
        if not label.replace("-", "").isalnum() or label in FUNCTIONS:
            raise SystemExit(f"--variant {text!r}: the label must be letters, digits or '-', not {FUNCTIONS}")
        code = model = None
        env = []
        for item in items:
            key, sep, value = item.partition("=")
            if not sep:
                raise SystemExit(f"--variant {text!r}: {item!r} is not code=DIR, model=DIR or KEY=VALUE")
            if key == "code":
                code = Path(value).resolve()
            elif key == "model":
                model = Path(value).resolve()
            else:
                env.append((key, value))
        for what, path in (("code", code), ("model", model)):
            if path is not None and not path.is_dir():
                raise SystemExit(f"--variant {text!r}: {what} directory {path} does not exist")
        return cls(label, code, model, tuple(env))


@dataclass(frozen=True)
class Sample:
    client_ms: float
    init_ms: float | None  # cold samples only


@dataclass(frozen=True)
class Warm:
    client_ms: float
    cache: str  # x-preheat-cache: "miss" when the model ran, else the level that answered; "-" if none


@dataclass
class Series:
    cold: list[Sample] = field(default_factory=list)
    warm: list[float] = field(default_factory=list)
    hits: list[float] = field(default_factory=list)  # repeats its cache answered
    warm_cache: dict[str, int] = field(default_factory=dict)  # x-preheat-cache of the warm requests
    failures: int = 0
    note: str = ""


class Target(Protocol):
    """Where the benchmarked functions run; one method per kind of sample."""

    def describe(self, name: str) -> str: ...

    def cold(self, name: str) -> Sample: ...

    def warm(self, name: str, text: str) -> Warm: ...

    def phases(self, names: tuple[str, ...]) -> dict[str, Any]:
        """name -> that function's instances' init phases (scripts.init_phases.InstanceInit list)."""
        ...


class TwinTarget:
    """The three functions on the local twin, each behind its own HTTPS Function URL."""

    def __init__(self, twin: Any, body: dict[str, Any], notes: dict[str, str], models: dict[str, str]) -> None:
        from scripts.twin.client import TwinClient, UrlClient

        self.twin: TwinClient = twin
        self.body = body
        self.notes = notes
        self.models = models  # function -> the model name its requests ask for
        self.names = tuple(notes)
        self._warm: dict[str, UrlClient] = {}

    def describe(self, name: str) -> str:
        return self.notes[name]

    def _body(self, name: str, text: str | None = None) -> dict[str, Any]:
        return {**self.body, "model": self.models[name], **({"input": text} if text is not None else {})}

    def cold(self, name: str) -> Sample:
        function = f"bench-{name}"
        self.twin.reset(function)
        client = self.twin.url_client(function)
        client.connect()
        try:
            reply = client.request("POST", "/v1/embeddings", self._body(name))
        finally:
            client.close()
        if reply.status != 200:
            raise RuntimeError(f"{function} answered {reply.status}: {reply.body[:300]!r}")
        record = self.twin.record(reply.headers.get("x-amzn-requestid", ""), function)
        if record is None or not record["cold"]:
            raise RuntimeError(f"{function}: the request after a reset was not a cold start ({record})")
        return Sample(reply.ms, record["init_ms"])

    def warm(self, name: str, text: str) -> Warm:
        function = f"bench-{name}"
        client = self._warm.get(name)
        if client is None:
            client = self._warm[name] = self.twin.url_client(function)
            client.connect()
        reply = client.request("POST", "/v1/embeddings", self._body(name, text))
        if reply.status != 200:
            raise RuntimeError(f"{function} answered {reply.status}: {reply.body[:300]!r}")
        return Warm(reply.ms, reply.headers.get("x-preheat-cache", "-"))

    def phases(self, names: tuple[str, ...]) -> dict[str, Any]:
        """Each function's instances' init phases, from CloudWatch Logs (the twin's moto), as on AWS."""
        from scripts import init_phases

        self.twin.flush()
        logs = self.twin.boto3_client("logs")
        return {
            name: init_phases.parse(init_phases.from_cloudwatch(logs, f"bench-{name}")) for name in names
        }

    def close(self) -> None:
        for client in self._warm.values():
            client.close()


@contextmanager
def lambda_twin(
    root: Path,
    state_dir: Path,
    console: Any,
    endpoints: tuple[Any, ...] = (),
    variants: tuple[Variant, ...] = (),
    naive: bool = True,
) -> Iterator[TwinTarget]:
    from scripts.twin import state as twin_state
    from scripts.twin.client import TwinClient
    from scripts.twin.config import DEFAULT_MODEL_DIR, TwinConfig, inference_function
    from scripts.twin.models import ensure_default_model, model_name, naive_model_dir

    ensure_default_model(root, console)
    slim = root / DEFAULT_MODEL_DIR
    naive_dir = naive_model_dir(root)
    keep = 3600.0  # instances go only when a cold sample resets them
    default = inference_function(root, name="bench-default", keep_alive_s=keep)
    slim_env = {"PREHEAT_MODEL_DIR": default.env["PREHEAT_MODEL_DIR"]}  # the same model, from the same place
    where = "built layers" if default.isolated else "local environment"
    notes = {"default": f"preheat handler, {default.env['PREHEAT_MODEL_DIR']} ({where})"}
    models = {"default": model_name(slim)}
    extra = []
    for variant in variants:
        spec = inference_function(
            root, name=f"bench-{variant.label}", keep_alive_s=keep, model_dir=variant.model_dir, env=dict(variant.env)
        )
        if variant.code_dir is not None:
            spec = dataclasses.replace(spec, code_dir=variant.code_dir)
        extra.append(spec)
        notes[variant.label] = (
            f"preheat handler, code {variant.code_dir or 'this checkout'}, model "
            f"{variant.model_dir or spec.env['PREHEAT_MODEL_DIR']}"
            + "".join(f", {k}={v}" for k, v in variant.env)
        )
        models[variant.label] = model_name(variant.model_dir or slim)
    functions = (
        default,
        *extra,
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
    if not naive:
        functions = tuple(f for f in functions if f.name != "bench-naive")
    # A loaded laptop can take longer than Lambda's 10 s INIT limit; a benchmark should measure, not fail.
    config = TwinConfig(
        functions=functions, state_dir=state_dir, max_instances=8, init_timeout_s=120.0, endpoints=endpoints
    )
    twin_state.stop(state_dir)
    with console.status("starting the local twin with default, naive and floor…"):
        state, _ = twin_state.start(config, cwd=root)
    if naive:
        notes["naive"] = f"FastAPI+Mangum+Powertools, default ORT options, {naive_dir.relative_to(root)}"
        models["naive"] = model_name(naive_dir)
    notes["floor"] = f"bare handler, {default.env['PREHEAT_MODEL_DIR']}"
    models["floor"] = model_name(slim)
    target = TwinTarget(
        TwinClient(state), {"input": "The quick brown fox jumps over the lazy dog."}, notes, models
    )
    try:
        yield target
    finally:
        target.close()
        twin_state.stop(state_dir)


SAGEMAKER_ENDPOINT = "bench-sagemaker"


class SageMakerTwinTarget:
    """The Lambda functions (delegated to the lambda target), plus a SageMaker Serverless endpoint in the
    same twin, which `bench` measures."""

    def __init__(self, functions: TwinTarget, endpoint: str, model_dir: str) -> None:
        self.functions = functions
        self.twin = functions.twin
        self.body = functions.body
        self.endpoint = endpoint
        self.model_dir = model_dir
        self.runtime = self.twin.boto3_client(
            "sagemaker-runtime", retries={"total_max_attempts": 1}, read_timeout=300
        )

    def describe(self, name: str) -> str:
        return self.functions.describe(name)

    def cold(self, name: str) -> Sample:
        return self.functions.cold(name)

    def warm(self, name: str, text: str) -> Warm:
        return self.functions.warm(name, text)

    def phases(self, names: tuple[str, ...]) -> dict[str, Any]:
        return self.functions.phases(names)

    def _invoke(self, text: str | None = None) -> float:
        payload = json.dumps({**self.body, **({"input": text} if text is not None else {})}).encode()
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
        from scripts.bench_texts import distinct_texts

        task = progress.add_task("SageMaker warm requests", total=warm)
        self._invoke()  # untimed: the last cold container is warm now
        warms = []
        for text in distinct_texts(warm, seed=17):  # texts the endpoint has not seen: the model runs
            warms.append(self._invoke(text))
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
    root: Path, state_dir: Path, console: Any, variants: tuple[Variant, ...] = (), naive: bool = True
) -> Iterator[SageMakerTwinTarget]:
    """The lambda target's twin with a SageMaker Serverless endpoint serving the default model beside it."""
    from functions.sagemaker.endpoint import ServerlessEndpoint
    from scripts.twin.config import DEFAULT_MODEL_DIR
    from scripts.twin.models import ensure_default_model
    from scripts.twin.sagemaker_config import EndpointSpec

    ensure_default_model(root, console)
    # keep_alive: containers go only when a cold sample resets them.
    # One intra-op thread, as the Lambda functions get at 2048 MB (one vCPU), so the two compare like for like.
    spec = EndpointSpec(
        ServerlessEndpoint(SAGEMAKER_ENDPOINT, max_concurrency=2, environment={"PREHEAT_THREADS": "1"}),
        root / DEFAULT_MODEL_DIR,
        keep_alive_s=3600.0,
    )
    with lambda_twin(root, state_dir, console, endpoints=(spec,), variants=variants, naive=naive) as functions:
        yield SageMakerTwinTarget(functions, SAGEMAKER_ENDPOINT, str(DEFAULT_MODEL_DIR))


# --target name -> (root, state_dir, console, variants=, naive=) -> a context manager yielding a Target.
TARGETS: dict[str, Callable[..., AbstractContextManager[Target]]] = {
    "lambda": lambda_twin,
    "sagemaker": sagemaker_twin,
}


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import Progress

    from scripts.bench_texts import distinct_texts

    if args.cold < 1 or args.warm < 1:
        raise SystemExit("--cold and --warm must be >= 1")
    variants = tuple(Variant.parse(v) for v in args.variant)
    # A log or a CI page is not a terminal: give the tables room instead of rich's 80 columns.
    console = Console() if sys.stdout.isatty() else Console(width=130)
    root = Path.cwd()
    started = time.perf_counter()
    context = TARGETS[args.target](root, args.state_dir, console, variants=variants, naive=not args.skip_naive)
    with context as target:
        names: tuple[str, ...] = getattr(target, "names", FUNCTIONS)
        series = {name: Series(note=target.describe(name)) for name in names}
        texts = distinct_texts(args.warm + 1)
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("cold starts", total=args.cold * len(names))
            for round_ in range(args.cold):
                # Rotate who goes first, so no function always follows the same one.
                shift = round_ % len(names)
                for name in names[shift:] + names[:shift]:
                    series[name].cold.append(target.cold(name))
                    progress.advance(task)
            phases = target.phases(names) if args.phases else {}
            task = progress.add_task("warm requests", total=args.warm * len(names))
            for name in names:
                target.warm(name, texts[-1])  # the cold round's last instance is warm; make sure of it, untimed
            for i in range(args.warm):
                shift = i % len(names)
                for name in names[shift:] + names[:shift]:
                    sample = target.warm(name, texts[i])
                    series[name].warm.append(sample.client_ms)
                    series[name].warm_cache[sample.cache] = series[name].warm_cache.get(sample.cache, 0) + 1
                    progress.advance(task)
            # Texts the functions answered a moment ago: preheat's cache answers them, apart from the model.
            repeats = max(1, args.warm // 4)
            task = progress.add_task("cache hits (repeated texts)", total=repeats)
            for i in range(repeats):
                for name in names:
                    if name in ("naive", "floor"):
                        continue
                    sample = target.warm(name, texts[i])
                    if sample.cache not in ("-", "miss"):
                        series[name].hits.append(sample.client_ms)
                progress.advance(task)
            extra = getattr(target, "bench", None)  # targets that measure more than the three functions
            extra_results: dict[str, Any] = extra(args.cold, args.warm, progress) if extra else {}
    elapsed = time.perf_counter() - started
    for name, s in series.items():
        ran = s.warm_cache.get("miss", 0) + s.warm_cache.get("-", 0)
        if ran != len(s.warm):
            raise SystemExit(
                f"{name}: {len(s.warm) - ran} of {len(s.warm)} warm requests were cache hits "
                f"({s.warm_cache}); every warm text must be new"
            )
    results = summarize(series)
    results.update(extra_results)
    if phases:
        from scripts import init_phases

        results["phases"] = {name: init_phases.summary(found) for name, found in phases.items() if found}
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
            "warm_cache": dict(s.warm_cache),
            "what": s.note,
        }
        if s.hits:
            out[name].update(
                cache_hit_p50_ms=round(percentile(s.hits, 50), 3),
                cache_hit_p99_ms=round(percentile(s.hits, 99), 3),
                cache_hit_n=len(s.hits),
            )
    f = out["floor"]
    ratios: dict[str, float] = {}
    for name in (n for n in series if n not in ("naive", "floor")):
        d = out[name]
        prefix = "default" if name == "default" else name
        ratios[f"{prefix}_over_floor_cold_p50"] = round(d["cold_p50_ms"] / f["cold_p50_ms"], 3)
        ratios[f"{prefix}_over_floor_init_p50"] = round(d["init_p50_ms"] / f["init_p50_ms"], 3)
        ratios[f"{prefix}_minus_floor_warm_p50_ms"] = round(d["warm_p50_ms"] - f["warm_p50_ms"], 3)
        if "naive" in out:
            ratios[f"{prefix}_over_naive_cold_p50"] = round(d["cold_p50_ms"] / out["naive"]["cold_p50_ms"], 3)
            ratios[f"{prefix}_over_naive_init_p50"] = round(d["init_p50_ms"] / out["naive"]["init_p50_ms"], 3)
    out["ratios"] = ratios
    out["targets"] = {
        "cold_at_most_1.2x_floor": ratios["default_over_floor_cold_p50"] <= COLD_OVER_FLOOR_MAX,
        "warm_at_most_floor_plus_0.3ms": ratios["default_minus_floor_warm_p50_ms"] <= WARM_OVER_FLOOR_MAX_MS,
    }
    if "naive" in out:
        out["targets"]["cold_at_most_one_third_of_naive"] = ratios["default_over_naive_cold_p50"] <= COLD_OVER_NAIVE_MAX
    return out


def report(
    console: Any, series: dict[str, Series], results: dict[str, Any], args: argparse.Namespace, elapsed: float
) -> None:
    import os
    import platform

    from rich.table import Table

    from scripts.bench_texts import describe

    names = tuple(series)
    table = Table(
        title=f"cold starts ({args.cold} each) and warm requests ({args.warm} each, every one running the "
        "model), ms, through the HTTPS Function URL",
        title_justify="left",
    )
    for column in ("function", "cold p50", "cold p99", "INIT p50", "INIT p99", "warm p50", "warm p99"):
        table.add_column(column, justify="left" if column == "function" else "right")
    for name in names:
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
    for name in names:
        r = results[name]
        if "cache_hit_p50_ms" in r:
            table.add_row(
                f"{name}, cache hit", "", "", "", "", f"{r['cache_hit_p50_ms']:.2f}", f"{r['cache_hit_p99_ms']:.2f}"
            )
    console.print(table)
    for name in names:
        console.print(f"  {name}: {results[name]['what']}", style="dim", highlight=False)
    console.print(
        f"  warm: {describe()}, the same for every function; cache hit: {len(series['default'].hits)} "
        "repeats of texts already answered (the instance's own cache)",
        style="dim",
        highlight=False,
    )
    ratios, targets = results["ratios"], results["targets"]

    def verdict(ok: bool) -> str:
        return "[green]met[/]" if ok else "[red]not met[/]"

    for name in (n for n in names if n not in ("naive", "floor")):
        prefix = "default" if name == "default" else name
        line = (
            f"{name} / floor: cold p50 {ratios[f'{prefix}_over_floor_cold_p50']:.2f}x, INIT p50 "
            f"{ratios[f'{prefix}_over_floor_init_p50']:.2f}x, warm p50 "
            f"{ratios[f'{prefix}_minus_floor_warm_p50_ms']:+.2f} ms"
        )
        if f"{prefix}_over_naive_cold_p50" in ratios:
            line += f"; / naive: cold p50 {ratios[f'{prefix}_over_naive_cold_p50']:.2f}x"
        console.print(line, highlight=False)
    console.print(
        f"targets: cold <= {COLD_OVER_FLOOR_MAX}x floor {verdict(targets['cold_at_most_1.2x_floor'])}; "
        f"warm <= floor + {WARM_OVER_FLOOR_MAX_MS} ms {verdict(targets['warm_at_most_floor_plus_0.3ms'])}"
        + (
            f"; cold <= 1/3 naive {verdict(targets['cold_at_most_one_third_of_naive'])}"
            if "cold_at_most_one_third_of_naive" in targets
            else ""
        )
    )
    if "phases" in results:
        report_phases(console, results["phases"])
    if "sagemaker" in results:
        report_sagemaker(console, results, args)
    results["meta"] = {
        "target": args.target,
        "cold": args.cold,
        "warm": args.warm,
        "warm_texts": describe(),
        "variants": list(args.variant),
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


def report_phases(console: Any, phases: dict[str, dict[str, Any]]) -> None:
    """One row per init phase, one column per function (p50 over its cold starts), and the difference
    between each and the floor."""
    from rich.table import Table

    from scripts import init_phases

    names = [n for n in phases if n != "floor"] + (["floor"] if "floor" in phases else [])
    rows = init_phases.merge_orders([list(phases[name]["phases_p50_ms"]) for name in names])
    table = Table(
        title="where a cold start goes: p50 of each phase inside the instances, ms (from their CloudWatch Logs)",
        title_justify="left",
    )
    table.add_column("phase")
    for name in names:
        table.add_column(f"{name} (n={phases[name]['instances']})", justify="right")
    compared = [n for n in names if n != "floor"] if "floor" in phases else []
    for name in compared:
        table.add_column(f"{name} - floor", justify="right")

    def cell(name: str, phase: str) -> float | None:
        value = phases[name]["phases_p50_ms"].get(phase)
        return None if value is None else float(value)

    for phase in rows:
        values = [cell(n, phase) for n in names]
        diffs = [(cell(n, phase) or 0.0) - (cell("floor", phase) or 0.0) for n in compared]
        table.add_row(
            phase, *("" if v is None else f"{v:.1f}" for v in values), *(f"{d:+.1f}" for d in diffs)
        )
    for name in names:
        for phase, ms in phases[name]["beside_p50_ms"].items():
            table.add_row(
                f"  {phase} (in a thread, beside the above)",
                *(f"{ms:.1f}" if n == name else "" for n in names),
                *("" for _ in compared),
                style="dim",
            )
    totals = [phases[n]["init_p50_ms"] + phases[n]["first_p50_ms"] for n in names]
    table.add_row(
        "INIT + first response (p50s)",
        *(f"{t:.1f}" for t in totals),
        *(f"{totals[names.index(n)] - totals[names.index('floor')]:+.1f}" for n in compared),
        style="bold",
    )
    console.print(table)
    console.print(
        f"  {init_phases.RUNTIME}: Lambda's Init Duration minus the handler module's own time; "
        f"{init_phases.FIRST}: the first invocation's Duration (REPORT).",
        style="dim",
        highlight=False,
    )


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
    names = tuple(series)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.5))
    panels = (
        ("cold start, client-seen (ms)", {n: [s.client_ms for s in series[n].cold] for n in names}),
        (
            "INIT: spawn -> first /next (ms)",
            {n: [s.init_ms or 0.0 for s in series[n].cold] for n in names},
        ),
        ("warm request (model runs), client-seen (ms)", {n: series[n].warm for n in names}),
    )
    colors = {"default": "#1f77b4", "naive": "#d62728", "floor": "#7f7f7f"}
    for ax, (title, data) in zip(axes, panels, strict=True):
        ax.boxplot([data[n] for n in names], showfliers=True)
        ax.set_xticks(range(1, len(names) + 1), list(names))
        for i, name in enumerate(names, start=1):
            ax.scatter([i] * len(data[name]), data[name], s=8, alpha=0.5, color=colors.get(name, "#2ca02c"))
        ax.set_title(title)
        ax.set_ylim(bottom=0)
        ax.grid(axis="y", alpha=0.3)
    ratios = results["ratios"]
    naive = ratios.get("default_over_naive_cold_p50")
    fig.suptitle(
        f"preheat bench coldstart: default cold p50 = {ratios['default_over_floor_cold_p50']:.2f}x floor"
        + (f", {naive:.2f}x naive" if naive is not None else "")
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
