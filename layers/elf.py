"""Just enough ELF to strip shared objects safely.

auditwheel grafts libraries into wheels with patchelf, whose layout `strip` can break ("ELF load
command address/offset not page-aligned" at import). A stripped copy is kept only if its loadable
segments are still aligned; otherwise the original stays."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

_PT_LOAD = 1


def is_elf(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == b"\x7fELF"


def load_segments_aligned(path: Path) -> bool:
    """True if every PT_LOAD segment satisfies offset ≡ vaddr (mod align), as the loader requires."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:  # 64-bit only; Lambda has no 32-bit targets
        return False
    endian = "<" if data[5] == 1 else ">"
    (phoff,) = struct.unpack_from(endian + "Q", data, 0x20)
    phentsize, phnum = struct.unpack_from(endian + "HH", data, 0x36)
    for i in range(phnum):
        p_type, _flags, offset, vaddr, _paddr, _filesz, _memsz, align = struct.unpack_from(
            endian + "IIQQQQQQ", data, phoff + i * phentsize
        )
        if p_type == _PT_LOAD and align > 1 and (offset - vaddr) % align != 0:
            return False
    return True


def strip(path: Path, tool: str) -> int:
    """Strip path in place if that is safe; return the bytes saved (0 when left alone)."""
    trial = path.with_name(path.name + ".strip-trial")
    shutil.copy2(path, trial)
    try:
        result = subprocess.run([tool, "--strip-unneeded", str(trial)], capture_output=True, text=True)
        before, after = path.stat().st_size, trial.stat().st_size
        if result.returncode != 0 or after >= before or not load_segments_aligned(trial):
            return 0
        trial.replace(path)
        return before - after
    finally:
        trial.unlink(missing_ok=True)
