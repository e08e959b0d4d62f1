"""The one error the shared-tier clients raise. It never reaches a client: shared.Guarded turns it into
a skipped tier, a CacheErrors metric and (once per outage) a log line."""

from __future__ import annotations


class TierError(Exception):
    """The shared tier failed: timeout, refused or dropped connection, protocol error, throttling."""

    retry_fresh = True  # worth one retry on a new connection if it happened on a reused one
