from __future__ import annotations

import pytest

from functions.cache.settings import DEFAULT_MEMORY_BYTES, CacheSettings
from functions.inference.errors import ConfigError


def test_defaults_keep_an_in_process_cache_and_no_shared_tier() -> None:
    s = CacheSettings.from_env({})
    assert s.memory_bytes == DEFAULT_MEMORY_BYTES > 0
    assert s.shared is None and s.enabled
    assert s.write == "background"


def test_zero_memory_and_no_tier_turns_the_cache_off() -> None:
    assert not CacheSettings.from_env({"PREHEAT_CACHE_MEMORY_BYTES": "0"}).enabled


def test_lambda_writes_before_answering_and_servers_after() -> None:
    assert CacheSettings.from_env({"AWS_LAMBDA_FUNCTION_NAME": "f"}).write == "sync"
    assert CacheSettings.from_env(
        {"AWS_LAMBDA_FUNCTION_NAME": "f", "PREHEAT_CACHE_WRITE": "background"}
    ).write == ("background")


def test_table_settings_take_region_and_endpoint_from_the_aws_variables() -> None:
    s = CacheSettings.from_env(
        {
            "PREHEAT_CACHE_TABLE": "preheat-cache",
            "AWS_REGION": "eu-west-1",
            "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:5000/",
        }
    )
    assert (s.shared, s.region, s.endpoint_url) == ("dynamodb", "eu-west-1", "http://127.0.0.1:5000")
    arn = CacheSettings.from_env(
        {"PREHEAT_CACHE_TABLE": "arn:aws:dynamodb:ap-south-1:123456789012:table/cache"}
    )
    assert arn.region == "ap-south-1"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"PREHEAT_CACHE_MEMORY_BYTES": "lots"}, "PREHEAT_CACHE_MEMORY_BYTES"),
        ({"PREHEAT_CACHE_MEMORY_BYTES": "-1"}, "PREHEAT_CACHE_MEMORY_BYTES"),
        ({"PREHEAT_CACHE_TTL_SECONDS": "0"}, "PREHEAT_CACHE_TTL_SECONDS"),
        ({"PREHEAT_CACHE_TIMEOUT_MS": "0"}, "PREHEAT_CACHE_TIMEOUT_MS"),
        ({"PREHEAT_CACHE_WRITE": "later"}, "PREHEAT_CACHE_WRITE"),
        ({"PREHEAT_CACHE_TABLE": "a b", "AWS_REGION": "us-east-1"}, "PREHEAT_CACHE_TABLE"),
        ({"PREHEAT_CACHE_TABLE": "cache"}, "AWS_REGION"),
        (
            {"PREHEAT_CACHE_TABLE": "c1", "PREHEAT_CACHE_REDIS_URL": "redis://h:6379", "AWS_REGION": "x"},
            "PREHEAT_CACHE_REDIS_URL",
        ),
        ({"PREHEAT_CACHE_REDIS_URL": "http://cache:6379"}, "PREHEAT_CACHE_REDIS_URL"),
        ({"PREHEAT_CACHE_REDIS_URL": "redis://cache:6379/zero"}, "PREHEAT_CACHE_REDIS_URL"),
        ({"PREHEAT_CACHE_REDIS_URL": "redis://cache:notaport"}, "PREHEAT_CACHE_REDIS_URL"),
        (
            {"PREHEAT_CACHE_TABLE": "cache", "AWS_REGION": "x", "PREHEAT_CACHE_MAX_VALUE_BYTES": "500000"},
            "PREHEAT_CACHE_MAX_VALUE_BYTES",
        ),
    ],
)
def test_bad_settings_fail_naming_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        CacheSettings.from_env(env)


def test_a_redis_password_never_appears_in_an_error() -> None:
    with pytest.raises(ConfigError) as failed:
        CacheSettings.from_env({"PREHEAT_CACHE_REDIS_URL": "redis://user:s3cret@cache:6379/x"})
    assert "s3cret" not in str(failed.value)
    with pytest.raises(ConfigError) as failed:
        CacheSettings.from_env({"PREHEAT_CACHE_REDIS_URL": "http://user:s3cret@cache:6379"})
    assert "s3cret" not in str(failed.value)
