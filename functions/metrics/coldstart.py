"""What kind of start an invocation is. The single owner of that decision, made at handler entry."""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping

import msgspec

START_KINDS = ("cold", "provisioned", "restore", "warm", "warmup")

# AWS_LAMBDA_INITIALIZATION_TYPE -> what the first invocation of such an instance is.
_FIRST_BY_INIT_TYPE = {
    "on-demand": "cold",
    "provisioned-concurrency": "provisioned",
    "snap-start": "restore",
}


class Start(msgspec.Struct, frozen=True):
    kind: str  # one of START_KINDS
    first: bool  # the first invocation this instance serves
    instance_id: str
    init_type: str = "on-demand"  # AWS_LAMBDA_INITIALIZATION_TYPE of this instance

    @property
    def paid_init(self) -> bool:
        """Whether this invocation waited for its instance to start: the first one of an on-demand or
        SnapStart instance. A provisioned instance's init ran ahead, so nobody waited for it."""
        return self.first and self.init_type != "provisioned-concurrency"


class StartTracker:
    """Per-instance state that Lambda keeps between invocations.

    The first invocation of an on-demand instance is `cold`; of a provisioned one, `provisioned`
    (its init ran ahead of time, so no request paid for it); of a SnapStart one, `restore`. A warm-up
    ping is always `warmup`, and when it is an instance's first invocation it absorbs that cold start.
    The instance id is drawn at the first invocation, not at init, so SnapStart clones restored from
    one snapshot get distinct ids.
    """

    def __init__(self) -> None:
        self._instance_id = ""
        self._init_type = "on-demand"

    @property
    def instance_id(self) -> str:
        return self._instance_id

    def enter(self, *, warmup: bool, env: Mapping[str, str] | None = None) -> Start:
        first = not self._instance_id
        if first:
            self._instance_id = uuid.uuid4().hex[:16]
            self._init_type = (os.environ if env is None else env).get(
                "AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"
            )
        if warmup:
            return Start("warmup", first, self._instance_id, self._init_type)
        if not first:
            return Start("warm", False, self._instance_id, self._init_type)
        return Start(
            _FIRST_BY_INIT_TYPE.get(self._init_type, "cold"), True, self._instance_id, self._init_type
        )
