"""What a Lambda execution environment (scripts/twin/instance.py) and a SageMaker container
(scripts/twin/sagemaker_container.py) have in common: a child process serving one request at a
time, its life cycle state, its output read line by line, and how it is ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import signal
import time
from collections.abc import Callable

LINE_LIMIT = 1024 * 1024


class State(enum.Enum):
    STARTING = "starting"
    IDLE = "idle"
    BUSY = "busy"
    DEAD = "dead"


def max_memory_mb(pid: int) -> int | None:
    """Peak resident memory of the process (VmHWM), as Lambda's `Max Memory Used`."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return -(-int(line.split()[1]) // 1024)
    except (OSError, ValueError, IndexError):
        return None
    return None


def exit_description(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"signal: {signal.Signals(-returncode).name.removeprefix('SIG').lower()}"
        except ValueError:
            return f"signal: {-returncode}"
    return f"exit status {returncode}"


async def pump_lines(stream: asyncio.StreamReader, captured: list[str], on_line: Callable[[str], None]) -> None:
    """A child's stdout, line by line, into `captured` (bounded) and `on_line`, until it closes.
    Shared by Lambda instances and SageMaker containers."""
    while True:
        try:
            raw = await stream.readline()
        except ValueError:  # a line longer than the limit: take it in pieces
            raw = await stream.read(LINE_LIMIT)
        if not raw:
            return
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        captured.append(line)
        if len(captured) > 2000:
            del captured[:1000]
        on_line(line)


def kill(process: asyncio.subprocess.Process | None) -> None:
    """No grace, as Lambda and SageMaker give none to a reaped or failed environment."""
    if process is not None and process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()


async def settle(tasks: list[asyncio.Task[None]]) -> None:
    """Give a stopped child's reader tasks a moment to drain."""
    for task in tasks:
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(task), 1.0)


class WorkerProcess:
    """The state a warm pool (scripts/twin/warm_pool.py) reads; `kind` is on-demand or the
    platform's provisioned kind."""

    provisioned_kind = "provisioned"

    def __init__(self, kind: str, on_line: Callable[[str], None]) -> None:
        self.kind = kind
        self.state = State.STARTING
        self.invocations = 0
        self.last_used = time.monotonic()
        self.retiring = False  # provisioned concurrency lowered or the pool reset: stop after the request
        self.pid = 0
        self.captured: list[str] = []  # recent output lines
        self._on_line = on_line
        self._process: asyncio.subprocess.Process | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def provisioned(self) -> bool:
        return self.kind == self.provisioned_kind

    @property
    def process_exited(self) -> bool:
        return self._process is not None and self._process.returncode is not None

    def max_memory_mb(self) -> int | None:
        return max_memory_mb(self.pid) if self.pid else None

    def release(self) -> None:
        if self.state is State.BUSY:
            self.state = State.IDLE
            self.last_used = time.monotonic()

    async def _read_output(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        await pump_lines(self._process.stdout, self.captured, self._on_line)
