"""The twin's one typed config: which functions it runs, how, and which schedules it fires.

A `TwinConfig` is built in code (scripts/twin/stack.py: `default_config`, the twin of the CDK stack) or read from JSON (`TwinConfig.from_dict`), and
handed to the server process as JSON. Bad values fail here, naming the key and what would be valid.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from layers import deps_layer, paths
from layers import model_layer as built_layers
from scripts.twin.sagemaker_config import EndpointConfigError, EndpointSpec

LATEST = "$LATEST"
PUBLISHED_VERSION = "1"  # the twin runs one code version; aliases point at it
URL_AUTH_TYPES = ("AWS_IAM", "NONE")
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TABLE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_UNIT_S = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}


class TwinConfigError(ValueError):
    """A config value is wrong; the message names the key."""


@dataclass(frozen=True)
class FunctionSpec:
    """One Lambda function, as the stack defines it.

    `layers` are directories as CDK zips them: a layer's `python/` goes on the path as /opt/python
    would, and environment values under `/opt/` resolve to the last layer holding that path (layers
    merge into /opt in order). `isolated` runs the bare interpreter (`-S`) with only the function
    code, its layers and the runtime (awslambdaric, boto3) on the path, as Lambda does; otherwise the
    twin's own environment's packages are importable too (for use before layers are built).
    """

    name: str
    handler: str
    code_dir: Path
    layers: tuple[Path, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    memory_mb: int = 2048
    timeout_s: float = 30.0
    reserved_concurrency: int | None = None
    provisioned: Mapping[str, int] = field(default_factory=dict)  # qualifier -> instances, at start
    aliases: tuple[str, ...] = ("live",)
    url_qualifier: str | None = "live"  # the Function URL's alias/version; None: no URL
    url_auth: str = "AWS_IAM"  # the Function URL's AuthType: AWS_IAM (SigV4, as CDK's default) or NONE
    isolated: bool = False
    keep_alive_s: float | None = None  # None: the twin's default

    def resolve_qualifier(self, qualifier: str | None) -> str | None:
        """The version a qualifier runs, or None if there is no such alias or version."""
        if qualifier in (None, "", LATEST):
            return LATEST
        if qualifier == PUBLISHED_VERSION or qualifier in self.aliases:
            return PUBLISHED_VERSION
        return None

    def validate(self, where: str) -> None:
        if not _NAME.match(self.name):
            raise TwinConfigError(f"{where}.name must be 1-64 letters, digits, '-' or '_', got {self.name!r}")
        module, _, func = self.handler.rpartition(".")
        if not module or not func:
            raise TwinConfigError(f"{where}.handler must be 'module.function', got {self.handler!r}")
        if not self.code_dir.is_dir():
            raise TwinConfigError(f"{where}.code_dir {self.code_dir} is not a directory")
        for i, layer in enumerate(self.layers):
            if not layer.is_dir():
                raise TwinConfigError(f"{where}.layers[{i}] {layer} is not a directory: build it or remove it")
        if not 128 <= self.memory_mb <= 10240:
            raise TwinConfigError(f"{where}.memory_mb must be between 128 and 10240, got {self.memory_mb}")
        if not 0 < self.timeout_s <= 900:
            raise TwinConfigError(f"{where}.timeout_s must be in (0, 900], got {self.timeout_s}")
        if self.reserved_concurrency is not None and self.reserved_concurrency < 0:
            raise TwinConfigError(f"{where}.reserved_concurrency must be >= 0, got {self.reserved_concurrency}")
        for alias in self.aliases:
            if not _NAME.match(alias) or alias.isdigit():
                raise TwinConfigError(f"{where}.aliases: {alias!r} is not a valid alias name")
        for qualifier, count in self.provisioned.items():
            if self.resolve_qualifier(qualifier) in (None, LATEST):
                raise TwinConfigError(
                    f"{where}.provisioned[{qualifier!r}]: provisioned concurrency needs an alias or version "
                    f"({', '.join((*self.aliases, PUBLISHED_VERSION))})"
                )
            if count < 0:
                raise TwinConfigError(f"{where}.provisioned[{qualifier!r}] must be >= 0, got {count}")
        if self.url_auth not in URL_AUTH_TYPES:
            raise TwinConfigError(f"{where}.url_auth must be one of {', '.join(URL_AUTH_TYPES)}, got {self.url_auth!r}")
        if self.url_qualifier is not None and self.resolve_qualifier(self.url_qualifier) is None:
            raise TwinConfigError(f"{where}.url_qualifier {self.url_qualifier!r} is not an alias or version")
        if self.keep_alive_s is not None and self.keep_alive_s < 0:
            raise TwinConfigError(f"{where}.keep_alive_s must be >= 0, got {self.keep_alive_s}")


@dataclass(frozen=True)
class Schedule:
    """An EventBridge rule with a rate() expression and one Lambda target."""

    name: str
    expression: str
    function: str
    qualifier: str | None = None
    input: Mapping[str, Any] | None = None  # None: EventBridge's "Scheduled Event" envelope

    @property
    def interval_s(self) -> float:
        match = _RATE.match(self.expression.strip())
        if not match:
            raise TwinConfigError(
                f"schedule {self.name!r}: expression must be rate(N minute[s]|hour[s]|day[s]), got "
                f"{self.expression!r} (cron() is not supported by the twin)"
            )
        count, unit = int(match.group(1)), match.group(2)
        singular = not unit.endswith("s")
        if count < 1 or (count == 1) != singular:
            raise TwinConfigError(
                f"schedule {self.name!r}: {self.expression!r}: use the singular unit for 1 and the plural otherwise"
            )
        return float(count * _UNIT_S[unit])


@dataclass(frozen=True)
class TwinConfig:
    functions: tuple[FunctionSpec, ...]
    schedules: tuple[Schedule, ...] = ()
    region: str = "us-east-1"
    account_id: str = "123456789012"
    host: str = "127.0.0.1"
    gateway_port: int = 0  # the Invoke API (and everything else, forwarded to moto); 0 = any free port
    keep_alive_s: float = 300.0  # idle instances are reaped after this long
    max_instances: int = 16  # the account's concurrency, kept small for a laptop
    init_timeout_s: float = 10.0  # Lambda's init phase limit for on-demand instances
    schedule_time_scale: float = 1.0  # > 1 fires rate() schedules that many times faster (tests, demos)
    state_dir: Path = Path(".preheat")
    endpoints: tuple[EndpointSpec, ...] = ()  # SageMaker Serverless endpoints (scripts/twin/sagemaker.py)
    # DynamoDB tables created in moto at start, with the cache tier's schema (partition key `key`,
    # TTL attribute `expires_at`): what PREHEAT_CACHE_TABLE names.
    tables: tuple[str, ...] = ()

    def function(self, name: str) -> FunctionSpec | None:
        return next((f for f in self.functions if f.name == name), None)

    def validate(self) -> TwinConfig:
        if not self.functions and not self.endpoints:
            raise TwinConfigError("functions: the twin needs at least one function or endpoint")
        seen: set[str] = set()
        for i, spec in enumerate(self.functions):
            spec.validate(f"functions[{i}]")
            if spec.name in seen:
                raise TwinConfigError(f"functions[{i}].name {spec.name!r} is used twice")
            seen.add(spec.name)
        for i, schedule in enumerate(self.schedules):
            target = self.function(schedule.function)
            if target is None:
                raise TwinConfigError(f"schedules[{i}].function {schedule.function!r} is not a twin function")
            if target.resolve_qualifier(schedule.qualifier) is None:
                raise TwinConfigError(f"schedules[{i}].qualifier {schedule.qualifier!r} is not an alias or version")
            _ = schedule.interval_s
        names: set[str] = set()
        for i, endpoint in enumerate(self.endpoints):
            try:
                endpoint.validate(f"endpoints[{i}]")
            except EndpointConfigError as exc:
                raise TwinConfigError(str(exc)) from None
            if endpoint.name in names:
                raise TwinConfigError(f"endpoints[{i}].endpoint.name {endpoint.name!r} is used twice")
            names.add(endpoint.name)
        for i, table in enumerate(self.tables):
            if not isinstance(table, str) or not _TABLE.match(table):
                raise TwinConfigError(f"tables[{i}] must be 3-255 letters, digits, '_', '-' or '.', got {table!r}")
        if len(set(self.tables)) != len(self.tables):
            raise TwinConfigError(f"tables: a table is listed twice in {list(self.tables)}")
        if self.max_instances < 1:
            raise TwinConfigError(f"max_instances must be >= 1, got {self.max_instances}")
        if self.keep_alive_s < 0:
            raise TwinConfigError(f"keep_alive_s must be >= 0, got {self.keep_alive_s}")
        if self.init_timeout_s <= 0:
            raise TwinConfigError(f"init_timeout_s must be > 0, got {self.init_timeout_s}")
        if self.schedule_time_scale <= 0:
            raise TwinConfigError(f"schedule_time_scale must be > 0, got {self.schedule_time_scale}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return _encode(self)  # type: ignore[no-any-return]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TwinConfig:
        functions = tuple(
            _decode(FunctionSpec, f, f"functions[{i}]") for i, f in enumerate(_list(data, "functions"))
        )
        schedules = tuple(
            _decode(Schedule, s, f"schedules[{i}]") for i, s in enumerate(_list(data, "schedules", required=False))
        )
        try:
            endpoints = tuple(
                EndpointSpec.from_dict(e, f"endpoints[{i}]") for i, e in enumerate(_list(data, "endpoints", required=False))
            )
        except EndpointConfigError as exc:
            raise TwinConfigError(str(exc)) from None
        rest = {k: v for k, v in data.items() if k not in ("functions", "schedules", "endpoints")}
        config: TwinConfig = _decode(
            cls, {**rest, "functions": functions, "schedules": schedules, "endpoints": endpoints}, "config"
        )
        return config.validate()


def _list(data: Mapping[str, Any], key: str, *, required: bool = True) -> list[Any]:
    value = data.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise TwinConfigError(f"{key} must be a list, got {type(value).__name__}")
    return value


def _encode(value: Any) -> Any:
    if isinstance(value, EndpointSpec):
        return value.to_dict()
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: _encode(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in value.items()}
    return value


_PATHS = {"code_dir", "state_dir"}
_TUPLES = {"aliases", "tables"}
_NUMBERS = {
    "memory_mb": int,
    "timeout_s": float,
    "keep_alive_s": float,
    "gateway_port": int,
    "max_instances": int,
    "init_timeout_s": float,
    "schedule_time_scale": float,
    "reserved_concurrency": int,
}


def _decode(cls: type[Any], data: Any, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise TwinConfigError(f"{where} must be an object, got {type(data).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise TwinConfigError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    values: dict[str, Any] = {}
    for key, raw in data.items():
        if key in _PATHS:
            values[key] = Path(raw)
        elif key == "layers":
            values[key] = tuple(Path(p) for p in raw)
        elif key in _TUPLES:
            if not isinstance(raw, list | tuple):
                raise TwinConfigError(f"{where}.{key} must be a list, got {type(raw).__name__}")
            values[key] = tuple(raw)
        elif key in _NUMBERS and raw is not None:
            kind = _NUMBERS[key]
            if isinstance(raw, bool) or not isinstance(raw, int | float) or (kind is int and not float(raw).is_integer()):
                raise TwinConfigError(f"{where}.{key} must be a{'n integer' if kind is int else ' number'}, got {raw!r}")
            values[key] = kind(raw)
        elif key in ("env", "provisioned"):
            if not isinstance(raw, Mapping):
                raise TwinConfigError(f"{where}.{key} must be an object, got {type(raw).__name__}")
            values[key] = {str(k): (str(v) if key == "env" else int(v)) for k, v in raw.items()}
        else:
            values[key] = raw
    try:
        return cls(**values)
    except TypeError as exc:
        raise TwinConfigError(f"{where}: {exc}") from None


# --- the default stack -------------------------------------------------------------------------

# Build outputs, relative to the repository root (the cross-issue contract for layers and models).
# Relative to a repository root (tests pass their own roots); layers/paths.py is the contract.
DEPS_LOCAL_LAYER = paths.DEPS_LOCAL.relative_to(paths.ROOT)  # holds python/
DEFAULT_MODEL_DIR = paths.DEFAULT_MODEL.relative_to(paths.ROOT)
FP32_MODEL_DIR = paths.FP32_MODEL.relative_to(paths.ROOT)

DEFAULT_FUNCTION = "preheat-inference"


def model_layer_dir(root: Path, model: str) -> Path:
    """Model `model`'s layer under `root` (holds model/, mounts at /opt/model)."""
    return root / paths.model_layer(model).relative_to(paths.ROOT)


def inference_function(
    root: Path,
    *,
    name: str = DEFAULT_FUNCTION,
    handler: str = "functions.inference.handler.handler",
    model_dir: Path | None = None,
    model_layer: Path | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> FunctionSpec:
    """A function serving the model in `model_dir` (default: build/models/minilm), run from the built
    layers when they exist (as Lambda would), else from this environment's packages. The model comes
    from its layer (`model_layer`, default build/layers/model-NAME) at /opt/model when that layer holds
    exactly this model, else from the model directory itself: never from a layer of another model."""
    model_dir = root / DEFAULT_MODEL_DIR if model_dir is None else model_dir
    model_layer = model_layer_dir(root, model_dir.name) if model_layer is None else model_layer
    deps = root / DEPS_LOCAL_LAYER
    layers: list[Path] = []
    isolated = (deps / "python").is_dir()
    if isolated and not deps_layer.is_current(deps, deps_layer.local_target()):
        # Built before a dependency (or the layer builder) changed: run from it and the function may
        # lack a package a fresh clone has (Runtime.ImportModuleError). Serve from this environment.
        logging.getLogger("preheat.twin").warning(
            "%s is out of date (pyproject's dependencies or the layer builder changed since it was built): "
            "serving from this environment's packages; run `preheat build layers` to serve from the layer",
            deps,
        )
        isolated = False
    if isolated:
        layers.append(deps)
    merged = {"POWERTOOLS_SERVICE_NAME": "preheat", **(env or {})}
    if built_layers.holds(model_layer, model_dir):
        layers.append(model_layer)
        merged.setdefault("PREHEAT_MODEL_DIR", paths.MODEL_LAYER_MOUNT)
    else:
        merged.setdefault("PREHEAT_MODEL_DIR", str(model_dir))
    return FunctionSpec(
        name=name, handler=handler, code_dir=root, layers=tuple(layers), env=merged, isolated=isolated, **overrides
    )
