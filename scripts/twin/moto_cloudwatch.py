"""moto's CloudWatch with percentile statistics, as the twin runs it.

GetMetricData with `Stat: "p99"` fails in moto (5.x computes Sum, Average, Minimum, Maximum and
SampleCount only), yet CloudWatch answers it, and the dashboard asks it of the platform's metrics
(SageMaker's ModelLatency p99, ...). moto keeps every value PutMetricData sent (Values x Counts), so
the percentile is computed from them: nearest rank, the smallest value with at least p% of the
period's values at or below it (as scripts/metrics_query.py does from EMF logs). Values sent only
as StatisticValues (no distribution) give no percentile, as in CloudWatch.

Run as `python -m scripts.twin.moto_cloudwatch -H HOST -p PORT` (moto_server's own arguments), or
call `enable_percentiles()` before starting an in-process moto (recording.replayed does).
"""

from __future__ import annotations

import math
import re
import sys
from typing import Any

PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d+)?|100)$")


def nearest_rank(values: list[float], percentile: float) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(1, math.ceil(percentile / 100 * len(ordered))) - 1]


def enable_percentiles() -> None:
    from moto.cloudwatch import models

    original = models.Statistics.get_statistics_for_type
    if getattr(original, "preheat_percentiles", False):
        return

    def get_statistics_for_type(self: Any, stat: str) -> Any:
        match = PERCENTILE.match(stat)
        if match is None:
            return original(self, stat)
        return nearest_rank(list(self.metric_single_values_list), float(match.group(1)))

    get_statistics_for_type.preheat_percentiles = True  # type: ignore[attr-defined]
    models.Statistics.get_statistics_for_type = get_statistics_for_type  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    from moto import server

    enable_percentiles()
    server.main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
