"""Deterministic sampling by hash: the same seed and rows give the same choice, in any order.

No pydantic here (the split proportions model lives in splits.py): GET …/sample loads this
without the dataset models on its cold start.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from promptopt.datasets.files.canonical import row_key

T = TypeVar("T")
_SCALE = float(2**64)


def unit_hash(seed: int, key: str) -> float:
    """A uniform number in [0, 1) from sha256 of f"{seed}:{key}" (first 8 bytes)."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


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
