"""The one typed config: defaults, overrides from cdk.json and -c, and errors that name the key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.config import ROOT, ConfigError, PreheatConfig, require_layers, require_sagemaker
from tests.infra.conftest import BuildOutputs


def test_defaults_match_the_contracts() -> None:
    config = PreheatConfig.from_context({})
    assert (config.model, config.model_dir) == ("minilm", ROOT / "build" / "models" / "minilm")
    assert config.layers.model == ROOT / "build" / "layers" / "model-minilm"
    assert config.layers.deps("arm64") == ROOT / "build" / "layers" / "deps-arm64"
    assert config.sagemaker.context_dir == ROOT / "build" / "sagemaker" / "context"
    assert config.sagemaker.model_data == ROOT / "build" / "sagemaker" / "model-minilm.tar.gz"
    assert config.sagemaker.endpoint_name == "preheat-minilm"


def test_the_model_s_build_outputs_follow_preheat_model(tmp_path: Path) -> None:
    """-c preheat:model=NAME moves every default that belongs to a model; explicit paths stay put."""
    config = PreheatConfig.from_context({"preheat:model": "My_Reranker.v2", "preheat:modelsDir": "out"}, root=tmp_path)
    assert config.model_dir == tmp_path / "out" / "My_Reranker.v2"
    assert config.layers.model == ROOT / "build" / "layers" / "model-My_Reranker.v2"
    assert config.sagemaker.model_data == ROOT / "build" / "sagemaker" / "model-My_Reranker.v2.tar.gz"
    assert config.sagemaker.endpoint_name == "preheat-my-reranker-v2"  # SageMaker's alphabet
    explicit = PreheatConfig.from_context(
        {"preheat": {"model": "other", "layers": {"model": "l"}, "sagemaker": {"endpointName": "mine"}}},
        root=tmp_path,
    )
    assert (explicit.layers.model, explicit.sagemaker.endpoint_name) == (tmp_path / "l", "mine")
    long = PreheatConfig.from_context({"preheat:model": "x" * 64})
    assert len(long.sagemaker.endpoint_name) == 48
    with pytest.raises(ConfigError, match=r"preheat\.model .*preheat build --name NAME"):
        PreheatConfig.from_context({"preheat:model": "../elsewhere"})
    assert config.lambda_.warm_start == "provisioned" and config.lambda_.url_auth == "AWS_IAM"
    assert config.target == "aws"


def test_cdk_json_context_is_valid() -> None:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    PreheatConfig.from_context(context)


def test_object_and_command_line_overrides_merge() -> None:
    config = PreheatConfig.from_context(
        {
            "preheat": {"lambda": {"memoryMb": 1024, "architecture": "arm64"}},
            "preheat:lambda.memoryMb": "3008",  # -c values arrive as strings
            "preheat:lambda.url": "false",
            "preheat:dashboard.cacheLevels": '["l1", "l2"]',
            "preheat:sagemaker.enabled": "false",
        }
    )
    assert config.lambda_.memory_mb == 3008
    assert config.lambda_.architecture == "arm64"
    assert config.lambda_.url is False
    assert config.dashboard.cache_levels == ("l1", "l2")
    assert config.sagemaker.enabled is False


def test_relative_paths_resolve_against_the_root(tmp_path: Path) -> None:
    config = PreheatConfig.from_context({"preheat": {"layers": {"model": "out/model"}}}, root=tmp_path)
    assert config.layers.model == tmp_path / "out" / "model"


@pytest.mark.parametrize(
    ("context", "key"),
    [
        ({"lambda": {"memoryMb": 64}}, "preheat.lambda.memoryMb"),
        ({"lambda": {"memoryMb": "lots"}}, "preheat.lambda.memoryMb"),
        ({"lambda": {"architecture": "sparc"}}, "preheat.lambda.architecture"),
        ({"lambda": {"timeoutSeconds": 901}}, "preheat.lambda.timeoutSeconds"),
        ({"lambda": {"urlAuth": "PUBLIC"}}, "preheat.lambda.urlAuth"),
        ({"lambda": {"memorySize": 1024}}, "preheat.lambda.memorySize"),  # a typo is not ignored
        ({"lambda": {"provisioned": {"min": 5, "max": 2}}}, "preheat.lambda.provisioned.max"),
        (
            {"lambda": {"provisioned": {"utilizationTarget": 1.5}}},
            "preheat.lambda.provisioned.utilizationTarget",
        ),
        (
            {"lambda": {"provisioned": {"schedules": [{"name": "x", "schedule": "every day"}]}}},
            "preheat.lambda.provisioned.schedules[0].schedule",
        ),
        (
            {"lambda": {"reservedConcurrency": 3, "provisioned": {"max": 10}}},
            "preheat.lambda.reservedConcurrency",
        ),
        ({"lambda": {"warmStart": "snapstart", "package": "image"}}, "preheat.lambda.warmStart"),
        ({"lambda": {"runtime": {"basePath": "prod/"}}}, "preheat.lambda.runtime.basePath"),
        ({"lambda": {"runtime": {"truncate": "maybe"}}}, "preheat.lambda.runtime.truncate"),
        ({"sagemaker": {"memoryMb": 1500}}, "preheat.sagemaker.memoryMb"),
        (
            {"sagemaker": {"provisionedConcurrency": 20, "maxConcurrency": 10}},
            "preheat.sagemaker.provisionedConcurrency",
        ),
        ({"sagemaker": {"endpointName": "Upper_Case"}}, "preheat.sagemaker.endpointName"),
        ({"warmer": {"schedule": "hourly"}}, "preheat.warmer.schedule"),
        (
            {"dashboard": {"alarms": {"coldStartRatePercent": 120}}},
            "preheat.dashboard.alarms.coldStartRatePercent",
        ),
        ({"dashboard": {"cacheLevels": [1, 2]}}, "preheat.dashboard.cacheLevels"),
        ({"region": "moon-1"}, "preheat.region"),
        ({"controller": {"policy": "oracle"}}, "preheat.controller.policy"),
        ({"controller": {"policy": "no-such-policy"}}, "preheat.controller.policy"),
        ({"controller": {"pcMode": "sometimes"}}, "preheat.controller.pcMode"),
        (
            {"controller": {"pcMode": "scheduled"}, "lambda": {"warmStart": "snapstart"}},
            "preheat.controller.pcMode",
        ),
        ({"controller": {"pcMode": "direct"}}, "preheat.controller.pcMode"),
        ({"target": "localstack"}, "preheat.target"),
    ],
)
def test_bad_values_fail_naming_the_key(context: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        PreheatConfig.from_context({"preheat": context})
    assert key in str(info.value)


def test_bad_command_line_override_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"preheat\.cache\.ttlSeconds"):
        PreheatConfig.from_context({"preheat:cache.ttlSeconds": "-1"})


def test_moto_target_drops_what_moto_cannot_create() -> None:
    config = PreheatConfig.from_context({"preheat": {"target": "moto", "lambda": {"warmStart": "snapstart"}}})
    assert (
        config.lambda_.warm_start == "none"
        and config.lambda_.url is False
        and config.lambda_.package == "zip"
    )


def test_missing_layers_name_the_build_command(tmp_path: Path) -> None:
    config = PreheatConfig.from_context(
        {"preheat": {"layers": {"model": str(tmp_path / "m"), "depsRoot": str(tmp_path)}}}
    )
    with pytest.raises(ConfigError) as info:
        require_layers(config)
    message = str(info.value)
    assert "preheat build layers" in message and str(tmp_path / "m") in message and "deps-x86_64" in message


def test_present_layers_are_returned(outputs: BuildOutputs) -> None:
    config = PreheatConfig.from_context(outputs.context())
    assert require_layers(config) == (outputs.model_layer, outputs.deps_root / "deps-x86_64")
    assert require_sagemaker(config, image=True) == outputs.sagemaker_context
    assert require_sagemaker(config, image=False) == outputs.model_data


def test_missing_sagemaker_inputs_say_how_to_fix(tmp_path: Path) -> None:
    config = PreheatConfig.from_context(
        {"preheat": {"sagemaker": {"contextDir": str(tmp_path), "modelData": "nope.tgz"}}}
    )
    with pytest.raises(ConfigError, match=r"Dockerfile.*sagemaker\.enabled=false"):
        require_sagemaker(config, image=True)
    with pytest.raises(ConfigError, match="model data"):
        require_sagemaker(config, image=False)


def test_synth_without_layers_fails_with_the_message(tmp_path: Path) -> None:
    import aws_cdk as cdk

    from infra.app import build

    app = cdk.App(
        context={"preheat": {"layers": {"model": str(tmp_path / "none"), "depsRoot": str(tmp_path)}}}
    )
    with pytest.raises(ConfigError, match="preheat build layers"):
        build(app, checks=False)


def test_controller_pc_mode_follows_the_warm_start() -> None:
    from infra.config import controller_pc_mode

    assert controller_pc_mode(PreheatConfig.from_context({})) == "scheduled"
    snap = PreheatConfig.from_context({"preheat": {"lambda": {"warmStart": "snapstart"}}})
    assert controller_pc_mode(snap) == "off"
    direct = PreheatConfig.from_context(
        {"preheat": {"lambda": {"warmStart": "none"}, "controller": {"pcMode": "direct"}}}
    )
    assert controller_pc_mode(direct) == "direct"
    moto = PreheatConfig.from_context({"preheat": {"target": "moto"}})
    assert controller_pc_mode(moto) == "off"
