"""The real default model (build/models/minilm, from `preheat build`) through every surface."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from functions.inference.app import create_app
from functions.inference.runtime import Runtime
from functions.inference.settings import Settings
from tests.conftest import DEFAULT_MODEL, context, event
from tests.support.servers import uvicorn_server

pytestmark = pytest.mark.integration

SENTENCES = [
    "A cat is sleeping on the warm windowsill.",
    "A kitten naps in the sun by the window.",
    "The central bank raised interest rates again this quarter.",
    "Inflation data pushed bond yields higher.",
]


@pytest.fixture(scope="module")
def model_dir() -> Path:
    if not (DEFAULT_MODEL / "manifest.json").is_file():
        pytest.fail(f"{DEFAULT_MODEL} is missing: run `make model` (preheat build) first")
    return DEFAULT_MODEL


@pytest.fixture(scope="module")
def runtime(model_dir: Path) -> Runtime:
    return Runtime.load(Settings(model_dir=model_dir, threads=1))


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    """sentence-transformers' recipe on the original PyTorch weights: mean pooling, L2 norm."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from layers.source import default_source

    source = default_source().path
    tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=True)
    model = AutoModel.from_pretrained(str(source), local_files_only=True).eval()
    batch = tokenizer(SENTENCES, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(pooled, dim=1).numpy()


def assert_matches_reference(vectors: np.ndarray, reference: np.ndarray, runtime: Runtime) -> None:
    cosine = (vectors * reference).sum(axis=1)
    if runtime.manifest.build.get("precision", "fp32") == "fp32":
        np.testing.assert_allclose(vectors, reference, atol=1e-4)
    else:  # a slimmed model is held to its accuracy gate, recorded in the manifest
        assert cosine.min() > 0.98, cosine


def test_the_model_embeds_like_the_pytorch_original(runtime: Runtime, reference: np.ndarray) -> None:
    assert runtime.manifest.embedding is not None and runtime.manifest.embedding.dimensions == 384
    vectors = runtime.plane.embedder.embed(SENTENCES).values  # type: ignore[union-attr]
    assert_matches_reference(vectors, reference, runtime)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] + 0.3 and similarity[2, 3] > similarity[0, 3] + 0.3


def test_the_lambda_handler_cold_then_warm(
    model_dir: Path, load_handler: Callable[..., ModuleType], reference: np.ndarray
) -> None:
    handler = load_handler(model_dir)
    payload = json.dumps({"input": SENTENCES, "model": "all-MiniLM-L6-v2"})
    results = [
        handler.handler(event("function_url", body=payload, isBase64Encoded=False), context(f"r{i}"))
        for i in range(2)
    ]
    assert [r["headers"]["x-preheat-start"] for r in results] == ["cold", "warm"]
    for result in results:
        vectors = np.array([d["embedding"] for d in json.loads(result["body"])["data"]])
        assert_matches_reference(vectors, reference, handler.RUNTIME)


@pytest.fixture(scope="module")
def base_url(runtime: Runtime) -> Iterator[str]:
    with uvicorn_server(create_app(runtime)) as url:
        yield url


def test_the_official_openai_client(base_url: str, runtime: Runtime, reference: np.ndarray) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="not-needed", max_retries=0)
    for encoding in ("float", "base64"):
        response = client.embeddings.create(model="minilm", input=SENTENCES, encoding_format=encoding)  # type: ignore[arg-type]
        got: list[Any] = [d.embedding for d in response.data]
        if encoding == "base64":
            got = [np.frombuffer(base64.b64decode(e), dtype="<f4") for e in got]
        assert_matches_reference(np.array(got, dtype=np.float32), reference, runtime)
        assert response.usage.prompt_tokens > len(SENTENCES)
    default = client.embeddings.create(model="minilm", input="hello")  # the client's own default encoding
    assert len(default.data[0].embedding) == 384
    assert [m.id for m in client.models.list()] == list(runtime.manifest.names())
    with pytest.raises(openai.BadRequestError) as bad:
        client.embeddings.create(model="minilm", input=[""])
    assert bad.value.status_code == 400 and bad.value.code == "invalid_request"
    with pytest.raises(openai.NotFoundError) as missing:
        client.embeddings.create(model="text-embedding-3-small", input="x")
    assert missing.value.code == "model_not_found"


def test_a_triton_client_speaks_the_open_inference_protocol(
    base_url: str, runtime: Runtime, reference: np.ndarray
) -> None:
    import tritonclient.http as triton

    client = triton.InferenceServerClient(url=base_url.removeprefix("http://"))
    try:
        assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("minilm")
        metadata = client.get_model_metadata("minilm")
        assert metadata["inputs"][0] == {"name": "text", "datatype": "BYTES", "shape": [-1]}
        # The client's defaults: tensors in the binary data extension, all outputs asked for in binary.
        text = triton.InferInput("text", [len(SENTENCES)], "BYTES")
        text.set_data_from_numpy(np.array(SENTENCES, dtype=object))
        result = client.infer("minilm", [text])
        assert_matches_reference(result.as_numpy("embedding"), reference, runtime)
        # And JSON both ways, as a client configured for it sends.
        text.set_data_from_numpy(np.array(SENTENCES, dtype=object), binary_data=False)
        json_result = client.infer(
            "minilm", [text], outputs=[triton.InferRequestedOutput("embedding", binary_data=False)]
        )
        np.testing.assert_array_equal(json_result.as_numpy("embedding"), result.as_numpy("embedding"))
        # Errors in the protocol's shape: the client reads the message instead of crashing on it.
        with pytest.raises(triton.InferenceServerException) as missing:
            client.infer("no-such-model", [text])
        assert missing.value.status() == "404" and "is not served here" in missing.value.message()
    finally:
        client.close()
