"""Cache keys: the model's identity + everything else that shapes an answer + the text itself.

One key per text, not per request, so that a text repeated inside a new request still hits. The text
is taken byte for byte (UTF-8): no case folding or whitespace trimming, because the tokenizer decides
what is equivalent and a cache must return exactly what the model would.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, NamedTuple

# Bump when the key derivation or the value layout changes: old entries then simply stop matching.
SCHEMA = "preheat-cache/1"


class Key(NamedTuple):
    digest: bytes  # sha256 over the key space and the text: 32 bytes, also stored in the value
    text: str  # the form stored in the shared tier: readable prefix + hex digest


class KeySpace:
    """Every key of one model variant. `model_id` is the manifest's identity hash over all files;
    `variant` holds what else changes answers (manifest text settings, the truncate flag)."""

    def __init__(self, model_id: str, variant: Mapping[str, Any]) -> None:
        if len(model_id) != 64:
            raise ValueError(f"model_id must be a sha256 hex digest, got {model_id!r}")
        self.model_id = model_id
        self.model_digest = bytes.fromhex(model_id)
        self.variant = json.dumps(dict(variant), sort_keys=True, separators=(",", ":"))
        self._base = hashlib.sha256(f"{SCHEMA}\n{model_id}\n{self.variant}\n".encode())
        # The model id in clear lets an operator find (or drop) one model's entries by prefix.
        self._prefix = f"preheat:{model_id[:16]}:"

    def key_of(self, item: str | tuple[str, str]) -> Key:
        """A text's key, or a pair's: its first text's length in front keeps ("ab", "c") and
        ("a", "bc") apart (a pair model's key space holds only pairs)."""
        return self.key(item if isinstance(item, str) else f"{len(item[0])}:{item[0]}{item[1]}")

    def key(self, text: str) -> Key:
        h = self._base.copy()
        # surrogatepass: JSON may carry lone surrogates; they must hash, not raise.
        h.update(text.encode("utf-8", "surrogatepass"))
        digest = h.digest()
        return Key(digest, self._prefix + digest.hex())
