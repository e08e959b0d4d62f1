"""The warmer Lambda's settings. Its behaviour against real inference-handler instances (distinct
instances, cold then warm, throttling, schedules) is tested on the local twin, in
test_warmers_twin.py.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from types import ModuleType

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def load_warmer(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., ModuleType]]:
    def load(**env: str) -> ModuleType:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        sys.modules.pop("warmers.warmer", None)
        return importlib.import_module("warmers.warmer")

    yield load
    sys.modules.pop("warmers.warmer", None)


def test_missing_target_fails_at_init_naming_the_variable(load_warmer, monkeypatch):
    monkeypatch.delenv("PREHEAT_WARM_FUNCTION", raising=False)
    with pytest.raises(ValueError, match="PREHEAT_WARM_FUNCTION"):
        load_warmer()
    with pytest.raises(ValueError, match="PREHEAT_WARM_MAX_CONCURRENCY"):
        load_warmer(PREHEAT_WARM_FUNCTION="fn", PREHEAT_WARM_MAX_CONCURRENCY="lots")


def test_a_fan_out_above_the_maximum_is_clamped_and_says_so(load_warmer):
    warmer = load_warmer(PREHEAT_WARM_FUNCTION="fn", PREHEAT_WARM_MAX_CONCURRENCY="2")
    request = warmer.parse_event({"concurrency": 9, "hold_ms": 200}, warmer.SETTINGS)
    assert request == {
        "concurrency": 2,
        "hold_ms": 200,
        "function": "fn",
        "qualifier": None,
        "clamped_from": 9,
    }
