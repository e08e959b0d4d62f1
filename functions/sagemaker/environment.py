"""What SageMaker's environment tells the container: read once by `serve`, before anything heavy.

SageMaker starts the container as `docker run IMAGE serve` and talks to it on port 8080 (or
SAGEMAKER_BIND_TO_PORT, set for inference pipelines and multi-container endpoints). It extracts
`model.tar.gz` into /opt/ml/model. The model server's workers and per-request timeout come from the
same variables SageMaker's own inference toolkits read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from functions import envvars

SAGEMAKER_MODEL_DIR = "/opt/ml/model"
SAGEMAKER_PORT = 8080
# SageMaker Serverless Inference takes request payloads up to 4 MB (real-time endpoints: 6 MB).
SERVERLESS_PAYLOAD_BYTES = 4 * 1024 * 1024
# SageMaker gives a container 60 s to answer an invocation.
INVOCATION_TIMEOUT_S = 60


@dataclass(frozen=True)
class ContainerSettings:
    host: str = "0.0.0.0"  # inside a container: SageMaker connects from outside its network namespace
    port: int = SAGEMAKER_PORT
    workers: int = 1
    timeout_s: float = INVOCATION_TIMEOUT_S
    defaults: Mapping[str, str] | None = None  # runtime settings (PREHEAT_*) the container defaults

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ContainerSettings:
        env = os.environ if env is None else env
        host = env.get("PREHEAT_BIND_HOST", "").strip() or "0.0.0.0"
        return cls(
            host=host,
            port=envvars.integer(env, "SAGEMAKER_BIND_TO_PORT", SAGEMAKER_PORT, minimum=1, maximum=65535),
            workers=envvars.integer(env, "SAGEMAKER_MODEL_SERVER_WORKERS", 1, minimum=1, maximum=64),
            timeout_s=float(
                envvars.integer(
                    env, "SAGEMAKER_MODEL_SERVER_TIMEOUT", INVOCATION_TIMEOUT_S, minimum=1, maximum=3600
                )
            ),
            defaults={
                "PREHEAT_MODEL_DIR": SAGEMAKER_MODEL_DIR,
                "PREHEAT_MAX_REQUEST_BYTES": str(SERVERLESS_PAYLOAD_BYTES),
            },
        )

    def apply_defaults(self, env: dict[str, str] | os._Environ[str]) -> None:
        """Fill in the runtime settings the container defaults (an explicit value always wins)."""
        for key, value in (self.defaults or {}).items():
            if not env.get(key, "").strip():
                env[key] = value
