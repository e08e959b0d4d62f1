"""Structured JSON logs in Powertools Logger's layout (level, location, message, timestamp, service,
then the fields), encoded with msgspec: the stdlib formatter for the serving core's `logging` calls,
and the timestamp and trace id the per-invocation record (telemetry.py) uses."""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from typing import Any

import msgspec

_encoder = msgspec.json.Encoder()


class Clock:
    """Timestamps in Powertools' format, 2026-11-23 13:08:15,235+0000 (UTC); the formatted second is
    reused, since a caller logs many times a second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def timestamp(self, seconds: float) -> str:
        second = int(seconds)
        if second != self._second:
            self._second, self._prefix = second, time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second))
        return f"{self._prefix},{int(seconds % 1 * 1000):03d}+0000"


def trace_id() -> str | None:
    """The X-Ray trace id Lambda sets per invocation, as Powertools Logger reports it."""
    trace = os.environ.get("_X_AMZN_TRACE_ID")
    return trace.split(";", 1)[0].removeprefix("Root=") if trace else None


class JsonFormatter(logging.Formatter):
    """For stdlib loggers (the serving core logs through `logging`): the same JSON layout."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service
        self._clock = Clock()

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}
        out: dict[str, Any] = {
            "level": record.levelname,
            "location": f"{record.funcName}:{record.lineno}",
            "message": record.getMessage(),
            "timestamp": self._clock.timestamp(record.created),
            "service": self.service,
            **fields,
        }
        if record.exc_info and record.exc_info[0] is not None:
            out["exception_name"] = record.exc_info[0].__name__
            out["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return _encoder.encode(out).decode()


_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}


def configure_stdlib(logger_name: str, service: str, level: str | None = None) -> logging.Logger:
    """Route a stdlib logger's records to stdout as JSON (once per process)."""
    logger = logging.getLogger(logger_name)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    logger.handlers = [handler]
    logger.setLevel(
        level or os.environ.get("POWERTOOLS_LOG_LEVEL") or os.environ.get("AWS_LAMBDA_LOG_LEVEL") or "INFO"
    )
    logger.propagate = False
    return logger
