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
TASKS = ("text-embedding", "tensor")


class TensorSpec(msgspec.Struct, frozen=True):
    """One input or output. `shape` holds ints for fixed axes and names for dynamic ones."""

    name: str
    dtype: str
    shape: tuple[int | str, ...]


class FileEntry(msgspec.Struct, frozen=True):
    sha256: str
    bytes: int


class TextSpec(msgspec.Struct, frozen=True):
    """How a text-embedding model turns text into tensors and tensors into one vector per text."""

    tokenizer: str = "tokenizer.json"
    # Tables compiled from `tokenizer` for BERT WordPiece (tasks/wordpiece.py): the same ids, without
    # loading the tokenizers library at init. None: the library is used.
    wordpiece: str | None = None
    max_tokens: int = 256
    pooling: str = "mean"
    normalize: bool = True
    dimensions: int = 384
    output: str = "last_hidden_state"


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
    schema_version: int = 1
    text: TextSpec | None = None
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
    if manifest.task not in TASKS:
        raise ModelLoadError(f"{path}: task {manifest.task!r} is not one of {', '.join(TASKS)}")
    if manifest.task == "text-embedding" and manifest.text is None:
        raise ModelLoadError(f"{path}: a text-embedding manifest needs a 'text' section")
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


def dumps(manifest: Manifest) -> bytes:
    return msgspec.json.format(msgspec.json.encode(manifest), indent=2) + b"\n"


def file_entry(path: Path) -> FileEntry:
    return FileEntry(sha256=sha256_file(path), bytes=path.stat().st_size)


def sha256_file(path: Path) -> str:
    """sha256 of a file in one call over a memory map: hashlib releases the GIL for the whole file,
    so this overlaps with ONNX Runtime's session creation when run in a thread."""
    with path.open("rb") as handle:
        size = path.stat().st_size
        if size == 0:
            return hashlib.sha256(b"").hexdigest()
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            return hashlib.sha256(mapped).hexdigest()


def verify(model_dir: Path, manifest: Manifest) -> None:
    """Every file listed must exist with the recorded size and sha256; raise naming the first that does not."""
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
        actual = sha256_file(path)
        if actual != entry.sha256:
            raise ModelLoadError(
                f"model file {name} in {model_dir} does not match its manifest: sha256 {actual[:12]}…, "
                f"expected {entry.sha256[:12]}… (corrupted or changed after the build): {rebuild}"
            )
