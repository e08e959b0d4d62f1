"""The compiled WordPiece tokenizer gives the `tokenizers` library's ids, text for text."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

from functions.inference.errors import ModelLoadError
from functions.inference.manifest import TextSpec
from functions.inference.tasks import wordpiece as runtime
from functions.inference.tasks.text import LibraryTokenizer, load_tokenizer
from layers import wordpiece
from tests.conftest import DEFAULT_MODEL
from tests.support import tiny_models

MAX_TOKENS = 24


def _library(path: Path, max_tokens: int | None) -> Tokenizer:
    return LibraryTokenizer(path, max_tokens=max_tokens).tokenizer


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A compiled tokenizer next to its tokenizer.json: the tiny test vocabulary (many [UNK]s and
    sub-words), compiled once for the session (~10 s: every code point goes through the library)."""
    folder = tmp_path_factory.mktemp("wordpiece")
    tiny_models.tokenizer().save(str(folder / "tokenizer.json"))
    result = wordpiece.compile_tokenizer(
        folder / "tokenizer.json", folder, max_tokens=MAX_TOKENS, texts=["Hello, World!", "rain"], pairs=True
    )
    assert result.path == folder / wordpiece.FILE_NAME, result.reason
    assert result.checked_texts > 500
    return folder


def _pair(folder: Path, max_tokens: int | None) -> tuple[runtime.WordPiece, Tokenizer]:
    library = LibraryTokenizer(folder / "tokenizer.json", max_tokens=max_tokens)
    fast = runtime.WordPiece.load(folder / wordpiece.FILE_NAME, lambda: library, max_tokens=max_tokens)
    return fast, library.tokenizer


# Text from every Unicode category but surrogates (JSON decoding refuses those before tokenizing),
# with the special tokens and vocabulary words mixed in so that matches happen, not just [UNK]s.
_pieces = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), max_size=12),
    st.sampled_from(["[CLS]", "[SEP]", "[UNK]", "[PAD]", "[MASK]", "[SEP", "##", "...", " "]),
    st.sampled_from(sorted(tiny_models.vocab())),
    st.sampled_from(["Ünïcödé", "ΣΑΣ", "東京", "İstanbul", "ﬁne", "e\u0301\u0327", "\u00a0", "\u3000", "😀"]),
)
_texts = st.lists(_pieces, max_size=30).map("".join)


@settings(max_examples=400, deadline=None)
@given(text=_texts)
def test_ids_match_the_library_on_any_text(tiny: Path, text: str) -> None:
    for limit in (MAX_TOKENS, None):
        fast, library = _pair(tiny, limit)
        assert fast.encode_one(text) == library.encode(text).ids


@settings(max_examples=300, deadline=None)
@given(first=_texts, second=_texts)
def test_pairs_match_the_library_ids_types_and_truncation(tiny: Path, first: str, second: str) -> None:
    """Cross-encoders: the pair template's type ids, and longest-first truncation of either side."""
    for limit in (MAX_TOKENS, 9, None):
        fast, library = _pair(tiny, limit)
        encoding = library.encode(first, second)
        assert fast.encode_pair(first, second) == (encoding.ids, encoding.type_ids)


@pytest.mark.parametrize(("n1", "n2"), [(3, 30), (30, 3), (30, 30), (10, 11), (11, 10), (20, 20), (1, 1)])
def test_longest_first_truncation_cuts_the_longer_side(tiny: Path, n1: int, n2: int) -> None:
    fast, library = _pair(tiny, MAX_TOKENS)
    first, second = " ".join(["cat"] * n1), " ".join(["dog"] * n2)
    ids, types = fast.encode_pair(first, second)
    encoding = library.encode(first, second)
    assert (ids, types) == (encoding.ids, encoding.type_ids) and len(ids) <= MAX_TOKENS


def test_a_pair_model_without_a_pair_template_uses_the_library(tmp_path: Path) -> None:
    tok = tiny_models.tokenizer()
    from tokenizers import processors

    v = tiny_models.vocab()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $B [SEP] $A [SEP]", special_tokens=[("[CLS]", v["[CLS]"]), ("[SEP]", v["[SEP]"])]
    )
    tok.save(str(tmp_path / "tokenizer.json"))
    result = wordpiece.compile_tokenizer(tmp_path / "tokenizer.json", tmp_path, max_tokens=MAX_TOKENS, pairs=True)
    assert result.path is None and "pair template" in result.reason


def test_pair_models_load_the_tables_when_they_hold_the_template(tiny: Path) -> None:
    spec = TextSpec(feeds={"ids": "input_ids"}, wordpiece=wordpiece.FILE_NAME, max_tokens=MAX_TOKENS, pairs=True)
    tokenizer = load_tokenizer(tiny, spec, truncate=True)
    assert isinstance(tokenizer, runtime.WordPiece) and tokenizer.pairs


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \t\n ",
        "foo[SEP]bar [sep] [MASK]x",  # special tokens split out of the raw text, not lowercased
        "rainy rainfall unrainable",  # longest-match sub-words, continuation prefix
        "a" * 101,  # over max_input_chars_per_word: one [UNK]
        "ΣΑΣ",  # lowercased per character, as the library does (no final sigma)
        "café naïve Ἀθῆναι",  # accents stripped after NFD
        "東京 tower",  # CJK characters become words of their own
        "x\x00y\ufffdz\x85w\u200bv",  # control and format characters dropped
        "rain " * 40,  # truncation keeps [CLS] and [SEP]
    ],
)
def test_edge_cases_match_the_library(tiny: Path, text: str) -> None:
    for limit in (MAX_TOKENS, None):
        fast, library = _pair(tiny, limit)
        assert fast.encode_one(text) == library.encode(text).ids


def test_truncation_keeps_the_special_tokens(tiny: Path) -> None:
    fast, _ = _pair(tiny, MAX_TOKENS)
    ids = fast.encode_one("rain " * 100)
    vocab = tiny_models.vocab()
    assert len(ids) == MAX_TOKENS
    assert (ids[0], ids[-1]) == (vocab["[CLS]"], vocab["[SEP]"])
    untruncated, _ = _pair(tiny, None)
    assert len(untruncated.encode_one("rain " * 100)) == 102


def test_texts_the_tables_cannot_answer_go_to_the_library_once(tiny: Path) -> None:
    compiled = msgspec.msgpack.decode((tiny / wordpiece.FILE_NAME).read_bytes(), type=runtime.Compiled)
    deferred = next(
        start
        for start, kind in zip(compiled.norm_starts, compiled.norm_kinds, strict=True)
        if kind == runtime.DEFER
    )
    library = LibraryTokenizer(tiny / "tokenizer.json", max_tokens=MAX_TOKENS)
    made: list[int] = []

    def factory() -> LibraryTokenizer:
        made.append(1)
        return library

    fast = runtime.WordPiece.load(tiny / wordpiece.FILE_NAME, factory, max_tokens=MAX_TOKENS)
    assert fast.encode_one("hello world") and made == []  # plain text never loads the library
    text = f"rain{chr(deferred)} rain"
    assert fast.encode(["x", text, text]) == library.encode(["x", text, text])
    assert made == [1]


def _bpe(folder: Path) -> Path:
    tok = Tokenizer(models.BPE({"a": 0, "b": 1, "[UNK]": 2}, [], unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    path = folder / "tokenizer.json"
    tok.save(str(path))
    return path


def _cased_wordpiece(folder: Path) -> Path:
    tok = tiny_models.tokenizer()
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    path = folder / "tokenizer.json"
    tok.save(str(path))
    return path


@pytest.mark.parametrize(
    ("make", "reason"),
    [(_bpe, "model is 'BPE', not WordPiece"), (_cased_wordpiece, "normalizer is not BertNormalizer")],
)
def test_other_tokenizers_are_left_to_the_library(
    tmp_path: Path, make: Callable[[Path], Path], reason: str
) -> None:
    result = wordpiece.compile_tokenizer(make(tmp_path), tmp_path, max_tokens=16)
    assert (result.path, result.reason) == (None, reason)
    assert not (tmp_path / wordpiece.FILE_NAME).exists()


def test_a_manifest_without_tables_loads_the_library(tiny: Path) -> None:
    spec = TextSpec(feeds={"ids": "input_ids"}, tokenizer="tokenizer.json", max_tokens=MAX_TOKENS)
    assert isinstance(load_tokenizer(tiny, spec, truncate=True), LibraryTokenizer)
    with_tables = msgspec.structs.replace(spec, wordpiece=wordpiece.FILE_NAME)
    tokenizer = load_tokenizer(tiny, with_tables, truncate=True)
    assert isinstance(tokenizer, runtime.WordPiece)
    library = _library(tiny / "tokenizer.json", MAX_TOKENS)
    texts = ["Hello, World!", "rain " * 50]
    assert tokenizer.encode(texts) == [library.encode(t).ids for t in texts]


def test_the_default_model_ships_tables_that_match_its_tokenizer() -> None:
    manifest = json.loads((DEFAULT_MODEL / "manifest.json").read_text())
    name = manifest["text"]["wordpiece"]
    assert name == wordpiece.FILE_NAME
    max_tokens = manifest["text"]["max_tokens"]
    fast, library = _pair(DEFAULT_MODEL, max_tokens)
    rng = np.random.default_rng(3)
    vocab = list(json.loads((DEFAULT_MODEL / "tokenizer.json").read_text())["model"]["vocab"])
    texts = [" ".join(rng.choice(vocab, size=int(rng.integers(1, 300)))) for _ in range(200)]
    texts += ["The quick brown fox jumps over the lazy dog.", "Ünïcödé 東京 😀 [SEP] e\u0301"]
    assert fast.encode(texts) == [library.encode(t).ids for t in texts]


def test_tables_of_another_format_fail_init_saying_how_to_fix(tiny: Path, tmp_path: Path) -> None:
    compiled = msgspec.msgpack.decode((tiny / wordpiece.FILE_NAME).read_bytes(), type=runtime.Compiled)
    (tmp_path / "tokenizer.json").write_bytes((tiny / "tokenizer.json").read_bytes())
    stale = msgspec.structs.replace(compiled, format=runtime.FORMAT - 1)
    (tmp_path / wordpiece.FILE_NAME).write_bytes(msgspec.msgpack.encode(stale))
    spec = TextSpec(feeds={"ids": "input_ids"}, tokenizer="tokenizer.json", wordpiece=wordpiece.FILE_NAME, max_tokens=MAX_TOKENS)
    with pytest.raises(ModelLoadError, match="rebuild the model directory with `preheat build`"):
        load_tokenizer(tmp_path, spec, truncate=True)
