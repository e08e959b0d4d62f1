"""text-classification (classifiers and cross-encoders) and every text task's v2 and /invocations
paths, through Router.dispatch on tiny real models whose answers are computed by hand."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from functions.inference.protocol import HttpRequest, HttpResponse, Router
from functions.inference.runtime import Runtime
from tests.support import tiny_models

JSON_HEADERS = {"content-type": "application/json"}


def post(router: Router, path: str, body: Any) -> HttpResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return router.dispatch(HttpRequest("POST", path, raw, JSON_HEADERS, request_id="r-1"))


def ok(response: HttpResponse) -> Any:
    assert response.status == 200, response.body
    return json.loads(response.body)


def code(response: HttpResponse) -> tuple[int, str]:
    payload = json.loads(response.body)
    value = payload["code"] if isinstance(payload["error"], str) else payload["error"]["code"]
    return response.status, value


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    result: np.ndarray = e / e.sum()
    return result


@pytest.fixture
def classifier(classifier_dir: Path, make_runtime: Callable[..., Runtime]) -> Router:
    return make_runtime(classifier_dir, max_inputs=4).router


@pytest.fixture
def reranker(cross_encoder_dir: Path, make_runtime: Callable[..., Runtime]) -> Router:
    return make_runtime(cross_encoder_dir).router


@pytest.fixture
def embedder(embedding_dir: Path, make_runtime: Callable[..., Runtime]) -> Router:
    return make_runtime(embedding_dir).router


# -- /v1/classify ---------------------------------------------------------------------------------


def test_classify_scores_every_label_best_first(classifier: Router) -> None:
    texts = ["the cat sat on the mat", "a big red dog"]
    payload = ok(post(classifier, "/v1/classify", {"input": texts}))
    assert payload["model"] == "tiny-classifier" and payload["object"] == "list"
    for i, (text, row) in enumerate(zip(texts, payload["data"], strict=True)):
        want = softmax(tiny_models.expected_logits(text, 3))
        assert row["index"] == i
        scores = {item["label"]: item["score"] for item in row["labels"]}
        np.testing.assert_allclose([scores[label] for label in tiny_models.LABELS], want, atol=1e-5)
        assert [item["score"] for item in row["labels"]] == sorted(scores.values(), reverse=True)
        assert row["label"] == tiny_models.LABELS[int(want.argmax())] == row["labels"][0]["label"]
        assert row["score"] == row["labels"][0]["score"]
    assert payload["usage"]["prompt_tokens"] == sum(len(t.split()) + 2 for t in texts)


def test_classify_top_k_and_a_single_string(classifier: Router) -> None:
    payload = ok(post(classifier, "/v1/classify", {"input": "hello world", "top_k": 1, "model": "tiny-classifier"}))
    (row,) = payload["data"]
    assert len(row["labels"]) == 1 and row["labels"][0]["label"] == row["label"]


def test_a_repeated_text_is_answered_from_the_cache(classifier: Router) -> None:
    first = post(classifier, "/v1/classify", {"input": ["the dog ran"]})
    again = post(classifier, "/v1/classify", {"input": ["the dog ran"]})
    assert first.cache == "miss" and again.cache == "memory"
    assert again.headers["x-preheat-cache"] == "memory" and ok(again) == ok(first)


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"input": []}, 400, "invalid_request"),
        ({"input": [""]}, 400, "invalid_request"),
        ({"input": ["a"] * 5}, 400, "too_many_inputs"),
        ({"input": [["the cat", "the dog"]]}, 400, "unsupported_input"),
        ({"input": "a cat", "top_k": 0}, 400, "invalid_request"),
        ({"input": "a cat", "model": "gpt-4"}, 404, "model_not_found"),
        ({"inputs": "a cat"}, 400, "invalid_request"),
    ],
)
def test_bad_classify_requests(classifier: Router, body: dict[str, Any], status: int, reason: str) -> None:
    assert code(post(classifier, "/v1/classify", body)) == (status, reason)


def test_other_tasks_name_the_routes_they_serve(classifier: Router, embedder: Router) -> None:
    status, reason = code(post(embedder, "/v1/classify", {"input": "a cat"}))
    assert (status, reason) == (400, "unsupported_task")
    message = json.loads(post(classifier, "/v1/embeddings", {"input": "a cat", "model": "x"}).body)["error"]["message"]
    assert "POST /v1/classify" in message and "/v2/models/tiny-classifier/infer" in message
    assert code(post(classifier, "/v1/rerank", {"query": "a", "documents": ["b"]})) == (400, "unsupported_task")


# -- /v1/rerank -----------------------------------------------------------------------------------


def relevance(query: str, document: str) -> float:
    return float(1 / (1 + np.exp(-tiny_models.expected_logits((query, document), 1)[0])))


def test_rerank_sorts_documents_by_relevance(reranker: Router) -> None:
    query = "the cat"
    documents = ["a big dog", "the cat sat on the mat", "hello world", "red"]
    payload = ok(post(reranker, "/v1/rerank", {"query": query, "documents": documents, "top_n": 3}))
    want = sorted(((relevance(query, d), i) for i, d in enumerate(documents)), reverse=True)[:3]
    assert [r["index"] for r in payload["results"]] == [i for _, i in want]
    np.testing.assert_allclose([r["relevance_score"] for r in payload["results"]], [s for s, _ in want], atol=1e-5)
    assert all("document" not in r for r in payload["results"])
    assert payload["model"] == "tiny-reranker" and payload["id"]


def test_rerank_takes_cohere_documents_and_tei_texts(reranker: Router) -> None:
    cohere = ok(post(reranker, "/v1/rerank", {"query": "dog", "documents": [{"text": "a dog"}, {"text": "a cat"}],
                                              "return_documents": True}))
    assert {r["document"]["text"] for r in cohere["results"]} == {"a dog", "a cat"}
    tei = ok(post(reranker, "/v1/rerank", {"query": "dog", "texts": ["a dog", "a cat"], "return_text": True}))
    assert [r["index"] for r in tei["results"]] == [r["index"] for r in cohere["results"]]


@pytest.mark.parametrize(
    "body",
    [
        {"query": "dog"},
        {"query": "", "documents": ["a"]},
        {"query": "dog", "documents": []},
        {"query": "dog", "documents": [""]},
        {"query": "dog", "documents": ["a"], "texts": ["b"]},
        {"query": "dog", "documents": ["a"], "top_n": 0},
        {"query": "dog", "documents": [3]},
    ],
)
def test_bad_rerank_requests(reranker: Router, body: dict[str, Any]) -> None:
    assert code(post(reranker, "/v1/rerank", body)) == (400, "invalid_request")


def test_a_pair_model_classifies_pairs(reranker: Router) -> None:
    payload = ok(post(reranker, "/v1/classify", {"input": [["the cat", "a mat"]]}))
    assert payload["data"][0]["score"] == pytest.approx(relevance("the cat", "a mat"), abs=1e-5)
    assert code(post(reranker, "/v1/classify", {"input": ["the cat"]})) == (400, "unsupported_input")


# -- v2 and /invocations for text tasks -----------------------------------------------------------


def test_v2_embeds_bytes_tensors(embedder: Router) -> None:
    texts = ["hello world", "a cat"]
    payload = ok(post(embedder, "/v2/models/tiny/infer", {"inputs": [
        {"name": "text", "shape": [2], "datatype": "BYTES", "data": texts}]}))
    (out,) = payload["outputs"]
    assert out["name"] == "embedding" and out["shape"] == [2, tiny_models.DIM] and out["datatype"] == "FP32"
    got = np.array(out["data"], dtype=np.float32).reshape(2, tiny_models.DIM)
    for row, text in zip(got, texts, strict=True):
        np.testing.assert_allclose(row, tiny_models.expected_embedding(text), atol=1e-6)


def test_v2_classifies_and_returns_the_label(classifier: Router) -> None:
    payload = ok(post(classifier, "/v2/models/tiny-classifier/infer", {"inputs": [
        {"name": "text", "shape": [1], "datatype": "BYTES", "data": ["a small cat"]}]}))
    outputs = {o["name"]: o for o in payload["outputs"]}
    want = softmax(tiny_models.expected_logits("a small cat", 3))
    np.testing.assert_allclose(outputs["scores"]["data"], want, atol=1e-5)
    assert outputs["label"] == {"name": "label", "shape": [1], "datatype": "BYTES",
                                "data": [tiny_models.LABELS[int(want.argmax())]]}
    only = ok(post(classifier, "/v2/models/tiny-classifier/infer", {
        "inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["a small cat"]}],
        "outputs": [{"name": "label"}]}))
    assert [o["name"] for o in only["outputs"]] == ["label"]


def test_v2_pairs_need_both_tensors_of_one_length(reranker: Router) -> None:
    def infer(pairs: list[str]) -> HttpResponse:
        return post(reranker, "/v2/models/tiny-reranker/infer", {"inputs": [
            {"name": "text", "shape": [1], "datatype": "BYTES", "data": ["the cat"]},
            {"name": "text_pair", "shape": [len(pairs)], "datatype": "BYTES", "data": pairs}]})

    scores = {o["name"]: o for o in ok(infer(["a mat"]))["outputs"]}["scores"]["data"]
    assert scores == pytest.approx([relevance("the cat", "a mat")], abs=1e-5)
    status, reason = code(infer(["a", "b"]))
    assert (status, reason) == (400, "invalid_tensor")
    body = json.loads(infer(["a", "b"]).body)
    assert "as many elements" in body["error"]  # the protocol's error shape on /v2


@pytest.mark.parametrize(
    ("tensor", "reason"),
    [
        ({"name": "text", "shape": [1], "datatype": "BYTES", "data": [""]}, "invalid_tensor"),
        ({"name": "text", "shape": [0], "datatype": "BYTES", "data": []}, "invalid_tensor"),
        ({"name": "text", "shape": [1], "datatype": "BYTES", "data": [3]}, "invalid_tensor"),
        ({"name": "text", "shape": [1], "datatype": "INT64", "data": [3]}, "invalid_tensor"),
        ({"name": "text", "shape": [5], "datatype": "BYTES", "data": ["a"] * 5}, "too_many_inputs"),
    ],
)
def test_v2_bad_text_tensors(classifier: Router, tensor: dict[str, Any], reason: str) -> None:
    assert code(post(classifier, "/v2/models/tiny-classifier/infer", {"inputs": [tensor]})) == (400, reason)


def test_invocations_takes_each_route_shape(classifier: Router, reranker: Router) -> None:
    classified = ok(post(classifier, "/invocations", {"input": ["a cat"]}))
    assert classified["data"][0]["label"] in tiny_models.LABELS
    ranked = ok(post(reranker, "/invocations", {"query": "the cat", "documents": ["a mat", "dog"]}))
    assert sorted(r["index"] for r in ranked["results"]) == [0, 1]
    v2 = ok(post(classifier, "/invocations", {"inputs": [
        {"name": "text", "shape": [1], "datatype": "BYTES", "data": ["a cat"]}]}))
    assert {o["name"] for o in v2["outputs"]} == {"scores", "label"}
    assert code(post(classifier, "/invocations", {"nothing": 1})) == (400, "invalid_request")


def test_metadata_describes_the_text_tensors(reranker: Router) -> None:
    response = reranker.dispatch(HttpRequest("GET", "/v2/models/tiny-reranker"))
    metadata = ok(response)
    assert [(t["name"], t["datatype"], t["shape"]) for t in metadata["inputs"]] == [
        ("text", "BYTES", [-1]), ("text_pair", "BYTES", [-1])]
    assert [(t["name"], t["datatype"], t["shape"]) for t in metadata["outputs"]] == [
        ("scores", "FP32", [-1, 1]), ("label", "BYTES", [-1])]


def test_multi_label_models_score_each_label_alone(tmp_path: Path, make_runtime: Callable[..., Runtime]) -> None:
    tiny_models.write_classification_model(tmp_path / "multi", name="multi", activation="sigmoid")
    router = make_runtime(tmp_path / "multi").router
    row = ok(post(router, "/v1/classify", {"input": "a red cat"}))["data"][0]
    want = 1 / (1 + np.exp(-tiny_models.expected_logits("a red cat", 3)))
    got = {item["label"]: item["score"] for item in row["labels"]}
    np.testing.assert_allclose([got[label] for label in tiny_models.LABELS], want, atol=1e-5)
