"""Function code assets: only the packages a function imports, staged from the repository by CDK.

Docker-style ignore patterns let CDK skip whole directories (.venv, node_modules, build) instead of
walking them, so staging stays fast; `!` re-includes the packages the handler needs.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_

from layers import function_code

_NOISE = ("**/__pycache__", "**/*.pyc", "**/.DS_Store")


def source_code(root: Path, packages: tuple[str, ...], *, drop: tuple[str, ...] = ()) -> lambda_.Code:
    """A zip asset holding `packages` (top-level folders of the repository), minus `drop`."""
    exclude = ["*", *(f"!{p}" for p in packages), *drop, *_NOISE]
    return lambda_.Code.from_asset(str(root), exclude=exclude, ignore_mode=cdk.IgnoreMode.DOCKER)


def inference_code(root: Path) -> lambda_.Code:
    # What the function ships is defined once, beside the bytecode bundle built from it.
    return source_code(root, function_code.PACKAGES, drop=function_code.DROP)
