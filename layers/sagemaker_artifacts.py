"""SageMaker artifacts: model.tar.gz (extracted by SageMaker to /opt/ml/model) and a docker build
context for the inference container (functions/ + the runtime's requirements + the Dockerfile)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from functions.inference import manifest as manifests
from layers import paths
from layers.archive import Sizes, write_tar_gz
from layers.deps_layer import runtime_requirements


@dataclass(frozen=True)
class SageMakerArtifacts:
    tarball: Path
    tarball_sizes: Sizes
    context: Path
    dockerfile: Path | None  # None when functions/sagemaker/Dockerfile does not exist yet


def build(
    model_dir: Path,
    *,
    tarball: Path = paths.SAGEMAKER_MODEL_TARBALL,
    context: Path = paths.SAGEMAKER_CONTEXT,
    dockerfile: Path = paths.SAGEMAKER_DOCKERFILE,
) -> SageMakerArtifacts:
    manifest = manifests.load(model_dir)
    manifests.verify(model_dir, manifest)
    staging = tarball.parent / ".model-staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in (manifests.MANIFEST_FILE, *manifest.files):
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(model_dir / name, staging / name)
    sizes = write_tar_gz(staging, tarball)
    shutil.rmtree(staging)

    shutil.rmtree(context, ignore_errors=True)
    context.mkdir(parents=True)
    shutil.copytree(
        paths.FUNCTIONS, context / "functions", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    (context / "requirements.txt").write_text(
        "# the inference runtime's dependencies: pyproject.toml [project] dependencies\n"
        + "".join(f"{req}\n" for req in runtime_requirements())
    )
    (context / ".dockerignore").write_text("**/__pycache__\n**/*.pyc\n")
    copied = None
    if dockerfile.is_file():
        copied = context / "Dockerfile"
        shutil.copy2(dockerfile, copied)
    return SageMakerArtifacts(tarball, sizes, context, copied)
