"""The preheat policy's prior idle-time hazard: data in data/preheat_prior.json, read once at import.

`python -m warmers.simulator.fit` writes the file, fitted on the training functions (never the
held-out ones) of the Azure Functions 2019 sample: PRIOR_HAZARD[s] = P(next active minute is s
minutes after the last | not before).
"""

from __future__ import annotations

import json
from pathlib import Path

PRIOR_FILE = Path(__file__).resolve().parent / "data" / "preheat_prior.json"


def load_prior(path: Path = PRIOR_FILE) -> tuple[float, ...]:
    hazard = json.loads(path.read_text())["hazard"]
    return tuple(float(x) for x in hazard)


PRIOR_HAZARD: tuple[float, ...] = load_prior()
