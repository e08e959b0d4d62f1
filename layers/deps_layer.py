"""The deps layer: pyproject's `dependencies` installed for Lambda's Python and CPU, slimmed, with
bytecode compiled for that Python. No Docker: pip picks the target's wheels with --platform.

Layout: <layer>/python/... (Lambda mounts it at /opt/python, which is on sys.path)."""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from layers import bytecode, elf, paths, prune
from layers.archive import Sizes, write_zip

LAMBDA_PYTHON = "3.12"
# python3.12 Lambdas run on Amazon Linux 2023 (glibc 2.34): every manylinux wheel up to 2_34 loads.
_MANYLINUX = ("manylinux_2_34", "manylinux_2_28", "manylinux_2_17", "manylinux2014")
STAMP = ".preheat-layer.json"


@dataclass(frozen=True)
class LayerPlatform:
    """The platform a dependency layer is built for: a Lambda architecture, or this machine."""
    name: str  # x86_64 | arm64 | local
    python: str  # "3.12"
    platforms: tuple[str, ...]  # pip --platform tags; empty: the running interpreter's own
    elf_machine: str  # x86_64 | aarch64, to pick a strip that understands the shared objects

    @property
    def cache_tag(self) -> str:
        return "cpython-" + self.python.replace(".", "")

    @property
    def mounted_at(self) -> str | None:
        return paths.DEPS_MOUNT if self.name != "local" else None


def lambda_target(arch: str) -> LayerPlatform:
    if arch not in paths.LAMBDA_ARCHITECTURES:
        raise SystemExit(
            f"unknown Lambda architecture {arch!r}: use one of {', '.join(paths.LAMBDA_ARCHITECTURES)}"
        )
    machine = "x86_64" if arch == "x86_64" else "aarch64"
    return LayerPlatform(arch, LAMBDA_PYTHON, tuple(f"{tag}_{machine}" for tag in _MANYLINUX), machine)


def local_target() -> LayerPlatform:
    machine = platform.machine()
    return LayerPlatform(
        "local",
        f"{sys.version_info[0]}.{sys.version_info[1]}",
        (),
        "aarch64" if machine == "arm64" else machine,
    )


def runtime_requirements(pyproject: Path = paths.PYPROJECT) -> tuple[str, ...]:
    """What the inference runtime imports: pyproject's [project] dependencies, nothing else."""
    with pyproject.open("rb") as handle:
        project = tomllib.load(handle).get("project", {})
    deps = project.get("dependencies")
    if not deps:
        raise SystemExit(f"{pyproject} has no [project] dependencies: the deps layer is built from them")
    return tuple(str(d) for d in deps)


@dataclass(frozen=True)
class DepsLayer:
    target: LayerPlatform
    layer_dir: Path
    zip_path: Path
    sizes: Sizes
    pruned: tuple[prune.Pruned, ...]
    stripped_bytes: int
    strip_tool: str | None
    pyc_files: int
    requirements: tuple[str, ...]
    reused: bool = False


Progress = Callable[[str], None]


def build(
    target: LayerPlatform,
    layer_dir: Path,
    *,
    requirements: tuple[str, ...] | None = None,
    reuse: bool = True,
    progress: Progress = lambda _: None,
) -> DepsLayer:
    """Build (or reuse, when its inputs are unchanged) the deps layer for target in layer_dir."""
    requirements = requirements if requirements is not None else runtime_requirements()
    compiler = bytecode.find_interpreter(target.python) if target.name != "local" else Path(sys.executable)
    inputs = fingerprint(target, requirements)
    zip_path = paths.layer_zip(layer_dir)
    stamp = layer_dir / STAMP
    if reuse and stamp.is_file() and zip_path.is_file():
        recorded = json.loads(stamp.read_text())
        if recorded.get("fingerprint") == inputs:
            progress(f"deps-{target.name}: inputs unchanged, reusing {layer_dir}")
            return _from_stamp(target, layer_dir, zip_path, recorded, requirements)

    staging = layer_dir.with_name(layer_dir.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    site = staging / "python"
    site.mkdir(parents=True)
    progress(f"deps-{target.name}: pip install {len(requirements)} requirements for Python {target.python}")
    pip_install(requirements, site, target)
    progress(f"deps-{target.name}: pruning what the runtime never imports")
    pruned = prune.prune(site)
    tool = strip_tool(target.elf_machine)
    stripped = strip_shared_objects(site, tool) if tool else 0
    progress(f"deps-{target.name}: compiling bytecode with {compiler}")
    pycs = bytecode.compile_tree(site, compiler, mounted_at=target.mounted_at)
    _normalise_modes(staging)
    if layer_dir.exists():
        shutil.rmtree(layer_dir)
    staging.rename(layer_dir)
    progress(f"deps-{target.name}: zipping for the size report")
    sizes = write_zip(layer_dir, zip_path)
    layer = DepsLayer(target, layer_dir, zip_path, sizes, pruned, stripped, tool, pycs, requirements)
    stamp.write_text(json.dumps(_stamp(layer, inputs), indent=2))
    return layer


def pip_install(requirements: tuple[str, ...], site: Path, target: LayerPlatform) -> None:
    command = [
        sys.executable, "-m", "pip", "install",
        "--target", str(site),
        "--only-binary=:all:",
        "--no-compile",  # bytecode comes from the target's own Python, later
        "--disable-pip-version-check",
        "--no-warn-script-location",
        "--quiet",
    ]  # fmt: skip
    if target.platforms:
        for tag in target.platforms:
            command += ["--platform", tag]
        command += ["--python-version", target.python, "--implementation", "cp"]
    command += list(requirements)
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(
            f"pip could not install the runtime dependencies for {target.name} (Python {target.python}):\n"
            f"{result.stderr[-3000:]}"
        )


def strip_tool(elf_machine: str) -> str | None:
    """A strip that understands the target's ELF files; None when there is none (then: not stripped)."""
    host = platform.machine()
    names = [f"{elf_machine}-linux-gnu-strip", "llvm-strip"]
    if host == elf_machine:
        names.insert(0, "strip")
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


def strip_shared_objects(root: Path, tool: str) -> int:
    """Drop symbol tables and debug sections from every shared object it is safe to; return bytes saved."""
    return sum(elf.strip(so, tool) for so in sorted(root.rglob("*.so*")) if so.is_file() and elf.is_elf(so))


def _normalise_modes(root: Path) -> None:
    root.chmod(0o755)
    for path in root.rglob("*"):
        if path.is_symlink():
            continue
        if path.is_dir():
            path.chmod(0o755)
        else:
            path.chmod(0o755 if path.stat().st_mode & 0o111 else 0o644)


def is_current(layer_dir: Path, target: LayerPlatform, requirements: tuple[str, ...] | None = None) -> bool:
    """Whether the layer in layer_dir was built from today's inputs (pyproject's dependencies, the
    pruning rules, this builder): a layer built before a dependency was added lacks it, and a function
    run from it fails to import (Runtime.ImportModuleError) where a fresh clone would not."""
    stamp = layer_dir / STAMP
    if not stamp.is_file():
        return False
    try:
        recorded = json.loads(stamp.read_text()).get("fingerprint")
    except (OSError, ValueError, AttributeError):
        return False
    requirements = requirements if requirements is not None else runtime_requirements()
    return bool(recorded == fingerprint(target, requirements))


def fingerprint(target: LayerPlatform, requirements: tuple[str, ...]) -> str:
    """What a deps layer is built from: the platform, the requirements, the pruning rules, this builder."""
    recipe = {
        "target": [target.name, target.python, list(target.platforms)],
        "requirements": list(requirements),
        "rules": [rule.pattern for rule in prune.RULES],
        "builder": [
            hashlib.sha256(Path(module.__file__ or "").read_bytes()).hexdigest()
            for module in (sys.modules[__name__], bytecode, elf, prune)
        ],
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def _stamp(layer: DepsLayer, fingerprint: str) -> dict[str, object]:
    return {
        "fingerprint": fingerprint,
        "files": layer.sizes.files,
        "unzipped": layer.sizes.unzipped,
        "zipped": layer.sizes.zipped,
        "pruned": [[p.rule.pattern, p.paths, p.bytes] for p in layer.pruned],
        "stripped_bytes": layer.stripped_bytes,
        "strip_tool": layer.strip_tool,
        "pyc_files": layer.pyc_files,
    }


def _from_stamp(
    target: LayerPlatform,
    layer_dir: Path,
    zip_path: Path,
    recorded: dict[str, object],
    requirements: tuple[str, ...],
) -> DepsLayer:
    by_pattern = {rule.pattern: rule for rule in prune.RULES}
    pruned_rows = recorded.get("pruned")
    pruned = tuple(
        prune.Pruned(by_pattern[str(row[0])], int(row[1]), int(row[2]))
        for row in (pruned_rows if isinstance(pruned_rows, list) else [])
        if str(row[0]) in by_pattern
    )
    sizes = Sizes(
        files=int(str(recorded["files"])),
        unzipped=int(str(recorded["unzipped"])),
        zipped=zip_path.stat().st_size,
    )
    tool = recorded.get("strip_tool")
    return DepsLayer(
        target,
        layer_dir,
        zip_path,
        sizes,
        pruned,
        int(str(recorded.get("stripped_bytes", 0))),
        str(tool) if tool else None,
        int(str(recorded.get("pyc_files", 0))),
        requirements,
        reused=True,
    )
