"""One typed, frozen config for the whole CDK app, read from `cdk.json` context.

Config flows one way: the `preheat` object in cdk.json's context (or `-c preheat:KEY.PATH=VALUE`
on the command line) -> `PreheatConfig` -> constructs -> the functions' environment variables -> the
runtime's Settings. Every value is checked here, at synth, and a bad one raises ConfigError naming its
key (`preheat.lambda.memoryMb`) and what would be valid.

`model` names the model directory the stack serves (build/models/NAME, as `preheat build --name NAME`
writes it); the build outputs made from it default to that model's own paths in the contract of
layers/paths.py (build/layers/model-NAME, build/sagemaker/model-NAME.tar.gz, ...), and the checks that
they hold that model are in infra/built_model.py.

Modules, by job: schema (the dataclasses), context (where context comes from, and the overrides),
reader (typed values that name their key), sections (one parser per section), rules (across
sections), checks (the build outputs on disk). The names below are what the rest of the repository uses.
"""

from __future__ import annotations

# The one ConfigError (a context value is missing, has the wrong type or is out of range; the message
# names the key), shared with the functions' and warmers' settings.
from functions.errors import ConfigError
from infra.config.checks import build_layers_command, require_layers, require_sagemaker
from infra.config.context import PROJECT_CONFIG, PROJECT_CONTEXT, USER_CONFIG, cli_context, load
from infra.config.rules import controller_pc_mode
from infra.config.schema import (
    CONTEXT_KEY,
    ROOT,
    AlarmsConfig,
    Architecture,
    CacheConfig,
    ControllerConfig,
    DashboardConfig,
    DeployTarget,
    LambdaConfig,
    LayerPaths,
    Package,
    PcMode,
    PreheatConfig,
    Provisioned,
    RuntimeSettings,
    SageMakerConfig,
    ScheduledCapacity,
    UrlAuth,
    WarmerConfig,
    WarmStart,
)
from infra.config.sections import endpoint_name_for

__all__ = [
    "CONTEXT_KEY",
    "PROJECT_CONFIG",
    "PROJECT_CONTEXT",
    "ROOT",
    "USER_CONFIG",
    "AlarmsConfig",
    "Architecture",
    "CacheConfig",
    "ConfigError",
    "ControllerConfig",
    "DashboardConfig",
    "DeployTarget",
    "LambdaConfig",
    "LayerPaths",
    "Package",
    "PcMode",
    "PreheatConfig",
    "Provisioned",
    "RuntimeSettings",
    "SageMakerConfig",
    "ScheduledCapacity",
    "UrlAuth",
    "WarmStart",
    "WarmerConfig",
    "build_layers_command",
    "cli_context",
    "controller_pc_mode",
    "endpoint_name_for",
    "load",
    "require_layers",
    "require_sagemaker",
]
