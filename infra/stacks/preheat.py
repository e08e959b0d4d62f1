"""The whole system in one stack: `cdk deploy` puts every part on AWS.

Composition only: config -> props -> constructs. What moto's CloudFormation cannot create is left out
when config.target is "moto" (see PreheatConfig.moto), everything else is the same stack.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from constructs import Construct

from infra import dashboard as spec
from infra.built_model import require_model, require_model_data, require_model_layer
from infra.config import ROOT, PreheatConfig, controller_pc_mode, require_layers, require_sagemaker
from infra.constructs.cache_table import CacheTable, CacheTableProps
from infra.constructs.inference_function import SCALING_TAG, InferenceFunction, InferenceFunctionProps
from infra.constructs.keep_warm import EndpointTarget, InferenceTarget, KeepWarm, KeepWarmProps
from infra.constructs.observability import Observability, ObservabilityProps
from infra.constructs.sagemaker_endpoint import (
    ImageFromContext,
    ImageUri,
    ServerlessEndpoint,
    ServerlessEndpointProps,
)
from infra.function_settings import (
    ALIAS,
    cache_environment,
    controller_max_concurrency,
    endpoint_environment,
)

# moto never pulls images; any well-formed ECR URI stands in for the serving image there.
MOTO_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/preheat-sagemaker:moto"


class PreheatStack(cdk.Stack):
    def __init__(self, scope: Construct, id: str, config: PreheatConfig, *, root: Path = ROOT) -> None:
        env = (
            cdk.Environment(account=config.account, region=config.region)
            if config.account or config.region
            else None
        )
        super().__init__(
            scope,
            id,
            stack_name=config.stack_name,
            env=env,
            description="preheat: serverless ML inference without paying for cold starts",
        )
        # The model first: an unbuilt one is told how to build it, then its layers how to build them.
        model = require_model(config)
        model_layer, deps_layer = require_layers(config)
        require_model_layer(config, model)
        lam = config.lambda_
        self.cache = CacheTable(self, "Cache", CacheTableProps()) if config.cache.table else None
        cache_env = cache_environment(config.cache, self.cache.table_name if self.cache is not None else None)
        self.inference = InferenceFunction(
            self,
            "Inference",
            InferenceFunctionProps(
                config=lam,
                service=config.service,
                namespace=config.namespace,
                root=root,
                model=model,
                model_layer=model_layer,
                deps_layer=deps_layer,
                alias=not config.moto,
                extra_environment=cache_env,
            ),
        )
        if self.cache is not None:
            self.cache.grant_cache(self.inference.function)

        self.endpoint: ServerlessEndpoint | None = None
        sm = config.sagemaker
        if sm.enabled:
            image: ImageFromContext | ImageUri
            if sm.image_uri:
                image = ImageUri(sm.image_uri)
            elif config.moto:
                image = ImageUri(MOTO_IMAGE)
            else:
                image = ImageFromContext(require_sagemaker(config, image=True))
            require_sagemaker(config, image=False)
            require_model_data(config, model)
            self.endpoint = ServerlessEndpoint(
                self,
                "SageMaker",
                ServerlessEndpointProps(
                    config=sm,
                    description=sm.description(
                        endpoint_environment(lam, config.service, config.namespace, cache_env, self.region)
                    ),
                    image=image,
                    model_data=sm.model_data,
                    autoscaling=not config.moto,
                ),
            )
            if self.cache is not None:
                self.cache.grant_cache(self.endpoint.role)

        if config.warmer.enabled or config.controller.enabled:
            endpoint_target = None
            if self.endpoint is not None:
                endpoint_target = EndpointTarget(
                    endpoint_name=self.endpoint.endpoint_name,
                    variant_name=self.endpoint.variant_name,
                    endpoint_arn=self.endpoint.endpoint_arn(),
                    endpoint_config_arns=self.endpoint.endpoint_config_arn_pattern(),
                )
            scaling = self.inference.scaling
            self.keep_warm: KeepWarm | None = KeepWarm(
                self,
                "KeepWarm",
                KeepWarmProps(
                    target=InferenceTarget(
                        function=self.inference.target,
                        function_name=self.inference.function.function_name,
                        qualifier=ALIAS if self.inference.alias is not None else None,
                        service=config.service,
                        namespace=config.namespace,
                        memory_mb=lam.memory_mb,
                        scaling_tag=(SCALING_TAG, cdk.Names.unique_id(self.inference)) if scaling else None,
                    ),
                    warmer=config.warmer,
                    controller=config.controller,
                    pc_mode=controller_pc_mode(config),
                    max_concurrency=controller_max_concurrency(lam, config.controller.max_concurrency),
                    root=root,
                    deps_layer=self.inference.deps_layer or deps_layer,
                    endpoint=endpoint_target,
                    architecture=lam.architecture,
                ),
            )
        else:
            self.keep_warm = None

        definition = spec.for_config(config, function_name=self.inference.function.function_name)
        self.observability = Observability(
            self, "Observability", ObservabilityProps(definition, config.dashboard.alarms.topic_arn)
        )

        cdk.CfnOutput(self, "FunctionName", value=self.inference.function.function_name)
        cdk.CfnOutput(self, "ModelName", value=model.manifest.name, description=model.describe())
        if self.inference.url is not None:
            cdk.CfnOutput(self, "FunctionUrl", value=self.inference.url.url)
        if self.cache is not None:
            cdk.CfnOutput(self, "CacheTableName", value=self.cache.table_name)
        if self.endpoint is not None:
            cdk.CfnOutput(self, "EndpointName", value=self.endpoint.endpoint_name)
        cdk.CfnOutput(self, "DashboardName", value=config.dashboard.name)
