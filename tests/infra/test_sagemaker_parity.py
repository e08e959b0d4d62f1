"""The CDK construct and `preheat deploy sagemaker` (the SageMaker SDK) deploy the same endpoint.

Both take a functions/sagemaker/endpoint.py `EndpointConfig`; reading the deployed model and
endpoint config back (CloudFormation properties on one side, DescribeModel / DescribeEndpointConfig
from moto on the other) must give that same description on both sides.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from functions.sagemaker.endpoint import EndpointConfig
from tests.infra.conftest import BuildOutputs

DESCRIPTIONS = [
    EndpointConfig(),
    EndpointConfig(
        "emb-prod",
        memory_mb=6144,
        max_concurrency=200,
        provisioned_concurrency=200,
        variant_name="blue",
        environment={"PREHEAT_THREADS": "2", "PREHEAT_CACHE_MEMORY_BYTES": "0", "AWS_REGION": "eu-west-1"},
    ),
    EndpointConfig("a", memory_mb=1024, max_concurrency=1, provisioned_concurrency=1),
]


def via_cdk(description: EndpointConfig, outputs: BuildOutputs, tmp_path: Path) -> EndpointConfig:
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from infra.config import SageMakerConfig
    from infra.constructs.sagemaker_endpoint import ImageFromContext, ServerlessEndpointProps
    from infra.constructs.sagemaker_endpoint import ServerlessEndpoint as Construct

    app = cdk.App(outdir=str(tmp_path / "cdk.out"))
    stack = cdk.Stack(app, "Parity", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    config = SageMakerConfig(
        endpoint_name=description.name,
        memory_mb=description.memory_mb,
        max_concurrency=description.max_concurrency,
        provisioned_concurrency=description.provisioned_concurrency or 0,
        autoscale_max=max(description.provisioned_concurrency or 1, 1),
    )
    Construct(
        stack,
        "SageMaker",
        ServerlessEndpointProps(
            config=config,
            description=description,
            image=ImageFromContext(outputs.sagemaker_context),
            model_data=outputs.model_data,
            autoscaling=False,
        ),
    )
    template = Template.from_stack(stack)
    (model,) = template.find_resources("AWS::SageMaker::Model").values()
    (endpoint_config,) = template.find_resources("AWS::SageMaker::EndpointConfig").values()
    (endpoint,) = template.find_resources("AWS::SageMaker::Endpoint").values()
    assert endpoint["Properties"]["EndpointName"] == description.name
    return EndpointConfig.from_resources(
        endpoint["Properties"]["EndpointName"], model["Properties"], endpoint_config["Properties"]
    )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from moto import mock_aws

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        import boto3

        yield boto3.session.Session(region_name="eu-west-1")


def via_sdk(description: EndpointConfig, session: Any, outputs: BuildOutputs) -> EndpointConfig:
    from scripts import deploy_sagemaker as deploy

    sdk = deploy.sdk_session(session)
    url = deploy.upload_model(sdk, outputs.model_data, "preheat-parity", description.name)
    deploy.deploy(
        description,
        sdk,
        image_uri="123456789012.dkr.ecr.eu-west-1.amazonaws.com/preheat:1",
        role_arn=deploy.local_role(session, None),
        model_data_url=url,
        poll_s=0.05,
    )
    client = session.client("sagemaker")
    endpoint = client.describe_endpoint(EndpointName=description.name)
    return EndpointConfig.from_resources(
        endpoint["EndpointName"],
        client.describe_model(ModelName=description.model_name),
        client.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"]),
    )


@pytest.mark.parametrize("description", DESCRIPTIONS, ids=lambda d: d.name)
def test_cdk_and_sdk_deploy_the_same_endpoint(
    description: EndpointConfig, outputs: BuildOutputs, aws: Any, tmp_path: Path
) -> None:
    cdk_side = via_cdk(description, outputs, tmp_path)
    sdk_side = via_sdk(description, aws, outputs)
    assert cdk_side == description
    assert sdk_side == description


def test_the_stack_deploys_what_its_config_describes(synth: Any, outputs: BuildOutputs) -> None:
    """The stack builds its description from cdk.json's sagemaker section, so `preheat deploy
    sagemaker --memory/--max-concurrency/--provisioned` with those values deploys the same endpoint."""
    from infra.config import PreheatConfig

    context = outputs.context(**{"sagemaker.memoryMb": 4096, "sagemaker.maxConcurrency": 7})
    template = synth(context)[1]
    sm = PreheatConfig.from_context(context).sagemaker
    assert (sm.memory_mb, sm.max_concurrency) == (4096, 7)
    (model,) = template.find_resources("AWS::SageMaker::Model").values()
    (endpoint_config,) = template.find_resources("AWS::SageMaker::EndpointConfig").values()
    read = EndpointConfig.from_resources(
        sm.endpoint_name, model["Properties"], endpoint_config["Properties"]
    )
    assert (read.memory_mb, read.max_concurrency, read.provisioned_concurrency) == (
        sm.memory_mb,
        sm.max_concurrency,
        sm.provisioned_concurrency or None,
    )
