"""`preheat down`: stop the twin `preheat up` started (its instances and moto_server go with it)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", type=Path, default=Path(".preheat"), help="the twin's state directory")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from scripts.twin import state as twin_state

    console = Console()
    stopped = twin_state.stop(args.state_dir)
    if stopped is None:
        console.print("no twin is running")
        return 0
    console.print(f"[green]twin stopped[/] (pid {stopped.pid})")
    return 0
