"""`text-embedding`: one vector per text (BERT, RoBERTa, XLM-R, MPNet, DistilBERT-style encoders).

Export: the encoder without a head (`AutoModel`), its token states as `last_hidden_state`, pooled
(mean or CLS) and normalized at run time as the model's sentence-transformers config says. Gate: the
served vectors of held-out texts against fp32 (cosine, pairwise Spearman, nearest-neighbour top-1).
Probe: the pooled vector of each calibration text.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from functions.inference.manifest import EmbeddingSpec, Manifest
from layers import calibrate, gate, search
from layers.samples import Item, Split
from layers.spec import ModelSpec, SpecError
from layers.tasks import Feed, Progress, Sections, Slimming
from layers.tasks import text as common


class TextEmbedding:
    task = "text-embedding"

    def split(self, spec: ModelSpec, sample: Path | None, shapes: dict[str, tuple[int, ...]]) -> Split:
        data = common.split(spec, sample, shapes)
        if len(data.gate) < 3:
            raise SpecError("the embedding gate needs at least 3 held-out texts")
        return data

    def export(self, spec: ModelSpec, data: Split, target: Path, progress: Progress) -> Sections:
        exported, text, notes = common.export_text(spec, data, target, progress, head="base")
        output_name = spec.output or "last_hidden_state"
        output = next((o for o in exported.outputs if o.name == output_name), None)
        if output is None or not isinstance(output.shape[-1], int):
            raise SpecError(f"the exported graph has no output {output_name!r} with a fixed width")
        rank = {"none": 2, "mean": 3, "cls": 3}[spec.pooling]
        if len(output.shape) != rank:
            raise SpecError(
                f"output {output.name!r} is {list(output.shape)}: pooling {spec.pooling} needs rank {rank} "
                "(token states for mean or cls, one vector per text for none)"
            )
        embedding = EmbeddingSpec(
            output=output.name,
            dimensions=int(output.shape[-1]),
            pooling=spec.pooling,
            normalize=spec.normalize,
        )
        return common.sections(exported, spec, text, notes, task=self.task, embedding=embedding)

    def gate(self, fp32_dir: Path, manifest: Manifest, data: Split) -> common.TextGate:
        limits = gate.EmbeddingThresholds()
        return common.TextGate(
            fp32_dir,
            manifest,
            data.gate,
            rows=_embed,
            score=lambda ref, cand: gate.embedding_scores(ref, cand, margin=limits.top1_margin),
            worst=gate.EmbeddingScores.worst,
            failures=lambda scores: scores.failures(limits),
            thresholds={
                "mean_cosine": limits.mean_cosine,
                "min_cosine": limits.min_cosine,
                "spearman": limits.spearman,
                "top1": limits.top1,
                "top1_margin": limits.top1_margin,
            },
        )

    def slimming(self, spec: ModelSpec, data: Split, fp32_dir: Path, manifest: Manifest) -> Slimming:
        assert manifest.embedding is not None
        feed, described = common.latency_feed(fp32_dir, manifest, data.gate)
        return Slimming(
            gate=self.gate(fp32_dir, manifest, data),
            space=search.default_space(),
            calibration_feeds=common.calibration_feeds(fp32_dir, manifest, data.calibration),
            latency_feed=feed,
            latency_input=described,
            probe=calibrate.Probe(pooled(manifest.embedding)),
        )


def _embed(task: Any, items: Sequence[Item]) -> np.ndarray:
    values: np.ndarray = task.embed(list(items)).values
    return values


def pooled(spec: EmbeddingSpec) -> Any:
    """Probe rows: each (unpadded, batch-1) feed's vector pooled as served; the cosine error ignores
    the normalization."""

    def rows(session: Any, feeds: Sequence[Feed]) -> np.ndarray:
        accepted = {i.name for i in session.get_inputs()}
        vectors = []
        for feed in feeds:
            out = session.run([spec.output], {k: v for k, v in feed.items() if k in accepted})[0]
            if spec.pooling == "mean":
                vector = out.reshape(-1, out.shape[-1]).mean(axis=0)  # [1, tokens, d] -> [d]
            elif spec.pooling == "cls":
                vector = out[0, 0]
            else:
                vector = out.reshape(-1)
            vectors.append(vector / max(float(np.linalg.norm(vector)), 1e-12))
        return np.stack(vectors)

    return rows


RECIPE = TextEmbedding()
