"""The text sets shipped in layers/data/: one input per line, '#' lines are comments."""

from __future__ import annotations

from pathlib import Path

from layers import paths


def read_lines(path: Path) -> tuple[str, ...]:
    lines = tuple(
        line.strip() for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )  # fmt: skip
    if not lines:
        raise SystemExit(f"{path} holds no text: it needs one input per line")
    return lines


def heldout() -> tuple[str, ...]:
    """For the accuracy gate only: never used to calibrate."""
    return read_lines(paths.HELDOUT_TEXT)


def calibration() -> tuple[str, ...]:
    return read_lines(paths.CALIBRATION_TEXT)
