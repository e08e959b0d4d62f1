"""The config's shape: one frozen dataclass per section of the `preheat` context object, with defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from functions.sagemaker.endpoint import EndpointConfig
from layers import paths as build_paths

ROOT = Path(__file__).resolve().parents[2]
CONTEXT_KEY = "preheat"

Architecture = Literal["x86_64", "arm64"]
WarmStart = Literal["provisioned", "snapstart", "none"]
Package = Literal["zip", "image"]
UrlAuth = Literal["AWS_IAM", "NONE"]
DeployTarget = Literal["aws", "moto"]  # where the stack is deployed: AWS, or moto for the smoke test


@dataclass(frozen=True)
class ScheduledCapacity:
    """An Application Auto Scaling scheduled action: from `schedule` on, capacity stays in [min, max]."""

    name: str
    schedule: str  # cron(...), rate(...) or at(...)
    min: int
    max: int
    timezone: str | None = None


@dataclass(frozen=True)
class Provisioned:
    """Provisioned concurrency on the `live` alias, scaled by Application Auto Scaling."""

    min: int = 1
    max: int = 10
    # Target tracking on the *Maximum* of ProvisionedConcurrencyUtilization: the Average hides bursts
    # within a minute, so AWS recommends Maximum for latency-sensitive functions.
    utilization_target: float = 0.7
    schedules: tuple[ScheduledCapacity, ...] = ()


@dataclass(frozen=True)
class RuntimeSettings:
    """What the inference runtime reads from its environment (functions/inference/settings.py)."""

    threads: int | None = None  # None: one per vCPU of the memory size, the runtime's own default
    batch_size: int = 32
    max_inputs: int = 2048
    truncate: bool = True
    base_path: str = ""
    warmup_max_hold_ms: int = 5000


@dataclass(frozen=True)
class LambdaConfig:
    architecture: Architecture = "x86_64"
    memory_mb: int = 2048
    timeout_seconds: int = 30
    reserved_concurrency: int | None = None
    package: Package = "zip"
    warm_start: WarmStart = "provisioned"
    provisioned: Provisioned = field(default_factory=Provisioned)
    url: bool = True
    url_auth: UrlAuth = "AWS_IAM"
    log_retention_days: int = 30
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)


@dataclass(frozen=True)
class CacheConfig:
    memory_bytes: int = 64 * 1024 * 1024  # the in-process LRU (0 = off)
    table: bool = True  # a shared DynamoDB tier
    ttl_seconds: int = 7 * 24 * 3600
    timeout_ms: int = 50


@dataclass(frozen=True)
class SageMakerConfig:
    enabled: bool = True
    memory_mb: int = 3072
    max_concurrency: int = 10
    provisioned_concurrency: int = 1  # 0: none (and no autoscaling)
    autoscale_max: int = 5
    utilization_target: float = 0.7
    # Defaults follow the model (preheat.model): preheat-<model>, build/sagemaker/model-<model>.tar.gz.
    endpoint_name: str = "preheat-" + build_paths.DEFAULT_MODEL_NAME
    image_uri: str | None = None  # a prebuilt image instead of building build/sagemaker/context
    context_dir: Path = ROOT / "build" / "sagemaker" / "context"
    model_data: Path = build_paths.DEFAULT_MODEL_DATA

    def description(self, environment: Mapping[str, str]) -> EndpointConfig:
        """The endpoint as functions/sagemaker/endpoint.py describes it: the one description the CDK
        construct and `preheat deploy sagemaker` (the SageMaker SDK) both deploy."""
        return EndpointConfig(
            name=self.endpoint_name,
            memory_mb=self.memory_mb,
            max_concurrency=self.max_concurrency,
            provisioned_concurrency=self.provisioned_concurrency or None,
            environment=dict(environment),
        ).validate()


@dataclass(frozen=True)
class WarmerConfig:
    enabled: bool = True
    schedule: str = "rate(5 minutes)"
    concurrency: int = 2  # instances to keep warm with parallel pings
    hold_ms: int = 100


PcMode = Literal["auto", "direct", "scheduled", "off"]


@dataclass(frozen=True)
class ControllerConfig:
    enabled: bool = True
    schedule: str = "rate(1 minute)"
    policy: str = "preheat"  # a policy of warmers/policies (not `oracle`, which needs the future)
    # How the controller sets Lambda provisioned concurrency. auto: `scheduled` (Application Auto
    # Scaling scheduled actions on the target the stack registers, so AAS stays the one writer of the
    # alias's capacity) when lambda.warmStart is provisioned, else `off`.
    pc_mode: PcMode = "auto"
    max_concurrency: int | None = None  # never more capacity or pings; default lambda.provisioned.max


@dataclass(frozen=True)
class AlarmsConfig:
    cold_start_rate_percent: float = 5.0
    warm_p99_ms: float = 100.0
    cold_p99_ms: float = 3000.0
    evaluation_periods: int = 3
    topic_arn: str | None = None


@dataclass(frozen=True)
class DashboardConfig:
    name: str = "preheat"
    period_seconds: int = 60
    cache_levels: tuple[str, ...] = ("memory", "dynamodb", "redis")
    alarms: AlarmsConfig = field(default_factory=AlarmsConfig)


@dataclass(frozen=True)
class LayerPaths:
    model: Path = build_paths.DEFAULT_MODEL_LAYER  # by default, the layer of preheat.model
    deps_root: Path = ROOT / "build" / "layers"  # deps-<architecture>/ lives here

    def deps(self, architecture: Architecture) -> Path:
        return self.deps_root / f"deps-{architecture}"


@dataclass(frozen=True)
class PreheatConfig:
    stack_name: str = "Preheat"
    service: str = "preheat"
    namespace: str = "Preheat"
    # "moto": the same stacks without what moto's CloudFormation cannot create (Docker image assets,
    # the alias, the Function URL, Application Auto Scaling, SnapStart): for the local deploy smoke test.
    target: DeployTarget = "aws"
    account: str | None = None
    region: str | None = None
    # The model served: a directory under models_dir, as `preheat build [--model SPEC] --name NAME` writes it.
    model: str = build_paths.DEFAULT_MODEL_NAME
    models_dir: Path = build_paths.MODELS
    layers: LayerPaths = field(default_factory=LayerPaths)
    lambda_: LambdaConfig = field(default_factory=LambdaConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    sagemaker: SageMakerConfig = field(default_factory=SageMakerConfig)
    warmer: WarmerConfig = field(default_factory=WarmerConfig)
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)

    @property
    def moto(self) -> bool:
        return self.target == "moto"

    @property
    def model_dir(self) -> Path:
        return self.models_dir / self.model

    @classmethod
    def from_context(cls, context: Mapping[str, Any], *, root: Path = ROOT) -> PreheatConfig:
        """`context`: the app's context. Reads `preheat` (an object) then every `preheat:a.b.c` override."""
        # Imported here: reading needs the section parsers, which build these classes.
        from infra.config.context import read_context

        return read_context(context, root=root)
