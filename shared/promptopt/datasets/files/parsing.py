"""Streaming parse and validation of an uploaded CSV or JSONL file into canonical rows.

Data problems are never raised: a bad row is counted (the first few kept with their line and
reason) and a problem with the whole file sets `ParseOutcome.failed` with a reason the uploader can
act on. Memory stays bounded by one read chunk plus one row, whatever the file size.

Usage::

    parsed = parse(blob.open("rb"), fmt="csv", mapping=ColumnMapping(inputs=["question"]))
    write_jsonl(parsed, sink)          # rows are yielded lazily
    if parsed.outcome.failed: ...      # final once the iterator is exhausted
"""

from __future__ import annotations

import csv
import itertools
import json
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from promptopt import json_depth
from promptopt.datasets.files.canonical import CanonicalRow
from promptopt.datasets.files.decode import (
    ByteCounter,
    FileFailure,
    Oversize,
    Readable,
    decoded_chunks,
    split_lines,
)
from promptopt.datasets.files.models import BadRow, ColumnMapping, Format, IngestLimits, ParseOutcome
from promptopt.datasets.files.sniff import SNIFF_CHARS, sniff_delimiter

logger = logging.getLogger(__name__)

# What a format reader yields per data row: the line it starts on, then its inputs and reference,
# or the reason it is bad in place of the inputs.
_Record = tuple[int, dict[str, str] | str, str | None]
_Lines = Iterator[str | Oversize]


class ParsedRows:
    """The rows of one file, parsed lazily on iteration (once).

    `outcome` is filled in when the iterator is exhausted (or closed early, then partial).
    """

    def __init__(
        self, stream: Readable, *, fmt: Format, mapping: ColumnMapping, limits: IngestLimits
    ) -> None:
        self.outcome = ParseOutcome()
        self._stream, self._fmt, self._mapping, self._limits = stream, fmt, mapping, limits
        self._started = False

    def __iter__(self) -> Iterator[CanonicalRow]:
        if self._started:
            raise RuntimeError("ParsedRows can be iterated only once (the stream is consumed)")
        self._started = True
        return self._rows()

    def consume(self) -> ParseOutcome:
        """Validate the whole file without keeping rows; return the outcome."""
        for _row in self:
            pass
        return self.outcome

    def _rows(self) -> Iterator[CanonicalRow]:
        out, limits, mapping = self.outcome, self._limits, self._mapping
        counter = ByteCounter()
        ok = bad = 0  # plain ints in the hot loop; copied to the outcome at the end
        first_bad: BadRow | None = None
        stream = _Guarded(self._stream)
        line = 0
        try:
            chunks = decoded_chunks(stream, max_bytes=limits.max_bytes, counter=counter)
            lines = split_lines(chunks, max_line_bytes=limits.max_row_bytes)
            reader = _csv_records if self._fmt == "csv" else _jsonl_records
            for line, inputs, reference in reader(lines, mapping, limits):
                if ok + bad >= limits.max_rows:
                    raise FileFailure(
                        f"limit exceeded: the file has more than max_rows={limits.max_rows} data rows; "
                        "split it into smaller files or raise the max_rows ingest limit"
                    )
                if isinstance(inputs, str):
                    bad += 1
                    bad_row = BadRow(line=line, reason=inputs)
                    first_bad = first_bad or bad_row
                    if len(out.bad_rows) < limits.max_bad_rows_reported:
                        out.bad_rows.append(bad_row)
                    continue
                row = CanonicalRow(row=ok, line=line, inputs=inputs, reference=reference)
                ok += 1
                if not bad or limits.bad_row_policy != "reject_file":
                    yield row
            out.rows_ok, out.rows_bad = ok, bad
            out.failure_reason = _verdict(out, limits, first_bad)
        except FileFailure as exc:
            out.failure_reason = str(exc)
        except Exception as exc:
            if stream.failed:
                raise  # reading the file failed (storage): an infrastructure error, retried
            # A data problem nothing above foresaw: the file fails with a reason, never retried.
            logger.exception("unexpected error while parsing a dataset file")
            out.failure_reason = (
                f"the file could not be parsed ({type(exc).__name__} after line {line}); "
                "check the file's format and content"
            )
        finally:
            out.rows_ok, out.rows_bad = ok, bad
            out.bytes_read = counter.count
            out.failed = out.failure_reason is not None
        logger.info("dataset parsed", extra={"rows_ok": ok, "rows_bad": bad, "failed": out.failed})


class _Guarded:
    """The stream, remembering whether a read failed (storage trouble, not a data problem)."""

    def __init__(self, stream: Readable) -> None:
        self._stream, self.failed = stream, False

    def read(self, size: int = -1, /) -> bytes:
        try:
            return self._stream.read(size)
        except BaseException:
            self.failed = True
            raise


def parse(
    stream: Readable,
    *,
    fmt: Format,
    mapping: ColumnMapping,
    limits: IngestLimits | None = None,
) -> ParsedRows:
    """Parse and validate a dataset file lazily.

    Args:
        stream: the file as a binary file-like object (e.g. a GCS blob reader); read in chunks.
        fmt: "csv" (header row required; comma, semicolon or tab sniffed) or "jsonl".
        mapping: the source columns/fields to keep as inputs and reference.
        limits: caps and the bad-row policy; defaults to `IngestLimits()`.

    Returns:
        An iterable of canonical rows with an `outcome` that is final once iteration ends. Under
        `reject_file`, no rows are yielded after the first bad one; whenever `outcome.failed`
        ends up true, rows already yielded must be discarded.
    """
    return ParsedRows(stream, fmt=fmt, mapping=mapping, limits=limits or IngestLimits())


def _verdict(out: ParseOutcome, limits: IngestLimits, first_bad: BadRow | None) -> str | None:
    """The reason the file fails as a whole, once every row has been seen, or None."""
    total = out.rows_ok + out.rows_bad
    if total == 0:
        return "no data rows: the file is empty or has only a header row"
    if first_bad is None:
        return None
    first = f"first on line {first_bad.line}: {first_bad.reason}"
    if out.rows_ok == 0:
        return f"no valid rows: all {total} rows are bad ({first})"
    if limits.bad_row_policy == "reject_file":
        return (
            f"{out.rows_bad} bad row(s) ({first}); fix them, or ingest with "
            "bad_row_policy=skip_bad_rows to drop them"
        )
    if out.rows_bad / total > limits.max_bad_fraction:
        return (
            f"too many bad rows: {out.rows_bad} of {total} ({out.rows_bad / total:.1%}) is above "
            f"max_bad_fraction={limits.max_bad_fraction} ({first}); fix the file or raise max_bad_fraction"
        )
    return None


def _canonical(
    fields: Mapping[str, Any], mapping: ColumnMapping, limits: IngestLimits
) -> tuple[dict[str, str] | str, str | None]:
    """The row's inputs and reference as strings, or the reason the row is bad in place of inputs."""
    inputs: dict[str, str] = {}
    for name in mapping.inputs:
        if name not in fields:
            return f"missing field {name!r}", None
        inputs[name] = _as_text(fields[name])
    reference: str | None = None
    if mapping.reference is not None:
        if fields.get(mapping.reference) is None:
            return f"missing field {mapping.reference!r} (the reference)", None
        reference = _as_text(fields[mapping.reference])
    return _check_lengths(inputs, reference, mapping, limits), reference


def _check_lengths(
    inputs: dict[str, str], reference: str | None, mapping: ColumnMapping, limits: IngestLimits
) -> dict[str, str] | str:
    """The inputs unchanged, or the reason the row is bad if a value is over max_field_chars."""
    for name, value in inputs.items():
        if len(value) > limits.max_field_chars:
            return _too_long(name, value, limits)
    if reference is not None and len(reference) > limits.max_field_chars:
        return _too_long(str(mapping.reference), reference, limits)
    return inputs


def _too_long(name: str, value: str, limits: IngestLimits) -> str:
    return f"field {name!r} has {len(value)} characters, above max_field_chars={limits.max_field_chars}"


def _as_text(value: Any) -> str:
    """Strings as they are; null as empty; numbers, booleans and nested values as JSON text."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False)


def _oversize_reason(limits: IngestLimits) -> str:
    return f"row is more than {limits.max_row_bytes} bytes (max_row_bytes); shorten it or raise the limit"


def _jsonl_records(lines: _Lines, mapping: ColumnMapping, limits: IngestLimits) -> Iterator[_Record]:
    """One JSON object per line; blank lines skipped."""
    for number, line in enumerate(lines, start=1):
        if isinstance(line, Oversize):
            yield number, _oversize_reason(limits), None
            continue
        text = line.strip()
        if not text:
            continue
        try:
            value = json_depth.loads(text)
        except json_depth.TooDeep:
            yield number, f"the row nests deeper than {json_depth.MAX_DEPTH} levels", None
            continue
        except json.JSONDecodeError as exc:
            yield number, f"invalid JSON: {exc.msg} at column {exc.colno}", None
            continue
        if not isinstance(value, dict):
            yield number, f"expected a JSON object per line, got {_json_kind(value)}", None
            continue
        inputs, reference = _canonical(value, mapping, limits)
        if "\\u" in text and not isinstance(inputs, str) and not _encodable(inputs, reference):
            yield (
                number,
                "a value holds an unpaired surrogate escape (\\ud800-\\udfff): not valid Unicode",
                None,
            )
            continue
        yield number, inputs, reference


def _encodable(inputs: dict[str, str], reference: str | None) -> bool:
    """Whether every value can be written as UTF-8 (JSON escapes can encode lone surrogates)."""
    try:
        for value in (*inputs.values(), reference or ""):
            value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _json_kind(value: Any) -> str:
    kinds = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return kinds.get(type(value), "a number")


class _CsvFeed:
    """Feeds physical lines to `csv.reader`, noting where each row starts and how big it is.

    An oversized line reaches the reader as a bare newline and marks the row, so the reader's
    quoting state stays consistent and the row is reported rather than parsed.
    """

    def __init__(self, lines: _Lines) -> None:
        self._lines = lines
        self.number = 0
        self.row_start = 0
        self.row_bytes = 0
        self.oversize = False
        self.fresh = True  # the next line starts a new row

    def __iter__(self) -> Iterator[str]:
        for line in self._lines:
            self.number += 1
            if self.fresh:
                self.row_start, self.row_bytes, self.oversize, self.fresh = self.number, 0, False, False
            if isinstance(line, Oversize):
                self.oversize = True
                yield "\n"
                continue
            self.row_bytes += len(line) if line.isascii() else len(line.encode("utf-8"))
            yield line


def _csv_records(lines: _Lines, mapping: ColumnMapping, limits: IngestLimits) -> Iterator[_Record]:
    """CSV with a header row; the delimiter is sniffed from the first ~64 KB."""
    head: list[str | Oversize] = []
    held = 0
    for line in lines:
        head.append(line)
        held += len(line) if isinstance(line, str) else 0
        if held >= SNIFF_CHARS:
            break
    delimiter = sniff_delimiter("".join(line for line in head if isinstance(line, str)))
    feed = _CsvFeed(itertools.chain(head, lines))
    del head
    reader = csv.reader(iter(feed), delimiter=delimiter, quotechar='"', doublequote=True, strict=True)
    columns: list[tuple[str, int]] | None = None  # mapped input name -> position, once the header is read
    reference_at = -1
    width = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            feed.fresh = True
            if columns is None:
                raise FileFailure(f"the header row (line {feed.row_start}) is not valid CSV: {exc}") from None
            yield feed.row_start, _csv_error_reason(exc, feed.row_start), None
            continue
        feed.fresh = True
        start = feed.row_start
        if feed.oversize or feed.row_bytes > limits.max_row_bytes:
            if columns is None:
                raise FileFailure(f"the header row (line {start}) is longer than max_row_bytes")
            yield start, _oversize_reason(limits), None
            continue
        if not fields:
            continue  # blank line
        if columns is None:
            columns, reference_at = _header(fields, mapping)
            width = len(fields)
            continue
        if len(fields) != width:
            reason = (
                f"row has {len(fields)} fields but the header has {width}; check for an "
                "unquoted delimiter or a missing quote"
            )
            yield start, reason, None
            continue
        inputs = {name: fields[index] for name, index in columns}
        reference = fields[reference_at] if reference_at >= 0 else None
        yield start, _check_lengths(inputs, reference, mapping, limits), reference


def _header(fields: list[str], mapping: ColumnMapping) -> tuple[list[tuple[str, int]], int]:
    """Positions of the mapped inputs and of the reference (-1 if unmapped); first occurrence wins.

    Fails the file, listing the available columns, if a mapped column is absent.
    """
    names = [field.strip() for field in fields]
    positions: dict[str, int] = {}
    for index, name in enumerate(names):
        positions.setdefault(name, index)
    wanted = [*mapping.inputs, *([mapping.reference] if mapping.reference else [])]
    missing = [name for name in wanted if name not in positions]
    if missing:
        raise FileFailure(
            f"column(s) {', '.join(repr(m) for m in missing)} not in the header; available columns: "
            f"{', '.join(repr(n) for n in names)}"
        )
    reference_at = positions[mapping.reference] if mapping.reference else -1
    return [(name, positions[name]) for name in mapping.inputs], reference_at


def _csv_error_reason(exc: csv.Error, start: int) -> str:
    message = str(exc)
    if "unexpected end of data" in message:
        return (
            f"unbalanced quote: a quoted field starting on line {start} never closes before the end of file"
        )
    if "field larger than field limit" in message:
        return f"a field is longer than {csv.field_size_limit()} characters (often an unbalanced quote)"
    return f'malformed CSV: {message} (inside quotes, write a quote as two quotes "")'
