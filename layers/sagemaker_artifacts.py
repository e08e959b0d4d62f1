"""SageMaker artifacts: model.tar.gz (SageMaker extracts it to /opt/ml/model) and the docker build
context functions/sagemaker/Dockerfile expects:

    Dockerfile  requirements.txt (pyproject `dependencies` + uvicorn)  functions/ (the code)  model/

`preheat build layers` writes both; `preheat deploy sagemaker` uses the same functions.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

import msgspec

from functions.inference import manifest as manifests
from functions.inference.errors import ConfigError
from layers import paths
from layers.archive import Sizes, write_tar_gz
from layers.deps_layer import runtime_requirements


@dataclass(frozen=True)
class SageMakerArtifacts:
    tarball: Path
    tarball_sizes: Sizes
    context: Path


def pack_model(model_dir: Path, out: Path | None = None) -> Sizes:
    """model.tar.gz with the model's files at its root, byte-for-byte reproducible; only a model
    directory whose files match its manifest is packed. Default `out`: the archive of the model
    directory's name (build/sagemaker/model-NAME.tar.gz)."""
    out = paths.sagemaker_model_data(model_dir.name) if out is None else out
    if not (model_dir / manifests.MANIFEST_FILE).is_file():
        raise ConfigError(f"{model_dir} has no manifest.json: build the model first (`preheat build`)")
    manifest = manifests.load(model_dir)
    manifests.verify(model_dir, manifest)
    staging = out.parent / f".{out.name}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        for name in (manifests.MANIFEST_FILE, *manifest.files):
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(str(model_dir / name), str(staging / name))
        return write_tar_gz(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def container_requirements(pyproject: Path = paths.PYPROJECT) -> list[str]:
    """The image's packages: the runtime's `dependencies`, plus the server (uvicorn, from the `cli`
    extra), which the Lambda deps layer must not carry."""
    with pyproject.open("rb") as handle:
        extras = tomllib.load(handle)["project"]["optional-dependencies"]
    server = [r for r in extras["cli"] if r.split(">")[0].split("=")[0].split("[")[0].strip() == "uvicorn"]
    return [*runtime_requirements(pyproject), *server]


def write_context(
    out: Path = paths.SAGEMAKER_CONTEXT,
    model_dir: Path | None = None,
    dockerfile: Path = paths.SAGEMAKER_DOCKERFILE,
) -> Path:
    """The build context; with `model_dir`, its model/ holds the model (for `--target baked`)."""
    if not dockerfile.is_file():
        raise ConfigError(f"{dockerfile} is missing: the container cannot be built without it")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    shutil.copy2(dockerfile, out / "Dockerfile")
    (out / "requirements.txt").write_text("\n".join(container_requirements()) + "\n")
    (out / ".dockerignore").write_text("**/__pycache__\n**/*.pyc\n")
    shutil.copytree(
        paths.FUNCTIONS, out / "functions",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "Dockerfile", "baselines"),
    )
    if model_dir is not None:
        shutil.copytree(model_dir, out / "model", copy_function=_link_or_copy)
    else:
        (out / "model").mkdir()
    return out


def build(model_dir: Path, *, tarball: Path | None = None,
          context: Path = paths.SAGEMAKER_CONTEXT) -> SageMakerArtifacts:
    tarball = paths.sagemaker_model_data(model_dir.name) if tarball is None else tarball
    sizes = pack_model(model_dir, tarball)
    return SageMakerArtifacts(tarball, sizes, write_context(context))


def packed(tarball: Path) -> manifests.Manifest | None:
    """The manifest of the model an archive holds, or None if it holds none (or is unreadable).
    Reads up to manifest.json only, which comes early (pack_model sorts the entries)."""
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            for member in tar:
                if member.isfile() and member.name.removeprefix("./") == manifests.MANIFEST_FILE:
                    handle = tar.extractfile(member)
                    if handle is None:
                        return None
                    return msgspec.json.decode(handle.read(), type=manifests.Manifest)
    except (OSError, tarfile.TarError, msgspec.DecodeError, msgspec.ValidationError):
        return None
    return None


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
