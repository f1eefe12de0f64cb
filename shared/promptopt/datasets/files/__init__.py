"""Dataset files to canonical rows: streaming parse and validation, splits, samples, statistics.

Pure library (no HTTP, no GCP clients): the ingest function hands it a blob reader and a sink.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from promptopt.datasets.files.canonical import CanonicalRow, dumps_row, row_key, write_jsonl
    from promptopt.datasets.files.models import BadRow, ColumnMapping, Format, IngestLimits, ParseOutcome
    from promptopt.datasets.files.parsing import ParsedRows, parse
    from promptopt.datasets.files.splits import Split, SplitProportions, assign_split, sample
    from promptopt.datasets.files.stats import DatasetStats, StatsAccumulator

__all__ = [
    "BadRow",
    "CanonicalRow",
    "ColumnMapping",
    "DatasetStats",
    "Format",
    "IngestLimits",
    "ParseOutcome",
    "ParsedRows",
    "Split",
    "SplitProportions",
    "StatsAccumulator",
    "assign_split",
    "dumps_row",
    "parse",
    "row_key",
    "sample",
    "write_jsonl",
]

# Each export loads with its module on first use: a function that reads rows or deletes a dataset
# needs `layout` (its paths), not the parser or the pydantic models (cold start).
_HOMES = {
    "canonical": ("CanonicalRow", "dumps_row", "row_key", "write_jsonl"),
    "models": ("BadRow", "ColumnMapping", "Format", "IngestLimits", "ParseOutcome"),
    "parsing": ("ParsedRows", "parse"),  # not named parse.py: loading it would shadow `parse`
    "splits": ("Split", "SplitProportions", "assign_split", "sample"),
    "stats": ("DatasetStats", "StatsAccumulator"),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
