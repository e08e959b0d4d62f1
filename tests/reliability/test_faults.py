"""Faults, each survived as described (scripts/reliability/faults.py runs them on the package's twin).

Related tests elsewhere, not repeated here: a crash of a toy handler and a timeout
(tests/integration/test_twin.py), Redis killed/hung under the cache tier in-process
(tests/integration/test_cache_redis.py), the warmer and controller against the twin's scripted AWS
faults (tests/integration/test_warmers_twin.py), a zeroed model file (tests/unit/test_runtime.py).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from functions.inference.errors import ConfigError, ModelLoadError, PreheatError
from functions.inference.runtime import Runtime
from scripts.reliability.models import damaged_copy
from tests.reliability.conftest import RESERVED

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def fault(report: dict[str, Any], name: str) -> dict[str, Any]:
    found = next(f for f in report["faults"] if f["name"].startswith(name))
    assert found["passed"], found["problems"]
    return found["details"]  # type: ignore[no-any-return]


def test_an_instance_killed_mid_request_fails_only_that_request_and_is_replaced(report: dict[str, Any]) -> None:
    details = fault(report, "instance killed mid-request")
    assert (details["killed_status"], details["killed_error_type"]) == (502, "Runtime.ExitError")
    assert details["concurrent_status"] == 200 and details["concurrent_start"] == "cold"  # another instance
    assert details["new_pid"] != details["old_pid"]
    assert (details["next_status"], details["next_start"]) == (200, "provisioned")  # the replacement served it
    assert details["platform_outcomes"].count("crash") == 1


def test_a_truncated_model_fails_init_with_its_name_and_never_serves(report: dict[str, Any]) -> None:
    details = fault(report, "truncated model file")
    assert details["url_statuses"] == [502, 502, 502]
    assert details["error_type"] == "ModelLoadError" and "model.onnx" in details["message"]
    assert set(details["platform_outcomes"]) == {"init_error"}


def test_the_shared_cache_killed_or_paused_fails_no_request(report: dict[str, Any]) -> None:
    details = fault(report, "shared cache")
    assert list(details) == ["healthy", "killed", "restarted", "paused", "resumed"]
    for phase, figures in details.items():
        assert figures["correct"] > 0 and figures["errors"] == figures["wrong"] == figures["hangs"] == 0, phase
        assert figures["p99_ms"] < 2000, phase  # a hang detector: the tier's timeout is 25 ms
    assert details["healthy"]["cache"].get("redis", 0) > 0
    assert set(details["killed"]["cache"]) == {"miss"}  # the model answered while the tier was gone


def test_the_throttled_controller_retries_never_crashes_never_exceeds_its_maximum(report: dict[str, Any]) -> None:
    details = fault(report, "CloudWatch and the provisioned-concurrency API")
    assert details["policy_wants"] > details["maximum"] == details["set_to"]
    assert (details["throttled_reads"], details["throttled_puts"]) == (2, 3)
    assert details["slept_ms"] > 0 and details["persistent_calls"] == 5


def test_a_warmer_fan_out_beyond_the_reserved_concurrency_is_counted_not_fatal(report: dict[str, Any]) -> None:
    details = fault(report, "warmer fan-out")
    assert details["answered"] <= RESERVED and details["answered"] + details["throttled"] == details["fanout"]
    assert details["instances"] <= RESERVED and details["throttled_platform"] >= details["throttled"]
    assert details["absurd"]["clamped_from"] == 10**9
    assert details["huge_hold"]["error"]["code"] == "invalid_hold"


def _truncate_tokenizer(model: Path) -> str:
    path = model / "tokenizer.json"
    path.write_bytes(path.read_bytes()[:100])
    return "tokenizer.json"


def _garble_manifest(model: Path) -> str:
    (model / "manifest.json").write_text('{"name": "tiny", "files": ')
    return "manifest.json"


def _delete_model(model: Path) -> str:
    (model / "model.onnx").unlink()
    return "model.onnx"


@pytest.mark.parametrize(
    "damage",
    [
        lambda src, dst: damaged_copy(src, dst, "truncate"),
        lambda src, dst: damaged_copy(src, dst, "flip"),
        lambda src, dst: (shutil.copytree(src, dst), _truncate_tokenizer(dst))[1],
        lambda src, dst: (shutil.copytree(src, dst), _garble_manifest(dst))[1],
        lambda src, dst: (shutil.copytree(src, dst), _delete_model(dst))[1],
    ],
    ids=["truncated weights", "one flipped byte", "truncated tokenizer", "garbled manifest", "missing weights"],
)
def test_a_damaged_model_directory_fails_init_naming_the_file(
    damage: Callable[[Path, Path], str], embedding_dir: Path, tmp_path: Path, make_runtime: Callable[..., Runtime]
) -> None:
    broken = tmp_path / "broken"
    name = damage(embedding_dir, broken)
    with pytest.raises((ModelLoadError, ConfigError)) as caught:
        make_runtime(broken)
    error: PreheatError = caught.value
    assert name in error.message, error.message
    assert str(broken) in error.message or name == "manifest.json", error.message
    json.dumps({"message": error.message})  # plain text: it goes into Lambda's init error as is
