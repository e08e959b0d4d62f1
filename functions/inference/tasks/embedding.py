"""`text-embedding`: text -> tokens -> ONNX -> mean pooling -> L2 norm, one vector per text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import msgspec
import numpy as np

from functions.inference.errors import InputTooLong, InvalidTensor, ModelLoadError
from functions.inference.manifest import TensorSpec, TextSpec
from functions.inference.model import OnnxModel

_FEEDS = ("input_ids", "attention_mask", "token_type_ids")


class Embedder(Protocol):
    """Texts to vectors: the task itself, or a cache in front of it (the data plane's seam)."""

    def embed(self, texts: Sequence[str]) -> Embeddings: ...


class TokenIds(Protocol):
    """Texts to token ids, special tokens added, truncated as configured."""

    def encode(self, texts: Sequence[str]) -> list[list[int]]: ...


class LibraryTokenizer:
    """The `tokenizers` library, for tokenizers the compiled WordPiece tables do not cover."""

    def __init__(self, path: Path, *, max_tokens: int | None) -> None:
        from tokenizers import Tokenizer  # 40-60 ms at init with the JSON: only when needed

        self.tokenizer = Tokenizer.from_file(str(path))
        # The tokenizer.json of many sentence-transformers models pads every input to a fixed length;
        # padding is done per batch, to the longest input, which is several times faster.
        self.tokenizer.no_padding()
        if max_tokens is None:
            self.tokenizer.no_truncation()
        else:
            self.tokenizer.enable_truncation(max_length=max_tokens)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(list(texts))]


def load_tokenizer(model_dir: Path, spec: TextSpec, *, truncate: bool) -> TokenIds:
    """The compiled WordPiece tables when the manifest names them, else the library."""
    from functions.inference.tasks.wordpiece import WordPiece

    limit = spec.max_tokens if truncate else None

    def library() -> LibraryTokenizer:
        return LibraryTokenizer(model_dir / spec.tokenizer, max_tokens=limit)

    try:
        if spec.wordpiece is not None:
            return WordPiece.load(model_dir / spec.wordpiece, library, max_tokens=limit)
        return library()
    except Exception as exc:
        name = spec.wordpiece or spec.tokenizer
        raise ModelLoadError(f"could not load tokenizer {name}: {exc}") from exc


class Embeddings(msgspec.Struct, frozen=True):
    vectors: np.ndarray  # [n, dimensions] float32, rows in request order
    tokens: tuple[int, ...]  # tokens seen by the model per text, after truncation
    served_by: str = "miss"  # which cache level answered; "miss" when the model ran


class TextEmbedder:
    name = "text-embedding"

    def __init__(
        self, model: OnnxModel, tokenizer: TokenIds, spec: TextSpec, *, batch_size: int, truncate: bool
    ):
        unknown = [s.name for s in model.inputs if s.name not in _FEEDS]
        if unknown:
            raise ModelLoadError(
                f"text-embedding models take {', '.join(_FEEDS)}; this one also wants {unknown}"
            )
        if spec.pooling not in ("mean", "cls"):
            raise ModelLoadError(f"manifest text.pooling {spec.pooling!r} is not 'mean' or 'cls'")
        self.model = model
        self.spec = spec
        self.batch_size = batch_size
        self.truncate = truncate
        self._feeds = tuple(s.name for s in model.inputs)
        self._output = [spec.output]
        self.tokenizer = tokenizer
        self.inputs: tuple[TensorSpec, ...] = (TensorSpec("text", "bytes", ("batch",)),)
        self.outputs: tuple[TensorSpec, ...] = (
            TensorSpec("embedding", "float32", ("batch", spec.dimensions)),
        )

    @classmethod
    def load(
        cls, model: OnnxModel, model_dir: Path, spec: TextSpec, *, batch_size: int, truncate: bool
    ) -> TextEmbedder:
        tokenizer = load_tokenizer(model_dir, spec, truncate=truncate)
        return cls(model, tokenizer, spec, batch_size=batch_size, truncate=truncate)

    def embed(self, texts: Sequence[str]) -> Embeddings:
        encodings = self.tokenizer.encode(texts)
        lengths = [len(ids) for ids in encodings]
        if not self.truncate:
            for i, n in enumerate(lengths):
                if n > self.spec.max_tokens:
                    raise InputTooLong(
                        f"input {i} is {n} tokens, over this model's {self.spec.max_tokens}: "
                        "shorten it or deploy with PREHEAT_TRUNCATE=true"
                    )
        if len(encodings) <= self.batch_size:  # the common case: one run, rows already in order
            vectors = self._run(encodings, lengths)
        else:
            vectors = np.empty((len(encodings), self.spec.dimensions), dtype=np.float32)
            # Similar lengths share a batch, so little compute goes to padding.
            order = sorted(range(len(lengths)), key=lengths.__getitem__)
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                vectors[rows] = self._run([encodings[i] for i in rows], [lengths[i] for i in rows])
        return Embeddings(vectors=vectors, tokens=tuple(lengths))

    def _run(self, ids_per_text: list[list[int]], lengths: list[int]) -> np.ndarray:
        width = max(lengths)
        ids = np.zeros((len(lengths), width), dtype=np.int64)
        mask = np.zeros((len(lengths), width), dtype=np.int64)
        for row, (token_ids, n) in enumerate(zip(ids_per_text, lengths, strict=True)):
            ids[row, :n] = token_ids
            mask[row, :n] = 1
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        # These tensors are built right here with the declared dtypes: no need to re-check them.
        hidden = self.model.run({k: feeds[k] for k in self._feeds}, self._output, checked=False)[
            self.spec.output
        ]
        return self._pool(hidden, mask)

    def _pool(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self.spec.pooling == "cls":
            pooled = hidden[:, 0, :]
        else:
            weights = mask[:, :, None].astype(hidden.dtype)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        if self.spec.normalize:
            pooled = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled.astype(np.float32, copy=False)

    def infer(
        self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        if "text" not in feeds:
            raise InvalidTensor("this model takes one input tensor 'text' (BYTES)")
        return {"embedding": self.embed([str(v) for v in feeds["text"].ravel().tolist()]).vectors}

    def warmup(self) -> None:
        self.embed(["preheat warm-up: one short sentence through every layer"])
