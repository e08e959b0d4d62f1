"""The twin's default stack (what `preheat up` runs), derived from the CDK app's own config.

Config flows one way here too: cdk.json's context (and `-c KEY=VALUE` overrides) -> PreheatConfig,
loaded by infra/config/ (the package) exactly as `cdk synth` would -> the same builders the constructs call
(infra/function_settings.py) -> the twin's functions, schedules and endpoint. So sizes, environment
variables and schedules are the stack's; only what the twin cannot or should not copy differs, here:

- Names. CloudFormation names the stack's Lambda functions and cache table (see the stack's outputs);
  the twin uses fixed names, in NAMES. Where the stack's environment refers to one of those
  resources, the twin's variable holds the twin's name. The SageMaker endpoint is named by the
  config (sagemaker.endpointName), so the twin uses that name.
- The controller's pcMode. `scheduled` (the stack's default with warmStart `provisioned`) writes
  Application Auto Scaling scheduled actions, which the twin does not run: the twin's controller sets
  provisioned concurrency `direct`ly (there is no autoscaler to fight). `off` stays off.
- The controller's ceiling is at most TWIN_MAX_CONCURRENCY: every instance shares this machine.
- The SageMaker endpoint exists only once the default model is built (its containers serve it); the
  controller scales it then, as the stack's does (UpdateEndpoint is the twin's, scripts/twin/sagemaker.py).
- The cache's DynamoDB table is created in moto at start (TwinConfig.tables), so the shared tier
  works as deployed.
- The stack deploys lambda.provisioned.min instances on `live` at once; the twin starts none unless
  `preheat up --provisioned N` (the controller sets it from the first schedule on).
- The twin always has the `live` alias and its Function URL (as the stack's `aws` target does), takes
  code from the repository and layers from build/layers/deps-local (see config.inference_function),
  and fires rate() schedules only.
- The model is the stack's (preheat.model; a model that was not built fails here, naming the command
  that builds it, as synth does). The function mounts the stack's model layer (preheat.layers.model)
  at /opt/model when that layer holds exactly this model, else it reads the model directory: where
  synth would refuse a stale layer, the twin serves the model the context names. The SageMaker
  endpoint serves the model directory (the twin extracts no archive of it).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from infra import config as infra_config
from infra import function_settings as fs
from infra.built_model import require_model
from infra.config import ConfigError, PreheatConfig, controller_pc_mode
from scripts.twin.config import (
    DEFAULT_FUNCTION,
    FunctionSpec,
    Schedule,
    TwinConfig,
    TwinConfigError,
    inference_function,
)
from scripts.twin.sagemaker_config import EndpointSpec

WARMER_FUNCTION = "preheat-warmer"
CONTROLLER_FUNCTION = "preheat-controller"
CACHE_TABLE = "preheat-cache"
# The stack's resource (its construct path) -> the twin's name for it.
NAMES = {
    "Inference/Function": DEFAULT_FUNCTION,
    "KeepWarm/Warmer": WARMER_FUNCTION,
    "KeepWarm/Controller": CONTROLLER_FUNCTION,
    "Cache/Table": CACHE_TABLE,
}
# Instances share this machine's cores: the controller never asks for more than this.
TWIN_MAX_CONCURRENCY = 2


def load_stack_config(root: Path, context: Iterable[str] = ()) -> PreheatConfig:
    """The PreheatConfig `cdk synth` in `root` would use, with `-c KEY=VALUE` overrides."""
    return infra_config.load(root, context)


def controller_mode(stack: PreheatConfig) -> str:
    """The twin's pcMode for the stack's: no Application Auto Scaling here, so `scheduled` -> `direct`."""
    return "off" if controller_pc_mode(stack) == "off" else "direct"


def twin_config(stack: PreheatConfig, root: Path, **overrides: Any) -> TwinConfig:
    """The twin of `stack`, running this repository's code from `root`; `overrides` set TwinConfig
    fields (state_dir, gateway_port, keep_alive_s, ...)."""
    root = root.resolve()
    try:
        model = require_model(stack)
    except ConfigError as exc:
        raise TwinConfigError(str(exc)) from None
    lam = stack.lambda_
    if stack.region:
        overrides.setdefault("region", stack.region)
    if stack.account:
        overrides.setdefault("account_id", stack.account)
    region = str(overrides.get("region", TwinConfig.region))

    table = CACHE_TABLE if stack.cache.table else None
    cache_env = fs.cache_environment(stack.cache, table)
    env = {**fs.runtime_environment(lam, stack.service, stack.namespace), **cache_env}
    # The twin decides where the model is: the model layer at /opt/model (as the stack) once it is
    # built from this model, else the model directory itself (config.inference_function).
    del env["PREHEAT_MODEL_DIR"]
    functions = [
        inference_function(
            root,
            handler=fs.inference_handler(lam),
            model_dir=model.directory,
            model_layer=stack.layers.model,
            env=env,
            memory_mb=lam.memory_mb,
            timeout_s=float(lam.timeout_seconds),
            reserved_concurrency=lam.reserved_concurrency,
            url_auth=lam.url_auth,
        )
    ]
    overrides.setdefault("tables", (table,) if table else ())

    endpoint: EndpointSpec | None = None
    if stack.sagemaker.enabled:
        description = stack.sagemaker.description(
            fs.endpoint_environment(lam, stack.service, stack.namespace, cache_env, region)
        )
        endpoint = EndpointSpec(description, model.directory)
        overrides.setdefault("endpoints", (endpoint,))

    schedules: list[Schedule] = []
    ceiling = min(fs.controller_max_concurrency(lam, stack.controller.max_concurrency), TWIN_MAX_CONCURRENCY)
    warmer = stack.warmer
    if warmer.enabled:
        functions.append(
            FunctionSpec(
                WARMER_FUNCTION,
                fs.WARMER_HANDLER,
                root,
                env=fs.warmer_environment(
                    function_name=DEFAULT_FUNCTION,
                    qualifier=fs.ALIAS,
                    concurrency=warmer.concurrency,
                    max_concurrency=ceiling,
                    hold_ms=warmer.hold_ms,
                    service=stack.service,
                    namespace=stack.namespace,
                ),
                memory_mb=fs.WARMER_MEMORY_MB,
                timeout_s=float(fs.warmer_timeout_s(warmer.hold_ms)),
                aliases=(),
                url_qualifier=None,
            )
        )
        schedules.append(_schedule(WARMER_FUNCTION, warmer.schedule, "preheat.warmer.schedule"))
    controller = stack.controller
    if controller.enabled:
        functions.append(
            FunctionSpec(
                CONTROLLER_FUNCTION,
                fs.CONTROLLER_HANDLER,
                root,
                env=fs.controller_environment(
                    policy=controller.policy,
                    namespace=stack.namespace,
                    service=stack.service,
                    memory_mb=lam.memory_mb,
                    max_concurrency=ceiling,
                    function_name=DEFAULT_FUNCTION,
                    qualifier=fs.ALIAS,
                    pc_mode=controller_mode(stack),
                    hold_ms=warmer.hold_ms,
                    endpoint_name=endpoint.name if endpoint is not None else None,
                    variant_name=endpoint.endpoint.variant_name if endpoint is not None else None,
                    warmer_function=WARMER_FUNCTION if warmer.enabled else None,
                ),
                memory_mb=fs.CONTROLLER_MEMORY_MB,
                timeout_s=float(fs.CONTROLLER_TIMEOUT_S),
                reserved_concurrency=fs.CONTROLLER_RESERVED,
                aliases=(),
                url_qualifier=None,
            )
        )
        schedules.append(_schedule(CONTROLLER_FUNCTION, controller.schedule, "preheat.controller.schedule"))
    return TwinConfig(functions=tuple(functions), schedules=tuple(schedules), **overrides).validate()


def _schedule(function: str, expression: str, key: str) -> Schedule:
    # The stack's rule targets the function itself (unqualified), and so does the twin's.
    schedule = Schedule(function, expression, function)
    try:
        _ = schedule.interval_s
    except TwinConfigError as exc:
        raise TwinConfigError(
            f"{key} {expression!r}: the twin fires rate() schedules only ({exc}); "
            f"run it with e.g. `preheat up -c {key.replace('preheat.', 'preheat:', 1)}='rate(5 minutes)'`"
        ) from None
    return schedule


def default_config(
    root: Path, *, stack: PreheatConfig | None = None, context: Iterable[str] = (), **overrides: Any
) -> TwinConfig:
    """The twin of the stack `cdk synth` in `root` would build (with `context` as `-c KEY=VALUE`), or
    of `stack` when given. A bad context value raises TwinConfigError naming its key."""
    try:
        config = stack if stack is not None else load_stack_config(root, context)
    except ConfigError as exc:
        raise TwinConfigError(f"bad stack config (cdk.json context): {exc}") from None
    return twin_config(config, root, **overrides)
