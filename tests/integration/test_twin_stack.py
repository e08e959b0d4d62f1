"""The twin of the CDK stack (`preheat up` without --config): what it derives from cdk.json runs.

tests/infra/test_twin_parity.py compares the derived config with the synthesized template; here it
runs: the cache's shared DynamoDB tier (a table the twin creates in moto), and `preheat up -c`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.twin.config import DEFAULT_FUNCTION, DEFAULT_MODEL_DIR
from scripts.twin.models import model_name
from scripts.twin.stack import CACHE_TABLE, default_config
from tests.support.twin import ROOT, running

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def test_the_cache_table_is_shared_by_the_twin_s_instances(tmp_path: Path) -> None:
    """A repeat on a new instance (its in-process LRU empty) is answered by the table in moto."""
    model_dir = ROOT / DEFAULT_MODEL_DIR
    if not (model_dir / "manifest.json").is_file():
        pytest.fail(f"{model_dir} is missing: run `make model` (make test builds it first)")
    config = default_config(
        ROOT,
        # moto answers in milliseconds, not DynamoDB's single digits, on a shared machine: a generous
        # budget keeps this about behaviour. No SageMaker endpoint or schedules needed here.
        context=[
            "preheat:cache.timeoutMs=2000",
            "preheat:sagemaker.enabled=false",
            "preheat:warmer.enabled=false",
            "preheat:controller.enabled=false",
        ],
        state_dir=tmp_path,
    )
    assert config.tables == (CACHE_TABLE,)
    body = {"input": ["the cache is shared", "across instances"], "model": model_name(model_dir)}
    with running(config) as twin:
        assert twin.state.tables == [CACHE_TABLE]
        client = twin.url_client(DEFAULT_FUNCTION)
        first = client.request("POST", "/v1/embeddings", body)
        again = client.request("POST", "/v1/embeddings", body)
        client.close()
        assert first.status == 200, first.body[:300]
        assert (first.headers["x-preheat-cache"], again.headers["x-preheat-cache"]) == ("miss", "memory")
        assert twin.reset(DEFAULT_FUNCTION) == 1
        client = twin.url_client(DEFAULT_FUNCTION)
        shared = client.request("POST", "/v1/embeddings", body)
        client.close()
        assert shared.headers["x-preheat-start"] == "cold"
        assert shared.headers["x-preheat-cache"] == "dynamodb"
        assert shared.json()["data"] == first.json()["data"]
        dynamodb = twin.boto3_client("dynamodb")
        assert dynamodb.scan(TableName=CACHE_TABLE, Select="COUNT")["Count"] == 2
        ttl = dynamodb.describe_time_to_live(TableName=CACHE_TABLE)["TimeToLiveDescription"]
        assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")


def preheat(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scripts.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_up_takes_cdk_context_overrides_and_names_a_bad_key(tmp_path: Path) -> None:
    bad = preheat("up", "-c", "preheat:lambda.memoryMb=64", "--state-dir", str(tmp_path / "state"))
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert "preheat.lambda.memoryMb" in bad.stdout
    config = tmp_path / "twin.json"
    config.write_text(json.dumps({"functions": []}))
    mixed = preheat("up", "--config", str(config), "-c", "preheat:lambda.memoryMb=1024",
                    "--state-dir", str(tmp_path / "state"))  # fmt: skip
    assert mixed.returncode == 2 and "--context" in mixed.stdout
    assert not (tmp_path / "state" / "twin.json").exists()
