"""The `lambda` target of `preheat bench coldstart`: the functions on the local twin, each behind its
own HTTPS Function URL.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scripts.bench_coldstart.samples import Sample, Variant, Warm

if TYPE_CHECKING:
    from layers.model_requests import ModelRequests, Request


class TwinTarget:
    """The three functions on the local twin, each behind its own HTTPS Function URL."""

    def __init__(
        self, twin: Any, body: dict[str, Any], notes: dict[str, str], models: dict[str, ModelRequests]
    ) -> None:
        from scripts.twin.client import TwinClient, UrlClient

        self.twin: TwinClient = twin
        self.body = body
        self.notes = notes
        self.models = models  # function -> requests for the model it serves (its route, its name)
        self.names = tuple(notes)
        self._warm: dict[str, UrlClient] = {}
        self._sent: dict[str, int] = {}

    def describe(self, name: str) -> str:
        return self.notes[name]

    def _request(self, name: str, text: str | None = None) -> Request:
        """The task's own route with `text` (tensor models: inputs new to this function each time)."""
        self._sent[name] = self._sent.get(name, 0) + 1
        return self.models[name].request(self._sent[name], text=self.body["input"] if text is None else text)

    def cold(self, name: str) -> Sample:
        function = f"bench-{name}"
        self.twin.reset(function)
        client = self.twin.url_client(function)
        client.connect()
        request = self._request(name)
        try:
            reply = client.request("POST", request.path, request.body)
        finally:
            client.close()
        if reply.status != 200:
            raise RuntimeError(f"{function} answered {reply.status}: {reply.body[:300]!r}")
        record = self.twin.record(reply.headers.get("x-amzn-requestid", ""), function)
        if record is None or not record["cold"]:
            raise RuntimeError(f"{function}: the request after a reset was not a cold start ({record})")
        return Sample(reply.ms, record["init_ms"])

    def warm(self, name: str, text: str) -> Warm:
        function = f"bench-{name}"
        client = self._warm.get(name)
        if client is None:
            client = self._warm[name] = self.twin.url_client(function)
            client.connect()
        request = self._request(name, text)
        reply = client.request("POST", request.path, request.body)
        if reply.status != 200:
            raise RuntimeError(f"{function} answered {reply.status}: {reply.body[:300]!r}")
        return Warm(reply.ms, reply.headers.get("x-preheat-cache", "-"))

    def phases(self, names: tuple[str, ...]) -> dict[str, Any]:
        """Each function's instances' init phases, from CloudWatch Logs (the twin's moto), as on AWS."""
        from scripts import init_phases

        self.twin.flush()
        logs = self.twin.boto3_client("logs")
        return {
            name: init_phases.parse(init_phases.from_cloudwatch(logs, f"bench-{name}")) for name in names
        }

    def close(self) -> None:
        for client in self._warm.values():
            client.close()


@contextmanager
def lambda_twin(
    root: Path,
    state_dir: Path,
    console: Any,
    endpoints: tuple[Any, ...] = (),
    variants: tuple[Variant, ...] = (),
    naive: bool = True,
    model: str | None = None,
) -> Iterator[TwinTarget]:
    from layers.model_requests import ModelRequests
    from scripts.twin import state as twin_state
    from scripts.twin.client import TwinClient
    from scripts.twin.config import TwinConfig, inference_function
    from scripts.twin.models import naive_model_dir

    slim = bench_model(console, model)
    naive_dir = naive_model_dir(root, slim)
    keep = 3600.0  # instances go only when a cold sample resets them
    default = inference_function(root, name="bench-default", model_dir=slim, keep_alive_s=keep)
    slim_env = {"PREHEAT_MODEL_DIR": default.env["PREHEAT_MODEL_DIR"]}  # the same model, from the same place
    where = "built layers" if default.isolated else "local environment"
    notes = {"default": f"preheat handler, {default.env['PREHEAT_MODEL_DIR']} ({where})"}
    models = {"default": ModelRequests.of(slim)}
    extra = []
    for variant in variants:
        spec = inference_function(
            root, name=f"bench-{variant.label}", keep_alive_s=keep, model_dir=variant.model_dir, env=dict(variant.env)
        )
        if variant.code_dir is not None:
            spec = dataclasses.replace(spec, code_dir=variant.code_dir)
        extra.append(spec)
        notes[variant.label] = (
            f"preheat handler, code {variant.code_dir or 'this checkout'}, model "
            f"{variant.model_dir or spec.env['PREHEAT_MODEL_DIR']}"
            + "".join(f", {k}={v}" for k, v in variant.env)
        )
        models[variant.label] = ModelRequests.of(variant.model_dir or slim)
    functions = (
        default,
        *extra,
        # The naive function is what a user deploys as one fat package (FastAPI, Mangum, Powertools):
        # never from the slim deps layer, which leaves those out.
        dataclasses.replace(
            inference_function(
                root,
                name="bench-naive",
                handler="functions.baselines.naive.handler",
                model_dir=naive_dir,
                keep_alive_s=keep,
            ),
            layers=(),
            isolated=False,
        ),
        inference_function(
            root,
            name="bench-floor",
            handler="functions.baselines.floor.handler",
            env=slim_env,
            keep_alive_s=keep,
        ),
    )
    if not naive:
        functions = tuple(f for f in functions if f.name != "bench-naive")
    # A loaded laptop can take longer than Lambda's 10 s INIT limit; a benchmark should measure, not fail.
    config = TwinConfig(
        functions=functions, state_dir=state_dir, max_instances=8, init_timeout_s=120.0, endpoints=endpoints
    )
    twin_state.stop(state_dir)
    with console.status("starting the local twin with default, naive and floor…"):
        state, _ = twin_state.start(config, cwd=root)
    if naive:
        shown = naive_dir.relative_to(root) if naive_dir.is_relative_to(root) else naive_dir
        notes["naive"] = f"FastAPI+Mangum+Powertools, default ORT options, {shown}"
        models["naive"] = ModelRequests.of(naive_dir)
    notes["floor"] = f"bare handler, {default.env['PREHEAT_MODEL_DIR']}"
    models["floor"] = models["default"]
    target = TwinTarget(
        TwinClient(state), {"input": "The quick brown fox jumps over the lazy dog."}, notes, models
    )
    try:
        yield target
    finally:
        target.close()
        twin_state.stop(state_dir)


def bench_model(console: Any, model: str | None) -> Path:
    """The model directory to measure: --model, else preheat.model (the default is built if missing)."""
    from infra.config import ConfigError
    from scripts.twin.models import chosen_model

    try:
        return chosen_model(model, console=console, build_default=True)[1].directory
    except ConfigError as exc:
        raise SystemExit(f"preheat bench coldstart: {exc}") from None
