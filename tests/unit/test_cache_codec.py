"""Keys and stored values: a read returns exactly the answer asked for, or nothing."""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from functions.cache import codec
from functions.cache.keys import KeySpace
from functions.inference import manifest as manifests
from functions.inference.tasks.text import text_keyspace

MODEL_A = "a" * 64
MODEL_B = "b" * 64
NOW = 1_800_000_000.0


def _value(space: KeySpace, text: str, *, dims: int = 4, expires_at: int = int(NOW) + 60) -> bytes:
    vector = np.arange(dims, dtype=np.float32) / 7
    return codec.encode(
        vector,
        tokens=5,
        expires_at=expires_at,
        model_digest=space.model_digest,
        key_digest=space.key(text).digest,
    )


def test_a_key_depends_on_model_variant_and_exact_text() -> None:
    a = KeySpace(MODEL_A, {"truncate": True})
    assert a.key("hello").digest == KeySpace(MODEL_A, {"truncate": True}).key("hello").digest
    others = [
        KeySpace(MODEL_B, {"truncate": True}).key("hello"),
        KeySpace(MODEL_A, {"truncate": False}).key("hello"),
        a.key("Hello"),
        a.key("hello "),
    ]
    assert len({k.digest for k in [a.key("hello"), *others]}) == 5
    assert a.key("hello").text.startswith(f"preheat:{MODEL_A[:16]}:")


def test_text_with_a_lone_surrogate_still_has_a_key() -> None:
    space = KeySpace(MODEL_A, {})
    assert space.key("\ud800") != space.key("\ud801")


def test_manifest_text_settings_are_part_of_the_key(embedding_dir: Path) -> None:
    manifest = manifests.load(embedding_dir)
    assert manifest.text is not None and manifest.embedding is not None
    base = text_keyspace(manifest, truncate=True)
    pooled = msgspec.structs.replace(
        manifest, embedding=msgspec.structs.replace(manifest.embedding, pooling="cls")
    )
    padded = msgspec.structs.replace(manifest, text=msgspec.structs.replace(manifest.text, pad_id=3))
    # Same files (same model_id), different answers: must not share keys.
    assert pooled.model_id == padded.model_id == manifest.model_id
    assert text_keyspace(pooled, truncate=True).key("x") != base.key("x")
    assert text_keyspace(padded, truncate=True).key("x") != base.key("x")
    assert text_keyspace(manifest, truncate=False).key("x") != base.key("x")


def test_a_pair_key_keeps_its_split() -> None:
    space = KeySpace(MODEL_A, {"pairs": True})
    assert space.key_of(("ab", "c")) != space.key_of(("a", "bc"))
    assert space.key_of(("ab", "c")) == space.key_of(("ab", "c"))


def test_round_trip_is_exact_and_compact() -> None:
    space = KeySpace(MODEL_A, {})
    vector = np.random.default_rng(1).normal(size=384).astype(np.float32)
    key = space.key("t")
    value = codec.encode(
        vector, tokens=9, expires_at=int(NOW) + 5, model_digest=space.model_digest, key_digest=key.digest
    )
    assert len(value) == codec.size_of(384) < 384 * 4 + 128
    entry = codec.decode(value, dims=384, model_digest=space.model_digest, key_digest=key.digest, now=NOW)
    assert entry is not None
    assert entry.tokens == 9 and entry.expires_at == int(NOW) + 5
    assert np.array_equal(entry.vector, vector) and entry.vector.dtype == np.float32
    assert not entry.vector.flags.writeable


def test_another_key_model_size_or_an_expired_entry_is_a_miss() -> None:
    a, b = KeySpace(MODEL_A, {}), KeySpace(MODEL_B, {})
    value = _value(a, "t")
    ok = {"dims": 4, "model_digest": a.model_digest, "key_digest": a.key("t").digest, "now": NOW}
    assert codec.decode(value, **ok) is not None  # type: ignore[arg-type]
    assert codec.decode(value, **{**ok, "key_digest": a.key("u").digest}) is None  # type: ignore[arg-type]
    assert codec.decode(value, **{**ok, "model_digest": b.model_digest}) is None  # type: ignore[arg-type]
    assert codec.decode(value, **{**ok, "dims": 5}) is None  # type: ignore[arg-type]
    assert codec.decode(value, **{**ok, "now": NOW + 60}) is None  # type: ignore[arg-type]
    assert codec.decode(value[:-1], **ok) is None  # type: ignore[arg-type]
    assert codec.decode(value + b"\0", **ok) is None  # type: ignore[arg-type]
    assert codec.decode(b"", **ok) is None  # type: ignore[arg-type]


@given(position=st.integers(min_value=0), flip=st.integers(min_value=1, max_value=255))
def test_any_corrupted_byte_is_a_miss(position: int, flip: int) -> None:
    space = KeySpace(MODEL_A, {})
    value = bytearray(_value(space, "t"))
    value[position % len(value)] ^= flip
    got = codec.decode(
        bytes(value), dims=4, model_digest=space.model_digest, key_digest=space.key("t").digest, now=NOW
    )
    assert got is None


def test_encoding_is_little_endian_float32_whatever_the_input_dtype() -> None:
    space = KeySpace(MODEL_A, {})
    key = space.key("t")
    value = codec.encode(
        np.array([1.0, -2.5], dtype=np.float64),
        tokens=1,
        expires_at=int(time.time()) + 9,
        model_digest=space.model_digest,
        key_digest=key.digest,
    )
    assert value[codec.HEADER_BYTES : codec.HEADER_BYTES + 8] == np.array([1.0, -2.5], "<f4").tobytes()
