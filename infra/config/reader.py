"""A typed reader of one context object: each value checked against its type and bounds, and every
error naming the key path (`preheat.lambda.memoryMb`) and what would be valid."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar, cast

from functions.errors import ConfigError

T = TypeVar("T")


class Node:
    """A context object with the key path that leads to it, so errors can name the key."""

    def __init__(self, data: Mapping[str, Any], path: str) -> None:
        self.data = data
        self.path = path
        self._read: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}"

    def _get(self, name: str) -> Any:
        self._read.add(name)
        return self.data.get(name)

    def node(self, name: str) -> Node:
        value = self._get(name)
        if value is None:
            return Node({}, self.key(name))
        if isinstance(value, str):
            value = parse_json(value, self.key(name))
        if not isinstance(value, Mapping):
            raise ConfigError(f"{self.key(name)} must be an object, got {value!r}")
        return Node(value, self.key(name))

    def int_(self, name: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
        value = self.optional_int(name, minimum=minimum, maximum=maximum)
        return default if value is None else value

    def optional_int(self, name: str, *, minimum: int, maximum: int | None = None) -> int | None:
        raw = self._get(name)
        if raw is None:
            return None
        value = raw
        if isinstance(raw, str) and re.fullmatch(r"-?\d+", raw.strip()):
            value = int(raw)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{self.key(name)} must be an integer, got {raw!r}")
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
            raise ConfigError(f"{self.key(name)} must be {bounds}, got {value}")
        return value

    def float_(self, name: str, default: float, *, minimum: float, maximum: float) -> float:
        raw = self._get(name)
        if raw is None:
            return default
        try:
            value = float(raw) if not isinstance(raw, bool) else None
        except (TypeError, ValueError):
            value = None
        if value is None:
            raise ConfigError(f"{self.key(name)} must be a number, got {raw!r}")
        if not minimum <= value <= maximum:
            raise ConfigError(f"{self.key(name)} must be between {minimum} and {maximum}, got {value}")
        return value

    def bool_(self, name: str, default: bool) -> bool:
        raw = self._get(name)
        if raw is None:
            return default
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in {"true", "false"}:
            return raw.strip().lower() == "true"
        raise ConfigError(f"{self.key(name)} must be true or false, got {raw!r}")

    def str_(self, name: str, default: str, *, pattern: re.Pattern[str] | None = None, hint: str = "") -> str:
        value = self.optional_str(name, pattern=pattern, hint=hint)
        return default if value is None else value

    def optional_str(
        self, name: str, *, pattern: re.Pattern[str] | None = None, hint: str = ""
    ) -> str | None:
        raw = self._get(name)
        if raw is None:
            return None
        if not isinstance(raw, str):
            raise ConfigError(f"{self.key(name)} must be a string, got {raw!r}")
        if pattern is not None and not pattern.fullmatch(raw):
            raise ConfigError(f"{self.key(name)} is not valid{': ' + hint if hint else ''}; got {raw!r}")
        return raw

    def choice(self, name: str, default: T, choices: tuple[T, ...]) -> T:
        raw = self._get(name)
        if raw is None:
            return default
        if raw not in choices:
            raise ConfigError(f"{self.key(name)} must be one of {', '.join(map(str, choices))}; got {raw!r}")
        return cast(T, raw)

    def path_(self, name: str, default: Path, root: Path) -> Path:
        raw = self.optional_str(name)
        if raw is None:
            return default
        path = Path(raw)
        return path if path.is_absolute() else root / path

    def list_(self, name: str) -> list[Any] | None:
        raw = self._get(name)
        if raw is None:
            return None
        if isinstance(raw, str):
            raw = parse_json(raw, self.key(name))
        if not isinstance(raw, list):
            raise ConfigError(f"{self.key(name)} must be a list, got {raw!r}")
        return raw

    def done(self) -> None:
        """Unknown keys are typos more often than not: refuse them, naming the valid ones."""
        unknown = sorted(set(self.data) - self._read)
        if unknown:
            valid = ", ".join(sorted(self._read))
            raise ConfigError(f"{self.key(unknown[0])} is not a known setting (known here: {valid})")


def parse_json(text: str, key: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"context key '{key}' is not valid JSON: {exc}") from None
