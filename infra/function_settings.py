"""What the stack's functions are, as plain values: handlers, sizes and environment variables.

One place for what the CDK constructs deploy and the local twin runs (scripts/twin/stack.py), so
the two cannot drift. Plain values in, plain dicts out: no CDK objects, and no aws_cdk import (the
twin builds its config from these without starting the CDK's jsii runtime). Values the twin replaces
(function and table names, which CloudFormation chooses on AWS) are parameters, so the stack passes
its tokens and the twin its concrete names.

These live in infra/, not beside warmers/settings.py which reads them: the values written here are
deployment decisions (the alias, the service names, the warmer's ceiling), and warmers/ is the code
asset of two Lambda functions that should carry only what they run. warmers/settings.py stays the
one reader; a test reads every variable written here back through it.
"""

from __future__ import annotations

from functions.sagemaker.environment import SAGEMAKER_MODEL_DIR as SAGEMAKER_MODEL_DIR
from infra.config import CacheConfig, LambdaConfig

INFERENCE_HANDLER = "functions.inference.handler.handler"
SNAPSTART_HANDLER = "functions.inference.snapstart.handler"
WARMER_HANDLER = "warmers.warmer.handler"
CONTROLLER_HANDLER = "warmers.controller.handler"
ALIAS = "live"
MODEL_MOUNT = "/opt/model"  # the model layer holds model/, and layers mount at /opt

WARMER_MEMORY_MB = 256
CONTROLLER_MEMORY_MB = 512  # numpy and a day of history replayed through the policy
CONTROLLER_TIMEOUT_S = 60
CONTROLLER_RESERVED = 1  # one run at a time: two overlapping runs would fight over the same capacity
WARM_MAX_CONCURRENCY_FLOOR = 50  # the warmer's own ceiling is never below this


def inference_handler(config: LambdaConfig) -> str:
    """The zip package's handler (a container image's is its CMD; SnapStart needs a zip package)."""
    return SNAPSTART_HANDLER if config.warm_start == "snapstart" else INFERENCE_HANDLER


def warmer_timeout_s(hold_ms: int) -> int:
    """Pings run concurrently and each holds its instance for hold_ms: allow for that."""
    return 45 + hold_ms // 1000


def runtime_environment(config: LambdaConfig, service: str, namespace: str) -> dict[str, str]:
    """The runtime's Settings, as environment variables (names from functions/inference/settings.py)."""
    rt = config.runtime
    env = {
        "PREHEAT_MODEL_DIR": MODEL_MOUNT,
        "PREHEAT_BATCH_SIZE": str(rt.batch_size),
        "PREHEAT_MAX_INPUTS": str(rt.max_inputs),
        "PREHEAT_TRUNCATE": "true" if rt.truncate else "false",
        "PREHEAT_WARMUP_MAX_HOLD_MS": str(rt.warmup_max_hold_ms),
        "POWERTOOLS_SERVICE_NAME": service,
        "POWERTOOLS_METRICS_NAMESPACE": namespace,
    }
    if rt.threads is not None:
        env["PREHEAT_THREADS"] = str(rt.threads)
    if rt.base_path:
        env["PREHEAT_BASE_PATH"] = rt.base_path
    return env


def cache_environment(cache: CacheConfig, table_name: str | None) -> dict[str, str]:
    """The cache's settings (functions/cache/settings.py); `table_name` None: no shared tier."""
    env = {
        "PREHEAT_CACHE_MEMORY_BYTES": str(cache.memory_bytes),
        "PREHEAT_CACHE_TTL_SECONDS": str(cache.ttl_seconds),
        "PREHEAT_CACHE_TIMEOUT_MS": str(cache.timeout_ms),
    }
    if table_name is not None:
        env["PREHEAT_CACHE_TABLE"] = table_name
    return env


def endpoint_environment(
    config: LambdaConfig, service: str, namespace: str, cache_env: dict[str, str], region: str
) -> dict[str, str]:
    """The SageMaker container's environment: the Lambda runtime's settings and cache, the model where
    SageMaker extracts it, and the region (Lambda sets AWS_REGION for its functions; a SageMaker
    container is told, and the cache's DynamoDB tier needs it)."""
    return {
        **runtime_environment(config, service, namespace),
        **cache_env,
        "PREHEAT_MODEL_DIR": SAGEMAKER_MODEL_DIR,
        "AWS_REGION": region,
    }


def warmer_environment(
    *,
    function_name: str,
    qualifier: str | None,
    concurrency: int,
    max_concurrency: int,
    hold_ms: int,
    service: str,
    namespace: str,
) -> dict[str, str]:
    """warmers/settings.py WarmerSettings, as environment variables. `service` is the inference
    function's; `max_concurrency` the controller's ceiling (the warmer's own is at least 50)."""
    env = {
        "PREHEAT_WARM_FUNCTION": function_name,
        "PREHEAT_WARM_CONCURRENCY": str(concurrency),
        "PREHEAT_WARM_MAX_CONCURRENCY": str(max(WARM_MAX_CONCURRENCY_FLOOR, concurrency, max_concurrency)),
        "PREHEAT_WARM_HOLD_MS": str(hold_ms),
        "POWERTOOLS_SERVICE_NAME": f"{service}-warmer",
        "POWERTOOLS_METRICS_NAMESPACE": namespace,
    }
    if qualifier:
        env["PREHEAT_WARM_QUALIFIER"] = qualifier
    return env


def controller_environment(
    *,
    policy: str,
    namespace: str,
    service: str,
    memory_mb: int,
    max_concurrency: int,
    function_name: str,
    qualifier: str | None,
    pc_mode: str,
    hold_ms: int,
    endpoint_name: str | None = None,
    variant_name: str | None = None,
    warmer_function: str | None = None,
) -> dict[str, str]:
    """warmers/settings.py ControllerSettings, as environment variables. `service`, `namespace` and
    `memory_mb` are the inference function's (whose metrics the controller reads); `pc_mode` is
    direct, scheduled or off; the endpoint is the SageMaker one it scales, if any; `warmer_function`
    the warmer it fans out through (unset: it pings the function itself)."""
    env = {
        "PREHEAT_POLICY": policy,
        "PREHEAT_METRICS_NAMESPACE": namespace,
        "PREHEAT_METRICS_SERVICE": service,
        "PREHEAT_MEMORY_MB": str(memory_mb),
        "PREHEAT_MAX_CONCURRENCY": str(max_concurrency),
        "PREHEAT_LAMBDA_FUNCTION": function_name,
        "PREHEAT_PC_MODE": pc_mode,
        "PREHEAT_WARM_HOLD_MS": str(hold_ms),
        "POWERTOOLS_SERVICE_NAME": f"{service}-controller",
        "POWERTOOLS_METRICS_NAMESPACE": namespace,
    }
    if qualifier:
        env["PREHEAT_LAMBDA_ALIAS"] = qualifier
    if endpoint_name is not None:
        env["PREHEAT_SAGEMAKER_ENDPOINT"] = endpoint_name
        if variant_name is not None:
            env["PREHEAT_SAGEMAKER_VARIANT"] = variant_name
    if warmer_function is not None:
        env["PREHEAT_WARMER_FUNCTION"] = warmer_function
    return env


def controller_max_concurrency(config: LambdaConfig, configured: int | None) -> int:
    """The controller's ceiling: controller.maxConcurrency, by default lambda.provisioned.max."""
    return configured if configured is not None else config.provisioned.max
