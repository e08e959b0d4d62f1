"""Published AWS Lambda prices, for the simulator's dollars per day.

Source: https://aws.amazon.com/lambda/pricing/ — US East (N. Virginia), first duration tier (the
first 6 billion GB-s a month), no free tier, no Savings Plans. These per-GB-s figures have not changed
since per-millisecond billing (December 2020); read from copies of the page in November 2026 (this
machine has no internet to re-fetch it). Since 2025-08-01 the INIT phase of on-demand functions is
billed like duration ("AWS Lambda standardizes billing for INIT Phase", AWS Compute Blog, April 2025),
so a cold start costs its init time, whether a request or a warm-up ping pays it.

Not modelled: provisioned concurrency is billed in 5-minute increments (we bill by the minute), the
request-size rounding of async events, ephemeral storage, data transfer, and the controller's own
CloudWatch GetMetricData calls ($0.01 per 1,000 metrics requested).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LambdaPrices:
    region: str
    architecture: str
    request_usd: float  # per request
    duration_gb_s_usd: float  # on-demand duration (and INIT), per GB-s
    provisioned_gb_s_usd: float  # provisioned concurrency, per GB-s configured
    provisioned_duration_gb_s_usd: float  # duration on provisioned instances, per GB-s
    bill_init: bool = True  # INIT billed for on-demand starts (from 2025-08-01)
    as_of: str = "2026-11 (us-east-1 rates unchanged since 2020-12; INIT billing since 2025-08-01)"
    source: str = "https://aws.amazon.com/lambda/pricing/"


US_EAST_1_X86 = LambdaPrices(
    region="us-east-1",
    architecture="x86_64",
    request_usd=0.20 / 1_000_000,
    duration_gb_s_usd=0.0000166667,
    provisioned_gb_s_usd=0.0000041667,
    provisioned_duration_gb_s_usd=0.0000097222,
)

US_EAST_1_ARM64 = LambdaPrices(
    region="us-east-1",
    architecture="arm64",
    request_usd=0.20 / 1_000_000,
    duration_gb_s_usd=0.0000133334,
    provisioned_gb_s_usd=0.0000033334,
    provisioned_duration_gb_s_usd=0.0000077778,
)

PRICES = {"x86_64": US_EAST_1_X86, "arm64": US_EAST_1_ARM64}


def lambda_memory_mb(memory_mb: float) -> int:
    """The Lambda memory setting that fits an allocation: whole MB, 128 to 10,240."""
    return int(min(10_240, max(128, -(-memory_mb // 1))))
