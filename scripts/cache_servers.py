"""Local shared-tier servers for the cache's tests and benchmark, on 127.0.0.1 and free ports only.

RedisServer runs Debian's real `redis-server` (no mock): start, kill (an outage), restart on the same
port, pause/resume (SIGSTOP: a tier that accepts connections but never answers). MotoDynamo runs
moto's DynamoDB in a thread (ThreadedMotoServer), since the cache's own HTTP client cannot be seen
by in-process `mock_aws`, and creates the cache table with the contract's schema.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from types import TracebackType
from typing import Any

REDIS_BINARY = "redis-server"
TABLE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def redis_binary() -> str | None:
    return shutil.which(REDIS_BINARY)


class RedisServer:
    def __init__(self) -> None:
        binary = redis_binary()
        if binary is None:
            raise FileNotFoundError(
                "redis-server is not installed: `apt-get install -y redis-server` (.ci/run does it)"
            )
        self.binary = binary
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, port: int | None = None) -> RedisServer:
        # redis-server cannot bind port 0 itself; a port found free may be taken before it binds,
        # so a failed start is retried on another one (unless a restart needs the same port).
        for _ in range(5 if port is None else 20):
            self.port = port or free_port()
            self.process = subprocess.Popen(
                [
                    self.binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                    "--loglevel",
                    "warning",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if self._wait_ready(5.0):
                return self
            self.kill()
            time.sleep(0.1)
        raise RuntimeError(f"redis-server did not start on 127.0.0.1:{self.port}")

    def _wait_ready(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return True
            except OSError:
                time.sleep(0.02)
        return False

    def command(self, *args: bytes | str) -> bytes | int | None:
        """One raw command (tests plant or inspect values behind the cache's back). Simple replies,
        integers and bulk strings only."""
        parts = [a if isinstance(a, bytes) else a.encode() for a in args]
        payload = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(payload)
            reader = sock.makefile("rb")
            line = reader.readline().rstrip(b"\r\n")
            kind, rest = line[:1], line[1:]
            if kind == b"-":
                raise RuntimeError(rest.decode())
            if kind == b":":
                return int(rest)
            if kind == b"$":
                size = int(rest)
                return None if size < 0 else reader.read(size + 2)[:-2]
            return rest

    def kill(self) -> None:
        """SIGKILL: the abrupt outage (a node lost), not a clean shutdown."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def restart(self) -> None:
        self.kill()
        self.start(self.port)

    def pause(self) -> None:
        """SIGSTOP: connections are still accepted by the kernel, but nothing answers."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.resume()
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def __enter__(self) -> RedisServer:
        return self.start() if self.process is None else self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class MotoDynamo:
    """moto's DynamoDB on 127.0.0.1:<free port>, in this process, with the cache table created."""

    def __init__(self, table: str = "preheat-cache") -> None:
        self.table = table
        self._server: Any = None

    @property
    def endpoint_url(self) -> str:
        assert self._server is not None
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    def env(self) -> dict[str, str]:
        """The environment a function would have: credentials, region, endpoint, table."""
        return {
            **TABLE_ENV,
            "AWS_ENDPOINT_URL_DYNAMODB": self.endpoint_url,
            "PREHEAT_CACHE_TABLE": self.table,
        }

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "dynamodb",
            endpoint_url=self.endpoint_url,
            region_name=TABLE_ENV["AWS_REGION"],
            aws_access_key_id=TABLE_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=TABLE_ENV["AWS_SECRET_ACCESS_KEY"],
        )

    def start(self) -> MotoDynamo:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        client = self.client()
        try:
            client.create_table(
                TableName=self.table,
                KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "key", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        except client.exceptions.ResourceInUseException:
            pass  # moto keeps one backend per process: another server made it already
        client.update_time_to_live(
            TableName=self.table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
        )
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket, so that connections are refused."""
        if self._server is not None:
            self._server.stop()
            inner = getattr(self._server, "_server", None)
            if inner is not None:
                inner.server_close()
            self._server = None

    def __enter__(self) -> MotoDynamo:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
