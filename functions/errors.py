"""The errors every package under functions/ shares, and the warmers and infra config reuse.

`PreheatError` carries a machine-readable `code` and a message that names what is wrong and how to fix
it; it knows nothing about HTTP (functions.inference.protocol maps classes to status codes in one place).
This module imports nothing, so the warmer's small Lambda asset can carry it.
"""

from __future__ import annotations


class PreheatError(Exception):
    """Base class: every error preheat raises on purpose."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ConfigError(PreheatError, ValueError):
    """A setting (environment variable, manifest field, cdk.json context key) is missing or malformed.
    Fails init or synth; the message names the key."""

    code = "invalid_config"
