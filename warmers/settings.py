"""Settings of the warmer and controller Lambdas: read once from the environment, frozen afterwards.

Config flows one way: cdk.json context -> infra config -> environment variables -> here. A bad or
missing value fails at init with a message that names the variable and says what would be valid.
The warmer and controller are deployed without the inference runtime: of `functions` they import only
the shared error and env parser (functions.errors, functions.envvars), which their asset carries.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from functions import envvars
from functions.errors import ConfigError

PcMode = Literal["direct", "scheduled", "off"]


@dataclass(frozen=True)
class Backoff:
    """Retries of throttled or failed AWS calls: full-jitter exponential backoff, bounded."""

    attempts: int = 5
    base_s: float = 0.2
    cap_s: float = 5.0


@dataclass(frozen=True)
class WarmerSettings:
    function: str  # function name or ARN to warm
    qualifier: str | None = None  # alias or version
    concurrency: int = 1
    max_concurrency: int = 50
    hold_ms: int = 100
    timeout_s: float = 30.0
    backoff: Backoff = Backoff(attempts=3, base_s=0.1, cap_s=1.0)
    namespace: str = "Preheat"
    service: str = "preheat-warmer"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WarmerSettings:
        env = os.environ if env is None else env
        maximum = envvars.integer(env, "PREHEAT_WARM_MAX_CONCURRENCY", 50, minimum=1, maximum=1000)
        return cls(
            function=envvars.required(env, "PREHEAT_WARM_FUNCTION", "the function name or ARN to warm"),
            qualifier=envvars.optional(env, "PREHEAT_WARM_QUALIFIER"),
            concurrency=envvars.integer(env, "PREHEAT_WARM_CONCURRENCY", 1, minimum=1, maximum=maximum),
            max_concurrency=maximum,
            hold_ms=envvars.integer(env, "PREHEAT_WARM_HOLD_MS", 100, minimum=0, maximum=60_000),
            timeout_s=envvars.number(env, "PREHEAT_WARM_TIMEOUT_S", 30.0, minimum=1.0, maximum=900.0),
            backoff=_backoff(env, Backoff(attempts=3, base_s=0.1, cap_s=1.0)),
            namespace=env.get("POWERTOOLS_METRICS_NAMESPACE") or "Preheat",
            service=env.get("POWERTOOLS_SERVICE_NAME") or "preheat-warmer",
        )


@dataclass(frozen=True)
class ControllerSettings:
    policy: str = "preheat"
    metrics_namespace: str = "Preheat"  # where the inference function's EMF metrics land
    metrics_service: str = "preheat"  # their `service` dimension
    history_minutes: int = 1440
    memory_mb: int = 1024  # the inference function's memory (prices and policy)
    max_concurrency: int = 10  # no provisioned concurrency or fan-out above this, ever
    platform_keepalive_min: float = 10.0
    lambda_function: str | None = None
    lambda_alias: str | None = None
    pc_mode: PcMode = "direct"
    sagemaker_endpoint: str | None = None
    sagemaker_variant: str | None = None
    warmer_function: str | None = None  # invoke it with the fan-out; unset: fan out from here
    warm_hold_ms: int = 100
    warm_timeout_s: float = 30.0
    dry_run: bool = False
    backoff: Backoff = Backoff()
    namespace: str = "Preheat"
    service: str = "preheat-controller"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ControllerSettings:
        env = os.environ if env is None else env
        from warmers.policies import POLICY_NAMES

        policy = env.get("PREHEAT_POLICY", "preheat").strip() or "preheat"
        if policy not in POLICY_NAMES or policy == "oracle":
            live = ", ".join(n for n in POLICY_NAMES if n != "oracle")
            raise ConfigError(
                f"PREHEAT_POLICY must be one of {live} (the oracle cannot run live), got {policy!r}"
            )
        pc_mode = env.get("PREHEAT_PC_MODE", "direct").strip() or "direct"
        if pc_mode not in ("direct", "scheduled", "off"):
            raise ConfigError(f"PREHEAT_PC_MODE must be direct, scheduled or off, got {pc_mode!r}")
        function = envvars.optional(env, "PREHEAT_LAMBDA_FUNCTION")
        alias = envvars.optional(env, "PREHEAT_LAMBDA_ALIAS")
        if function and not alias and pc_mode != "off":
            raise ConfigError(
                "PREHEAT_LAMBDA_ALIAS must name the alias (or version) that carries provisioned concurrency "
                "when PREHEAT_LAMBDA_FUNCTION is set; or set PREHEAT_PC_MODE=off"
            )
        if alias and not function:
            raise ConfigError(
                "PREHEAT_LAMBDA_ALIAS is set but PREHEAT_LAMBDA_FUNCTION is not: set both or neither"
            )
        return cls(
            policy=policy,
            metrics_namespace=env.get("PREHEAT_METRICS_NAMESPACE") or "Preheat",
            metrics_service=env.get("PREHEAT_METRICS_SERVICE") or "preheat",
            history_minutes=envvars.integer(env, "PREHEAT_HISTORY_MINUTES", 1440, minimum=15, maximum=20_160),
            memory_mb=envvars.integer(env, "PREHEAT_MEMORY_MB", 1024, minimum=128, maximum=10_240),
            max_concurrency=envvars.integer(env, "PREHEAT_MAX_CONCURRENCY", 10, minimum=0, maximum=1000),
            platform_keepalive_min=envvars.number(
                env, "PREHEAT_PLATFORM_KEEPALIVE_MIN", 10.0, minimum=1.0, maximum=120.0
            ),
            lambda_function=function,
            lambda_alias=alias,
            pc_mode=pc_mode,  # type: ignore[arg-type]
            sagemaker_endpoint=envvars.optional(env, "PREHEAT_SAGEMAKER_ENDPOINT"),
            sagemaker_variant=envvars.optional(env, "PREHEAT_SAGEMAKER_VARIANT"),
            warmer_function=envvars.optional(env, "PREHEAT_WARMER_FUNCTION"),
            warm_hold_ms=envvars.integer(env, "PREHEAT_WARM_HOLD_MS", 100, minimum=0, maximum=60_000),
            warm_timeout_s=envvars.number(env, "PREHEAT_WARM_TIMEOUT_S", 30.0, minimum=1.0, maximum=900.0),
            dry_run=envvars.boolean(env, "PREHEAT_DRY_RUN", False),
            backoff=_backoff(env, Backoff()),
            namespace=env.get("POWERTOOLS_METRICS_NAMESPACE") or "Preheat",
            service=env.get("POWERTOOLS_SERVICE_NAME") or "preheat-controller",
        )


def _backoff(env: Mapping[str, str], default: Backoff) -> Backoff:
    return Backoff(
        attempts=envvars.integer(env, "PREHEAT_RETRY_ATTEMPTS", default.attempts, minimum=1, maximum=20),
        base_s=envvars.integer(
            env, "PREHEAT_RETRY_BASE_MS", int(default.base_s * 1000), minimum=1, maximum=60_000
        )
        / 1000,
        cap_s=envvars.integer(
            env, "PREHEAT_RETRY_CAP_MS", int(default.cap_s * 1000), minimum=1, maximum=300_000
        )
        / 1000,
    )
