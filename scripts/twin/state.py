"""A running twin, as other commands find it: `<state_dir>/twin.json`, and starting/stopping the
twin process in the background.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scripts.twin.config import TwinConfig

STATE_FILE = "twin.json"
CONFIG_FILE = "twin-config.json"
LOG_FILE = "twin.log"


@dataclass(frozen=True)
class TwinState:
    pid: int
    started_at: float
    state_dir: str
    endpoint: str  # the AWS endpoint: Invoke + concurrency APIs, everything else forwarded to moto
    moto: str
    region: str
    ca: str  # the CA that signed the Function URLs' certificate
    log_dir: str
    functions: dict[str, dict[str, Any]] = field(default_factory=dict)
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)  # SageMaker Serverless, by name
    tables: list[str] = field(default_factory=list)  # DynamoDB tables the twin created in moto

    def url(self, function: str) -> str:
        url = self.functions.get(function, {}).get("url")
        if not url:
            raise KeyError(f"the twin has no Function URL for {function!r} (functions: {', '.join(self.functions)})")
        return str(url)

    def url_auth(self, function: str) -> str:
        """The Function URL's AuthType (AWS_IAM unless the function says NONE)."""
        return str(self.functions.get(function, {}).get("url_auth", "AWS_IAM"))

    def alive(self) -> bool:
        return pid_alive(self.pid)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours has exited but still answers signal 0.
    with contextlib.suppress(OSError):
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            if stat.read().split(")")[-1].split()[0] == "Z":
                return False
    return True


def write_state(path: Path, state: TwinState) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(state), indent=2))
    tmp.replace(path)


def read_state(state_dir: Path) -> TwinState | None:
    """The running twin in `state_dir`, or None (no state file, or its process is gone)."""
    try:
        data = json.loads((state_dir / STATE_FILE).read_text())
        state = TwinState(**data)
    except (FileNotFoundError, ValueError, TypeError):
        return None
    return state if state.alive() else None


class TwinStartError(RuntimeError):
    pass


def start(
    config: TwinConfig, *, cwd: Path | None = None, timeout: float = 90.0, detach: bool = False
) -> tuple[TwinState, subprocess.Popen[bytes]]:
    """Start the twin in the background and wait until it is ready. A detached twin (`preheat up`)
    outlives this process; otherwise it stops when this process is gone, even if killed. Raises
    TwinStartError with the end of its log if it fails."""
    state_dir = config.state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    config_path = state_dir / CONFIG_FILE
    config_path.write_text(json.dumps(config.to_dict(), indent=2))
    with contextlib.suppress(FileNotFoundError):
        (state_dir / STATE_FILE).unlink()
    log_path = state_dir / LOG_FILE
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "scripts.twin.server", "--config", str(config_path),
             *([] if detach else ["--owner", str(os.getpid())])],
            cwd=cwd or Path.cwd(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = read_state(state_dir)
        if state is not None and state.pid == process.pid:
            return state, process
        if process.poll() is not None:
            raise TwinStartError(f"the twin exited with status {process.returncode}:\n{tail(log_path)}")
        time.sleep(0.05)
    stop_pid(process.pid)
    raise TwinStartError(f"the twin was not ready within {timeout:.0f} s:\n{tail(log_path)}")


def stop_pid(pid: int, timeout: float = 15.0) -> bool:
    """SIGTERM, then SIGKILL after `timeout`; True if the process is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    return not pid_alive(pid)


def stop(state_dir: Path) -> TwinState | None:
    """Stop the twin running in `state_dir`; returns its state, or None if none was running."""
    state = read_state(state_dir)
    if state is None:
        with contextlib.suppress(FileNotFoundError):
            (state_dir / STATE_FILE).unlink()
        return None
    stop_pid(state.pid)
    with contextlib.suppress(FileNotFoundError):
        (state_dir / STATE_FILE).unlink()
    return state


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"(no log at {path})"
