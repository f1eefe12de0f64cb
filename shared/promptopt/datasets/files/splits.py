"""Deterministic, seeded train/validation/test assignment and sampling, keyed by row content.

Both use sha256 of f"{seed}:{row_key}", so results depend only on the seed and the keys: not on
row order, process, machine or Python's per-process hash salt.
"""

# Annotations are not postponed, for cold start: see promptopt.http.models.
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from promptopt.datasets.files.sampling import sample as sample
from promptopt.datasets.files.sampling import unit_hash

Split = Literal["train", "validation", "test"]


class SplitProportions(BaseModel):
    """Share of rows per split; each share is >= 0 and they sum to 1 (within 1e-9)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    train: float = Field(0.6, ge=0.0, le=1.0)
    validation: float = Field(0.2, ge=0.0, le=1.0)
    test: float = Field(0.2, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _sums_to_one(self) -> Self:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"split proportions must sum to 1, got {total}")
        return self


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
