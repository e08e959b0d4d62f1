"""One typed, frozen config for the whole CDK app, read from `cdk.json` context.

Config flows one way: the `preheat` object in cdk.json's context (or `-c preheat:KEY.PATH=VALUE`
on the command line) -> `PreheatConfig` -> constructs -> the functions' environment variables -> the
runtime's Settings. Every value is checked here, at synth, and a bad one raises ConfigError naming its
key (`preheat.lambda.memoryMb`) and what would be valid.

`model` names the model directory the stack serves (build/models/NAME, as `preheat build --name NAME`
writes it); the build outputs made from it default to that model's own paths in the contract of
layers/paths.py (build/layers/model-NAME, build/sagemaker/model-NAME.tar.gz, ...), and the checks that
they hold that model are in infra/built_model.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

# The one ConfigError (a context value is missing, has the wrong type or is out of range; the message
# names the key), shared with the functions' and warmers' settings.
from functions.errors import ConfigError as ConfigError
from functions.sagemaker.endpoint import ServerlessEndpoint as EndpointDescription
from layers import paths as build_paths

ROOT = Path(__file__).resolve().parent.parent
CONTEXT_KEY = "preheat"

Architecture = Literal["x86_64", "arm64"]
WarmStart = Literal["provisioned", "snapstart", "none"]
Package = Literal["zip", "image"]
UrlAuth = Literal["AWS_IAM", "NONE"]
Target = Literal["aws", "moto"]

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,62}$")
# 48 characters leave room for the endpoint config's "-<hash>" suffix within SageMaker's 63.
_SAGEMAKER_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,46}[a-z0-9])?$")
_SCHEDULE = re.compile(r"^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(.+\))$")
_SCALING_SCHEDULE = re.compile(r"^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(.+\)|at\(.+\))$")
_NAMESPACE = re.compile(r"^[A-Za-z0-9._/#:-]{1,255}$")
_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SAGEMAKER_MEMORY = (1024, 2048, 3072, 4096, 5120, 6144)


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
class Runtime:
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
    runtime: Runtime = field(default_factory=Runtime)


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

    def description(self, environment: Mapping[str, str]) -> EndpointDescription:
        """The endpoint as functions/sagemaker/endpoint.py describes it: the one description the CDK
        construct and `preheat deploy sagemaker` (the SageMaker SDK) both deploy."""
        return EndpointDescription(
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
    target: Target = "aws"
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
        raw = context.get(CONTEXT_KEY, {})
        if isinstance(raw, str):  # `-c preheat='{"...": ...}'`
            raw = _json(raw, CONTEXT_KEY)
        if not isinstance(raw, Mapping):
            raise ConfigError(f"context key '{CONTEXT_KEY}' must be an object, got {type(raw).__name__}")
        merged: dict[str, Any] = json.loads(json.dumps(raw))
        for key, value in context.items():
            if key.startswith(CONTEXT_KEY + ":"):
                _set_path(merged, key[len(CONTEXT_KEY) + 1 :], value, key)
        return _parse(_Node(merged, CONTEXT_KEY), root)


# The files the CDK CLI reads context from, in a project directory (and ~/.cdk.json for the user's).
PROJECT_CONFIG = "cdk.json"
PROJECT_CONTEXT = "cdk.context.json"
USER_CONFIG = Path.home() / ".cdk.json"


def cli_context(
    root: Path = ROOT, overrides: Iterable[str] = (), *, user_config: Path | None = USER_CONFIG
) -> dict[str, Any]:
    """The context the CDK CLI hands `python -m infra.app` when run in `root` with `-c KEY=VALUE`
    overrides: the CLI's precedence, lowest first, is ~/.cdk.json's `context`, cdk.context.json,
    cdk.json's `context`, then the command line; objects merge key by key, and -c values stay
    strings as the CLI passes them. For programs that need the app's config without running the CDK
    (the local twin): `load()` then parses it exactly as the app does."""
    bags: list[Mapping[str, Any]] = []
    if user_config is not None:
        bags.append(_file_context(user_config, "context"))
    bags.append(_file_context(root / PROJECT_CONTEXT, None))
    bags.append(_file_context(root / PROJECT_CONFIG, "context"))
    command_line: dict[str, Any] = {}
    for assignment in overrides:
        key, sep, value = assignment.partition("=")
        if not sep or not key:
            raise ConfigError(
                f"context override {assignment!r} must look like KEY=VALUE (e.g. preheat:lambda.memoryMb=3008)"
            )
        command_line[key] = value
    bags.append(command_line)
    merged: dict[str, Any] = {}
    for bag in bags:
        merged = _merge(merged, bag)
    return merged


def load(
    root: Path = ROOT, overrides: Iterable[str] = (), *, user_config: Path | None = USER_CONFIG
) -> PreheatConfig:
    """The PreheatConfig `cdk synth -c ...` in `root` would build (see cli_context)."""
    return PreheatConfig.from_context(cli_context(root, overrides, user_config=user_config), root=root)


def _file_context(path: Path, key: str | None) -> Mapping[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from None
    value = data.get(key, {}) if key is not None and isinstance(data, Mapping) else data
    if not isinstance(value, Mapping):
        where = f"{path}'s '{key}'" if key else str(path)
        raise ConfigError(f"{where} must be an object, got {type(value).__name__}")
    return value


def _merge(low: Mapping[str, Any], high: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(low)
    for key, value in high.items():
        below = merged.get(key)
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            merged[key] = _merge(below, value)
        else:
            merged[key] = value
    return merged


def _json(text: str, key: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"context key '{key}' is not valid JSON: {exc}") from None


def _set_path(target: dict[str, Any], path: str, value: Any, key: str) -> None:
    parts = path.split(".")
    if not all(parts):
        raise ConfigError(f"context key '{key}' must look like 'preheat:lambda.memoryMb'")
    node = target
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"context key '{key}': '{part}' is not an object")
        node = child
    node[parts[-1]] = value


T = TypeVar("T")


class _Node:
    """A context object with the key path that leads to it, so errors can name the key."""

    def __init__(self, data: Mapping[str, Any], path: str) -> None:
        self.data = data
        self.path = path
        self._read: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}"

    def _get(self, name: str) -> Any:
        self._read.add(name)
        return self.data.get(name)

    def node(self, name: str) -> _Node:
        value = self._get(name)
        if value is None:
            return _Node({}, self.key(name))
        if isinstance(value, str):
            value = _json(value, self.key(name))
        if not isinstance(value, Mapping):
            raise ConfigError(f"{self.key(name)} must be an object, got {value!r}")
        return _Node(value, self.key(name))

    def int_(self, name: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
        value = self.optional_int(name, minimum=minimum, maximum=maximum)
        return default if value is None else value

    def optional_int(self, name: str, *, minimum: int, maximum: int | None = None) -> int | None:
        raw = self._get(name)
        if raw is None:
            return None
        value = raw
        if isinstance(raw, str) and re.fullmatch(r"-?\d+", raw.strip()):
            value = int(raw)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{self.key(name)} must be an integer, got {raw!r}")
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
            raise ConfigError(f"{self.key(name)} must be {bounds}, got {value}")
        return value

    def float_(self, name: str, default: float, *, minimum: float, maximum: float) -> float:
        raw = self._get(name)
        if raw is None:
            return default
        try:
            value = float(raw) if not isinstance(raw, bool) else None
        except (TypeError, ValueError):
            value = None
        if value is None:
            raise ConfigError(f"{self.key(name)} must be a number, got {raw!r}")
        if not minimum <= value <= maximum:
            raise ConfigError(f"{self.key(name)} must be between {minimum} and {maximum}, got {value}")
        return value

    def bool_(self, name: str, default: bool) -> bool:
        raw = self._get(name)
        if raw is None:
            return default
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in {"true", "false"}:
            return raw.strip().lower() == "true"
        raise ConfigError(f"{self.key(name)} must be true or false, got {raw!r}")

    def str_(self, name: str, default: str, *, pattern: re.Pattern[str] | None = None, hint: str = "") -> str:
        value = self.optional_str(name, pattern=pattern, hint=hint)
        return default if value is None else value

    def optional_str(
        self, name: str, *, pattern: re.Pattern[str] | None = None, hint: str = ""
    ) -> str | None:
        raw = self._get(name)
        if raw is None:
            return None
        if not isinstance(raw, str):
            raise ConfigError(f"{self.key(name)} must be a string, got {raw!r}")
        if pattern is not None and not pattern.fullmatch(raw):
            raise ConfigError(f"{self.key(name)} is not valid{': ' + hint if hint else ''}; got {raw!r}")
        return raw

    def choice(self, name: str, default: T, choices: tuple[T, ...]) -> T:
        raw = self._get(name)
        if raw is None:
            return default
        if raw not in choices:
            raise ConfigError(f"{self.key(name)} must be one of {', '.join(map(str, choices))}; got {raw!r}")
        return cast(T, raw)

    def path_(self, name: str, default: Path, root: Path) -> Path:
        raw = self.optional_str(name)
        if raw is None:
            return default
        path = Path(raw)
        return path if path.is_absolute() else root / path

    def list_(self, name: str) -> list[Any] | None:
        raw = self._get(name)
        if raw is None:
            return None
        if isinstance(raw, str):
            raw = _json(raw, self.key(name))
        if not isinstance(raw, list):
            raise ConfigError(f"{self.key(name)} must be a list, got {raw!r}")
        return raw

    def done(self) -> None:
        """Unknown keys are typos more often than not: refuse them, naming the valid ones."""
        unknown = sorted(set(self.data) - self._read)
        if unknown:
            valid = ", ".join(sorted(self._read))
            raise ConfigError(f"{self.key(unknown[0])} is not a known setting (known here: {valid})")


def _parse(top: _Node, root: Path) -> PreheatConfig:
    d = PreheatConfig()
    model = top.str_(
        "model",
        d.model,
        pattern=_MODEL,
        hint="the name of a model directory under preheat.modelsDir (build/models), as `preheat build --name NAME` writes it",
    )
    config = PreheatConfig(
        stack_name=top.str_("stackName", d.stack_name, pattern=_NAME, hint="letters, digits and '-'"),
        service=top.str_("service", d.service, pattern=_NAME, hint="letters, digits and '-'"),
        namespace=top.str_("namespace", d.namespace, pattern=_NAMESPACE, hint="a CloudWatch namespace"),
        target=top.choice("target", d.target, ("aws", "moto")),
        account=top.optional_str("account", pattern=re.compile(r"^\d{12}$"), hint="12 digits"),
        region=top.optional_str(
            "region", pattern=re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$"), hint="e.g. us-east-1"
        ),
        model=model,
        models_dir=top.path_("modelsDir", d.models_dir, root),
        layers=_layers(top.node("layers"), root, model),
        lambda_=_lambda(top.node("lambda")),
        cache=_cache(top.node("cache")),
        sagemaker=_sagemaker(top.node("sagemaker"), root, model),
        warmer=_warmer(top.node("warmer")),
        controller=_controller(top.node("controller")),
        dashboard=_dashboard(top.node("dashboard")),
    )
    top.done()
    return _check(config)


def _layers(n: _Node, root: Path, model: str) -> LayerPaths:
    d = LayerPaths()
    layers = LayerPaths(
        model=n.path_("model", build_paths.model_layer(model), root),
        deps_root=n.path_("depsRoot", d.deps_root, root),
    )
    n.done()
    return layers


def _lambda(n: _Node) -> LambdaConfig:
    d = LambdaConfig()
    rt = n.node("runtime")
    base_path = rt.str_(
        "basePath",
        "",
        pattern=re.compile(r"^(/[A-Za-z0-9._~-]+)*$"),
        hint="'' or like '/prod', no trailing '/'",
    )
    runtime = Runtime(
        threads=rt.optional_int("threads", minimum=1, maximum=64),
        batch_size=rt.int_("batchSize", 32, minimum=1, maximum=4096),
        max_inputs=rt.int_("maxInputs", 2048, minimum=1, maximum=100_000),
        truncate=rt.bool_("truncate", True),
        base_path=base_path,
        warmup_max_hold_ms=rt.int_("warmupMaxHoldMs", 5000, minimum=0, maximum=60_000),
    )
    rt.done()
    pc = n.node("provisioned")
    schedules = []
    for i, item in enumerate(pc.list_("schedules") or []):
        s = _Node(item if isinstance(item, Mapping) else {}, f"{pc.key('schedules')}[{i}]")
        if not isinstance(item, Mapping):
            raise ConfigError(f"{s.path} must be an object with name, schedule, min, max")
        name = s.optional_str(
            "name", pattern=re.compile(r"^[A-Za-z0-9-]{1,64}$"), hint="letters, digits, '-'"
        )
        schedule = s.optional_str(
            "schedule", pattern=_SCALING_SCHEDULE, hint="cron(...), rate(...) or at(...)"
        )
        if name is None or schedule is None:
            raise ConfigError(f"{s.path} needs 'name' and 'schedule' (e.g. cron(0 8 ? * MON-FRI *))")
        low = s.int_("min", 0, minimum=0, maximum=10_000)
        high = s.int_("max", max(low, 1), minimum=1, maximum=10_000)
        if high < low:
            raise ConfigError(f"{s.key('max')} ({high}) must be >= {s.key('min')} ({low})")
        schedules.append(ScheduledCapacity(name, schedule, low, high, s.optional_str("timezone")))
        s.done()
    low = pc.int_("min", d.provisioned.min, minimum=0, maximum=10_000)
    high = pc.int_("max", max(d.provisioned.max, low), minimum=1, maximum=10_000)
    if high < low:
        raise ConfigError(f"{pc.key('max')} ({high}) must be >= {pc.key('min')} ({low})")
    provisioned = Provisioned(
        min=low,
        max=high,
        utilization_target=pc.float_(
            "utilizationTarget", d.provisioned.utilization_target, minimum=0.1, maximum=0.9
        ),
        schedules=tuple(schedules),
    )
    pc.done()
    config = LambdaConfig(
        architecture=n.choice("architecture", d.architecture, ("x86_64", "arm64")),
        memory_mb=n.int_("memoryMb", d.memory_mb, minimum=128, maximum=10_240),
        timeout_seconds=n.int_("timeoutSeconds", d.timeout_seconds, minimum=1, maximum=900),
        reserved_concurrency=n.optional_int("reservedConcurrency", minimum=0, maximum=100_000),
        package=n.choice("package", d.package, ("zip", "image")),
        warm_start=n.choice("warmStart", d.warm_start, ("provisioned", "snapstart", "none")),
        provisioned=provisioned,
        url=n.bool_("url", d.url),
        url_auth=n.choice("urlAuth", d.url_auth, ("AWS_IAM", "NONE")),
        log_retention_days=n.choice(
            "logRetentionDays", d.log_retention_days, (1, 3, 5, 7, 14, 30, 60, 90, 180, 365, 731, 1827, 3653)
        ),
        runtime=runtime,
    )
    if config.warm_start == "snapstart" and config.package == "image":
        raise ConfigError(
            f"{n.key('warmStart')}: SnapStart needs {n.key('package')} 'zip' (not container images)"
        )
    if config.reserved_concurrency is not None and config.warm_start == "provisioned":
        if config.reserved_concurrency < provisioned.max:
            raise ConfigError(
                f"{n.key('reservedConcurrency')} ({config.reserved_concurrency}) must be >= "
                f"{pc.key('max')} ({provisioned.max}): provisioned instances count against it"
            )
    n.done()
    return config


def _cache(n: _Node) -> CacheConfig:
    d = CacheConfig()
    config = CacheConfig(
        memory_bytes=n.int_("memoryBytes", d.memory_bytes, minimum=0, maximum=8 * 1024**3),
        table=n.bool_("table", d.table),
        ttl_seconds=n.int_("ttlSeconds", d.ttl_seconds, minimum=1, maximum=365 * 24 * 3600),
        timeout_ms=n.int_("timeoutMs", d.timeout_ms, minimum=1, maximum=10_000),
    )
    n.done()
    return config


def endpoint_name_for(model: str) -> str:
    """The default SageMaker endpoint name for a model: preheat-<model>, as SageMaker spells names."""
    slug = re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-")
    return f"preheat-{slug}"[:48].rstrip("-")


def _sagemaker(n: _Node, root: Path, model: str) -> SageMakerConfig:
    d = SageMakerConfig()
    memory = n.int_("memoryMb", d.memory_mb, minimum=1024, maximum=6144)
    if memory not in _SAGEMAKER_MEMORY:
        raise ConfigError(
            f"{n.key('memoryMb')} must be one of {', '.join(map(str, _SAGEMAKER_MEMORY))}; got {memory}"
        )
    max_concurrency = n.int_("maxConcurrency", d.max_concurrency, minimum=1, maximum=200)
    provisioned = n.int_("provisionedConcurrency", d.provisioned_concurrency, minimum=0, maximum=200)
    if provisioned > max_concurrency:
        raise ConfigError(
            f"{n.key('provisionedConcurrency')} ({provisioned}) must be <= {n.key('maxConcurrency')} ({max_concurrency})"
        )
    autoscale_max = n.int_("autoscaleMax", max(d.autoscale_max, provisioned), minimum=1, maximum=200)
    if provisioned and not provisioned <= autoscale_max <= max_concurrency:
        raise ConfigError(
            f"{n.key('autoscaleMax')} ({autoscale_max}) must be between {n.key('provisionedConcurrency')} "
            f"({provisioned}) and {n.key('maxConcurrency')} ({max_concurrency})"
        )
    config = SageMakerConfig(
        enabled=n.bool_("enabled", d.enabled),
        memory_mb=memory,
        max_concurrency=max_concurrency,
        provisioned_concurrency=provisioned,
        autoscale_max=autoscale_max,
        utilization_target=n.float_("utilizationTarget", d.utilization_target, minimum=0.1, maximum=0.9),
        endpoint_name=n.str_(
            "endpointName",
            endpoint_name_for(model),
            pattern=_SAGEMAKER_NAME,
            hint="up to 48 lower-case letters, digits and '-'",
        ),
        image_uri=n.optional_str("imageUri"),
        context_dir=n.path_("contextDir", d.context_dir, root),
        model_data=n.path_("modelData", build_paths.sagemaker_model_data(model), root),
    )
    n.done()
    return config


def _warmer(n: _Node) -> WarmerConfig:
    d = WarmerConfig()
    config = WarmerConfig(
        enabled=n.bool_("enabled", d.enabled),
        schedule=n.str_("schedule", d.schedule, pattern=_SCHEDULE, hint="rate(5 minutes) or cron(...)"),
        concurrency=n.int_("concurrency", d.concurrency, minimum=1, maximum=1000),
        hold_ms=n.int_("holdMs", d.hold_ms, minimum=0, maximum=60_000),
    )
    n.done()
    return config


def _controller(n: _Node) -> ControllerConfig:
    d = ControllerConfig()
    policy = n.str_(
        "policy", d.policy, pattern=re.compile(r"^[a-z0-9-]+$"), hint="a policy name, e.g. preheat"
    )
    known = _policy_names()
    if policy == "oracle" or (known and policy not in known):
        live = ", ".join(p for p in known if p != "oracle") or "see warmers/policies"
        raise ConfigError(
            f"{n.key('policy')} must be one of {live} (the oracle cannot run live); got {policy!r}"
        )
    config = ControllerConfig(
        enabled=n.bool_("enabled", d.enabled),
        schedule=n.str_("schedule", d.schedule, pattern=_SCHEDULE, hint="rate(1 minute) or cron(...)"),
        policy=policy,
        pc_mode=n.choice("pcMode", d.pc_mode, ("auto", "direct", "scheduled", "off")),
        max_concurrency=n.optional_int("maxConcurrency", minimum=0, maximum=1000),
    )
    n.done()
    return config


def _policy_names() -> tuple[str, ...]:
    """The controller's policies, when the warmers package is here to say (it is, in the repository)."""
    try:
        from warmers.policies import POLICY_NAMES
    except ImportError:
        return ()
    return tuple(POLICY_NAMES)


def _dashboard(n: _Node) -> DashboardConfig:
    d = DashboardConfig()
    a = n.node("alarms")
    alarms = AlarmsConfig(
        cold_start_rate_percent=a.float_("coldStartRatePercent", 5.0, minimum=0.0, maximum=100.0),
        warm_p99_ms=a.float_("warmP99Ms", 100.0, minimum=1.0, maximum=900_000.0),
        cold_p99_ms=a.float_("coldP99Ms", 3000.0, minimum=1.0, maximum=900_000.0),
        evaluation_periods=a.int_("evaluationPeriods", 3, minimum=1, maximum=100),
        topic_arn=a.optional_str(
            "topicArn", pattern=re.compile(r"^arn:aws[a-z-]*:sns:.+"), hint="an SNS topic ARN"
        ),
    )
    a.done()
    levels = n.list_("cacheLevels")
    if levels is not None and not all(isinstance(x, str) and x for x in levels):
        raise ConfigError(f"{n.key('cacheLevels')} must be a list of non-empty strings, got {levels!r}")
    config = DashboardConfig(
        name=n.str_(
            "name", d.name, pattern=re.compile(r"^[A-Za-z0-9_-]{1,255}$"), hint="letters, digits, '-', '_'"
        ),
        period_seconds=n.choice("periodSeconds", d.period_seconds, (10, 30, 60, 300, 900, 3600)),
        cache_levels=d.cache_levels if levels is None else tuple(levels),
        alarms=alarms,
    )
    n.done()
    return config


def _check(config: PreheatConfig) -> PreheatConfig:
    """Rules that span sections; and the moto target, which drops what moto cannot create."""
    c = config.controller
    if c.pc_mode == "scheduled" and config.lambda_.warm_start != "provisioned":
        raise ConfigError(
            "preheat.controller.pcMode 'scheduled' needs preheat.lambda.warmStart 'provisioned' "
            "(the Application Auto Scaling target it schedules on)"
        )
    if c.pc_mode == "direct" and config.lambda_.warm_start == "provisioned":
        raise ConfigError(
            "preheat.controller.pcMode 'direct' would fight Application Auto Scaling, which owns the alias's "
            "provisioned concurrency when preheat.lambda.warmStart is 'provisioned': use 'scheduled' (or 'auto'), "
            "or warmStart 'none' to leave provisioned concurrency to the controller alone"
        )
    if c.pc_mode == "direct" and config.lambda_.warm_start == "snapstart":
        raise ConfigError(
            "preheat.controller.pcMode 'direct' cannot set provisioned concurrency on a SnapStart function: "
            "use 'off' or preheat.lambda.warmStart 'provisioned'"
        )
    if config.moto:
        # moto's CloudFormation cannot model Docker image assets, aliases, Function URLs, Application
        # Auto Scaling or SnapStart (see ../shared/notes/aws-local.md): deploy what it can.
        lam = replace(config.lambda_, package="zip", warm_start="none", url=False)
        return replace(config, lambda_=lam, controller=replace(c, pc_mode="off"))
    return config


def controller_pc_mode(config: PreheatConfig) -> Literal["direct", "scheduled", "off"]:
    mode = config.controller.pc_mode
    if mode == "auto":
        return "scheduled" if config.lambda_.warm_start == "provisioned" else "off"
    return mode


def build_layers_command(config: PreheatConfig) -> str:
    """The command that builds the layers and SageMaker artifacts of config's model, whatever cdk.json names."""
    command = "preheat build layers"
    if config.model != build_paths.DEFAULT_MODEL_NAME:
        command += f" -c preheat:model={config.model}"
    if config.models_dir.resolve() != build_paths.MODELS.resolve():
        command += f" -c preheat:modelsDir={config.models_dir}"
    return command


def require_layers(config: PreheatConfig) -> tuple[Path, Path]:
    """The model and deps layer directories, or a ConfigError that says how to build them."""
    model = config.layers.model
    deps = config.layers.deps(config.lambda_.architecture)
    missing = [
        f"{path} (needs {inner}/ inside)"
        for path, inner in ((model, "model"), (deps, "python"))
        if not (path / inner).is_dir()
    ]
    if missing:
        raise ConfigError(
            "Lambda layer directories are missing: "
            + "; ".join(missing)
            + f". Run `{build_layers_command(config)}` first, or point preheat.layers.model / "
            "preheat.layers.depsRoot at them."
        )
    return model, deps


def require_sagemaker(config: PreheatConfig, *, image: bool) -> Path:
    """The SageMaker build context (image=True) or model data, or a ConfigError that says what to do."""
    sm = config.sagemaker
    if image:
        if not (sm.context_dir / "Dockerfile").is_file():
            raise ConfigError(
                f"the SageMaker image build context {sm.context_dir} has no Dockerfile. Build it "
                "(`preheat build layers` writes build/sagemaker/context/), point preheat.sagemaker.contextDir at "
                "one, give a prebuilt image with preheat.sagemaker.imageUri, or turn SageMaker off with "
                "-c preheat:sagemaker.enabled=false"
            )
        return sm.context_dir
    if not sm.model_data.is_file():
        raise ConfigError(
            f"the SageMaker model data {sm.model_data} is missing. Build it (`{build_layers_command(config)}` "
            f"writes {sm.model_data.name}), point preheat.sagemaker.modelData at one, or turn SageMaker off "
            "with -c preheat:sagemaker.enabled=false"
        )
    return sm.model_data
