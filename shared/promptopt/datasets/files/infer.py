"""A column mapping for a file that arrives without one (a bucket drop with no metadata).

The rule, documented for users: the reference is the first column named one of
REFERENCE_NAMES; the inputs are the column `input` when there is one, else every other column.
Object metadata `inputs` (comma-separated) and `reference` override it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping

from pydantic import ValidationError

from promptopt import json_depth
from promptopt.datasets.files.models import ColumnMapping, Format
from promptopt.datasets.files.sniff import sniff_delimiter

REFERENCE_NAMES = ("reference", "target", "answer", "expected", "output", "label")
HEAD_BYTES = 64 * 1024


def header_fields(head: bytes, fmt: Format) -> list[str]:
    """The column names (CSV header) or the first object's keys (JSONL) in the file's first bytes."""
    text = head.decode("utf-8-sig", errors="replace")
    if fmt == "csv":
        first = text.split("\n", 1)[0].rstrip("\r")
        row = next(csv.reader(io.StringIO(first), delimiter=sniff_delimiter(text)), [])
        return [name.strip() for name in row if name.strip()]
    for line in text.splitlines():
        if line.strip():
            try:
                value = json_depth.loads(line)
            except ValueError:  # not JSON, or nested too deeply (json_depth.TooDeep)
                return []
            return [str(key) for key in value] if isinstance(value, dict) else []
    return []


def mapping_for(fields: list[str], metadata: Mapping[str, str]) -> ColumnMapping | str:
    """The mapping from object metadata, else inferred from the fields; or why there is none."""
    declared = metadata.get("inputs")
    try:
        if declared:
            inputs = [name.strip() for name in declared.split(",")]
            return ColumnMapping(inputs=inputs, reference=metadata.get("reference") or None)
        lowered = {name.lower(): name for name in fields}
        reference = metadata.get("reference") or next(
            (lowered[name] for name in REFERENCE_NAMES if name in lowered), None
        )
        inputs = [lowered["input"]] if "input" in lowered else [n for n in fields if n != reference]
        if not inputs:
            return (
                "cannot tell the input columns: the file has no header or first object with fields other "
                "than the reference; set object metadata inputs=<col,...> (and reference=<col>)"
            )
        return ColumnMapping(inputs=inputs, reference=reference)
    except ValidationError as exc:
        return f"the column mapping in the object metadata is not valid: {exc.errors()[0]['msg']}"
