"""One CloudWatch Embedded Metric Format line on stdout: metrics without an API call.

The warmer and controller are small and deployed without Powertools, so they write the EMF blob
themselves (the same shape Powertools writes; tests read stdout).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from typing import Any


def emit(
    namespace: str,
    service: str,
    metrics: Mapping[str, float],
    *,
    unit: str = "Count",
    properties: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    blob: dict[str, Any] = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [["service"]],
                    "Metrics": [{"Name": name, "Unit": unit} for name in metrics],
                }
            ],
        },
        "service": service,
        **dict(properties or {}),
        **{name: float(value) for name, value in metrics.items()},
    }
    sys.stdout.write(json.dumps(blob, separators=(",", ":"), default=str) + "\n")
    sys.stdout.flush()
    return blob
