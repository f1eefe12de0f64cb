"""The dataset rows a run evaluates: the first rows of each split, pinned to one dataset version.

Splits are shuffled once at ingest (with the dataset's seed), so "the first n rows of a split" is
already a fair sample, and it is the same n rows for every candidate: comparisons are paired.
A ready version never changes, so the rows are cached per process.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

MAX_SPLIT_ROWS = 2_000  # rows of one split a run reads (inline job rows are capped at this too)


@dataclass(frozen=True)
class Row:
    """One dataset row: its number in the version, its inputs and its reference."""

    row: int
    inputs: dict[str, str]
    reference: str | None


@functools.lru_cache(maxsize=64)
def split_rows(tenant: str, dataset_id: str, version: int, split: str, limit: int) -> tuple[Row, ...]:
    """The first `limit` rows of `split` of a ready version."""
    from promptopt.datasets.rows import read_rows

    found = read_rows(
        tenant=tenant, dataset_id=dataset_id, version=version, split=split, start=0, count=limit
    )
    return tuple(Row(row=r.row, inputs=dict(r.inputs), reference=r.reference) for r in found)


def screening_order(rows: tuple[Row, ...], seed: int, iteration: int) -> list[Row]:
    """This iteration's order of the optimize rows: rung r screens the first rows of it.

    A new order per iteration shows the optimizer new failures each time; rungs of one iteration
    share rows, so a candidate's later rungs reuse its cached answers.
    """
    order = list(rows)
    random.Random(f"{seed}:{iteration}").shuffle(order)  # noqa: S311 - sampling, not secrecy
    return order
