"""Init phases through the twin: the handler's and the floor's `init phases` lines, joined with the
platform's REPORT lines, read back from CloudWatch Logs (moto) and from the twin's log file alike;
and `preheat bench coldstart` end to end (distinct warm texts that all run the model, cache hits apart)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scripts import init_phases
from scripts.twin.config import DEFAULT_MODEL_DIR, TwinConfig, inference_function
from scripts.twin.models import model_name
from tests.support.twin import ROOT, running

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def _model_dir() -> Path:
    model_dir = ROOT / DEFAULT_MODEL_DIR
    if not (model_dir / "manifest.json").is_file():
        pytest.fail(f"{model_dir} is missing: run `make model` (make test builds it first)")
    return model_dir


def test_each_cold_start_says_where_its_init_went(tmp_path: Path) -> None:
    name = model_name(_model_dir())
    default = inference_function(ROOT, name="phases-default")
    floor = inference_function(
        ROOT, name="phases-floor", handler="functions.baselines.floor.handler", env=dict(default.env)
    )
    with running(TwinConfig(functions=(default, floor), state_dir=tmp_path)) as twin:
        inits: dict[str, list[float]] = {}
        for function in ("phases-default", "phases-floor"):
            for _ in range(2):
                twin.reset(function)
                client = twin.url_client(function)
                reply = client.request("POST", "/v1/embeddings", {"input": "where did init go?", "model": name})
                client.close()
                assert reply.status == 200, reply.body[:300]
                record = twin.record(reply.headers["x-amzn-requestid"], function)
                assert record is not None and record["cold"]
                inits.setdefault(function, []).append(record["init_ms"])
        twin.flush()
        logs = twin.boto3_client("logs")
        for function, expected in (
            ("phases-default", {"import numpy", "import onnxruntime", "import msgspec", "import preheat",
                                "manifest", "checksums", "tokenizer", "session (wait)", "warm-up"}),
            ("phases-floor", {"import numpy", "import onnxruntime", "import tokenizers", "session", "tokenizer"}),
        ):
            found = init_phases.parse(init_phases.from_cloudwatch(logs, function))
            # The same events, from the twin's own log file.
            assert found == init_phases.parse(init_phases.from_file(tmp_path / "logs" / f"{function}.log"))
            assert len(found) == 2
            assert sorted(round(i.init_ms, 2) for i in found) == sorted(round(x, 2) for x in inits[function])
            for instance in found:
                assert expected <= set(instance.phases)
                steps = instance.breakdown()
                assert steps[init_phases.RUNTIME] > 0 and steps[init_phases.FIRST] > 0
                assert all(ms >= 0 for ms in steps.values())
                # The marks cover the module's time exactly; with the runtime's part, the whole INIT.
                assert sum(instance.phases.values()) == pytest.approx(instance.module_ms, abs=0.05)
                assert sum(v for k, v in steps.items() if k != init_phases.FIRST) == pytest.approx(
                    instance.init_ms, abs=0.05
                )


def test_bench_coldstart_warm_requests_run_the_model(tmp_path: Path) -> None:
    _model_dir()
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "scripts.cli", "bench", "coldstart", "--cold", "2", "--warm", "8", "--skip-naive",
         "--phases", "--json", str(out), "--png", str(tmp_path / "bench.png"), "--state-dir", str(tmp_path / "twin")],
        cwd=ROOT, capture_output=True, text=True, timeout=280,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["default"]["warm_cache"] == {"miss": 8}  # every warm text was new: the model ran
    assert result["default"]["cache_hit_n"] == 2 and result["default"]["cache_hit_p50_ms"] > 0
    assert "cache_hit_p50_ms" not in result["floor"]  # nothing to hit: no cache there
    assert result["phases"]["default"]["instances"] == 2 and result["phases"]["floor"]["instances"] == 2
    assert result["phases"]["default"]["phases_p50_ms"]["warm-up"] > 0
    assert set(result["targets"]) == {
        "cold_at_most_1.2x_floor", "warm_at_most_floor_plus_0.3ms"
    }  # naive left out: no naive target
    assert "where a cold start goes" in done.stdout and "default, cache hit" in done.stdout
