"""`preheat serve`: the inference app under uvicorn on 127.0.0.1, as the SageMaker container runs it.

The model is `--model NAME` (a directory under build/models) or `--model DIR`, by default the one
cdk.json's context names (`preheat.model`): what `preheat up` and `cdk synth` serve.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", metavar="NAME|DIR",
                        help="a model name under build/models or a model directory (default: preheat.model in cdk.json)")
    parser.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)  # the flag before --model
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from functions.inference.app import create_app
    from functions.inference.runtime import Runtime
    from functions.inference.settings import Settings
    from infra.config import ConfigError
    from scripts.twin.models import chosen_model

    try:
        _, model = chosen_model(str(args.model_dir.resolve()) if args.model_dir else args.model)
    except ConfigError as exc:
        print(f"preheat serve: {exc}")
        return 2
    os.environ["PREHEAT_MODEL_DIR"] = str(model.directory.resolve())
    app = create_app(Runtime.load(Settings.from_env()))
    print(f"serving {model.describe()} from {model.directory} on http://{args.host}:{args.port}")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
