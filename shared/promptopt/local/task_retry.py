"""A Cloud Tasks queue's retry_config: when a failed task is tried again, and when it is given up.

Cloud Tasks waits `min_backoff` before the first retry, doubles the wait `max_doublings` times, then
grows it linearly by `min_backoff * 2**max_doublings` per retry, never beyond `max_backoff`
(min 10s, max 300s, 3 doublings: 10, 20, 40, 80, 160, 240, 300, 300, ...). A task is deleted once it
has been attempted `max_attempts` times (-1: unlimited) *and* `max_retry_duration` has passed since
its first attempt (0: unlimited), whichever comes last.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def parse_duration(text: str | float) -> float:
    """Seconds from a protobuf duration string ("2s", "0.5s", "3600s") or a number."""
    if isinstance(text, int | float):
        return float(text)
    match = _DURATION_RE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like '10s'")
    return float(match.group(1))


@dataclass(frozen=True)
class RetryConfig:
    """One queue's retry_config (the fields of google_cloud_tasks_queue.retry_config)."""

    max_attempts: int = 10
    max_retry_duration_s: float = 3600.0
    min_backoff_s: float = 2.0
    max_backoff_s: float = 300.0
    max_doublings: int = 5

    @classmethod
    def from_terraform(cls, settings: Mapping[str, Any]) -> RetryConfig:
        """From a queue's settings as Terraform's var.queues spells them ("2s" durations)."""
        defaults = cls()
        return cls(
            max_attempts=int(settings.get("max_attempts", defaults.max_attempts)),
            max_retry_duration_s=parse_duration(
                settings.get("max_retry_duration", defaults.max_retry_duration_s)
            ),
            min_backoff_s=parse_duration(settings.get("min_backoff", defaults.min_backoff_s)),
            max_backoff_s=parse_duration(settings.get("max_backoff", defaults.max_backoff_s)),
            max_doublings=int(settings.get("max_doublings", defaults.max_doublings)),
        )

    def to_json(self) -> dict[str, float]:
        """A JSON-able form (the emulator wrapper's --retry argument)."""
        return asdict(self)

    @classmethod
    def api_defaults(cls) -> RetryConfig:
        """What Cloud Tasks gives a queue created without a retry_config."""
        return cls(
            max_attempts=100,
            max_retry_duration_s=0.0,
            min_backoff_s=0.1,
            max_backoff_s=3600.0,
            max_doublings=16,
        )

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failed attempt (1 = the first dispatch failed)."""
        step = max(attempts, 1) - 1  # retries already waited for
        doubled = self.min_backoff_s * 2 ** min(step, self.max_doublings)
        linear = self.min_backoff_s * 2**self.max_doublings * max(step - self.max_doublings, 0)
        return min(doubled + linear, self.max_backoff_s)

    def gives_up(self, attempts: int, since_first_s: float) -> bool:
        """Whether a task that failed `attempts` times, the first `since_first_s` ago, is deleted."""
        attempts_spent = self.max_attempts >= 0 and attempts >= self.max_attempts
        duration_spent = self.max_retry_duration_s <= 0 or since_first_s >= self.max_retry_duration_s
        return attempts_spent and duration_spent
