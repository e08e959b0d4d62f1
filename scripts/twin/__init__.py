"""The local twin: the Lambda stack on one machine, with real cold starts, warm instances,
provisioned concurrency, Function URLs over HTTPS, schedules, and moto for every other AWS API.

`preheat up` / `preheat down` run it in the background (state in .preheat/twin.json); tests and
benchmarks start their own with `state.start(config)`.
"""
