"""A package's public API, loaded on first use: `__getattr__ = exports(__name__, {...})` in its
`__init__`. Importing the package then costs nothing (every package import is paid on the cold path),
and a name that is not public raises AttributeError, which is also how `from package import submodule`
falls back to importing the submodule. Imports nothing beyond importlib (the warmers' asset carries it)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def exports(package: str, names: Mapping[str, tuple[str, str]]) -> Callable[[str], Any]:
    """`names`: public name -> (module, attribute in it); the module is absolute."""

    def __getattr__(name: str) -> Any:
        try:
            module, attribute = names[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        return getattr(import_module(module), attribute)

    return __getattr__
