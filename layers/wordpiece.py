"""Compile a BERT WordPiece `tokenizer.json` into the tables functions/inference/tasks/wordpiece.py reads.

The tables come from the real `tokenizers` library, not from a second implementation of Unicode: every
code point goes through the tokenizer's own normalizer and pre-tokenizer once (~5 s), and the answers
are stored as runs. Before a compiled file is kept, the two tokenizers must give identical ids on a
corpus (the model's text sets, every code point class, special tokens in text, very long words,
truncation). Tokenizers of any other shape are left to the library: `compile_tokenizer` says why.
"""

from __future__ import annotations

import hashlib
import json
import random
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from functions.inference.tasks import wordpiece as runtime
from functions.inference.tasks.text import LibraryTokenizer
from functions.inference.tasks.wordpiece import DEFER, DROP, MAP, PAD, PUNCT, SAME, SPACE, WHITESPACE, WORD

FILE_NAME = "tokenizer.wordpiece"
_SURROGATES = range(0xD800, 0xE000)


@dataclass(frozen=True)
class Compiled:
    path: Path | None  # None: not compiled, see reason
    reason: str = ""
    checked_texts: int = 0


def unsupported(config: dict[str, Any]) -> str | None:
    """Why this tokenizer.json is not the BERT WordPiece shape the tables describe, or None."""
    model = config.get("model") or {}
    if model.get("type") != "WordPiece":
        return f"model is {model.get('type')!r}, not WordPiece"
    if (config.get("normalizer") or {}).get("type") != "BertNormalizer":
        return "normalizer is not BertNormalizer"
    if (config.get("pre_tokenizer") or {}).get("type") != "BertPreTokenizer":
        return "pre-tokenizer is not BertPreTokenizer"
    for token in config.get("added_tokens") or []:
        if token.get("normalized") or token.get("lstrip") or token.get("rstrip") or token.get("single_word"):
            return f"added token {token.get('content')!r} is normalized or strips/matches words"
    vocab = model.get("vocab") or {}
    if sorted(vocab.values()) != list(range(len(vocab))):
        return "vocabulary ids are not 0..n-1"
    if _template(config.get("post_processor")) is None:
        return "post-processor is not [specials] $A [specials]"
    return None


def _template(post: dict[str, Any] | None) -> tuple[list[str], list[str]] | None:
    """The special tokens before and after a single sequence, or None when it is not that shape."""
    if post is None:
        return [], []
    if post.get("type") == "BertProcessing":
        return [post["cls"][0]], [post["sep"][0]]
    if post.get("type") != "TemplateProcessing":
        return None
    before: list[str] = []
    after: list[str] = []
    seen_sequence = False
    for piece in post.get("single") or []:
        if "Sequence" in piece and piece["Sequence"].get("id") == "A" and not seen_sequence:
            seen_sequence = True
        elif "SpecialToken" in piece:
            special = post["special_tokens"].get(piece["SpecialToken"]["id"])
            if special is None or len(special["ids"]) != 1:
                return None
            (after if seen_sequence else before).append(special["tokens"][0])
        else:
            return None
    return (before, after) if seen_sequence else None


def _pair_template(post: dict[str, Any] | None, vocab: dict[str, int]) -> runtime.PairTemplate | None:
    """The pair template as the runtime reads it ([specials] A [specials] B [specials], with type
    ids), or None when the post-processor has another shape."""
    if post is None:
        return None
    if post.get("type") == "BertProcessing":
        cls, sep = vocab[post["cls"][0]], vocab[post["sep"][0]]
        return runtime.PairTemplate(before=[(cls, 0)], middle=[(sep, 0)], after=[(sep, 1)], a_type=0, b_type=1)
    if post.get("type") != "TemplateProcessing":
        return None
    parts: list[list[tuple[int, int]]] = [[]]
    types: list[int] = []
    for piece in post.get("pair") or []:
        if "Sequence" in piece:
            sequence = piece["Sequence"]
            if sequence.get("id") != "AB"[len(types)]:
                return None
            types.append(int(sequence.get("type_id", 0)))
            parts.append([])
        elif "SpecialToken" in piece:
            special = post["special_tokens"].get(piece["SpecialToken"]["id"])
            if special is None or len(special["ids"]) != 1:
                return None
            parts[-1].append((int(special["ids"][0]), int(piece["SpecialToken"].get("type_id", 0))))
        else:
            return None
    if len(types) != 2:
        return None
    return runtime.PairTemplate(before=parts[0], middle=parts[1], after=parts[2], a_type=types[0], b_type=types[1])


def _runs(kinds: Iterable[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """(first code point, kind) of every run of code points that share a kind."""
    starts: list[int] = []
    values: list[int] = []
    for cp, kind in kinds:
        if not values or values[-1] != kind:
            starts.append(cp)
            values.append(kind)
    return starts, values


def _normalization(normalizer: Any, *, nfd: bool) -> tuple[tuple[list[int], list[int]], dict[int, str]]:
    mapped: dict[int, str] = {}

    def kind(cp: int) -> int:
        if cp in _SURROGATES:
            return DEFER  # not text to Rust: the library decides what happens (it refuses)
        char = chr(cp)
        out = normalizer.normalize_str(char)
        if out == char:
            result = SAME
        elif out == "":
            result = DROP
        elif out == " ":
            result = SPACE
        elif out == f" {char} ":
            result = PAD
        else:
            mapped[cp] = out
            result = MAP
        # Normalizing a whole text reorders combining marks across characters (NFD); per-character
        # tables cannot, so a character whose output keeps one defers its text to the library.
        if nfd and result in (SAME, MAP, PAD) and any(unicodedata.combining(c) for c in out):
            mapped.pop(cp, None)
            return DEFER
        return result

    return _runs((cp, kind(cp)) for cp in range(0x110000)), mapped


def _split_classes(pre_tokenizer: Any) -> tuple[list[int], list[int]]:
    def cls(cp: int) -> int:
        if cp in _SURROGATES:
            return WORD
        pieces = [p for p, _ in pre_tokenizer.pre_tokenize_str(f"a{chr(cp)}a")]
        if pieces == ["a", "a"]:
            return WHITESPACE
        if pieces == ["a", chr(cp), "a"]:
            return PUNCT
        return WORD

    return _runs((cp, cls(cp)) for cp in range(0x110000))


def compile_tokenizer(
    source: Path,
    target_dir: Path,
    *,
    max_tokens: int,
    texts: Sequence[str] = (),
    seed: int = 0,
    pairs: bool = False,
) -> Compiled:
    """Write target_dir/tokenizer.wordpiece when source is a BERT WordPiece tokenizer and the compiled
    one agrees with the library on every check text (and, with `pairs`, on pairs of them, truncated
    and not); otherwise write nothing and say why."""
    import tokenizers

    raw = source.read_bytes()
    config = json.loads(raw)
    reason = unsupported(config)
    if reason is not None:
        return Compiled(None, reason)
    library = tokenizers.Tokenizer.from_str(raw.decode("utf-8"))
    template = _template(config.get("post_processor"))
    assert template is not None
    model = config["model"]
    vocab = model["vocab"]
    bert = config["normalizer"]
    strips_accents = bert.get("strip_accents")
    nfd = bool(bert.get("lowercase", True) if strips_accents is None else strips_accents)
    (norm_starts, norm_kinds), norm_map = _normalization(library.normalizer, nfd=nfd)
    split_starts, split_classes = _split_classes(library.pre_tokenizer)
    tokens = sorted(vocab, key=vocab.__getitem__)
    if any("\n" in token for token in tokens):
        return Compiled(None, "a vocabulary token holds a newline")
    pair = _pair_template(config.get("post_processor"), vocab) if pairs else None
    if pairs and pair is None:
        return Compiled(None, "the post-processor's pair template is not [specials] $A [specials] $B [specials]")
    compiled = runtime.Compiled(
        format=runtime.FORMAT,
        vocab="\n".join(tokens),
        unk=vocab[model["unk_token"]],
        prefix=model.get("continuing_subword_prefix", "##"),
        max_chars=int(model.get("max_input_chars_per_word", 100)),
        specials={t["content"]: t["id"] for t in config.get("added_tokens") or []},
        before=[vocab[t] for t in template[0]],
        after=[vocab[t] for t in template[1]],
        norm_starts=norm_starts,
        norm_kinds=norm_kinds,
        ascii_map={cp: out for cp, out in norm_map.items() if cp < 128},
        norm_map=msgspec.Raw(msgspec.msgpack.encode({cp: out for cp, out in norm_map.items() if cp >= 128})),
        split_starts=split_starts,
        split_classes=split_classes,
        source={"tokenizers": tokenizers.__version__, "tokenizer_sha256": hashlib.sha256(raw).hexdigest()},
        pair=pair,
    )
    data = msgspec.msgpack.encode(compiled)
    checks = check_texts(texts, compiled, norm_map, seed=seed)
    mismatch = compare(data, source, checks, max_tokens=max_tokens)
    if mismatch is None and pairs:
        mismatch = compare_pairs(data, source, check_pairs(checks, seed=seed), max_tokens=max_tokens)
    if mismatch is not None:
        return Compiled(None, f"compiled tokenizer disagrees with the library: {mismatch}", len(checks))
    target = target_dir / FILE_NAME
    target.write_bytes(data)
    return Compiled(target, "", len(checks))


def check_texts(
    texts: Sequence[str], compiled: runtime.Compiled, norm_map: dict[int, str], *, seed: int = 0
) -> list[str]:
    """The given texts, plus texts built to reach every kind of code point and token the tables hold."""
    rng = random.Random(seed)
    samples: list[str] = []
    for runs in (compiled.norm_starts, compiled.split_starts):
        ends = [*runs[1:], 0x110000]
        for start, end in zip(runs, ends, strict=True):  # a few characters of every run
            for cp in {start, end - 1, rng.randrange(start, end)}:
                if cp not in _SURROGATES:
                    samples.append(chr(cp))
    samples += [chr(cp) for cp in norm_map]
    words = compiled.tokens()
    out = list(texts)
    out += ["", " ", "\t\n", "a" * (compiled.max_chars + 1), "x" * compiled.max_chars, "ΣΑΣ Ἀθῆναι"]
    out += [f"foo{s}bar {s}{s} x{s}" for s in compiled.specials]
    for _ in range(400):
        parts = []
        for _ in range(rng.randrange(1, 40)):
            roll = rng.random()
            if roll < 0.35:
                parts.append(rng.choice(words).removeprefix(compiled.prefix))
            elif roll < 0.7:
                parts.append("".join(rng.choice(samples) for _ in range(rng.randrange(1, 6))))
            elif roll < 0.8:
                parts.append(rng.choice(list(compiled.specials) or [" "]))
            else:
                parts.append(rng.choice([" ", "  ", ".", ",", "'", "-", "\n", "\u00a0", "\u3000"]))
        out.append(rng.choice(["", " "]).join(parts))
    out += ["".join(samples[i : i + 50]) for i in range(0, len(samples), 50)]
    out.append(" ".join(words[:4000]))  # far over any max_tokens: truncation
    return out


def compare(data: bytes, source: Path, texts: Sequence[str], *, max_tokens: int) -> str | None:
    """The first text where compiled and library ids differ (truncating at max_tokens and not), or None."""
    for limit in (max_tokens, None):
        mismatch = _first_mismatch(data, LibraryTokenizer(source, max_tokens=limit), texts, limit)
        if mismatch is not None:
            return mismatch
    return None


def check_pairs(texts: Sequence[str], *, seed: int = 0) -> list[tuple[str, str]]:
    """Pairs of check texts: each with the next, short with long (truncation of either side), and a
    few of the same text twice."""
    rng = random.Random(seed + 1)
    pool = [t for t in texts if t] or ["a"]
    pairs = [(pool[i], pool[(i + 1) % len(pool)]) for i in range(len(pool))]
    pairs += [(rng.choice(pool), rng.choice(pool)) for _ in range(len(pool))]
    pairs += [(t, t) for t in pool[:50]]
    return pairs


def compare_pairs(
    data: bytes, source: Path, pairs: Sequence[tuple[str, str]], *, max_tokens: int
) -> str | None:
    """The first pair where compiled and library (ids, type ids) differ, or None."""
    for limit in (max_tokens, None):
        mismatch = _first_pair_mismatch(data, LibraryTokenizer(source, max_tokens=limit), pairs, limit)
        if mismatch is not None:
            return mismatch
    return None


def _first_pair_mismatch(
    data: bytes, reference: LibraryTokenizer, pairs: Sequence[tuple[str, str]], limit: int | None
) -> str | None:
    compiled = msgspec.msgpack.decode(data, type=runtime.Compiled)
    fast = runtime.WordPiece(compiled, lambda: reference, max_tokens=limit)
    for pair, expected in zip(pairs, reference.encode_pairs(pairs), strict=True):
        got = fast.encode_pair(*pair)
        if got != expected:
            return (
                f"pair ({pair[0][:40]!r}, {pair[1][:40]!r}) (truncation {limit}): "
                f"library {expected[0][:20]}, compiled {got[0][:20]}"
            )
    return None


def _first_mismatch(
    data: bytes, reference: LibraryTokenizer, texts: Sequence[str], limit: int | None
) -> str | None:
    compiled = msgspec.msgpack.decode(data, type=runtime.Compiled)
    fast = runtime.WordPiece(compiled, lambda: reference, max_tokens=limit)
    for text, expected in zip(texts, reference.encode(texts), strict=True):
        got = fast.encode_one(text)
        if got != expected:
            return f"{text[:80]!r} (truncation {limit}): library {expected[:20]}, compiled {got[:20]}"
    return None
