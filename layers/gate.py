"""The accuracy gate: how closely a candidate model answers like the fp32 reference, on data it was
not calibrated on, and whether that is close enough. One set of scores per task:

Embeddings: cosine between each text's two vectors (mean and min); Spearman correlation of all
pairwise similarities (does the candidate rank pairs of texts the same way); nearest-neighbour top-1
agreement, counted only where the reference's best neighbour leads the second by more than a margin
(near-ties flip under any perturbation, including fp32 reordering).
Classification: top-1 label agreement (counted where the reference's best label leads by a margin),
the largest difference of any served score, and for one-score models (cross-encoders) the Spearman
correlation of the scores, i.e. whether a rerank orders documents the same way.
Tensor models: per output, the cosine of each sample's values (min) and the relative error of the
whole output; integer and boolean outputs must agree exactly.

Every score class has `failures(limits)`, `cells()` (the report's columns), `accuracy` (one figure,
higher is better, for `--objective accuracy`) and `worst(...)` (element-wise, over batch 1 and batched).
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

    def cells(self) -> tuple[tuple[str, str], ...]:
        return (
            ("mean", f"{self.mean_cosine:.4f}"),
            ("min", f"{self.min_cosine:.4f}"),
            ("spear", f"{self.spearman:.4f}"),
            ("top1", f"{self.top1:.1%}"),
        )

    @property
    def accuracy(self) -> float:
        return self.mean_cosine

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
class ClassificationThresholds:
    top1: float = 0.99
    max_score_diff: float = 0.05
    spearman: float = 0.99  # one-score models only
    top1_margin: float = 0.02


@dataclass(frozen=True)
class ClassificationScores:
    top1: float  # share of counted items whose best label agrees
    max_score_diff: float  # largest |reference - candidate| over every item and label
    mean_score_diff: float
    spearman: float | None  # of the scores, for one-score models (None: several labels)
    top1_counted: int  # items whose reference best label leads the second by more than the margin
    items: int

    def failures(self, limits: ClassificationThresholds) -> tuple[str, ...]:
        out = []
        if self.top1 < limits.top1:
            out.append(f"top-1 label agreement {self.top1:.4f} < {limits.top1}")
        if self.max_score_diff > limits.max_score_diff:
            out.append(f"largest score difference {self.max_score_diff:.4f} > {limits.max_score_diff}")
        if self.spearman is not None and self.spearman < limits.spearman:
            out.append(f"score Spearman {self.spearman:.4f} < {limits.spearman}")
        return tuple(out)

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)

    def cells(self) -> tuple[tuple[str, str], ...]:
        return (
            ("top1", f"{self.top1:.1%}"),
            ("maxdiff", f"{self.max_score_diff:.4f}"),
            ("spear", "-" if self.spearman is None else f"{self.spearman:.4f}"),
        )

    @property
    def accuracy(self) -> float:
        return -self.max_score_diff

    @staticmethod
    def worst(*scores: ClassificationScores) -> ClassificationScores:
        spearmen = [s.spearman for s in scores if s.spearman is not None]
        return ClassificationScores(
            top1=min(s.top1 for s in scores),
            max_score_diff=max(s.max_score_diff for s in scores),
            mean_score_diff=max(s.mean_score_diff for s in scores),
            spearman=min(spearmen) if spearmen else None,
            top1_counted=min(s.top1_counted for s in scores),
            items=min(s.items for s in scores),
        )


def classification_scores(
    reference: np.ndarray, candidate: np.ndarray, *, margin: float = 0.02
) -> ClassificationScores:
    """Compare served scores [n, labels] row by row (row i of both is the same item)."""
    if reference.shape != candidate.shape or reference.ndim != 2 or len(reference) < 2:
        raise ValueError(
            f"need two [n >= 2, labels] arrays of one shape, got {reference.shape} and {candidate.shape}"
        )
    ref, cand = reference.astype(np.float64), candidate.astype(np.float64)
    diff = np.abs(ref - cand)
    if ref.shape[1] == 1:
        counted = np.ones(len(ref), dtype=bool)
        top1 = 1.0
        rho: float | None = spearman(ref[:, 0], cand[:, 0])
    else:
        best_two = np.sort(ref, axis=1)[:, -2:]
        counted = (best_two[:, 1] - best_two[:, 0]) > margin
        agree = ref.argmax(axis=1) == cand.argmax(axis=1)
        top1 = float(agree[counted].mean()) if counted.any() else 1.0
        rho = None
    return ClassificationScores(
        top1=top1,
        max_score_diff=float(diff.max()),
        mean_score_diff=float(diff.mean()),
        spearman=rho,
        top1_counted=int(counted.sum()),
        items=len(ref),
    )


@dataclass(frozen=True)
class TensorThresholds:
    min_cosine: float = 0.99
    relative_error: float = 0.05
    agreement: float = 0.99  # integer and boolean outputs


@dataclass(frozen=True)
class OutputScores:
    """One output. Float outputs: cosine of each sample's values and ||ref - cand|| / ||ref|| over
    the whole output. Integer and boolean outputs (labels, masks): the share of equal elements."""

    name: str
    min_cosine: float | None
    relative_error: float | None
    agreement: float | None

    def failures(self, limits: TensorThresholds) -> tuple[str, ...]:
        out = []
        if self.min_cosine is not None and self.min_cosine < limits.min_cosine:
            out.append(f"{self.name}: min cosine {self.min_cosine:.4f} < {limits.min_cosine}")
        if self.relative_error is not None and self.relative_error > limits.relative_error:
            out.append(f"{self.name}: relative error {self.relative_error:.4f} > {limits.relative_error}")
        if self.agreement is not None and self.agreement < limits.agreement:
            out.append(f"{self.name}: agreement {self.agreement:.4f} < {limits.agreement}")
        return tuple(out)


@dataclass(frozen=True)
class TensorScores:
    outputs: tuple[OutputScores, ...]
    samples: int

    def failures(self, limits: TensorThresholds) -> tuple[str, ...]:
        return tuple(f for o in self.outputs for f in o.failures(limits))

    def as_dict(self) -> dict[str, object]:
        return {"samples": self.samples, "outputs": {o.name: asdict(o) for o in self.outputs}}

    def _floats(self, attr: str) -> list[float]:
        return [v for o in self.outputs if (v := getattr(o, attr)) is not None]

    def cells(self) -> tuple[tuple[str, str], ...]:
        cosines, errors, agreements = self._floats("min_cosine"), self._floats("relative_error"), self._floats("agreement")
        return (
            ("min cos", f"{min(cosines):.4f}" if cosines else "-"),
            ("rel err", f"{max(errors):.4f}" if errors else "-"),
            ("agree", f"{min(agreements):.1%}" if agreements else "-"),
        )

    @property
    def accuracy(self) -> float:
        cosines, agreements = self._floats("min_cosine"), self._floats("agreement")
        return min(cosines + agreements) if cosines or agreements else 0.0

    @staticmethod
    def worst(*scores: TensorScores) -> TensorScores:
        def pick(values: list[float | None], low: bool) -> float | None:
            present = [v for v in values if v is not None]
            return (min(present) if low else max(present)) if present else None

        outputs = []
        for i, first in enumerate(scores[0].outputs):
            column = [s.outputs[i] for s in scores]
            outputs.append(
                OutputScores(
                    name=first.name,
                    min_cosine=pick([o.min_cosine for o in column], low=True),
                    relative_error=pick([o.relative_error for o in column], low=False),
                    agreement=pick([o.agreement for o in column], low=True),
                )
            )
        return TensorScores(tuple(outputs), samples=min(s.samples for s in scores))


def output_scores(name: str, reference: np.ndarray, candidate: np.ndarray) -> OutputScores:
    """Compare one output over all samples; axis 0 indexes samples."""
    if reference.shape != candidate.shape:
        raise ValueError(f"output {name!r}: shapes differ, {reference.shape} vs {candidate.shape}")
    if reference.dtype.kind not in "fc":
        agreement = float((reference == candidate).mean()) if reference.size else 1.0
        return OutputScores(name, None, None, agreement)
    ref = reference.astype(np.float64).reshape(len(reference), -1) if reference.ndim else reference.reshape(1, 1)
    cand = candidate.astype(np.float64).reshape(ref.shape)
    norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(cand, axis=1)
    both_zero = (np.linalg.norm(ref, axis=1) == 0) & (np.linalg.norm(cand, axis=1) == 0)
    cosines = np.where(both_zero, 1.0, (ref * cand).sum(axis=1) / np.maximum(norms, 1e-30))
    scale = float(np.linalg.norm(ref))
    error = float(np.linalg.norm(ref - cand) / scale) if scale else float(np.linalg.norm(cand) > 0)
    return OutputScores(name, float(cosines.min()), error, None)


def tensor_scores(reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray]) -> TensorScores:
    """Every output of the reference, compared with the candidate's output of the same name."""
    outputs = tuple(output_scores(name, ref, candidate[name]) for name, ref in reference.items())
    samples = min((len(v) if v.ndim else 1) for v in reference.values()) if reference else 0
    return TensorScores(outputs, samples)
