"""The default model on the twin, as `preheat up` runs it: cold, then warm, through HTTPS and boto3."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from scripts.twin.config import DEFAULT_FUNCTION, DEFAULT_MODEL_DIR, TwinConfig, inference_function
from scripts.twin.models import model_name
from tests.support.twin import ROOT, running

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def test_the_default_model_serves_cold_then_warm(tmp_path: Path) -> None:
    model_dir = ROOT / DEFAULT_MODEL_DIR
    if not (model_dir / "manifest.json").is_file():
        pytest.fail(f"{model_dir} is missing: run `make model` (make test builds it first)")
    name = model_name(model_dir)
    config = TwinConfig(functions=(inference_function(ROOT),), state_dir=tmp_path)
    with running(config) as twin:
        client = twin.url_client(DEFAULT_FUNCTION)
        body = {"input": ["A cold start, measured.", "And a warm one."], "model": name}
        cold = client.request("POST", "/v1/embeddings", body)
        warm = client.request("POST", "/v1/embeddings", body)
        client.close()
        assert cold.status == 200, cold.body[:300]
        assert cold.headers["x-preheat-start"] == "cold" and warm.headers["x-preheat-start"] == "warm"
        vectors = [d["embedding"] for d in cold.json()["data"]]
        assert len(vectors) == 2 and len(vectors[0]) == 384
        assert vectors == [d["embedding"] for d in warm.json()["data"]]
        records = {r["request_id"]: r for r in twin.invocations(0, DEFAULT_FUNCTION)[1]}
        cold_record = records[cold.headers["x-amzn-requestid"]]
        warm_record = records[warm.headers["x-amzn-requestid"]]
        assert cold_record["cold"] and cold_record["init_ms"] > 0
        assert not warm_record["cold"] and warm_record["instance_id"] == cold_record["instance_id"]
        assert cold_record["max_memory_mb"] > 50  # the model is in memory

        lam = twin.boto3_client("lambda")
        response = lam.invoke(
            FunctionName=DEFAULT_FUNCTION,
            Qualifier="live",
            LogType="Tail",
            Payload=json.dumps({"input": "direct invoke", "model": name}).encode(),
        )
        result = json.loads(response["Payload"].read())
        assert "FunctionError" not in response, result
        assert len(result["data"][0]["embedding"]) == 384
        tail = base64.b64decode(response["LogResult"]).decode()
        assert "REPORT RequestId" in tail and "Init Duration" not in tail  # the URL's instance served it
