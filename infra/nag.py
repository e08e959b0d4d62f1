"""cdk-nag (3.x, through CDK's Validations API): the AwsSolutions rules run on every synth, and each
finding we accept is acknowledged where it arises, with the reason written next to it."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import IConstruct

PLUGIN = "AwsSolutions"
RUNTIME_REASON = (
    "python3.12 is preheat's Lambda target: the deps layer's native wheels (onnxruntime, tokenizers, numpy) "
    "are built for it, and one runtime for all functions keeps the layer shared"
)


def enable(app: cdk.App) -> None:
    from cdk_nag import AwsSolutionsChecks

    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """`rule` is a cdk-nag finding id, e.g. "AwsSolutions-IAM5[Resource::*]"; `reason` says why it is right."""
    if len(reason) < 20:
        raise ValueError(f"acknowledging {rule}: give a real reason, not {reason!r}")
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=f"{PLUGIN}::{rule}", reason=reason))


def arn(scope: IConstruct, service: str, resource: str) -> str:
    """An ARN in this stack's account and region, as cdk-nag prints it in finding ids: pseudo parameters
    in angle brackets where the stack is environment-agnostic, literal values where it is not."""
    stack = cdk.Stack.of(scope)
    region = "<AWS::Region>" if cdk.Token.is_unresolved(stack.region) else stack.region
    account = "<AWS::AccountId>" if cdk.Token.is_unresolved(stack.account) else stack.account
    return f"arn:<AWS::Partition>:{service}:{region}:{account}:{resource}"
