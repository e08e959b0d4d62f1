"""The tree's structure, as the brief fixes it: imports flow one way (scripts, infra -> warmers,
layers -> functions), the cache does not depend on the inference runtime, nothing reaches into
another module's underscored names, and the packages' public APIs resolve without loading them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOP = ("functions", "layers", "warmers", "infra", "scripts", "tests")
# What each top-level folder may import of the others (its own folder always).
MAY_IMPORT = {
    "functions": set(),
    "layers": {"functions"},
    "warmers": {"functions"},
    "infra": {"functions", "layers", "warmers"},
    "scripts": {"functions", "layers", "warmers", "infra"},
}


def imports(path: Path) -> list[tuple[str, tuple[str, ...], int]]:
    """(module, names, line) for every import in a file, at any depth (lazy imports count too)."""
    out: list[tuple[str, tuple[str, ...], int]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(alias.name, (), node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, tuple(alias.name for alias in node.names), node.lineno))
    return out


def sources(folder: str) -> list[Path]:
    return sorted(p for p in (ROOT / folder).rglob("*.py") if "node_modules" not in p.parts)


@pytest.mark.parametrize("folder", sorted(MAY_IMPORT))
def test_imports_flow_one_way(folder: str) -> None:
    allowed = MAY_IMPORT[folder] | {folder}
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sources(folder)
        for module, _, line in imports(path)
        if module.split(".")[0] in TOP and module.split(".")[0] not in allowed
    ]
    assert wrong == []


def test_the_cache_imports_nothing_of_the_inference_runtime() -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sources("functions/cache")
        for module, _, line in imports(path)
        if module == "functions.inference" or module.startswith("functions.inference.")
    ]
    assert wrong == []


def test_nothing_imports_another_modules_underscored_names() -> None:
    wrong = []
    for folder in TOP:
        for path in sources(folder):
            for module, names, line in imports(path):
                if module.split(".")[0] not in TOP:
                    continue
                private = [n for n in names if n.startswith("_") and not n.startswith("__")]
                if private or any(part.startswith("_") and part != "__init__" for part in module.split(".")):
                    wrong.append(f"{path.relative_to(ROOT)}:{line} from {module} import {', '.join(names)}")
    assert wrong == []


def test_the_inference_packages_public_api_resolves_and_loads_nothing_until_used() -> None:
    code = (
        "import sys, functions.inference as api\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('functions.inference.'))\n"
        "assert loaded == [], loaded\n"
        "assert sorted(api.__all__) == sorted(api._EXPORTS)\n"
        "assert all(getattr(api, name) is not None for name in api.__all__)\n"
        "from functions.inference.runtime import open_task\n"
        "assert api.open_task is open_task\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_the_cache_packages_public_api_resolves() -> None:
    import functions.cache as api

    assert all(getattr(api, name) is not None for name in api.__all__)


@pytest.mark.parametrize("package", ["functions.inference", "functions.metrics", "warmers", "layers"])
def test_each_packages_public_api_resolves_without_loading_its_modules_first(package: str) -> None:
    code = (
        f"import importlib, sys\n"
        f"api = importlib.import_module({package!r})\n"
        f"loaded = sorted(m for m in sys.modules if m.startswith({package + '.'!r}))\n"
        f"assert loaded == [], loaded\n"
        f"missing = [n for n in api.__all__ if getattr(api, n, None) is None]\n"
        f"assert missing == [], missing\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
