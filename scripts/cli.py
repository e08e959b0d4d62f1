"""The `preheat` command line.

Every command lives in its own module with two functions, `add_arguments(parser)` and
`run(args) -> int`. Modules import heavy packages inside `run`, so `preheat --help` stays instant.
To add a command, add one row to COMMANDS.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# (group, name, module, help). An empty group makes a top-level command; a group makes
# `preheat GROUP NAME`. A top-level command may share its name with a group (`preheat build` and
# `preheat build layers`): the group's default action is the top-level module.
# fmt: off  (one row per command keeps merges trivial)
COMMANDS: list[tuple[str, str, str, str]] = [
    ("", "build", "scripts.build", "build a model (default all-MiniLM-L6-v2, or --model SPEC) into build/models/"),
    ("", "serve", "scripts.serve", "serve the inference app with uvicorn on 127.0.0.1"),
    ("bench", "cache", "scripts.bench_cache", "replay a Zipf request stream through the cache tier"),
    ("bench", "handler", "scripts.bench_handler", "cold start and warm latency of the Lambda handler vs the floor"),
    ("", "up", "scripts.up", "start the local twin (Lambda + Function URLs + moto) in the background"),
    ("", "down", "scripts.down", "stop the local twin"),
    ("", "invoke", "scripts.invoke", "call a Function URL (the twin's by default), SigV4-signed when it is AWS_IAM"),
    ("", "demo", "scripts.demo", "start a twin, send a cold burst then warm traffic, print cold and warm apart"),
    ("bench", "coldstart", "scripts.bench_coldstart", "cold starts and warm latency: default vs naive vs floor"),
    ("", "simulate", "scripts.simulate", "replay serverless traces against the warm-keeping policies"),
    ("deploy", "sagemaker", "scripts.deploy_sagemaker", "SageMaker Serverless endpoint via the SageMaker SDK (twin or --aws)"),
    ("build", "layers", "scripts.build_layers", "build Lambda layers, SageMaker model.tar.gz and container context"),
    ("bench", "model", "scripts.bench_model", "fp32 against the slim model: size, load, latency, accuracy"),
    ("", "dashboard", "scripts.dashboard", "draw the deployed CloudWatch dashboard locally (PNG + HTML) from the twin's metrics"),
    ("bench", "reliability", "scripts.bench_reliability", "hostile input, load and faults: 5xx, wrong answers, throttles, outcomes"),
    ("bench", "metrics", "scripts.bench_metrics", "warm-path cost of flushing cache counters at environment end vs per request"),
]
# fmt: on


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="preheat", description=__doc__.splitlines()[0])
    top = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    groups: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]] = {}
    group_parsers: dict[str, argparse.ArgumentParser] = {}
    for group, name, module, help_text in COMMANDS:
        if group:
            if group not in groups:
                gp = group_parsers.get(group) or top.add_parser(group, help=f"{group} commands")
                group_parsers[group] = gp
                groups[group] = gp.add_subparsers(dest=f"{group}_command", metavar="SUBCOMMAND")
                gp.set_defaults(_group=group)
            sub = groups[group].add_parser(name, help=help_text)
        else:
            sub = top.add_parser(name, help=help_text)
            group_parsers[name] = sub
        importlib.import_module(module).add_arguments(sub)
        sub.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    module = getattr(args, "_module", None)
    if module is None:
        parser.parse_args([*(argv if argv is not None else sys.argv[1:]), "--help"])
        return 2
    code: int = importlib.import_module(module).run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
