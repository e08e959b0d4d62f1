"""The one typed description of a SageMaker Serverless endpoint.

The CDK construct (infra/), `preheat deploy sagemaker` (the SageMaker Python SDK) and the local twin
all build the model, the endpoint config and the endpoint from a `EndpointConfig`, so they cannot
drift. `EndpointConfig.from_resources` reads one back from what was deployed: SageMaker's
DescribeModel / DescribeEndpointConfig answers and CloudFormation's AWS::SageMaker::Model /
AWS::SageMaker::EndpointConfig properties use the same keys, so one reader serves a test that
compares the two paths.

Standard library only: infra and scripts import this (imports flow scripts, infra -> functions).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from functions.errors import ConfigError

# SageMaker Serverless Inference's limits.
MEMORY_SIZES_MB = (1024, 2048, 3072, 4096, 5120, 6144)
MAX_CONCURRENCY = 200
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_ENV_KEY = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,1023}$")


@dataclass(frozen=True)
class EndpointConfig:
    """A model served by a serverless endpoint with one production variant.

    `name` names the endpoint and its endpoint config (as the SageMaker SDK does); the model is
    `<name>-model`. `environment` is the container's environment (PREHEAT_* settings)."""

    name: str = "preheat-inference"
    memory_mb: int = 2048
    max_concurrency: int = 5
    provisioned_concurrency: int | None = None
    variant_name: str = "AllTraffic"
    environment: Mapping[str, str] = field(default_factory=dict)

    @property
    def model_name(self) -> str:
        return f"{self.name}-model"

    @property
    def endpoint_config_name(self) -> str:
        return self.name

    def validate(self) -> EndpointConfig:
        """Fails on the first bad field, naming it and what SageMaker accepts."""
        if not _NAME.match(self.name) or len(self.model_name) > 63:
            raise ConfigError(
                f"sagemaker.name must be 1-57 letters, digits or '-' (not first or last), got {self.name!r}"
            )
        if not _NAME.match(self.variant_name):
            raise ConfigError(f"sagemaker.variant_name must be 1-63 letters, digits or '-', got {self.variant_name!r}")
        if self.memory_mb not in MEMORY_SIZES_MB:
            raise ConfigError(
                f"sagemaker.memory_mb must be one of {', '.join(map(str, MEMORY_SIZES_MB))}, got {self.memory_mb}"
            )
        if not 1 <= self.max_concurrency <= MAX_CONCURRENCY:
            raise ConfigError(
                f"sagemaker.max_concurrency must be between 1 and {MAX_CONCURRENCY}, got {self.max_concurrency}"
            )
        pc = self.provisioned_concurrency
        if pc is not None and not 1 <= pc <= self.max_concurrency:
            raise ConfigError(
                f"sagemaker.provisioned_concurrency must be between 1 and max_concurrency ({self.max_concurrency}), "
                f"or unset for none; got {pc}"
            )
        if len(self.environment) > 100:
            raise ConfigError(f"sagemaker.environment has {len(self.environment)} entries; SageMaker allows 100")
        for key, value in self.environment.items():
            if not _ENV_KEY.match(key):
                raise ConfigError(f"sagemaker.environment: {key!r} is not a valid environment variable name")
            if not isinstance(value, str) or len(value) > 1024:
                raise ConfigError(f"sagemaker.environment[{key!r}] must be a string of at most 1024 characters")
        return self

    # -- the resources, in SageMaker's (and CloudFormation's) shapes ------------------------------

    def serverless_config(self) -> dict[str, int]:
        config = {"MemorySizeInMB": self.memory_mb, "MaxConcurrency": self.max_concurrency}
        if self.provisioned_concurrency is not None:
            config["ProvisionedConcurrency"] = self.provisioned_concurrency
        return config

    def primary_container(self, image: str, model_data_url: str | None = None) -> dict[str, Any]:
        container: dict[str, Any] = {"Image": image, "Environment": dict(self.environment)}
        if model_data_url:
            container["ModelDataUrl"] = model_data_url
        return container

    def production_variant(self) -> dict[str, Any]:
        return {
            "VariantName": self.variant_name,
            "ModelName": self.model_name,
            "ServerlessConfig": self.serverless_config(),
        }

    def create_model_request(self, image: str, role_arn: str, model_data_url: str | None = None) -> dict[str, Any]:
        """Keyword arguments of boto3's create_model."""
        return {
            "ModelName": self.model_name,
            "ExecutionRoleArn": role_arn,
            "PrimaryContainer": self.primary_container(image, model_data_url),
        }

    def create_endpoint_config_request(self) -> dict[str, Any]:
        return {"EndpointConfigName": self.endpoint_config_name, "ProductionVariants": [self.production_variant()]}

    def create_endpoint_request(self) -> dict[str, Any]:
        return {"EndpointName": self.name, "EndpointConfigName": self.endpoint_config_name}

    # -- reading a deployed one back --------------------------------------------------------------

    @classmethod
    def from_resources(
        cls, name: str, model: Mapping[str, Any], endpoint_config: Mapping[str, Any]
    ) -> EndpointConfig:
        """The description that a model and an endpoint config (DescribeModel / DescribeEndpointConfig
        output, or CloudFormation properties) amount to. `name` is the endpoint's name."""
        variants = list(endpoint_config.get("ProductionVariants") or [])
        if len(variants) != 1:
            raise ConfigError(f"endpoint {name!r}: expected one production variant, found {len(variants)}")
        variant = variants[0]
        serverless = variant.get("ServerlessConfig")
        if not serverless:
            raise ConfigError(f"endpoint {name!r}: variant {variant.get('VariantName')!r} is not serverless")
        container = model.get("PrimaryContainer") or {}
        provisioned = serverless.get("ProvisionedConcurrency")
        return cls(
            name=name,
            memory_mb=int(serverless["MemorySizeInMB"]),
            max_concurrency=int(serverless["MaxConcurrency"]),
            provisioned_concurrency=int(provisioned) if provisioned is not None else None,
            variant_name=str(variant["VariantName"]),
            environment={str(k): str(v) for k, v in (container.get("Environment") or {}).items()},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "memory_mb": self.memory_mb, "max_concurrency": self.max_concurrency,
            "provisioned_concurrency": self.provisioned_concurrency, "variant_name": self.variant_name,
            "environment": dict(self.environment),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "sagemaker") -> EndpointConfig:
        known = {"name", "memory_mb", "max_concurrency", "provisioned_concurrency", "variant_name", "environment"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        values: dict[str, Any] = dict(data)
        for key in ("memory_mb", "max_concurrency", "provisioned_concurrency"):
            raw = values.get(key)
            if raw is not None and (isinstance(raw, bool) or not isinstance(raw, int)):
                raise ConfigError(f"{where}.{key} must be an integer, got {raw!r}")
        env = values.get("environment", {})
        if not isinstance(env, Mapping):
            raise ConfigError(f"{where}.environment must be an object, got {type(env).__name__}")
        values["environment"] = {str(k): str(v) for k, v in env.items()}
        try:
            return cls(**values).validate()
        except ConfigError as exc:
            if where == "sagemaker":
                raise
            raise ConfigError(f"{where}: {exc}") from None
