"""The twin of the stack serves the model `-c preheat:model=NAME` names, not the default: a classifier
through `preheat up` (its HTTPS Function URL, the curl it prints, its SageMaker endpoint), and a tensor
model through the same config in process."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scripts.twin import state as twin_state
from scripts.twin.client import TwinClient
from scripts.twin.config import DEFAULT_FUNCTION
from scripts.twin.stack import default_config
from tests.support import tiny_models
from tests.support.twin import ROOT, running

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

# What neither test needs: schedules and the cache's table.
LEAN = ["preheat:warmer.enabled=false", "preheat:controller.enabled=false", "preheat:cache.table=false"]


def preheat(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scripts.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=180,
        env={**os.environ, "COLUMNS": "1000"},  # no wrapping inside the messages checked here
    )  # fmt: skip


def test_preheat_up_serves_the_classifier_the_context_names(tmp_path: Path) -> None:
    models = tmp_path / "models"
    tiny_models.write_classification_model(models / "sentiment", name="sentiment")
    state_dir = tmp_path / "state"
    context = ["preheat:model=sentiment", f"preheat:modelsDir={models}", *LEAN]
    up = preheat("up", *(a for c in context for a in ("-c", c)), "--state-dir", str(state_dir))
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        state = twin_state.read_state(state_dir)
        assert state is not None
        twin = TwinClient(state)
        assert "model         sentiment (text-classification): /v1/classify" in up.stdout
        assert list(state.endpoints) == ["preheat-sentiment"]  # the endpoint is named after the model

        text = "the big red dog sat on a mat"
        client = twin.url_client(DEFAULT_FUNCTION)
        reply = client.request("POST", "/v1/classify", {"input": [text], "model": "sentiment"})
        wrong = client.request("POST", "/v1/embeddings", {"input": text, "model": "sentiment"})
        client.close()
        assert reply.status == 200, reply.body[:300]
        answer = reply.json()
        assert answer["model"] == "sentiment"
        scores = {s["label"]: s["score"] for s in answer["data"][0]["labels"]}
        assert np.allclose([scores[label] for label in tiny_models.LABELS], tiny_models.expected_scores(text), atol=1e-5)
        assert wrong.status == 400 and wrong.json()["error"]["code"] == "unsupported_task"

        # The curl `preheat up` printed, run as printed: it reaches the model through the HTTPS URL.
        if shutil.which("curl"):
            printed = re.search(r"curl --cacert .*?(?=\n  AWS_ENDPOINT_URL)", up.stdout, re.S)
            assert printed is not None, up.stdout
            command = shlex.split(printed.group(0).replace("\\\n", " "))
            curl = subprocess.run([*command, "--silent", "--show-error"], capture_output=True, text=True, timeout=60)
            assert curl.returncode == 0, curl.stderr
            assert json.loads(curl.stdout)["data"][0]["label"] in tiny_models.LABELS

        # The stack's SageMaker endpoint serves the same model (`serve` containers, boto3 unchanged).
        runtime = twin.boto3_client("sagemaker-runtime")
        body = runtime.invoke_endpoint(
            EndpointName="preheat-sentiment", ContentType="application/json", Body=json.dumps({"input": [text]})
        )["Body"].read()
        assert json.loads(body)["data"][0]["label"] == answer["data"][0]["label"]
    finally:
        down = preheat("down", "--state-dir", str(state_dir))
        assert down.returncode == 0, down.stdout + down.stderr


def test_preheat_up_of_a_model_not_built_names_the_command_that_builds_it(tmp_path: Path) -> None:
    up = preheat("up", "-c", "preheat:model=my-reranker", "--state-dir", str(tmp_path / "state"))
    assert up.returncode == 2, up.stdout + up.stderr
    assert "preheat.model is 'my-reranker'" in up.stdout
    assert "`preheat build --model SPEC --name my-reranker`" in up.stdout
    assert twin_state.read_state(tmp_path / "state") is None


def test_the_twin_of_the_stack_serves_a_tensor_model(tmp_path: Path) -> None:
    models = tmp_path / "models"
    tiny_models.write_tensor_model(models / "linear", name="linear")
    config = default_config(
        ROOT,
        context=["preheat:model=linear", f"preheat:modelsDir={models}", "preheat:sagemaker.enabled=false", *LEAN],
        state_dir=tmp_path / "state",
    )
    x = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]], dtype=np.float32)
    request = {"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP32", "data": x.ravel().tolist()}]}
    with running(config) as twin:
        client = twin.url_client(DEFAULT_FUNCTION)
        reply = client.request("POST", "/v2/models/linear/infer", request)
        metadata = client.request("GET", "/v2/models/linear")
        client.close()
    assert reply.status == 200, reply.body[:300]
    outputs = {o["name"]: o for o in reply.json()["outputs"]}
    y = np.array(outputs["y"]["data"], dtype=np.float32).reshape(outputs["y"]["shape"])
    assert np.allclose(y, x @ tiny_models.W + tiny_models.B, atol=1e-6)
    assert outputs["label"]["data"] == (x @ tiny_models.W + tiny_models.B).argmax(axis=1).tolist()
    assert reply.json()["model_name"] == "linear" and metadata.json()["name"] == "linear"
