"""Starting and stopping a twin from tests: its own state directory, free ports, always stopped."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from scripts.twin import state as twin_state
from scripts.twin.client import TwinClient
from scripts.twin.config import TwinConfig

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


@contextlib.contextmanager
def running(config: TwinConfig) -> Iterator[TwinClient]:
    state, process = twin_state.start(config, cwd=ROOT, timeout=120)
    try:
        yield TwinClient(state)
    finally:
        twin_state.stop_pid(state.pid)
        with contextlib.suppress(Exception):
            process.wait(10)


def wait_for(
    check: Callable[[], T | None], timeout: float = 30.0, interval: float = 0.1, what: str = ""
) -> T:
    """Poll `check` until it returns something truthy; fail the test naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or check} (last: {last!r})")
