"""One parser per section of the `preheat` context object: its keys, bounds and in-section rules."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from functions.errors import ConfigError
from infra.config.reader import Node
from infra.config.rules import check_rules
from infra.config.schema import (
    AlarmsConfig,
    CacheConfig,
    ControllerConfig,
    DashboardConfig,
    LambdaConfig,
    LayerPaths,
    PreheatConfig,
    Provisioned,
    RuntimeSettings,
    SageMakerConfig,
    ScheduledCapacity,
    WarmerConfig,
)
from layers import paths as build_paths

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,62}$")
# 48 characters leave room for the endpoint config's "-<hash>" suffix within SageMaker's 63.
_SAGEMAKER_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,46}[a-z0-9])?$")
_SCHEDULE = re.compile(r"^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(.+\))$")
_SCALING_SCHEDULE = re.compile(r"^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(.+\)|at\(.+\))$")
_NAMESPACE = re.compile(r"^[A-Za-z0-9._/#:-]{1,255}$")
_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SAGEMAKER_MEMORY = (1024, 2048, 3072, 4096, 5120, 6144)


def parse(top: Node, root: Path) -> PreheatConfig:
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
    return check_rules(config)


def _layers(n: Node, root: Path, model: str) -> LayerPaths:
    d = LayerPaths()
    layers = LayerPaths(
        model=n.path_("model", build_paths.model_layer(model), root),
        deps_root=n.path_("depsRoot", d.deps_root, root),
    )
    n.done()
    return layers


def _lambda(n: Node) -> LambdaConfig:
    d = LambdaConfig()
    rt = n.node("runtime")
    base_path = rt.str_(
        "basePath",
        "",
        pattern=re.compile(r"^(/[A-Za-z0-9._~-]+)*$"),
        hint="'' or like '/prod', no trailing '/'",
    )
    runtime = RuntimeSettings(
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
        s = Node(item if isinstance(item, Mapping) else {}, f"{pc.key('schedules')}[{i}]")
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


def _cache(n: Node) -> CacheConfig:
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


def _sagemaker(n: Node, root: Path, model: str) -> SageMakerConfig:
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


def _warmer(n: Node) -> WarmerConfig:
    d = WarmerConfig()
    config = WarmerConfig(
        enabled=n.bool_("enabled", d.enabled),
        schedule=n.str_("schedule", d.schedule, pattern=_SCHEDULE, hint="rate(5 minutes) or cron(...)"),
        concurrency=n.int_("concurrency", d.concurrency, minimum=1, maximum=1000),
        hold_ms=n.int_("holdMs", d.hold_ms, minimum=0, maximum=60_000),
    )
    n.done()
    return config


def _controller(n: Node) -> ControllerConfig:
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


def _dashboard(n: Node) -> DashboardConfig:
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
