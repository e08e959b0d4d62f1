"""The per-instance runtime, built once at init and reused by every warm invocation.

This file is the whole cold-start path after imports: settings -> manifest -> (sha256 of every file,
in a thread, while ONNX Runtime builds the session) -> the manifest's task (tasks.load) -> one warm-up
inference -> router.
Lambda, the SageMaker container and `preheat serve` all start here.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import msgspec

from functions.cache import TextCache
from functions.inference import manifest as manifests
from functions.inference import tasks
from functions.inference.dataplane import DataPlane
from functions.inference.errors import ModelLoadError
from functions.inference.manifest import Manifest
from functions.inference.model import OnnxModel
from functions.inference.protocol import Router
from functions.inference.settings import Settings
from functions.inference.tasks import Task, TaskContext
from functions.inference.tasks.text import Wrap


class Runtime(msgspec.Struct, frozen=True):
    settings: Settings
    manifest: Manifest
    task: Task
    plane: DataPlane
    router: Router
    init_ms: float

    @classmethod
    def load(cls, settings: Settings | None = None, *, started: float | None = None) -> Runtime:
        """`started` is a perf_counter() reading from before the caller's imports, if it has one."""
        started = time.perf_counter() if started is None else started
        settings = Settings.from_env() if settings is None else settings
        manifest = manifests.load(settings.model_dir)
        verifier = _Verifier(settings.model_dir, manifest)
        # Opened before the model loads, so the shared tier connects meanwhile; None when off.
        cache = TextCache.open(
            manifest,
            truncate=settings.truncate,
            service=settings.service,
            namespace=settings.metrics_namespace,
            settings=settings.cache,
        )
        try:
            model = OnnxModel.load(
                settings.model_dir / manifest.model_file,
                manifest.inputs,
                manifest.outputs,
                threads=settings.threads,
                graph_optimization=manifest.session.graph_optimization,
            )
        except ModelLoadError:
            verifier.result()  # a checksum mismatch explains a load failure better than ORT's message
            raise
        verifier.result()
        task = tasks.load(
            TaskContext(
                manifest=manifest,
                model=model,
                model_dir=settings.model_dir,
                batch_size=settings.batch_size,
                truncate=settings.truncate,
                max_inputs=settings.max_inputs,
                wrap=cache.wrap if cache is not None else None,
            )
        )
        task.warmup()
        plane = DataPlane(manifest, task, settings)
        router = Router(plane, max_request_bytes=settings.max_request_bytes, base_path=settings.base_path)
        return cls(settings, manifest, task, plane, router, init_ms=(time.perf_counter() - started) * 1000)


def open_task(
    model_dir: Path,
    *,
    manifest: Manifest | None = None,
    model_file: Path | None = None,
    threads: int = 1,
    graph_optimization: str | None = None,
    batch_size: int = 32,
    truncate: bool = True,
    max_inputs: int = 2048,
    wrap: Wrap | None = None,
) -> Task:
    """A model directory's task, built as Runtime.load builds it but without checksums, cache or
    warm-up: for the build's gate (`model_file`: a candidate graph), benchmarks and tests."""
    manifest = manifests.load(model_dir) if manifest is None else manifest
    model = OnnxModel.load(
        model_file if model_file is not None else model_dir / manifest.model_file,
        manifest.inputs,
        manifest.outputs,
        threads=threads,
        graph_optimization=graph_optimization or manifest.session.graph_optimization,
    )
    return tasks.load(
        TaskContext(
            manifest=manifest,
            model=model,
            model_dir=model_dir,
            batch_size=batch_size,
            truncate=truncate,
            max_inputs=max_inputs,
            wrap=wrap,
        )
    )


class _Verifier:
    """Checks every file's sha256 in a thread. hashlib releases the GIL over the whole mapped file,
    so on a machine with a second vCPU this costs the cold start almost nothing."""

    def __init__(self, model_dir: Path, manifest: Manifest) -> None:
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(model_dir, manifest), name="preheat-verify", daemon=True
        )
        self._thread.start()

    def _run(self, model_dir: Path, manifest: Manifest) -> None:
        try:
            manifests.verify(model_dir, manifest)
        except BaseException as exc:  # handed to the init thread, which raises it
            self._error = exc

    def result(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error
