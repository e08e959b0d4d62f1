"""The function's code bundle: every shipped module has bytecode, and a stale bundle is never current."""

from __future__ import annotations

import sys
from pathlib import Path

from layers import function_code


def _repo(root: Path) -> Path:
    for relative, text in {
        "functions/__init__.py": "",
        "functions/inference/__init__.py": "",
        "functions/inference/handler.py": "def handler(event, context):\n    return 1\n",
        "functions/sagemaker/serve.py": "SERVE = 1\n",
        "functions/baselines/floor.py": "FLOOR = 1\n",
        "functions/sagemaker/Dockerfile": "FROM scratch\n",
    }.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


def test_the_bundle_holds_the_function_modules_with_bytecode(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    bundle = function_code.build(root, Path(sys.executable))
    shipped = sorted(p.relative_to(bundle.directory).as_posix() for p in bundle.directory.rglob("*.py"))
    assert shipped == [
        "functions/__init__.py",
        "functions/inference/__init__.py",
        "functions/inference/handler.py",
    ]
    tag = sys.implementation.cache_tag
    assert (bundle.directory / "functions/inference/__pycache__" / f"handler.{tag}.pyc").is_file()
    assert bundle.modules == 3 and bundle.pycs == 3
    assert function_code.current(root) == bundle.directory


def test_an_edit_after_the_build_makes_the_bundle_stale(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    function_code.build(root, Path(sys.executable))
    (root / "functions/inference/handler.py").write_text("def handler(event, context):\n    return 2\n")
    assert function_code.current(root) is None
    (root / "functions/inference/new.py").write_text("X = 1\n")
    function_code.build(root, Path(sys.executable))
    assert function_code.current(root) is not None
    (root / "functions/inference/new.py").unlink()
    assert function_code.current(root) is None  # a deleted module counts too


def test_no_bundle_is_not_current(tmp_path: Path) -> None:
    assert function_code.current(_repo(tmp_path)) is None
