"""The warmer and the provisioned-concurrency controller: two small functions on EventBridge
schedules, each with exactly the permissions it uses.

- warmer (`warmers.warmer.handler`): pings the inference alias with N concurrent warm-up events
  ({"preheat": "warmup", "hold_ms": H}) so that N instances stay initialized. Needs
  lambda:InvokeFunction on the alias, nothing else.
- controller (`warmers.controller.handler`): reads the inference metrics (cloudwatch:GetMetricData)
  and sets provisioned concurrency on the alias, directly (lambda:*ProvisionedConcurrencyConfig) or
  through Application Auto Scaling scheduled actions; for SageMaker it creates an endpoint config with
  the new provisioned concurrency and points the endpoint at it.

Their settings reach them as environment variables, listed in ENVIRONMENT below (and in the README).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct, IConstruct

from infra import nag
from infra.config import ControllerConfig, WarmerConfig
from infra.constructs.code import warmers_code

WARMER_HANDLER = "warmers.warmer.handler"
CONTROLLER_HANDLER = "warmers.controller.handler"


@dataclass(frozen=True)
class InferenceTarget:
    """The function the warmers act on."""

    function: lambda_.IFunction  # what they invoke: the `live` alias where there is one
    function_name: str
    qualifier: str | None  # "live", or None where there is no alias (moto)
    service: str
    namespace: str
    scalable_resource_id: str | None  # Application Auto Scaling resource id, when it autoscales
    scaling_tag: tuple[str, str] | None  # the tag on that scalable target
    provisioned_min: int
    provisioned_max: int


@dataclass(frozen=True)
class EndpointTarget:
    endpoint_name: str
    variant_name: str
    model_name: str
    endpoint_arn: str
    endpoint_config_arns: str  # an ARN pattern: endpoint-config/<endpoint>*
    memory_mb: int
    max_concurrency: int
    provisioned_min: int
    provisioned_max: int


@dataclass(frozen=True)
class KeepWarmProps:
    target: InferenceTarget
    warmer: WarmerConfig
    controller: ControllerConfig
    root: Path
    endpoint: EndpointTarget | None = None
    architecture: str = "x86_64"
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH


class KeepWarm(Construct):
    def __init__(self, scope: Construct, id: str, props: KeepWarmProps) -> None:
        super().__init__(scope, id)
        t = props.target
        base = {
            "PREHEAT_TARGET_FUNCTION": t.function_name,
            "PREHEAT_TARGET_QUALIFIER": t.qualifier or "",
            "PREHEAT_SERVICE": t.service,
            "POWERTOOLS_METRICS_NAMESPACE": t.namespace,
        }
        self.warmer: lambda_.Function | None = None
        self.controller: lambda_.Function | None = None
        self.rules: list[events.Rule] = []
        if props.warmer.enabled:
            self.warmer = self._function(
                "Warmer",
                WARMER_HANDLER,
                props,
                {
                    **base,
                    "POWERTOOLS_SERVICE_NAME": f"{t.service}-warmer",
                    "PREHEAT_WARM_CONCURRENCY": str(props.warmer.concurrency),
                    "PREHEAT_WARMUP_HOLD_MS": str(props.warmer.hold_ms),
                },
                # Pings run concurrently and each holds its instance for hold_ms: allow for that.
                timeout=cdk.Duration.seconds(30 + props.warmer.hold_ms // 1000),
            )
            # The alias ARN (or, without an alias, the function's own): not `function:*` as grant_invoke gives.
            self.warmer.add_to_role_policy(
                iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[t.function.function_arn])
            )
            self._schedule("WarmerSchedule", props.warmer.schedule, self.warmer, "keep instances warm")
        if props.controller.enabled:
            env = {
                **base,
                "POWERTOOLS_SERVICE_NAME": f"{t.service}-controller",
                "PREHEAT_PC_MIN": str(t.provisioned_min),
                "PREHEAT_PC_MAX": str(t.provisioned_max),
            }
            if t.scalable_resource_id:
                env["PREHEAT_SCALABLE_RESOURCE_ID"] = t.scalable_resource_id
            if props.endpoint is not None:
                e = props.endpoint
                env |= {
                    "PREHEAT_SAGEMAKER_ENDPOINT": e.endpoint_name,
                    "PREHEAT_SAGEMAKER_VARIANT": e.variant_name,
                    "PREHEAT_SAGEMAKER_MODEL": e.model_name,
                    "PREHEAT_SAGEMAKER_MEMORY_MB": str(e.memory_mb),
                    "PREHEAT_SAGEMAKER_MAX_CONCURRENCY": str(e.max_concurrency),
                    "PREHEAT_SAGEMAKER_PC_MIN": str(e.provisioned_min),
                    "PREHEAT_SAGEMAKER_PC_MAX": str(e.provisioned_max),
                }
            self.controller = self._function(
                "Controller", CONTROLLER_HANDLER, props, env, timeout=cdk.Duration.seconds(60)
            )
            self._grant_controller(self.controller, props)
            self._schedule(
                "ControllerSchedule",
                props.controller.schedule,
                self.controller,
                "adjust provisioned concurrency",
            )

    def _function(
        self, id: str, handler: str, props: KeepWarmProps, env: dict[str, str], *, timeout: cdk.Duration
    ) -> lambda_.Function:
        group = logs.LogGroup(
            self, f"{id}Logs", retention=props.log_retention, removal_policy=cdk.RemovalPolicy.DESTROY
        )
        role = iam.Role(self, f"{id}Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[group.log_group_arn]
            )
        )
        fn = lambda_.Function(
            self,
            id,
            runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=lambda_.Architecture.ARM_64
            if props.architecture == "arm64"
            else lambda_.Architecture.X86_64,
            handler=handler,
            code=warmers_code(props.root),
            memory_size=256,
            timeout=timeout,
            # One run at a time: two overlapping controller runs would fight over the same capacity.
            reserved_concurrent_executions=1,
            environment=env,
            role=role,
            log_group=group,
            description=f"preheat {id.lower()}",
        )
        nag.acknowledge(fn, "AwsSolutions-L1", nag.RUNTIME_REASON)
        return fn

    def _schedule(self, id: str, expression: str, function: lambda_.IFunction, what: str) -> None:
        rule = events.Rule(
            self, id, schedule=events.Schedule.expression(expression), description=f"preheat: {what}"
        )
        rule.add_target(targets.LambdaFunction(function, retry_attempts=0))
        self.rules.append(rule)

    def _grant_controller(self, fn: lambda_.Function, props: KeepWarmProps) -> None:
        t = props.target
        stack = cdk.Stack.of(self)
        # CloudWatch GetMetricData has no resource-level permissions: AWS requires "*".
        fn.add_to_role_policy(iam.PolicyStatement(actions=["cloudwatch:GetMetricData"], resources=["*"]))
        nag.acknowledge(
            _policy(fn),
            "AwsSolutions-IAM5[Resource::*]",
            "cloudwatch:GetMetricData and application-autoscaling:DescribeScheduledActions support no "
            "resource-level permissions: AWS requires Resource '*' for them (and only they use it here)",
        )
        if t.qualifier:
            alias_arn = stack.format_arn(
                service="lambda",
                resource="function",
                arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                resource_name=f"{t.function_name}:{t.qualifier}",
            )
            fn.add_to_role_policy(
                iam.PolicyStatement(
                    actions=[
                        "lambda:GetProvisionedConcurrencyConfig",
                        "lambda:PutProvisionedConcurrencyConfig",
                        "lambda:DeleteProvisionedConcurrencyConfig",
                    ],
                    resources=[alias_arn],
                )
            )
        if t.scalable_resource_id and t.scaling_tag:
            # Scalable-target ARNs end in an id AWS generates at creation, so they cannot be named here:
            # allow this account's and region's targets, and only the one carrying this stack's tag.
            key, value = t.scaling_tag
            fn.add_to_role_policy(
                iam.PolicyStatement(
                    actions=[
                        "application-autoscaling:PutScheduledAction",
                        "application-autoscaling:DeleteScheduledAction",
                    ],
                    resources=[
                        stack.format_arn(
                            service="application-autoscaling", resource="scalable-target", resource_name="*"
                        )
                    ],
                    conditions={"StringEquals": {f"aws:ResourceTag/{key}": value}},
                )
            )
            # Describe calls have no resource-level permissions: AWS requires "*".
            fn.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["application-autoscaling:DescribeScheduledActions"], resources=["*"]
                )
            )
            nag.acknowledge(
                _policy(fn),
                f"AwsSolutions-IAM5[Resource::{nag.arn(fn, 'application-autoscaling', 'scalable-target/*')}]",
                "scalable-target ARNs end in an id AWS generates when the target is registered; the statement "
                "is limited to this account and region and, by an aws:ResourceTag condition, to this stack's target",
            )
        if props.endpoint is not None:
            e = props.endpoint
            nag.acknowledge(
                _policy(fn),
                f"AwsSolutions-IAM5[Resource::{nag.arn(fn, 'sagemaker', f'endpoint-config/{e.endpoint_name.lower()}*')}]",
                "the controller creates a new endpoint config (named after the endpoint, with a generated suffix) "
                "each time it changes provisioned concurrency: the names exist only at run time",
            )
            fn.add_to_role_policy(
                iam.PolicyStatement(
                    # UpdateEndpoint is authorized on the endpoint config it switches to as well.
                    actions=[
                        "sagemaker:CreateEndpointConfig",
                        "sagemaker:DescribeEndpointConfig",
                        "sagemaker:UpdateEndpoint",
                    ],
                    resources=[e.endpoint_config_arns],
                )
            )
            fn.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["sagemaker:UpdateEndpoint", "sagemaker:DescribeEndpoint"],
                    resources=[e.endpoint_arn],
                )
            )


def _policy(fn: lambda_.Function) -> IConstruct:
    """The role's default policy, where cdk-nag reports IAM findings."""
    assert fn.role is not None
    return fn.role.node.find_child("DefaultPolicy")
