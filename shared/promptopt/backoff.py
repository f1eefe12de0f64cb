"""Exponential backoff delays: the one policy behind every hand-run retry loop.

Model clients, Pub/Sub publishing, local trigger bridges and the CLI use it; Gemini's retries run
inside google-genai (`HttpRetryOptions`) instead.
"""

from __future__ import annotations

import contextlib
import random
from typing import NamedTuple

# HTTP answers worth trying again: a timeout, too many requests, a server error or overload.
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class Backoff(NamedTuple):
    """Delay before retry n (0 = the first retry): `initial_s * multiplier**n`, capped at `max_s`.

    With `jitter`, a uniform draw below that ("full jitter"), so clients that failed together do not
    retry together. A server's Retry-After (seconds) is honoured up to `max_retry_after_s`.
    """

    initial_s: float = 0.5
    max_s: float = 30.0
    multiplier: float = 2.0
    jitter: bool = False
    max_retry_after_s: float = 30.0

    def delay(self, retry: int, retry_after: str | float | None = None) -> float:
        """Seconds to wait before retry number `retry`."""
        delay = min(self.max_s, self.initial_s * self.multiplier ** max(0, retry))
        if self.jitter:
            delay = random.uniform(0, delay)  # noqa: S311 - jitter, not crypto
        if retry_after not in (None, ""):
            with contextlib.suppress(ValueError, TypeError):  # an HTTP date: keep our own delay
                delay = max(delay, min(float(retry_after), self.max_retry_after_s))
        return delay
