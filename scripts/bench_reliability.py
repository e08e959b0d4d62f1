"""`preheat bench reliability`: hostile input, load and faults, with the real model, in one run.

1. Hostile input, against the app under uvicorn and through the Lambda path (the twin's HTTPS Function
   URLs running functions.inference.handler under awslambdaric), each for a text-embedding and a tensor
   model: schemathesis fuzzing of every route of the served OpenAPI spec, and the hand-written cases
   of scripts/reliability/hostile.py. Figures: 5xx answers, hangs, rejections without a reason.
2. Load: closed-loop clients at each concurrency level, beyond the function's reserved concurrency,
   for a fixed time each; every answer checked against the model's own answer for its text.
   Figures: wrong answers, throttles, errors, cold starts, p50/p99 per level.
3. Faults (scripts/reliability/faults.py), each with its outcome.

Prints the table, writes a PNG of latency and throttles per level, and JSON with --json PATH.
`--check` exits 1 if any figure that must be zero is not, or a fault was not survived.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Progress = Callable[[str], None]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-dir", type=Path, help="the embedding model (default build/models/minilm, built if missing)")
    parser.add_argument("--classifier-dir", type=Path,
                        help="also fuzz a built text-classification model's /v1/classify (preheat build --model ...)")
    parser.add_argument("--reranker-dir", type=Path, help="also fuzz a built cross-encoder's /v1/rerank")
    parser.add_argument("--levels", default="1,2,4,8", help="concurrency levels for the load test (default 1,2,4,8)")
    parser.add_argument("--reserved", type=int, default=2, help="the function's reserved concurrency (default 2)")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per load level (default 10)")
    parser.add_argument("--examples", type=int, default=25,
                        help="fuzzing: examples per route and mode (positive, negative) and target (default 25)")
    parser.add_argument("--fuzz-seconds", type=float, default=120.0, help="fuzzing: time cap per target (default 120)")
    parser.add_argument("--phase-seconds", type=float, default=3.0, help="cache outage: seconds per phase (default 3)")
    parser.add_argument("--json", type=Path, help="write the figures as JSON here")
    parser.add_argument("--png", type=Path, default=Path("build/bench/reliability.png"), help="the plot")
    parser.add_argument("--state-dir", type=Path, default=Path(".preheat/bench-reliability"))
    parser.add_argument("--check", action="store_true", help="exit 1 unless every must-be-zero figure is zero")


@dataclass(frozen=True)
class Options:
    model_dir: Path
    state_dir: Path
    levels: tuple[int, ...] = (1, 2, 4, 8)
    reserved: int = 2
    seconds: float = 10.0
    examples: int = 25
    fuzz_seconds: float = 120.0
    phase_seconds: float = 3.0
    pool: int = 200
    threads: int = 1
    atol: float = 1e-4
    root: Path = field(default_factory=Path.cwd)
    classifier_dir: Path | None = None
    reranker_dir: Path | None = None


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from scripts.twin.models import ensure_default_model

    console = Console(file=sys.stdout, width=max(120, Console().width))
    levels = tuple(int(x) for x in str(args.levels).split(",") if x.strip())
    if not levels or min(levels) < 1 or args.reserved < 1 or args.seconds <= 0 or args.examples < 1:
        raise SystemExit("--levels, --reserved, --seconds and --examples must be positive")
    model_dir = args.model_dir or ensure_default_model(Path.cwd(), console)
    options = Options(
        model_dir=model_dir.resolve(), state_dir=args.state_dir, levels=levels, reserved=args.reserved,
        seconds=args.seconds, examples=args.examples, fuzz_seconds=args.fuzz_seconds,
        phase_seconds=args.phase_seconds,
        classifier_dir=_classification_dir(args.classifier_dir, pairs=False, flag="--classifier-dir"),
        reranker_dir=_classification_dir(args.reranker_dir, pairs=True, flag="--reranker-dir"),
    )
    with console.status("starting…") as status:
        results = collect(options, progress=lambda text: status.update(text))
    console.print(f"logs: {results['meta']['logs']}", highlight=False)
    render(results, console)
    if args.png:
        plot(results, args.png)
        console.print(f"plot: {args.png}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
        console.print(f"figures: {args.json}")
    return 1 if args.check and not results["passed"] else 0


def _classification_dir(model_dir: Path | None, *, pairs: bool, flag: str) -> Path | None:
    """A built text-classification model directory (a cross-encoder if `pairs`), or exit naming the flag."""
    if model_dir is None:
        return None
    from functions.inference import manifest as manifests
    from functions.inference.errors import ModelLoadError

    try:
        manifest = manifests.load(model_dir)
    except ModelLoadError as exc:
        raise SystemExit(f"{flag} {model_dir}: {exc.message}") from None
    if manifest.task != "text-classification" or manifest.text is None or manifest.text.pairs != pairs:
        kind = "a cross-encoder (text-classification of pairs)" if pairs else "a text-classification model"
        raise SystemExit(f"{flag} {model_dir}: needs {kind}, but its manifest's task is {manifest.task!r}")
    return model_dir.resolve()


@contextlib.contextmanager
def _redis() -> Iterator[Any]:
    from scripts.cache_servers import RedisServer, redis_binary

    if redis_binary() is None:
        yield None
        return
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


def collect(options: Options, progress: Progress | None = None) -> dict[str, Any]:
    """Run everything; the figures as a JSON-able dict (`passed` is the verdict of all of them).

    The in-process app and runtimes print their EMF and logs on stdout, as on Lambda: that goes to
    `<state_dir>/process.log` (searched for leaks with the twin's logs), not into the caller's output."""
    options.state_dir.mkdir(parents=True, exist_ok=True)
    log_path = options.state_dir / "process.log"
    with log_path.open("w") as log, contextlib.redirect_stdout(log):
        results = _collect(options, progress or (lambda _: None), log_path)
    return results


def _collect(options: Options, say: Progress, log_path: Path) -> dict[str, Any]:
    from functions.inference.app import create_app
    from functions.inference.runtime import Runtime
    from functions.inference.settings import Settings
    from scripts.reliability import faults, load, stack
    from scripts.reliability.models import damaged_copy, write_tensor_model
    from scripts.reliability.rawhttp import HttpTarget
    from scripts.twin import state as twin_state
    from scripts.twin.client import TwinClient

    started = time.monotonic()
    work = options.state_dir.resolve() / "models"
    tensor_dir = write_tensor_model(work / "scaler")
    damaged = damaged_copy(options.model_dir, work / "broken", "truncate")
    env = {"PREHEAT_THREADS": str(options.threads), "PREHEAT_MAX_REQUEST_BYTES": str(stack.MAX_REQUEST_BYTES)}

    def runtime(model_dir: Path) -> Runtime:
        return Runtime.load(Settings.from_env({"PREHEAT_MODEL_DIR": str(model_dir), **env}))

    say("loading the models in this process (the app under uvicorn, and the reference answers)")
    embed_rt, tensor_rt = runtime(options.model_dir), runtime(tensor_dir)
    model = embed_rt.manifest.name
    pool = load.texts(options.pool, words=_WORDS)
    reference = {t: embed_rt.task.embed([t]).values[0] for t in pool}  # type: ignore[attr-defined]
    results: dict[str, Any] = {"meta": {
        "model_dir": str(options.model_dir), "model": model, "reserved": options.reserved,
        "levels": list(options.levels), "seconds_per_level": options.seconds, "examples": options.examples,
        "max_request_bytes": stack.MAX_REQUEST_BYTES, "pool": options.pool, "atol": options.atol,
    }}
    # The text-classification models, when given: (twin function, kind, model dir).
    classifiers = [(name, kind, d) for name, kind, d in ((stack.CLASSIFIER, "classifier", options.classifier_dir),
                                                         (stack.RERANKER, "reranker", options.reranker_dir)) if d]
    with contextlib.ExitStack() as apps, _redis() as redis, stack.uvicorn_app(create_app(embed_rt)) as embed_url, \
            stack.uvicorn_app(create_app(tensor_rt)) as tensor_url:
        classifier_urls = [apps.enter_context(stack.uvicorn_app(create_app(runtime(d)))) for _, _, d in classifiers]
        spec = stack.StackSpec(
            root=options.root.resolve(), embed_dir=options.model_dir, tensor_dir=tensor_dir,
            broken_dir=work / "broken", state_dir=options.state_dir / "twin",
            redis_url=redis.url if redis else None, reserved=options.reserved, env={"PREHEAT_THREADS": str(options.threads)},
            classifier_dir=options.classifier_dir, reranker_dir=options.reranker_dir,
        )
        say("starting the local twin")
        twin_state.stop(spec.state_dir)
        state, _ = twin_state.start(stack.twin_config(spec), cwd=spec.root, timeout=120)
        try:
            twin = TwinClient(state)
            targets = [
                (HttpTarget("uvicorn", embed_url), "embedding"),
                (HttpTarget("uvicorn", tensor_url), "tensor"),
                (HttpTarget("lambda", state.url(stack.TARGET), state.ca, _signer(state, stack.TARGET)), "embedding"),
                (HttpTarget("lambda", state.url(stack.TENSOR), state.ca, _signer(state, stack.TENSOR)), "tensor"),
            ]
            for (name, kind, _), url in zip(classifiers, classifier_urls, strict=True):
                targets += [(HttpTarget("uvicorn", url), kind),
                            (HttpTarget("lambda", state.url(name), state.ca, _signer(state, name)), kind)]
            results["hostile"] = _hostile(targets, options, say)
            say("load")
            levels = load.run_levels(twin, stack.TARGET, model, pool, reference, levels=options.levels,
                                     seconds=options.seconds, atol=options.atol, progress=say)
            results["load"] = {"levels": [r.as_dict() for r in levels],
                               "wrong": sum(r.wrong for r in levels), "errors": sum(r.errors + r.hangs for r in levels),
                               "throttled": sum(r.throttled for r in levels),
                               "cold_starts": sum(r.cold_client for r in levels)}
            outcomes = []
            say("fault: an instance killed mid-request")
            outcomes.append(faults.kill_mid_request(twin, model, reference, options.atol))
            say("fault: a truncated model file")
            outcomes.append(faults.broken_model(twin, damaged))
            if redis is not None:
                outcomes.append(faults.cache_outage(twin, redis, model, pool[:50], reference, options.atol,
                                                    phase_s=options.phase_seconds, progress=say))
            else:
                outcomes.append(faults.FaultResult("shared cache (Redis) killed, then paused",
                                                   problems=["redis-server is not installed: not run"]).finish("skipped"))
            say("fault: the controller throttled")
            outcomes.append(faults.controller_throttled(twin))
            say("fault: a warmer fan-out beyond the reserved concurrency")
            outcomes.append(faults.warmer_fanout(twin, options.reserved, spec.warm_max_concurrency))
            results["faults"] = [f.as_dict() for f in outcomes]
            say("security: request bodies and secrets in the logs")
            results["security"] = _leaks(twin, state, spec, HttpTarget("uvicorn", embed_url), model, log_path)
        finally:
            twin_state.stop_pid(state.pid)
    hostile_ok = results["hostile"]["bad"] == 0 and results["hostile"]["failed_cases"] == 0
    security = results["security"]
    results["passed"] = bool(
        hostile_ok and results["load"]["wrong"] == 0 and results["load"]["errors"] == 0
        and all(f["passed"] for f in results["faults"])
        and security["canary_in_logs"] == 0 and not security["secrets_in_logs"]
    )
    results["meta"]["logs"] = [str(log_path), str(spec.state_dir)]
    results["meta"]["seconds"] = round(time.monotonic() - started, 1)
    return results


def _leaks(twin: Any, state: Any, spec: Any, uvicorn: Any, model: str, log_path: Path) -> dict[str, Any]:
    """Canary requests to both paths, then every log searched for the canary and for credentials."""
    from scripts.reliability import leaks, stack
    from scripts.reliability.rawhttp import HttpTarget

    marker = leaks.canary()
    statuses = leaks.send_canaries(HttpTarget("lambda", state.url(stack.TARGET), state.ca, _signer(state, stack.TARGET)),
                                   model, marker, spec.max_request_bytes)
    statuses += leaks.send_canaries(uvicorn, model, marker, spec.max_request_bytes)
    twin.flush()
    sys.stdout.flush()
    files = [log_path, *sorted(Path(spec.state_dir).rglob("*.log"))]
    findings, size = leaks.scan_files(files)
    cloudwatch, events = leaks.cloudwatch_log_text(twin.boto3_client("logs"))
    findings += leaks.scan_text(cloudwatch, "CloudWatch Logs (moto)")
    hits = sum(p.read_text(errors="replace").count(marker) for p in files) + cloudwatch.count(marker)
    return {
        "canary_requests": len(statuses), "canary_statuses": statuses, "canary_in_logs": hits,
        "log_files": [str(p) for p in files], "log_bytes": size, "cloudwatch_events": events,
        "secrets_in_logs": [f.as_dict() for f in findings],
    }


_WORDS = (
    "the a cat dog sat ran on under big small red blue mat hello world model cold start warm cache fast "
    "lambda cloud request answer vector text quick brown fox jumps over lazy"
).split()


def _signer(state: Any, function: str) -> Any:
    """The Function URL's signer when its AuthType is AWS_IAM (the stack's default), else None."""
    from scripts.twin.sigv4 import Signer

    return Signer(state.region) if state.url_auth(function) == "AWS_IAM" else None


def _hostile(targets: list[tuple[Any, str]], options: Options, say: Progress) -> dict[str, Any]:
    from scripts.reliability import fuzz, hostile, stack

    fuzzed, cases = [], []
    for target, kind in targets:
        label = f"{target.name} ({kind})"

        def tell(text: str, label: str = label) -> None:
            say(f"{label}: {text.split(': ', 1)[-1]}")

        anchors = fuzz.Anchors.discover(target)
        report = fuzz.fuzz(target, examples=options.examples, seconds=options.fuzz_seconds, progress=tell)
        fuzzed.append({**report.as_dict(), "target": label})
        lambda_path = target.name == "lambda"
        if kind == "embedding":
            chosen = hostile.embedding_cases(anchors, stack.MAX_REQUEST_BYTES, lambda_path=lambda_path)
        elif kind in ("classifier", "reranker"):
            route = hostile.RERANK if kind == "reranker" else hostile.CLASSIFY
            chosen = hostile.classification_cases(anchors, stack.MAX_REQUEST_BYTES, route=route, lambda_path=lambda_path)
        else:
            chosen = hostile.tensor_cases(anchors)
        if target.signer is not None and kind == "embedding":  # an AWS_IAM Function URL
            chosen += hostile.auth_cases(anchors)
        ran = hostile.run_cases(target, chosen, progress=tell)
        cases.append({**ran.as_dict(), "target": label})
    return {
        "fuzz": fuzzed,
        "cases": cases,
        "requests": sum(f["requests"] for f in fuzzed) + sum(c["cases"] for c in cases),
        "server_errors": sum(f["server_errors"] for f in fuzzed) + sum(c["server_errors"] for c in cases),
        "hangs": sum(f["verdicts"].get("hang", 0) for f in fuzzed) + sum(c["hangs"] for c in cases),
        "bad": sum(f["bad"] for f in fuzzed),
        "spec_violations": sum(sum(f["check_failures"].values()) for f in fuzzed),
        "failed_cases": sum(c["failed"] for c in cases),
    }


def render(results: dict[str, Any], console: Any) -> None:
    from rich import box
    from rich.table import Table

    h = results["hostile"]
    table = Table(title="Hostile input (zero 5xx, zero hangs, every rejection a 4xx with a reason)", box=box.SIMPLE)
    for column in ("target", "fuzzed", "5xx", "no reason", "hangs", "spec violations", "cases passed", "cases 5xx"):
        table.add_column(column, justify="left" if column == "target" else "right")
    for fuzzed, cases in zip(h["fuzz"], h["cases"], strict=True):
        table.add_row(
            fuzzed["target"], str(fuzzed["requests"]) + ("*" if fuzzed["out_of_time"] else ""),
            str(fuzzed["server_errors"]), str(fuzzed["verdicts"].get("unshaped", 0)),
            str(fuzzed["verdicts"].get("hang", 0) + cases["hangs"]), str(sum(fuzzed["check_failures"].values())),
            f"{cases['cases'] - cases['failed']}/{cases['cases']}", str(cases["server_errors"]),
        )
    console.print(table)
    for cases in h["cases"]:
        for outcome in cases["outcomes"]:
            if not outcome["passed"]:
                console.print(f"  [red]FAILED[/] {cases['target']}: {outcome['case']}: {outcome['why']}")
    for fuzzed in h["fuzz"]:
        for sample in fuzzed["samples"][:3]:
            console.print(f"  [red]{fuzzed['target']}[/]: {sample}", highlight=False)

    meta = results["meta"]
    table = Table(title=f"Load through the HTTPS Function URL (reserved concurrency {meta['reserved']}, "
                        f"{meta['seconds_per_level']:g} s per level)", box=box.SIMPLE)
    for column in ("clients", "requests", "correct", "wrong", "throttled (429)", "errors", "cold starts",
                   "p50 ms", "p99 ms", "answers/s"):
        table.add_column(column, justify="right")
    for level in results["load"]["levels"]:
        table.add_row(
            str(level["concurrency"]), str(level["requests"]), str(level["correct"]), str(level["wrong"]),
            f"{level['throttled']} ({level['throttled_platform']})", str(level["errors"] + level["hangs"]),
            f"{level['cold_starts']} ({level['cold_starts_platform']})", _ms(level["p50_ms"]), _ms(level["p99_ms"]),
            f"{level['throughput_rps']:.0f}",
        )
    console.print(table)
    console.print("  (in brackets: as the platform counted them; throttles include every retry)", highlight=False)

    table = Table(title="Faults", box=box.SIMPLE)
    table.add_column("fault")
    table.add_column("survived")
    table.add_column("outcome")
    for fault in results["faults"]:
        table.add_row(fault["name"], "[green]yes[/]" if fault["passed"] else "[red]NO[/]", fault["outcome"])
    console.print(table)
    sec = results["security"]
    console.print(
        f"Security: {sec['canary_requests']} requests carried a canary (statuses {sorted(set(sec['canary_statuses']))}); "
        f"found {sec['canary_in_logs']} times in {len(sec['log_files'])} log files ({sec['log_bytes']:,} bytes) and "
        f"{sec['cloudwatch_events']:,} CloudWatch Logs events; credentials in logs: {len(sec['secrets_in_logs'])}",
        highlight=False,
    )
    verdict = "[green]all checks passed[/]" if results["passed"] else "[red]some checks FAILED[/]"
    console.print(f"{verdict} in {meta['seconds']:.0f} s ({h['requests']} hostile requests, "
                  f"{h['server_errors']} 5xx, {h['hangs']} hangs; {results['load']['wrong']} wrong answers under load)")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = results["load"]["levels"]
    clients = [str(level["concurrency"]) for level in levels]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    x = range(len(levels))
    left.bar([i - 0.2 for i in x], [level["p50_ms"] or 0 for level in levels], width=0.4, label="p50")
    left.bar([i + 0.2 for i in x], [level["p99_ms"] or 0 for level in levels], width=0.4, label="p99")
    left.set_xticks(list(x), clients)
    left.set_xlabel("concurrent clients")
    left.set_ylabel("latency of correct answers (ms)")
    left.legend()
    share = [level["throttled"] / level["requests"] * 100 if level["requests"] else 0 for level in levels]
    right.bar(list(x), share, color="tab:red")
    right.set_xticks(list(x), clients)
    right.set_xlabel("concurrent clients")
    right.set_ylabel("throttled (429) %")
    within = [i for i, level in enumerate(levels) if level["concurrency"] <= results["meta"]["reserved"]]
    right.axvline(x=(within[-1] if within else -1) + 0.5, color="grey", linestyle="--",
                  label=f"reserved concurrency ({results['meta']['reserved']})")
    right.legend()
    fig.suptitle(f"{results['meta']['model']} through the twin's Function URL: every answer correct or a 429")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
