"""Init phases: how long each step of this instance's init took, written once as one log line.

The line goes to stdout, so it lands in CloudWatch Logs beside Lambda's own REPORT line (whose `Init
Duration` covers the interpreter and the runtime client too) and in the twin's logs alike;
`preheat bench coldstart --phases` reads both from there. A mark is one `perf_counter()` call and a
list append; the line is written once, after init. Standard library only: the floor baseline uses
it too, so both sides are measured the same way.
"""

from __future__ import annotations

import json
import sys
import time

MESSAGE = "init phases"


class InitPhases:
    """`mark(name)` closes the phase that started at the previous mark (or at `started`)."""

    __slots__ = ("_last", "beside", "marks", "started")

    def __init__(self, started: float | None = None) -> None:
        self.started = time.perf_counter() if started is None else started
        self._last = self.started
        self.marks: list[tuple[str, float]] = []
        self.beside: list[tuple[str, float]] = []

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.marks.append((name, now - self._last))
        self._last = now

    def add(self, name: str, seconds: float) -> None:
        """Work that ran beside the marked phases (in a thread): recorded apart, not in the sequence."""
        self.beside.append((name, seconds))

    def line(self, service: str) -> str:
        return json.dumps(
            {
                "level": "INFO",
                "message": MESSAGE,
                "service": service,
                # From the first mark's start to the last mark: the part of INIT this process's
                # handler module accounts for (Lambda's Init Duration minus this is the runtime's own).
                "module_ms": round((self._last - self.started) * 1000, 3),
                "phases_ms": {name: round(seconds * 1000, 3) for name, seconds in self.marks},
                "beside_ms": {name: round(seconds * 1000, 3) for name, seconds in self.beside},
            },
            separators=(",", ":"),
        )

    def emit(self, service: str) -> None:
        sys.stdout.write(self.line(service) + "\n")  # awslambdaric makes stdout unbuffered
