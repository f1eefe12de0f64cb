"""Batch tunables, read from `PROMPTOPT_BATCH_*` variables on each use.

They are not fields of `promptopt.config.Settings` so that this room stays self-contained; the
read is a handful of dictionary lookups, cheap enough to need no cache (and no reset in tests).

- `PROMPTOPT_BATCH_CHUNK_SIZE` (unset): rows per task when a request names none; unset, 8 rounds
  of the concurrency (256 at 32), at most 500 (see `jobs.default_chunk_size`).
- `PROMPTOPT_BATCH_CONCURRENCY` (32): model calls in flight per chunk when a request names none.
- `PROMPTOPT_BATCH_MAX_ACTIVE_JOBS` (5): a tenant's queued plus running jobs; beyond it, 429.
- `PROMPTOPT_BATCH_MAX_ROWS` (100000): rows one job may hold.
- `PROMPTOPT_BATCH_MAX_ATTEMPTS` (10): the inference queue's retry_config.max_attempts; the
  attempt numbered max_attempts - 1 is the last, which writes terminal records instead of failing.
- `PROMPTOPT_BATCH_CACHE_TTL_S` (604800): how long a cached answer is reused.
- `PROMPTOPT_BATCH_CALL_TIMEOUT_S` (120): one model call's deadline.
- `PROMPTOPT_BATCH_CHUNK_DEADLINE_S` (540): a chunk stops starting calls after this long and
  hands the rest back to the queue (keep it below the batch_chunk function's timeout).
"""

from __future__ import annotations

import os
from typing import NamedTuple

PREFIX = "PROMPTOPT_BATCH_"


class BatchOptions(NamedTuple):
    """The batch tunables in force."""

    chunk_size: int = 0  # 0: jobs.default_chunk_size(concurrency)
    concurrency: int = 32
    max_active_jobs: int = 5
    max_rows: int = 100_000
    max_attempts: int = 10
    cache_ttl_s: int = 7 * 24 * 3600
    call_timeout_s: float = 120.0
    chunk_deadline_s: float = 540.0


def options() -> BatchOptions:
    """The tunables from the environment (defaults where unset)."""
    defaults = BatchOptions()
    values: dict[str, int | float] = {}
    for name, default in defaults._asdict().items():
        raw = os.environ.get(PREFIX + name.upper(), "").strip()
        if not raw:
            continue
        try:
            values[name] = type(default)(float(raw)) if isinstance(default, int) else float(raw)
        except ValueError:
            raise ValueError(f"{PREFIX}{name.upper()} must be a number, got {raw!r}") from None
        if values[name] <= 0:
            raise ValueError(f"{PREFIX}{name.upper()} must be positive, got {raw!r}")
    return BatchOptions(**values)  # type: ignore[arg-type]
