"""`preheat serve`: the inference app under uvicorn on 127.0.0.1, as the SageMaker container runs it."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from layers import paths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-dir", type=Path, default=paths.DEFAULT_MODEL)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from functions.inference.app import create_app
    from functions.inference.runtime import Runtime
    from functions.inference.settings import Settings

    os.environ["PREHEAT_MODEL_DIR"] = str(args.model_dir.resolve())
    app = create_app(Runtime.load(Settings.from_env()))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
