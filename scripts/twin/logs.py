"""Each function's logs: its instances' stdout and the platform's START/END/REPORT lines.

Written to `<state_dir>/logs/<function>.log` (one line per event, prefixed with the log stream), sent
to CloudWatch Logs group `/aws/lambda/<function>` in moto, and EMF lines turned into metrics there.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import IO, Protocol

from scripts.twin import emf


class InstanceLike(Protocol):
    log_stream: str


class FunctionLogs:
    def __init__(self, function: str, directory: Path, shipper: emf.Shipper | None) -> None:
        self.function = function
        self.group = f"/aws/lambda/{function}"
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{function}.log"
        self._file: IO[str] = self.path.open("a", encoding="utf-8", buffering=1)
        self._shipper = shipper
        self.emf_lines = 0

    def line(self, instance: InstanceLike, text: str) -> None:
        """A line the function printed."""
        self._write(instance.log_stream, text)
        entries = emf.parse(text)
        if entries:
            self.emf_lines += 1
            if self._shipper is not None:
                for entry in entries:
                    self._shipper.metric(entry)

    def platform(self, instance: InstanceLike, text: str) -> None:
        """A line Lambda itself writes (START, END, REPORT, INIT_REPORT)."""
        self._write(instance.log_stream, text)

    def _write(self, stream: str, text: str) -> None:
        now_ms = int(time.time() * 1000)
        self._file.write(f"[{stream}] {text}\n")
        if self._shipper is not None:
            self._shipper.log(emf.LogEvent(self.group, stream, now_ms, text))

    def close(self) -> None:
        self._file.close()
