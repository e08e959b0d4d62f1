"""Trace-driven simulator for warm-keeping policies (`preheat simulate`)."""
