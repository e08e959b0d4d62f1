"""What the controller does with a decision, through the real AWS APIs, within bounds.

  * Lambda provisioned concurrency on an alias: directly (Get/Put/DeleteProvisionedConcurrencyConfig)
    or through an Application Auto Scaling scheduled action that sets min = max = the target a minute
    ahead (for accounts where scaling goes through Application Auto Scaling);
  * SageMaker Serverless Inference ProvisionedConcurrency: a new endpoint config (a copy of the
    current one with the variant's ProvisionedConcurrency changed) and UpdateEndpoint;
  * the warmer's fan-out: an asynchronous invocation of the warmer Lambda, or the pings themselves.

Every call is retried on throttling and transient errors (`retry.py`); whatever still fails becomes
an `ActionResult` with the error, never an exception. Targets are clamped to [0, maximum] here too,
whatever the policy said.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from warmers import retry
from warmers.fanout import fan_out
from warmers.settings import Backoff

LAMBDA_PC_DIMENSION = "lambda:function:ProvisionedConcurrency"
SCHEDULED_ACTION = "preheat-controller"
# Fields CreateEndpointConfig accepts, copied from DescribeEndpointConfig.
_CONFIG_KEYS = (
    "DataCaptureConfig",
    "KmsKeyId",
    "AsyncInferenceConfig",
    "ExplainerConfig",
    "ShadowProductionVariants",
    "ExecutionRoleArn",
    "VpcConfig",
    "EnableNetworkIsolation",
)
_VARIANT_KEYS = (
    "VariantName",
    "ModelName",
    "InitialInstanceCount",
    "InstanceType",
    "InitialVariantWeight",
    "AcceleratorType",
    "CoreDumpConfig",
    "ServerlessConfig",
    "VolumeSizeInGB",
    "ModelDataDownloadTimeoutInSeconds",
    "ContainerStartupHealthCheckTimeoutInSeconds",
    "EnableSSMAccess",
    "ManagedInstanceScaling",
    "RoutingConfig",
    "InferenceAmiVersion",
)


@dataclass
class ActionResult:
    target: str  # lambda-pc | sagemaker-pc | warmer
    action: str  # set | unchanged | skipped | invoked | error
    desired: int
    previous: int | None = None
    attempts: int = 0
    slept_ms: float | None = None  # time spent backing off between attempts
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if v is not None and v != {}}
        return out


def clamp(value: int, maximum: int) -> int:
    return max(0, min(int(value), int(maximum)))


class _Calls:
    """Retried calls that count their attempts for the report."""

    def __init__(self, backoff: Backoff) -> None:
        self.backoff = backoff
        self.attempts = retry.Attempts()

    def __call__(self, fn: Any, **kwargs: Any) -> Any:
        return retry.call(lambda: fn(**kwargs), self.backoff, attempts=self.attempts)


def _count(result: ActionResult, calls: _Calls) -> None:
    result.attempts = calls.attempts.count
    if calls.attempts.slept_s:
        result.slept_ms = round(calls.attempts.slept_s * 1000, 1)


def _failed(result: ActionResult, exc: BaseException, calls: _Calls) -> ActionResult:
    result.action = "error"
    result.error = f"{retry.error_code(exc)}: {exc}"[:400]
    _count(result, calls)
    return result


def lambda_pc_direct(
    lam: Any, function: str, alias: str, desired: int, maximum: int, backoff: Backoff
) -> ActionResult:
    desired = clamp(desired, maximum)
    calls = _Calls(backoff)
    result = ActionResult("lambda-pc", "error", desired, detail={"mode": "direct", "alias": alias})
    try:
        try:
            current = calls(lam.get_provisioned_concurrency_config, FunctionName=function, Qualifier=alias)
            previous = int(current.get("RequestedProvisionedConcurrentExecutions", 0))
        except Exception as exc:
            if retry.error_code(exc) != "ProvisionedConcurrencyConfigNotFoundException":
                raise
            previous = 0
        result.previous = previous
        if previous == desired:
            result.action = "unchanged"
        elif desired == 0:
            calls(lam.delete_provisioned_concurrency_config, FunctionName=function, Qualifier=alias)
            result.action = "set"
        else:
            calls(
                lam.put_provisioned_concurrency_config,
                FunctionName=function,
                Qualifier=alias,
                ProvisionedConcurrentExecutions=desired,
            )
            result.action = "set"
    except Exception as exc:
        return _failed(result, exc, calls)
    _count(result, calls)
    return result


def lambda_pc_scheduled(
    aas: Any,
    function: str,
    alias: str,
    desired: int,
    maximum: int,
    backoff: Backoff,
    *,
    now: datetime,
    lead: timedelta = timedelta(minutes=1),
) -> ActionResult:
    desired = clamp(desired, maximum)
    calls = _Calls(backoff)
    resource = f"function:{function}:{alias}"
    result = ActionResult("lambda-pc", "error", desired, detail={"mode": "scheduled", "resource": resource})
    try:
        targets = calls(
            aas.describe_scalable_targets,
            ServiceNamespace="lambda",
            ResourceIds=[resource],
            ScalableDimension=LAMBDA_PC_DIMENSION,
        )["ScalableTargets"]
        if not targets or int(targets[0].get("MaxCapacity", 0)) > maximum:
            calls(
                aas.register_scalable_target,
                ServiceNamespace="lambda",
                ResourceId=resource,
                ScalableDimension=LAMBDA_PC_DIMENSION,
                MinCapacity=0,
                MaxCapacity=maximum,
            )
        actions = calls(
            aas.describe_scheduled_actions,
            ServiceNamespace="lambda",
            ResourceId=resource,
            ScalableDimension=LAMBDA_PC_DIMENSION,
            ScheduledActionNames=[SCHEDULED_ACTION],
        )["ScheduledActions"]
        if actions:
            result.previous = int(actions[0].get("ScalableTargetAction", {}).get("MinCapacity", 0))
        if result.previous == desired:
            result.action = "unchanged"
        else:
            when = (now + lead).strftime("%Y-%m-%dT%H:%M:%S")
            calls(
                aas.put_scheduled_action,
                ServiceNamespace="lambda",
                ScheduledActionName=SCHEDULED_ACTION,
                ResourceId=resource,
                ScalableDimension=LAMBDA_PC_DIMENSION,
                Schedule=f"at({when})",
                ScalableTargetAction={"MinCapacity": desired, "MaxCapacity": desired},
            )
            result.action = "set"
            result.detail["at"] = when
    except Exception as exc:
        return _failed(result, exc, calls)
    _count(result, calls)
    return result


def sagemaker_pc(
    sm: Any,
    endpoint: str,
    variant: str | None,
    desired: int,
    maximum: int,
    backoff: Backoff,
    *,
    now: datetime,
) -> ActionResult:
    calls = _Calls(backoff)
    result = ActionResult("sagemaker-pc", "error", clamp(desired, maximum), detail={"endpoint": endpoint})
    try:
        described = calls(sm.describe_endpoint, EndpointName=endpoint)
        status = described.get("EndpointStatus")
        if status != "InService":
            result.action = "skipped"
            result.detail["reason"] = f"endpoint is {status}; UpdateEndpoint needs InService"
            _count(result, calls)
            return result
        config = calls(sm.describe_endpoint_config, EndpointConfigName=described["EndpointConfigName"])
        variants = config["ProductionVariants"]
        index = _serverless_variant(variants, variant)
        serverless = dict(variants[index]["ServerlessConfig"])
        ceiling = min(maximum, int(serverless.get("MaxConcurrency", maximum)))
        result.desired = target = clamp(desired, ceiling)
        result.previous = int(serverless.get("ProvisionedConcurrency", 0) or 0)
        result.detail["variant"] = variants[index].get("VariantName")
        if result.previous == target:
            result.action = "unchanged"
            _count(result, calls)
            return result
        if target > 0:
            serverless["ProvisionedConcurrency"] = target
        else:
            serverless.pop("ProvisionedConcurrency", None)
        new_variants = [{k: v[k] for k in _VARIANT_KEYS if _present(v.get(k))} for v in variants]
        new_variants[index]["ServerlessConfig"] = serverless
        name = _config_name(endpoint, target, now)
        extra = {k: config[k] for k in _CONFIG_KEYS if _present(config.get(k))}
        calls(sm.create_endpoint_config, EndpointConfigName=name, ProductionVariants=new_variants, **extra)
        calls(sm.update_endpoint, EndpointName=endpoint, EndpointConfigName=name)
        result.action = "set"
        result.detail["endpoint_config"] = name
    except Exception as exc:
        return _failed(result, exc, calls)
    _count(result, calls)
    return result


def _present(value: Any) -> bool:
    """Describe* answers carry empty structures that Create* would reject as incomplete."""
    return value is not None and value != {} and value != []


def _serverless_variant(variants: list[dict[str, Any]], name: str | None) -> int:
    for i, v in enumerate(variants):
        if (name is None or v.get("VariantName") == name) and "ServerlessConfig" in v:
            return i
    wanted = f"variant {name!r}" if name else "a variant"
    raise LookupError(
        f"{wanted} with ServerlessConfig: set PREHEAT_SAGEMAKER_VARIANT to a serverless variant"
    )


def _config_name(endpoint: str, target: int, now: datetime) -> str:
    suffix = f"-pc{target}-{now:%Y%m%d%H%M%S}"
    return endpoint[: 63 - len(suffix)].rstrip("-") + suffix


def warm(
    lam: Any,
    *,
    function: str,
    qualifier: str | None,
    fanout: int,
    maximum: int,
    hold_ms: int,
    backoff: Backoff,
    warmer_function: str | None,
) -> ActionResult:
    """Ask the warmer Lambda for `fanout` pings (asynchronously), or send them from here."""
    k = clamp(fanout, maximum)
    calls = _Calls(backoff)
    result = ActionResult("warmer", "error", k)
    try:
        if warmer_function:
            payload = {"concurrency": k, "hold_ms": hold_ms, "function": function, "qualifier": qualifier}
            calls(
                lam.invoke,
                FunctionName=warmer_function,
                InvocationType="Event",
                Payload=json.dumps(payload).encode(),
            )
            result.action = "invoked"
            result.detail["warmer"] = warmer_function
        else:
            report = fan_out(lam, function, qualifier, k, hold_ms, backoff).as_dict()
            result.action = "invoked" if not report["error_count"] else "error"
            result.error = "; ".join(report["errors"][:3]) or None
            result.detail.update(report)
    except Exception as exc:
        return _failed(result, exc, calls)
    _count(result, calls)
    return result
