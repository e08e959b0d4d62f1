"""The inference function: Python 3.12 Lambda with the model and deps layers (or a container image),
alias `live`, provisioned concurrency under Application Auto Scaling or SnapStart, and a Function URL."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import nag
from infra.built_model import BuiltModel
from infra.config import ConfigError, LambdaConfig
from infra.constructs.code import inference_code

# The handlers and the runtime's environment live in infra/function_settings.py (no CDK import), which
# the local twin shares; runtime_environment is re-exported where it used to be.
from infra.function_settings import ALIAS, inference_handler
from infra.function_settings import runtime_environment as runtime_environment
from layers import function_code

IMAGE_DOCKERFILE = "infra/images/lambda.Dockerfile"
# Tag on the scalable target: the controller may change scheduled actions only where it is present.
SCALING_TAG = "preheat:scalable-target"


@dataclass(frozen=True)
class InferenceFunctionProps:
    config: LambdaConfig
    service: str
    namespace: str
    root: Path  # repository root (function code, and the image build context)
    model: BuiltModel  # the model the layer holds (infra/built_model.py checked it does)
    model_layer: Path  # a directory holding model/
    deps_layer: Path  # a directory holding python/
    alias: bool = True  # False only where aliases cannot be created (moto)
    extra_environment: Mapping[str, str] = field(default_factory=dict)


class InferenceFunction(Construct):
    def __init__(self, scope: Construct, id: str, props: InferenceFunctionProps) -> None:
        super().__init__(scope, id)
        cfg = props.config
        architecture = (
            lambda_.Architecture.ARM_64 if cfg.architecture == "arm64" else lambda_.Architecture.X86_64
        )
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=logs.RetentionDays[_retention_name(cfg.log_retention_days)],
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        # An explicit role instead of AWSLambdaBasicExecutionRole: write to this log group, nothing more.
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[f"{self.log_group.log_group_arn}"],
            )
        )
        environment = {
            **runtime_environment(cfg, props.service, props.namespace),
            **props.extra_environment,
        }
        common = {
            "architecture": architecture,
            "memory_size": cfg.memory_mb,
            "timeout": cdk.Duration.seconds(cfg.timeout_seconds),
            "reserved_concurrent_executions": cfg.reserved_concurrency,
            "environment": environment,
            "role": self.role,
            "log_group": self.log_group,
            "logging_format": lambda_.LoggingFormat.TEXT,  # EMF lines must reach the log stream verbatim
            "description": f"preheat inference ({props.service}): model {props.model.describe()}",
        }
        self.model_layer: lambda_.LayerVersion | None = None
        self.deps_layer: lambda_.LayerVersion | None = None
        if cfg.package == "image":
            build_args, ignore = _image_context(props)
            self.function: lambda_.Function = lambda_.DockerImageFunction(
                self,
                "Function",
                code=lambda_.DockerImageCode.from_image_asset(
                    str(props.root),
                    file=IMAGE_DOCKERFILE,
                    build_args=build_args,
                    platform=_platform(cfg.architecture),
                    exclude=ignore,
                    ignore_mode=cdk.IgnoreMode.DOCKER,
                ),
                **common,  # type: ignore[arg-type]
            )
        else:
            runtime = lambda_.Runtime.PYTHON_3_12
            self.model_layer = lambda_.LayerVersion(
                self,
                "ModelLayer",
                code=lambda_.Code.from_asset(str(props.model_layer)),
                compatible_runtimes=[runtime],
                description=f"model {props.model.describe()}, id {props.model.model_id[:12]} (mounts at /opt/model)",
            )
            self.deps_layer = lambda_.LayerVersion(
                self,
                "DepsLayer",
                code=lambda_.Code.from_asset(str(props.deps_layer)),
                compatible_runtimes=[runtime],
                compatible_architectures=[architecture],
                description=f"the runtime's dependencies for {cfg.architecture} (mounts at /opt/python)",
            )
            snapstart = cfg.warm_start == "snapstart"
            # The code with Python 3.12 bytecode, when `preheat build layers` made it from these sources:
            # /var/task is read-only, so code without bytecode is compiled on every cold start.
            compiled = function_code.current(props.root)
            if compiled is None:
                cdk.Annotations.of(self).add_warning_v2(
                    "preheat:code-without-bytecode",
                    "the function's code ships without bytecode (build/code/inference is missing or older "
                    "than functions/), so every cold start compiles it: run `preheat build layers`",
                )
            self.function = lambda_.Function(
                self,
                "Function",
                runtime=runtime,
                handler=inference_handler(cfg),
                code=lambda_.Code.from_asset(str(compiled)) if compiled else inference_code(props.root),
                layers=[self.deps_layer, self.model_layer],
                snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if snapstart else None,
                **common,  # type: ignore[arg-type]
            )
            nag.acknowledge(self.function, "AwsSolutions-L1", nag.RUNTIME_REASON)
        self.alias: lambda_.Alias | None = None
        self.scaling: appscaling.ScalableTarget | None = None
        self.url: lambda_.FunctionUrl | None = None
        if not props.alias:
            return
        provisioned = cfg.provisioned if cfg.warm_start == "provisioned" else None
        self.alias = lambda_.Alias(
            self,
            "Live",
            alias_name=ALIAS,
            version=self.function.current_version,
            provisioned_concurrent_executions=provisioned.min if provisioned and provisioned.min else None,
        )
        if provisioned is not None:
            self.scaling = self._autoscale(provisioned.min, provisioned.max, provisioned.utilization_target)
            for action in provisioned.schedules:
                self.scaling.scale_on_schedule(
                    action.name,
                    schedule=appscaling.Schedule.expression(action.schedule),
                    min_capacity=action.min,
                    max_capacity=action.max,
                    time_zone=cdk.TimeZone.of(action.timezone) if action.timezone else None,
                )
        if cfg.url:
            self.url = self.alias.add_function_url(
                auth_type=lambda_.FunctionUrlAuthType.NONE
                if cfg.url_auth == "NONE"
                else lambda_.FunctionUrlAuthType.AWS_IAM,
            )

    @property
    def target(self) -> lambda_.IFunction:
        """What callers invoke: the `live` alias where there is one."""
        return self.alias if self.alias is not None else self.function

    @property
    def qualified_name(self) -> str:
        return (
            f"{self.function.function_name}:{ALIAS}"
            if self.alias is not None
            else self.function.function_name
        )

    @property
    def scalable_resource_id(self) -> str:
        return f"function:{self.function.function_name}:{ALIAS}"

    def _autoscale(self, low: int, high: int, utilization: float) -> appscaling.ScalableTarget:
        assert self.alias is not None
        target = appscaling.ScalableTarget(
            self,
            "Scaling",
            service_namespace=appscaling.ServiceNamespace.LAMBDA,
            scalable_dimension="lambda:function:ProvisionedConcurrency",
            resource_id=self.scalable_resource_id,
            min_capacity=low,
            max_capacity=high,
            role=service_linked_role(self, "lambda", "LambdaConcurrency"),
        )
        target.node.add_dependency(self.alias)
        cdk.Tags.of(target).add(SCALING_TAG, cdk.Names.unique_id(self))
        # Maximum, not Average: a burst that saturates every provisioned instance for ten seconds
        # barely moves a one-minute average, yet each of its requests spilled over to a cold start.
        target.scale_to_track_metric(
            "Utilization",
            target_value=utilization,
            custom_metric=cloudwatch.Metric(
                namespace="AWS/Lambda",
                metric_name="ProvisionedConcurrencyUtilization",
                dimensions_map={"FunctionName": self.function.function_name, "Resource": self.qualified_name},
                statistic="Maximum",
                period=cdk.Duration.minutes(1),
            ),
        )
        return target


def service_linked_role(scope: Construct, service: str, suffix: str) -> iam.IRole:
    """Application Auto Scaling's service-linked role for `service` (created by AWS on first use), as
    CloudFormation recommends, rather than a new role holding no permissions of its own."""
    arn = cdk.Stack.of(scope).format_arn(
        service="iam",
        region="",
        resource="role",
        resource_name=f"aws-service-role/{service}.application-autoscaling.amazonaws.com/"
        f"AWSServiceRoleForApplicationAutoScaling_{suffix}",
    )
    return iam.Role.from_role_arn(scope, f"{suffix}ScalingRole", arn, mutable=False)


def _retention_name(days: int) -> str:
    names = {
        1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS", 30: "ONE_MONTH",
        60: "TWO_MONTHS", 90: "THREE_MONTHS", 180: "SIX_MONTHS", 365: "ONE_YEAR", 731: "TWO_YEARS",
        1827: "FIVE_YEARS", 3653: "TEN_YEARS",
    }  # fmt: skip
    return names[days]


def _platform(architecture: str) -> cdk.aws_ecr_assets.Platform:
    from aws_cdk import aws_ecr_assets as ecr_assets

    return ecr_assets.Platform.LINUX_ARM64 if architecture == "arm64" else ecr_assets.Platform.LINUX_AMD64


def _image_context(props: InferenceFunctionProps) -> tuple[dict[str, str], list[str]]:
    """Build args and ignore patterns: the context is the repository, minus what the image does not copy."""
    try:
        model = props.model_layer.relative_to(props.root).as_posix()
        deps = props.deps_layer.relative_to(props.root).as_posix()
    except ValueError:
        raise ConfigError(
            "preheat.lambda.package 'image' builds from the repository, so preheat.layers.model and "
            f"preheat.layers.depsRoot must lie inside {props.root}"
        ) from None
    keep = ["functions", IMAGE_DOCKERFILE, model, deps]
    ignore = ["*", *(f"!{k}" for k in keep), "functions/sagemaker", "functions/baselines", "**/__pycache__"]
    return {"MODEL_LAYER": model, "DEPS_LAYER": deps}, ignore
