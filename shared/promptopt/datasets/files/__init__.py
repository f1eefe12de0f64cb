"""Dataset files to canonical rows: streaming parse and validation, splits, samples, statistics.

Pure library (no HTTP, no GCP clients): the ingest function hands it a blob reader and a sink.
"""

from __future__ import annotations

from promptopt.datasets.files.canonical import CanonicalRow, dumps_row, row_key, write_jsonl
from promptopt.datasets.files.models import BadRow, ColumnMapping, Format, IngestLimits, ParseOutcome
from promptopt.datasets.files.parse import ParsedRows, parse
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
