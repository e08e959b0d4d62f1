from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from functions.inference import manifest as manifests
from functions.inference.errors import ModelLoadError


@pytest.fixture
def model_copy(embedding_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(embedding_dir, target)
    return target


def test_a_built_directory_verifies(model_copy: Path) -> None:
    manifest = manifests.load(model_copy)
    manifests.verify(model_copy, manifest)
    assert manifest.task == "text-embedding"
    assert set(manifest.files) == {"model.onnx", "tokenizer.json"}


def test_model_id_changes_with_any_file(model_copy: Path, tmp_path: Path) -> None:
    before = manifests.load(model_copy).model_id
    raw = json.loads((model_copy / "manifest.json").read_text())
    raw["files"]["tokenizer.json"]["sha256"] = "0" * 64
    (model_copy / "manifest.json").write_text(json.dumps(raw))
    assert manifests.load(model_copy).model_id != before


def test_a_flipped_byte_fails_naming_the_file(model_copy: Path) -> None:
    path = model_copy / "model.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match=r"model\.onnx .*does not match its manifest"):
        manifests.verify(model_copy, manifests.load(model_copy))


def test_a_truncated_file_fails_naming_the_file(model_copy: Path) -> None:
    path = model_copy / "tokenizer.json"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ModelLoadError, match=r"tokenizer\.json .*100 bytes"):
        manifests.verify(model_copy, manifests.load(model_copy))


def test_a_missing_file_fails_naming_the_file(model_copy: Path) -> None:
    (model_copy / "tokenizer.json").unlink()
    with pytest.raises(ModelLoadError, match=r"tokenizer\.json is missing"):
        manifests.verify(model_copy, manifests.load(model_copy))


def test_no_manifest_says_how_to_fix_it(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="PREHEAT_MODEL_DIR"):
        manifests.load(tmp_path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"task": "translation"}, "task 'translation'"),
        ({"files": {"../etc/passwd": {"sha256": "0" * 64, "bytes": 1}}}, "relative"),
        ({"text": None}, "needs 'text' and 'embedding' sections"),
        ({"embedding": None}, "needs 'text' and 'embedding' sections"),
        ({"inputs": "nope"}, "not a valid manifest"),
    ],
)
def test_inconsistent_manifests_are_refused(
    model_copy: Path, change: dict[str, object], message: str
) -> None:
    raw = json.loads((model_copy / "manifest.json").read_text())
    raw.update(change)
    (model_copy / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(ModelLoadError, match=message):
        manifests.load(model_copy)


@pytest.mark.parametrize(
    ("section", "change", "message"),
    [
        ("text", {"feeds": {"ids": "input_ids", "mask": "attention_mask"}}, "token_type_ids have no role"),
        ("text", {"feeds": {"ids": "input_ids", "mask": "attention_mask", "type_ids": "segment"}}, "names segment"),
        ("text", {"feeds": {"mask": "attention_mask", "type_ids": "token_type_ids", "x": "input_ids"}}, "role"),
        ("text", {"max_tokens": 1}, "max_tokens must be at least 2"),
        ("embedding", {"output": "pooler_output"}, "embedding.output 'pooler_output'"),
        ("embedding", {"pooling": "max"}, "embedding.pooling 'max'"),
        ("embedding", {"dimensions": 0}, "dimensions must be positive"),
    ],
)
def test_task_sections_must_agree_with_the_graph(
    model_copy: Path, section: str, change: dict[str, object], message: str
) -> None:
    raw = json.loads((model_copy / "manifest.json").read_text())
    raw[section].update(change)
    (model_copy / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(ModelLoadError, match=message):
        manifests.load(model_copy)


def test_a_manifest_of_the_previous_schema_says_rebuild(model_copy: Path) -> None:
    raw = json.loads((model_copy / "manifest.json").read_text())
    raw["schema_version"] = 1
    (model_copy / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(ModelLoadError, match=r"schema 1, this runtime reads 2: rebuild .*preheat build"):
        manifests.load(model_copy)


def _drop_xxh3(model_dir: Path) -> None:
    """The manifest as builds before XXH3 wrote it: sha256 only."""
    raw = json.loads((model_dir / "manifest.json").read_text())
    for entry in raw["files"].values():
        del entry["xxh3"]
    (model_dir / "manifest.json").write_text(json.dumps(raw))


def test_the_build_records_a_fast_checksum_beside_sha256(model_copy: Path) -> None:
    manifest = manifests.load(model_copy)
    assert manifests.fast_to_verify(manifest)
    for name, entry in manifest.files.items():
        assert entry.xxh3 == manifests.xxh3_file(model_copy / name)
        assert len(entry.xxh3) == 32 and len(entry.sha256) == 64


@pytest.mark.parametrize("fast", [True, False])
def test_a_flipped_byte_fails_with_either_checksum(model_copy: Path, fast: bool) -> None:
    if not fast:
        _drop_xxh3(model_copy)
    manifest = manifests.load(model_copy)
    assert manifests.fast_to_verify(manifest) is fast
    manifests.verify(model_copy, manifest)
    path = model_copy / "tokenizer.json"
    data = bytearray(path.read_bytes())
    data[-2] ^= 0x01
    path.write_bytes(bytes(data))
    kind = "xxh3" if fast else "sha256"
    with pytest.raises(ModelLoadError, match=rf"tokenizer\.json .*does not match its manifest: {kind} "):
        manifests.verify(model_copy, manifest)
