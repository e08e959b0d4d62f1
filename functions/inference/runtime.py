"""The per-instance runtime, built once at init and reused by every warm invocation.

This file is the whole cold-start path after imports: settings -> manifest -> (sha256 of every file,
in a thread, while ONNX Runtime builds the session) -> task -> one warm-up inference -> router.
Lambda, the SageMaker container and `preheat serve` all start here.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import msgspec

from functions.cache import EmbeddingCache
from functions.inference import manifest as manifests
from functions.inference.dataplane import DataPlane
from functions.inference.errors import ModelLoadError
from functions.inference.manifest import Manifest
from functions.inference.model import OnnxModel
from functions.inference.phases import InitPhases
from functions.inference.protocol import Router
from functions.inference.settings import Settings
from functions.inference.tasks import Task
from functions.inference.tasks.embedding import Embedder, TextEmbedder
from functions.inference.tasks.tensor import TensorTask


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
        verifier = _Verifier(settings.model_dir, manifest)
        # Opened before the model loads, so the shared tier connects meanwhile; None when off.
        cache = EmbeddingCache.open(
            manifest,
            truncate=settings.truncate,
            service=settings.service,
            namespace=settings.metrics_namespace,
            settings=settings.cache,
        )
        phases.mark("cache")
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
        phases.mark("session")
        verifier.result()
        phases.mark("checksums (wait)")
        phases.add("checksums", verifier.seconds)
        task: Task
        embedder: Embedder | None = None
        if manifest.task == "text-embedding":
            assert manifest.text is not None  # manifests.load checks it
            task = embedder = TextEmbedder.load(
                model,
                settings.model_dir,
                manifest.text,
                batch_size=settings.batch_size,
                truncate=settings.truncate,
            )
        else:
            task = TensorTask(model)
        phases.mark("tokenizer")
        task.warmup()
        phases.mark("warm-up")
        if cache is not None and embedder is not None:
            embedder = cache.wrap(embedder)
        plane = DataPlane(manifest, task, settings, embedder)
        router = Router(plane, max_request_bytes=settings.max_request_bytes, base_path=settings.base_path)
        phases.mark("router")
        return cls(settings, manifest, task, plane, router, init_ms=(time.perf_counter() - started) * 1000)


class _Verifier:
    """Checks every file's sha256 in a thread. hashlib releases the GIL over the whole mapped file,
    so on a machine with a second vCPU this costs the cold start almost nothing."""

    def __init__(self, model_dir: Path, manifest: Manifest) -> None:
        self._error: BaseException | None = None
        self.seconds = 0.0
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

    def result(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error
