"""Azure Functions 2019 traces (Shahrad et al., ATC'20): invocation counts per minute, duration and memory profiles.

Both column layouts of the invocation file are accepted:
  * the shared sample's:  ``HashFunction,HashOwner,HashApp,minute_1..minute_N``
  * the dataset's original: ``HashOwner,HashApp,HashFunction,Trigger,1..N``
Columns are found by name, so their order does not matter.

The duration and memory files are used as *distributions*: in the shared sample their rows are not
paired with the invocation rows (the ids match but the counts do not), so each function is given a
profile drawn with a per-function hash of the seed (`assign_profiles`). `pairing="by-id"` uses the row
with the same id where there is one (the original layout is really paired).
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

DURATION_PERCENTILES = (0.0, 1.0, 25.0, 50.0, 75.0, 99.0, 100.0)
MEMORY_PERCENTILES = (1.0, 5.0, 25.0, 50.0, 75.0, 95.0, 99.0, 100.0)
HOLDOUT_SALT = "preheat-holdout-v1"

Pairing = Literal["sample", "by-id"]


class TraceError(ValueError):
    """A trace file is missing, or its columns are not one of the known layouts."""


@dataclass(frozen=True)
class Trace:
    """Invocations per minute: counts[f, m] for function f in minute m (from 0)."""

    function_ids: tuple[str, ...]
    app_ids: tuple[str, ...]
    counts: npt.NDArray[np.int64]
    triggers: tuple[str, ...] | None
    layout: Literal["minute_N", "original"]
    source: str

    @property
    def n_functions(self) -> int:
        return len(self.function_ids)

    @property
    def minutes(self) -> int:
        return int(self.counts.shape[1])

    def subset(self, mask: npt.NDArray[np.bool_]) -> Trace:
        idx = np.flatnonzero(mask)
        return Trace(
            function_ids=tuple(self.function_ids[i] for i in idx),
            app_ids=tuple(self.app_ids[i] for i in idx),
            counts=self.counts[idx],
            triggers=None if self.triggers is None else tuple(self.triggers[i] for i in idx),
            layout=self.layout,
            source=self.source,
        )


@dataclass(frozen=True)
class DurationProfiles:
    """Per-row duration percentiles in ms at DURATION_PERCENTILES."""

    function_ids: tuple[str, ...]
    percentiles_ms: npt.NDArray[np.float64]  # [rows, 7]


@dataclass(frozen=True)
class MemoryProfiles:
    """Per-row allocated-memory percentiles in MB at MEMORY_PERCENTILES, keyed by app (or function)."""

    keys: tuple[str, ...]
    percentiles_mb: npt.NDArray[np.float64]  # [rows, 8]


def _read(path: Path) -> tuple[list[str], list[list[str]]]:
    if not path.is_file():
        raise TraceError(
            f"trace file {path} does not exist: pass an existing CSV (see ../shared/traces/azure2019/)"
        )
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise TraceError(f"{path} is empty: expected a header row") from None
        rows = [row for row in reader if row]
    return header, rows


def _column(header: Sequence[str], name: str, path: Path) -> int:
    try:
        return header.index(name)
    except ValueError:
        raise TraceError(f"{path} has no {name!r} column (columns: {', '.join(header[:6])}...)") from None


def load_invocations(path: Path) -> Trace:
    header, rows = _read(path)
    fn_col = _column(header, "HashFunction", path)
    app_col = header.index("HashApp") if "HashApp" in header else fn_col
    minute_cols: list[tuple[int, int]] = []
    layout: Literal["minute_N", "original"]
    prefixed = [(i, h) for i, h in enumerate(header) if re.fullmatch(r"minute_\d+", h)]
    if prefixed:
        layout = "minute_N"
        minute_cols = [(int(h.split("_")[1]), i) for i, h in prefixed]
    else:
        layout = "original"
        minute_cols = [(int(h), i) for i, h in enumerate(header) if re.fullmatch(r"\d+", h)]
    if not minute_cols:
        raise TraceError(
            f"{path} has no per-minute columns: expected 'minute_1..minute_N' or '1..N' after the id columns"
        )
    minute_cols.sort()
    numbers = [n for n, _ in minute_cols]
    if numbers != list(range(1, len(numbers) + 1)):
        raise TraceError(
            f"{path}: minute columns must run 1..N without gaps, got {numbers[:3]}...{numbers[-3:]}"
        )
    idx = [i for _, i in minute_cols]
    try:
        counts = np.array([[int(float(row[i] or 0)) for i in idx] for row in rows], dtype=np.int64)
    except (ValueError, IndexError) as exc:
        raise TraceError(f"{path}: a per-minute count is not a number or a row is short ({exc})") from None
    if counts.size and counts.min() < 0:
        raise TraceError(f"{path}: negative invocation counts")
    trig_col = header.index("Trigger") if "Trigger" in header else None
    return Trace(
        function_ids=tuple(row[fn_col] for row in rows),
        app_ids=tuple(row[app_col] for row in rows),
        counts=counts.reshape(len(rows), len(idx)),
        triggers=None if trig_col is None else tuple(row[trig_col] for row in rows),
        layout=layout,
        source=str(path),
    )


def load_durations(path: Path) -> DurationProfiles:
    header, rows = _read(path)
    fn_col = _column(header, "HashFunction", path)
    cols = [_column(header, f"percentile_Average_{p:g}", path) for p in DURATION_PERCENTILES]
    values = np.array([[float(row[c]) for c in cols] for row in rows], dtype=np.float64)
    if not len(rows):
        raise TraceError(f"{path} has no rows")
    # Percentiles must be non-decreasing for inverse-CDF sampling; rounding in the data breaks that rarely.
    values = np.maximum.accumulate(np.maximum(values, 0.0), axis=1)
    return DurationProfiles(tuple(row[fn_col] for row in rows), values)


def load_memory(path: Path) -> MemoryProfiles:
    header, rows = _read(path)
    key_col = header.index("HashFunction") if "HashFunction" in header else _column(header, "HashApp", path)
    cols = [_column(header, f"AverageAllocatedMb_pct{p:g}", path) for p in MEMORY_PERCENTILES]
    if not len(rows):
        raise TraceError(f"{path} has no rows")
    values = np.array([[float(row[c]) for c in cols] for row in rows], dtype=np.float64)
    values = np.maximum.accumulate(np.maximum(values, 1.0), axis=1)
    return MemoryProfiles(tuple(row[key_col] for row in rows), values)


def profile_paths(trace_path: Path) -> tuple[Path, Path]:
    """durations.csv and memory.csv beside the invocation file (both shared layouts ship them so)."""
    return trace_path.parent / "durations.csv", trace_path.parent / "memory.csv"


def stable_unit(*parts: str | int) -> float:
    """A number in [0, 1) fixed by its inputs: the same on every machine and Python (unlike hash())."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def held_out_mask(function_ids: Sequence[str], fraction: float = 0.3) -> npt.NDArray[np.bool_]:
    """Functions kept aside while tuning `preheat`: a fixed hash split, independent of order and seed."""
    return np.array([stable_unit(HOLDOUT_SALT, f) < fraction for f in function_ids], dtype=bool)


def assign_profiles(
    function_ids: Sequence[str],
    keys: Sequence[str],
    *,
    seed: int,
    salt: str,
    pairing: Pairing = "sample",
    app_ids: Sequence[str] | None = None,
) -> npt.NDArray[np.int64]:
    """Row index of a profile for every function."""
    lookup = {k: i for i, k in enumerate(keys)} if pairing == "by-id" else {}
    out = np.empty(len(function_ids), dtype=np.int64)
    for j, fid in enumerate(function_ids):
        row = lookup.get(fid)
        if row is None and app_ids is not None:
            row = lookup.get(app_ids[j])
        out[j] = row if row is not None else int(stable_unit(salt, seed, fid) * len(keys))
    return out
