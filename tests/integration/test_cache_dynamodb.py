"""The DynamoDB tier against moto's DynamoDB served on 127.0.0.1 (ThreadedMotoServer): the tier
speaks signed HTTP itself, which in-process `mock_aws` would not see."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from functions.cache import codec
from functions.cache.dynamodb import DynamoTier
from functions.inference.manifest import Manifest
from functions.inference.tasks.text import TextModel, text_keyspace
from scripts.cache_servers import TABLE_ENV, MotoDynamo
from tests.conftest import context, emf_lines, event
from tests.support import tiny_models
from tests.support.cache_support import Counting, build, cache_counts, load_tiny

pytestmark = pytest.mark.integration

# moto answers in milliseconds, not DynamoDB's single digits: a generous budget keeps the tests
# about behaviour. The outage test sets its own.
TIMEOUT_MS = 2000


@pytest.fixture(scope="module")
def dynamo() -> Iterator[MotoDynamo]:
    with MotoDynamo() as server:
        yield server


@pytest.fixture
def table(dynamo: MotoDynamo) -> MotoDynamo:
    client = dynamo.client()
    for page in client.get_paginator("scan").paginate(
        TableName=dynamo.table, ProjectionExpression="#k", ExpressionAttributeNames={"#k": "key"}
    ):
        for item in page["Items"]:
            client.delete_item(TableName=dynamo.table, Key={"key": item["key"]})
    return dynamo


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[TextModel, Manifest]:
    path = tmp_path_factory.mktemp("models") / "tiny"
    tiny_models.write_embedding_model(path)
    return load_tiny(path)


def _tier(dynamo: MotoDynamo, table: str | None = None) -> DynamoTier:
    return DynamoTier(
        table or dynamo.table, region=TABLE_ENV["AWS_REGION"], endpoint_url=dynamo.endpoint_url, env=TABLE_ENV
    )


def test_items_follow_the_table_contract(table: MotoDynamo, tiny: Any) -> None:
    task, manifest = tiny
    cached = build(task, manifest, tier=_tier(table), write="sync", timeout_ms=TIMEOUT_MS, ttl_seconds=3600)
    cached.rows(["the red cat"])
    key = text_keyspace(manifest, truncate=True).key("the red cat")
    item = table.client().get_item(TableName=table.table, Key={"key": {"S": key.text}})["Item"]
    assert set(item) == {"key", "v", "expires_at"}
    assert len(item["v"]["B"]) == codec.size_of(tiny_models.DIM)  # binary float32, not JSON
    assert abs(int(item["expires_at"]["N"]) - (time.time() + 3600)) < 60


def test_a_second_instance_gets_the_answer_from_dynamodb(table: MotoDynamo, tiny: Any) -> None:
    task, manifest = tiny
    model = Counting(task)
    # 130 texts: more than one BatchGetItem (100 keys) and several BatchWriteItems (25 items).
    texts = [f"{a} {b}" for a in tiny_models.WORDS for b in tiny_models.WORDS][:130]
    one = build(model, manifest, tier=_tier(table), write="sync", timeout_ms=TIMEOUT_MS)
    two = build(model, manifest, tier=_tier(table), write="sync", timeout_ms=TIMEOUT_MS)
    assert one.rows(texts).served_by == "miss"
    shared = two.rows(texts)
    assert shared.served_by == "dynamodb"
    for row, text in zip(shared.values, texts, strict=True):
        np.testing.assert_allclose(row, tiny_models.expected_embedding(text), atol=1e-6)
    assert len(model.texts) == 130


def test_expired_items_dynamodb_has_not_deleted_yet_are_misses(table: MotoDynamo, tiny: Any) -> None:
    task, manifest = tiny
    space = text_keyspace(manifest, truncate=True)
    key = space.key("the dog ran")
    past = int(time.time()) - 10
    value = codec.encode(
        tiny_models.expected_embedding("the dog ran"),
        tokens=5,
        expires_at=past + 100_000,  # even if the value itself claims to be fresh
        model_digest=space.model_digest,
        key_digest=key.digest,
    )
    table.client().put_item(
        TableName=table.table,
        Item={"key": {"S": key.text}, "v": {"B": value}, "expires_at": {"N": str(past)}},
    )
    model = Counting(task)
    cached = build(model, manifest, tier=_tier(table), write="sync", timeout_ms=TIMEOUT_MS, memory_bytes=0)
    assert cached.rows(["the dog ran"]).served_by == "miss"
    assert cached.rows(["the dog ran"]).served_by == "dynamodb"  # rewritten with a live expiry
    assert model.texts == ["the dog ran"]


def test_an_item_of_another_model_is_a_miss(table: MotoDynamo, tiny: Any) -> None:
    task, manifest = tiny
    space = text_keyspace(manifest, truncate=True)
    key = space.key("a small mat")
    foreign = codec.encode(
        np.ones(tiny_models.DIM, np.float32),
        tokens=4,
        expires_at=int(time.time()) + 600,
        model_digest=bytes(32),
        key_digest=key.digest,
    )
    table.client().put_item(
        TableName=table.table,
        Item={"key": {"S": key.text}, "v": {"B": foreign}, "expires_at": {"N": str(int(time.time()) + 600)}},
    )
    cached = build(task, manifest, tier=_tier(table), write="sync", timeout_ms=TIMEOUT_MS)
    got = cached.rows(["a small mat"])
    assert got.served_by == "miss"
    np.testing.assert_allclose(got.values[0], tiny_models.expected_embedding("a small mat"), atol=1e-6)


def test_a_missing_table_is_logged_once_and_requests_carry_on(
    table: MotoDynamo, tiny: Any, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    task, manifest = tiny
    with caplog.at_level(logging.WARNING, logger="preheat"):
        cached = build(task, manifest, tier=_tier(table, "no-such-table"), timeout_ms=TIMEOUT_MS)
        capsys.readouterr()
        levels = [cached.rows([w]).served_by for w in tiny_models.WORDS]
    assert levels == ["miss"] * len(tiny_models.WORDS)
    (warning,) = [r.getMessage() for r in caplog.records if "cache tier dynamodb" in r.getMessage()]
    assert "ResourceNotFoundException" in warning and "PREHEAT_CACHE_TABLE" in warning
    assert cache_counts(emf_lines(capsys.readouterr().out))["dynamodb"][2] >= 1


def test_dynamodb_going_away_mid_run_fails_no_request(tiny: Any) -> None:
    task, manifest = tiny
    texts = [f"{a} {b}" for a in tiny_models.WORDS[:6] for b in tiny_models.WORDS[:6]]
    server = MotoDynamo(table="preheat-cache-outage").start()
    cached = build(task, manifest, tier=_tier(server), write="sync", memory_bytes=4096, timeout_ms=500)
    failures = 0
    answered = 0
    stopper = threading.Timer(0.5, server.stop)
    stopper.start()
    try:
        deadline = time.monotonic() + 2.0
        i = 0
        while time.monotonic() < deadline:
            text = texts[i % len(texts)]
            i += 1
            try:
                got = cached.rows([text])
                np.testing.assert_allclose(got.values[0], tiny_models.expected_embedding(text), atol=1e-6)
                answered += 1
            except Exception:
                failures += 1
    finally:
        stopper.join()
        server.stop()
    assert failures == 0 and answered > 20
    assert cached.shared is not None and cached.shared.breaker.is_open


def _embed_event(text: str) -> dict[str, Any]:
    body = json.dumps({"input": text, "model": "tiny"}).encode()
    return event("function_url", body=base64.b64encode(body).decode(), isBase64Encoded=True)


def test_through_the_handler_a_new_instance_is_served_by_dynamodb(
    table: MotoDynamo, embedding_dir: Path, load_handler: Callable[..., ModuleType]
) -> None:
    env = {
        **table.env(),
        "PREHEAT_CACHE_TIMEOUT_MS": str(TIMEOUT_MS),
        "AWS_LAMBDA_FUNCTION_NAME": "preheat-test",  # Lambda: writes happen before the answer
    }
    first = load_handler(embedding_dir, **env)
    assert first.handler(_embed_event("hello world"), context())["headers"]["x-preheat-cache"] == "miss"
    assert first.handler(_embed_event("hello world"), context())["headers"]["x-preheat-cache"] == "memory"
    second = load_handler(embedding_dir, **env)
    assert second.handler(_embed_event("hello world"), context())["headers"]["x-preheat-cache"] == "dynamodb"
