"""Lambda's size limits, and the check every layer build runs against them."""

from __future__ import annotations

from dataclasses import dataclass

MB = 1024 * 1024
# https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
DIRECT_UPLOAD_ZIPPED = 50 * MB  # a zip uploaded directly with the API
UNZIPPED_TOTAL = 250 * MB  # function code + all its layers, unzipped
# preheat's own budget for the deps layer (issue: <= 120 MB unzipped on x86_64), so that model and
# function code have room under the 250 MB total.
DEPS_UNZIPPED_BUDGET = 120 * MB


@dataclass(frozen=True)
class Check:
    what: str
    bytes: int
    limit: int

    @property
    def ok(self) -> bool:
        return self.bytes <= self.limit

    def describe(self) -> str:
        verdict = "ok" if self.ok else "OVER"
        return f"{self.what}: {self.bytes / MB:.1f} MB of {self.limit / MB:.0f} MB ({verdict})"

