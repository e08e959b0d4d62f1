"""The container's `serve` entry as SageMaker runs it: a real process, real sockets.

The model's manifest is a named pipe in the loading tests, so "still loading" lasts exactly until the
test writes it: the order (socket accepted, /ping 503, then 200) is asserted without timing anything.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import tiny_models
from tests.support.twin import ROOT, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Serve:
    def __init__(self, model_dir: Path, **env: str) -> None:
        self.port = free_port()
        self.lines: list[str] = []
        environment = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PREHEAT_", "SAGEMAKER_"))},
            "SAGEMAKER_BIND_TO_PORT": str(self.port), "PREHEAT_BIND_HOST": "127.0.0.1",
            "PREHEAT_MODEL_DIR": str(model_dir), "PREHEAT_THREADS": "1", "PYTHONPATH": str(ROOT), **env,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "functions.sagemaker.serve", "serve"], cwd=ROOT, env=environment,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in list(self.lines):
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=body, method=method,
                                         headers={"content-type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def post_declaring(self, length: int) -> tuple[int, bytes]:
        """POST /invocations declaring `length` bytes and sending them in chunks until the server answers."""
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.putrequest("POST", "/invocations")
        conn.putheader("content-type", "application/json")
        conn.putheader("content-length", str(length))
        conn.endheaders()
        with contextlib.suppress(OSError):
            sent = 0
            while sent < length:
                chunk = b" " * min(65536, length - sent)
                conn.send(chunk)
                sent += len(chunk)
        response = conn.getresponse()
        try:
            return response.status, response.read()
        finally:
            conn.close()

    def accepts(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
            return True
        return False

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(5)


@contextlib.contextmanager
def serving(model_dir: Path, **env: str) -> Iterator[Serve]:
    serve = Serve(model_dir, **env)
    try:
        yield serve
    finally:
        serve.stop()


@pytest.fixture
def piped_model(tmp_path: Path) -> tuple[Path, bytes]:
    """A tiny model whose manifest.json is a FIFO: loading blocks on it until the test writes it."""
    model_dir = tmp_path / "model"
    tiny_models.write_embedding_model(model_dir)
    manifest = (model_dir / "manifest.json").read_bytes()
    (model_dir / "manifest.json").unlink()
    os.mkfifo(model_dir / "manifest.json")
    return model_dir, manifest


def release(model_dir: Path, manifest: bytes) -> None:
    with open(model_dir / "manifest.json", "wb") as fifo:
        fifo.write(manifest)


def test_accepts_the_socket_and_answers_ping_503_before_the_model_loads_then_200(
    piped_model: tuple[Path, bytes],
) -> None:
    model_dir, manifest = piped_model
    with serving(model_dir) as serve:
        wait_for(serve.accepts, 30, what="the container to accept connections")
        status, body = wait_for(lambda: (r := serve.request("GET", "/ping"))[0] != 0 and r, 30, what="/ping")
        assert status == 503
        assert json.loads(body)["error"]["code"] == "not_ready"
        assert serve.request("GET", "/v2/health/live")[0] == 200
        assert serve.request("GET", "/v2/health/ready")[0] == 503
        # An invocation sent while loading waits for the model rather than failing.
        answers: list[tuple[int, bytes]] = []
        early = threading.Thread(target=lambda: answers.append(
            serve.request("POST", "/invocations", json.dumps({"input": "hello world"}).encode())))
        early.start()
        time.sleep(0.2)
        assert not answers
        assert not any(e.get("message") == "ready" for e in serve.events())
        release(model_dir, manifest)
        wait_for(lambda: serve.request("GET", "/ping")[0] == 200, 60, what="/ping 200 after the model loaded")
        early.join(30)
        status, body = answers[0]
        assert status == 200
        vector = json.loads(body)["data"][0]["embedding"]
        expected = tiny_models.expected_embedding("hello world")
        assert vector == pytest.approx(expected.tolist(), abs=1e-5)
        messages = [e.get("message") for e in serve.events()]
        assert messages.index("listening") < messages.index("ready")
        ready = next(e for e in serve.events() if e.get("message") == "ready")
        assert ready["model"] == "tiny" and ready["init_ms"] > 0
    assert serve.process.returncode in (0, -signal.SIGTERM)


def test_serves_the_same_routes_as_the_app_and_enforces_the_4_mb_limit(embedding_dir: Path) -> None:
    with serving(embedding_dir) as serve:
        wait_for(lambda: serve.request("GET", "/ping")[0] == 200 if serve.accepts() else None, 60, what="ready")
        status, body = serve.request("POST", "/v1/embeddings", json.dumps({"input": ["a", "b"], "model": "tiny"}).encode())
        assert status == 200 and len(json.loads(body)["data"]) == 2
        status, body = serve.request("POST", "/invocations", json.dumps(
            {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["hi"]}]}).encode())
        assert status == 200 and json.loads(body)["outputs"][0]["name"] == "embedding"
        assert serve.request("GET", "/openapi.json")[0] == 200
        status, body = serve.post_declaring(4 * 1024 * 1024 + 1)
        assert status == 413 and json.loads(body)["error"]["code"] == "payload_too_large"
        status, body = serve.post_declaring(4 * 1024 * 1024 - 100)  # under the limit: the body is read
        assert status == 400
        status, body = serve.request("POST", "/invocations", b"{not json")
        assert status == 400 and json.loads(body)["error"]["code"] == "invalid_json"


def test_a_model_that_cannot_load_stops_the_container_with_the_reason(tmp_path: Path) -> None:
    with serving(tmp_path / "nothing-here") as serve:
        assert serve.process.wait(60) == 1
        serve._reader.join(5)
        failed = [e for e in serve.events() if e.get("message") == "model load failed"]
        assert failed and "manifest.json" in failed[0]["error"] and failed[0]["level"] == "ERROR"


def test_a_bad_setting_fails_at_start_naming_the_variable(embedding_dir: Path) -> None:
    with serving(embedding_dir, SAGEMAKER_MODEL_SERVER_WORKERS="many") as serve:
        assert serve.process.wait(30) == 2
        serve._reader.join(5)
        assert any("SAGEMAKER_MODEL_SERVER_WORKERS" in line for line in serve.lines)


def test_several_workers_share_the_socket_each_with_its_model(embedding_dir: Path) -> None:
    with serving(embedding_dir, SAGEMAKER_MODEL_SERVER_WORKERS="2") as serve:
        try:
            wait_for(lambda: len([e for e in serve.events() if e.get("message") == "ready"]) == 2, 150,
                     what="two workers ready")
        except AssertionError as exc:  # say what the workers printed: a load failure names its reason
            raise AssertionError(f"{exc}; exit status {serve.process.poll()}; output: {serve.lines[-20:]}") from None
        ready = [e for e in serve.events() if e.get("message") == "ready"]
        assert len({e["pid"] for e in ready}) == 2 and serve.process.pid not in {e["pid"] for e in ready}
        for _ in range(4):
            status, _ = serve.request("POST", "/invocations", json.dumps({"input": "hello"}).encode())
            assert status == 200
        code = serve.stop()
    assert code == 0
    for event in ready:  # SIGTERM reached every worker
        with pytest.raises(ProcessLookupError):
            os.kill(event["pid"], 0)


def test_the_default_model_in_a_container() -> None:
    model_dir = ROOT / "build" / "models" / "minilm"
    if not (model_dir / "manifest.json").is_file():
        pytest.skip("build the default model first (`make model`)")
    with serving(model_dir) as serve:
        wait_for(lambda: serve.request("GET", "/ping")[0] == 200 if serve.accepts() else None, 90, what="ready")
        status, body = serve.request("POST", "/invocations", json.dumps(
            {"input": ["A cat sits on the mat.", "A kitten is sitting on a rug.", "Stock markets fell sharply."]}
        ).encode())
        assert status == 200
        vectors = [row["embedding"] for row in json.loads(body)["data"]]
        assert all(len(v) == 384 for v in vectors)
        dot = lambda a, b: sum(x * y for x, y in zip(a, b, strict=True))  # noqa: E731  (normalized vectors)
        assert dot(vectors[0], vectors[1]) > dot(vectors[0], vectors[2]) + 0.2
