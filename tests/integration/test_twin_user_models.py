"""The models a user builds with `preheat build --model`, served by the Lambda handler behind the
twin's HTTPS Function URLs (isolated instances once the layers are built), called with the clients a
user would pick: the openai client for the embedder (signing for the URL's AWS_IAM auth through its
httpx client), tritonclient with its defaults for the tensor model, plain HTTPS for the rest."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from functions.inference.runtime import open_task
from functions.inference.tasks import Classifies, Embeds
from scripts.twin import sigv4
from scripts.twin.client import TwinClient
from scripts.twin.config import TwinConfig, inference_function
from tests.support.built_models import BuiltModel
from tests.support.twin import ROOT, running

pytestmark = pytest.mark.integration

TEXTS = ["the cat sat on the mat", "markets opened higher this morning", "a small red boat"]
# The tensor model is called by tritonclient, which cannot sign a body (its plugins see headers only).
AUTH = {"st-bert": "AWS_IAM", "roberta": "AWS_IAM", "classifier": "AWS_IAM", "cross-encoder": "AWS_IAM", "cnn": "NONE"}


@pytest.fixture(scope="module")
def twin(
    tmp_path_factory: pytest.TempPathFactory,
    built_st_bert: BuiltModel,
    built_roberta: BuiltModel,
    built_classifier: BuiltModel,
    built_cross_encoder: BuiltModel,
    built_cnn: BuiltModel,
) -> Iterator[tuple[TwinClient, dict[str, BuiltModel]]]:
    models = {m.name: m for m in (built_st_bert, built_roberta, built_classifier, built_cross_encoder, built_cnn)}
    functions = tuple(
        inference_function(ROOT, name=name, model_dir=m.model_dir, url_auth=AUTH[name], keep_alive_s=600)
        for name, m in models.items()
    )
    config = TwinConfig(functions=functions, state_dir=tmp_path_factory.mktemp("twin-user-models"), max_instances=8)
    with running(config) as client:
        yield client, models


def reference(model: BuiltModel) -> Any:
    return open_task(model.model_dir)


def test_the_openai_client_calls_a_sentence_transformers_embedder(twin: tuple[TwinClient, dict[str, BuiltModel]]) -> None:
    import httpx
    import openai

    client, models = twin
    signer = sigv4.Signer(client.state.region)

    class SigV4(httpx.Auth):
        requires_request_body = True

        def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
            headers = {k: v for k, v in request.headers.items() if k.lower() != "connection"}
            request.headers.update(signer.headers(request.method, str(request.url), headers, request.content))
            yield request

    http = httpx.Client(auth=SigV4(), verify=ssl.create_default_context(cafile=client.state.ca))
    api = openai.OpenAI(base_url=f"{client.state.url('st-bert')}v1", api_key="unused", http_client=http, max_retries=0)
    response = api.embeddings.create(model="st-bert", input=TEXTS)
    task = reference(models["st-bert"])
    assert isinstance(task, Embeds)
    np.testing.assert_allclose([d.embedding for d in response.data], task.embed(TEXTS).values, atol=1e-5)
    unsigned = openai.OpenAI(base_url=f"{client.state.url('st-bert')}v1", api_key="unused", max_retries=0,
                             http_client=httpx.Client(verify=ssl.create_default_context(cafile=client.state.ca)))
    with pytest.raises(openai.PermissionDeniedError):
        unsigned.embeddings.create(model="st-bert", input="x")


def test_a_roberta_embedder_with_its_bpe_tokenizer(twin: tuple[TwinClient, dict[str, BuiltModel]]) -> None:
    client, models = twin
    url = client.url_client("roberta")
    reply = url.request("POST", "/v1/embeddings", {"input": TEXTS, "model": "roberta"})
    url.close()
    assert reply.status == 200, reply.body[:300]
    task = reference(models["roberta"])
    assert isinstance(task, Embeds)
    np.testing.assert_allclose([d["embedding"] for d in reply.json()["data"]], task.embed(TEXTS).values, atol=1e-5)


def test_a_classifier_and_a_cross_encoder(twin: tuple[TwinClient, dict[str, BuiltModel]]) -> None:
    client, models = twin
    url = client.url_client("classifier")
    classified = url.request("POST", "/v1/classify", {"input": TEXTS})
    url.close()
    assert classified.status == 200, classified.body[:300]
    task = reference(models["classifier"])
    assert isinstance(task, Classifies)
    want = task.classify(TEXTS).values
    assert [row["label"] for row in classified.json()["data"]] == [task.labels[i] for i in want.argmax(axis=1)]

    url = client.url_client("cross-encoder")
    ranked = url.request("POST", "/v1/rerank", {"query": "where is the cat", "documents": TEXTS})
    url.close()
    assert ranked.status == 200, ranked.body[:300]
    reranker = reference(models["cross-encoder"])
    assert isinstance(reranker, Classifies)
    scores = reranker.classify([("where is the cat", t) for t in TEXTS]).values[:, 0]
    results = ranked.json()["results"]
    assert [r["index"] for r in results] == list(np.argsort(-scores, kind="stable"))
    np.testing.assert_allclose([r["relevance_score"] for r in results], np.sort(scores)[::-1], atol=1e-5)


def test_tritonclient_with_its_defaults_calls_the_tensor_model(twin: tuple[TwinClient, dict[str, BuiltModel]]) -> None:
    import tritonclient.http as triton

    client, models = twin
    host = client.state.url("cnn").removeprefix("https://").rstrip("/")
    metadata_task = reference(models["cnn"])
    api = triton.InferenceServerClient(
        url=host, ssl=True, ssl_options={"ca_certs": client.state.ca},
        ssl_context_factory=lambda **_: ssl.create_default_context(cafile=client.state.ca),
    )
    try:
        metadata = api.get_model_metadata("cnn")
        inputs = []
        feeds: dict[str, np.ndarray] = {}
        rng = np.random.default_rng(3)
        for spec in metadata["inputs"]:
            shape = [1 if d == -1 else d for d in spec["shape"]]
            if spec["datatype"] == "FP32":
                shape = [1, 3, 32, 32] if len(shape) == 4 else shape
                array = rng.normal(size=shape).astype(np.float32)
            else:
                array = np.zeros(shape, dtype=np.int64)
            tensor = triton.InferInput(spec["name"], list(array.shape), spec["datatype"])
            tensor.set_data_from_numpy(array)  # binary, the client's default
            inputs.append(tensor)
            feeds[spec["name"]] = array
        result = api.infer("cnn", inputs)  # all outputs, binary, the client's default
        want = metadata_task.infer(feeds).outputs
        for name, array in want.items():
            np.testing.assert_allclose(result.as_numpy(name), array, atol=1e-4)
    finally:
        api.close()
