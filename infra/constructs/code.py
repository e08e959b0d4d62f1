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

# The warmer's and controller's code: warmers/ without the simulator, and of functions/ only the shared
# error, env parser, lazy exports and EMF writer, which need nothing but the standard library (the warmer runs
# without layers: no numpy, msgspec or onnxruntime).
WARMERS_PACKAGES = (
    "warmers",
    "functions/__init__.py",
    "functions/errors.py",
    "functions/envvars.py",
    "functions/lazy.py",
    "functions/metrics/__init__.py",
    "functions/metrics/emf.py",
)
WARMERS_DROP = ("warmers/simulator",)


def source_code(root: Path, packages: tuple[str, ...], *, drop: tuple[str, ...] = ()) -> lambda_.Code:
    """A zip asset holding `packages` (folders or files of the repository), minus `drop`."""
    exclude = ["*", *(f"!{p}" for p in packages), *drop, *_NOISE]
    return lambda_.Code.from_asset(str(root), exclude=exclude, ignore_mode=cdk.IgnoreMode.DOCKER)


def warmers_code(root: Path) -> lambda_.Code:
    return source_code(root, WARMERS_PACKAGES, drop=WARMERS_DROP)


def inference_code(root: Path) -> lambda_.Code:
    # What the function ships is defined once, beside the bytecode bundle built from it.
    return source_code(root, function_code.PACKAGES, drop=function_code.DROP)
