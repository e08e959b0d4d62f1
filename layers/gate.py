"""The accuracy gate: how closely a candidate model answers like the fp32 reference, on text it was
not calibrated on, and whether that is close enough.

Embeddings: cosine between each text's two vectors (mean and min); Spearman correlation of all
pairwise similarities (does the candidate rank pairs of texts the same way); nearest-neighbour top-1
agreement, counted only where the reference's best neighbour leads the second by more than a margin
(near-ties flip under any perturbation, including fp32 reordering). Tensor models: max abs and max
relative error and argmax agreement over the last axis.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class EmbeddingThresholds:
    mean_cosine: float = 0.995
    min_cosine: float = 0.98
    spearman: float = 0.995
    top1: float = 0.99
    top1_margin: float = 0.02


@dataclass(frozen=True)
class EmbeddingScores:
    mean_cosine: float
    min_cosine: float
    spearman: float
    top1: float
    top1_counted: int  # texts whose reference neighbour leads by more than the margin
    texts: int

    def failures(self, limits: EmbeddingThresholds) -> tuple[str, ...]:
        checks = (
            ("mean cosine", self.mean_cosine, limits.mean_cosine),
            ("min cosine", self.min_cosine, limits.min_cosine),
            ("pairwise Spearman", self.spearman, limits.spearman),
            ("top-1 agreement", self.top1, limits.top1),
        )
        return tuple(f"{name} {value:.4f} < {limit}" for name, value, limit in checks if value < limit)

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)

    @staticmethod
    def worst(*scores: EmbeddingScores) -> EmbeddingScores:
        """Element-wise worst of several measurements (e.g. batch 1 and batched)."""
        return EmbeddingScores(
            mean_cosine=min(s.mean_cosine for s in scores),
            min_cosine=min(s.min_cosine for s in scores),
            spearman=min(s.spearman for s in scores),
            top1=min(s.top1 for s in scores),
            top1_counted=min(s.top1_counted for s in scores),
            texts=min(s.texts for s in scores),
        )


def rankdata(values: np.ndarray) -> np.ndarray:
    """Ranks from 0, ties sharing their mean rank (as scipy.stats.rankdata, minus one)."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.arange(len(values), dtype=np.float64)
    sorted_values = values[order]
    # Average the ranks of runs of equal values.
    boundaries = np.flatnonzero(np.diff(sorted_values)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [len(values)]))
    for start, end in zip(starts, ends, strict=True):
        if end - start > 1:
            ranks[order[start:end]] = (start + end - 1) / 2.0
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError("spearman needs two 1-D arrays of the same length, at least 2")
    ra, rb = rankdata(a), rankdata(b)
    ra -= ra.mean()
    rb -= rb.mean()
    denominator = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / denominator) if denominator else 1.0


def _normalise(vectors: np.ndarray) -> np.ndarray:
    v = vectors.astype(np.float64)
    norms: np.ndarray = np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    unit: np.ndarray = v / norms
    return unit


def embedding_scores(
    reference: np.ndarray, candidate: np.ndarray, *, margin: float = 0.02
) -> EmbeddingScores:
    """Compare [n, d] embeddings row by row (row i of both is the same text)."""
    if reference.shape != candidate.shape or reference.ndim != 2 or len(reference) < 3:
        raise ValueError(
            f"need two [n >= 3, d] arrays of one shape, got {reference.shape} and {candidate.shape}"
        )
    ref, cand = _normalise(reference), _normalise(candidate)
    cosines = (ref * cand).sum(axis=1)
    sim_ref, sim_cand = ref @ ref.T, cand @ cand.T
    upper = np.triu_indices(len(ref), k=1)
    rho = spearman(sim_ref[upper], sim_cand[upper])
    np.fill_diagonal(sim_ref, -np.inf)
    np.fill_diagonal(sim_cand, -np.inf)
    best_two = np.sort(sim_ref, axis=1)[:, -2:]
    counted = (best_two[:, 1] - best_two[:, 0]) > margin
    agree = sim_ref.argmax(axis=1) == sim_cand.argmax(axis=1)
    top1 = float(agree[counted].mean()) if counted.any() else 1.0
    return EmbeddingScores(
        mean_cosine=float(cosines.mean()),
        min_cosine=float(cosines.min()),
        spearman=rho,
        top1=top1,
        top1_counted=int(counted.sum()),
        texts=len(ref),
    )


@dataclass(frozen=True)
class TensorThresholds:
    max_abs: float = 0.05
    max_rel: float = 0.05
    argmax: float = 0.99


@dataclass(frozen=True)
class TensorScores:
    max_abs: float
    max_rel: float  # max |a - b| / max |a|: relative to the output's scale, not per element
    argmax: float  # share of rows (all axes but the last) whose argmax agrees

    def failures(self, limits: TensorThresholds) -> tuple[str, ...]:
        out = []
        if self.max_abs > limits.max_abs:
            out.append(f"max abs error {self.max_abs:.4g} > {limits.max_abs}")
        if self.max_rel > limits.max_rel:
            out.append(f"max relative error {self.max_rel:.4g} > {limits.max_rel}")
        if self.argmax < limits.argmax:
            out.append(f"argmax agreement {self.argmax:.4f} < {limits.argmax}")
        return tuple(out)


def tensor_scores(reference: np.ndarray, candidate: np.ndarray) -> TensorScores:
    if reference.shape != candidate.shape:
        raise ValueError(f"shapes differ: {reference.shape} vs {candidate.shape}")
    diff = np.abs(reference.astype(np.float64) - candidate.astype(np.float64))
    scale = float(np.abs(reference).max()) or 1.0
    agree = reference.argmax(axis=-1) == candidate.argmax(axis=-1)
    return TensorScores(
        max_abs=float(diff.max()), max_rel=float(diff.max() / scale), argmax=float(agree.mean())
    )
