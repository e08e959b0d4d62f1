"""Request and response bodies of every protocol, as msgspec structs.

One definition gives the decoder (validation with JSON paths in its errors), the encoder, and the
JSON Schema that the OpenAPI spec publishes. msgspec imports in ~10 ms and encodes a 384-float
vector ~20x faster than `json`, which is why it is here and pydantic is not on the request path.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

# -- OpenAI embeddings (POST /v1/embeddings) -----------------------------------------------------


class EmbeddingsRequest(msgspec.Struct, kw_only=True):
    """OpenAI's embeddings request. Token-id arrays parse, then get a clear 400: ids of another
    tokenizer mean nothing to this model."""

    input: str | list[str | int | list[int]]
    model: str
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None
    user: str | None = None


class Embedding(msgspec.Struct, kw_only=True):
    index: int
    embedding: list[float] | str
    object: str = "embedding"


class Usage(msgspec.Struct, kw_only=True):
    prompt_tokens: int
    total_tokens: int


class EmbeddingsResponse(msgspec.Struct, kw_only=True):
    data: list[Embedding]
    model: str
    usage: Usage
    object: str = "list"


class ModelCard(msgspec.Struct, kw_only=True):
    id: str
    created: int = 0
    owned_by: str = "preheat"
    object: str = "model"


class ModelList(msgspec.Struct, kw_only=True):
    data: list[ModelCard]
    object: str = "list"


# -- Classification (POST /v1/classify) -----------------------------------------------------------


class ClassifyRequest(msgspec.Struct, kw_only=True):
    """Texts to label scores. A pair model takes each input as [text, text_pair]."""

    input: str | list[str | list[str]]
    model: str | None = None
    top_k: int | None = None  # labels returned per input, best first; all when omitted


class LabelScore(msgspec.Struct, kw_only=True):
    label: str
    score: float


class Classification(msgspec.Struct, kw_only=True):
    index: int
    label: str  # the best label
    score: float  # its score
    labels: list[LabelScore]  # every label (or top_k of them), best first
    object: str = "classification"


class ClassifyResponse(msgspec.Struct, kw_only=True):
    data: list[Classification]
    model: str
    usage: Usage
    object: str = "list"


# -- Reranking (POST /v1/rerank: the request Cohere, Jina and text-embeddings-inference share) -----


class RerankDocument(msgspec.Struct, kw_only=True):
    text: str


class RerankRequest(msgspec.Struct, kw_only=True):
    query: str
    documents: list[str | RerankDocument] | None = None
    texts: list[str] | None = None  # text-embeddings-inference's name for `documents`
    model: str | None = None
    top_n: int | None = None
    return_documents: bool = False
    return_text: bool = False  # text-embeddings-inference's name for `return_documents`


class RerankResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    index: int
    relevance_score: float
    document: RerankDocument | None = None


class RerankResponse(msgspec.Struct, kw_only=True):
    id: str
    model: str
    results: list[RerankResult]  # most relevant first
    usage: Usage


# -- Open Inference Protocol v2 (KServe, Triton) --------------------------------------------------


class RequestInput(msgspec.Struct, kw_only=True):
    """`data` is absent when the tensor travels in the binary part (parameters.binary_data_size)."""

    name: str
    shape: list[int]
    datatype: str
    data: list[Any] | None = None
    parameters: dict[str, Any] | None = None


class RequestOutput(msgspec.Struct, kw_only=True):
    name: str
    parameters: dict[str, Any] | None = None


class InferenceRequest(msgspec.Struct, kw_only=True):
    inputs: list[RequestInput]
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[RequestOutput] | None = None


class ResponseOutput(msgspec.Struct, kw_only=True, omit_defaults=True):
    """`data` is absent when the tensor travels in the binary part (parameters.binary_data_size)."""

    name: str
    shape: list[int]
    datatype: str
    data: list[Any] | None = None
    parameters: dict[str, Any] | None = None


class InferenceResponse(msgspec.Struct, kw_only=True, omit_defaults=True):
    model_name: str
    outputs: list[ResponseOutput]
    model_version: str | None = None
    id: str | None = None


class MetadataTensor(msgspec.Struct, kw_only=True):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(msgspec.Struct, kw_only=True):
    name: str
    versions: list[str]
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]


class ServerMetadata(msgspec.Struct, kw_only=True):
    name: str
    version: str
    extensions: list[str]


class Health(msgspec.Struct, kw_only=True):
    live: bool | None = None
    ready: bool | None = None


# -- Errors (every protocol) ----------------------------------------------------------------------


class ErrorDetail(msgspec.Struct, kw_only=True, omit_defaults=True):
    code: str
    message: str
    request_id: str | None = None


class ErrorBody(msgspec.Struct, kw_only=True):
    error: ErrorDetail


class InferenceError(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The Open Inference Protocol's error, `{"error": "<message>"}`, on every /v2 route; the
    machine-readable code rides along (and in the x-preheat-error-code header)."""

    error: str
    code: str | None = None
    request_id: str | None = None


SCHEMA_TYPES: tuple[Any, ...] = (
    EmbeddingsRequest,
    EmbeddingsResponse,
    ClassifyRequest,
    ClassifyResponse,
    RerankRequest,
    RerankResponse,
    ModelList,
    InferenceRequest,
    InferenceResponse,
    ModelMetadata,
    ServerMetadata,
    Health,
    ErrorBody,
    InferenceError,
)
