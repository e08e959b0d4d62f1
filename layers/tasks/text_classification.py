"""`text-classification`: sequence classifiers (one text, a score per label) and cross-encoders
(a pair of texts, usually one relevance score).

Export: `AutoModelForSequenceClassification`, its `logits`; the labels, the activation (softmax,
sigmoid, none) and pairs from config.json. Gate: the served scores of held-out items (texts, or
pairs) against fp32: top-1 label agreement, the largest score difference, and for one-score models
the Spearman correlation of the scores (a rerank's order). Probe: the logits of each calibration item.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from functions.inference.manifest import ClassificationSpec, Manifest
from layers import calibrate, gate, search
from layers.samples import Item, Split
from layers.spec import ModelSpec, SpecError
from layers.tasks import Progress, Sections, Slimming
from layers.tasks import text as common


class TextClassification:
    task = "text-classification"

    def split(self, spec: ModelSpec, sample: Path | None, shapes: dict[str, tuple[int, ...]]) -> Split:
        return common.split(spec, sample, shapes)

    def export(self, spec: ModelSpec, data: Split, target: Path, progress: Progress) -> Sections:
        exported, text, notes = common.export_text(
            spec, data, target, progress, head="sequence-classification"
        )
        output_name = spec.output or "logits"
        output = next((o for o in exported.outputs if o.name == output_name), None)
        if output is None or len(output.shape) != 2 or output.shape[-1] != len(spec.labels):
            raise SpecError(
                f"the exported graph's {output_name!r} is {list(output.shape) if output else 'missing'}: "
                f"expected [batch, {len(spec.labels)}] for labels {', '.join(spec.labels)}"
            )
        classification = ClassificationSpec(
            output=output.name, labels=spec.labels, activation=spec.activation
        )
        return common.sections(exported, spec, text, notes, task=self.task, classification=classification)

    def gate(self, fp32_dir: Path, manifest: Manifest, data: Split) -> common.TextGate:
        assert manifest.classification is not None
        limits = gate.ClassificationThresholds()
        one_score = len(manifest.classification.labels) == 1
        return common.TextGate(
            fp32_dir,
            manifest,
            data.gate,
            rows=_classify,
            score=lambda ref, cand: gate.classification_scores(ref, cand, margin=limits.top1_margin),
            worst=gate.ClassificationScores.worst,
            failures=lambda scores: scores.failures(limits),
            thresholds={
                "top1": limits.top1,
                "max_score_diff": limits.max_score_diff,
                **({"spearman": limits.spearman} if one_score else {}),
                "top1_margin": limits.top1_margin,
            },
        )

    def slimming(self, spec: ModelSpec, data: Split, fp32_dir: Path, manifest: Manifest) -> Slimming:
        assert manifest.classification is not None
        feed, described = common.latency_feed(fp32_dir, manifest, data.gate)
        one_score = len(manifest.classification.labels) == 1
        output = manifest.classification.output
        return Slimming(
            gate=self.gate(fp32_dir, manifest, data),
            space=search.default_space(),
            calibration_feeds=common.calibration_feeds(fp32_dir, manifest, data.calibration),
            latency_feed=feed,
            latency_input=described,
            probe=calibrate.Probe(
                calibrate.output_rows([output]),
                calibrate.relative_error if one_score else calibrate.cosine_error,
            ),
        )


def _classify(task: Any, items: Sequence[Item]) -> np.ndarray:
    values: np.ndarray = task.classify(list(items)).values
    return values


RECIPE = TextClassification()
