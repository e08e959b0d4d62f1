"""Unchanged clients, with their defaults, against every task served by uvicorn (the app SageMaker
and `preheat serve` run): tritonclient for v2 (binary tensors by default), openai for embeddings,
and plain HTTP for classify and rerank, whose peers (Cohere, Jina, TEI) ship no shared client."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from functions.inference.app import create_app
from functions.inference.runtime import Runtime
from tests.support import tiny_models
from tests.support.servers import uvicorn_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, str]]:
    from functions.inference.settings import Settings

    root = tmp_path_factory.mktemp("client-models")
    tiny_models.write_tensor_model(root / "linear")
    tiny_models.write_embedding_model(root / "tiny")
    tiny_models.write_classification_model(root / "classifier")
    tiny_models.write_classification_model(
        root / "reranker", name="tiny-reranker", labels=("relevance",), pairs=True, activation="sigmoid"
    )
    urls: dict[str, str] = {}
    with (
        uvicorn_server(create_app(Runtime.load(Settings(model_dir=root / "linear")))) as linear,
        uvicorn_server(create_app(Runtime.load(Settings(model_dir=root / "tiny")))) as tiny,
        uvicorn_server(create_app(Runtime.load(Settings(model_dir=root / "classifier")))) as classifier,
        uvicorn_server(create_app(Runtime.load(Settings(model_dir=root / "reranker")))) as reranker,
    ):
        urls.update(linear=linear, tiny=tiny, classifier=classifier, reranker=reranker)
        yield urls


def test_tritonclient_defaults_on_a_tensor_model(servers: dict[str, str]) -> None:
    import tritonclient.http as client

    triton_client = client.InferenceServerClient(url=servers["linear"].removeprefix("http://"))
    try:
        metadata = triton_client.get_model_metadata("linear")
        assert [i["name"] for i in metadata["inputs"]] == ["x"]
        x = np.array([[1, 2, 3], [0.5, -1, 2]], dtype=np.float32)
        tensor = client.InferInput("x", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x)  # binary_data=True, the default
        result = triton_client.infer("linear", [tensor])  # no outputs named: all of them, binary
        np.testing.assert_allclose(result.as_numpy("y"), x @ tiny_models.W + tiny_models.B, rtol=1e-6)
        np.testing.assert_array_equal(result.as_numpy("label"), (x @ tiny_models.W + tiny_models.B).argmax(axis=1))
        asked = triton_client.infer("linear", [tensor], outputs=[client.InferRequestedOutput("label")])
        assert asked.as_numpy("y") is None and asked.as_numpy("label").tolist() == result.as_numpy("label").tolist()
        wrong = client.InferInput("x", [1, 4], "FP32")
        wrong.set_data_from_numpy(np.zeros((1, 4), np.float32))
        with pytest.raises(client.InferenceServerException) as refused:
            triton_client.infer("linear", [wrong])
        assert refused.value.status() == "400" and "axis 1 must be 3" in refused.value.message()
    finally:
        triton_client.close()


def test_tritonclient_defaults_on_text_models(servers: dict[str, str]) -> None:
    import tritonclient.http as client

    texts = np.array(["the cat sat", "hello world"], dtype=object)
    embed = client.InferenceServerClient(url=servers["tiny"].removeprefix("http://"))
    classify = client.InferenceServerClient(url=servers["classifier"].removeprefix("http://"))
    try:
        text = client.InferInput("text", [2], "BYTES")
        text.set_data_from_numpy(texts)
        vectors = embed.infer("tiny", [text]).as_numpy("embedding")
        for row, value in zip(vectors, texts, strict=True):
            np.testing.assert_allclose(row, tiny_models.expected_embedding(value), atol=1e-6)
        result = classify.infer("tiny-classifier", [text])
        labels = [v.decode() for v in result.as_numpy("label")]
        want = [tiny_models.LABELS[int(tiny_models.expected_logits(t, 3).argmax())] for t in texts]
        assert labels == want and result.as_numpy("scores").shape == (2, 3)
    finally:
        embed.close()
        classify.close()


def test_openai_client_on_the_embedder(servers: dict[str, str]) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{servers['tiny']}/v1", api_key="unused", max_retries=0)
    response = client.embeddings.create(model="tiny", input=["hello world", "a cat"])
    np.testing.assert_allclose(response.data[1].embedding, tiny_models.expected_embedding("a cat"), atol=1e-5)
    with pytest.raises(openai.BadRequestError) as refused:
        openai.OpenAI(base_url=f"{servers['classifier']}/v1", api_key="x", max_retries=0).embeddings.create(
            model="tiny-classifier", input="a cat"
        )
    assert refused.value.code == "unsupported_task"


def test_classify_and_rerank_over_http(servers: dict[str, str]) -> None:
    classified = httpx.post(f"{servers['classifier']}/v1/classify", json={"input": ["a red dog"]}).json()
    assert classified["data"][0]["label"] in tiny_models.LABELS
    ranked = httpx.post(
        f"{servers['reranker']}/v1/rerank",
        json={"query": "the cat", "documents": ["a dog", "the cat sat on the mat"], "top_n": 1},
    ).json()
    assert len(ranked["results"]) == 1 and ranked["results"][0]["index"] in (0, 1)
    spec = httpx.get(f"{servers['reranker']}/openapi.json").json()
    assert {"/v1/classify", "/v1/rerank", "/v2/models/{name}/infer"} <= set(spec["paths"])
