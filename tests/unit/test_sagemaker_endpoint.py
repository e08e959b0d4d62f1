"""The one description of a serverless endpoint: its checks, its resource shapes, and the SDK path
(`preheat deploy sagemaker`) producing exactly it in moto."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from functions.inference.errors import ConfigError
from functions.sagemaker.endpoint import EndpointConfig
from layers import sagemaker_artifacts as artifacts
from scripts import deploy_sagemaker as deploy

ROOT = Path(__file__).resolve().parents[2]

DESCRIPTIONS = [
    EndpointConfig(),
    EndpointConfig("emb-prod", memory_mb=6144, max_concurrency=200, provisioned_concurrency=200,
                       variant_name="blue", environment={"PREHEAT_THREADS": "2", "PREHEAT_CACHE_MEMORY_BYTES": "0"}),
    EndpointConfig("a", memory_mb=1024, max_concurrency=1, provisioned_concurrency=1),
]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "bad_name"}, "sagemaker.name"),
        ({"name": "x" * 58}, "sagemaker.name"),  # its model name would pass SageMaker's 63 characters
        ({"memory_mb": 1500}, "sagemaker.memory_mb"),
        ({"max_concurrency": 0}, "sagemaker.max_concurrency"),
        ({"max_concurrency": 201}, "sagemaker.max_concurrency"),
        ({"provisioned_concurrency": 6}, "sagemaker.provisioned_concurrency"),
        ({"provisioned_concurrency": 0}, "sagemaker.provisioned_concurrency"),
        ({"variant_name": "has space"}, "sagemaker.variant_name"),
        ({"environment": {"1BAD": "x"}}, "sagemaker.environment"),
        ({"environment": {"K": "v" * 1025}}, "sagemaker.environment"),
    ],
)
def test_bad_descriptions_fail_naming_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        EndpointConfig(**changes).validate()


@pytest.mark.parametrize("description", DESCRIPTIONS)
def test_round_trips_through_dicts_and_resource_shapes(description: EndpointConfig) -> None:
    assert EndpointConfig.from_dict(json.loads(json.dumps(description.to_dict()))) == description
    model = description.create_model_request("image:1", "arn:aws:iam::1:role/r", "s3://b/model.tar.gz")
    config = description.create_endpoint_config_request()
    assert config["ProductionVariants"][0]["ModelName"] == model["ModelName"] == description.model_name
    assert EndpointConfig.from_resources(description.name, model, config) == description
    assert ("ProvisionedConcurrency" in description.serverless_config()) == (
        description.provisioned_concurrency is not None)


def test_from_dict_refuses_unknown_keys_and_wrong_types() -> None:
    with pytest.raises(ConfigError, match="unknown key"):
        EndpointConfig.from_dict({"memory": 2048})
    with pytest.raises(ConfigError, match=r"sagemaker\.memory_mb must be an integer"):
        EndpointConfig.from_dict({"memory_mb": "2048"})


def test_from_resources_refuses_instance_variants() -> None:
    config = {"ProductionVariants": [{"VariantName": "AllTraffic", "InstanceType": "ml.m5.large"}]}
    with pytest.raises(ConfigError, match="not serverless"):
        EndpointConfig.from_resources("e", {}, config)


# --- build outputs --------------------------------------------------------------------------------------


def test_model_tarball_has_the_files_at_its_root_and_is_reproducible(embedding_dir: Path, tmp_path: Path) -> None:
    first = tmp_path / "a" / "model.tar.gz"
    artifacts.pack_model(embedding_dir, first)
    second = tmp_path / "b" / "model.tar.gz"
    artifacts.pack_model(embedding_dir, second)
    assert first.read_bytes() == second.read_bytes()
    with tarfile.open(first) as tar:
        names = sorted(tar.getnames())
        assert names == sorted(str(p.relative_to(embedding_dir)) for p in embedding_dir.rglob("*") if p.is_file())
        manifest = tar.extractfile("manifest.json")
        assert manifest is not None and manifest.read() == (embedding_dir / "manifest.json").read_bytes()
    assert gzip.decompress(first.read_bytes())  # a real gzip stream


def test_pack_model_refuses_a_directory_without_a_manifest(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"manifest\.json"):
        artifacts.pack_model(tmp_path, tmp_path / "model.tar.gz")


def test_context_holds_what_the_dockerfile_copies(embedding_dir: Path, tmp_path: Path) -> None:
    context = artifacts.write_context(tmp_path / "context", embedding_dir)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = (context / "requirements.txt").read_text().split()
    assert requirements[: len(project["dependencies"])] == project["dependencies"]
    assert any(r.startswith("uvicorn") for r in requirements)
    assert not any(r.startswith(("torch", "boto3", "moto", "sagemaker")) for r in requirements)
    assert (context / "Dockerfile").read_text() == (ROOT / "functions/sagemaker/Dockerfile").read_text()
    assert (context / "functions/sagemaker/serve.py").is_file()
    assert (context / "functions/inference/app.py").is_file()
    assert not list(context.rglob("__pycache__"))
    assert (context / "model/manifest.json").read_bytes() == (embedding_dir / "manifest.json").read_bytes()
    for line in (context / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            source = line.split()[-2]
            assert (context / source).exists(), f"{source} is missing from the context"


# --- the SDK path against moto ----------------------------------------------------------------------------


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from moto import mock_aws

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "SAGEMAKER_SUPPRESS_V2_WARNING": "1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        import boto3

        yield boto3.session.Session(region_name="eu-west-1")


@pytest.mark.parametrize("description", DESCRIPTIONS)
def test_sdk_path_creates_exactly_the_description(aws: Any, description: EndpointConfig, embedding_dir: Path,
                                                  tmp_path: Path) -> None:
    pytest.importorskip("sagemaker")
    session = deploy.sdk_session(aws)
    tarball = tmp_path / "model.tar.gz"
    artifacts.pack_model(embedding_dir, tarball)
    url = deploy.upload_model(session, tarball, "preheat-test-bucket", description.name)
    role = deploy.local_role(aws, None)
    image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/preheat-sagemaker:1"
    deployed = deploy.deploy(description, session, image_uri=image, role_arn=role, model_data_url=url, poll_s=0.05)

    sm = aws.client("sagemaker")
    model = sm.describe_model(ModelName=description.model_name)
    config = sm.describe_endpoint_config(EndpointConfigName=description.endpoint_config_name)
    endpoint = sm.describe_endpoint(EndpointName=description.name)
    assert endpoint["EndpointStatus"] == "InService" and endpoint["EndpointArn"] == deployed.endpoint_arn
    assert EndpointConfig.from_resources(description.name, model, config) == description
    assert model["PrimaryContainer"]["Image"] == image and model["ExecutionRoleArn"] == role
    assert model["PrimaryContainer"]["ModelDataUrl"] == url
    # The model in S3 is the archive that was packed.
    bucket, key = url[len("s3://"):].split("/", 1)
    stored = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    assert stored == tarball.read_bytes()
    with tarfile.open(fileobj=io.BytesIO(stored)) as tar:
        assert "manifest.json" in tar.getnames()


def test_sdk_path_refuses_a_bad_description_before_any_call(aws: Any) -> None:
    pytest.importorskip("sagemaker")
    session = deploy.sdk_session(aws)
    with pytest.raises(ConfigError, match="provisioned_concurrency"):
        deploy.deploy(EndpointConfig("bad", max_concurrency=2, provisioned_concurrency=3), session,
                      image_uri="i", role_arn="arn:aws:iam::123456789012:role/r", model_data_url="s3://b/k")
    assert aws.client("sagemaker").list_models()["Models"] == []


def test_cli_arguments_become_the_description() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    deploy.add_arguments(parser)
    args = parser.parse_args(["--name", "emb", "--memory", "3072", "--max-concurrency", "8", "--provisioned", "2",
                              "--env", "PREHEAT_THREADS=2", "--env", "A=b=c"])
    assert deploy.endpoint_from_args(args) == EndpointConfig(
        "emb", memory_mb=3072, max_concurrency=8, provisioned_concurrency=2,
        environment={"PREHEAT_THREADS": "2", "A": "b=c"})
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        deploy.endpoint_from_args(parser.parse_args(["--env", "nothing"]))
