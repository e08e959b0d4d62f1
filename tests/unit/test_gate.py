"""The accuracy gate's figures: Spearman, cosine, nearest-neighbour agreement with a margin."""

from __future__ import annotations

import numpy as np
import pytest

from layers import gate


def unit_rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    v = rng.normal(size=(n, d))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_rankdata_averages_ties() -> None:
    assert gate.rankdata(np.array([10.0, 20.0, 20.0, 5.0])).tolist() == [1.0, 2.5, 2.5, 0.0]


def test_spearman_is_one_for_any_monotonic_transform_and_minus_one_reversed() -> None:
    x = np.random.default_rng(0).normal(size=200)
    assert gate.spearman(x, np.exp(3 * x)) == pytest.approx(1.0)
    assert gate.spearman(x, -x) == pytest.approx(-1.0)


def test_spearman_matches_pearson_of_ranks_with_ties() -> None:
    a = np.array([1.0, 2.0, 2.0, 3.0, 4.0, 4.0, 5.0])
    b = np.array([2.0, 1.0, 3.0, 3.0, 6.0, 5.0, 7.0])
    expected = np.corrcoef(gate.rankdata(a), gate.rankdata(b))[0, 1]
    assert gate.spearman(a, b) == pytest.approx(expected)


def test_spearman_rejects_mismatched_input() -> None:
    with pytest.raises(ValueError):
        gate.spearman(np.zeros(3), np.zeros(4))


def test_identical_embeddings_score_perfectly() -> None:
    ref = unit_rows(np.random.default_rng(1), 40, 16)
    scores = gate.embedding_scores(ref, ref.copy())
    assert scores.mean_cosine == pytest.approx(1.0)
    assert scores.min_cosine == pytest.approx(1.0)
    assert scores.spearman == pytest.approx(1.0)
    assert scores.top1 == 1.0
    assert scores.texts == 40
    assert scores.failures(gate.EmbeddingThresholds()) == ()


def test_noise_lowers_every_figure_and_fails_the_gate() -> None:
    rng = np.random.default_rng(2)
    ref = unit_rows(rng, 60, 32)
    noisy = ref + rng.normal(scale=0.3, size=ref.shape)
    scores = gate.embedding_scores(ref, noisy)
    assert scores.mean_cosine < 0.99
    assert scores.min_cosine < scores.mean_cosine
    assert scores.spearman < 0.99
    failures = scores.failures(gate.EmbeddingThresholds())
    assert any("mean cosine" in f for f in failures)
    assert any("Spearman" in f for f in failures)


def test_top1_counts_only_clear_neighbours() -> None:
    # Text 0's two nearest neighbours are a near-tie (texts 1 and 2); text 3's nearest is clearly 4.
    base = np.eye(6)
    ref = np.stack(
        [
            base[0],
            base[0] * 0.9 + base[1] * 0.436,  # cos to 0: 0.900
            base[0] * 0.895 + base[2] * 0.446,  # cos to 0: 0.895 (a near-tie with 1)
            base[3],
            base[3] * 0.95 + base[4] * 0.31,
            base[5],
        ]
    )
    swapped = ref.copy()
    # The candidate flips the near-tie: 2 becomes 0's nearest. Not counted, so agreement stays 1.
    swapped[1], swapped[2] = ref[2].copy(), ref[1].copy()
    scores = gate.embedding_scores(ref, swapped, margin=0.02)
    assert scores.top1_counted < len(ref)
    assert scores.top1 == 1.0
    # Without the margin the flip counts against the candidate.
    strict = gate.embedding_scores(ref, swapped, margin=0.0)
    assert strict.top1 < 1.0


def test_worst_takes_the_minimum_of_each_figure() -> None:
    a = gate.EmbeddingScores(0.99, 0.95, 0.997, 1.0, 10, 50)
    b = gate.EmbeddingScores(0.998, 0.90, 0.990, 0.98, 12, 50)
    w = gate.EmbeddingScores.worst(a, b)
    assert (w.mean_cosine, w.min_cosine, w.spearman, w.top1, w.top1_counted) == (0.99, 0.90, 0.990, 0.98, 10)


def test_embedding_scores_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError):
        gate.embedding_scores(np.zeros((5, 4)), np.zeros((5, 3)))


def test_tensor_scores_compare_every_output_and_fail_on_any() -> None:
    ref = {"y": np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]), "label": np.array([2, 0])}
    same = gate.tensor_scores(ref, {k: v.copy() for k, v in ref.items()})
    assert same.samples == 2
    assert same.failures(gate.TensorThresholds()) == ()
    assert same.outputs[0].min_cosine == pytest.approx(1.0) and same.outputs[0].relative_error == 0.0
    assert same.outputs[1].agreement == 1.0 and same.outputs[1].min_cosine is None
    off = gate.tensor_scores(
        ref, {"y": ref["y"] + np.array([[0.0, 3.0, 0.0], [0.0, 0.0, 0.0]]), "label": np.array([1, 0])}
    )
    y, label = off.outputs
    # Row 0 moved from [1, 2, 3] to [1, 5, 3]: cosine 20 / (sqrt(14) sqrt(35)); row 1 unchanged.
    assert y.min_cosine == pytest.approx(20 / np.sqrt(14 * 35))
    assert y.relative_error == pytest.approx(3.0 / np.sqrt(28))
    assert label.agreement == 0.5
    failures = off.failures(gate.TensorThresholds())
    assert len(failures) == 3 and all(f.split(":")[0] in ("y", "label") for f in failures)
    worst = gate.TensorScores.worst(same, off)
    assert worst.outputs[0].min_cosine == y.min_cosine and worst.outputs[1].agreement == 0.5


def test_classification_scores_count_top1_only_where_the_reference_is_clear() -> None:
    ref = np.array([[0.9, 0.05, 0.05], [0.34, 0.33, 0.33], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    cand = ref.copy()
    cand[1] = [0.33, 0.34, 0.33]  # a near-tie flips: not counted
    scores = gate.classification_scores(ref, cand)
    assert scores.top1 == 1.0 and scores.top1_counted == 3
    assert scores.max_score_diff == pytest.approx(0.01) and scores.spearman is None
    assert scores.failures(gate.ClassificationThresholds()) == ()
    cand[2] = [0.5, 0.4, 0.1]  # a clear label changes
    flipped = gate.classification_scores(ref, cand)
    assert flipped.top1 == pytest.approx(2 / 3)
    assert flipped.max_score_diff == pytest.approx(0.4)
    assert len(flipped.failures(gate.ClassificationThresholds())) == 2


def test_one_score_models_are_judged_by_score_order() -> None:
    ref = np.linspace(0.1, 0.9, 20)[:, None]
    swapped = ref.copy()
    swapped[[3, 15]] = swapped[[15, 3]]
    scores = gate.classification_scores(ref, swapped)
    assert scores.top1 == 1.0 and scores.spearman is not None and scores.spearman < 0.99
    assert any("Spearman" in f for f in scores.failures(gate.ClassificationThresholds()))
    assert gate.classification_scores(ref, ref + 0.001).failures(gate.ClassificationThresholds()) == ()
