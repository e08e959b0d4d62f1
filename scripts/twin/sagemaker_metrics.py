"""A serverless endpoint's metrics, as SageMaker publishes them (scripts/twin/platform_metrics.py:
namespace AWS/SageMaker, EndpointName + VariantName, per minute), and preheat's own cold/warm split in
namespace Preheat (Invocations, ColdStarts, Latency in ms, with dimension `start`), per request.
"""

from __future__ import annotations

import datetime as dt

from scripts.twin import emf
from scripts.twin.platform_metrics import SAGEMAKER, PlatformMetrics, variant_dimensions
from scripts.twin.sagemaker_container import Setup
from scripts.twin.sagemaker_pool import ContainerOutcome, VariantPool

PREHEAT_NAMESPACE = "Preheat"


class EndpointMetrics:
    def __init__(self, platform: PlatformMetrics | None, shipper: emf.Shipper | None) -> None:
        self.platform = platform
        self.shipper = shipper

    def setup(self, pool: VariantPool, setup: Setup) -> None:
        if self.platform is not None:
            dims = variant_dimensions(pool.endpoint.name, pool.spec.name)
            self.platform.put(SAGEMAKER, "ModelSetupTime", dims, round(setup.ready_ms * 1000, 1))

    def request(self, pool: VariantPool, *, errors_4xx: int = 0, errors_5xx: int = 0, model_us: float | None = None,
                overhead_us: float | None = None, outcome: ContainerOutcome | None = None) -> None:
        """One request, in SageMaker's metrics (scripts/twin/platform_metrics.py)."""
        if self.platform is None:
            return
        dims = variant_dimensions(pool.endpoint.name, pool.spec.name)
        put = self.platform.put
        put(SAGEMAKER, "Invocations", dims, 1)
        put(SAGEMAKER, "Invocation4XXErrors", dims, errors_4xx)
        put(SAGEMAKER, "Invocation5XXErrors", dims, errors_5xx)
        if model_us is not None:
            put(SAGEMAKER, "ModelLatency", dims, round(model_us, 1))
        if overhead_us is not None:
            put(SAGEMAKER, "OverheadLatency", dims, round(overhead_us, 1))
        if outcome is None:
            return
        put(SAGEMAKER, "ServerlessConcurrentExecutionsUtilization", dims, outcome.inflight / pool.spec.max_concurrency)
        if pool.spec.provisioned > 0:
            on_pc = outcome.container.provisioned
            put(SAGEMAKER, "ServerlessProvisionedConcurrencyInvocations", dims, int(on_pc))
            put(SAGEMAKER, "ServerlessProvisionedConcurrencySpilloverInvocations", dims, int(not on_pc))
            put(SAGEMAKER, "ServerlessProvisionedConcurrencyExecutions", dims, outcome.busy_provisioned)
            put(SAGEMAKER, "ServerlessProvisionedConcurrencyUtilization", dims,
                outcome.busy_provisioned / pool.spec.provisioned)

    def preheat_split(self, pool: VariantPool, start: str, latency_ms: float) -> None:
        """preheat's own cold/warm split for the endpoint, per request, in namespace Preheat."""
        if self.shipper is None:
            return
        dims = [{"Name": "EndpointName", "Value": pool.endpoint.name}, {"Name": "VariantName", "Value": pool.spec.name},
                {"Name": "start", "Value": start}]
        stamp = dt.datetime.now(dt.UTC)
        for metric, value, unit in (("Invocations", 1.0, "Count"), ("ColdStarts", float(start == "cold"), "Count"),
                                    ("Latency", latency_ms, "Milliseconds")):
            self.shipper.metric(emf.MetricEntry(PREHEAT_NAMESPACE, {
                "MetricName": metric, "Dimensions": dims, "Timestamp": stamp, "Values": [value], "Counts": [1.0],
                "Unit": unit,
            }))
