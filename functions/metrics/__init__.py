"""Cold-start classification and per-invocation telemetry (Powertools EMF metrics and JSON logs).

tracker = StartTracker()          # one per instance, at init
start = tracker.enter(warmup=...) # first thing at handler entry
telemetry.record(start, ...)      # in a `finally`, so failed calls are counted too
"""

from functions.metrics.coldstart import START_KINDS, Start, StartTracker
from functions.metrics.telemetry import Telemetry

__all__ = ["START_KINDS", "Start", "StartTracker", "Telemetry"]
