"""Functions run from layers as Lambda runs them: the bare interpreter, the function code, the layers'
python/ directories and the runtime's packages only; /opt paths resolved to the layers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from scripts.twin.client import TwinClient
from scripts.twin.config import DEPS_LOCAL_LAYER, FunctionSpec, TwinConfig
from tests.support.twin import ROOT, running

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

HANDLER = """
import importlib.util, os, sys
import layerdep

def handler(event, context):
    model = os.environ["PREHEAT_MODEL_DIR"]
    return {
        "value": layerdep.VALUE,
        "numpy": importlib.util.find_spec("numpy") is not None,
        "preheat": importlib.util.find_spec("functions") is not None,
        "boto3": importlib.util.find_spec("boto3") is not None,
        "model": model,
        "model_file": open(os.path.join(model, "weights.txt")).read(),
        "no_site": sys.flags.no_site,
    }
"""


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwinClient]:
    base = tmp_path_factory.mktemp("layers")
    code = base / "code"
    code.mkdir()
    (code / "fn.py").write_text(HANDLER)
    deps = base / "deps"
    (deps / "python").mkdir(parents=True)
    (deps / "python" / "layerdep.py").write_text("VALUE = 42\n")
    model = base / "model"
    (model / "model").mkdir(parents=True)
    (model / "model" / "weights.txt").write_text("from the model layer")
    functions = [
        FunctionSpec(
            "layered",
            "fn.handler",
            code,
            layers=(deps, model),
            env={"PREHEAT_MODEL_DIR": "/opt/model"},
            isolated=True,
        ),
    ]
    if (ROOT / DEPS_LOCAL_LAYER / "python").is_dir():
        functions.append(
            FunctionSpec(
                "deps-layer",
                "fn.handler",
                code,
                layers=(ROOT / DEPS_LOCAL_LAYER, deps, model),
                env={"PREHEAT_MODEL_DIR": "/opt/model"},
                isolated=True,
            )
        )
    config = TwinConfig(functions=tuple(functions), state_dir=base / "state")
    with running(config) as client:
        yield client


def invoke(twin: TwinClient, name: str) -> dict[str, Any]:
    response = twin.boto3_client("lambda").invoke(FunctionName=name, Payload=b"{}")
    body: dict[str, Any] = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, body
    return body


def test_an_isolated_function_sees_only_its_code_layers_and_the_runtime(twin: TwinClient) -> None:
    body = invoke(twin, "layered")
    assert body["value"] == 42  # from the layer's python/
    assert body["boto3"] is True  # the runtime provides it, as Lambda's does
    assert body["numpy"] is False  # the twin's own environment does not leak in
    assert body["preheat"] is False  # nor the repository: only the code directory is on the path
    assert body["model_file"] == "from the model layer"  # /opt/model -> the model layer
    assert body["no_site"] == 1


def test_the_built_deps_layer_provides_the_runtime_dependencies(twin: TwinClient) -> None:
    if "deps-layer" not in twin.state.functions:
        pytest.skip(f"{DEPS_LOCAL_LAYER} is not built (the layers build makes it)")
    body = invoke(twin, "deps-layer")
    assert body["numpy"] is True and body["value"] == 42
