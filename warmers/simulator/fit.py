"""Fit preheat's prior idle-time hazard on the training functions (never the held-out ones).

`python -m warmers.simulator.fit TRACE.csv` rewrites warmers/policies/data/preheat_prior.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt

from warmers.policies.preheat_prior import PRIOR_FILE
from warmers.traces import Trace, held_out_mask, load_invocations

PRIOR_RANGE_MIN = 720


def fit_prior(trace: Trace, training: npt.NDArray[np.bool_], range_min: int = PRIOR_RANGE_MIN) -> list[float]:
    """Hazard of the next active minute s minutes after the last, averaged with equal weight per function.

    Equal weight: a function invoked every minute would otherwise drown out the rare ones whose
    windows the prior is for. Bin `range_min` holds every longer idle time.
    """
    pooled = np.zeros(range_min + 1)
    for row in trace.counts[training]:
        active = np.flatnonzero(row)
        if active.size < 2:
            continue
        its = np.minimum(np.diff(active), range_min)
        h = np.bincount(its, minlength=range_min + 1).astype(np.float64)
        pooled += h / h.sum()
    survival = np.cumsum(pooled[::-1])[::-1]
    hazard = np.divide(pooled, survival, out=np.zeros_like(pooled), where=survival > 0)
    hazard[0] = hazard[1]
    # The last bin holds every idle time >= range_min: as a per-minute hazard it stands for the
    # typical hazard of the long tail, not for "everything left arrives in this one minute".
    hazard[range_min] = float(np.mean(hazard[range_min // 2 : range_min]))
    return [float(f"{x:.4g}") for x in np.clip(hazard, 1e-4, 1.0)]


def render(prior: list[float], source: str) -> str:
    """The prior as warmers/policies/data/preheat_prior.json holds it: ten values a line."""
    rows = ",\n".join(
        "    " + ", ".join(json.dumps(x) for x in prior[i : i + 10]) for i in range(0, len(prior), 10)
    )
    head = {
        "generated_by": "python -m warmers.simulator.fit",
        "source": f"the training functions (not held out) of {source}",
        "hazard[s]": "P(next active minute is s minutes after the last | not before)",
    }
    fields = "".join(f"  {json.dumps(key)}: {json.dumps(value)},\n" for key, value in head.items())
    return "{\n" + fields + '  "hazard": [\n' + rows + "\n  ]\n}\n"


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else Path("../shared/traces/azure2019/invocations_per_minute.csv")
    trace = load_invocations(path)
    prior = fit_prior(trace, ~held_out_mask(trace.function_ids))
    out = PRIOR_FILE
    out.write_text(render(prior, "the Azure Functions 2019 sample (../shared/traces/azure2019)"))
    print(f"wrote {out} ({len(prior)} values)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
