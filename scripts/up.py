"""`preheat up`: start the local twin in the background and print how to reach it."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from layers.model_requests import ModelRequests


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path,
                        help="a twin config as JSON (default: the twin of the CDK stack, as cdk.json configures it)")
    parser.add_argument("-c", "--context", action="append", default=[], metavar="KEY=VALUE",
                        help="a CDK context override, as `cdk synth -c` takes it "
                             "(e.g. -c preheat:model=NAME, -c preheat:warmer.schedule='rate(2 minutes)'); repeat")
    parser.add_argument("--state-dir", type=Path, default=Path(".preheat"), help="where twin.json, logs and the CA go")
    parser.add_argument("--port", type=int, default=0, help="the AWS endpoint's port (default: any free port)")
    parser.add_argument("--keep-alive", type=float, help="seconds an idle instance is kept (default 300)")
    parser.add_argument("--provisioned", type=int, default=0,
                        help="provisioned concurrency on the inference function's alias `live` at start")


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from rich.console import Console

    from infra.config import ConfigError
    from scripts.twin import state as twin_state
    from scripts.twin.config import TwinConfig, TwinConfigError
    from scripts.twin.models import chosen_model, served_model_dir
    from scripts.twin.stack import default_config

    console = Console()
    root = Path.cwd()
    running = twin_state.read_state(args.state_dir)
    if running is not None:
        console.print(f"[yellow]a twin is already running[/] (pid {running.pid}); `preheat down` stops it")
        print_state(console, running, served_model_dir(args.state_dir))
        return 0
    model_dir: Path | None = None
    try:
        if args.config:
            if args.context:
                raise TwinConfigError("-c/--context configures the default stack; it cannot change --config's JSON")
            config = TwinConfig.from_dict({**json.loads(args.config.read_text()), "state_dir": str(args.state_dir)})
        else:
            try:
                # The default model builds itself on first use; any other is the user's to build.
                stack, model = chosen_model(None, args.context, root, console=console, build_default=True)
            except ConfigError as exc:
                raise TwinConfigError(f"bad stack config (cdk.json context): {exc}") from None
            model_dir = model.directory
            overrides: dict[str, Any] = {"state_dir": args.state_dir, "gateway_port": args.port}
            if args.keep_alive is not None:
                overrides["keep_alive_s"] = args.keep_alive
            config = default_config(root, stack=stack, **overrides)
            if args.provisioned:
                first = dataclasses.replace(config.functions[0], provisioned={"live": args.provisioned})
                config = dataclasses.replace(config, functions=(first, *config.functions[1:])).validate()
    except (TwinConfigError, OSError, ValueError) as exc:
        console.print(f"[red]bad twin config:[/] {exc}")
        return 2
    started = time.perf_counter()
    try:
        with console.status("starting the twin (moto_server, endpoint, Function URLs)…"):
            state, _ = twin_state.start(config, cwd=root, detach=True)
    except twin_state.TwinStartError as exc:
        console.print(f"[red]the twin did not start[/]\n{exc}")
        return 1
    console.print(f"[green]twin up[/] (pid {state.pid}) in {time.perf_counter() - started:.1f} s")
    print_state(console, state, model_dir)
    return 0


def print_state(console: object, state: object, model_dir: Path | None = None) -> None:
    """What runs and how to reach it; with `model_dir` (the model the inference function serves), a
    request that model answers, for curl, the AWS CLI and boto3."""
    from rich.console import Console
    from rich.table import Table

    from scripts.twin.config import DEFAULT_FUNCTION
    from scripts.twin.state import TwinState

    assert isinstance(console, Console) and isinstance(state, TwinState)
    requests = _requests(model_dir)
    table = Table(show_header=True, header_style="bold", box=None)
    table.add_column("function")
    table.add_column("Function URL (HTTPS)")
    table.add_column("handler")
    table.add_column("layers")
    for name, info in state.functions.items():
        table.add_row(name, f"{info.get('url') or '-'}" + (f"  ({info['url_qualifier']})" if info.get("url") else ""),
                      info["handler"], "isolated" if info.get("isolated") else "local env")
    console.print(table)
    console.print(f"  AWS endpoint  {state.endpoint}   (boto3 endpoint_url / AWS_ENDPOINT_URL; Invoke, "
                  "provisioned concurrency; everything else is moto)")
    for name in state.endpoints:
        console.print(f"  SageMaker     endpoint {name}: boto3 sagemaker-runtime invoke_endpoint on the AWS endpoint")
    if requests is not None:
        console.print(f"  model         {requests.name} ({requests.task}): {', '.join(requests.routes)}", highlight=False)
    for name in state.tables:
        console.print(f"  DynamoDB      table {name} in moto (the cache's shared tier)")
    console.print(f"  CA            {state.ca}")
    console.print(f"  logs          {state.log_dir}/<function>.log  (and CloudWatch Logs in moto)")
    url = state.functions.get(DEFAULT_FUNCTION, {}).get("url")
    if url and requests is not None:
        sample = requests.sample()
        body = json.dumps(sample.body)
        iam = state.url_auth(DEFAULT_FUNCTION) == "AWS_IAM"
        console.print("\ntry:", style="bold")
        console.print(f"  preheat invoke {sample.path} -d '{body}'" + ("   (signs for the URL's AWS_IAM auth)" if iam else ""),
                      soft_wrap=True, highlight=False)
        sign = f"--aws-sigv4 aws:amz:{state.region}:lambda --user testing:testing " if iam else ""
        console.print(f"  curl --cacert {state.ca} {sign}-H 'content-type: application/json' \\\n"
                      f"       -d '{body}' {url}{sample.path.lstrip('/')}", soft_wrap=True, highlight=False)
        console.print(f"  AWS_ENDPOINT_URL={state.endpoint} AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing "
                      f"aws lambda invoke --region {state.region} --function-name {DEFAULT_FUNCTION} --qualifier live "
                      "--cli-binary-format raw-in-base64-out --payload "
                      f"'{body}' out.json", soft_wrap=True, highlight=False)
        for name in state.endpoints:
            console.print(f"  boto3.client('sagemaker-runtime', endpoint_url='{state.endpoint}', region_name="
                          f"'{state.region}').invoke_endpoint(EndpointName='{name}', "
                          f"ContentType='application/json', Body='{body}')", soft_wrap=True, highlight=False)
    console.print("stop it with: preheat down", style="dim")


def _requests(model_dir: Path | None) -> ModelRequests | None:
    from functions.inference.errors import ModelLoadError
    from layers.model_requests import ModelRequests

    if model_dir is None:
        return None
    try:
        return ModelRequests.of(model_dir)
    except ModelLoadError:
        return None
