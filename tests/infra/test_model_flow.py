"""`-c preheat:model=NAME` through synth: the model layer, the function and the SageMaker model data and
endpoint are that model's; a model that was not built, or a layer or archive built from another
model, stops synth saying which command fixes it (in process, and once through the CDK CLI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from infra.app import build
from infra.config import ConfigError
from layers import sagemaker_artifacts
from tests.infra.conftest import ROOT, STAND_IN, BuildOutputs, Built, Synth, build_outputs
from tests.infra.test_constructs import only
from tests.support import tiny_models


@pytest.fixture(scope="module")
def tensor(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_outputs(tmp_path_factory.mktemp("tensor"), "linear", tiny_models.write_tensor_model)


def synth_error(outputs: BuildOutputs, tmp_path: Path, **overrides: Any) -> str:
    app = cdk.App(context=outputs.context(**overrides), outdir=str(tmp_path / "cdk.out"))
    with pytest.raises(ConfigError) as info:
        build(app, checks=False)
    return str(info.value)


def test_the_model_named_by_the_context_is_what_the_stack_deploys(
    synth: Synth, outputs: BuildOutputs, tensor: Built
) -> None:
    _, default = synth(outputs.context())
    stack, other = synth(outputs.context(**tensor.overrides()))
    layers = {
        name: only(template, "AWS::Lambda::LayerVersion", Description=_starts("model "))["Properties"]
        for name, template in (("default", default), ("other", other))
    }
    assert layers["other"]["Description"].startswith("model linear (tensor), id ")
    assert layers["default"]["Description"].startswith(f"model {STAND_IN} (text-embedding), id ")
    assert layers["other"]["Content"] != layers["default"]["Content"]  # another asset: the other model's files
    function = only(other, "AWS::Lambda::Function", Handler="functions.inference.handler.handler")["Properties"]
    assert function["Description"] == "preheat inference (preheat): model linear (tensor)"
    assert function["Environment"]["Variables"]["PREHEAT_MODEL_DIR"] == "/opt/model"  # where that layer mounts
    models = {
        name: only(template, "AWS::SageMaker::Model")["Properties"]["PrimaryContainer"]
        for name, template in (("default", default), ("other", other))
    }
    assert models["other"]["ModelDataUrl"] != models["default"]["ModelDataUrl"]
    assert only(other, "AWS::SageMaker::Endpoint")["Properties"]["EndpointName"] == "preheat-linear"
    config = only(other, "AWS::SageMaker::EndpointConfig")["Properties"]
    assert config["EndpointConfigName"].startswith("preheat-linear-")
    assert other.find_outputs("ModelName")["ModelName"]["Value"] == "linear"
    # The archive SageMaker gets is the one of that model, byte for byte.
    assets = Path(stack.node.root.outdir)
    staged = [p for p in assets.glob("asset.*") if p.is_file() and p.name.endswith(".tar.gz")]
    packed = [sagemaker_artifacts.packed(p) for p in staged]
    assert [m.name for m in packed if m is not None] == ["linear"]


def _starts(prefix: str) -> Any:
    from aws_cdk.assertions import Match

    return Match.string_like_regexp(f"^{prefix}")


def test_a_model_that_was_not_built_fails_synth_naming_the_build_command(
    outputs: BuildOutputs, tmp_path: Path
) -> None:
    message = synth_error(outputs, tmp_path, model="my-reranker")
    assert "preheat.model is 'my-reranker'" in message
    assert f"`preheat build --model SPEC --name my-reranker --out {outputs.models}`" in message
    assert f"built in {outputs.models}: {STAND_IN}" in message  # what can be named instead
    # Even the default has to be built (in models/ of its own here, hence --out).
    assert f"`preheat build --out {outputs.models}`" in synth_error(outputs, tmp_path, model="minilm")


def test_a_layer_or_archive_of_another_model_fails_synth_saying_build_layers(
    outputs: BuildOutputs, tensor: Built, tmp_path: Path
) -> None:
    wrong_layer = {**tensor.overrides(), "layers.model": str(outputs.model_layer)}
    message = synth_error(outputs, tmp_path, **wrong_layer)
    assert f"the model layer {outputs.model_layer} holds model '{STAND_IN}'" in message
    assert f"`preheat build layers -c preheat:model=linear -c preheat:modelsDir={tensor.models}`" in message
    wrong_data = {**tensor.overrides(), "sagemaker.modelData": str(outputs.model_data)}
    message = synth_error(outputs, tmp_path, **wrong_data)
    assert f"the SageMaker model data {outputs.model_data} holds model '{STAND_IN}'" in message
    assert f"`preheat build layers -c preheat:model=linear -c preheat:modelsDir={tensor.models}`" in message


def test_a_rebuilt_model_needs_its_layer_rebuilt(outputs: BuildOutputs, tmp_path: Path) -> None:
    """Same name, other files (here another token limit): the layer of the first build is stale."""
    tiny_models.write_embedding_model(tmp_path / "models" / STAND_IN, name=STAND_IN, max_tokens=8)
    message = synth_error(outputs, tmp_path, modelsDir=str(tmp_path / "models"))
    assert f"holds model '{STAND_IN}' (id " in message and f"not the model preheat.model names: '{STAND_IN}'" in message
    assert f"Run `preheat build layers -c preheat:model=stand-in -c preheat:modelsDir={tmp_path / 'models'}`" in message


@pytest.mark.slow
def test_cdk_cli_synth_of_an_unbuilt_model_fails_with_the_build_command(outputs: BuildOutputs, tmp_path: Path) -> None:
    from tests.infra.test_synth_cli import cdk_cli, env

    cmd = [*cdk_cli(), "synth", "--quiet", "--no-notices", "--app", f"{sys.executable} -m infra.app",
           "--output", str(tmp_path / "cdk.out"), *outputs.cli_context(), "-c", "preheat:model=my-classifier"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env=env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "preheat: bad configuration: preheat.model is 'my-classifier'" in proc.stderr
    assert "preheat build --model SPEC --name my-classifier" in proc.stderr
    assert not (tmp_path / "cdk.out" / "Preheat.template.json").exists()
