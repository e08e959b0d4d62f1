"""Azure 2019 trace files, both layouts, and the workload drawn from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from warmers import traces
from warmers.simulator.workload import build_workload

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "traces" / "azure2019"
needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(), reason="../shared/traces/azure2019 is not beside the repo"
)

DURATIONS = (
    "HashOwner,HashApp,HashFunction,Average,Count,Minimum,Maximum,"
    "percentile_Average_0,percentile_Average_1,percentile_Average_25,percentile_Average_50,"
    "percentile_Average_75,percentile_Average_99,percentile_Average_100\n"
    "o,a,f1,100,10,10,1000,10,20,50,100,200,900,1000\n"
    "o,b,f2,5,10,1,9,1,2,3,5,6,8,9\n"
)
MEMORY = (
    "HashOwner,HashApp,SampleCount,AverageAllocatedMb,AverageAllocatedMb_pct1,AverageAllocatedMb_pct5,"
    "AverageAllocatedMb_pct25,AverageAllocatedMb_pct50,AverageAllocatedMb_pct75,AverageAllocatedMb_pct95,"
    "AverageAllocatedMb_pct99,AverageAllocatedMb_pct100\n"
    "o,a,5,150,100,110,120,150,160,170,180,200\n"
    "o,b,5,300,250,260,270,300,310,320,330,350\n"
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_minute_n_layout(tmp_path):
    path = write(
        tmp_path,
        "inv.csv",
        "HashFunction,HashOwner,HashApp,minute_1,minute_2,minute_3\nf1,o,a,0,2,1\nf2,o,b,5,0,0\n",
    )
    trace = traces.load_invocations(path)
    assert trace.layout == "minute_N" and trace.function_ids == ("f1", "f2") and trace.app_ids == ("a", "b")
    assert trace.counts.tolist() == [[0, 2, 1], [5, 0, 0]]
    assert trace.triggers is None


def test_original_layout_with_bare_minute_columns_and_triggers(tmp_path):
    path = write(
        tmp_path, "inv.csv", "HashOwner,HashApp,HashFunction,Trigger,1,2\no,a,f1,http,3,0\no,b,f2,timer,0,1\n"
    )
    trace = traces.load_invocations(path)
    assert trace.layout == "original" and trace.triggers == ("http", "timer")
    assert trace.counts.tolist() == [[3, 0], [0, 1]]


def test_minute_columns_are_ordered_by_number_not_by_position(tmp_path):
    path = write(tmp_path, "inv.csv", "HashFunction,minute_2,minute_1,HashApp\nf,7,1,a\n")
    assert traces.load_invocations(path).counts.tolist() == [[1, 7]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("HashOwner,minute_1\no,1\n", "HashFunction"),
        ("HashFunction,HashApp\nf,a\n", "per-minute columns"),
        ("HashFunction,minute_1,minute_3\nf,1,2\n", "without gaps"),
        ("HashFunction,minute_1\nf,lots\n", "not a number"),
        ("HashFunction,minute_1\nf,-1\n", "negative"),
        ("", "empty"),
    ],
)
def test_bad_files_are_named_with_what_is_wrong(tmp_path, text, message):
    with pytest.raises(traces.TraceError, match=message):
        traces.load_invocations(write(tmp_path, "inv.csv", text))


def test_missing_file_says_where_to_look(tmp_path):
    with pytest.raises(traces.TraceError, match="does not exist"):
        traces.load_invocations(tmp_path / "nope.csv")


def test_profiles_parse_and_are_sorted(tmp_path):
    durations = traces.load_durations(write(tmp_path, "d.csv", DURATIONS))
    assert durations.function_ids == ("f1", "f2")
    assert durations.percentiles_ms[0].tolist() == [10, 20, 50, 100, 200, 900, 1000]
    memory = traces.load_memory(write(tmp_path, "m.csv", MEMORY))
    assert memory.keys == ("a", "b") and memory.percentiles_mb[1, 3] == 300


def test_held_out_split_is_a_fixed_function_of_the_id():
    ids = [f"function-{i}" for i in range(2000)]
    mask = traces.held_out_mask(ids)
    assert 0.25 < mask.mean() < 0.35
    reordered = traces.held_out_mask(ids[::-1])
    assert (reordered[::-1] == mask).all()
    assert traces.held_out_mask(ids, 0.0).sum() == 0 and traces.held_out_mask(ids, 1.0).all()


def test_profiles_pair_by_id_when_asked(tmp_path):
    rows = traces.assign_profiles(["f2", "f1", "zz"], ["f1", "f2"], seed=1, salt="d", pairing="by-id")
    assert rows[:2].tolist() == [1, 0] and 0 <= rows[2] < 2


def small_workload(tmp_path: Path, seed: int = 3):
    inv = write(
        tmp_path,
        "inv.csv",
        "HashFunction,HashOwner,HashApp,minute_1,minute_2,minute_3,minute_4\n"
        "f1,o,a,3,0,5,1\nf2,o,b,0,0,0,2\nf3,o,a,1,1,1,1\n",
    )
    return build_workload(
        traces.load_invocations(inv),
        traces.load_durations(write(tmp_path, "d.csv", DURATIONS)),
        traces.load_memory(write(tmp_path, "m.csv", MEMORY)),
        seed=seed,
    )


def test_arrivals_fall_in_their_minute_and_durations_in_their_profile(tmp_path):
    w = small_workload(tmp_path)
    for f in range(3):
        arrivals, durations = w.requests(f)
        assert (np.diff(arrivals) >= 0).all()
        minutes = (arrivals // 60).astype(int)
        assert np.bincount(minutes, minlength=4).tolist() == w.trace.counts[f].tolist()
        assert ((durations >= 0.001) & (durations <= 1.0)).all()
    assert np.allclose(w.busy_s.sum(axis=1), [w.requests(f)[1].sum() for f in range(3)])
    assert ((w.memory_mb >= 100) & (w.memory_mb <= 350)).all()


def test_a_functions_requests_do_not_depend_on_the_other_functions(tmp_path):
    whole = small_workload(tmp_path)
    alone = whole.subset(np.array([False, False, True]))
    a1, d1 = whole.requests(2)
    a2, d2 = alone.requests(0)
    assert np.array_equal(a1, a2) and np.array_equal(d1, d2)
    again = small_workload(tmp_path)
    assert np.array_equal(again.arrivals_s, whole.arrivals_s)
    other = small_workload(tmp_path, seed=4)
    assert not np.array_equal(other.arrivals_s, whole.arrivals_s)


@needs_shared
def test_the_shared_sample_in_its_layout():
    trace = traces.load_invocations(SHARED / "invocations_per_minute.csv")
    assert trace.counts.shape == (679, 1440) and int(trace.counts.sum()) == 454_228
    assert len(set(trace.function_ids)) == 679
    assert int(traces.held_out_mask(trace.function_ids).sum()) == 204


@needs_shared
def test_the_original_layout_sample_and_its_paired_profiles():
    folder = SHARED / "original-layout-10-functions"
    trace = traces.load_invocations(folder / "invocations.csv")
    assert trace.layout == "original" and trace.counts.shape == (10, 1440) and trace.triggers is not None
    d, m = traces.profile_paths(folder / "invocations.csv")
    w = build_workload(trace, traces.load_durations(d), traces.load_memory(m), pairing="by-id")
    assert int(w.arrivals_s.size) == int(trace.counts.sum())
