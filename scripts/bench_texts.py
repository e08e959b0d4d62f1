"""Texts for warm-latency benchmarks: every one distinct, their lengths from one fixed distribution.

A warm latency compared with the floor's must run the model on every request: a repeated text would
be answered by preheat's in-process cache (tens of microseconds) while the floor runs the model each
time. Distinct texts miss every cache; a fixed length distribution (the same texts, in the same order,
for every function and every run) makes runs and functions comparable.
"""

from __future__ import annotations

import random

# Words per text, cycled: short queries to long sentences, ~10-40 tokens with a BERT WordPiece
# vocabulary (the request's number and one word per slot; common words are one token each).
LENGTHS = (6, 8, 10, 12, 16, 20, 28)
_WORDS = (
    "the of and to in is for on that with as it at by from this be are was have an or not which "
    "model cold warm start request latency server function cache memory time first data network "
    "query answer search vector text token batch layer service cloud region user price cost fast "
    "slow small large early late quiet busy simple clear short long light heavy open closed north "
    "south river city market garden kitchen window music story letter morning evening winter summer "
    "train ship road bridge school doctor teacher engineer farmer writer painter library museum"
).split()


def distinct_texts(n: int, *, seed: int = 16) -> list[str]:
    """n different texts, the i-th always the same for a given seed; lengths cycle through LENGTHS."""
    rng = random.Random(seed)
    texts = []
    for i in range(n):
        words = rng.choices(_WORDS, k=LENGTHS[i % len(LENGTHS)])
        texts.append(f"Request {i}: " + " ".join(words) + ".")
    return texts


def describe() -> str:
    return f"distinct texts of {min(LENGTHS)}-{max(LENGTHS)} words (+ a number), lengths cycling {list(LENGTHS)}"
