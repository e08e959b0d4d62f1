from __future__ import annotations

import json

from scripts import init_phases


def _line(marks: dict[str, float]) -> str:
    """An `init phases` line as functions/inference/phases.py writes it (the twin test reads real ones)."""
    return json.dumps({"level": "INFO", "message": "init phases", "service": "svc",
                       "module_ms": sum(marks.values()), "phases_ms": marks, "beside_ms": {}})


def test_parse_joins_each_stream_with_its_first_report() -> None:
    line = _line({"import numpy": 100.0, "session": 30.0})
    events = [
        ("a", line),
        ("b", line),  # still starting: no REPORT yet, so no breakdown
        ("a", "START RequestId: r1 Version: 1"),
        ("a", "REPORT RequestId: r1\tDuration: 5.50 ms\tBilled Duration: 306 ms\tMemory Size: 2048 MB\t"
              "Max Memory Used: 90 MB\tInit Duration: 300.00 ms"),
        ("a", "REPORT RequestId: r2\tDuration: 4.00 ms\tBilled Duration: 4 ms\tMemory Size: 2048 MB\t"
              "Max Memory Used: 90 MB"),  # a warm one: ignored
    ]
    (found,) = init_phases.parse(events)
    assert found.stream == "a" and found.init_ms == 300.0 and found.first_ms == 5.5
    assert json.loads(line)["module_ms"] == 130.0
    assert found.breakdown() == {
        init_phases.RUNTIME: 170.0, "import numpy": 100.0, "session": 30.0, init_phases.FIRST: 5.5
    }


def test_phases_only_one_function_has_stay_where_that_function_has_them() -> None:
    default = ["runtime", "numpy", "onnxruntime", "msgspec", "session", "warm-up", "first"]
    floor = ["runtime", "numpy", "onnxruntime", "tokenizers", "session", "first"]
    merged = init_phases.merge_orders([default, floor])
    assert merged.index("tokenizers") == merged.index("onnxruntime") + 1
    assert merged[-1] == "first" and set(merged) == set(default) | set(floor)
