"""Search a small space of slimming configurations; keep the fastest one that passes the gate.

Each candidate is quantized from the fused fp32 graph, optimized offline at the portable level,
loaded exactly as the runtime loads it (graph optimization disabled), scored against the fp32 model
on held-out text (batch 1 and batched: dynamic int8 depends on what shares a batch, so the worse of
the two counts), sized, and timed at batch 1, 128 tokens, 1 thread. If nothing passes, the caller
gets every candidate's scores to report.
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

from layers import calibrate, gate, optimize, quantize
from layers.quantize import QuantConfig

LATENCY_TOKENS = 128
LATENCY_RUNS = 31  # interleaved pairs; 15 let the ratio wander by 0.2 between builds here
GATE_BATCH = 8
MAX_SIZE_RATIO = 0.30  # of the fp32 model's bytes
DEFAULT_THRESHOLDS = gate.EmbeddingThresholds()
SENSITIVITY_TEXTS = 64
SPEED_TIE = 0.05  # calibration texts used to rank nodes by sensitivity


def default_space() -> tuple[QuantConfig, ...]:
    """Every one is built and measured; the fastest that passes wins. Plain dynamic int8 is the
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
    )


@dataclass(frozen=True)
class Outcome:
    config: QuantConfig
    model_bytes: int
    size_ratio: float
    scores: gate.EmbeddingScores  # the worse of batch 1 and batched
    batch1: gate.EmbeddingScores
    batched: gate.EmbeddingScores
    latency_ms: float  # median, batch 1, LATENCY_TOKENS tokens, 1 thread
    reference_ms: float  # the fp32 model's median, measured interleaved with this candidate
    kept: tuple[str, ...]
    failures: tuple[str, ...]
    seconds: float
    path: Path = field(compare=False)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def speedup(self) -> float:
        return self.reference_ms / self.latency_ms if self.latency_ms > 0 else 0.0


@dataclass(frozen=True)
class SearchResult:
    outcomes: tuple[Outcome, ...]

    @property
    def chosen(self) -> Outcome | None:
        """The fastest passing candidate, by its speed-up over fp32 measured side by side. Candidates
        within SPEED_TIE of the fastest count as equally fast (timings on a shared machine move by
        more than that between runs; bytes do not), and of those the smallest wins."""
        passing = [o for o in self.outcomes if o.passed]
        if not passing:
            return None
        best = max(o.speedup for o in passing)
        tied = [o for o in passing if o.speedup >= best * (1.0 - SPEED_TIE)]
        return min(tied, key=lambda o: (o.model_bytes, -o.speedup))

    def report(self) -> str:
        lines = [
            f"{'candidate':38} {'MB':>6} {'ratio':>6} {'mean':>7} {'min':>7} {'spear':>7} {'top1':>6} {'ms@128':>7} {'fp32':>6} {'x':>5}  verdict"
        ]
        for o in self.outcomes:
            s = o.scores
            verdict = "pass" if o.passed else "FAIL: " + "; ".join(o.failures)
            lines.append(
                f"{o.config.name:38} {o.model_bytes / 1e6:6.1f} {o.size_ratio:6.1%} {s.mean_cosine:7.4f} "
                f"{s.min_cosine:7.4f} {s.spearman:7.4f} {s.top1:6.1%} {o.latency_ms:7.1f} {o.reference_ms:6.1f} {o.speedup:5.2f}  {verdict}"
            )
        lines.append(
            f"ms@128: median at batch 1, {LATENCY_TOKENS} tokens, 1 thread, run in turn with the fp32 model (fp32 column)"
        )
        return "\n".join(lines)


Encoder = Callable[[Path, str, int], np.ndarray]  # (model file, graph optimization, batch) -> [n, d]
Progress = Callable[[str], None]


def model_bytes(model: Path) -> int:
    return sum(p.stat().st_size for p in (model, optimize.data_file(model)) if p.is_file())


def _session(model: Path, graph_optimization: str) -> Any:
    import onnxruntime as ort

    from functions.inference.model import session_options

    return ort.InferenceSession(
        str(model), session_options(1, graph_optimization), providers=["CPUExecutionProvider"]
    )


def interleaved_latency(
    reference: Path, candidate: Path, feed: dict[str, np.ndarray], runs: int = LATENCY_RUNS
) -> tuple[float, float]:
    """Median ms of (reference at "all", candidate at "disabled"), one run of each in turn, so that
    load from other processes hits both alike and the ratio stays meaningful on a busy machine."""
    sessions = (_session(reference, "all"), _session(candidate, "disabled"))
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
    encode: Encoder,
    calibration_feeds: Sequence[dict[str, np.ndarray]],
    latency_feed: dict[str, np.ndarray],
    output: str = "last_hidden_state",
    thresholds: gate.EmbeddingThresholds = DEFAULT_THRESHOLDS,
    max_size_ratio: float = MAX_SIZE_RATIO,
    progress: Progress = lambda _: None,
) -> SearchResult:
    """Build and measure every configuration in space. Candidate files stay under work/<name>/."""
    ref_bytes = model_bytes(reference)
    ref_batch1 = encode(reference, "all", 1)
    ref_batched = encode(reference, "all", GATE_BATCH)
    progress("calibrating: activation ranges on the calibration text")
    activations = calibrate.capture(fused, calibration_feeds)
    smoothed: dict[str | float | None, Path] = {None: fused}
    rankings: dict[tuple[str | float | None, bool], list[tuple[str, float]]] = {}
    per_node: dict[str, float] | None = None
    outcomes = []
    for config in space:
        started = time.perf_counter()
        folder = work / config.name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        try:
            alpha: str | float | None = "per-node" if config.smooth_per_node else config.smooth_alpha
            alphas: calibrate.Alphas | None = config.smooth_alpha
            if config.smooth_per_node:
                if per_node is None:
                    progress("choosing a smoothing strength per node (emulated int8 error)")
                    per_node = calibrate.choose_alphas(
                        fused, activations, grid=quantize.SMOOTH_GRID, reduce_range=config.reduce_range
                    )
                alphas = per_node
            if alpha not in smoothed:
                assert alphas is not None
                progress(f"smoothing activation outliers into weights (alpha {alpha})")
                smoothed[alpha] = work / f"smoothed-{alpha}.onnx"
                calibrate.smooth(fused, smoothed[alpha], activations, alphas)
            kept: tuple[str, ...] = ()
            if config.keep:
                key = (alpha, config.reduce_range)
                if key not in rankings:
                    progress(f"measuring each MatMul's sensitivity to int8 (alpha {alpha})")
                    rankings[key] = calibrate.rank_sensitive(
                        fused,
                        activations,
                        calibration_feeds[:SENSITIVITY_TEXTS],
                        output=output,
                        alpha=alphas,
                        reduce_range=config.reduce_range,
                    )
                kept = tuple(node for node, _ in rankings[key][: config.keep])
            progress(f"candidate {config.name}: quantizing")
            quantized = quantize.apply(
                config,
                smoothed[alpha],
                folder / "quantized.onnx",
                kept=kept,
                calibration_feeds=calibration_feeds,
                work=folder,
            )
            final = folder / "model.onnx"
            optimize.save_optimized(quantized.path, final)
            progress(f"candidate {config.name}: gate and latency")
            batch1 = gate.embedding_scores(
                ref_batch1, encode(final, "disabled", 1), margin=thresholds.top1_margin
            )
            batched = gate.embedding_scores(
                ref_batched, encode(final, "disabled", GATE_BATCH), margin=thresholds.top1_margin
            )
            reference_ms, candidate_ms = interleaved_latency(reference, final, latency_feed)
        except Exception as exc:  # one broken candidate is a failed candidate, not a failed search
            outcomes.append(_broken(config, exc, time.perf_counter() - started, folder))
            continue
        worst = gate.EmbeddingScores.worst(batch1, batched)
        size = model_bytes(final)
        ratio = size / ref_bytes
        failures = worst.failures(thresholds)
        if ratio > max_size_ratio:
            failures += (f"size {ratio:.1%} of fp32 > {max_size_ratio:.0%}",)
        outcomes.append(
            Outcome(
                config=config,
                model_bytes=size,
                size_ratio=ratio,
                scores=worst,
                batch1=batch1,
                batched=batched,
                latency_ms=candidate_ms,
                reference_ms=reference_ms,
                kept=quantized.kept,
                failures=failures,
                seconds=time.perf_counter() - started,
                path=final,
            )
        )
    return SearchResult(tuple(outcomes))


def _broken(config: QuantConfig, exc: Exception, seconds: float, folder: Path) -> Outcome:
    zero = gate.EmbeddingScores(0.0, 0.0, 0.0, 0.0, 0, 0)
    return Outcome(
        config=config,
        model_bytes=0,
        size_ratio=0.0,
        scores=zero,
        batch1=zero,
        batched=zero,
        latency_ms=float("inf"),
        reference_ms=0.0,
        kept=(),
        failures=(f"could not build: {type(exc).__name__}: {str(exc)[:300]}",),
        seconds=seconds,
        path=folder / "model.onnx",
    )
