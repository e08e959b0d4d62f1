"""The pieces the layer builds are made of: pruning, archives, safe stripping, bytecode, targets."""

from __future__ import annotations

import importlib.util
import struct
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pytest

from layers import archive, bytecode, deps_layer, elf, paths, prune


def touch(path: Path, size: int = 10) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)


def test_prune_removes_what_the_runtime_never_imports_and_keeps_the_rest(tmp_path: Path) -> None:
    keep = [
        "onnxruntime/__init__.py",
        "onnxruntime/capi/_pybind_state.py",
        "onnxruntime/capi/onnxruntime_pybind11_state.cpython-312-x86_64-linux-gnu.so",
        "numpy/_core/multiarray.py",
        "numpy/testing/__init__.py",
        "tokenizers/__init__.py",
    ]
    drop = [
        "onnxruntime/transformers/optimizer.py",
        "onnxruntime/quantization/quantize.py",
        "onnxruntime/tools/convert.py",
        "onnxruntime/capi/libonnxruntime.so.1.32.0",
        "numpy/_core/tests/test_umath.py",
        "numpy/f2py/__init__.py",
        "numpy/_core/include/numpy/ndarraytypes.h",
        "tokenizers/__init__.pyi",
        "huggingface_hub/__init__.py",
        "huggingface_hub-2.4.0.dist-info/METADATA",
        "bin/hf",
        "pkg/__pycache__/mod.cpython-311.pyc",
    ]
    for name in keep + drop:
        touch(tmp_path / name, 100)
    report = prune.prune(tmp_path)
    assert all((tmp_path / name).exists() for name in keep)
    assert not any((tmp_path / name).exists() for name in drop)
    assert sum(p.bytes for p in report) == 100 * len(drop)
    assert all(p.rule.reason for p in report)


def test_every_rule_says_why() -> None:
    assert all(rule.pattern and len(rule.reason) > 10 for rule in prune.RULES)


def test_zip_is_deterministic_and_world_readable(tmp_path: Path) -> None:
    root = tmp_path / "layer"
    touch(root / "python" / "pkg" / "__init__.py")
    touch(root / "python" / "pkg" / "lib.so", 500)
    (root / "python" / "pkg" / "lib.so").chmod(0o700)
    first = archive.write_zip(root, tmp_path / "a.zip")
    second = archive.write_zip(root, tmp_path / "b.zip")
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    assert first == second and first.files == 2 and first.unzipped == 510
    with zipfile.ZipFile(tmp_path / "a.zip") as z:
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in z.infolist()}
    assert modes == {"python/pkg/__init__.py": 0o644, "python/pkg/lib.so": 0o755}


def test_tar_gz_holds_the_model_at_top_level(tmp_path: Path) -> None:
    touch(tmp_path / "model" / "manifest.json")
    touch(tmp_path / "model" / "model.onnx", 300)
    sizes = archive.write_tar_gz(tmp_path / "model", tmp_path / "model.tar.gz")
    with tarfile.open(tmp_path / "model.tar.gz") as tar:
        assert sorted(tar.getnames()) == ["manifest.json", "model.onnx"]
    assert sizes.unzipped == 310


def test_elf_alignment_check_accepts_real_libraries_and_rejects_misaligned_ones(tmp_path: Path) -> None:
    so = Path(np._core._multiarray_umath.__file__)
    assert elf.is_elf(so)
    assert elf.load_segments_aligned(so)
    broken = tmp_path / "broken.so"
    data = bytearray(so.read_bytes())
    phoff = struct.unpack_from("<Q", data, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        at = phoff + i * phentsize
        if struct.unpack_from("<I", data, at)[0] == 1:  # PT_LOAD: shift its file offset by 8 bytes
            struct.pack_into("<Q", data, at + 8, struct.unpack_from("<Q", data, at + 8)[0] + 8)
            break
    broken.write_bytes(bytes(data))
    assert not elf.load_segments_aligned(broken)


def test_strip_keeps_the_original_when_the_result_would_not_load(tmp_path: Path) -> None:
    text = tmp_path / "not-elf.so"
    text.write_bytes(b"plain text, not a shared object")
    assert not elf.is_elf(text)
    copy = tmp_path / "copy.so"
    copy.write_bytes(Path(np._core._multiarray_umath.__file__).read_bytes())
    tool = deps_layer.strip_tool("x86_64")
    if tool is None:
        pytest.skip("no strip tool on this machine")
    saved = elf.strip(copy, tool)
    assert saved >= 0
    assert elf.load_segments_aligned(copy)


def test_bytecode_is_unchecked_hash_and_covers_every_module(tmp_path: Path) -> None:
    touch(tmp_path / "pkg" / "__init__.py", 0)
    (tmp_path / "pkg" / "mod.py").write_text("VALUE = 42\n")
    tag = sys.implementation.cache_tag
    assert len(bytecode.missing_bytecode(tmp_path, tag)) == 2
    assert bytecode.compile_tree(tmp_path, Path(sys.executable)) == 2
    assert bytecode.missing_bytecode(tmp_path, tag) == []
    pyc = Path(importlib.util.cache_from_source(str(tmp_path / "pkg" / "mod.py")))
    flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
    assert flags == 0b01  # hash-based, check_source off: never stats the .py to validate


def test_find_interpreter_explains_how_to_get_a_missing_python() -> None:
    assert (
        bytecode.interpreter_version(bytecode.find_interpreter(f"{sys.version_info[0]}.{sys.version_info[1]}"))
        == f"{sys.version_info[0]}.{sys.version_info[1]}"
    )
    with pytest.raises(SystemExit, match=r"pyenv install 2\.1"):
        bytecode.find_interpreter("2.1")


def test_runtime_requirements_are_pyprojects_dependencies() -> None:
    with paths.PYPROJECT.open("rb") as handle:
        declared = tomllib.load(handle)["project"]["dependencies"]
    assert deps_layer.runtime_requirements() == tuple(declared)
    assert not any(name.startswith(("torch", "rich", "moto")) for name in declared)


def test_lambda_targets_pick_manylinux_wheels_for_the_right_cpu() -> None:
    x86, arm = deps_layer.lambda_target("x86_64"), deps_layer.lambda_target("arm64")
    assert x86.python == arm.python == "3.12"
    assert "manylinux2014_x86_64" in x86.platforms and all(p.endswith("x86_64") for p in x86.platforms)
    assert "manylinux_2_28_aarch64" in arm.platforms and arm.elf_machine == "aarch64"
    assert x86.mounted_at == "/opt/python" and deps_layer.local_target().mounted_at is None
    with pytest.raises(SystemExit, match="unknown Lambda architecture"):
        deps_layer.lambda_target("ppc64le")


def test_paths_follow_the_layer_contract() -> None:
    assert paths.deps_layer("x86_64") == paths.LAYERS / "deps-x86_64"
    assert paths.layer_zip(paths.model_layer("m")) == paths.LAYERS / "model-m.zip"
    assert paths.SAGEMAKER_CONTEXT.parent == paths.sagemaker_model_data("m").parent == paths.BUILD / "sagemaker"
    heldout = set(paths.HELDOUT_TEXT.read_text().splitlines()) - {""}
    calibration = set(paths.CALIBRATION_TEXT.read_text().splitlines()) - {""}
    assert not {line for line in heldout & calibration if not line.startswith("#")}
