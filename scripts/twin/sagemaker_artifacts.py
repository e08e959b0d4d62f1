"""A SageMaker model's artifacts, locally: the model directory a container is started with, from
the model's environment (PREHEAT_MODEL_DIR, a model baked into the image) or from its ModelDataUrl
(model.tar.gz in moto's S3, extracted once per URL and ETag as SageMaker extracts it into
/opt/ml/model). The image itself is not run (no Docker engine).
"""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from functions.sagemaker.environment import SAGEMAKER_MODEL_DIR
from scripts.twin.sagemaker_control import NotServable, VariantSpec


def container_env(variant: VariantSpec, s3: Callable[[], Any], state_dir: Path) -> dict[str, str]:
    """The model's environment, with PREHEAT_MODEL_DIR where this machine has the model (blocking;
    `s3` gives the S3 client, made only when a ModelDataUrl is to be read)."""
    env = dict(variant.environment)
    baked = env.get("PREHEAT_MODEL_DIR", "").strip()
    if baked and baked != SAGEMAKER_MODEL_DIR:
        if not (Path(baked) / "manifest.json").is_file():
            raise NotServable(f"model {variant.model_name}: PREHEAT_MODEL_DIR {baked} has no manifest.json")
        return env
    if not variant.model_data_url:
        raise NotServable(
            f"model {variant.model_name} has no ModelDataUrl and no PREHEAT_MODEL_DIR: give it model.tar.gz in S3 "
            "or a model baked into the image")
    env["PREHEAT_MODEL_DIR"] = str(extract(variant.model_data_url, s3(), state_dir))
    return env


def extract(url: str, s3: Any, state_dir: Path) -> Path:
    """Download model.tar.gz from (moto's) S3 and extract it once, as SageMaker does into /opt/ml/model."""
    if not url.startswith("s3://") or "/" not in url[5:]:
        raise NotServable(f"ModelDataUrl {url!r} is not an s3://bucket/key URL")
    bucket, key = url[5:].split("/", 1)
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except Exception as exc:
        raise NotServable(f"ModelDataUrl {url}: {exc}") from None
    digest = hashlib.sha256(f"{url}\n{head.get('ETag', '')}".encode()).hexdigest()[:16]
    target = state_dir / "sagemaker" / "models" / digest
    if (target / ".extracted").is_file():
        return target
    target.mkdir(parents=True, exist_ok=True)
    archive = target.with_suffix(".tar.gz")
    s3.download_file(bucket, key, str(archive))
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(target, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise NotServable(f"ModelDataUrl {url} is not a readable tar.gz: {exc}") from None
    finally:
        archive.unlink(missing_ok=True)
    (target / ".extracted").write_text(url)
    return target
