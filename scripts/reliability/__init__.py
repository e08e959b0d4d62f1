"""Reliability drivers: hostile input, load, and faults, against the app (uvicorn) and the Lambda
path (the local twin's HTTPS Function URLs). `preheat bench reliability` composes them with the real
model; tests/reliability/ runs the same drivers with tiny models and asserts on their reports.

Every driver is bounded: in examples or requests, in seconds, and every request has a timeout.
"""
