"""moto_server on 127.0.0.1: the AWS API for everything the twin does not run itself (with
percentile statistics in CloudWatch, which moto lacks: scripts/twin/moto_cloudwatch.py).

The twin registers its functions there (role, function, alias, reserved concurrency), so the
control-plane APIs (GetFunction, ListFunctions, ListAliases, ...) answer about them as AWS would, and
creates the config's DynamoDB tables there (the cache tier's shared table).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import socket
import sys
import zipfile
from pathlib import Path
from typing import Any

from scripts.aws_roles import service_role
from scripts.twin import http11
from scripts.twin.config import PUBLISHED_VERSION, FunctionSpec

log = logging.getLogger("preheat.twin")
ROLE = "preheat-twin-lambda"
# The cache table's contract (functions/cache/dynamodb.py, infra/constructs/cache_table.py).
CACHE_PARTITION_KEY = "key"
CACHE_TTL_ATTRIBUTE = "expires_at"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class MotoServer:
    def __init__(self, host: str, log_path: Path, wrapper: tuple[str, ...] = ()) -> None:
        self.host = host
        self.port = 0
        self.log_path = log_path
        self.wrapper = wrapper
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self, timeout: float = 30.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for _attempt in range(3):  # a free port can be taken between probing and binding: retry
            self.port = free_port(self.host)
            with self.log_path.open("ab") as out:
                self._process = await asyncio.create_subprocess_exec(
                    *self.wrapper, sys.executable, "-m", "scripts.twin.moto_cloudwatch", "-H", self.host, "-p", str(self.port),
                    stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out,
                    # moto's recorder (off unless started, see scripts/recording.py) writes here.
                    env={**os.environ, "MOTO_RECORDER_FILEPATH": str(self.log_path.with_name("moto-recording.jsonl"))},
                )
            while loop.time() < deadline:
                if self._process.returncode is not None:
                    break
                with contextlib.suppress(OSError, TimeoutError):
                    response = await http11.request(self.host, self.port, "GET", "/moto-api/", timeout=2)
                    if response.status == 200:
                        return
                await asyncio.sleep(0.1)
            else:
                await self.stop()
                raise RuntimeError(f"moto_server did not answer within {timeout:.0f} s; see {self.log_path}")
        raise RuntimeError(f"moto_server exited at start; see {self.log_path}")

    async def stop(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            try:
                await asyncio.wait_for(self._process.wait(), 5)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()


def _stub_zip(handler: str) -> bytes:
    module, _, func = handler.rpartition(".")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            module.replace(".", "/") + ".py",
            f"# The local twin runs this function from its code directory; this stub only registers it.\n"
            f"def {func}(event, context):\n    raise RuntimeError('run by the preheat twin, not moto')\n",
        )
    return buffer.getvalue()


def register(session: Any, specs: tuple[FunctionSpec, ...], endpoint: str) -> None:
    """Create the functions, their aliases and reserved concurrency in moto (blocking; run in a thread)."""
    iam = session.client("iam", endpoint_url=endpoint)
    lam = session.client("lambda", endpoint_url=endpoint)
    role = service_role(iam, ROLE, "lambda.amazonaws.com")
    for spec in specs:
        try:
            lam.create_function(
                FunctionName=spec.name, Runtime=f"python{sys.version_info.major}.{sys.version_info.minor}",
                Role=role, Handler=spec.handler, Code={"ZipFile": _stub_zip(spec.handler)},
                MemorySize=spec.memory_mb, Timeout=max(1, int(spec.timeout_s)),
                Environment={"Variables": dict(spec.env)}, Publish=True,
            )
            for alias in spec.aliases:
                lam.create_alias(FunctionName=spec.name, Name=alias, FunctionVersion=PUBLISHED_VERSION)
            if spec.reserved_concurrency is not None:
                lam.put_function_concurrency(
                    FunctionName=spec.name, ReservedConcurrentExecutions=spec.reserved_concurrency
                )
        except Exception as exc:  # moto's view is informational: the twin runs without it
            log.warning("could not register %s in moto: %s", spec.name, exc)


def create_tables(session: Any, names: tuple[str, ...], endpoint: str) -> None:
    """Create the cache tables in moto, as the stack's CacheTable (on-demand, TTL on expires_at);
    blocking, run in a thread. A table that cannot be created fails the start: functions would be
    configured with a table that is not there."""
    dynamodb = session.client("dynamodb", endpoint_url=endpoint)
    for name in names:
        with contextlib.suppress(dynamodb.exceptions.ResourceInUseException):
            dynamodb.create_table(
                TableName=name,
                KeySchema=[{"AttributeName": CACHE_PARTITION_KEY, "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": CACHE_PARTITION_KEY, "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        dynamodb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": CACHE_TTL_ATTRIBUTE}
        )
