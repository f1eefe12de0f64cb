"""Retries with backoff for the client's HTTP calls (the API and signed-URL uploads), on tenacity."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, retry_if_result, stop_after_attempt

T = TypeVar("T")

#: Seconds to wait before the 1st, 2nd, 3rd... retry (the last value repeats).
RETRY_BACKOFF_S: tuple[float, ...] = (0.3, 0.8, 2.0)


def backoff_s(failed_attempt: int) -> float:
    """Seconds to wait after failed attempt number `failed_attempt` (1-based)."""
    if not RETRY_BACKOFF_S:
        return 0.0
    return RETRY_BACKOFF_S[min(failed_attempt - 1, len(RETRY_BACKOFF_S) - 1)]


def call_with_retries(
    attempt: Callable[[int], T],
    *,
    retries: int,
    retry_result: Callable[[T], bool],
    retry_error: type[BaseException],
    wait_hint: Callable[[T], float] = lambda _: 0.0,
) -> T:
    """Call `attempt(number)` until it returns a result `retry_result` accepts, or `retries` retries.

    An attempt raising `retry_error` is retried too; out of retries, the last result is returned or
    the last error raised. The wait before a retry is the backoff, or `wait_hint` of the last result
    (a server's Retry-After) when that is longer.
    """
    number = 0

    def once() -> T:
        nonlocal number
        number += 1
        return attempt(number)

    def wait(state: RetryCallState) -> float:
        outcome = state.outcome
        hint = wait_hint(outcome.result()) if outcome is not None and not outcome.failed else 0.0
        return max(backoff_s(state.attempt_number), hint)

    def give_up(state: RetryCallState) -> T:
        assert state.outcome is not None
        last: T = state.outcome.result()  # the last answer, or its error raised again
        return last

    retrying = Retrying(
        stop=stop_after_attempt(max(0, retries) + 1),
        wait=wait,
        retry=retry_if_exception_type(retry_error) | retry_if_result(retry_result),
        retry_error_callback=give_up,
    )
    result: T = retrying(once)
    return result
