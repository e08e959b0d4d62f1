"""Element types, named three ways: numpy (manifest), ONNX Runtime, and the Open Inference Protocol."""

from __future__ import annotations

# numpy name -> Open Inference Protocol v2 datatype
OIP_BY_NUMPY: dict[str, str] = {
    "bool": "BOOL",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "float16": "FP16",
    "float32": "FP32",
    "float64": "FP64",
    "bytes": "BYTES",
}
NUMPY_BY_OIP: dict[str, str] = {oip: np for np, oip in OIP_BY_NUMPY.items()}

# ONNX Runtime's NodeArg.type -> numpy name
NUMPY_BY_ORT: dict[str, str] = {
    "tensor(bool)": "bool",
    "tensor(uint8)": "uint8",
    "tensor(uint16)": "uint16",
    "tensor(uint32)": "uint32",
    "tensor(uint64)": "uint64",
    "tensor(int8)": "int8",
    "tensor(int16)": "int16",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(float16)": "float16",
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(string)": "bytes",
}
