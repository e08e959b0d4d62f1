"""Typed environment variables for the settings objects: a bad value fails init naming the variable."""

from __future__ import annotations

from collections.abc import Mapping

from functions.inference.errors import ConfigError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def integer(
    env: Mapping[str, str], key: str, default: int, *, minimum: int, maximum: int | None = None
) -> int:
    raw = env.get(key)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(
            f"{key} must be an integer, got {raw!r}: fix it or unset it (default {default})"
        ) from None
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise ConfigError(f"{key} must be {bounds}, got {value}: fix it or unset it (default {default})")
    return value


def boolean(env: Mapping[str, str], key: str, default: bool) -> bool:
    raw = env.get(key)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{key} must be true or false, got {raw!r}: fix it or unset it (default {default})")
