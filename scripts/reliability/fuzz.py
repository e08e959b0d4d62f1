"""Property-based fuzzing of every route in the served OpenAPI spec, with schemathesis.

The spec is read from the target itself (`/openapi.json`: FastAPI's under uvicorn, and through Mangum
on the Lambda path), so what is fuzzed is what is published. For each operation, schemathesis
generates positive (schema-valid) and negative (schema-violating) requests. Half the cases are
*anchored*: the path's model name and version and the body's `model` are the served ones, and tensor
names are the model's, so generated data gets past the 404 and reaches the data plane and the model.

Every answer is classified (replies.py) and checked by schemathesis against the spec: no 5xx,
documented status codes and content types, bodies that match their schemas, negative data rejected.
Bounded: `examples` per operation and mode, `seconds` in all, `timeout` per request.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scripts.reliability import replies
from scripts.reliability.rawhttp import HttpTarget, send


@dataclass(frozen=True)
class Anchors:
    """Real names to put into generated requests, read from the target's own metadata."""

    model: str
    version: str
    inputs: tuple[str, ...]
    width: int  # the last dimension of the first input (-1 if dynamic)

    @classmethod
    def discover(cls, target: HttpTarget, timeout: float = 30.0) -> Anchors:
        models = send(target, "GET", "/v1/models", timeout=timeout)
        if models.status != 200:
            raise RuntimeError(f"GET /v1/models on {target.name} answered {models.status}: {models.body[:200]!r}")
        name = json.loads(models.body)["data"][0]["id"]
        meta = send(target, "GET", f"/v2/models/{name}", timeout=timeout)
        data = json.loads(meta.body)
        inputs = data["inputs"]
        width = int(inputs[0]["shape"][-1]) if inputs and inputs[0]["shape"] else -1
        return cls(name, data["versions"][0], tuple(t["name"] for t in inputs), width)


@dataclass
class FuzzReport:
    target: str
    operations: list[str] = field(default_factory=list)
    requests: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    check_failures: Counter[str] = field(default_factory=Counter)  # schemathesis check title -> count
    samples: list[str] = field(default_factory=list)  # the first few bad answers, reproducible
    seconds: float = 0.0
    out_of_time: bool = False
    max_ms: float = 0.0

    @property
    def server_errors(self) -> int:
        return self.verdicts[replies.SERVER_ERROR]

    @property
    def bad(self) -> int:
        return sum(self.verdicts[v] for v in replies.BAD)

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "operations": len(self.operations),
            "requests": self.requests,
            "server_errors": self.server_errors,
            "bad": self.bad,
            "verdicts": dict(self.verdicts),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "check_failures": dict(self.check_failures),
            "samples": self.samples,
            "seconds": round(self.seconds, 1),
            "out_of_time": self.out_of_time,
            "max_ms": round(self.max_ms, 1),
        }


# The spec's path parameters are any string. Drawn as such, most values are ones schemathesis then
# discards ("", "/", ".."...), and a run takes ~4x longer for the same number of requests. Positive
# cases draw names like these instead; negative cases still draw strings outside the pattern, and odd
# path bytes (%ff, traversal) are hand-written cases (hostile.py).
PATH_PARAMETER = {"type": "string", "minLength": 1, "maxLength": 40, "pattern": "^[A-Za-z0-9_.-]+$"}


class _OutOfTime(Exception):
    pass


def load_schema(target: HttpTarget, timeout: float = 30.0) -> Any:
    try:
        import schemathesis
    except ImportError:
        raise SystemExit("fuzzing needs schemathesis, in the dev extra: pip install -e '.[dev]'") from None

    reply = send(target, "GET", "/openapi.json", timeout=timeout)
    if reply.status != 200:
        raise RuntimeError(f"GET /openapi.json on {target.name} answered {reply.status}: {reply.body[:200]!r}")
    spec = json.loads(reply.body)
    for item in spec.get("paths", {}).values():
        for operation in item.values():
            for parameter in operation.get("parameters", []) if isinstance(operation, dict) else ():
                if parameter.get("in") == "path" and parameter.get("schema") == {"type": "string"}:
                    parameter["schema"] = dict(PATH_PARAMETER)
    return schemathesis.openapi.from_dict(spec)


def fuzz(
    target: HttpTarget,
    *,
    examples: int = 25,
    seconds: float = 60.0,
    timeout: float = 15.0,
    seed: int = 20261123,
    progress: Callable[[str], None] | None = None,
) -> FuzzReport:
    import requests
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed
    from hypothesis import strategies as st
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis import checks as sc

    schema = load_schema(target, timeout)
    anchors = Anchors.discover(target, timeout)
    session = requests.Session()
    session.verify = target.ca if target.ca else True
    if target.signer is not None:  # an AWS_IAM Function URL: every generated request is signed
        from scripts.twin.sigv4 import RequestsAuth

        session.auth = RequestsAuth(target.signer)
    checks = [
        sc.not_a_server_error,
        sc.status_code_conformance,
        sc.content_type_conformance,
        sc.response_schema_conformance,
        sc.negative_data_rejection,
    ]
    report = FuzzReport(target.name)
    started = time.monotonic()
    deadline = started + seconds
    for result in schema.get_all_operations():
        operation = result.ok()
        report.operations.append(operation.label)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if progress:
                progress(f"{target.name}: {operation.label} ({mode.value})")
            strategy = st.tuples(operation.as_strategy(generation_mode=mode), st.booleans())

            @hseed(seed)
            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.explicit, Phase.generate],
                report_multiple_bugs=False,
            )
            @given(strategy)
            def run(pair: tuple[Any, bool]) -> None:
                if time.monotonic() > deadline:
                    raise _OutOfTime
                case, anchor = pair
                if anchor:
                    _anchor(case, anchors)
                _one(case, target, session, timeout, checks, report)

            try:
                run()
            except _OutOfTime:
                report.out_of_time = True
            except Unsatisfiable:
                pass  # negative mode on an operation with no inputs: nothing can be made invalid
            if report.out_of_time:
                break
        if report.out_of_time:
            break
    report.seconds = time.monotonic() - started
    return report


def _anchor(case: Any, anchors: Anchors) -> None:
    """Put the served names into a generated case (after generation: a strategy with fixed path
    parameters makes schemathesis reject most of what it draws, ~20x slower)."""
    params = getattr(case, "path_parameters", None)
    if isinstance(params, dict):
        for key, value in (("name", anchors.model), ("version", anchors.version)):
            if key in params:
                params[key] = value
    body = getattr(case, "body", None)
    if isinstance(body, dict):
        if "model" in body or "input" in body:
            body["model"] = anchors.model
        inputs = body.get("inputs")
        if isinstance(inputs, list):
            for i, tensor in enumerate(inputs):
                if isinstance(tensor, dict) and anchors.inputs:
                    tensor["name"] = anchors.inputs[i % len(anchors.inputs)]


def _one(case: Any, target: HttpTarget, session: Any, timeout: float, checks: list[Any], report: FuzzReport) -> None:
    import requests

    report.requests += 1
    started = time.perf_counter()
    try:
        response = case.call(
            base_url=target.base_url.rstrip("/"), session=session, timeout=timeout, verify=target.ca or True
        )
    except requests.Timeout:
        report.verdicts[replies.HANG] += 1
        _sample(report, f"timeout after {timeout} s: {case.as_curl_command(verify=False)}")
        return
    except requests.ConnectionError as exc:
        report.verdicts[replies.NO_ANSWER] += 1
        _sample(report, f"no answer ({exc}): {case.as_curl_command(verify=False)}")
        return
    report.max_ms = max(report.max_ms, (time.perf_counter() - started) * 1000)
    headers = {k.lower(): v[0] if isinstance(v, list) else v for k, v in response.headers.items()}
    verdict = replies.verdict(response.status_code, headers, response.content)
    report.verdicts[verdict] += 1
    report.statuses[response.status_code] += 1
    if verdict in replies.BAD:
        _sample(report, f"{verdict} {response.status_code} {response.content[:200]!r}: {case.as_curl_command(verify=False)}")
    try:
        case.validate_response(response, checks=checks)
    except BaseExceptionGroup as group:
        for failure in group.exceptions:
            title = str(getattr(failure, "title", type(failure).__name__))
            report.check_failures[title] += 1
            if report.check_failures[title] == 1:
                _sample(report, f"check {title!r} failed: {str(failure)[:300]} :: {case.as_curl_command(verify=False)}")


def _sample(report: FuzzReport, text: str) -> None:
    if len(report.samples) < 12:
        report.samples.append(text[:800])
