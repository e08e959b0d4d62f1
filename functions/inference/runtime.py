"""The per-instance runtime, built once at init and reused by every warm invocation.

This file is the whole cold-start path after imports: settings -> manifest -> the ONNX Runtime
session, started in a thread -> meanwhile, on this thread: every file's checksum (XXH3, ~1 ms), the
serving modules' imports, the cache and the manifest's task (tasks.load: the tokenizer) -> the
session, waited for -> one warm-up inference -> router. ONNX Runtime releases the GIL while it
builds a session, and Lambda's init runs with every vCPU, so the two overlap.
Lambda, the SageMaker container and `preheat serve` all start here.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from functions.cache import TextCache
from functions.inference import manifest as manifests
from functions.inference import tasks
from functions.inference.errors import ModelLoadError
from functions.inference.manifest import TEXT_TASKS, Manifest
from functions.inference.model import OnnxModel
from functions.inference.phases import InitPhases
from functions.inference.settings import Settings
from functions.inference.tasks import Task, TaskContext
from functions.inference.tasks.text import Wrap, text_keyspace

if TYPE_CHECKING:  # imported in Runtime.load, while the session builds
    from functions.inference.dataplane import DataPlane
    from functions.inference.protocol import Router


class Runtime(msgspec.Struct, frozen=True):
    settings: Settings
    manifest: Manifest
    task: Task
    plane: DataPlane
    router: Router
    init_ms: float

    @classmethod
    def load(
        cls, settings: Settings | None = None, *, started: float | None = None, phases: InitPhases | None = None
    ) -> Runtime:
        """`started` is a perf_counter() reading from before the caller's imports, if it has one;
        `phases` collects how long each step took (the handler logs them)."""
        started = time.perf_counter() if started is None else started
        phases = InitPhases() if phases is None else phases
        settings = Settings.from_env() if settings is None else settings
        phases.mark("settings")
        manifest = manifests.load(settings.model_dir)
        phases.mark("manifest")
        model = OnnxModel.start(
            settings.model_dir / manifest.model_file,
            manifest.inputs,
            manifest.outputs,
            threads=settings.threads,
            graph_optimization=manifest.session.graph_optimization,
        )
        phases.mark("session (start)")
        # Until model.ready(), this thread works beside ONNX Runtime's.
        verifier = Checksums(settings.model_dir, manifest)
        phases.mark("checksums")
        from functions.inference.dataplane import DataPlane
        from functions.inference.protocol import Router

        phases.mark("import serving")
        cache = None
        if manifest.task in TEXT_TASKS:  # tensor models' answers are not cached
            cache = TextCache.open(
                text_keyspace(manifest, truncate=settings.truncate),
                service=settings.service,
                namespace=settings.metrics_namespace,
                settings=settings.cache,
            )
        phases.mark("cache")
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
        phases.mark("tokenizer")
        try:
            model.ready()
        except ModelLoadError:
            verifier.check()  # a checksum mismatch explains a load failure better than ORT's message
            raise
        phases.mark("session (wait)")
        if verifier.threaded:
            verifier.check()
            phases.mark("checksums (wait)")
            phases.add("checksums (sha256)", verifier.seconds)
        task.warmup()
        phases.mark("warm-up")
        plane = DataPlane(manifest, task, settings)
        router = Router(plane, max_request_bytes=settings.max_request_bytes, base_path=settings.base_path)
        phases.mark("router")
        return cls(settings, manifest, task, plane, router, init_ms=(time.perf_counter() - started) * 1000)


def open_model(
    model_dir: Path,
    manifest: Manifest,
    *,
    model_file: Path | None = None,
    threads: int = 1,
    graph_optimization: str | None = None,
) -> OnnxModel:
    """The manifest's ONNX Runtime session, as Runtime.load opens it (synchronously)."""
    return OnnxModel.load(
        model_file if model_file is not None else model_dir / manifest.model_file,
        manifest.inputs,
        manifest.outputs,
        threads=threads,
        graph_optimization=graph_optimization or manifest.session.graph_optimization,
    )


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
    model: OnnxModel | None = None,
) -> Task:
    """A model directory's task, built as Runtime.load builds it but without checksums, cache or
    warm-up: for the build's gate (`model_file`: a candidate graph), benchmarks and tests. `model`:
    a session opened beforehand with `open_model` (a benchmark that times it alone)."""
    manifest = manifests.load(model_dir) if manifest is None else manifest
    if model is None:
        model = open_model(
            model_dir, manifest, model_file=model_file, threads=threads, graph_optimization=graph_optimization
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


class Checksums:
    """Every model file checked against the manifest before ONNX Runtime reads it: with XXH3 (what
    `preheat build` records) that takes ~1 ms, so it is done right away. A manifest with only sha256
    (~16 ms for MiniLM) is checked in a thread instead (hashlib releases the GIL over the mapped
    file) while ONNX Runtime builds the session; `check()` waits for it and raises what it found."""

    def __init__(self, model_dir: Path, manifest: Manifest) -> None:
        self._error: BaseException | None = None
        self.seconds = 0.0
        self.threaded = not manifests.fast_to_verify(manifest)
        self._thread: threading.Thread | None = None
        if not self.threaded:
            manifests.verify(model_dir, manifest)
            return
        self._thread = threading.Thread(
            target=self._run, args=(model_dir, manifest), name="preheat-verify", daemon=True
        )
        self._thread.start()

    def _run(self, model_dir: Path, manifest: Manifest) -> None:
        started = time.perf_counter()
        try:
            manifests.verify(model_dir, manifest)
        except BaseException as exc:  # handed to the init thread, which raises it
            self._error = exc
        finally:
            self.seconds = time.perf_counter() - started

    def check(self) -> None:
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
