"""The stored form of one answer: a fixed header + float32 little-endian values + a CRC.

    magic "PHC1" | dtype u8 (1 = float32) | 3 pad | dims u32 | tokens u32 | expires_at u64 (epoch s)
    | model sha256 (32) | key sha256 (32) | dims x float32 LE | crc32 u32 over all of the above

A 384-dim answer is 1,628 bytes (JSON text would be ~8 KB). `decode` returns None for anything that
is not exactly the answer asked for: another key or model, a different size, an expired entry
(DynamoDB deletes expired items up to days late), a torn or corrupted value. None is a miss, never an
error the client sees.
"""

from __future__ import annotations

import struct
import zlib
from typing import NamedTuple

import numpy as np

MAGIC = b"PHC1"
FLOAT32 = 1
_HEADER = struct.Struct("<4sB3xIIQ32s32s")
_CRC = struct.Struct("<I")
HEADER_BYTES = _HEADER.size


class Entry(NamedTuple):
    """One cached answer. A NamedTuple, not a dataclass: a third of the memory per entry, and a
    fifth of the class-creation cost on the cold path."""

    vector: np.ndarray  # [dims] float32, read-only
    tokens: int
    expires_at: int


def size_of(dims: int) -> int:
    return HEADER_BYTES + 4 * dims + _CRC.size


def encode(
    vector: np.ndarray, *, tokens: int, expires_at: int, model_digest: bytes, key_digest: bytes
) -> bytes:
    values = np.ascontiguousarray(vector, dtype="<f4").tobytes()
    body = (
        _HEADER.pack(MAGIC, FLOAT32, vector.shape[0], tokens, expires_at, model_digest, key_digest) + values
    )
    return body + _CRC.pack(zlib.crc32(body))


def decode(value: bytes, *, dims: int, model_digest: bytes, key_digest: bytes, now: float) -> Entry | None:
    if len(value) != size_of(dims):
        return None
    magic, dtype, got_dims, tokens, expires_at, got_model, got_key = _HEADER.unpack_from(value)
    if (
        magic != MAGIC
        or dtype != FLOAT32
        or got_dims != dims
        or got_model != model_digest
        or got_key != key_digest
        or expires_at <= now
    ):
        return None
    (crc,) = _CRC.unpack_from(value, len(value) - _CRC.size)
    if zlib.crc32(memoryview(value)[: -_CRC.size]) != crc:
        return None
    vector = np.frombuffer(value, dtype="<f4", count=dims, offset=HEADER_BYTES)  # read-only: bytes
    return Entry(vector=vector, tokens=tokens, expires_at=expires_at)
