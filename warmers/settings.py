"""Settings of the warmer and controller Lambdas: read once from the environment, frozen afterwards.

Config flows one way: cdk.json context -> infra config -> environment variables -> here. A bad or
missing value fails at init with a message that names the variable and says what would be valid.
These functions are deployed without the inference runtime, so nothing here imports `functions`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

PcMode = Literal["direct", "scheduled", "off"]


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names the environment variable."""


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
        maximum = _int(env, "PREHEAT_WARM_MAX_CONCURRENCY", 50, minimum=1, maximum=1000)
        return cls(
            function=_required(env, "PREHEAT_WARM_FUNCTION", "the function name or ARN to warm"),
            qualifier=_optional(env, "PREHEAT_WARM_QUALIFIER"),
            concurrency=_int(env, "PREHEAT_WARM_CONCURRENCY", 1, minimum=1, maximum=maximum),
            max_concurrency=maximum,
            hold_ms=_int(env, "PREHEAT_WARM_HOLD_MS", 100, minimum=0, maximum=60_000),
            timeout_s=_float(env, "PREHEAT_WARM_TIMEOUT_S", 30.0, minimum=1.0, maximum=900.0),
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
        function = _optional(env, "PREHEAT_LAMBDA_FUNCTION")
        alias = _optional(env, "PREHEAT_LAMBDA_ALIAS")
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
            history_minutes=_int(env, "PREHEAT_HISTORY_MINUTES", 1440, minimum=15, maximum=20_160),
            memory_mb=_int(env, "PREHEAT_MEMORY_MB", 1024, minimum=128, maximum=10_240),
            max_concurrency=_int(env, "PREHEAT_MAX_CONCURRENCY", 10, minimum=0, maximum=1000),
            platform_keepalive_min=_float(
                env, "PREHEAT_PLATFORM_KEEPALIVE_MIN", 10.0, minimum=1.0, maximum=120.0
            ),
            lambda_function=function,
            lambda_alias=alias,
            pc_mode=pc_mode,  # type: ignore[arg-type]
            sagemaker_endpoint=_optional(env, "PREHEAT_SAGEMAKER_ENDPOINT"),
            sagemaker_variant=_optional(env, "PREHEAT_SAGEMAKER_VARIANT"),
            warmer_function=_optional(env, "PREHEAT_WARMER_FUNCTION"),
            warm_hold_ms=_int(env, "PREHEAT_WARM_HOLD_MS", 100, minimum=0, maximum=60_000),
            warm_timeout_s=_float(env, "PREHEAT_WARM_TIMEOUT_S", 30.0, minimum=1.0, maximum=900.0),
            dry_run=_bool(env, "PREHEAT_DRY_RUN", False),
            backoff=_backoff(env, Backoff()),
            namespace=env.get("POWERTOOLS_METRICS_NAMESPACE") or "Preheat",
            service=env.get("POWERTOOLS_SERVICE_NAME") or "preheat-controller",
        )


def _backoff(env: Mapping[str, str], default: Backoff) -> Backoff:
    return Backoff(
        attempts=_int(env, "PREHEAT_RETRY_ATTEMPTS", default.attempts, minimum=1, maximum=20),
        base_s=_int(env, "PREHEAT_RETRY_BASE_MS", int(default.base_s * 1000), minimum=1, maximum=60_000)
        / 1000,
        cap_s=_int(env, "PREHEAT_RETRY_CAP_MS", int(default.cap_s * 1000), minimum=1, maximum=300_000) / 1000,
    )


def _required(env: Mapping[str, str], key: str, what: str) -> str:
    value = (env.get(key) or "").strip()
    if not value:
        raise ConfigError(f"{key} is not set: set it to {what}")
    return value


def _optional(env: Mapping[str, str], key: str) -> str | None:
    value = (env.get(key) or "").strip()
    return value or None


def _int(env: Mapping[str, str], key: str, default: int, *, minimum: int, maximum: int) -> int:
    raw = env.get(key)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{key} must be an integer from {minimum} to {maximum}, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{key} must be from {minimum} to {maximum}, got {value}")
    return value


def _float(env: Mapping[str, str], key: str, default: float, *, minimum: float, maximum: float) -> float:
    raw = env.get(key)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(f"{key} must be a number from {minimum:g} to {maximum:g}, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{key} must be from {minimum:g} to {maximum:g}, got {value:g}")
    return value


def _bool(env: Mapping[str, str], key: str, default: bool) -> bool:
    raw = (env.get(key) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{key} must be true or false, got {raw!r}")
