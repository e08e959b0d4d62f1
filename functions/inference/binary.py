"""The Open Inference Protocol's binary tensor data extension (what tritonclient sends by default).

A request or response body is a JSON header of `Inference-Header-Content-Length` bytes, then the raw
tensors back to back, in the order of the JSON's inputs (outputs) that carry
`parameters.binary_data_size`. Fixed-size types are little-endian, row-major; a BYTES tensor is each
element as a 4-byte little-endian length followed by its bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

import numpy as np

from functions.inference.errors import InvalidRequest, InvalidTensor

HEADER = "inference-header-content-length"
SIZE = "binary_data_size"
OCTET_STREAM = "application/octet-stream"
_LENGTH = struct.Struct("<I")


def split(body: bytes, headers: Mapping[str, str]) -> tuple[bytes, bytes | None]:
    """The JSON header and the binary part (None: the whole body is JSON)."""
    raw = headers.get(HEADER)
    if raw is None:
        return body, None
    if not raw.strip().isdigit():
        raise InvalidRequest(f"{HEADER} must be a byte count, got {raw!r}", code="invalid_binary_header")
    length = int(raw)
    if length > len(body):
        raise InvalidRequest(
            f"{HEADER} says the JSON part is {length} bytes, but the body is {len(body)}",
            code="invalid_binary_header",
        )
    return body[:length], body[length:]


class Reader:
    """Hands out the binary part's tensors in order and checks that all of it was used."""

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.offset = 0

    def take(self, name: str, size: object) -> memoryview:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidTensor(f"input {name!r}: parameters.{SIZE} must be a non-negative integer")
        end = self.offset + size
        if end > len(self.data):
            raise InvalidTensor(
                f"input {name!r} claims {size} bytes of binary data, but only {len(self.data) - self.offset} are left"
            )
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def finish(self) -> None:
        if self.offset != len(self.data):
            raise InvalidTensor(
                f"the body has {len(self.data) - self.offset} bytes of binary data that no input claims "
                f"(parameters.{SIZE})"
            )


def decode(name: str, raw: memoryview, dtype: str, count: int) -> np.ndarray:
    """A flat array of `count` elements of `dtype` ("bytes" for BYTES) from its binary form."""
    if dtype == "bytes":
        return _strings(name, raw, count)
    target = np.dtype(dtype).newbyteorder("<")
    if len(raw) != count * target.itemsize:
        raise InvalidTensor(
            f"input {name!r}: {count} elements of {dtype} are {count * target.itemsize} bytes, "
            f"parameters.{SIZE} says {len(raw)}"
        )
    array = np.frombuffer(raw, dtype=target).astype(np.dtype(dtype), copy=True)
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise InvalidTensor(f"input {name!r}: a value is not finite in {dtype}")
    return array


def _strings(name: str, raw: memoryview, count: int) -> np.ndarray:
    values: list[str] = []
    offset = 0
    data = raw.tobytes()
    while offset < len(data):
        if offset + 4 > len(data):
            raise InvalidTensor(f"input {name!r}: a BYTES element's 4-byte length is cut off")
        (length,) = _LENGTH.unpack_from(data, offset)
        offset += 4
        if offset + length > len(data):
            raise InvalidTensor(f"input {name!r}: a BYTES element claims {length} bytes past the end of its data")
        try:
            values.append(data[offset : offset + length].decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidTensor(f"input {name!r}: element {len(values)} is not valid UTF-8") from None
        offset += length
    if len(values) != count:
        raise InvalidTensor(f"input {name!r}: its shape holds {count} elements, the binary data has {len(values)}")
    return np.array(values, dtype=object)


def encode(array: np.ndarray) -> bytes:
    """An output's binary form."""
    if array.dtype.kind in "OSU":
        parts = []
        for value in array.ravel().tolist():
            raw = value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogatepass")
            parts.append(_LENGTH.pack(len(raw)) + raw)
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
