"""The warmer and the provisioned-concurrency controller: two small functions on EventBridge
schedules, each with exactly the permissions it uses (see warmers/ for what they do).

- warmer (`warmers.warmer.handler`): k concurrent warm-up pings to the inference alias. Uses
  lambda:InvokeFunction on that alias, nothing else.
- controller (`warmers.controller.handler`): reads the inference metrics (cloudwatch:GetMetricData),
  replays its policy and acts: Lambda provisioned concurrency on the alias (pcMode `direct`:
  lambda:Get/Put/DeleteProvisionedConcurrencyConfig; `scheduled`: an Application Auto Scaling
  scheduled action on the stack's scalable target), SageMaker Serverless provisioned concurrency (a new
  endpoint config + UpdateEndpoint), and the warm-up fan-out (by invoking the warmer asynchronously).

Their settings reach them as the environment variables warmers/settings.py reads. The code asset is
warmers/ plus the few stdlib-only modules of functions/ they share (infra/constructs/code.py says
which); the controller gets the deps layer for numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

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
from infra.function_settings import (
    CONTROLLER_HANDLER,
    CONTROLLER_MEMORY_MB,
    CONTROLLER_RESERVED,
    CONTROLLER_TIMEOUT_S,
    WARMER_HANDLER,
    WARMER_MEMORY_MB,
    controller_environment,
    warmer_environment,
    warmer_timeout_s,
)


@dataclass(frozen=True)
class InferenceTarget:
    """The function the warmers act on."""

    function: lambda_.IFunction  # what they invoke: the `live` alias where there is one
    function_name: str
    qualifier: str | None  # "live", or None where there is no alias (moto)
    service: str  # the inference metrics' `service` dimension
    namespace: str  # and their namespace
    memory_mb: int
    scaling_tag: tuple[str, str] | None  # the tag on the alias's scalable target, when there is one


@dataclass(frozen=True)
class EndpointTarget:
    endpoint_name: str
    variant_name: str
    endpoint_arn: str
    endpoint_config_arns: str  # an ARN pattern: endpoint-config/<endpoint>*


@dataclass(frozen=True)
class KeepWarmProps:
    target: InferenceTarget
    warmer: WarmerConfig
    controller: ControllerConfig
    pc_mode: Literal["direct", "scheduled", "off"]
    max_concurrency: int
    root: Path
    deps_layer: lambda_.ILayerVersion | Path  # numpy for the controller: a layer, or its directory
    endpoint: EndpointTarget | None = None
    architecture: str = "x86_64"
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH


class KeepWarm(Construct):
    def __init__(self, scope: Construct, id: str, props: KeepWarmProps) -> None:
        super().__init__(scope, id)
        t = props.target
        self.warmer: lambda_.Function | None = None
        self.controller: lambda_.Function | None = None
        self.rules: list[events.Rule] = []
        if props.warmer.enabled:
            env = warmer_environment(
                function_name=t.function_name,
                qualifier=t.qualifier,
                concurrency=props.warmer.concurrency,
                max_concurrency=props.max_concurrency,
                hold_ms=props.warmer.hold_ms,
                service=t.service,
                namespace=t.namespace,
            )
            self.warmer = self._function(
                "Warmer",
                WARMER_HANDLER,
                props,
                env,
                timeout=cdk.Duration.seconds(warmer_timeout_s(props.warmer.hold_ms)),
            )
            _allow(self.warmer, ["lambda:InvokeFunction"], [t.function.function_arn])
            self._schedule("WarmerSchedule", props.warmer.schedule, self.warmer, "keep instances warm")
        if props.controller.enabled:
            self.controller = self._controller(props)
            self._schedule(
                "ControllerSchedule",
                props.controller.schedule,
                self.controller,
                "adjust provisioned concurrency",
            )

    def _controller(self, props: KeepWarmProps) -> lambda_.Function:
        t, c = props.target, props.controller
        env = controller_environment(
            policy=c.policy,
            namespace=t.namespace,
            service=t.service,
            memory_mb=t.memory_mb,
            max_concurrency=props.max_concurrency,
            function_name=t.function_name,
            qualifier=t.qualifier,
            pc_mode=props.pc_mode,
            hold_ms=props.warmer.hold_ms,
            endpoint_name=props.endpoint.endpoint_name if props.endpoint is not None else None,
            variant_name=props.endpoint.variant_name if props.endpoint is not None else None,
            warmer_function=self.warmer.function_name if self.warmer is not None else None,
        )
        layer = props.deps_layer
        if isinstance(layer, Path):
            layer = lambda_.LayerVersion(
                self,
                "DepsLayer",
                code=lambda_.Code.from_asset(str(layer)),
                description="numpy for the controller",
            )
        fn = self._function(
            "Controller",
            CONTROLLER_HANDLER,
            props,
            env,
            timeout=cdk.Duration.seconds(CONTROLLER_TIMEOUT_S),
            memory_mb=CONTROLLER_MEMORY_MB,
            layers=[layer],
            reserved=CONTROLLER_RESERVED,
        )
        self._grant_controller(fn, props)
        return fn

    def _function(
        self,
        id: str,
        handler: str,
        props: KeepWarmProps,
        env: dict[str, str],
        *,
        timeout: cdk.Duration,
        memory_mb: int = WARMER_MEMORY_MB,
        layers: list[lambda_.ILayerVersion] | None = None,
        reserved: int | None = None,
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
            layers=layers,
            memory_size=memory_mb,
            timeout=timeout,
            reserved_concurrent_executions=reserved,
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
        star: list[str] = ["cloudwatch:GetMetricData"]
        # The fan-out: through the warmer when there is one, else pings straight to the alias.
        pinged = self.warmer.function_arn if self.warmer is not None else t.function.function_arn
        _allow(fn, ["lambda:InvokeFunction"], [pinged])
        if props.pc_mode == "direct" and t.qualifier:
            alias_arn = stack.format_arn(
                service="lambda",
                resource="function",
                arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                resource_name=f"{t.function_name}:{t.qualifier}",
            )
            _allow(
                fn,
                [
                    "lambda:GetProvisionedConcurrencyConfig",
                    "lambda:PutProvisionedConcurrencyConfig",
                    "lambda:DeleteProvisionedConcurrencyConfig",
                ],
                [alias_arn],
            )
        if props.pc_mode == "scheduled" and t.scaling_tag:
            # Scalable-target ARNs end in an id AWS generates at registration, so they cannot be named
            # here: allow this account's and region's targets, and only the one carrying this stack's tag.
            key, value = t.scaling_tag
            fn.add_to_role_policy(
                iam.PolicyStatement(
                    actions=[
                        "application-autoscaling:PutScheduledAction",
                        "application-autoscaling:RegisterScalableTarget",
                    ],
                    resources=[
                        stack.format_arn(
                            service="application-autoscaling", resource="scalable-target", resource_name="*"
                        )
                    ],
                    conditions={"StringEquals": {f"aws:ResourceTag/{key}": value}},
                )
            )
            star += [
                "application-autoscaling:DescribeScalableTargets",
                "application-autoscaling:DescribeScheduledActions",
            ]
            nag.acknowledge(
                _policy(fn),
                f"AwsSolutions-IAM5[Resource::{nag.arn(fn, 'application-autoscaling', 'scalable-target/*')}]",
                "scalable-target ARNs end in an id AWS generates when the target is registered; the statement "
                "is limited to this account and region and, by an aws:ResourceTag condition, to this stack's target",
            )
        # These actions support no resource-level permissions: AWS requires "*".
        fn.add_to_role_policy(iam.PolicyStatement(actions=star, resources=["*"]))
        nag.acknowledge(
            _policy(fn),
            "AwsSolutions-IAM5[Resource::*]",
            f"{', '.join(star)} support no resource-level permissions: AWS requires Resource '*' for them, "
            "and only they use it here",
        )
        if props.endpoint is not None:
            e = props.endpoint
            _allow(
                fn,
                # UpdateEndpoint is authorized on the endpoint config it switches to as well.
                [
                    "sagemaker:CreateEndpointConfig",
                    "sagemaker:DescribeEndpointConfig",
                    "sagemaker:UpdateEndpoint",
                ],
                [e.endpoint_config_arns],
            )
            _allow(fn, ["sagemaker:UpdateEndpoint", "sagemaker:DescribeEndpoint"], [e.endpoint_arn])
            nag.acknowledge(
                _policy(fn),
                f"AwsSolutions-IAM5[Resource::{nag.arn(fn, 'sagemaker', f'endpoint-config/{e.endpoint_name.lower()}*')}]",
                "the controller creates a new endpoint config (named after the endpoint, with a generated suffix) "
                "each time it changes provisioned concurrency: the names exist only at run time",
            )


def _allow(fn: lambda_.Function, actions: list[str], resources: list[str]) -> None:
    fn.add_to_role_policy(iam.PolicyStatement(actions=actions, resources=resources))


def _policy(fn: lambda_.Function) -> IConstruct:
    """The role's default policy, where cdk-nag reports IAM findings."""
    assert fn.role is not None
    return fn.role.node.find_child("DefaultPolicy")
