"""SageMaker endpoints in the twin's config: JSON round trip, checks that name the key, the default stack."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from functions.sagemaker.endpoint import EndpointConfig
from scripts.twin.config import FunctionSpec, TwinConfig, TwinConfigError
from scripts.twin.sagemaker_config import EndpointSpec
from scripts.twin.stack import default_config

ROOT = Path(__file__).resolve().parents[2]


def test_endpoints_round_trip_through_json(embedding_dir: Path) -> None:
    spec = EndpointSpec(EndpointConfig("emb", memory_mb=3072, max_concurrency=3, provisioned_concurrency=1,
                                           environment={"PREHEAT_THREADS": "1"}), embedding_dir, keep_alive_s=2.5)
    config = TwinConfig(functions=(), endpoints=(spec,))
    again = TwinConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again.endpoints == (spec,)
    assert spec.registered().environment["PREHEAT_MODEL_DIR"] == str(embedding_dir.resolve())


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"endpoint": {"name": "e"}}, r"endpoints\[0\]\.model_dir is required"),
        ({"endpoint": {"name": "e", "memory_mb": 100}, "model_dir": "."}, r"endpoints\[0\]\.endpoint.*memory_mb"),
        ({"endpoint": {"name": "e"}, "model_dir": "/nonexistent"}, r"endpoints\[0\]\.model_dir .* manifest\.json"),
        ({"endpoint": {"name": "e"}, "model_dir": ".", "keep_alive_s": "long"}, r"keep_alive_s must be a number"),
        ({"endpoint": {"name": "e"}, "model_dir": ".", "color": 1}, r"unknown key\(s\) color"),
    ],
)
def test_bad_endpoint_entries_name_the_key(entry: dict[str, object], message: str) -> None:
    with pytest.raises(TwinConfigError, match=message):
        TwinConfig.from_dict({"functions": [], "endpoints": [entry]})


def test_endpoint_names_are_unique(embedding_dir: Path) -> None:
    spec = EndpointSpec(EndpointConfig("same"), embedding_dir)
    with pytest.raises(TwinConfigError, match="used twice"):
        TwinConfig(functions=(), endpoints=(spec, spec)).validate()


def test_a_twin_needs_a_function_or_an_endpoint(embedding_dir: Path) -> None:
    with pytest.raises(TwinConfigError, match="at least one function or endpoint"):
        TwinConfig(functions=()).validate()
    TwinConfig(functions=(), endpoints=(EndpointSpec(EndpointConfig(), embedding_dir),)).validate()
    TwinConfig(functions=(FunctionSpec("f", "m.h", ROOT),)).validate()


def test_the_default_stack_serves_the_default_model_on_sagemaker_too() -> None:
    if not (ROOT / "build/models/minilm/manifest.json").is_file():
        pytest.skip("build the default model first (`make model`)")
    config = default_config(ROOT)
    # The stack's endpoint (cdk.json leaves preheat.sagemaker.endpointName at its default).
    assert [e.name for e in config.endpoints] == ["preheat-minilm"]
    assert config.endpoints[0].model_dir == ROOT / "build/models/minilm"
