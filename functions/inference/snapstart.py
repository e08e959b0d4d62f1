"""The Lambda entry point under SnapStart: `functions.inference.snapstart.handler`.

Importing this module imports `functions.inference.handler`, which loads the model during init, so the
snapshot Lambda takes after init already holds a loaded, warmed-up ONNX Runtime session. Two runtime
hooks (from `snapshot_restore_py`, which the python3.12 Lambda runtime provides) make that safe:

- before the snapshot: one more inference, so every lazily touched page is in the snapshot;
- after each restore: fresh random seeds (every clone restored from one snapshot would otherwise
  share the same `random` / NumPy state), and the cache's pooled connections dropped (they reopen on
  next use), so no clone reuses a socket opened before the snapshot.

The instance id needs nothing: StartTracker draws it at the first invocation, after the restore, so
clones get distinct ids; and the first invocation after a restore is counted as `restore`, not `cold`.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from typing import Any

from functions.inference import handler as _entry

handler = _entry.handler

try:  # provided by the Lambda Python runtime (and the `snapshot-restore-py` package)
    from snapshot_restore_py import register_after_restore, register_before_snapshot
except ImportError:  # elsewhere nothing takes snapshots: the hooks are plain functions

    def register_before_snapshot(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[..., Any]:
        return func

    def register_after_restore(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[..., Any]:
        return func


def before_snapshot() -> None:
    _entry.RUNTIME.task.warmup()


def after_restore() -> None:
    seed = int.from_bytes(os.urandom(16), "big")
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # pragma: no cover - numpy is a runtime dependency
        pass
    # The cache's shared tier (functions/cache) pools its connections: closing the idle ones makes the
    # next request open fresh sockets instead of reusing ones the snapshot captured.
    cached = getattr(_entry.RUNTIME.task, "source", None)  # a text task's rows, behind the cache if any
    shared = getattr(cached, "shared", None)
    if shared is not None and callable(getattr(shared, "close", None)):
        shared.close()
    for holder in (_entry.RUNTIME.plane, cached):
        renew = getattr(holder, "after_restore", None)
        if callable(renew):
            renew()


register_before_snapshot(before_snapshot)
register_after_restore(after_restore)
