"""Deterministic, seeded train/validation/test assignment and sampling, keyed by row content.

Both use sha256 of f"{seed}:{row_key}", so results depend only on the seed and the keys: not on
row order, process, machine or Python's per-process hash salt.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from promptopt.datasets.files.canonical import row_key

Split = Literal["train", "validation", "test"]
T = TypeVar("T")
_SCALE = float(2**64)


class SplitProportions(BaseModel):
    """Share of rows per split; each share is >= 0 and they sum to 1 (within 1e-9)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    train: float = Field(0.6, ge=0.0, le=1.0)
    validation: float = Field(0.2, ge=0.0, le=1.0)
    test: float = Field(0.2, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitProportions:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"split proportions must sum to 1, got {total}")
        return self


def unit_hash(seed: int, key: str) -> float:
    """A uniform number in [0, 1) from sha256 of f"{seed}:{key}" (first 8 bytes)."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def assign_split(row_key: str, seed: int, proportions: SplitProportions | None = None) -> Split:
    """The split of one row, stable for a given (seed, row_key) whatever the order of rows.

    Args:
        row_key: a stable identity of the row, e.g. `canonical.row_key(row)`.
        seed: the dataset's split seed; changing it reshuffles every row.
        proportions: shares per split; defaults to 0.6/0.2/0.2.

    Returns:
        "train", "validation" or "test". A split with share 0 is never returned.
    """
    shares = proportions or SplitProportions()
    point = unit_hash(seed, row_key)
    buckets: list[tuple[Split, float]] = [
        ("train", shares.train),
        ("validation", shares.validation),
        ("test", shares.test),
    ]
    nonzero = [(name, share) for name, share in buckets if share > 0]
    edge = 0.0
    for name, share in nonzero:
        edge += share
        if point < edge:
            return name
    return nonzero[-1][0]  # float rounding left the last sliver unclaimed


def _default_key(row: Any) -> str:
    """Strings are their own key; canonical rows are keyed by content."""
    return row if isinstance(row, str) else row_key(row)


def sample(rows: Iterable[T], n: int, seed: int, *, key: Callable[[T], str] = _default_key) -> list[T]:
    """The n rows with the smallest hash(seed, key(row)), streaming with O(n) memory.

    The same seed and rows give the same sample whatever their order; a different seed gives an
    independent one; with fewer than n rows, all are returned.

    Args:
        rows: any iterable (a parser, a file reader); read once.
        n: how many rows to keep (>= 0).
        seed: the sampling seed.
        key: the row's stable identity; defaults to the content key of canonical rows, or the
            string itself.

    Returns:
        The chosen rows, in the order they came in.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    if n == 0:
        return []
    # Max-heap on the hash (negated) of the n smallest so far; the index breaks exact ties
    # and restores input order at the end without ever comparing rows.
    heap: list[tuple[float, int, T]] = []
    for index, row in enumerate(rows):
        entry = (-unit_hash(seed, key(row)), -index, row)
        if len(heap) < n:
            heapq.heappush(heap, entry)
        elif entry[0] > heap[0][0]:
            heapq.heapreplace(heap, entry)
    return [row for _neg, _idx, row in sorted(heap, key=lambda entry: -entry[1])]
