from __future__ import annotations

from pathlib import Path

import pytest

from functions.inference.errors import ConfigError
from functions.inference.settings import Settings, default_threads


def test_defaults_match_lambda_limits() -> None:
    settings = Settings.from_env({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "2048"})
    assert settings.model_dir == Path("/opt/model")
    assert settings.max_request_bytes == 6 * 1024 * 1024
    assert settings.truncate is True
    assert settings.threads == 1


@pytest.mark.parametrize(("memory", "threads"), [("128", 1), ("1769", 1), ("3538", 2), ("10240", 5)])
def test_threads_follow_the_vcpus_lambda_gives_a_memory_size(memory: str, threads: int) -> None:
    assert default_threads({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": memory}) == threads


def test_explicit_threads_override_memory() -> None:
    env = {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "10240", "PREHEAT_THREADS": "3"}
    assert Settings.from_env(env).threads == 3


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("PREHEAT_THREADS", "two"),
        ("PREHEAT_THREADS", "0"),
        ("PREHEAT_MAX_INPUTS", "-5"),
        ("PREHEAT_TRUNCATE", "maybe"),
        ("PREHEAT_BASE_PATH", "prod/"),
        ("PREHEAT_MAX_REQUEST_BYTES", "12"),
    ],
)
def test_bad_values_fail_naming_the_variable(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=key):
        Settings.from_env({key: value})


def test_booleans_accept_the_usual_spellings() -> None:
    assert Settings.from_env({"PREHEAT_TRUNCATE": "off"}).truncate is False
    assert Settings.from_env({"PREHEAT_TRUNCATE": "YES"}).truncate is True
