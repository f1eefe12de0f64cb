"""Streaming statistics over canonical rows: sizes per input field, reference value spread."""

# Annotations are not postponed, for cold start: see promptopt.http.models.
import hashlib
from collections import Counter
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from promptopt.datasets.files.canonical import CanonicalRow

DISTINCT_CAP = 1000
TOP_N = 10
_SHOWN_CHARS = 200  # longer reference values are counted by digest and shown truncated


class FieldStats(BaseModel):
    """Length in characters of one input field across rows."""

    model_config = ConfigDict(defer_build=True)  # built on first use (see files.models)

    min_chars: int
    max_chars: int
    mean_chars: float
    empty: int = Field(description="rows where the field is the empty string")


class ValueCount(BaseModel):
    """One reference value and how many rows carry it."""

    model_config = ConfigDict(defer_build=True)  # built on first use (see files.models)

    value: str
    count: int


class ReferenceStats(BaseModel):
    """How the reference values are spread; `top` only while distinct values stay under the cap."""

    model_config = ConfigDict(defer_build=True)  # built on first use (see files.models)

    distinct: int | Literal["many"]
    top: list[ValueCount] = Field(default_factory=list, description="most frequent first")
    missing: int = Field(0, description="rows without a reference")
    empty: int = 0


class DatasetStats(BaseModel):
    """Summary of a dataset, JSON-serializable (`model_dump(mode="json")`)."""

    model_config = ConfigDict(defer_build=True)  # built on first use (see files.models)

    rows: int
    rows_per_split: dict[str, int]
    inputs: dict[str, FieldStats]
    reference: ReferenceStats | None
    total_chars: int = Field(description="characters over every input and reference value")


class _Lengths:
    __slots__ = ("count", "empty", "largest", "smallest", "total")

    def __init__(self) -> None:
        self.count = self.empty = self.total = self.largest = 0
        self.smallest: int | None = None

    def add(self, length: int) -> None:
        self.count += 1
        self.total += length
        self.empty += length == 0
        self.largest = max(self.largest, length)
        self.smallest = length if self.smallest is None else min(self.smallest, length)

    def result(self) -> FieldStats:
        return FieldStats(
            min_chars=self.smallest or 0,
            max_chars=self.largest,
            mean_chars=self.total / self.count if self.count else 0.0,
            empty=self.empty,
        )


class StatsAccumulator:
    """Feed rows one at a time with `add`; read a `DatasetStats` with `result` at any point.

    Memory is bounded: per input field a few counters, and at most `distinct_cap` reference values
    (beyond that the distinct count becomes "many" and the values are dropped).
    """

    def __init__(self, *, distinct_cap: int = DISTINCT_CAP) -> None:
        self._cap = distinct_cap
        self._rows = 0
        self._splits: Counter[str] = Counter()
        self._inputs: dict[str, _Lengths] = {}
        self._values: Counter[str] | None = Counter()
        self._shown: dict[str, str] = {}
        self._has_reference = False
        self._missing = self._empty_refs = self._chars = 0

    def add(self, row: CanonicalRow, split: str | None = None) -> None:
        """Count one row, optionally under its split name."""
        self._rows += 1
        if split is not None:
            self._splits[split] += 1
        for name, value in row["inputs"].items():
            self._inputs.setdefault(name, _Lengths()).add(len(value))
            self._chars += len(value)
        reference = row["reference"]
        if reference is None:
            self._missing += 1
            return
        self._has_reference = True
        self._chars += len(reference)
        self._empty_refs += reference == ""
        if self._values is None:
            return
        key = reference
        if len(reference) > _SHOWN_CHARS:
            key = "sha256:" + hashlib.sha256(reference.encode()).hexdigest()
            self._shown.setdefault(key, reference[:_SHOWN_CHARS] + "…")
        self._values[key] += 1
        if len(self._values) > self._cap:
            self._values, self._shown = None, {}

    def result(self) -> DatasetStats:
        """The statistics of the rows added so far."""
        reference = None
        if self._has_reference:
            values = self._values
            reference = ReferenceStats(
                distinct="many" if values is None else len(values),
                top=[
                    ValueCount(value=self._shown.get(value, value), count=count)
                    for value, count in (values.most_common(TOP_N) if values is not None else [])
                ],
                missing=self._missing,
                empty=self._empty_refs,
            )
        return DatasetStats(
            rows=self._rows,
            rows_per_split=dict(self._splits),
            inputs={name: lengths.result() for name, lengths in self._inputs.items()},
            reference=reference,
            total_chars=self._chars,
        )
