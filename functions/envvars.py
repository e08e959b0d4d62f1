"""Typed environment variables for the frozen settings objects: a bad value fails init naming the
variable and what would be valid. Used by the inference runtime, the cache, the SageMaker container,
the warmer and the controller; imports nothing but functions.errors (the warmer's asset carries both).
"""

from __future__ import annotations

from collections.abc import Mapping

from functions.errors import ConfigError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _raw(env: Mapping[str, str], key: str) -> str | None:
    raw = env.get(key)
    return None if raw is None or raw.strip() == "" else raw.strip()


def integer(env: Mapping[str, str], key: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
    raw = _raw(env, key)
    if raw is None:
        return default
    bounds = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(
            f"{key} must be an integer {bounds}, got {raw!r}: fix it or unset it (default {default})"
        ) from None
    if value < minimum or (maximum is not None and value > maximum):
        raise ConfigError(f"{key} must be {bounds}, got {value}: fix it or unset it (default {default})")
    return value


def number(env: Mapping[str, str], key: str, default: float, *, minimum: float, maximum: float) -> float:
    raw = _raw(env, key)
    if raw is None:
        return default
    bounds = f"between {minimum:g} and {maximum:g}"
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(
            f"{key} must be a number {bounds}, got {raw!r}: fix it or unset it (default {default:g})"
        ) from None
    if not minimum <= value <= maximum:  # also refuses nan
        raise ConfigError(f"{key} must be {bounds}, got {value:g}: fix it or unset it (default {default:g})")
    return value


def boolean(env: Mapping[str, str], key: str, default: bool) -> bool:
    raw = _raw(env, key)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ConfigError(f"{key} must be true or false, got {raw!r}: fix it or unset it (default {default})")


def required(env: Mapping[str, str], key: str, what: str) -> str:
    value = _raw(env, key)
    if value is None:
        raise ConfigError(f"{key} is not set: set it to {what}")
    return value


def optional(env: Mapping[str, str], key: str) -> str | None:
    return _raw(env, key)
