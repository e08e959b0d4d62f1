"""Deterministic zip and tar.gz archives of build directories, and their sizes.

Same input, same bytes: entries sorted, timestamps fixed, modes normalised (Lambda keeps a zip's
modes, and files must be world-readable for the runtime's user)."""

from __future__ import annotations

import gzip
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold


@dataclass(frozen=True)
class Sizes:
    files: int
    unzipped: int
    zipped: int


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def unzipped_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in files_under(root))


def write_zip(root: Path, target: Path) -> Sizes:
    """Zip root's contents (not root itself) into target, as Lambda would unpack them into /opt."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    files = files_under(root)
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(root).as_posix(), date_time=_EPOCH)
            executable = path.stat().st_mode & 0o111
            info.external_attr = ((0o755 if executable else 0o644) | 0o100000) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with path.open("rb") as source, archive.open(info, "w") as sink:
                while chunk := source.read(1 << 20):
                    sink.write(chunk)
    tmp.replace(target)
    return Sizes(
        files=len(files), unzipped=sum(p.stat().st_size for p in files), zipped=target.stat().st_size
    )


def write_tar_gz(root: Path, target: Path) -> Sizes:
    """tar.gz of root's contents at the archive's top level (SageMaker extracts to /opt/ml/model)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    files = files_under(root)
    tmp = target.with_name(target.name + ".tmp")
    with tmp.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as zipped:
        with tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path in files:
                info = tarfile.TarInfo(path.relative_to(root).as_posix())
                info.size = path.stat().st_size
                info.mode = 0o644
                info.mtime = 0
                with path.open("rb") as source:
                    tar.addfile(info, source)
    tmp.replace(target)
    return Sizes(
        files=len(files), unzipped=sum(p.stat().st_size for p in files), zipped=target.stat().st_size
    )
