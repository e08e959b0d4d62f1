"""One SageMaker Serverless container, locally: a `serve` process (functions/sagemaker/serve.py) on
its own port, health-checked on /ping the way SageMaker does before it routes a request to it.

Setup (SageMaker's ModelSetupTime) is measured from spawn to the first `/ping` that answers 200.
A container that exits, or does not pass `/ping` in time, fails only the request waiting for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from scripts.twin import http11
from scripts.twin.http11 import Response
from scripts.twin.moto import free_port
from scripts.twin.worker import LINE_LIMIT, State, WorkerProcess, exit_description, kill, settle

ON_DEMAND = "on-demand"
PROVISIONED = "provisioned"
PING_INTERVAL_S = 0.01
PING_TIMEOUT_S = 2.0  # SageMaker's limit for one /ping answer


class ContainerError(Exception):
    """The container failed: it exited, overran a deadline, or never became healthy."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # exited | timeout | unhealthy
        self.message = message


@dataclass(frozen=True)
class ContainerLaunch:
    """How every container starts, whatever its endpoint."""

    host: str
    python: str
    code_dir: Path
    base_env: Mapping[str, str]  # PATH, region, AWS endpoint of the twin, credentials
    wrapper: tuple[str, ...] = ()


@dataclass(frozen=True)
class Setup:
    listening_ms: float  # spawn -> the socket accepts a connection
    first_ping_ms: float  # spawn -> the first /ping answer of any status
    ready_ms: float  # spawn -> /ping 200 (ModelSetupTime)


class Container(WorkerProcess):
    provisioned_kind = PROVISIONED

    def __init__(
        self,
        endpoint: str,
        variant: str,
        kind: str,
        env: Mapping[str, str],
        launch: ContainerLaunch,
        on_line: Callable[[Container, str], None],
    ) -> None:
        super().__init__(kind, lambda line: on_line(self, line))
        self.endpoint = endpoint
        self.variant = variant
        self.id = uuid.uuid4().hex[:16]
        self.log_stream = f"{variant}/{self.id}"
        self.env = dict(env)
        self.launch = launch
        self.setup: Setup | None = None
        self.port = 0

    @property
    def alive(self) -> bool:
        return self.state is not State.DEAD and (self._process is None or self._process.returncode is None)

    async def start(self, timeout_s: float) -> Setup:
        """Spawn `serve` and wait until /ping answers 200; raises ContainerError."""
        self.port = free_port(self.launch.host)
        env = {**self.launch.base_env, **self.env, "SAGEMAKER_BIND_TO_PORT": str(self.port),
               "PREHEAT_BIND_HOST": self.launch.host}
        command = [*self.launch.wrapper, self.launch.python, "-m", "functions.sagemaker.serve", "serve"]
        spawned = time.perf_counter()
        try:
            self._process = await asyncio.create_subprocess_exec(
                *command, cwd=self.launch.code_dir, env=env, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, limit=LINE_LIMIT,
            )
        except OSError as exc:
            self.stop()
            raise ContainerError("exited", f"could not start {self.launch.python}: {exc}") from None
        self.pid = self._process.pid
        self._tasks = [asyncio.create_task(self._read_output())]
        listening = first_ping = None
        deadline = spawned + timeout_s
        while time.perf_counter() < deadline:
            if self._process.returncode is not None:
                await asyncio.sleep(0.05)  # let the last lines of its output land in `captured`
                self.stop()
                raise ContainerError(
                    "exited", f"the container exited ({exit_description(self._process.returncode)}) before passing "
                              f"/ping: {self.tail()}")
            if listening is None:  # the kernel accepts connections once `serve` listens, before it answers
                try:
                    _, writer = await asyncio.wait_for(asyncio.open_connection(self.launch.host, self.port), 1.0)
                    writer.close()
                    listening = time.perf_counter()
                except (OSError, TimeoutError):
                    await asyncio.sleep(PING_INTERVAL_S / 2)
                    continue
            try:
                reply = await http11.request(self.launch.host, self.port, "GET", "/ping", timeout=PING_TIMEOUT_S)
            except (OSError, TimeoutError):
                await asyncio.sleep(PING_INTERVAL_S)
                continue
            now = time.perf_counter()
            first_ping = first_ping or now
            if reply.status == 200:
                self.setup = Setup(_ms(listening, spawned), _ms(first_ping, spawned), _ms(now, spawned))
                self.state = State.IDLE
                self.last_used = time.monotonic()
                return self.setup
            await asyncio.sleep(PING_INTERVAL_S)
        self.stop()
        raise ContainerError("unhealthy", f"the container did not pass /ping within {timeout_s:.0f} s: {self.tail()}")

    async def invoke(self, body: bytes, headers: list[tuple[str, str]], timeout_s: float) -> Response:
        """POST /invocations; a crash or an overrun raises ContainerError and leaves this container dead."""
        self.state = State.BUSY
        self.invocations += 1
        try:
            return await http11.request(self.launch.host, self.port, "POST", "/invocations", headers=headers,
                                        body=body, timeout=timeout_s)
        except TimeoutError:
            self.stop()
            raise ContainerError("timeout", "Your invocation timed out while waiting for a response from container "
                                            f"{self.variant}. Review the latency metrics for each container in Amazon "
                                            "CloudWatch, resolve the issue, and try again.") from None
        except OSError as exc:
            await asyncio.sleep(0.05)
            code = self._process.returncode if self._process else None
            self.stop()
            why = exit_description(code) if code is not None else str(exc)
            raise ContainerError("exited", f"the container failed during the request ({why})") from None

    def tail(self, lines: int = 5) -> str:
        return " | ".join(self.captured[-lines:]) or "(no output)"

    def stop(self, *, graceful: bool = False) -> None:
        """Kill the container: SageMaker gives none any grace (`graceful` is for the pool's sake)."""
        self.state = State.DEAD
        kill(self._process)

    async def wait_closed(self, timeout: float = 5.0) -> None:
        if self._process is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._process.wait(), timeout)
        await settle(self._tasks)


def _ms(at: float, since: float) -> float:
    return round((at - since) * 1000, 3)
