"""What every text task shares: items (texts, or pairs of texts) -> token ids -> the graph's feeds,
in batches of similar length -> one float row per item, computed by the task's head.

The manifest's `text` section says which graph input takes which role (`ids`, `mask`, `type_ids`),
the pad id and the token limit, so the same code feeds BERT, RoBERTa, XLM-R, MPNet or DistilBERT.
The cache (functions/cache) wraps a `RowSource`, so repeats of any text task skip the model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import msgspec
import numpy as np

from functions.cache import KeySpace
from functions.inference.errors import InputTooLong, InvalidTensor, ModelLoadError, TooManyInputs
from functions.inference.manifest import Manifest, TensorSpec, TextSpec
from functions.inference.model import OnnxModel
from functions.inference.tasks import TaskContext
from functions.rows import Item as Item
from functions.rows import Rows as Rows
from functions.rows import RowSource as RowSource

# The warm-up inference's input: the shortest that goes through the tokenizer's word path and every
# layer of the graph. What a first run pays once (allocations, kernel set-up) does not grow with the
# input; the rest of a longer warm-up is plain compute on the cold path (5.1 -> 2.9 ms for MiniLM).
WARMUP_TEXT = "a"


class TokenIds(Protocol):
    """Texts to token ids, special tokens added, truncated as configured."""

    def encode(self, texts: Sequence[str]) -> list[list[int]]: ...


class PairIds(Protocol):
    """Pairs of texts to (token ids, segment ids), with the tokenizer's pair template."""

    def encode_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[list[int], list[int]]]: ...


class LibraryTokenizer:
    """The `tokenizers` library, for tokenizers the compiled WordPiece tables do not cover, and pairs."""

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

    def encode_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
        return [(e.ids, e.type_ids) for e in self.tokenizer.encode_batch(list(pairs))]


def load_tokenizer(model_dir: Path, spec: TextSpec, *, truncate: bool) -> TokenIds:
    """The compiled WordPiece tables when the manifest names them (for a pair model, when they hold
    its pair template), else the library."""
    limit = spec.max_tokens if truncate else None

    def library() -> LibraryTokenizer:
        return LibraryTokenizer(model_dir / spec.tokenizer, max_tokens=limit)

    name = spec.wordpiece or spec.tokenizer
    try:
        if spec.wordpiece is not None:
            from functions.inference.tasks.wordpiece import WordPiece

            tables = WordPiece.load(model_dir / spec.wordpiece, library, max_tokens=limit)
            if not spec.pairs or tables.pairs:
                return tables
            name = spec.tokenizer
        return library()
    except Exception as exc:
        raise ModelLoadError(f"could not load tokenizer {name}: {exc}") from exc


class Head(Protocol):
    """A task's post-processing: the graph output it reads, and how that becomes one row per item."""

    output: str
    width: int

    def __call__(self, output: np.ndarray, mask: np.ndarray) -> np.ndarray: ...


class TextModel:
    """Tokenize, batch by length, run, apply the head: the uncached RowSource of a text task."""

    def __init__(
        self,
        model: OnnxModel,
        tokenizer: TokenIds,
        spec: TextSpec,
        head: Head,
        *,
        batch_size: int,
        truncate: bool,
    ) -> None:
        dtypes = {s.name: s.dtype for s in model.inputs}
        self._roles: tuple[tuple[str, str, np.dtype[np.integer]], ...] = tuple(
            (role, name, np.dtype(dtypes[name])) for role, name in spec.feeds.items()
        )
        for role, name, dtype in self._roles:
            if dtype.kind not in "iu":
                raise ModelLoadError(f"text input {name!r} ({role}) must be an integer tensor, the graph has {dtype}")
        if spec.pairs and not callable(getattr(tokenizer, "encode_pairs", None)):
            raise ModelLoadError("this model takes pairs of texts, but its tokenizer cannot encode pairs")
        self.model = model
        self.tokenizer = tokenizer
        self.spec = spec
        self.head = head
        self.width = head.width
        self.batch_size = batch_size
        self.truncate = truncate
        self._output = [head.output]

    def rows(self, items: Sequence[Item]) -> Rows:
        ids, types = self._encode(items)
        lengths = [len(row) for row in ids]
        if not self.truncate:
            for i, n in enumerate(lengths):
                if n > self.spec.max_tokens:
                    raise InputTooLong(
                        f"input {i} is {n} tokens, over this model's {self.spec.max_tokens}: "
                        "shorten it or deploy with PREHEAT_TRUNCATE=true"
                    )
        if len(ids) <= self.batch_size:  # the common case: one run, rows already in order
            values = self._run(ids, types, lengths)
        else:
            values = np.empty((len(ids), self.width), dtype=np.float32)
            # Similar lengths share a batch, so little compute goes to padding.
            order = sorted(range(len(lengths)), key=lengths.__getitem__)
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                values[rows] = self._run(
                    [ids[i] for i in rows],
                    None if types is None else [types[i] for i in rows],
                    [lengths[i] for i in rows],
                )
        return Rows(values=values, tokens=tuple(lengths))

    def _encode(self, items: Sequence[Item]) -> tuple[list[list[int]], list[list[int]] | None]:
        if not self.spec.pairs:
            return self.tokenizer.encode(items), None  # type: ignore[arg-type]  # str items: checked by callers
        encoded = self.tokenizer.encode_pairs(items)  # type: ignore[attr-defined, arg-type]
        return [ids for ids, _ in encoded], [types for _, types in encoded]

    def _run(
        self, ids_per_item: list[list[int]], types_per_item: list[list[int]] | None, lengths: list[int]
    ) -> np.ndarray:
        width = max(lengths)
        rows = len(lengths)
        ids = np.full((rows, width), self.spec.pad_id, dtype=np.int64)
        mask = np.zeros((rows, width), dtype=np.int64)
        types = np.zeros((rows, width), dtype=np.int64)
        for row, (token_ids, n) in enumerate(zip(ids_per_item, lengths, strict=True)):
            ids[row, :n] = token_ids
            mask[row, :n] = 1
            if types_per_item is not None:
                types[row, :n] = types_per_item[row]
        by_role = {"ids": ids, "mask": mask, "type_ids": types}
        feeds = {name: by_role[role].astype(dtype, copy=False) for role, name, dtype in self._roles}
        # Built right here with the declared dtypes and ranks: no need to re-check them.
        output = self.model.run(feeds, self._output, checked=False)[self.head.output]
        return self.head(output, mask)


def check_items(items: Sequence[Item], *, max_inputs: int, field: str = "input") -> None:
    """The checks every text route makes before the model sees anything; errors name the item."""
    if not items:
        raise InvalidTensor(f"'{field}' is empty: send at least one text")
    if len(items) > max_inputs:
        raise TooManyInputs(
            f"'{field}' has {len(items)} items, over this deployment's limit of {max_inputs}: "
            "split the request (the limit is PREHEAT_MAX_INPUTS)"
        )
    for i, item in enumerate(items):
        for text in (item,) if isinstance(item, str) else item:
            if not text:
                raise InvalidTensor(f"{field}[{i}] is an empty string: every input needs text")


def text_inputs(spec: TextSpec) -> tuple[TensorSpec, ...]:
    """The tensors v2 clients send to a text task: BYTES, one element per text."""
    if spec.pairs:
        return (TensorSpec("text", "bytes", ("batch",)), TensorSpec("text_pair", "bytes", ("batch",)))
    return (TensorSpec("text", "bytes", ("batch",)),)


def items_from_feeds(feeds: Mapping[str, np.ndarray], spec: TextSpec, *, max_inputs: int) -> list[Item]:
    """The v2 BYTES tensors of a text task as items (the data plane has checked names and dtypes)."""
    texts = [_text(v) for v in feeds["text"].ravel().tolist()]
    items: list[Item]
    if spec.pairs:
        pairs = [_text(v) for v in feeds["text_pair"].ravel().tolist()]
        if len(pairs) != len(texts):
            raise InvalidTensor(
                f"inputs 'text' and 'text_pair' must hold as many elements, got {len(texts)} and {len(pairs)}"
            )
        items = list(zip(texts, pairs, strict=True))
    else:
        items = list(texts)
    check_items(items, max_inputs=max_inputs, field="text")
    return items


def _text(value: object) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidTensor("a BYTES element of a text input is not valid UTF-8") from None
    return str(value)


Wrap = Callable[[RowSource], RowSource]  # a cache's wrapper, or None when no cache is configured


def open_text_model(context: TaskContext, head: Head) -> tuple[TextModel, RowSource]:
    """A text task's model, and what serves its rows: the cache in front of it when one is configured."""
    text = context.manifest.text
    assert text is not None  # manifests.load checks that text tasks have the section
    tokenizer = load_tokenizer(context.model_dir, text, truncate=context.truncate)
    model = TextModel(
        context.model, tokenizer, text, head, batch_size=context.batch_size, truncate=context.truncate
    )
    return model, context.wrap(model) if context.wrap is not None else model


def warm_up(model: TextModel) -> None:
    """One inference past any cache, so the first request pays no lazy set-up."""
    item: Item = (WARMUP_TEXT, WARMUP_TEXT) if model.spec.pairs else WARMUP_TEXT
    try:
        model.rows([item])
    except InvalidTensor as exc:
        raise ModelLoadError(f"the warm-up inference failed: {exc.message}") from exc


def text_keyspace(manifest: Manifest, *, truncate: bool) -> KeySpace:
    """model_id covers the files; the manifest's text and task settings (pooling, labels, ...) can
    change without any file changing, so they are part of the key too."""
    variant: dict[str, Any] = {"task": manifest.task, "truncate": truncate}
    for section in ("text", "embedding", "classification"):
        value = getattr(manifest, section)
        if value is not None:
            variant[section] = msgspec.to_builtins(value)
    return KeySpace(manifest.model_id, variant)
