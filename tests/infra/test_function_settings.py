"""infra/function_settings.py writes what the functions' settings read: every variable it sets is read
back by warmers/settings.py (or the runtime's Settings), with the value that was meant."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from functions.inference.settings import Settings
from infra import function_settings as fs
from infra.config import CacheConfig, LambdaConfig, RuntimeSettings
from tests.infra.conftest import ROOT
from warmers.settings import ControllerSettings, WarmerSettings


class Reading(dict[str, str]):
    """An environment that remembers which variables were looked up."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)


def test_the_warmer_reads_every_variable_written_for_it() -> None:
    env = Reading(
        fs.warmer_environment(
            function_name="fn",
            qualifier="live",
            concurrency=3,
            max_concurrency=70,
            hold_ms=250,
            service="svc",
            namespace="Ns",
        )
    )
    settings = WarmerSettings.from_env(env)
    assert set(env) <= env.read, f"written but never read: {set(env) - env.read}"
    assert (settings.function, settings.qualifier, settings.concurrency, settings.hold_ms) == (
        "fn",
        "live",
        3,
        250,
    )
    assert settings.max_concurrency == 70, "the controller's ceiling, when above the warmer's floor of 50"
    assert (settings.service, settings.namespace) == ("svc-warmer", "Ns")
    low = fs.warmer_environment(
        function_name="fn",
        qualifier=None,
        concurrency=2,
        max_concurrency=10,
        hold_ms=0,
        service="s",
        namespace="N",
    )
    assert WarmerSettings.from_env(low).max_concurrency == fs.WARM_MAX_CONCURRENCY_FLOOR
    assert "PREHEAT_WARM_QUALIFIER" not in low


def test_the_controller_reads_every_variable_written_for_it() -> None:
    env = Reading(
        fs.controller_environment(
            policy="preheat",
            namespace="Ns",
            service="svc",
            memory_mb=3008,
            max_concurrency=4,
            function_name="fn",
            qualifier="live",
            pc_mode="direct",
            hold_ms=300,
            endpoint_name="ep",
            variant_name="AllTraffic",
            warmer_function="w",
        )
    )
    s = ControllerSettings.from_env(env)
    assert set(env) <= env.read, f"written but never read: {set(env) - env.read}"
    assert (s.policy, s.metrics_namespace, s.metrics_service, s.memory_mb, s.max_concurrency) == (
        "preheat", "Ns", "svc", 3008, 4,
    )  # fmt: skip
    assert (s.lambda_function, s.lambda_alias, s.pc_mode, s.warm_hold_ms) == ("fn", "live", "direct", 300)
    assert (s.sagemaker_endpoint, s.sagemaker_variant, s.warmer_function) == ("ep", "AllTraffic", "w")
    assert (s.service, s.namespace) == ("svc-controller", "Ns")


def test_the_runtime_and_cache_read_every_variable_written_for_them(tmp_path: Any) -> None:
    config = LambdaConfig(runtime=RuntimeSettings(threads=2, batch_size=8, max_inputs=99, truncate=False,
                                          base_path="/prod", warmup_max_hold_ms=1234))  # fmt: skip
    env = Reading(
        {
            **fs.runtime_environment(config, "svc", "Ns"),
            **fs.cache_environment(CacheConfig(memory_bytes=4096, ttl_seconds=60, timeout_ms=20), "tbl"),
            "PREHEAT_MODEL_DIR": str(tmp_path),
            "AWS_REGION": "eu-west-1",
        }
    )
    settings = Settings.from_env(env)
    assert set(env) <= env.read, f"written but never read: {set(env) - env.read}"
    assert (settings.threads, settings.batch_size, settings.max_inputs, settings.truncate) == (
        2,
        8,
        99,
        False,
    )
    assert (settings.base_path, settings.max_warmup_hold_ms, settings.service, settings.metrics_namespace) == (
        "/prod", 1234, "svc", "Ns",
    )  # fmt: skip
    cache = settings.cache
    assert (cache.memory_bytes, cache.table, cache.ttl_seconds, cache.timeout_ms) == (4096, "tbl", 60, 20)


def test_the_twin_loads_the_stack_config_without_the_cdk() -> None:
    """The twin builds its config from these without starting the CDK's jsii runtime (seconds)."""
    code = (
        "import sys; from pathlib import Path; from scripts.twin.stack import default_config; "
        "default_config(Path('.')); print([m for m in sys.modules if m.startswith(('aws_cdk', 'jsii'))])"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("warm_start", "handler"),
    [
        ("provisioned", fs.INFERENCE_HANDLER),
        ("none", fs.INFERENCE_HANDLER),
        ("snapstart", fs.SNAPSTART_HANDLER),
    ],
)
def test_snapstart_gets_its_hooks_handler(warm_start: Any, handler: str) -> None:
    assert fs.inference_handler(LambdaConfig(warm_start=warm_start)) == handler
