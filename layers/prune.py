"""Slim a pip --target tree: drop what the inference runtime never imports.

Every rule says why it is safe. The layer proof test (tests/integration/test_layers_proof.py) serves a
real request from a pruned tree with nothing else on sys.path, so a rule that removes too much fails it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Rule:
    pattern: str  # a glob relative to the tree's root (Path.glob syntax)
    reason: str


RULES: tuple[Rule, ...] = (
    Rule("bin", "console scripts: Lambda never runs them and /opt/python/bin is not on PATH"),
    Rule("*/__pycache__", "bytecode from the build machine's Python; recompiled for the target"),
    Rule("**/__pycache__", "bytecode from the build machine's Python; recompiled for the target"),
    Rule("onnxruntime/tools", "model conversion and profiling tools, build time only"),
    Rule("onnxruntime/transformers", "offline transformer fusions (used by `preheat build`, never served)"),
    Rule("onnxruntime/quantization", "offline quantization (used by `preheat build`, never served)"),
    Rule("onnxruntime/datasets", "sample models for ORT's own examples"),
    Rule("onnxruntime/backend", "the ONNX backend-test API; imports onnx, which the layer does not ship"),
    Rule(
        "onnxruntime/capi/libonnxruntime.so*",
        "ONNX Runtime's C API library for native callers: the Python module links the runtime statically",
    ),
    Rule("google/protobuf", "required by onnxruntime's wheel for its tools; the Python API never imports it"),
    Rule("protobuf-*.dist-info", "goes with protobuf"),
    Rule("sympy", "required by older onnxruntime wheels for the transformers tools only; ~60 MB"),
    Rule("sympy-*.dist-info", "goes with sympy"),
    Rule("mpmath", "sympy's dependency"),
    Rule("mpmath-*.dist-info", "goes with mpmath"),
    Rule("flatbuffers", "onnxruntime uses it only to convert models to the ORT format"),
    Rule("flatbuffers-*.dist-info", "goes with flatbuffers"),
    Rule("coloredlogs", "onnxruntime's tools' logging only"),
    Rule("humanfriendly", "coloredlogs' dependency"),
    # tokenizers declares huggingface_hub for Tokenizer.from_pretrained (downloads); the runtime
    # reads tokenizer.json with Tokenizer.from_file, so the download stack never loads.
    *(
        Rule(pattern, "huggingface_hub's download stack, used only by Tokenizer.from_pretrained")
        for name in (
            "huggingface_hub",
            "hf_xet",
            "fsspec",
            "filelock",
            "tqdm",
            "click",
            "httpx2",
            "httpcore2",
            "h11",
            "truststore",
            "yaml",
            "_yaml",
            "pyyaml",
        )
        for pattern in (name, f"{name}-*.dist-info")
    ),
    Rule("numpy/f2py", "Fortran wrapper generator, imported only on demand"),
    Rule("numpy/_pyinstaller", "PyInstaller hooks"),
    Rule("numpy/_core/include", "C headers, read only by compilers"),
    Rule("numpy/_core/lib/pkgconfig", "build metadata"),
    Rule("**/tests", "test suites of the packages themselves"),
    Rule("**/*.pyi", "type stubs, read by type checkers only"),
    Rule("**/*.h", "C headers, read only by compilers"),
    Rule("**/*.pxd", "Cython declarations"),
    Rule("**/*.pyx", "Cython sources"),
)


@dataclass(frozen=True)
class Pruned:
    rule: Rule
    paths: int
    bytes: int


def tree_bytes(path: Path) -> int:
    if path.is_file() or path.is_symlink():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def prune(root: Path, rules: Iterable[Rule] = RULES) -> tuple[Pruned, ...]:
    """Delete every match of every rule under root; return what each rule removed."""
    report = []
    for rule in rules:
        count = size = 0
        # Sorted and deepest first is not needed: a removed parent makes its children vanish, and
        # exists() skips them.
        for match in sorted(root.glob(rule.pattern)):
            if not (match.exists() or match.is_symlink()):
                continue
            size += tree_bytes(match)
            count += 1
            if match.is_dir() and not match.is_symlink():
                shutil.rmtree(match)
            else:
                match.unlink()
        if count:
            report.append(Pruned(rule, count, size))
    return tuple(report)
