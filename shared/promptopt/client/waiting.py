"""Waiting for the API to finish something: polling with backoff, and progress reported as it goes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from promptopt.client.errors import WaitTimeout

T = TypeVar("T")
log = logging.getLogger("promptopt.client")

#: Seconds between polls (the last value repeats).
POLL_INTERVALS_S: tuple[float, ...] = (0.5, 1.0, 1.0, 2.0)


def poll_interval(polls: int) -> float:
    """Seconds to sleep after poll number `polls` (0-based)."""
    if not POLL_INTERVALS_S:
        return 0.0
    return POLL_INTERVALS_S[min(polls, len(POLL_INTERVALS_S) - 1)]


def wait_until(
    fetch: Callable[[], T],
    *,
    settled: Callable[[T], bool],
    what: str,
    timeout_s: float | None,
    on_progress: Callable[[T], None] | None = None,
) -> T:
    """Fetch until `settled`, calling `on_progress` with every state; WaitTimeout past `timeout_s`.

    `timeout_s=None` waits as long as it takes.
    """
    started = time.monotonic()
    polls = 0
    while True:
        state = fetch()
        if on_progress is not None:
            on_progress(state)
        if settled(state):
            return state
        elapsed = time.monotonic() - started
        if timeout_s is not None and elapsed >= timeout_s:
            raise WaitTimeout(what, elapsed, state)
        time.sleep(poll_interval(polls))
        polls += 1
