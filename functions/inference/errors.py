"""Errors of the serving core.

They carry a machine-readable `code` and a message that names what is wrong and how to fix it. They
know nothing about HTTP: `protocol.STATUS` maps each class to a status code, in one place.
"""

from __future__ import annotations

# The shared base and the config error, re-exported: the serving core's errors in one import.
from functions.errors import ConfigError as ConfigError
from functions.errors import PreheatError as PreheatError


class ModelLoadError(PreheatError):
    """The model directory is missing, incomplete or corrupted. Fails init."""

    code = "model_load_failed"


class InvalidRequest(PreheatError):
    """The request is well-formed HTTP but its payload is wrong (schema, values, limits)."""

    code = "invalid_request"


class InvalidJSON(InvalidRequest):
    code = "invalid_json"


class InvalidTensor(InvalidRequest):
    code = "invalid_tensor"


class InputTooLong(InvalidRequest):
    code = "input_too_long"


class TooManyInputs(InvalidRequest):
    code = "too_many_inputs"


class PayloadTooLarge(PreheatError):
    code = "payload_too_large"


class ResponseTooLarge(PreheatError):
    code = "response_too_large"


class UnsupportedMediaType(PreheatError):
    code = "unsupported_media_type"


class NotFound(PreheatError):
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class MethodNotAllowed(PreheatError):
    code = "method_not_allowed"

    def __init__(self, message: str, *, allowed: tuple[str, ...]) -> None:
        super().__init__(message)
        self.allowed = allowed


class NotReady(PreheatError):
    code = "not_ready"
