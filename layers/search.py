"""Search a small space of slimming configurations; keep the one the objective prefers among those
that pass the gate, or the optimized fp32 model when none does.

Each candidate is quantized from the fused fp32 graph, optimized offline at the portable level,
loaded exactly as the runtime will load it (graph optimization disabled; `basic` for weight-only
int8, whose weights are dequantized at load), scored by the task's gate against the fp32 model on
held-out data (batch 1 and batched: dynamic int8 depends on what shares a batch, so the worse of the
two counts), sized, and timed at batch 1 (a 128-token text, or one tensor sample), 1 thread, in turn
with the fp32 model. The optimized fp32 graph is measured the same way: it ships when no int8
candidate passes. What is task-specific (the gate, the data, the probe that ranks sensitive nodes,
the space) comes from the task's recipe (layers/tasks/).
"""

from __future__ import annotations

import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from layers import calibrate, optimize, quantize, weight_only
from layers.quantize import QuantConfig
from layers.tasks import Gate, Measured

LATENCY_TOKENS = 128
LATENCY_RUNS = 31  # interleaved pairs; 15 let the ratio wander by 0.2 between builds here
GATE_BATCH = 8
MAX_SIZE_RATIO = 0.30  # of the fp32 model's bytes
SENSITIVITY_TEXTS = 64  # calibration items used to rank nodes by sensitivity
SPEED_TIE = 0.05  # speed-ups within 5% of the fastest count as equally fast
OBJECTIVES = ("speed", "size", "accuracy")
FP32 = QuantConfig("fp32-optimized", method="none")  # what ships when no int8 candidate passes
WEIGHT_ONLY = QuantConfig("weight-only-int8", method="weight-only")


def default_space() -> tuple[QuantConfig, ...]:
    """The transformer encoders' space (text tasks). Every one is built and measured; the objective
    picks among those that pass. Weight-only int8 is the near-fp32 one: a quarter of the bytes, fp32
    speed, slower loading (on MiniLM 253 ms to create the session against 43 for the optimized fp32
    graph, both mapped from a data file; 0.9999+ cosine). Plain dynamic int8 is the
    baseline (on MiniLM it misses the gate); smoothing with the most sensitive MatMuls kept out of
    per-tensor int8 is what passes: kept in fp32, or as int8 with one activation scale per token
    (per_token.py), which passes as well and runs the kept node in ~1.4 ms instead of ~2.2 ms; static
    QDQ is tried where its calibrated ranges win.

    Measured here and left out to keep the build short: smoothing alone at alpha 0.5-0.8 (fails),
    per-node alphas (miss min cosine), block-wise int8 for kept nodes (passes, but MatMulNBits is ~5x
    slower per node on AVX2), attention as MultiHeadAttention with Q, K, V as separate int8 MatMuls (5%
    slower than QAttention here). Kept nodes split LLM.int8()-style (`split-N`: N outlier input channels
    in fp32, the rest int8) all miss pairwise Spearman, on the batched run (per-tensor scales span the
    batch): N=16 0.9939, 64 0.9950, 128 0.9946, 256 0.9948, 384 0.9949 (mean cosine 0.9968-0.9969, min
    0.985-0.987); with channels reordered at their source and Sliced (a Gather on the last axis cost 1.8
    ms) split-128 ran 1.66x fp32 against 1.61x for keep1-fp32 and 1.69x for keep1 per-token, one
    interleaved run. Per-token variants for keep1 (mean / min cosine / Spearman): 7-bit weights, 8-bit
    symmetric activations, smoothed 0.9971 / 0.9805 / 0.9952 (passes by a hair); 7-bit weights, 8-bit
    asymmetric activations, smoothing folded back: min 0.9758 (fails); 8-bit weights and activations
    (u8u8, 25% slower kernel) 0.9973 / 0.9831 / 0.9955; the chosen 8-bit weights, 7-bit asymmetric
    activations 0.9973 / 0.9855 / 0.9954, keep3 0.9979 / 0.9861 / 0.9968 at the same speed (each
    per-token node drops its smoothing Mul). Per-token for all 18 MatMuls outside attention, no
    smoothing: 0.9971 / 0.9811 / 0.9951 at 1.48x (its ~0.4 ms of small ops per node cost more than the
    fused DynamicQuantizeMatMul), 1.31x with u8u8."""
    return (
        QuantConfig("dynamic-int8"),
        QuantConfig("dynamic-int8-smooth0.7-keep1-fp32", smooth_alpha=0.7, keep=1, keep_as="fp32"),
        QuantConfig("dynamic-int8-smooth0.7-keep2-fp32", smooth_alpha=0.7, keep=2, keep_as="fp32"),
        QuantConfig("dynamic-int8-smooth0.7-keep1-per-token", smooth_alpha=0.7, keep=1, keep_as="per-token"),
        QuantConfig("dynamic-int8-smooth0.7-keep3-per-token", smooth_alpha=0.7, keep=3, keep_as="per-token"),
        QuantConfig("static-qdq-int8-smooth0.7", method="static", smooth_alpha=0.7),
        WEIGHT_ONLY,
    )


@dataclass(frozen=True)
class MeasuredCandidate:
    """One quantization candidate as the search measured it: size, accuracy, latency, failures."""
    config: QuantConfig
    model_bytes: int
    size_ratio: float
    scores: Any  # the task's scores (layers/gate.py), the worse of batch 1 and batched; None: broken
    batch1: Any
    batched: Any
    latency_ms: float  # median, batch 1, the latency input, 1 thread
    reference_ms: float  # the fp32 model's median, measured interleaved with this candidate
    kept: tuple[str, ...]
    failures: tuple[str, ...]
    seconds: float
    path: Path = field(compare=False)
    load_with: str = "disabled"  # the session's graph optimization when served
    session_ms: float = 0.0  # median session creation as served (load_with, 1 thread)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def speedup(self) -> float:
        return self.reference_ms / self.latency_ms if self.latency_ms > 0 else 0.0


@dataclass(frozen=True)
class SearchResult:
    outcomes: tuple[MeasuredCandidate, ...]
    fallback: MeasuredCandidate | None = None  # the optimized fp32 graph, measured like the candidates
    latency_input: str = f"{LATENCY_TOKENS} tokens"
    reference_session_ms: float = 0.0

    @property
    def chosen(self) -> MeasuredCandidate | None:
        return self.choose("speed")

    def choose(self, objective: str = "speed") -> MeasuredCandidate | None:
        """Among passing candidates: `speed` (default) the fastest by its speed-up over fp32 measured
        side by side, where candidates within SPEED_TIE of the fastest count as equally fast (timings
        on a shared machine move by more than that between runs; bytes do not) and of those the
        smallest wins; `size` the smallest (then the fastest); `accuracy` the best of the task's
        headline score (then the fastest). None when nothing passes."""
        if objective not in OBJECTIVES:
            raise ValueError(f"objective {objective!r} is not one of {', '.join(OBJECTIVES)}")
        passing = [o for o in self.outcomes if o.passed]
        if not passing:
            return None
        if objective == "size":
            return min(passing, key=lambda o: (o.model_bytes, -o.speedup))
        if objective == "accuracy":
            return max(passing, key=lambda o: (round(float(o.scores.accuracy), 4), o.speedup))
        best = max(o.speedup for o in passing)
        tied = [o for o in passing if o.speedup >= best * (1.0 - SPEED_TIE)]
        return min(tied, key=lambda o: (o.model_bytes, -o.speedup))

    def shipped(self, objective: str = "speed") -> tuple[MeasuredCandidate | None, bool]:
        """What goes into the served directory, and whether it is the fp32 fallback."""
        chosen = self.choose(objective)
        if chosen is not None:
            return chosen, False
        return self.fallback, True

    def report(self) -> str:
        rows: list[MeasuredCandidate] = [*self.outcomes, *((self.fallback,) if self.fallback is not None else ())]
        sample = next((o.scores for o in rows if o.scores is not None), None)
        headers = [h for h, _ in sample.cells()] if sample is not None else []
        lines = [
            f"{'candidate':38} {'MB':>6} {'ratio':>6} "
            + " ".join(f"{h:>7}" for h in headers)
            + f" {'ms':>7} {'fp32':>6} {'x':>5} {'load':>6}  verdict"
        ]
        for o in rows:
            cells = [v for _, v in o.scores.cells()] if o.scores is not None else ["-"] * len(headers)
            if o is self.fallback:
                verdict = "fp32 fallback: accuracy " + ("passes" if o.passed else "FAILS: " + "; ".join(o.failures))
            else:
                verdict = "pass" if o.passed else "FAIL: " + "; ".join(o.failures)
            lines.append(
                f"{o.config.name:38} {o.model_bytes / 1e6:6.1f} {o.size_ratio:6.1%} "
                + " ".join(f"{c:>7}" for c in cells)
                + f" {o.latency_ms:7.2f} {o.reference_ms:6.2f} {o.speedup:5.2f} {o.session_ms:6.1f}  {verdict}"
            )
        lines.append(
            f"ms: median at batch 1 ({self.latency_input}), 1 thread, run in turn with the fp32 model (fp32 column); "
            f"load: session creation in ms as served (fp32 export: {self.reference_session_ms:.1f})"
        )
        return "\n".join(lines)


Progress = Callable[[str], None]


def model_bytes(model: Path) -> int:
    return sum(p.stat().st_size for p in (model, optimize.data_file(model)) if p.is_file())


def _session(model: Path, graph_optimization: str) -> Any:
    import onnxruntime as ort

    from functions.inference.model import session_options

    return ort.InferenceSession(
        str(model), session_options(1, graph_optimization), providers=["CPUExecutionProvider"]
    )


def session_ms(model: Path, graph_optimization: str, loads: int = 3) -> float:
    """Median session creation, as the runtime creates it (1 thread)."""
    times = []
    for _ in range(loads):
        started = time.perf_counter()
        _session(model, graph_optimization)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def interleaved_latency(
    reference: Path,
    candidate: Path,
    feed: dict[str, np.ndarray],
    runs: int = LATENCY_RUNS,
    candidate_level: str = "disabled",
) -> tuple[float, float]:
    """Median ms of (reference at "all", candidate at candidate_level), one run of each in turn, so
    that load from other processes hits both alike and the ratio stays meaningful on a busy machine."""
    sessions = (_session(reference, "all"), _session(candidate, candidate_level))
    for session in sessions:
        session.run(None, feed)
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        for session, samples in zip(sessions, times, strict=True):
            started = time.perf_counter()
            session.run(None, feed)
            samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(times[0]), statistics.median(times[1])


def search(
    space: Sequence[QuantConfig],
    *,
    reference: Path,
    fused: Path,
    work: Path,
    gate: Gate,
    calibration_feeds: Sequence[dict[str, np.ndarray]],
    latency_feed: dict[str, np.ndarray],
    probe: calibrate.Probe,
    latency_input: str = f"{LATENCY_TOKENS} tokens",
    max_size_ratio: float = MAX_SIZE_RATIO,
    progress: Progress = lambda _: None,
) -> SearchResult:
    """Build and measure the optimized fp32 graph and every configuration in space. Candidate files
    stay under work/<name>/."""
    ref_bytes = model_bytes(reference)
    optimized = work / FP32.name / "model.onnx"
    optimized.parent.mkdir(parents=True, exist_ok=True)
    progress("optimizing the fp32 graph offline (portable level) and gating it")
    optimize.save_optimized(fused, optimized)
    started = time.perf_counter()
    fallback = _outcome(FP32, optimized, "disabled", (), gate, reference, latency_feed, ref_bytes, None, started)
    state = _State(fused, work, calibration_feeds, probe, progress)
    outcomes = []
    for config in space:
        started = time.perf_counter()
        folder = work / config.name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        try:
            final = folder / "model.onnx"
            if config.method == "weight-only":
                # After offline optimization: an optimizer would fold the dequantization back into fp32.
                progress(f"candidate {config.name}: int8 weights, dequantized at load")
                quantized = quantize.apply(config, optimized, final, kept=(), calibration_feeds=(), work=folder)
                level = weight_only.LOAD_WITH
            else:
                source, kept = state.prepare(config)
                progress(f"candidate {config.name}: quantizing")
                quantized = quantize.apply(
                    config,
                    source,
                    folder / "quantized.onnx",
                    kept=kept,
                    calibration_feeds=calibration_feeds,
                    work=folder,
                )
                optimize.save_optimized(quantized.path, final)
                level = "disabled"
            progress(f"candidate {config.name}: gate and latency")
            outcome = _outcome(
                config, final, level, quantized.kept, gate, reference, latency_feed, ref_bytes, max_size_ratio, started
            )
        except Exception as exc:  # one broken candidate is a failed candidate, not a failed search
            outcomes.append(_broken(config, exc, time.perf_counter() - started, folder))
            continue
        outcomes.append(outcome)
    return SearchResult(
        tuple(outcomes),
        fallback=fallback,
        latency_input=latency_input,
        reference_session_ms=session_ms(reference, "all"),
    )


class _State:
    """What candidates share, computed on first need: activations on the calibration data, smoothed
    graphs per alpha, and sensitivity rankings."""

    def __init__(
        self,
        fused: Path,
        work: Path,
        feeds: Sequence[dict[str, np.ndarray]],
        probe: calibrate.Probe,
        progress: Progress,
    ) -> None:
        self.fused, self.work, self.feeds, self.probe, self.progress = fused, work, feeds, probe, progress
        self._activations: calibrate.Activations | None = None
        self.smoothed: dict[str | float | None, Path] = {None: fused}
        self.rankings: dict[tuple[str | float | None, bool], list[tuple[str, float]]] = {}
        self.per_node: dict[str, float] | None = None

    @property
    def activations(self) -> calibrate.Activations:
        if self._activations is None:
            self.progress("calibrating: activation ranges on the calibration data")
            self._activations = calibrate.capture(self.fused, self.feeds)
        return self._activations

    def prepare(self, config: QuantConfig) -> tuple[Path, tuple[str, ...]]:
        """The graph to quantize (smoothed as configured) and the nodes to keep out of per-tensor int8."""
        alpha: str | float | None = "per-node" if config.smooth_per_node else config.smooth_alpha
        alphas: calibrate.Alphas | None = config.smooth_alpha
        if config.smooth_per_node:
            if self.per_node is None:
                self.progress("choosing a smoothing strength per node (emulated int8 error)")
                self.per_node = calibrate.choose_alphas(
                    self.fused, self.activations, grid=quantize.SMOOTH_GRID, reduce_range=config.reduce_range
                )
            alphas = self.per_node
        if alpha not in self.smoothed:
            assert alphas is not None
            self.progress(f"smoothing activation outliers into weights (alpha {alpha})")
            self.smoothed[alpha] = self.work / f"smoothed-{alpha}.onnx"
            calibrate.smooth(self.fused, self.smoothed[alpha], self.activations, alphas)
        kept: tuple[str, ...] = ()
        if config.keep:
            key = (alpha, config.reduce_range)
            if key not in self.rankings:
                self.progress(f"measuring each MatMul's sensitivity to int8 (alpha {alpha})")
                self.rankings[key] = calibrate.rank_sensitive(
                    self.fused,
                    self.activations,
                    self.feeds[:SENSITIVITY_TEXTS],
                    probe=self.probe,
                    alpha=alphas,
                    reduce_range=config.reduce_range,
                )
            kept = tuple(node for node, _ in self.rankings[key][: config.keep])
        return self.smoothed[alpha], kept


def _outcome(
    config: QuantConfig,
    final: Path,
    level: str,
    kept: tuple[str, ...],
    gate: Gate,
    reference: Path,
    latency_feed: dict[str, np.ndarray],
    ref_bytes: int,
    max_size_ratio: float | None,
    started: float,
) -> MeasuredCandidate:
    measured: Measured = gate.measure(final, level)
    reference_ms, candidate_ms = interleaved_latency(reference, final, latency_feed, candidate_level=level)
    size = model_bytes(final)
    ratio = size / ref_bytes
    failures = measured.failures
    if max_size_ratio is not None and ratio > max_size_ratio:
        failures += (f"size {ratio:.1%} of fp32 > {max_size_ratio:.0%}",)
    return MeasuredCandidate(
        config=config,
        model_bytes=size,
        size_ratio=ratio,
        scores=measured.scores,
        batch1=measured.batch1,
        batched=measured.batched,
        latency_ms=candidate_ms,
        reference_ms=reference_ms,
        kept=kept,
        failures=failures,
        seconds=time.perf_counter() - started,
        path=final,
        load_with=level,
        session_ms=session_ms(final, level),
    )


def _broken(config: QuantConfig, exc: Exception, seconds: float, folder: Path) -> MeasuredCandidate:
    return MeasuredCandidate(
        config=config,
        model_bytes=0,
        size_ratio=0.0,
        scores=None,
        batch1=None,
        batched=None,
        latency_ms=float("inf"),
        reference_ms=0.0,
        kept=(),
        failures=(f"could not build: {type(exc).__name__}: {str(exc)[:300]}",),
        seconds=seconds,
        path=folder / "model.onnx",
    )
