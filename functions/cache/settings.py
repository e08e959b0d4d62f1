"""The cache's settings: read once from the environment at init, frozen afterwards.

A bad value fails init with a message naming the variable, like the runtime's own settings.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

import msgspec

from functions import envvars
from functions.errors import ConfigError

MiB = 1024 * 1024
# 64 MiB holds ~35,000 all-MiniLM-L6-v2 answers (384 float32 + ~350 bytes of bookkeeping each):
# 6% of a 1 GB function, for a working set most endpoints never exceed.
DEFAULT_MEMORY_BYTES = 64 * MiB
DEFAULT_TTL_SECONDS = 24 * 3600
# In-region DynamoDB answers in single-digit ms and Redis in well under one; 25 ms covers their p99
# and caps what a sick tier can add to a request.
DEFAULT_TIMEOUT_MS = 25
# Far below DynamoDB's 400 KB item limit; a 384-dim answer is ~1.6 KB, a 4096-dim one ~16 KB.
DEFAULT_MAX_VALUE_BYTES = 64 * 1024
DYNAMODB_MAX_VALUE_BYTES = 390_000  # the item also holds its key and expiry
WRITE_MODES = ("sync", "background")

# Patterns, not compiled regexes: compiling costs every cold start, matching only a configured one.
_TABLE_NAME = r"[A-Za-z0-9_.\-]{3,255}"
_TABLE_ARN = r"arn:aws[a-z\-]*:dynamodb:[a-z0-9\-]+:\d{12}:table/[A-Za-z0-9_.\-]{3,255}"


class CacheSettings(msgspec.Struct, frozen=True):
    memory_bytes: int = DEFAULT_MEMORY_BYTES  # 0 turns the in-process level off
    table: str | None = None  # DynamoDB table name or ARN: the shared tier
    redis_url: str | None = None  # redis:// or rediss:// URL: the shared tier instead
    ttl_seconds: int = DEFAULT_TTL_SECONDS
    timeout_ms: int = DEFAULT_TIMEOUT_MS  # the most a shared-tier call may add to a request
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES  # larger answers are not cached
    write: str = "background"  # how shared-tier writes run: see README "Cache tier"
    metrics_interval_seconds: float = 1.0  # 0 flushes cache metrics after every request
    region: str = ""  # the DynamoDB table's region (AWS_REGION, or the table ARN's)
    endpoint_url: str = ""  # DynamoDB endpoint override (AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL)

    @property
    def shared(self) -> str | None:
        """Which shared tier is configured: "dynamodb", "redis", or None."""
        if self.table:
            return "dynamodb"
        if self.redis_url:
            return "redis"
        return None

    @property
    def enabled(self) -> bool:
        return self.memory_bytes > 0 or self.shared is not None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CacheSettings:
        env = os.environ if env is None else env
        table = env.get("PREHEAT_CACHE_TABLE", "").strip() or None
        redis_url = env.get("PREHEAT_CACHE_REDIS_URL", "").strip() or None
        if table and redis_url:
            raise ConfigError(
                "PREHEAT_CACHE_TABLE and PREHEAT_CACHE_REDIS_URL are both set: the shared cache tier is "
                "DynamoDB or Redis, not both; unset one of them"
            )
        if table and not (re.fullmatch(_TABLE_NAME, table) or re.fullmatch(_TABLE_ARN, table)):
            raise ConfigError(
                f"PREHEAT_CACHE_TABLE must be a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -) or "
                f"table ARN, got {table!r}"
            )
        if redis_url:
            check_redis_url(redis_url)
        region = (env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "").strip()
        if table and table.startswith("arn:"):
            region = table.split(":")[3]
        if table and not region:
            raise ConfigError(
                "PREHEAT_CACHE_TABLE is set but AWS_REGION is not: set AWS_REGION (Lambda sets it) or "
                "give the table's ARN"
            )
        endpoint_url = (
            (env.get("AWS_ENDPOINT_URL_DYNAMODB") or env.get("AWS_ENDPOINT_URL") or "").strip().rstrip("/")
        )
        if table and endpoint_url and urlsplit(endpoint_url).scheme not in ("http", "https"):
            raise ConfigError(
                f"AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL must be an http(s) URL, got {endpoint_url!r}"
            )
        max_value = envvars.integer(
            env,
            "PREHEAT_CACHE_MAX_VALUE_BYTES",
            DEFAULT_MAX_VALUE_BYTES,
            minimum=1024,
            maximum=DYNAMODB_MAX_VALUE_BYTES if table else 512 * MiB,
        )
        # Lambda freezes the process as soon as the response is sent, so a background write may
        # not run until the next invocation, or ever: write before answering there (bounded by the
        # timeout); a long-lived server (SageMaker, uvicorn) writes after answering.
        on_lambda = bool(env.get("AWS_LAMBDA_FUNCTION_NAME"))
        write = env.get("PREHEAT_CACHE_WRITE", "").strip().lower() or ("sync" if on_lambda else "background")
        if write not in WRITE_MODES:
            raise ConfigError(
                f"PREHEAT_CACHE_WRITE must be one of {', '.join(WRITE_MODES)}, got {write!r}: fix it or "
                "unset it (default: sync on Lambda, background elsewhere)"
            )
        return cls(
            memory_bytes=envvars.integer(env, "PREHEAT_CACHE_MEMORY_BYTES", DEFAULT_MEMORY_BYTES, minimum=0),
            table=table,
            redis_url=redis_url,
            ttl_seconds=envvars.integer(
                env, "PREHEAT_CACHE_TTL_SECONDS", DEFAULT_TTL_SECONDS, minimum=1, maximum=366 * 24 * 3600
            ),
            timeout_ms=envvars.integer(
                env, "PREHEAT_CACHE_TIMEOUT_MS", DEFAULT_TIMEOUT_MS, minimum=1, maximum=10_000
            ),
            max_value_bytes=max_value,
            write=write,
            metrics_interval_seconds=envvars.integer(
                env, "PREHEAT_CACHE_METRICS_INTERVAL_MS", 1000, minimum=0, maximum=60_000
            )
            / 1000,
            region=region,
            endpoint_url=endpoint_url,
        )


def check_redis_url(url: str) -> None:
    """redis://[[user]:password@]host[:port][/db] or rediss:// (TLS, as ElastiCache in-transit encryption)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"PREHEAT_CACHE_REDIS_URL is not a valid URL ({exc}): {_redact(url)!r}") from None
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ConfigError(
            "PREHEAT_CACHE_REDIS_URL must look like redis://host:6379/0 or rediss://host:6379 (TLS), "
            f"got {_redact(url)!r}"
        )
    db = parts.path.strip("/")
    if db and not db.isdigit():
        raise ConfigError(f"PREHEAT_CACHE_REDIS_URL: the database after '/' must be a number, got {db!r}")
    if port == 0:
        raise ConfigError("PREHEAT_CACHE_REDIS_URL: port 0 is not a port")


def _redact(url: str) -> str:
    """Never echo a password into logs or error messages."""
    return re.sub(r"//[^@/]*@", "//***@", url)
