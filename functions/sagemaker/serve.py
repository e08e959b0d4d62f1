"""`serve`: the SageMaker container's entry (`docker run IMAGE serve`).

Order matters for SageMaker's contract: the listening socket is bound first (SageMaker may connect
from the moment the container starts; the kernel queues those connections), then uvicorn starts
answering `/ping` with 503 while the model loads in a thread, then `/ping` answers 200 once the
model has answered its warm-up inference (functions.inference.runtime.Runtime.load). The app is the
same FastAPI app the rest of preheat serves (functions.inference.app.create_app).

Settings: SAGEMAKER_BIND_TO_PORT (default 8080), SAGEMAKER_MODEL_SERVER_WORKERS (default 1: SageMaker
Serverless sends one request at a time per container), SAGEMAKER_MODEL_SERVER_TIMEOUT (seconds,
default 60); PREHEAT_MODEL_DIR defaults to /opt/ml/model (where SageMaker extracts model.tar.gz; an
image with the model baked in sets it), PREHEAT_MAX_REQUEST_BYTES to 4 MiB (Serverless's limit).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from typing import Any

from functions.errors import ConfigError
from functions.sagemaker.environment import ContainerSettings

USAGE = "usage: serve   (SageMaker runs the container as `docker run IMAGE serve`)"


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "serve":
        args = args[1:]
    if args:
        print(f"unexpected arguments {args!r}\n{USAGE}", file=sys.stderr)
        return 2
    try:
        container = ContainerSettings.from_env()
    except ConfigError as exc:
        print(f"serve: {exc}", file=sys.stderr)
        return 2
    container.apply_defaults(os.environ)
    try:
        sock = listen(container.host, container.port)
    except OSError as exc:
        print(f"serve: cannot listen on {container.host}:{container.port}: {exc}", file=sys.stderr)
        return 1
    _log("listening", host=container.host, port=container.port, workers=container.workers,
         ms=round((time.perf_counter() - started) * 1000, 1))
    if container.workers > 1:
        return supervise(sock, container, started)
    return run_worker(sock, container, started)


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run_worker(sock: socket.socket, container: ContainerSettings, started: float) -> int:
    import uvicorn

    from functions.sagemaker.starting import ASGIApp, StartingApp

    server: uvicorn.Server | None = None
    failed: list[BaseException] = []

    def load() -> ASGIApp:
        from functions.inference.app import create_app
        from functions.inference.runtime import Runtime

        runtime = Runtime.load(started=started)
        app = create_app(runtime)
        _log("ready", model=runtime.manifest.name, model_id=runtime.manifest.model_id,
             model_dir=str(runtime.settings.model_dir), init_ms=round(runtime.init_ms, 1),
             ready_ms=round((time.perf_counter() - started) * 1000, 1))
        return app

    def on_failure(exc: BaseException) -> None:
        # The container exits: SageMaker reports the failed health check and points at this log.
        failed.append(exc)
        _log("model load failed", level="ERROR", error=f"{type(exc).__name__}: {exc}")
        if server is not None:
            server.should_exit = True

    app = StartingApp(load, timeout_s=container.timeout_s, on_failure=on_failure, started=started)
    config = uvicorn.Config(
        app, interface="asgi3", lifespan="on", log_level="warning", access_log=False,
        timeout_keep_alive=75,  # longer than the front end's idle timeout: it closes first, never us mid-request
    )
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    return 1 if failed else 0


def supervise(sock: socket.socket, container: ContainerSettings, started: float) -> int:
    """N worker processes on the one socket, each with its own model; the container stops with any."""
    if not os.environ.get("PREHEAT_THREADS", "").strip():
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        os.environ["PREHEAT_THREADS"] = str(max(1, cpus // container.workers))
    children: list[int] = []
    for _ in range(container.workers):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            os._exit(run_worker(sock, container, started))
        children.append(pid)
    sock.close()

    stopping: list[int] = []

    def forward(signum: int, _frame: Any) -> None:
        stopping.append(signum)
        for child in children:
            try:
                os.kill(child, signum)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = 0
    while children:
        pid, status = os.wait()
        if pid not in children:
            continue
        children.remove(pid)
        exit_code = os.waitstatus_to_exitcode(status)
        clean = exit_code == 0 or (stopping and exit_code in (-signal.SIGTERM, -signal.SIGINT))
        if not clean:
            code = 1
            if children and not stopping:  # one worker died: the container stops, SageMaker replaces it
                forward(signal.SIGTERM, None)
    return code


def _log(message: str, level: str = "INFO", **fields: Any) -> None:
    # One JSON line per event on stdout: SageMaker sends it to CloudWatch Logs.
    print(json.dumps({"level": level, "message": message, "service": "preheat-sagemaker", "pid": os.getpid(),
                      **fields}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
