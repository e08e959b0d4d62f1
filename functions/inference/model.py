"""The model layer: arrays in, arrays out. One ONNX Runtime session, its inputs checked before a run."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from functions.inference.dtypes import NUMPY_BY_ORT
from functions.inference.errors import InvalidTensor, ModelLoadError
from functions.inference.manifest import TensorSpec

_OPTIMIZATION = {
    "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def session_options(threads: int, graph_optimization: str) -> ort.SessionOptions:
    if graph_optimization not in _OPTIMIZATION:
        raise ModelLoadError(
            f"manifest session.graph_optimization {graph_optimization!r} is not one of {', '.join(_OPTIMIZATION)}"
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    # One request at a time per Lambda instance: a second pool of threads would only compete.
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = _OPTIMIZATION[graph_optimization]
    options.log_severity_level = 3
    return options


class OnnxModel:
    def __init__(
        self, session: ort.InferenceSession | None, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec]
    ):
        self._session = session
        self._building: threading.Thread | None = None
        self._error: ModelLoadError | None = None
        self.inputs = tuple(inputs)
        self.outputs = tuple(outputs)
        self._input_by_name = {spec.name: spec for spec in self.inputs}
        self._output_names = tuple(spec.name for spec in self.outputs)

    @classmethod
    def load(
        cls,
        path: Path,
        inputs: Sequence[TensorSpec],
        outputs: Sequence[TensorSpec],
        *,
        threads: int,
        graph_optimization: str = "all",
    ) -> OnnxModel:
        return cls(_session(path, inputs, outputs, threads, graph_optimization), inputs, outputs)

    @classmethod
    def start(
        cls,
        path: Path,
        inputs: Sequence[TensorSpec],
        outputs: Sequence[TensorSpec],
        *,
        threads: int,
        graph_optimization: str = "all",
    ) -> OnnxModel:
        """`load`, with the session built in a thread: ONNX Runtime releases the GIL while it builds
        one, so init goes on meanwhile (Lambda's init has every vCPU). `ready()`, or the first run,
        waits for it and raises what went wrong."""
        session_options(threads, graph_optimization)  # a bad option fails here, in the caller
        model = cls(None, inputs, outputs)

        def build() -> None:
            try:
                model._session = _session(path, inputs, outputs, threads, graph_optimization)
            except ModelLoadError as exc:
                model._error = exc

        model._building = threading.Thread(target=build, name="preheat-session", daemon=True)
        model._building.start()
        return model

    def ready(self) -> ort.InferenceSession:
        """The session, once built; raises ModelLoadError if it could not be."""
        if self._building is not None:
            self._building.join()
            self._building = None
        if self._error is not None:
            raise self._error
        assert self._session is not None
        return self._session

    @property
    def session(self) -> ort.InferenceSession:
        return self._session or self.ready()

    def check(self, feeds: Mapping[str, np.ndarray]) -> None:
        """Reject feeds the session would choke on, with a message naming the tensor."""
        missing = [name for name in self._input_by_name if name not in feeds]
        if missing:
            raise InvalidTensor(f"missing input tensor(s): {', '.join(missing)}")
        for name, array in feeds.items():
            spec = self._input_by_name.get(name)
            if spec is None:
                raise InvalidTensor(
                    f"unknown input tensor {name!r}: this model takes {', '.join(self._input_by_name)}"
                )
            if array.dtype.name != spec.dtype and not (spec.dtype == "bytes" and array.dtype.kind in "OU"):
                raise InvalidTensor(f"input {name!r} must be {spec.dtype}, got {array.dtype.name}")
            check_shape(spec, array.shape)

    def run(
        self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None, *, checked: bool = True
    ) -> dict[str, np.ndarray]:
        """`checked=False` is for callers that built the feeds themselves from the declared specs."""
        if checked:
            self.check(feeds)
        names = list(outputs) if outputs is not None else list(self._output_names)
        session = self._session or self.ready()
        try:
            results = session.run(names, dict(feeds))
        except ort.capi.onnxruntime_pybind11_state.InvalidArgument as exc:
            raise InvalidTensor(f"the model rejected the input: {exc}") from exc
        return dict(zip(names, results, strict=True))


def _session(
    path: Path, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec], threads: int, graph_optimization: str
) -> ort.InferenceSession:
    options = session_options(threads, graph_optimization)
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own pybind types
        raise ModelLoadError(f"ONNX Runtime could not load {path.name}: {exc}") from exc
    _check_signature(path.name, "input", inputs, session.get_inputs())
    _check_signature(path.name, "output", outputs, session.get_outputs())
    return session


def check_shape(spec: TensorSpec, shape: Sequence[int]) -> None:
    """The one check of a tensor's shape against its declared one (rank, fixed axes, no negatives):
    the data plane runs it before building an array from a request, the model before a run."""
    if any(d < 0 for d in shape):
        raise InvalidTensor(f"input {spec.name!r}: shape {list(shape)} has a negative dimension")
    if len(shape) != len(spec.shape):
        raise InvalidTensor(
            f"input {spec.name!r} must have {len(spec.shape)} dimensions, got shape {list(shape)}"
        )
    for axis, (want, got) in enumerate(zip(spec.shape, shape, strict=True)):
        if isinstance(want, int) and want >= 0 and want != got:
            raise InvalidTensor(f"input {spec.name!r} axis {axis} must be {want}, got {got}")


def _check_signature(
    file: str, kind: str, declared: Sequence[TensorSpec], actual: Sequence[ort.NodeArg]
) -> None:
    """The manifest must describe the graph it sits beside; a mismatch means a broken build."""
    have = {arg.name: NUMPY_BY_ORT.get(arg.type, arg.type) for arg in actual}
    for spec in declared:
        if spec.name not in have:
            raise ModelLoadError(f"manifest declares {kind} {spec.name!r}, but {file} has {', '.join(have)}")
        if have[spec.name] != spec.dtype:
            raise ModelLoadError(
                f"manifest declares {kind} {spec.name!r} as {spec.dtype}, but {file} has {have[spec.name]}"
            )
    if kind == "input" and len(have) != len(declared):
        extra = sorted(set(have) - {spec.name for spec in declared})
        raise ModelLoadError(f"{file} takes inputs the manifest does not declare: {', '.join(extra)}")
