"""The model directory's manifest: what the model is, how to feed it, and a checksum of every file.

`preheat build` writes `manifest.json` beside the model; the runtime reads it at init and refuses
to serve a directory whose files do not match it.
"""

from __future__ import annotations

import hashlib
import mmap
from pathlib import Path, PurePosixPath
from typing import Any

import msgspec

from functions.inference.errors import ModelLoadError

MANIFEST_FILE = "manifest.json"
SCHEMA_VERSION = 2
TASKS = ("text-embedding", "text-classification", "tensor")
TEXT_TASKS = ("text-embedding", "text-classification")
# What each graph input of a text model carries; the text layer builds one array per role.
FEED_ROLES = ("ids", "mask", "type_ids")
POOLINGS = ("mean", "cls", "none")
ACTIVATIONS = ("softmax", "sigmoid", "none")


class TensorSpec(msgspec.Struct, frozen=True):
    """One input or output. `shape` holds ints for fixed axes and names for dynamic ones."""

    name: str
    dtype: str
    shape: tuple[int | str, ...]


class FileEntry(msgspec.Struct, frozen=True):
    sha256: str  # the file's identity (model_id, cache keys)
    bytes: int
    # XXH3-128 of the file, which init checks: ~25x faster than sha256 (0.6 vs 16 ms for MiniLM's
    # 23 MB), and as good against what the check is for, a corrupted or mixed-up model directory.
    # (Whoever can rewrite the files can rewrite this manifest too; on AWS the layer is immutable.)
    # None in manifests written before it: init then checks sha256, in a thread.
    xxh3: str | None = None


class TextSpec(msgspec.Struct, frozen=True):
    """How text becomes the graph's input tensors; shared by every text task.

    `feeds` maps each role (FEED_ROLES) to the graph input that takes it: BERT has all three,
    RoBERTa, XLM-R, MPNet and DistilBERT have no `type_ids`. The build reads the names from the
    graph and `pad_id` from the tokenizer, so nothing here assumes BERT's names or `[PAD]` = 0."""

    feeds: dict[str, str]
    tokenizer: str = "tokenizer.json"
    # Tables compiled from `tokenizer` for BERT WordPiece (tasks/wordpiece.py): the same ids, without
    # loading the tokenizers library at init. None: the library is used.
    wordpiece: str | None = None
    max_tokens: int = 512
    pad_id: int = 0
    pairs: bool = False  # each input is a (text, text_pair), as cross-encoders take them


class EmbeddingSpec(msgspec.Struct, frozen=True):
    """`text-embedding`: which output, how token states become one vector per text.

    `pooling` is `mean` (over the attention mask), `cls` (the first token) or `none` (the output
    already holds one vector per text, e.g. an ONNX file exported with its pooling inside)."""

    output: str
    dimensions: int
    pooling: str = "mean"
    normalize: bool = True


class ClassificationSpec(msgspec.Struct, frozen=True):
    """`text-classification`: sequence classifiers and cross-encoders (TextSpec.pairs).

    `output` holds one logit per label, [batch, len(labels)]; `activation` turns logits into scores:
    softmax (one label per text), sigmoid (multi-label, and one-logit cross-encoders) or none."""

    output: str
    labels: tuple[str, ...]
    activation: str = "softmax"


class SessionHints(msgspec.Struct, frozen=True):
    """How ONNX Runtime should load the file. `disabled` means the graph was optimized offline."""

    graph_optimization: str = "all"


class Manifest(msgspec.Struct, frozen=True):
    name: str
    version: str
    task: str
    model_file: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    files: dict[str, FileEntry]
    schema_version: int = SCHEMA_VERSION
    text: TextSpec | None = None  # text tasks
    embedding: EmbeddingSpec | None = None  # text-embedding
    classification: ClassificationSpec | None = None  # text-classification
    aliases: tuple[str, ...] = ()
    session: SessionHints = msgspec.field(default_factory=SessionHints)
    source: dict[str, Any] = msgspec.field(default_factory=dict)
    tools: dict[str, str] = msgspec.field(default_factory=dict)
    build: dict[str, Any] = msgspec.field(default_factory=dict)

    @property
    def model_id(self) -> str:
        """Identity of the exact bytes served: changes whenever any file changes."""
        digest = hashlib.sha256(f"{self.name}\n{self.version}\n".encode())
        for name in sorted(self.files):
            digest.update(f"{name} {self.files[name].sha256}\n".encode())
        return digest.hexdigest()

    def names(self) -> tuple[str, ...]:
        """Every name a client may use for this model."""
        return (self.name, *self.aliases)


def load(model_dir: Path) -> Manifest:
    """Read and check the manifest's own consistency (not the files: see `verify`)."""
    path = model_dir / MANIFEST_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ModelLoadError(
            f"no {MANIFEST_FILE} in {model_dir}: point PREHEAT_MODEL_DIR at a directory written by "
            "`preheat build` (the model layer mounts at /opt/model)"
        ) from None
    try:
        manifest = msgspec.json.decode(raw, type=Manifest)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ModelLoadError(f"{path} is not a valid manifest: {exc}") from None
    if manifest.schema_version != SCHEMA_VERSION:
        raise ModelLoadError(
            f"{path} is manifest schema {manifest.schema_version}, this runtime reads {SCHEMA_VERSION}: "
            "rebuild the model directory with `preheat build`"
        )
    problem = _inconsistency(manifest)
    if problem is not None:
        raise ModelLoadError(f"{path}: {problem}")
    for name in manifest.files:
        pure = PurePosixPath(name)
        if pure.is_absolute() or ".." in pure.parts:
            raise ModelLoadError(f"{path}: file name {name!r} must be relative to the model directory")
    required = [manifest.model_file]
    if manifest.text is not None:
        required += [manifest.text.tokenizer] + ([manifest.text.wordpiece] if manifest.text.wordpiece else [])
    for name in required:
        if name not in manifest.files:
            raise ModelLoadError(f"{path}: {name} is used but has no checksum in 'files'")
    return manifest


def _inconsistency(manifest: Manifest) -> str | None:
    """What makes the task's sections disagree with each other or with the graph, or None."""
    if manifest.task not in TASKS:
        return f"task {manifest.task!r} is not one of {', '.join(TASKS)}"
    section = {"text-embedding": manifest.embedding, "text-classification": manifest.classification}
    if manifest.task in TEXT_TASKS:
        wanted = "embedding" if manifest.task == "text-embedding" else "classification"
        if manifest.text is None or section[manifest.task] is None:
            return f"a {manifest.task} manifest needs 'text' and '{wanted}' sections"
    inputs = {spec.name for spec in manifest.inputs}
    outputs = {spec.name for spec in manifest.outputs}
    text = manifest.text
    if text is not None:
        unknown = sorted(set(text.feeds) - set(FEED_ROLES))
        if unknown:
            return f"text.feeds has role(s) {', '.join(unknown)}; roles are {', '.join(FEED_ROLES)}"
        if "ids" not in text.feeds:
            return "text.feeds needs the 'ids' role (the graph input that takes token ids)"
        missing = sorted(set(text.feeds.values()) - inputs)
        if missing:
            return f"text.feeds names {', '.join(missing)}, which are not among the inputs"
        unfed = sorted(inputs - set(text.feeds.values()))
        if unfed:
            return f"input(s) {', '.join(unfed)} have no role in text.feeds: a text task feeds every input"
        if text.max_tokens < 2:
            return f"text.max_tokens must be at least 2, got {text.max_tokens}"
    embedding = manifest.embedding
    if embedding is not None:
        if embedding.output not in outputs:
            return f"embedding.output {embedding.output!r} is not among the outputs"
        if embedding.pooling not in POOLINGS:
            return f"embedding.pooling {embedding.pooling!r} is not one of {', '.join(POOLINGS)}"
        if embedding.dimensions < 1:
            return f"embedding.dimensions must be positive, got {embedding.dimensions}"
    classification = manifest.classification
    if classification is not None:
        if classification.output not in outputs:
            return f"classification.output {classification.output!r} is not among the outputs"
        if classification.activation not in ACTIVATIONS:
            return f"classification.activation {classification.activation!r} is not one of {', '.join(ACTIVATIONS)}"
        if not classification.labels or len(set(classification.labels)) != len(classification.labels):
            return "classification.labels must be a non-empty list of distinct names"
    return None


def dumps(manifest: Manifest) -> bytes:
    return msgspec.json.format(msgspec.json.encode(manifest), indent=2) + b"\n"


def file_entry(path: Path) -> FileEntry:
    return FileEntry(sha256=sha256_file(path), bytes=path.stat().st_size, xxh3=xxh3_file(path))


def xxh3_file(path: Path) -> str:
    """XXH3-128 of a file, over a memory map (~40 GB/s with AVX2)."""
    import xxhash  # a runtime dependency; imported here so that reading a manifest does not need it

    with path.open("rb") as handle:
        if path.stat().st_size == 0:
            return xxhash.xxh3_128_hexdigest(b"")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            return xxhash.xxh3_128_hexdigest(mapped)


def sha256_file(path: Path) -> str:
    """sha256 of a file in one call over a memory map: hashlib releases the GIL for the whole file,
    so this overlaps with ONNX Runtime's session creation when run in a thread."""
    with path.open("rb") as handle:
        size = path.stat().st_size
        if size == 0:
            return hashlib.sha256(b"").hexdigest()
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            return hashlib.sha256(mapped).hexdigest()


def fast_to_verify(manifest: Manifest) -> bool:
    """Whether every file has an XXH3 checksum (init then verifies them at once, in ~1 ms)."""
    return all(entry.xxh3 is not None for entry in manifest.files.values())


def verify(model_dir: Path, manifest: Manifest) -> None:
    """Every file listed must exist with the recorded size and checksum (XXH3 where the manifest has
    it, else sha256); raise naming the first that does not."""
    for name, entry in manifest.files.items():
        path = model_dir / name
        rebuild = "rebuild it with `preheat build` (or redeploy the model layer)"
        if not path.is_file():
            raise ModelLoadError(f"model file {name} is missing from {model_dir}: {rebuild}")
        size = path.stat().st_size
        if size != entry.bytes:
            raise ModelLoadError(
                f"model file {name} in {model_dir} is {size} bytes, the manifest says {entry.bytes} "
                f"(truncated or replaced): {rebuild}"
            )
        kind, expected = ("xxh3", entry.xxh3) if entry.xxh3 is not None else ("sha256", entry.sha256)
        actual = xxh3_file(path) if entry.xxh3 is not None else sha256_file(path)
        if actual != expected:
            raise ModelLoadError(
                f"model file {name} in {model_dir} does not match its manifest: {kind} {actual[:12]}…, "
                f"expected {expected[:12]}… (corrupted or changed after the build): {rebuild}"
            )
