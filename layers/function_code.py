"""The inference function's code with bytecode compiled for Lambda's Python, so cold starts never compile.

Lambda mounts the function's code read-only at /var/task: Python cannot write `__pycache__` there, so
every module shipped without bytecode for the runtime's exact Python is compiled again on every cold
start (the runtime's ~40 modules: ~45 ms on this machine). `preheat build layers` stages the code the
function imports under build/code/inference/ and compiles it with a Python 3.12 (unchecked-hash, like
the deps layer). The bundle records a fingerprint of the sources it was built from; the CDK construct
deploys it only while that still matches the repository, so an edit after the build can never ship
stale code (it falls back to the sources, and synth says so).
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from layers import bytecode

CODE_MOUNT = "/var/task"
FINGERPRINT = ".preheat-sources"
# What the inference function ships: functions/, minus the SageMaker container and the baselines.
PACKAGES = ("functions",)
DROP = ("functions/sagemaker", "functions/baselines")


@dataclass(frozen=True)
class Bundle:
    directory: Path
    modules: int
    pycs: int
    fingerprint: str


def bundle_dir(root: Path) -> Path:
    return root / "build" / "code" / "inference"


def sources(root: Path) -> list[Path]:
    """The .py files the function ships, relative to root, in a stable order."""
    found = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root)
            if "__pycache__" in relative.parts or any(relative.is_relative_to(d) for d in DROP):
                continue
            found.append(relative)
    return found


def fingerprint(root: Path, files: list[Path]) -> str:
    digest = hashlib.sha256()
    for relative in files:
        digest.update(relative.as_posix().encode() + b"\0" + (root / relative).read_bytes() + b"\0")
    return digest.hexdigest()


def build(root: Path, python: Path, out: Path | None = None) -> Bundle:
    """Stage the function's sources under out (default build/code/inference) and compile them."""
    out = out or bundle_dir(root)
    files = sources(root)
    if out.exists():
        shutil.rmtree(out)
    for relative in files:
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / relative, target)
    pycs = bytecode.compile_tree(out, python, mounted_at=CODE_MOUNT)
    version = bytecode.interpreter_version(python)
    if version is None:
        raise SystemExit(f"{python} is not a working Python interpreter")
    tag = f"cpython-{version.replace('.', '')}"
    missing = bytecode.missing_bytecode(out, tag)
    if missing:
        raise SystemExit(f"no {tag} bytecode for {', '.join(str(m) for m in missing[:5])} under {out}")
    digest = fingerprint(root, files)
    (out / FINGERPRINT).write_text(digest + "\n")
    return Bundle(out, len(files), pycs, digest)


def current(root: Path) -> Path | None:
    """The compiled bundle if it was built from the sources as they are now; else None."""
    out = bundle_dir(root)
    try:
        recorded = (out / FINGERPRINT).read_text().strip()
    except OSError:
        return None
    return out if recorded == fingerprint(root, sources(root)) else None
