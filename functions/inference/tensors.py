"""Tensors as the Open Inference Protocol carries them: JSON `data` to typed arrays (refusing what
numpy would silently coerce), arrays back to JSON or binary outputs, and metadata. Used by the data
plane; no HTTP here either."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from functions.inference import binary, schemas
from functions.inference.dtypes import OIP_BY_NUMPY
from functions.inference.errors import InvalidTensor
from functions.inference.manifest import TensorSpec


def binary_outputs(request: schemas.InferenceRequest, names: Sequence[str]) -> frozenset[str]:
    """Outputs to send in the binary part: those asked for with parameters.binary_data, or all of
    them with the request's parameters.binary_data_output (what tritonclient sets when it names none)."""
    default = bool((request.parameters or {}).get("binary_data_output", False))
    asked = {o.name: o.parameters or {} for o in request.outputs or ()}
    return frozenset(n for n in names if bool(asked.get(n, {}).get("binary_data", default)))


_KINDS = {"b": "bool", "i": "integer", "u": "integer", "f": "number"}


def from_json(name: str, data: list[Any], dtype: str) -> np.ndarray:
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


def metadata(spec: TensorSpec) -> schemas.MetadataTensor:
    return schemas.MetadataTensor(
        name=spec.name,
        datatype=OIP_BY_NUMPY.get(spec.dtype, spec.dtype),
        shape=[d if isinstance(d, int) else -1 for d in spec.shape],
    )


def output(name: str, array: np.ndarray, as_binary: bool = False) -> schemas.ResponseOutput:
    if as_binary:
        datatype = "BYTES" if array.dtype.kind in "OSU" else OIP_BY_NUMPY.get(array.dtype.name, array.dtype.name.upper())
        size = len(binary.encode(array)) if array.dtype.kind in "OSU" else array.nbytes
        return schemas.ResponseOutput(
            name=name, shape=list(array.shape), datatype=datatype, parameters={binary.SIZE: size}
        )
    if array.dtype.kind in "OSU":
        data = [v.decode() if isinstance(v, bytes) else str(v) for v in array.ravel().tolist()]
        datatype = "BYTES"
    else:
        data = array.ravel().tolist()
        datatype = OIP_BY_NUMPY.get(array.dtype.name, array.dtype.name.upper())
    return schemas.ResponseOutput(name=name, shape=list(array.shape), datatype=datatype, data=data)
