"""One execution environment: a process running the function through awslambdaric, with its own
Runtime API, Lambda's environment variables and the function's layers on its path.

INIT is measured as Lambda does: from spawn to the runtime's first GET /next (and every registered
extension's). A process that exits or overruns its timeout fails only the invocation it was running;
the pool replaces it.

Ending an environment follows Lambda's shutdown phase: without a registered extension the process is
killed at once; with one (internal extensions only: the twin runs no /opt/extensions processes), it
gets SIGTERM (and SHUTDOWN events for the extensions that asked), then SIGKILL after 500 ms, the
phase's limit for a function with internal extensions only. Crashes and timeouts kill at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from scripts.twin.config import FunctionSpec
from scripts.twin.runtime_api import InitError, Invocation, InvocationOutcome, RuntimeApi
from scripts.twin.worker import LINE_LIMIT, State, WorkerProcess, exit_description, kill, settle

ON_DEMAND = "on-demand"
PROVISIONED = "provisioned-concurrency"
SHUTDOWN_PHASE_S = 0.5  # Lambda's shutdown phase limit with internal extensions only


@dataclass(frozen=True)
class Launch:
    """What every instance is started with, whatever its function."""

    host: str
    region: str
    account_id: str
    gateway_url: str  # AWS_ENDPOINT_URL inside functions: their boto3 calls reach the twin and moto
    runtime_dir: Path  # awslambdaric and boto3, as Lambda's runtime provides them (isolated functions)
    python: str = sys.executable
    base_python: str = getattr(sys, "_base_executable", sys.executable)
    wrapper: tuple[str, ...] = ()  # e.g. setpriv --pdeathsig KILL --: instances die with the twin

    @staticmethod
    def wrapper_for_this_machine() -> tuple[str, ...]:
        setpriv = shutil.which("setpriv")
        return (setpriv, "--pdeathsig", "KILL", "--") if setpriv else ()


class FunctionError(Exception):
    """The environment failed the invocation (crash, timeout, init failure): Lambda-shaped payload."""

    def __init__(self, error_type: str, message: str, payload: bytes | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.payload = payload or json.dumps({"errorType": error_type, "errorMessage": message}).encode()


def resolve_opt(value: str, layers: tuple[Path, ...]) -> str:
    """Map a path under /opt to the layer directory that provides it (later layers win, as in Lambda)."""
    if value != "/opt" and not value.startswith("/opt/"):
        return value
    relative = value[len("/opt/") :] if value.startswith("/opt/") else ""
    for layer in reversed(layers):
        candidate = layer / relative
        if candidate.exists():
            return str(candidate)
    return value


def environment(
    spec: FunctionSpec,
    *,
    version: str,
    init_type: str,
    runtime_api: str,
    log_stream: str,
    launch: Launch,
) -> dict[str, str]:
    """The environment Lambda gives a python runtime, then the function's own variables."""
    paths = [str(spec.code_dir)]
    paths += [str(layer / "python") for layer in spec.layers if (layer / "python").is_dir()]
    if spec.isolated:
        paths.append(str(launch.runtime_dir))
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PYTHONPATH": os.pathsep.join(paths),
        "LAMBDA_TASK_ROOT": str(spec.code_dir),
        "LAMBDA_RUNTIME_DIR": str(launch.runtime_dir),
        "_HANDLER": spec.handler,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python{sys.version_info.major}.{sys.version_info.minor}",
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_VERSION": version,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
        "AWS_LAMBDA_INITIALIZATION_TYPE": init_type,
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_REGION": launch.region,
        "AWS_DEFAULT_REGION": launch.region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_ENDPOINT_URL": launch.gateway_url,
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
        "_AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1",
        "_AWS_XRAY_DAEMON_PORT": "2000",
    }
    for key, value in spec.env.items():
        env[key] = resolve_opt(value, spec.layers)
    return env


def log_stream_name(version: str, instance_id: str) -> str:
    return f"{dt.datetime.now(dt.UTC):%Y/%m/%d}/[{version}]{instance_id}"


class Instance(WorkerProcess):
    provisioned_kind = PROVISIONED

    def __init__(
        self,
        spec: FunctionSpec,
        version: str,
        init_type: str,
        launch: Launch,
        on_line: Callable[[Instance, str], None],
    ) -> None:
        super().__init__(init_type, lambda line: on_line(self, line))
        self.spec = spec
        self.version = version
        self.id = uuid.uuid4().hex
        self.launch = launch
        self.log_stream = log_stream_name(version, self.id)
        self.init_ms: float | None = None
        self.api = RuntimeApi(spec.name, version, spec.handler)
        # `captured`: this invocation's log lines (and INIT's, for the first)
        self._exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    @property
    def init_type(self) -> str:
        return self.kind

    @property
    def alive(self) -> bool:
        """Not ended, and its process still running (one that died while idle is noticed here, before
        the next reap; SageMaker containers answer the same way)."""
        return self.state is not State.DEAD and not self._exited.done()

    async def start(self, init_timeout_s: float) -> float:
        """Spawn and wait for INIT to finish; returns INIT in ms. Raises FunctionError if it fails."""
        await self.api.start(self.launch.host)
        env = environment(
            self.spec,
            version=self.version,
            init_type=self.init_type,
            runtime_api=f"{self.launch.host}:{self.api.port}",
            log_stream=self.log_stream,
            launch=self.launch,
        )
        python = self.launch.base_python if self.spec.isolated else self.launch.python
        flags = ["-S"] if self.spec.isolated else []
        command = [*self.launch.wrapper, python, *flags, "-m", "awslambdaric", self.spec.handler]
        spawned = time.perf_counter()
        try:
            self._process = await asyncio.create_subprocess_exec(
                *command,
                cwd=self.spec.code_dir,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                limit=LINE_LIMIT,
            )
        except OSError as exc:
            self.stop()
            raise FunctionError("Runtime.InvalidEntrypoint", f"could not start {python}: {exc}") from None
        self.pid = self._process.pid
        self._tasks = [
            asyncio.create_task(self._read_output()),
            asyncio.create_task(self._watch()),
        ]
        waiters: set[asyncio.Future[float] | asyncio.Future[InitError] | asyncio.Future[int]] = {
            self.api.ready, self.api.init_error, self._exited,
        }
        done, _ = await asyncio.wait(waiters, timeout=init_timeout_s, return_when=asyncio.FIRST_COMPLETED)
        if self.api.ready in done and not self.api.init_error.done():
            self.init_ms = (self.api.ready.result() - spawned) * 1000
            self.state = State.IDLE
            self.last_used = time.monotonic()
            return self.init_ms
        if self.api.init_error.done() and not self.api.init_error.cancelled():
            error = self.api.init_error.result()
            self.stop()
            raise FunctionError(error.error_type, _message_of(error.body, error.error_type), error.body)
        if self._exited.done():
            self.stop()
            raise FunctionError(
                "Runtime.ExitError",
                f"Error: Runtime exited with error: {exit_description(self._exited.result())} during INIT",
            )
        self.stop()
        raise FunctionError("Sandbox.Timedout", f"Error: INIT timed out after {init_timeout_s:.2f} seconds")

    async def invoke(self, invocation: Invocation, timeout_s: float) -> InvocationOutcome:
        """Run one invocation; a crash or timeout raises FunctionError (and leaves this instance dead)."""
        self.state = State.BUSY
        self.invocations += 1
        if self.invocations > 1:
            self.captured = []
        self.api.submit(invocation)
        waiters: set[asyncio.Future[InvocationOutcome] | asyncio.Future[int]] = {invocation.result, self._exited}
        await asyncio.wait(waiters, timeout=timeout_s,
                           return_when=asyncio.FIRST_COMPLETED)
        if invocation.result.done():
            return invocation.result.result()
        if self._exited.done():
            self.stop()
            raise FunctionError(
                "Runtime.ExitError",
                f"RequestId: {invocation.request_id} Error: Runtime exited with error: "
                f"{exit_description(self._exited.result())}",
            )
        self.stop()
        raise FunctionError(
            "Sandbox.Timedout",
            f"RequestId: {invocation.request_id} Error: Task timed out after {timeout_s:.2f} seconds",
        )

    def stop(self, *, graceful: bool = False) -> None:
        """End the environment. `graceful` (reaped, reset, retired, the twin stopping): Lambda's
        shutdown phase if an extension is registered, else killed at once, as failed ones are."""
        process = self._process
        alive = process is not None and process.returncode is None and self.state is not State.DEAD
        self.state = State.DEAD
        if graceful and alive and self.api.extensions:
            assert process is not None
            loop = asyncio.get_running_loop()
            self.api.shut_down(int((time.time() + SHUTDOWN_PHASE_S) * 1000))
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            loop.call_later(SHUTDOWN_PHASE_S, kill, process)
            self._exited.add_done_callback(lambda _: self.api.close())
            return
        kill(process)
        self.api.close()

    async def wait_closed(self, timeout: float = 5.0) -> None:
        if self._process is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._exited), timeout)
        await settle(self._tasks)

    @property
    def exited(self) -> asyncio.Future[int]:
        return self._exited

    @property
    def process_exited(self) -> bool:
        return self._exited.done()

    async def _watch(self) -> None:
        assert self._process is not None
        code = await self._process.wait()
        if not self._exited.done():
            self._exited.set_result(code)


def _message_of(body: bytes, fallback: str) -> str:
    try:
        data = json.loads(body)
        if isinstance(data, Mapping):
            return str(data.get("errorMessage") or fallback)
    except ValueError:
        pass
    return fallback
