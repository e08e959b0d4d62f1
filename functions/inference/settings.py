"""The runtime's settings: read once from the environment at init, frozen afterwards.

Config flows one way: cdk.json context / CLI flags -> infra config -> environment variables -> here.
A bad value fails init with a message that names the variable and says what would be valid.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import msgspec

from functions import envvars
from functions.cache.settings import CacheSettings
from functions.inference.errors import ConfigError

# Lambda allocates CPU in proportion to memory: one full vCPU at 1,769 MB, six at 10,240 MB.
LAMBDA_MB_PER_VCPU = 1769
LAMBDA_SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024


class Settings(msgspec.Struct, frozen=True):
    model_dir: Path = Path("/opt/model")
    threads: int = 1
    max_request_bytes: int = LAMBDA_SYNC_PAYLOAD_BYTES
    max_response_bytes: int = LAMBDA_SYNC_PAYLOAD_BYTES
    max_inputs: int = 2048
    batch_size: int = 32
    truncate: bool = True
    base_path: str = ""
    service: str = "preheat"
    metrics_namespace: str = "Preheat"
    max_warmup_hold_ms: int = 5000
    cache: CacheSettings = msgspec.field(default_factory=CacheSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        base_path = env.get("PREHEAT_BASE_PATH", "").strip()
        if base_path and (not base_path.startswith("/") or base_path.endswith("/")):
            raise ConfigError(
                f"PREHEAT_BASE_PATH must start with '/' and not end with one (e.g. '/prod'), got {base_path!r}"
            )
        return cls(
            model_dir=Path(env.get("PREHEAT_MODEL_DIR", "/opt/model")),
            threads=envvars.integer(env, "PREHEAT_THREADS", default_threads(env), minimum=1, maximum=64),
            max_request_bytes=envvars.integer(
                env, "PREHEAT_MAX_REQUEST_BYTES", LAMBDA_SYNC_PAYLOAD_BYTES, minimum=1024
            ),
            max_response_bytes=envvars.integer(
                env, "PREHEAT_MAX_RESPONSE_BYTES", LAMBDA_SYNC_PAYLOAD_BYTES, minimum=1024
            ),
            max_inputs=envvars.integer(env, "PREHEAT_MAX_INPUTS", 2048, minimum=1, maximum=100_000),
            batch_size=envvars.integer(env, "PREHEAT_BATCH_SIZE", 32, minimum=1, maximum=4096),
            truncate=envvars.boolean(env, "PREHEAT_TRUNCATE", True),
            base_path=base_path,
            service=env.get("POWERTOOLS_SERVICE_NAME", "preheat") or "preheat",
            metrics_namespace=env.get("POWERTOOLS_METRICS_NAMESPACE", "Preheat") or "Preheat",
            max_warmup_hold_ms=envvars.integer(
                env, "PREHEAT_WARMUP_MAX_HOLD_MS", 5000, minimum=0, maximum=60_000
            ),
            cache=CacheSettings.from_env(env),
        )


def default_threads(env: Mapping[str, str]) -> int:
    """One intra-op thread per vCPU Lambda gives this memory size; all usable CPUs elsewhere."""
    memory = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    if memory and memory.isdigit():
        return max(1, int(memory) // LAMBDA_MB_PER_VCPU)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)
