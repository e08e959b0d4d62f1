"""The data plane: decode a payload, check it against the model, run the task, encode the answer.

Bytes in, bytes out, no HTTP: the protocol layer (protocol.py) routes requests here and turns the
errors raised here into status codes. Every check that can fail on client input raises a subclass of
InvalidRequest naming the field, so that bad input never reaches the model.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec
import numpy as np

from functions.inference import schemas
from functions.inference.dtypes import NUMPY_BY_OIP, OIP_BY_NUMPY
from functions.inference.errors import (
    InvalidJSON,
    InvalidRequest,
    InvalidTensor,
    ModelNotFound,
    ResponseTooLarge,
    TooManyInputs,
)
from functions.inference.manifest import Manifest, TensorSpec
from functions.inference.settings import Settings
from functions.inference.tasks import Task
from functions.inference.tasks.embedding import Embedder

JSON = "application/json"
T = TypeVar("T")
ENCODER = msgspec.json.Encoder()


class Reply(msgspec.Struct, frozen=True):
    body: bytes
    status: int = 200
    headers: Mapping[str, str] = msgspec.field(default_factory=dict)


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
    def __init__(self, manifest: Manifest, task: Task, settings: Settings, embedder: Embedder | None = None):
        self.manifest = manifest
        self.task = task
        self.settings = settings
        self.embedder = embedder
        self._names = frozenset(manifest.names())
        self._inputs = {spec.name: spec for spec in task.inputs}
        self._outputs = {spec.name: spec for spec in task.outputs}

    # -- OpenAI ---------------------------------------------------------------------------------

    def embeddings(self, body: bytes) -> Reply:
        return self._embeddings(decode(body, schemas.EmbeddingsRequest))

    def _embeddings(self, request: schemas.EmbeddingsRequest) -> Reply:
        if self.embedder is None:
            raise InvalidRequest(
                f"model {self.manifest.name!r} is a {self.manifest.task} model, not a text-embedding model: "
                f"use POST /v2/models/{self.manifest.name}/infer",
                code="unsupported_task",
            )
        self._check_model(request.model)
        texts = self._texts(request.input)
        dimensions = self.manifest.text.dimensions if self.manifest.text else 0
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
                base64.b64encode(row.astype("<f4", copy=False).tobytes()).decode() for row in result.vectors
            ]
        else:
            values = result.vectors.tolist()
        tokens = sum(result.tokens)
        response = schemas.EmbeddingsResponse(
            data=[schemas.Embedding(index=i, embedding=v) for i, v in enumerate(values)],
            model=request.model,
            usage=schemas.Usage(prompt_tokens=tokens, total_tokens=tokens),
        )
        return self._reply(response, headers={"x-preheat-cache": result.served_by})

    def _texts(self, value: str | list[str | int | list[int]]) -> list[str]:
        texts = [value] if isinstance(value, str) else value
        if not texts:
            raise InvalidRequest("'input' must not be empty: send a string or a list of strings")
        if len(texts) > self.settings.max_inputs:
            raise TooManyInputs(
                f"'input' has {len(texts)} items, over this deployment's limit of {self.settings.max_inputs}: "
                "split the request (the limit is PREHEAT_MAX_INPUTS)"
            )
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

    def models(self) -> Reply:
        return self._reply(
            schemas.ModelList(data=[schemas.ModelCard(id=name) for name in self.manifest.names()])
        )

    # -- Open Inference Protocol v2 -------------------------------------------------------------

    def server_metadata(self) -> Reply:
        return self._reply(
            schemas.ServerMetadata(
                name="preheat", version=self.manifest.tools.get("preheat", "0"), extensions=[]
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
                inputs=[_metadata(spec) for spec in self.task.inputs],
                outputs=[_metadata(spec) for spec in self.task.outputs],
            )
        )

    def infer(self, name: str, body: bytes, version: str | None = None) -> Reply:
        self._check_model(name, version)
        return self._infer(decode(body, schemas.InferenceRequest))

    def _infer(self, request: schemas.InferenceRequest) -> Reply:
        feeds: dict[str, np.ndarray] = {}
        for tensor in request.inputs:
            if tensor.name in feeds:
                raise InvalidTensor(f"input {tensor.name!r} is given twice")
            feeds[tensor.name] = self._tensor(tensor)
        missing = [name for name in self._inputs if name not in feeds]
        if missing:
            raise InvalidTensor(f"missing input tensor(s): {', '.join(missing)}")
        wanted = [o.name for o in request.outputs] if request.outputs else None
        for name in wanted or ():
            if name not in self._outputs:
                raise InvalidTensor(f"unknown output {name!r}: this model returns {', '.join(self._outputs)}")
        if self.embedder is not None:
            texts = [str(t) for t in feeds["text"].tolist()]
            if not texts:
                raise InvalidTensor("input 'text' is empty")
            if len(texts) > self.settings.max_inputs:
                raise TooManyInputs(
                    f"input 'text' has {len(texts)} items, over the limit of {self.settings.max_inputs}"
                )
            embedded = self.embedder.embed(texts)
            results = {"embedding": embedded.vectors}
            headers = {"x-preheat-cache": embedded.served_by}
        else:
            results = self.task.infer(feeds, wanted)
            headers = {}
        outputs = [_output(name, results[name]) for name in (wanted or list(results))]
        return self._reply(
            schemas.InferenceResponse(
                model_name=self.manifest.name,
                model_version=self.manifest.version,
                id=request.id,
                outputs=outputs,
            ),
            headers=headers,
        )

    def _tensor(self, tensor: schemas.RequestInput) -> np.ndarray:
        spec = self._inputs.get(tensor.name)
        if spec is None:
            raise InvalidTensor(f"unknown input {tensor.name!r}: this model takes {', '.join(self._inputs)}")
        expected = OIP_BY_NUMPY.get(spec.dtype, spec.dtype)
        if tensor.datatype != expected:
            if tensor.datatype not in NUMPY_BY_OIP:
                raise InvalidTensor(f"input {tensor.name!r}: unknown datatype {tensor.datatype!r}")
            raise InvalidTensor(f"input {tensor.name!r} must be {expected}, got {tensor.datatype}")
        if any(d < 0 for d in tensor.shape):
            raise InvalidTensor(f"input {tensor.name!r}: shape {tensor.shape} has a negative dimension")
        if len(tensor.shape) != len(spec.shape):
            raise InvalidTensor(
                f"input {tensor.name!r} must have {len(spec.shape)} dimensions, got shape {tensor.shape}"
            )
        for axis, (want, got) in enumerate(zip(spec.shape, tensor.shape, strict=True)):
            if isinstance(want, int) and want >= 0 and want != got:
                raise InvalidTensor(f"input {tensor.name!r} axis {axis} must be {want}, got {got}")
        count = math.prod(tensor.shape)
        array = _array(tensor.name, tensor.data, spec.dtype)
        if array.size != count:
            raise InvalidTensor(
                f"input {tensor.name!r}: shape {tensor.shape} holds {count} elements, 'data' has {array.size}"
            )
        return array.reshape(tensor.shape)

    # -- SageMaker ------------------------------------------------------------------------------

    def invocations(self, body: bytes) -> Reply:
        """Either protocol's request, told apart by its keys, answered in the same protocol."""
        payload = decode(body, dict[str, Any])
        try:
            if "input" in payload:
                payload.setdefault("model", self.manifest.name)
                return self._embeddings(msgspec.convert(payload, schemas.EmbeddingsRequest))
            if "inputs" in payload:
                return self._infer(msgspec.convert(payload, schemas.InferenceRequest))
        except msgspec.ValidationError as exc:
            raise InvalidRequest(f"invalid request body: {exc}") from None
        raise InvalidRequest(
            "send an OpenAI embeddings request {'input': ...} or an Open Inference Protocol request "
            "{'inputs': [...]}"
        )

    # -- helpers --------------------------------------------------------------------------------

    def _check_model(self, name: str, version: str | None = None) -> None:
        if name not in self._names:
            raise ModelNotFound(
                f"model {name!r} is not served here; this endpoint serves {', '.join(sorted(self._names))}"
            )
        if version is not None and version != self.manifest.version:
            raise ModelNotFound(
                f"model {name!r} has no version {version!r}; it serves version {self.manifest.version!r}"
            )

    def _reply(self, value: Any, headers: Mapping[str, str] | None = None) -> Reply:
        body = ENCODER.encode(value)
        if len(body) > self.settings.max_response_bytes:
            raise ResponseTooLarge(
                f"the response would be {len(body)} bytes, over the limit of {self.settings.max_response_bytes} "
                "(Lambda's 6 MB): send fewer inputs per request, or use encoding_format=base64"
            )
        return Reply(body=body, headers=headers or {})


_KINDS = {"b": "bool", "i": "integer", "u": "integer", "f": "number"}


def _array(name: str, data: list[Any], dtype: str) -> np.ndarray:
    """JSON values to a flat array of `dtype`, refusing anything numpy would silently coerce."""
    if dtype == "bytes":
        flat = _flatten(name, data)
        if not all(isinstance(v, str) for v in flat):
            raise InvalidTensor(f"input {name!r} is BYTES: every element must be a string")
        return np.array(flat, dtype=object)
    try:
        raw = np.asarray(data)
    except ValueError:
        raise InvalidTensor(
            f"input {name!r}: 'data' is ragged; send a flat list or an evenly nested one"
        ) from None
    target = np.dtype(dtype)
    if raw.size == 0:
        return raw.astype(target)
    if raw.dtype.kind not in _KINDS:
        raise InvalidTensor(
            f"input {name!r}: 'data' must hold only {_KINDS.get(target.kind, target.name)} values"
        )
    if target.kind in "iu":
        if raw.dtype.kind == "f":
            raise InvalidTensor(f"input {name!r} is {target.name}: 'data' holds fractional numbers")
        info = np.iinfo(target)
        if raw.min() < info.min or raw.max() > info.max:
            raise InvalidTensor(f"input {name!r}: a value is out of range for {target.name}")
    elif target.kind == "b" and raw.dtype.kind != "b":
        raise InvalidTensor(f"input {name!r} is BOOL: 'data' must hold true/false")
    with np.errstate(over="ignore"):  # an overflow becomes inf, refused just below
        array = raw.astype(target)
    if target.kind == "f" and not np.isfinite(array).all():
        raise InvalidTensor(f"input {name!r}: a value is not finite in {target.name}")
    return array.ravel()


def _flatten(name: str, data: list[Any]) -> list[Any]:
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


def _metadata(spec: TensorSpec) -> schemas.MetadataTensor:
    return schemas.MetadataTensor(
        name=spec.name,
        datatype=OIP_BY_NUMPY.get(spec.dtype, spec.dtype),
        shape=[d if isinstance(d, int) else -1 for d in spec.shape],
    )


def _output(name: str, array: np.ndarray) -> schemas.ResponseOutput:
    if array.dtype.kind in "OSU":
        data = [v.decode() if isinstance(v, bytes) else str(v) for v in array.ravel().tolist()]
        datatype = "BYTES"
    else:
        data = array.ravel().tolist()
        datatype = OIP_BY_NUMPY.get(array.dtype.name, array.dtype.name.upper())
    return schemas.ResponseOutput(name=name, shape=list(array.shape), datatype=datatype, data=data)
