"""Work that must happen when Lambda ends the execution environment (flushing buffered metrics).

Lambda gives the runtime a shutdown phase only if an extension is registered: it then sends the
runtime SIGTERM and waits up to 500 ms (a function with internal extensions only) before SIGKILL;
without one, the environment is killed outright (Lambda Extensions API: the shutdown phase; the
aws-samples "graceful-shutdown-with-aws-lambda" guide, which also notes it works from the python3.12
runtime on). So on Lambda (AWS_LAMBDA_RUNTIME_API set), the first `at_environment_end` registers a
no-op internal extension that subscribes to no events, as the Rust runtime's graceful-shutdown helper
does, and runs the callbacks on SIGTERM.

The signal is caught two ways, because the runtime's main thread may not be able to run a Python
signal handler: awslambdaric polls for the next invocation from the main thread in native code unless
AWS_EXECUTION_ENV is python3.12+. The Python handler covers the main thread; `signal.set_wakeup_fd`
makes the interpreter's C-level handler write the signal number to a pipe, which the extension's
daemon thread watches (together with its Extensions API connection), so the callbacks run even
while the main thread sits in native code. Either way they run once, then the process exits.

Costs: nothing per invocation (one thread blocked in `select`); at init, one local HTTP round trip
to register (Lambda accepts registrations during INIT only, so it is not left to the thread). `_socket` rather than `socket`: the wrapper module costs ~4 ms of
imports on a cold start that otherwise never needs it.

The callbacks are process-wide state on purpose: signals are.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any

EXTENSION_NAME = "preheat-shutdown"
REGISTER_PATH = "/2020-01-01/extension/register"
NEXT_PATH = "/2020-01-01/extension/event/next"
log = logging.getLogger("preheat")

_callbacks: list[Callable[[], None]] = []
_lock = threading.Lock()
_state = {"installed": False, "ran": False}
_never = threading.Event()  # what a second caller of _end waits on: the first one exits the process


def at_environment_end(callback: Callable[[], None], env: Mapping[str, str] | None = None) -> bool:
    """Run `callback` when Lambda ends this environment. Returns whether a shutdown phase is
    arranged: False off Lambda, or where it cannot be (not the main thread, registration refused)."""
    env = os.environ if env is None else env
    api = env.get("AWS_LAMBDA_RUNTIME_API")
    if not api:
        return False
    with _lock:
        if _state["installed"]:
            _callbacks.append(callback)
            return True
        if threading.current_thread() is not threading.main_thread():
            return False
        # Registration must happen during INIT (before the runtime's first /next): here, not in
        # the thread. One round trip to the local Runtime API.
        host, _, port = api.rpartition(":")
        try:
            identifier = _register(host, int(port))
            # INIT ends only once every registered extension has called /event/next: call it here,
            # not from the thread, so that INIT never waits on a thread being scheduled.
            sock = _call_next(host, int(port), identifier)
        except (OSError, ValueError) as exc:
            log.warning("no shutdown phase: could not register an extension with the Runtime API at %s: %s", api, exc)
            return False
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        signal.signal(signal.SIGTERM, lambda signum, frame: _end())
        signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        _state["installed"] = True
        _callbacks.append(callback)
    threading.Thread(target=_extension, args=(sock, read_fd), name="preheat-shutdown", daemon=True).start()
    return True


def _end() -> None:
    """Run every callback once (a failing one does not stop the others), then exit."""
    with _lock:
        second = _state["ran"]
        _state["ran"] = True
        callbacks = list(_callbacks)
    if second:
        # SIGTERM reached both the main thread's handler and the extension thread: the first one
        # flushes and exits; this one must not let the runtime carry on (or exit) meanwhile.
        _never.wait()
    for callback in callbacks:
        try:
            callback()
        except Exception:
            log.exception("a shutdown callback failed")
    sys.stdout.flush()
    os._exit(0)  # the environment is going away; nothing else may run, nothing else is waiting


def _call_next(host: str, port: int, identifier: str):  # type: ignore[no-untyped-def]
    """The extension's GET /event/next, sent; its answer (never, for no events) is the thread's to read."""
    sock = _connect(host, port)
    try:
        sock.sendall(
            f"GET {NEXT_PATH} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Lambda-Extension-Identifier: {identifier}\r\n\r\n".encode()
        )
    except OSError:
        sock.close()
        raise
    sock.settimeout(None)
    return sock


def _extension(sock: Any, wakeup: int) -> None:
    """Wait for SIGTERM's byte on the wakeup pipe, watching the /event/next connection too (no
    event ever comes on it, since the extension asked for none)."""
    import select

    watched = [wakeup, sock]
    while True:
        readable, _, _ = select.select(watched, [], [])
        if wakeup in readable:
            if signal.SIGTERM in os.read(wakeup, 64):
                _end()
        elif sock in readable:
            try:
                closed = not sock.recv(65536)
            except OSError:  # reset (e.g. a connection from before a SnapStart snapshot)
                closed = True
            if closed:
                # The Runtime API closed the connection (an event for an extension that asked for
                # none never comes); keep watching the signal alone.
                watched = [wakeup]


def _connect(host: str, port: int):  # type: ignore[no-untyped-def]
    import _socket

    sock = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
    sock.settimeout(2.0)
    sock.connect((host, port))
    return sock


def _register(host: str, port: int) -> str:
    body = json.dumps({"events": []}).encode()
    sock = _connect(host, port)
    try:
        sock.sendall(
            f"POST {REGISTER_PATH} HTTP/1.1\r\nHost: {host}:{port}\r\nLambda-Extension-Name: {EXTENSION_NAME}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    finally:
        sock.close()
    head = reply.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    status = head.split(" ", 2)[1] if head.count(" ") >= 1 else ""
    if status != "200":
        raise ValueError(f"register answered {head.splitlines()[0] if head else 'nothing'}")
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "lambda-extension-identifier":
            return value.strip()
    raise ValueError("register answered without a Lambda-Extension-Identifier")
