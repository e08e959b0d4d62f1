"""The SageMaker Serverless endpoint: model (image + model data), endpoint config with ServerlessConfig,
endpoint, and Application Auto Scaling of its provisioned concurrency."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from functions.sagemaker.endpoint import EndpointConfig
from infra import nag
from infra.config import SageMakerConfig
from infra.constructs.inference_function import service_linked_role

VARIANT = "AllTraffic"  # a serverless endpoint has exactly one production variant
_ECR_URI = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com[^/]*/(?P<repo>[^:@]+)"
)


@dataclass(frozen=True)
class ImageFromContext:
    """Build the serving image from a Docker build context (staged at synth, built at deploy)."""

    directory: Path


@dataclass(frozen=True)
class ImageUri:
    """A serving image that already exists in ECR."""

    uri: str


@dataclass(frozen=True)
class ServerlessEndpointProps:
    config: SageMakerConfig  # autoscaling bounds; the endpoint itself comes from `description`
    description: EndpointConfig  # what `preheat deploy sagemaker` deploys too
    image: ImageFromContext | ImageUri
    model_data: Path  # model.tar.gz
    autoscaling: bool = True  # False only where Application Auto Scaling cannot be created (moto)


class ServerlessEndpoint(Construct):
    def __init__(self, scope: Construct, id: str, props: ServerlessEndpointProps) -> None:
        super().__init__(scope, id)
        cfg = props.config
        desc = props.description
        self.endpoint_name = desc.name
        self.variant_name = desc.variant_name
        stack = cdk.Stack.of(self)
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
        # What a serving container needs, and no more: its model data, its image, its logs.
        data = s3_assets.Asset(self, "ModelData", path=str(props.model_data))
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[
                    stack.format_arn(
                        service="s3",
                        region="",
                        account="",
                        resource=data.s3_bucket_name,
                        resource_name=data.s3_object_key,
                    )
                ],
            )
        )
        if isinstance(props.image, ImageFromContext):
            asset = ecr_assets.DockerImageAsset(
                self, "Image", directory=str(props.image.directory), platform=ecr_assets.Platform.LINUX_AMD64
            )
            image_uri = asset.image_uri
            repository_arn = asset.repository.repository_arn
            image_key = asset.asset_hash
        else:
            image_uri = image_key = props.image.uri
            repository_arn = _repository_arn(stack, image_uri)
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], resources=[repository_arn]
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["ecr:GetAuthorizationToken"], resources=["*"]
            )  # no resource-level form
        )
        log_group = stack.format_arn(
            service="logs",
            resource="log-group",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
            resource_name=f"/aws/sagemaker/Endpoints/{desc.name}:*",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group],
            )
        )
        policy = self.role.node.find_child("DefaultPolicy")
        nag.acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken supports no resource-level permissions: AWS requires Resource '*' "
            "(image pulls themselves are limited to the one repository)",
        )
        nag.acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::{nag.arn(self, 'logs', f'log-group:/aws/sagemaker/Endpoints/{desc.name}:*')}]",
            "SageMaker names each instance's log stream at run time; the statement is limited to this "
            "endpoint's own log group",
        )
        self.model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=self.role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=image_uri,
                model_data_url=data.s3_object_url,
                environment=dict(desc.environment),
            ),
        )
        # The role's policy must exist before SageMaker checks that the role can read the model.
        self.model.node.add_dependency(self.role)
        serverless = sagemaker.CfnEndpointConfig.ServerlessConfigProperty(
            memory_size_in_mb=desc.memory_mb,
            max_concurrency=desc.max_concurrency,
            provisioned_concurrency=desc.provisioned_concurrency,
        )
        # Named after the endpoint (so the controller's IAM scope, endpoint-config/<endpoint>*, covers it)
        # plus a hash of everything that forces a replacement, so a replacement gets a new name.
        # Tokens (the region, the cache table) are resolved to their CloudFormation form first, so the
        # name is the same on every synth of the same stack.
        identity = [
            desc.serverless_config(),
            desc.variant_name,
            stack.resolve(dict(desc.environment)),
            image_key,
            data.asset_hash,
        ]
        fingerprint = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            endpoint_config_name=f"{desc.name}-{fingerprint}",
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=desc.variant_name,
                    model_name=self.model.attr_model_name,
                    serverless_config=serverless,
                )
            ],
        )
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=desc.name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
        )
        self.scaling: appscaling.ScalableTarget | None = None
        if props.autoscaling and cfg.provisioned_concurrency > 0:
            self.scaling = appscaling.ScalableTarget(
                self,
                "Scaling",
                service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
                scalable_dimension="sagemaker:variant:DesiredProvisionedConcurrency",
                resource_id=f"endpoint/{desc.name}/variant/{desc.variant_name}",
                min_capacity=cfg.provisioned_concurrency,
                max_capacity=cfg.autoscale_max,
                role=service_linked_role(self, "sagemaker", "SageMakerEndpoint"),
            )
            self.scaling.node.add_dependency(self.endpoint)
            self.scaling.scale_to_track_metric(
                "Utilization",
                target_value=cfg.utilization_target,
                predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_VARIANT_PROVISIONED_CONCURRENCY_UTILIZATION,
            )

    @property
    def model_name(self) -> str:
        return self.model.attr_model_name

    def endpoint_arn(self) -> str:
        # SageMaker ARNs carry resource names in lower case.
        return cdk.Stack.of(self).format_arn(
            service="sagemaker", resource="endpoint", resource_name=self.endpoint_name.lower()
        )

    def endpoint_config_arn_pattern(self) -> str:
        """Every endpoint config named after this endpoint (the controller creates new ones to change
        provisioned concurrency: a serverless variant's capacity lives in its endpoint config)."""
        return cdk.Stack.of(self).format_arn(
            service="sagemaker", resource="endpoint-config", resource_name=f"{self.endpoint_name.lower()}*"
        )


def _repository_arn(stack: cdk.Stack, uri: str) -> str:
    match = _ECR_URI.match(uri)
    if match is None:
        raise ValueError(
            f"preheat.sagemaker.imageUri must be an ECR image URI "
            f"(ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO:TAG), got {uri!r}"
        )
    return f"arn:{stack.partition}:ecr:{match['region']}:{match['account']}:repository/{match['repo']}"
