"""The data plane: decode a payload, check it against the model, run the task, encode the answer.

Routes: OpenAI embeddings (tasks that embed), classify and rerank (tasks that classify; rerank for
pair models with one score), the Open Inference Protocol v2 (every task, JSON or binary tensors),
and SageMaker's /invocations (any of these request shapes).

Bytes in, bytes out, no HTTP: the protocol layer (protocol.py) routes requests here and turns the
errors raised here into status codes. Every check that can fail on client input raises a subclass of
InvalidRequest naming the field, so that bad input never reaches the model.
"""

from __future__ import annotations

import base64
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import msgspec
import numpy as np

from functions.inference import binary, schemas, tensors
from functions.inference.dtypes import NUMPY_BY_OIP, OIP_BY_NUMPY
from functions.inference.errors import (
    InvalidJSON,
    InvalidRequest,
    InvalidTensor,
    ModelNotFound,
    ResponseTooLarge,
    TooManyInputs,
)
from functions.inference.manifest import Manifest
from functions.inference.model import check_shape
from functions.inference.settings import Settings
from functions.inference.tasks import Classifies, Embeds, Task
from functions.inference.tasks.text import Item

JSON = "application/json"
T = TypeVar("T")
ENCODER = msgspec.json.Encoder()


class Reply(msgspec.Struct, frozen=True):
    body: bytes
    status: int = 200
    headers: Mapping[str, str] = msgspec.field(default_factory=dict)
    cache: str | None = None  # which cache level answered, when the task has a cache


def decode(body: bytes, kind: type[T]) -> T:
    """Parse and validate in one pass; every failure is a 400 naming the JSON path."""
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"invalid request body: {exc}") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise InvalidJSON(f"the body is not valid UTF-8 JSON: {exc}") from None
    except RecursionError:
        raise InvalidJSON("the body is nested too deeply to parse") from None


class DataPlane:
    def __init__(self, manifest: Manifest, task: Task, settings: Settings):
        self.manifest = manifest
        self.task = task
        self.settings = settings
        # What the task can serve besides v2, decided once at init.
        self.embedder: Embeds | None = task if isinstance(task, Embeds) else None
        self.classifier: Classifies | None = task if isinstance(task, Classifies) else None
        self._names = frozenset(manifest.names())
        self._inputs = {spec.name: spec for spec in task.inputs}
        self._outputs = {spec.name: spec for spec in task.outputs}

    # -- OpenAI ---------------------------------------------------------------------------------

    def embeddings(self, body: bytes) -> Reply:
        return self._embeddings(decode(body, schemas.EmbeddingsRequest))

    def _embeddings(self, request: schemas.EmbeddingsRequest) -> Reply:
        if self.embedder is None:
            raise self._unsupported("/v1/embeddings")
        self._check_model(request.model)
        texts = self._texts(request.input)
        dimensions = self.embedder.dimensions
        if request.dimensions is not None and request.dimensions != dimensions:
            raise InvalidRequest(
                f"this model returns {dimensions} dimensions and cannot shorten them: omit 'dimensions' "
                f"or set it to {dimensions}",
                code="unsupported_dimensions",
            )
        result = self.embedder.embed(texts)
        if request.encoding_format == "base64":
            # float32 little-endian, as OpenAI encodes it; clients decode with numpy.frombuffer.
            values: list[list[float] | str] = [
                base64.b64encode(row.astype("<f4", copy=False).tobytes()).decode() for row in result.values
            ]
        else:
            values = result.values.tolist()
        tokens = sum(result.tokens)
        response = schemas.EmbeddingsResponse(
            data=[schemas.Embedding(index=i, embedding=v) for i, v in enumerate(values)],
            model=request.model,
            usage=schemas.Usage(prompt_tokens=tokens, total_tokens=tokens),
        )
        return self._reply(response, cache=result.served_by)

    def _texts(self, value: str | list[str | int | list[int]]) -> list[str]:
        texts = [value] if isinstance(value, str) else value
        self._check_count(texts, "input")
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise InvalidRequest(
                    f"input[{i}] is a token-id array: this model has its own tokenizer, so send text "
                    "(LangChain: set check_embedding_ctx_length=False)",
                    code="unsupported_input",
                )
            if not text:
                raise InvalidRequest(f"input[{i}] is an empty string: every input needs text")
        return texts  # type: ignore[return-value]  # checked above: all str

    def _check_count(self, items: Sequence[object], field: str) -> None:
        if not items:
            raise InvalidRequest(f"'{field}' must not be empty: send a string or a list of strings")
        if len(items) > self.settings.max_inputs:
            raise TooManyInputs(
                f"'{field}' has {len(items)} items, over this deployment's limit of {self.settings.max_inputs}: "
                "split the request (the limit is PREHEAT_MAX_INPUTS)"
            )

    def models(self) -> Reply:
        return self._reply(
            schemas.ModelList(data=[schemas.ModelCard(id=name) for name in self.manifest.names()])
        )

    # -- Classification and reranking -----------------------------------------------------------

    def classify(self, body: bytes) -> Reply:
        return self._classify(decode(body, schemas.ClassifyRequest))

    def _classify(self, request: schemas.ClassifyRequest) -> Reply:
        classifier = self.classifier
        if classifier is None:
            raise self._unsupported("/v1/classify")
        if request.model is not None:
            self._check_model(request.model)
        raw = [request.input] if isinstance(request.input, str) else request.input
        self._check_count(raw, "input")
        items = [self._item(i, value, classifier.pairs) for i, value in enumerate(raw)]
        labels = classifier.labels
        top_k = len(labels) if request.top_k is None else request.top_k
        if top_k < 1:
            raise InvalidRequest(f"'top_k' must be at least 1, got {top_k}")
        result = classifier.classify(items)
        order = np.argsort(-result.values, axis=1, kind="stable")[:, :top_k]
        data = []
        for i, (row, best) in enumerate(zip(result.values.tolist(), order.tolist(), strict=True)):
            ranked = [schemas.LabelScore(label=labels[j], score=row[j]) for j in best]
            data.append(
                schemas.Classification(index=i, label=ranked[0].label, score=ranked[0].score, labels=ranked)
            )
        tokens = sum(result.tokens)
        return self._reply(
            schemas.ClassifyResponse(
                data=data,
                model=request.model or self.manifest.name,
                usage=schemas.Usage(prompt_tokens=tokens, total_tokens=tokens),
            ),
            cache=result.served_by,
        )

    def _item(self, i: int, value: str | list[str], pairs: bool) -> Item:
        if pairs:
            if isinstance(value, str) or len(value) != 2:
                raise InvalidRequest(
                    f"input[{i}]: this model classifies pairs of texts: send each input as [text, text_pair]",
                    code="unsupported_input",
                )
            item: Item = (value[0], value[1])
        elif not isinstance(value, str):
            raise InvalidRequest(
                f"input[{i}]: this model classifies single texts: send a string, not a list",
                code="unsupported_input",
            )
        else:
            item = value
        for text in (item,) if isinstance(item, str) else item:
            if not text:
                raise InvalidRequest(f"input[{i}] holds an empty string: every input needs text")
        return item

    def rerank(self, body: bytes) -> Reply:
        return self._rerank(decode(body, schemas.RerankRequest))

    def _rerank(self, request: schemas.RerankRequest) -> Reply:
        classifier = self.classifier
        if classifier is None or not classifier.pairs or len(classifier.labels) != 1:
            raise self._unsupported("/v1/rerank")
        if request.model is not None:
            self._check_model(request.model)
        if request.documents is not None and request.texts is not None:
            raise InvalidRequest("send 'documents' or 'texts' (its text-embeddings-inference name), not both")
        given = request.documents if request.documents is not None else request.texts
        if given is None:
            raise InvalidRequest("'documents' is missing: send the texts to rank against 'query'")
        documents = [d if isinstance(d, str) else d.text for d in given]
        self._check_count(documents, "documents")
        if not request.query:
            raise InvalidRequest("'query' is an empty string: send the text to rank documents against")
        for i, text in enumerate(documents):
            if not text:
                raise InvalidRequest(f"documents[{i}] is an empty string: every document needs text")
        top_n = len(documents) if request.top_n is None else request.top_n
        if top_n < 1:
            raise InvalidRequest(f"'top_n' must be at least 1, got {top_n}")
        result = classifier.classify([(request.query, text) for text in documents])
        scores = result.values[:, 0]
        order = np.argsort(-scores, kind="stable")[:top_n].tolist()
        with_text = request.return_documents or request.return_text
        results = [
            schemas.RerankResult(
                index=i,
                relevance_score=float(scores[i]),
                document=schemas.RerankDocument(text=documents[i]) if with_text else None,
            )
            for i in order
        ]
        tokens = sum(result.tokens)
        return self._reply(
            schemas.RerankResponse(
                id=os.urandom(16).hex(),
                model=request.model or self.manifest.name,
                results=results,
                usage=schemas.Usage(prompt_tokens=tokens, total_tokens=tokens),
            ),
            cache=result.served_by,
        )

    # -- Open Inference Protocol v2 -------------------------------------------------------------

    def server_metadata(self) -> Reply:
        return self._reply(
            schemas.ServerMetadata(
                name="preheat", version=self.manifest.tools.get("preheat", "0"), extensions=["binary_tensor_data"]
            )
        )

    def live(self) -> Reply:
        return self._reply(schemas.Health(live=True))

    def ready(self) -> Reply:
        # A DataPlane exists only once the model has loaded and answered its warm-up inference.
        return self._reply(schemas.Health(ready=True))

    def model_ready(self, name: str, version: str | None = None) -> Reply:
        self._check_model(name, version)
        return self._reply(schemas.Health(ready=True))

    def model_metadata(self, name: str, version: str | None = None) -> Reply:
        self._check_model(name, version)
        return self._reply(
            schemas.ModelMetadata(
                name=self.manifest.name,
                versions=[self.manifest.version],
                platform="onnxruntime_onnx",
                inputs=[tensors.metadata(spec) for spec in self.task.inputs],
                outputs=[tensors.metadata(spec) for spec in self.task.outputs],
            )
        )

    def infer(
        self, name: str, body: bytes, version: str | None = None, headers: Mapping[str, str] | None = None
    ) -> Reply:
        self._check_model(name, version)
        header, data = binary.split(body, headers or {})
        return self._infer(decode(header, schemas.InferenceRequest), binary.Reader(data) if data is not None else None)

    def _infer(self, request: schemas.InferenceRequest, data: binary.Reader | None = None) -> Reply:
        feeds: dict[str, np.ndarray] = {}
        for tensor in request.inputs:
            if tensor.name in feeds:
                raise InvalidTensor(f"input {tensor.name!r} is given twice")
            feeds[tensor.name] = self._tensor(tensor, data)
        if data is not None:
            data.finish()
        missing = [name for name in self._inputs if name not in feeds]
        if missing:
            raise InvalidTensor(f"missing input tensor(s): {', '.join(missing)}")
        wanted = [o.name for o in request.outputs] if request.outputs else None
        for name in wanted or ():
            if name not in self._outputs:
                raise InvalidTensor(f"unknown output {name!r}: this model returns {', '.join(self._outputs)}")
        result = self.task.infer(feeds, wanted)
        names = wanted or list(result.outputs)
        as_binary = tensors.binary_outputs(request, names)
        outputs = [tensors.output(name, result.outputs[name], name in as_binary) for name in names]
        response = schemas.InferenceResponse(
            model_name=self.manifest.name,
            model_version=self.manifest.version,
            id=request.id,
            outputs=outputs,
        )
        if not as_binary:
            return self._reply(response, cache=result.cache)
        header = ENCODER.encode(response)
        body = header + b"".join(binary.encode(result.outputs[name]) for name in names if name in as_binary)
        self._check_size(body)
        headers = {"content-type": binary.OCTET_STREAM, binary.HEADER: str(len(header))}
        return Reply(body=body, headers=headers, cache=result.cache)

    def _tensor(self, tensor: schemas.RequestInput, data: binary.Reader | None) -> np.ndarray:
        spec = self._inputs.get(tensor.name)
        if spec is None:
            raise InvalidTensor(f"unknown input {tensor.name!r}: this model takes {', '.join(self._inputs)}")
        expected = OIP_BY_NUMPY.get(spec.dtype, spec.dtype)
        if tensor.datatype != expected:
            if tensor.datatype not in NUMPY_BY_OIP:
                raise InvalidTensor(f"input {tensor.name!r}: unknown datatype {tensor.datatype!r}")
            raise InvalidTensor(f"input {tensor.name!r} must be {expected}, got {tensor.datatype}")
        check_shape(spec, tensor.shape)
        count = math.prod(tensor.shape)
        size = (tensor.parameters or {}).get(binary.SIZE)
        if size is not None:
            if data is None:
                raise InvalidTensor(
                    f"input {tensor.name!r} has parameters.{binary.SIZE} but the request has no binary part: "
                    f"send the {binary.HEADER} header"
                )
            if tensor.data is not None:
                raise InvalidTensor(f"input {tensor.name!r} has both 'data' and parameters.{binary.SIZE}")
            array = binary.decode(tensor.name, data.take(tensor.name, size), spec.dtype, count)
        elif tensor.data is None:
            raise InvalidTensor(f"input {tensor.name!r} has no 'data' (nor parameters.{binary.SIZE})")
        else:
            array = tensors.from_json(tensor.name, tensor.data, spec.dtype)
        if array.size != count:
            raise InvalidTensor(
                f"input {tensor.name!r}: shape {tensor.shape} holds {count} elements, 'data' has {array.size}"
            )
        return array.reshape(tensor.shape)

    # -- SageMaker ------------------------------------------------------------------------------

    def invocations(self, body: bytes) -> Reply:
        """Any protocol's request, told apart by its keys, answered in the same protocol."""
        payload = decode(body, dict[str, Any])
        try:
            if "inputs" in payload:
                return self._infer(msgspec.convert(payload, schemas.InferenceRequest))
            if "query" in payload:
                return self._rerank(msgspec.convert(payload, schemas.RerankRequest))
            if "input" in payload and self.classifier is not None:
                return self._classify(msgspec.convert(payload, schemas.ClassifyRequest))
            if "input" in payload:
                payload.setdefault("model", self.manifest.name)
                return self._embeddings(msgspec.convert(payload, schemas.EmbeddingsRequest))
        except msgspec.ValidationError as exc:
            raise InvalidRequest(f"invalid request body: {exc}") from None
        raise InvalidRequest(
            "send an Open Inference Protocol request {'inputs': [...]}, or "
            + {
                "text-embedding": "an OpenAI embeddings request {'input': ...}",
                "text-classification": "a classify request {'input': ...} or a rerank request {'query': ..., 'documents': [...]}",
            }.get(self.manifest.task, "nothing else: this is a tensor model")
        )

    # -- helpers --------------------------------------------------------------------------------

    def _unsupported(self, route: str) -> InvalidRequest:
        serves = {
            "text-embedding": "POST /v1/embeddings",
            "text-classification": "POST /v1/classify"
            + (", POST /v1/rerank" if self.classifier and self.classifier.pairs and len(self.classifier.labels) == 1 else ""),
        }.get(self.manifest.task, "")
        routes = ", ".join(r for r in (serves, f"POST /v2/models/{self.manifest.name}/infer") if r)
        return InvalidRequest(
            f"model {self.manifest.name!r} is a {self.manifest.task} model and does not serve {route}: use {routes}",
            code="unsupported_task",
        )

    def _check_model(self, name: str, version: str | None = None) -> None:
        if name not in self._names:
            raise ModelNotFound(
                f"model {name!r} is not served here; this endpoint serves {', '.join(sorted(self._names))}"
            )
        if version is not None and version != self.manifest.version:
            raise ModelNotFound(
                f"model {name!r} has no version {version!r}; it serves version {self.manifest.version!r}"
            )

    def _reply(self, value: Any, cache: str | None = None) -> Reply:
        body = ENCODER.encode(value)
        self._check_size(body)
        return Reply(body=body, cache=cache)

    def _check_size(self, body: bytes) -> None:
        if len(body) > self.settings.max_response_bytes:
            raise ResponseTooLarge(
                f"the response would be {len(body)} bytes, over the limit of {self.settings.max_response_bytes} "
                "(Lambda's 6 MB): send fewer inputs per request, or use encoding_format=base64"
            )
