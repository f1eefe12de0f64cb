"""The canonical row every ingested dataset is turned into, its stable key, and its JSONL form."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Protocol, TypedDict


class CanonicalRow(TypedDict):
    """One ingested row.

    `row` is the 0-based position among the good rows, `line` the 1-based line of the source
    file where the row starts, `inputs` the template variables as strings.
    """

    row: int
    line: int
    inputs: dict[str, str]
    reference: str | None


class Writable(Protocol):
    """A binary sink: an open file, `io.BytesIO`, a GCS `BlobWriter`."""

    def write(self, data: bytes, /) -> int:
        """Write all of `data`."""
        ...


def row_key(row: CanonicalRow) -> str:
    """A stable key from the row's content (inputs and reference), not its position.

    Identical rows share a key, so duplicates always land in the same split (no train/test leak),
    and re-ordering or re-uploading a file keeps every row's split.
    """
    payload = json.dumps(
        {"inputs": row["inputs"], "reference": row["reference"]},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


def dumps_row(row: CanonicalRow) -> bytes:
    """One row as a UTF-8 JSON line, newline included."""
    return (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def write_jsonl(rows: Iterable[CanonicalRow], sink: Writable) -> int:
    """Write rows to a binary sink one line at a time (a GCS blob writer works); return the count."""
    count = 0
    for row in rows:
        sink.write(dumps_row(row))
        count += 1
    return count
