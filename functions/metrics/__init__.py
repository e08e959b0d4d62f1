"""Cold-start classification and per-invocation telemetry (Powertools EMF metrics and JSON logs).

tracker = StartTracker()          # one per instance, at init
start = tracker.enter(warmup=...) # first thing at handler entry
telemetry.record(start, ...)      # in a `finally`, so failed calls are counted too
emit(namespace, service, {...})   # one EMF line (the warmer's and controller's per run)

The names below are the package's public API. They are loaded on first use: the warmers' asset
carries only emf.py of this package, and importing it must not import the rest (msgspec).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from functions.lazy import exports

if TYPE_CHECKING:
    from functions.metrics.coldstart import START_KINDS, Start, StartTracker
    from functions.metrics.emf import COUNT, MILLISECONDS, EmfWriter, emit
    from functions.metrics.telemetry import Telemetry

_HOMES = {
    "START_KINDS": ("functions.metrics.coldstart", "START_KINDS"),
    "Start": ("functions.metrics.coldstart", "Start"),
    "StartTracker": ("functions.metrics.coldstart", "StartTracker"),
    "COUNT": ("functions.metrics.emf", "COUNT"),
    "MILLISECONDS": ("functions.metrics.emf", "MILLISECONDS"),
    "EmfWriter": ("functions.metrics.emf", "EmfWriter"),
    "emit": ("functions.metrics.emf", "emit"),
    "Telemetry": ("functions.metrics.telemetry", "Telemetry"),
}

__all__ = ["COUNT", "MILLISECONDS", "START_KINDS", "EmfWriter", "Start", "StartTracker", "Telemetry", "emit"]

__getattr__ = exports(__name__, _HOMES)
