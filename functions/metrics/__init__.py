"""Cold-start classification and per-invocation telemetry (Powertools EMF metrics and JSON logs).

tracker = StartTracker()          # one per instance, at init
start = tracker.enter(warmup=...) # first thing at handler entry
telemetry.record(start, ...)      # in a `finally`, so failed calls are counted too
emit(namespace, service, {...})   # one EMF line (the warmer's and controller's per run)

The names below are the package's public API. They are loaded on first use: the warmers' asset
carries only emf.py of this package, and importing it must not import the rest (msgspec).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from functions.metrics.coldstart import START_KINDS, Start, StartTracker
    from functions.metrics.emf import COUNT, MILLISECONDS, EmfWriter, emit
    from functions.metrics.telemetry import Telemetry

_HOMES = {
    "START_KINDS": "coldstart",
    "Start": "coldstart",
    "StartTracker": "coldstart",
    "COUNT": "emf",
    "MILLISECONDS": "emf",
    "EmfWriter": "emf",
    "emit": "emf",
    "Telemetry": "telemetry",
}

__all__ = ["COUNT", "MILLISECONDS", "START_KINDS", "EmfWriter", "Start", "StartTracker", "Telemetry", "emit"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{home}"), name)
