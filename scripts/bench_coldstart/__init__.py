"""`preheat bench coldstart`: cold starts and warm latency for three functions, in one run.

- default: preheat's handler (functions.inference.handler) with the slim model (--model, default preheat.model);
- naive:   FastAPI + Mangum + Powertools Logger/Metrics/Tracer created eagerly, the fp32 model,
           default ONNX Runtime session options (functions/baselines/naive.py);
- floor:   awslambdaric + the slim model + a bare handler (functions/baselines/floor.py).

Each cold sample discards the function's instances, then sends one request through its HTTPS
Function URL (on a connection opened beforehand, so TLS set-up is not counted); functions take turns
within each round, so machine noise spreads evenly across them. Warm samples follow on keep-alive
connections, every one a text no function has seen (scripts/bench_texts.py: the same texts for every
function, lengths from one fixed distribution), so every warm request runs the model; the default's
answers must say so (`x-preheat-cache: miss`). Repeats of texts it already answered are its cache
hits, reported as their own row. Reports client-seen cold latency, INIT (spawn -> first /next, as
Lambda's Init Duration), warm latency, and the ratios; writes a PNG, and JSON with --json.

`--phases` adds, for the default and the floor, the median of every init phase inside their
instances, read back from the functions' CloudWatch Logs (scripts/init_phases.py), as on AWS.
`--variant LABEL:code=DIR:model=DIR:KEY=VALUE` adds another copy of the default function (code from
another checkout, another model directory, extra environment) that takes turns with the others: an
A/B of a change in one run.

`--target` selects where the functions run; `lambda` is the local twin. `sagemaker` runs the same
three functions and, beside them, a SageMaker Serverless endpoint in the twin serving the same
model with real `serve` containers: each cold sample discards its containers and calls
`invoke_endpoint` through boto3; it reports process start -> /ping ready (ModelSetupTime), the
client-seen first response, and warm latency (the `sagemaker` object of --json).

The parts: samples.py (what is measured), lambda_target.py and sagemaker_target.py (where),
runner.py (the flags and the rounds), report.py and plot.py (the results).
"""

from __future__ import annotations

from scripts.bench_coldstart.runner import add_arguments, run

__all__ = ["add_arguments", "run"]
