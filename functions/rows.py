"""The contract between a text task and the cache in front of it: items in, one float row per item out.

A text model is a `RowSource`; so is the cache that wraps one (functions.cache.CachedRows). Both sides
import this module and nothing of each other, so the inference runtime depends on the cache and the
cache on no part of the runtime.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec
import numpy as np

Item = str | tuple[str, str]  # a text, or (text, text_pair) for pair models


class Rows(msgspec.Struct, frozen=True):
    values: np.ndarray  # [n, width] float32, one row per item, in request order
    tokens: tuple[int, ...]  # tokens the model saw per item, after truncation
    served_by: str = "miss"  # which cache level answered; "miss" when the model ran


class RowSource(Protocol):
    """Items to rows: a text model, or a cache in front of one."""

    width: int

    def rows(self, items: Sequence[Item]) -> Rows: ...
