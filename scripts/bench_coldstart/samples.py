"""What `preheat bench coldstart` measures: the functions, their samples and series, the targets
it checks, and where the functions run (a `BenchTarget`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

FUNCTIONS = ("default", "naive", "floor")
# Targets (issue 16): the distance to the floor is what preheat controls; naive moves with the machine.
COLD_OVER_FLOOR_MAX = 1.2
COLD_OVER_NAIVE_MAX = 1 / 3
WARM_OVER_FLOOR_MAX_MS = 0.3


@dataclass(frozen=True)
class Variant:
    """A copy of the default function that differs in code, model or environment."""

    label: str
    code_dir: Path | None = None
    model_dir: Path | None = None
    env: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Variant:
        label, *items = text.split(":")
        if not label.replace("-", "").isalnum() or label in FUNCTIONS:
            raise SystemExit(f"--variant {text!r}: the label must be letters, digits or '-', not {FUNCTIONS}")
        code = model = None
        env = []
        for item in items:
            key, sep, value = item.partition("=")
            if not sep:
                raise SystemExit(f"--variant {text!r}: {item!r} is not code=DIR, model=DIR or KEY=VALUE")
            if key == "code":
                code = Path(value).resolve()
            elif key == "model":
                model = Path(value).resolve()
            else:
                env.append((key, value))
        for what, path in (("code", code), ("model", model)):
            if path is not None and not path.is_dir():
                raise SystemExit(f"--variant {text!r}: {what} directory {path} does not exist")
        return cls(label, code, model, tuple(env))


@dataclass(frozen=True)
class Sample:
    client_ms: float
    init_ms: float | None  # cold samples only


@dataclass(frozen=True)
class Warm:
    client_ms: float
    cache: str  # x-preheat-cache: "miss" when the model ran, else the level that answered; "-" if none


@dataclass
class Series:
    cold: list[Sample] = field(default_factory=list)
    warm: list[float] = field(default_factory=list)
    hits: list[float] = field(default_factory=list)  # repeats its cache answered
    warm_cache: dict[str, int] = field(default_factory=dict)  # x-preheat-cache of the warm requests
    failures: int = 0
    note: str = ""


class BenchTarget(Protocol):
    """Where the benchmarked functions run; one method per kind of sample."""

    def describe(self, name: str) -> str: ...

    def cold(self, name: str) -> Sample: ...

    def warm(self, name: str, text: str) -> Warm: ...

    def phases(self, names: tuple[str, ...]) -> dict[str, Any]:
        """name -> that function's instances' init phases (scripts.init_phases.InstanceInit list)."""
        ...
