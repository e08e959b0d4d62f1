"""`preheat demo` (`make demo`): the default model on a twin of the stack, Lambda and SageMaker, cold,
warm, provisioned, repeated and throttled, over a few CloudWatch periods.

Builds the model if it is missing and starts a twin of its own (its state in .preheat/demo): the
stack's inference function behind its HTTPS Function URL (AWS_IAM: every request SigV4-signed), its
DynamoDB cache table and its SageMaker Serverless endpoint; no warmer or controller, so that every
change below is the demo's own. It runs `--rounds` rounds, one per minute (the dashboard's period, and
the resolution AWS/Lambda and AWS/SageMaker metrics have), so that every graph of the dashboard gets a
point per round. Each round: the on-demand instances and containers discarded, then a cold burst,
warm traffic (a new text per request: the model runs), repeats (the cache answers), and SageMaker calls
(two at once: one finds the provisioned container, one starts a container). And one change per round:
provisioned concurrency 1 on the alias `live` and a SageMaker endpoint config with one more provisioned
container (UpdateEndpoint); provisioned concurrency `--provisioned` and a burst larger than it
(spillover); reserved concurrency equal to it and a burst twice its size (throttles, 429). Prints
latency with cold, warm and provisioned apart, what CloudWatch (moto) received, and draws the
dashboard (build/dashboard/), then stops the twin.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

SM_PHASES = ("cold+provisioned", "warm")
ROUND_CHANGES = ("on-demand only", "provisioned concurrency 1, SageMaker's raised",
                 "provisioned concurrency N, a burst past it", "reserved concurrency N, a burst of 2N (throttles)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, default=4,
                        help="rounds, one per CloudWatch period (default 4: every change below happens once)")
    parser.add_argument("--round-seconds", type=float, default=60.0,
                        help="time between round starts (default 60: the dashboard's period)")
    parser.add_argument("--burst", type=int, default=2,
                        help="concurrent requests in each cold burst (instances share this machine's cores: a burst "
                        "larger than the core count inflates INIT, unlike Lambda)")
    parser.add_argument("--warm", type=int, default=24, help="warm requests per round")
    parser.add_argument("--repeats", type=int, default=8, help="repeated requests per round (the cache answers)")
    parser.add_argument("--provisioned", type=int, default=2, help="the largest provisioned concurrency it sets")
    parser.add_argument("--no-sagemaker", action="store_true", help="Lambda only")
    parser.add_argument("--state-dir", type=Path, default=Path(".preheat/demo"))


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from infra.config import ConfigError
    from scripts.twin import state as twin_state
    from scripts.twin.config import DEFAULT_FUNCTION
    from scripts.twin.models import chosen_model
    from scripts.twin.stack import default_config

    if min(args.rounds, args.burst, args.warm, args.repeats, args.provisioned) < 1 or args.round_seconds <= 0:
        raise SystemExit("--rounds, --burst, --warm, --repeats, --provisioned and --round-seconds must be positive")
    # A log or a CI page is not a terminal: give the tables room instead of rich's 80 columns.
    console = Console() if sys.stdout.isatty() else Console(width=120)
    root = Path.cwd()
    try:  # the model cdk.json's context names (the default, built on first use, unless changed)
        stack_config, model = chosen_model(None, root=root, console=console, build_default=True)
    except ConfigError as exc:
        raise SystemExit(str(exc)) from None
    model_dir = model.directory
    stack = default_config(root, stack=stack_config, state_dir=args.state_dir)
    inference = stack.function(DEFAULT_FUNCTION)
    assert inference is not None
    config = dataclasses.replace(
        stack, functions=(inference,), schedules=(), endpoints=() if args.no_sagemaker else stack.endpoints,
        max_instances=max(8, 2 * args.provisioned + args.burst + 2),
    ).validate()
    twin_state.stop(args.state_dir)  # a demo twin left over from an interrupted run
    started = time.perf_counter()
    with console.status("starting the local twin…"):
        state, _ = twin_state.start(config, cwd=root, timeout=180)
    endpoint = config.endpoints[0].name if config.endpoints else None
    console.print(f"twin up in {time.perf_counter() - started:.1f} s: {DEFAULT_FUNCTION} at "
                  f"[bold]{state.url(DEFAULT_FUNCTION)}[/] (HTTPS, {state.url_auth(DEFAULT_FUNCTION)}: signed); "
                  f"{'isolated, from the built layers' if inference.isolated else 'on this environment'}; "
                  f"model {inference.env['PREHEAT_MODEL_DIR']}"
                  + (f"; SageMaker endpoint {endpoint}" if endpoint else ""), highlight=False)
    try:
        _record(console, state)
        demo = Demo(console, state, args, model_dir, endpoint)
        demo.sm_provisioned = (config.endpoints[0].endpoint.provisioned_concurrency or 0) if config.endpoints else 0
        code = demo.run()
        _draw_dashboard(console, state, demo.started_utc)
        return code
    finally:
        with console.status("stopping the twin…"):
            twin_state.stop(args.state_dir)


class Demo:
    def __init__(self, console: Any, state: Any, args: argparse.Namespace, model_dir: Path, endpoint: str | None) -> None:
        from layers.model_requests import ModelRequests
        from scripts.twin.client import TwinClient

        self.console = console
        self.state = state
        self.args = args
        self.requests = ModelRequests.of(model_dir)  # the task's own route and body, whatever the model
        self.model = self.requests.name
        self.endpoint = endpoint
        self.twin = TwinClient(state)
        self.lam = self.twin.boto3_client("lambda", retries={"total_max_attempts": 1})
        self.samples: list[Any] = []
        self.sagemaker: list[dict[str, Any]] = []
        self.throttle_burst = 0
        self.provisioned = 0  # on the alias now: a cold burst must be larger to reach on-demand instances
        self.sm_provisioned = 0  # the endpoint's, likewise
        self.started_utc = dt.datetime.now(dt.UTC)

    # --- the rounds ---------------------------------------------------------------------------

    def run(self) -> int:
        from scripts.twin.config import DEFAULT_FUNCTION
        from scripts.twin.traffic import with_records

        args = self.args
        began = time.monotonic()
        self.started_utc = dt.datetime.now(dt.UTC)
        for number in range(args.rounds):
            due = began + number * args.round_seconds
            change = ROUND_CHANGES[number] if number < len(ROUND_CHANGES) else "as round 1"
            with self.console.status(f"round {number + 1}/{args.rounds} ({change}) at "
                                     f"{dt.datetime.now(dt.UTC) + dt.timedelta(seconds=max(0.0, due - time.monotonic())):%H:%M:%S}…"):
                time.sleep(max(0.0, due - time.monotonic()))
            self.round(number)
            self.console.print(f"round {number + 1}/{args.rounds} done at {dt.datetime.now(dt.UTC):%H:%M:%S} UTC: {change}",
                               highlight=False)
        with self.console.status("ending the on-demand environments (their shutdown phase flushes the cache counters)…"):
            self.twin.reset(DEFAULT_FUNCTION)
            time.sleep(1.0)  # Lambda's shutdown phase is 500 ms with an internal extension
            self.twin.flush()
        self.samples = with_records(self.twin, self.samples)
        failed = [s for s in self.samples if s.status != 200 and not (s.phase == "throttle" and s.status == 429)]
        throttled = sum(1 for s in self.samples if s.status == 429)
        sm_failed = [c for c in self.sagemaker if c["status"] != 200]
        if failed or sm_failed:
            self.console.print(f"[red]{len(failed) + len(sm_failed)} request(s) failed[/], e.g. "
                               f"{(failed or sm_failed)[0]}; see {self.state.log_dir}")
        self.latency_table()
        if self.sagemaker:
            self.sagemaker_table()
        if self.throttle_burst:
            self.console.print(f"throttle burst: {throttled} of {self.throttle_burst} requests answered 429 "
                               f"TooManyRequestsException (reserved concurrency {self.args.provisioned})", highlight=False)
        _cloudwatch(self.console, self.twin, self.started_utc)
        return 0 if not failed and not sm_failed else 1

    def round(self, number: int) -> None:
        from scripts.twin.config import DEFAULT_FUNCTION
        from scripts.twin.traffic import burst, steady

        args, twin, path = self.args, self.twin, self.requests.path
        fn = DEFAULT_FUNCTION
        first = (number + 1) * 10_000  # each round's inputs are new, so its warm requests run the model

        def text(i: int) -> dict[str, Any]:
            return self.requests.request(first + 10 + i).body

        twin.reset(fn)  # on-demand instances go: the next request is cold
        if self.endpoint:
            twin.control("POST", f"endpoints/{self.endpoint}/reset")
        # Provisioned instances are preferred: the burst is larger by as many, so that `burst` go cold.
        self.samples += burst(twin, fn, "cold burst", path, text(-1), args.burst + self.provisioned)
        if self.endpoint:
            self.sm_calls(number, "cold+provisioned", self.sm_provisioned + 1)  # the last one starts a container
        self.samples += steady(twin, fn, "warm", path, text, args.warm, 1)
        self.samples += steady(twin, fn, "repeat", path, lambda i: text(i % 4), args.repeats, 1)
        if self.endpoint:
            self.sm_calls(number, "warm", 6, concurrent=False)
        if number == 1:
            self.provision(1)
            self.samples += burst(twin, fn, "provisioned burst", path, text(-2), 2)
            if self.endpoint:
                self.sagemaker_provisioned(+1)
        elif number == 2:
            self.provision(args.provisioned)
            self.samples += burst(twin, fn, "past provisioned", path, text(-3), args.provisioned + 1)
        elif number == 3:
            self.lam.put_function_concurrency(FunctionName=fn, ReservedConcurrentExecutions=args.provisioned)
            try:
                # Re-initialized provisioned instances: their first requests are `provisioned` again.
                twin.reset(fn, provisioned=True)
                self.wait_ready(args.provisioned)
                self.throttle_burst = 2 * args.provisioned
                self.samples += burst(twin, fn, "throttle", path, text(-4), self.throttle_burst)
            finally:
                self.lam.delete_function_concurrency(FunctionName=fn)

    def provision(self, count: int) -> None:
        from scripts.twin.config import DEFAULT_FUNCTION

        self.lam.put_provisioned_concurrency_config(
            FunctionName=DEFAULT_FUNCTION, Qualifier="live", ProvisionedConcurrentExecutions=count)
        self.wait_ready(count)
        self.provisioned = count

    def wait_ready(self, count: int) -> None:
        from scripts.twin.config import DEFAULT_FUNCTION

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = self.lam.get_provisioned_concurrency_config(FunctionName=DEFAULT_FUNCTION, Qualifier="live")
            if status["Status"] == "READY" and status["AvailableProvisionedConcurrentExecutions"] >= count:
                return
            if status["Status"] == "FAILED":
                break
            time.sleep(0.1)
        raise RuntimeError(f"provisioned concurrency {count} did not become READY; see {self.state.log_dir}")

    # --- SageMaker ----------------------------------------------------------------------------

    def sm_calls(self, number: int, phase: str, n: int, *, concurrent: bool = True) -> None:
        assert self.endpoint is not None
        runtime = self.twin.boto3_client("sagemaker-runtime", retries={"total_max_attempts": 1})
        barrier = threading.Barrier(n) if concurrent else None

        def call(i: int) -> dict[str, Any]:
            index = 500_000 + (number + 1) * 10_000 + 1_000 * SM_PHASES.index(phase) + i  # new inputs each call
            body = json.dumps(self.requests.request(index, "/invocations").body)
            if barrier is not None:
                barrier.wait()
            t = time.perf_counter()
            try:
                reply = runtime.invoke_endpoint(EndpointName=self.endpoint, ContentType="application/json", Body=body)
                reply["Body"].read()
                status, request_id = 200, reply["ResponseMetadata"]["RequestId"]
            except runtime.exceptions.ClientError as exc:
                status, request_id = exc.response["ResponseMetadata"]["HTTPStatusCode"], ""
            return {"phase": phase, "status": status, "client_ms": (time.perf_counter() - t) * 1000,
                    "request_id": request_id}

        if concurrent:
            with ThreadPoolExecutor(n) as pool:
                self.sagemaker += list(pool.map(call, range(n)))
        else:
            self.sagemaker += [call(i) for i in range(n)]

    def sagemaker_provisioned(self, change: int) -> None:
        """A copy of the endpoint's config with ProvisionedConcurrency changed, then UpdateEndpoint, as
        the controller does (warmers/actuators.py), and wait until it is InService again."""
        assert self.endpoint is not None
        sm = self.twin.boto3_client("sagemaker")
        described = sm.describe_endpoint(EndpointName=self.endpoint)
        config = sm.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
        variant = config["ProductionVariants"][0]
        serverless = dict(variant["ServerlessConfig"])
        serverless["ProvisionedConcurrency"] = max(1, int(serverless.get("ProvisionedConcurrency", 0)) + change)
        name = f"{self.endpoint}-demo-pc{serverless['ProvisionedConcurrency']}"
        sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
            "VariantName": variant["VariantName"], "ModelName": variant["ModelName"], "ServerlessConfig": serverless}])
        sm.update_endpoint(EndpointName=self.endpoint, EndpointConfigName=name)
        deadline = time.monotonic() + 180
        while sm.describe_endpoint(EndpointName=self.endpoint)["EndpointStatus"] != "InService":
            if time.monotonic() > deadline:
                raise RuntimeError(f"UpdateEndpoint of {self.endpoint} did not finish; see {self.state.log_dir}")
            time.sleep(0.2)
        self.sm_provisioned = serverless["ProvisionedConcurrency"]

    # --- tables -------------------------------------------------------------------------------

    def latency_table(self) -> None:
        from rich import box
        from rich.table import Table

        from scripts.twin.traffic import percentile

        table = Table(title="Lambda: latency through the HTTPS Function URL (SigV4-signed), ms", title_justify="left",
                      box=box.SIMPLE_HEAD)
        for column in ("start", "cache", "n", "client p50", "client p99", "INIT p50", "Duration p50", "instances"):
            table.add_column(column, justify="left" if column in ("start", "cache", "instances") else "right",
                             min_width={"start": 11, "instances": 11, "n": 4}.get(column), no_wrap=True)
        # A repeat answered by a cache is a different thing from a warm model run: apart.
        groups: dict[tuple[str, str], list[Any]] = {}
        for sample in self.samples:
            if sample.status == 200:
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
        self.console.print(table)
        self.console.print("INIT = instance spawn -> first Runtime API /next (as Lambda's Init Duration); Duration = "
                           "Lambda's REPORT Duration. A cold request waits for INIT; warm and provisioned ones do not. "
                           "cache: which level answered (miss = the model ran; memory = this instance's LRU; dynamodb "
                           "= the shared table).", style="dim")

    def sagemaker_table(self) -> None:
        from rich import box
        from rich.table import Table

        from scripts.twin.traffic import percentile

        _, records = self.twin.invocations(0, self.endpoint)
        by_id = {r["request_id"]: r for r in records}
        groups: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
        for call in self.sagemaker:
            record = by_id.get(call["request_id"])
            if record is not None and call["status"] == 200:
                kind = "cold" if record["cold"] else ("provisioned" if record["instance_kind"] == "provisioned" else "warm")
                groups.setdefault(kind, []).append((call, record))
        table = Table(title=f"SageMaker Serverless {self.endpoint}: latency through invoke_endpoint, ms",
                      title_justify="left", box=box.SIMPLE_HEAD)
        for column in ("container", "n", "client p50", "client p99", "setup p50", "model p50"):
            table.add_column(column, justify="left" if column == "container" else "right", no_wrap=True)
        for kind in ("cold", "provisioned", "warm"):
            group = groups.get(kind, [])
            if not group:
                continue
            setups = [r["init_ms"] for _, r in group if r["init_ms"] is not None]
            table.add_row(kind, str(len(group)), f"{percentile([c['client_ms'] for c, _ in group], 50):.1f}",
                          f"{percentile([c['client_ms'] for c, _ in group], 99):.1f}",
                          f"{percentile(setups, 50):.0f}" if setups else "-",
                          f"{percentile([r['duration_ms'] for _, r in group], 50):.2f}")
        self.console.print(table)
        self.console.print("setup = container spawn -> /ping 200 (SageMaker's ModelSetupTime); model = the container's "
                           "answer time (ModelLatency).", style="dim")


def _cloudwatch(console: Any, twin: Any, since: dt.datetime) -> None:
    """What CloudWatch (moto) received: the runtime's EMF metrics and the platform's, per start kind."""
    from rich import box
    from rich.table import Table

    cloudwatch = twin.boto3_client("cloudwatch")
    end = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)

    def total(namespace: str, metric: str, stat: str, dims: dict[str, str]) -> str:
        # GetMetricData, whose dimensions must match exactly (as on AWS): moto's GetMetricStatistics also
        # counts the metric's other dimension sets that contain these.
        result = cloudwatch.get_metric_data(
            MetricDataQueries=[{"Id": "m", "MetricStat": {"Metric": {
                "Namespace": namespace, "MetricName": metric,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()]}, "Period": 3600, "Stat": stat}}],
            StartTime=since - dt.timedelta(hours=1), EndTime=end)["MetricDataResults"][0]
        values = [v for v in result["Values"] if v is not None]
        if not values:
            return "-"
        return f"{sum(values) if stat == 'Sum' else max(values):.1f}"

    table = Table(title="CloudWatch (moto), namespace Preheat, from the instances' EMF lines", title_justify="left",
                  box=box.SIMPLE_HEAD)
    for column in ("start", "Invocations", "Latency avg", "Latency max", "InitDuration avg"):
        table.add_column(column, justify="left" if column == "start" else "right")
    for start in ("cold", "provisioned", "warm"):
        dims = {"service": "preheat", "start": start}
        table.add_row(start, total("Preheat", "Invocations", "Sum", dims), total("Preheat", "Latency", "Average", dims),
                      total("Preheat", "Latency", "Maximum", dims), total("Preheat", "InitDuration", "Average", dims))
    console.print(table)
    platform = Table(title="CloudWatch (moto), AWS/Lambda for preheat-inference:live, as Lambda publishes them",
                     title_justify="left", box=box.SIMPLE_HEAD)
    names = ("Invocations", "Errors", "Throttles", "ProvisionedConcurrencyInvocations",
             "ProvisionedConcurrencySpilloverInvocations")
    for column in names:
        platform.add_column(column.replace("ProvisionedConcurrency", "PC "), justify="right")
    alias = {"FunctionName": "preheat-inference", "Resource": "preheat-inference:live"}
    platform.add_row(*(total("AWS/Lambda", n, "Sum", alias) for n in names))
    console.print(platform)


def _record(console: Any, state: Any) -> None:
    """Record what reaches the twin's moto, so that `preheat dashboard` can redraw this run after the
    twin is gone (scripts/recording.py)."""
    from scripts import recording

    try:
        recording.start(state.moto)
    except OSError as exc:
        console.print(f"[yellow]not recording this run for `preheat dashboard`: {exc}")


def _draw_dashboard(console: Any, state: Any, started: dt.datetime) -> None:
    """The deployed dashboard, drawn from this run's metrics while the twin's moto still holds them
    (build/dashboard/), and the run's AWS traffic saved beside it for `preheat dashboard` later; a
    failure here only costs the picture, never the demo."""
    import math

    from scripts import recording
    from scripts.dashboard import MetricsEndpoint, draw
    from scripts.metrics_query import Window
    from scripts.twin.config import DEFAULT_FUNCTION

    out = Path("build/dashboard")
    try:
        period = 60  # the dashboard's, and the platform metrics' resolution
        start = dt.datetime.fromtimestamp(started.timestamp() // period * period, dt.UTC)
        end = dt.datetime.fromtimestamp(math.ceil(time.time() / period) * period, dt.UTC)
        window = Window(start, end, period)
        target = MetricsEndpoint(state.moto, state.region, local=True)
        _, _, data = draw(target, out, console=console, summary=False, window=window)
        graphs = json.loads(data.read_text())["graphs"]
        points = [max((len(s["points"]) for s in g["series"]), default=0) for g in graphs]
        console.print(f"dashboard: {sum(1 for p in points if p)} of {len(graphs)} graphs have data, "
                      f"{sum(1 for p in points if p >= 3)} have 3 or more points ({window.buckets} periods of "
                      f"{period} s)", highlight=False)
        saved = recording.save(state.moto, out, recording.Run(window.start, window.end, period, DEFAULT_FUNCTION))
        console.print(f"recorded this run's AWS traffic in {saved}: `preheat dashboard` redraws it after the twin stops")
    except Exception as exc:
        console.print(f"[yellow]could not draw the dashboard: {exc}")
