"""BERT WordPiece tokenization in plain Python, from tables compiled at build time.

Why: loading `tokenizer.json` with the `tokenizers` library costs 40-60 ms of every cold start here
(import, JSON, building a 30,522-entry vocabulary while holding the GIL); this file loads in ~3 ms
and tokenizes a short text faster than a call into the library. It is exact by construction, not by
re-implementation: `layers/wordpiece.py` probes the real library for what its normalizer and
pre-tokenizer do to every code point and writes those tables beside the model, then checks the two
agree on a corpus before the file is kept. Texts the tables cannot answer on their own (characters
whose normalization could reorder combining marks, lone surrogates) go to the real tokenizer,
loaded on first need.

Pipeline, as the library runs it for BERT: special tokens split out of the raw text; each piece
normalized (clean text, CJK padding, accent stripping, lowercasing: one table lookup per character);
split on whitespace and around punctuation; WordPiece greedy longest-match per word; truncation;
[CLS] ... [SEP] around it.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from functions.inference.tasks.text import TokenIds

FORMAT = 2

# Kinds of code point runs, as written by layers/wordpiece.py.
SAME, DROP, SPACE, PAD, MAP, DEFER = range(6)
# Pre-tokenizer classes of a normalized character.
WORD, WHITESPACE, PUNCT = range(3)


class Compiled(msgspec.Struct, frozen=True):
    """The file's contents. Runs are (first code points, kinds) pairs of lists, sorted, from 0."""

    format: int
    vocab: str  # token strings in id order (ids are 0..n-1), joined by newlines: splits in ~1 ms
    unk: int
    prefix: str  # continuing-subword prefix, "##"
    max_chars: int  # longer words become [UNK]
    specials: dict[str, int]  # added tokens matched on the raw text
    before: list[int]  # ids the post-processor puts before the sequence ([CLS])
    after: list[int]  # and after it ([SEP])
    norm_starts: list[int]
    norm_kinds: list[int]
    ascii_map: dict[int, str]  # what a MAP code point below 128 becomes (A-Z), needed at once
    norm_map: msgspec.Raw  # {code point: output} for the other MAP code points, decoded on first use
    split_starts: list[int]
    split_classes: list[int]
    source: dict[str, str]  # tokenizers version and tokenizer.json sha256, for the record
    pair: PairTemplate | None = None  # for pair models: the post-processor's pair template

    def tokens(self) -> list[str]:
        return self.vocab.split("\n")


class PairTemplate(msgspec.Struct, frozen=True):
    """[specials] A [specials] B [specials], each special token with its segment (type) id, as the
    library's pair template ([CLS] A [SEP] B:1 [SEP]:1 for BERT)."""

    before: list[tuple[int, int]]  # (token id, type id)
    middle: list[tuple[int, int]]
    after: list[tuple[int, int]]
    a_type: int
    b_type: int


def longest_first(n1: int, n2: int, budget: int) -> tuple[int, int]:
    """The lengths the library's `longest_first` truncation keeps of a pair: the longer one loses
    tokens until both fit; cut to the same length, the second one (or the longer) keeps the odd one."""
    if n1 + n2 <= budget:
        return n1, n2
    first_longer = n1 > n2
    short = min(n1, n2)
    if short <= budget // 2:
        return (budget - short, short) if first_longer else (short, budget - short)
    low, high = budget // 2, budget - budget // 2
    return (high, low) if first_longer else (low, high)


class Deferred(Exception):
    """This text needs the real tokenizer (raised from inside str.translate)."""


class _Normalizer(dict[int, Any]):
    """str.translate table filled on first sight of each code point: most texts use a few dozen."""

    def __init__(
        self, starts: list[int], kinds: list[int], ascii_map: dict[int, str], mapped: msgspec.Raw
    ) -> None:
        super().__init__()
        self._starts = starts
        self._kinds = kinds
        self._raw_map = mapped
        # The full map has ~14,000 entries (5 ms to decode): only a non-ASCII text needs it.
        self._mapped: dict[int, str] | None = None
        self._ascii_map = ascii_map

    def __missing__(self, cp: int) -> Any:
        kind = self._kinds[bisect.bisect_right(self._starts, cp) - 1]
        if kind == SAME:
            value: Any = cp
        elif kind == DROP:
            value = None
        elif kind == SPACE:
            value = " "
        elif kind == PAD:
            value = f" {chr(cp)} "
        elif kind == MAP and cp < 128:
            value = self._ascii_map[cp]
        elif kind == MAP:
            if self._mapped is None:
                self._mapped = msgspec.msgpack.decode(self._raw_map, type=dict[int, str])
            value = self._mapped[cp]
        else:
            raise Deferred(cp)
        self[cp] = value
        return value


def _char_class(starts: list[int], classes: list[int], wanted: int, limit: int) -> str:
    """A regex character class body for every code point below limit of class `wanted`."""
    parts = []
    for i, (start, cls) in enumerate(zip(starts, classes, strict=True)):
        if cls != wanted or start >= limit:
            continue
        end = min((starts[i + 1] if i + 1 < len(starts) else 0x110000), limit) - 1
        parts.append(
            re.escape(chr(start)) if start == end else f"{re.escape(chr(start))}-{re.escape(chr(end))}"
        )
    return "".join(parts)


def _splitter(starts: list[int], classes: list[int], limit: int) -> Callable[[str], list[str]]:
    """findall for BertPreTokenizer: runs of word characters, and each punctuation mark alone."""
    punct = _char_class(starts, classes, PUNCT, limit)
    space = _char_class(starts, classes, WHITESPACE, limit)
    pattern = f"[^{space}{punct}]+|[{punct}]" if punct else f"[^{space}]+"
    return re.compile(pattern).findall


class WordPiece:
    """encode(texts) -> token ids per text, as `tokenizers` would give them for this tokenizer."""

    def __init__(
        self, compiled: Compiled, fallback: Callable[[], TokenIds], *, max_tokens: int | None
    ) -> None:
        tokens = compiled.tokens()
        self._vocab = dict(zip(tokens, range(len(tokens)), strict=True))
        self._unk = compiled.unk
        self._prefix = compiled.prefix
        self._max_chars = compiled.max_chars
        self._before = list(compiled.before)
        self._after = list(compiled.after)
        self._specials = compiled.specials
        self._special_split = (
            re.compile(
                "(" + "|".join(re.escape(s) for s in sorted(compiled.specials, key=len, reverse=True)) + ")"
            )
            if compiled.specials
            else None
        )
        self._table = _Normalizer(
            compiled.norm_starts, compiled.norm_kinds, compiled.ascii_map, compiled.norm_map
        )
        for cp in range(128):  # ASCII up front; the rest as texts bring it
            self._table[cp]
        self._split_starts = compiled.split_starts
        self._split_classes = compiled.split_classes
        self._split_ascii = _splitter(self._split_starts, self._split_classes, 128)
        self._split_all: Callable[[str], list[str]] | None = None  # compiled on the first non-ASCII text
        self._budget = None if max_tokens is None else max_tokens - len(self._before) - len(self._after)
        self._fallback_factory = fallback  # the library, configured alike: loaded on first need
        self._fallback: TokenIds | None = None
        self._pair = compiled.pair
        self._pair_budget: int | None = None  # tokens the two texts of a pair may keep between them
        if compiled.pair is not None and max_tokens is not None:
            t = compiled.pair
            self._pair_budget = max(0, max_tokens - len(t.before) - len(t.middle) - len(t.after))

    @classmethod
    def load(cls, path: Path, fallback: Callable[[], TokenIds], *, max_tokens: int | None) -> WordPiece:
        compiled = msgspec.msgpack.decode(path.read_bytes(), type=Compiled)
        if compiled.format != FORMAT:
            raise ValueError(
                f"{path.name} is format {compiled.format}, this runtime reads {FORMAT}: rebuild the model "
                "directory with `preheat build`, or drop text.wordpiece from its manifest to use tokenizer.json"
            )
        return cls(compiled, fallback, max_tokens=max_tokens)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.encode_one(text) for text in texts]

    @property
    def pairs(self) -> bool:
        """Whether these tables also encode pairs (the tokenizer has a pair template they describe)."""
        return self._pair is not None

    def encode_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
        return [self.encode_pair(a, b) for a, b in pairs]

    def encode_pair(self, first: str, second: str) -> tuple[list[int], list[int]]:
        """(token ids, type ids) of a pair, truncated longest-first as the library does."""
        template = self._pair
        if template is None:
            raise ValueError("these WordPiece tables have no pair template: encode pairs with the library")
        try:
            a, b = self._ids(first), self._ids(second)
        except Deferred:
            return self._deferred_pair(first, second)
        if self._pair_budget is not None:
            keep_a, keep_b = longest_first(len(a), len(b), self._pair_budget)
            del a[keep_a:], b[keep_b:]
        ids = [t for t, _ in template.before] + a + [t for t, _ in template.middle] + b + [t for t, _ in template.after]
        types = (
            [k for _, k in template.before]
            + [template.a_type] * len(a)
            + [k for _, k in template.middle]
            + [template.b_type] * len(b)
            + [k for _, k in template.after]
        )
        return ids, types

    def encode_one(self, text: str) -> list[int]:
        try:
            ids = self._ids(text)
        except Deferred:
            return self._deferred(text)
        if self._budget is not None and len(ids) > self._budget:
            del ids[self._budget :]
        return self._before + ids + self._after

    def _ids(self, text: str) -> list[int]:
        if self._special_split is None or not any(s in text for s in self._specials):
            return self._piece(text)
        ids: list[int] = []
        for i, part in enumerate(self._special_split.split(text)):
            if i % 2:
                ids.append(self._specials[part])
            elif part:
                ids += self._piece(part)
        return ids

    def _piece(self, text: str) -> list[int]:
        if text.isascii():
            words = self._split_ascii(text.translate(self._table))
        else:
            normalized = text.translate(self._table)
            if self._split_all is None:
                self._split_all = _splitter(self._split_starts, self._split_classes, 0x110000)
            words = self._split_all(normalized)
        vocab = self._vocab
        ids: list[int] = []
        for word in words:
            if len(word) > self._max_chars:
                ids.append(self._unk)
                continue
            found = vocab.get(word)
            if found is not None:
                ids.append(found)
            else:
                ids += self._subwords(word)
        return ids

    def _subwords(self, word: str) -> list[int]:
        """Greedy longest match first, continuations carrying the prefix; any miss: the whole word is [UNK]."""
        vocab, prefix = self._vocab, self._prefix
        out: list[int] = []
        start, n = 0, len(word)
        while start < n:
            end = n
            found = None
            while start < end:
                found = vocab.get(prefix + word[start:end] if start else word[start:end])
                if found is not None:
                    break
                end -= 1
            if found is None:
                return [self._unk]
            out.append(found)
            start = end
        return out

    def _deferred(self, text: str) -> list[int]:
        return self._library().encode([text])[0]

    def _deferred_pair(self, first: str, second: str) -> tuple[list[int], list[int]]:
        library = self._library()
        pairs: list[tuple[list[int], list[int]]] = library.encode_pairs([(first, second)])  # type: ignore[attr-defined]
        return pairs[0]

    def _library(self) -> TokenIds:
        if self._fallback is None:
            self._fallback = self._fallback_factory()
        return self._fallback
