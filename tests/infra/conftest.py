"""Fixtures for the CDK tests: stand-in build outputs in temporary directories, and synthesized stacks.

Synth costs seconds, so each stack variant is synthesized once per session and shared.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class BuildOutputs:
    """What `preheat build` and `preheat build layers` write, in miniature: a tiny model (STAND_IN)
    under models/, its model layer and SageMaker archive, stand-in deps layers and image context."""

    root: Path
    model_layer: Path
    deps_root: Path
    sagemaker_context: Path
    model_data: Path
    models: Path

    @property
    def model_dir(self) -> Path:
        return self.models / STAND_IN

    def context(self, **overrides: Any) -> dict[str, Any]:
        preheat: dict[str, Any] = {
            "model": STAND_IN,
            "modelsDir": str(self.models),
            "layers": {"model": str(self.model_layer), "depsRoot": str(self.deps_root)},
            "sagemaker": {"contextDir": str(self.sagemaker_context), "modelData": str(self.model_data)},
        }
        for key, value in overrides.items():
            node = preheat
            *parents, leaf = key.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        return {"preheat": preheat}

    def cli_context(self) -> list[str]:
        return [
            "-c", f"preheat:model={STAND_IN}",
            "-c", f"preheat:modelsDir={self.models}",
            "-c", f"preheat:layers.model={self.model_layer}",
            "-c", f"preheat:layers.depsRoot={self.deps_root}",
            "-c", f"preheat:sagemaker.contextDir={self.sagemaker_context}",
            "-c", f"preheat:sagemaker.modelData={self.model_data}",
        ]  # fmt: skip


STAND_IN = "stand-in"  # the model the stand-in outputs are built from


@dataclass(frozen=True)
class Built:
    """A model's `preheat build` and `preheat build layers` outputs."""

    name: str
    models: Path
    layer: Path
    data: Path

    def overrides(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "modelsDir": str(self.models),
            "layers.model": str(self.layer),
            "sagemaker.modelData": str(self.data),
        }


def build_outputs(base: Path, name: str, write: Any) -> Built:
    from layers import model_layer, sagemaker_artifacts

    write(base / "models" / name, name=name)
    layer = model_layer.build(base / "models" / name, base / "layers" / f"model-{name}").layer_dir
    data = base / "sagemaker" / f"model-{name}.tar.gz"
    sagemaker_artifacts.pack_model(base / "models" / name, data)
    return Built(name, base / "models", layer, data)


def make_build_outputs(base: Path) -> BuildOutputs:
    from tests.support.tiny_models import write_embedding_model

    model = build_outputs(base, STAND_IN, write_embedding_model)
    for arch in ("x86_64", "arm64"):
        deps = base / "layers" / f"deps-{arch}" / "python"
        deps.mkdir(parents=True)
        (deps / "standin.py").write_text(f"ARCH = {arch!r}\n")
    context = base / "sagemaker" / "context"
    context.mkdir(parents=True)
    (context / "Dockerfile").write_text(
        'FROM public.ecr.aws/docker/library/python:3.12-slim\nCMD ["serve"]\n'
    )
    return BuildOutputs(ROOT, model.layer, base / "layers", context, model.data, model.models)


@pytest.fixture(scope="session")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> BuildOutputs:
    return make_build_outputs(tmp_path_factory.mktemp("build"))


@pytest.fixture(scope="session")
def image_root(tmp_path_factory: pytest.TempPathFactory) -> BuildOutputs:
    """A repository-shaped root for the container-image variant (its layers must lie inside the root)."""
    root = tmp_path_factory.mktemp("repo")
    shutil.copytree(ROOT / "functions", root / "functions", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "infra" / "images").mkdir(parents=True)
    shutil.copy(ROOT / "infra" / "images" / "lambda.Dockerfile", root / "infra" / "images")
    built = make_build_outputs(root / "build")
    return dataclasses.replace(built, root=root)


Synth = Callable[..., Any]


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """synth(context, root=ROOT) -> (stack, Template); cached per context."""
    import json

    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from infra.app import build

    cache: dict[str, Any] = {}

    def run(context: dict[str, Any], *, root: Path = ROOT) -> Any:
        key = json.dumps([context, str(root)], sort_keys=True)
        if key not in cache:
            app = cdk.App(context=context, outdir=str(tmp_path_factory.mktemp("cdk.out")))
            stack = build(app, root=root, checks=False)
            cache[key] = (stack, Template.from_stack(stack))
        return cache[key]

    return run
