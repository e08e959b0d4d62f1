"""Bytecode compiled for the Python that will import it.

Lambda mounts layers read-only, so Python cannot write __pycache__ there: every module shipped
without a matching .pyc is compiled from source on every cold start. The .pyc files must come from
the target's Python (3.12 for python3.12 Lambdas: the bytecode format changes every minor version),
and are written as unchecked-hash pycs, so the import system never stats the source to validate them.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

ENV_VAR = "PREHEAT_PYTHON312"


def interpreter_version(python: Path) -> str | None:
    try:
        out = subprocess.run(
            [str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def find_interpreter(version: str) -> Path:
    """A python<version> executable: $PREHEAT_PYTHON312 (for 3.12), PATH, then pyenv's versions."""
    candidates: list[str] = []
    override = os.environ.get(ENV_VAR) if version == "3.12" else None
    if override:
        if interpreter_version(Path(override)) != version:
            raise SystemExit(f"{ENV_VAR}={override} is not a working Python {version} interpreter")
        return Path(override)
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == version:
        candidates.append(sys.executable)
    found = shutil.which(f"python{version}")
    if found:
        candidates.append(found)
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    for root in dict.fromkeys((pyenv_root, "/root/.pyenv", "/opt/pyenv")):
        candidates.extend(sorted(glob.glob(f"{root}/versions/{version}*/bin/python{version}"), reverse=True))
    for candidate in candidates:
        if interpreter_version(Path(candidate)) == version:
            return Path(candidate)
    raise SystemExit(
        f"no Python {version} interpreter found to compile bytecode for Lambda's python{version} runtime "
        f"(bytecode is specific to the minor version). Install one (`pyenv install {version}`, "
        f"`apt-get install python{version}` or `uv python install {version}`) and put it on PATH, "
        f"or set {ENV_VAR}=/path/to/python{version}"
    )


def compile_tree(root: Path, python: Path, *, mounted_at: str | None = None) -> int:
    """Compile every .py under root with `python`; return how many .pyc files exist afterwards.

    mounted_at: where root will be at run time (e.g. /opt/python), so tracebacks name real paths."""
    command = [str(python), "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash"]
    if mounted_at:
        command += ["-s", str(root), "-p", mounted_at]
    command.append(str(root))
    result = subprocess.run(command, capture_output=True, text=True)
    # compileall exits non-zero when any file fails to compile. Some packages ship deliberately
    # invalid .py files (templates, Python 2 examples); those are never imported, so only say so.
    if result.returncode != 0 and "SyntaxError" not in result.stdout + result.stderr:
        raise SystemExit(f"compiling bytecode under {root} with {python} failed:\n{result.stderr[-2000:]}")
    return sum(1 for _ in root.rglob("*.pyc"))


def missing_bytecode(root: Path, cache_tag: str) -> list[Path]:
    """.py files under root without a __pycache__/<name>.<cache_tag>.pyc beside them."""
    missing = []
    for source in root.rglob("*.py"):
        pyc = source.parent / "__pycache__" / f"{source.stem}.{cache_tag}.pyc"
        if not pyc.is_file():
            missing.append(source)
    return missing
