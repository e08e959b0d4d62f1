"""A moto_server subprocess on a free port of 127.0.0.1, for tests that need a real endpoint."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


class MotoServer:
    """Port 0: the OS picks a free port and moto_server reports it; we read it back from its log."""

    def __init__(self, log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        self._file = log.open("w")
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", "0"],
            stdout=self._file,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        self.url = self._wait_for_url()

    def _wait_for_url(self, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(r"http://127\.0\.0\.1:(\d+)", self.log.read_text())
            if match and match.group(1) != "0":
                return f"http://127.0.0.1:{match.group(1)}"
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto_server exited: {self.log.read_text()[-2000:]}")
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("moto_server did not report its port in 30 s")

    def client(self, service: str, region: str = "us-east-1") -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._file.close()
