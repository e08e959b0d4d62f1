"""A SageMaker Serverless endpoint in the twin's config: what CDK or the SDK would create, plus where
its model is on this machine.

The twin creates each one in moto at start (CreateModel, CreateEndpointConfig, CreateEndpoint), from
the same `EndpointConfig` description the CDK construct and `preheat deploy sagemaker` use; from
then on it is an endpoint like any other created through the twin's AWS endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from functions.inference.errors import ConfigError
from functions.sagemaker.endpoint import EndpointConfig

# The image URI a config-defined endpoint registers in moto: the twin runs this repository's `serve`
# in its own Python environment instead (there is no Docker engine).
LOCAL_IMAGE = "preheat-sagemaker:local"


class EndpointConfigError(ValueError):
    """A config value is wrong; the message names the key."""


@dataclass(frozen=True)
class EndpointSpec:
    endpoint: EndpointConfig
    model_dir: Path  # served as a model baked into the image would be (PREHEAT_MODEL_DIR)
    keep_alive_s: float | None = None  # idle containers go after this long; None: the twin's keep-alive

    @property
    def name(self) -> str:
        return self.endpoint.name

    def registered(self) -> EndpointConfig:
        """The description as registered in moto: the model directory in the container's environment."""
        env = {**self.endpoint.environment, "PREHEAT_MODEL_DIR": str(self.model_dir.resolve())}
        return replace(self.endpoint, environment=env)

    def validate(self, where: str) -> None:
        try:
            self.endpoint.validate()
        except ConfigError as exc:
            raise EndpointConfigError(f"{where}: {exc}") from None
        if not (self.model_dir / "manifest.json").is_file():
            raise EndpointConfigError(
                f"{where}.model_dir {self.model_dir} has no manifest.json: build the model (`preheat build`)"
            )
        if self.keep_alive_s is not None and self.keep_alive_s < 0:
            raise EndpointConfigError(f"{where}.keep_alive_s must be >= 0, got {self.keep_alive_s}")

    def to_dict(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint.to_dict(), "model_dir": str(self.model_dir),
                "keep_alive_s": self.keep_alive_s}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> EndpointSpec:
        if not isinstance(data, Mapping):
            raise EndpointConfigError(f"{where} must be an object, got {type(data).__name__}")
        unknown = sorted(set(data) - {"endpoint", "model_dir", "keep_alive_s"})
        if unknown:
            raise EndpointConfigError(f"{where}: unknown key(s) {', '.join(unknown)} (known: endpoint, keep_alive_s, "
                                      "model_dir)")
        if "model_dir" not in data:
            raise EndpointConfigError(f"{where}.model_dir is required")
        keep = data.get("keep_alive_s")
        if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int | float)):
            raise EndpointConfigError(f"{where}.keep_alive_s must be a number, got {keep!r}")
        try:
            endpoint = EndpointConfig.from_dict(data.get("endpoint") or {}, f"{where}.endpoint")
        except (ConfigError, TypeError) as exc:
            raise EndpointConfigError(str(exc)) from None
        return cls(endpoint, Path(data["model_dir"]), float(keep) if keep is not None else None)
