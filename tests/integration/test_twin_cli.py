"""`preheat up` and `preheat down` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from scripts.twin.config import FunctionSpec, TwinConfig
from scripts.twin.state import STATE_FILE, pid_alive
from tests.support.twin import ROOT, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def preheat(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scripts.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_up_prints_how_to_reach_the_twin_and_down_stops_everything(tmp_path: Path) -> None:
    config = TwinConfig(functions=(FunctionSpec("hello", "tests.support.twin_handlers.http", ROOT),))
    config_path = tmp_path / "twin.json"
    config_path.write_text(json.dumps(config.to_dict()))
    state_dir = tmp_path / "state"
    up = preheat("up", "--config", str(config_path), "--state-dir", str(state_dir))
    state = json.loads((state_dir / STATE_FILE).read_text()) if (state_dir / STATE_FILE).exists() else None
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert state is not None
        url = state["functions"]["hello"]["url"]
        assert url in up.stdout and state["endpoint"] in up.stdout and state["ca"] in up.stdout
        again = preheat("up", "--config", str(config_path), "--state-dir", str(state_dir))
        assert again.returncode == 0 and "already running" in again.stdout
        # The URL is AWS_IAM (the default): `preheat invoke` signs; unsigned, Lambda's 403.
        signed = preheat("invoke", "--state-dir", str(state_dir), "--function", "hello", "/hi", "-d", '{"a": 1}')
        assert signed.returncode == 0 and "201 POST" in signed.stdout and "SigV4-signed" in signed.stdout, signed.stdout
        assert json.loads(signed.stdout[signed.stdout.index("{"):])["rawPath"] == "/hi"
        unsigned = preheat("invoke", "--state-dir", str(state_dir), "--function", "hello", "--unsigned")
        assert unsigned.returncode == 1 and "403 GET" in unsigned.stdout and "AccessDeniedException" in unsigned.stdout
        assert "--aws-sigv4 aws:amz:" not in up.stdout  # the curl hint is for the inference function only
        instances = json.loads(
            urllib.request.urlopen(state["endpoint"] + "/_preheat/functions", timeout=10).read()
        )
        pids = [i["pid"] for f in instances["functions"] for i in f["instances"]]
        assert pids and all(pid_alive(p) for p in pids)
    finally:
        down = preheat("down", "--state-dir", str(state_dir))
    assert down.returncode == 0 and "stopped" in down.stdout
    assert not (state_dir / STATE_FILE).exists()
    assert not pid_alive(state["pid"])
    assert not any(pid_alive(p) for p in pids)  # its instances went with it
    assert "no twin is running" in preheat("down", "--state-dir", str(state_dir)).stdout


def test_up_rejects_a_bad_config_naming_the_key(tmp_path: Path) -> None:
    config_path = tmp_path / "twin.json"
    config_path.write_text(
        json.dumps({"functions": [{"name": "x", "handler": "m.h", "code_dir": str(ROOT), "memory_mb": 1}]})
    )
    result = preheat("up", "--config", str(config_path), "--state-dir", str(tmp_path / "state"))
    assert result.returncode == 2
    assert "memory_mb" in result.stdout


def test_a_twin_started_by_a_program_stops_when_the_program_dies(tmp_path: Path) -> None:
    """Tests, demos and benchmarks start attached twins: killing the caller must not leak one."""
    config = TwinConfig(
        functions=(FunctionSpec("hello", "tests.support.twin_handlers.echo", ROOT),),
        state_dir=tmp_path / "state",
    )
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config.to_dict()))
    script = (
        "import json, sys, time\n"
        "from pathlib import Path\n"
        "from scripts.twin import state\n"
        "from scripts.twin.config import TwinConfig\n"
        "s, _ = state.start(TwinConfig.from_dict(json.loads(Path(sys.argv[1]).read_text())))\n"
        "print(s.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", script, str(config_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert owner.stdout is not None
        twin_pid = int(owner.stdout.readline())
        assert pid_alive(twin_pid)
    finally:
        owner.kill()
        owner.wait(10)
    wait_for(lambda: not pid_alive(twin_pid), timeout=20, what="the orphaned twin to stop")
