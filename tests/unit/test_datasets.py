"""The datasets library: streaming parse and validation, canonical JSONL, splits, samples, stats."""

from __future__ import annotations

import io
import json
import random
import tracemalloc
from collections import Counter
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from promptopt.datasets.files import (
    CanonicalRow,
    ColumnMapping,
    Format,
    IngestLimits,
    ParseOutcome,
    SplitProportions,
    StatsAccumulator,
    assign_split,
    parse,
    row_key,
    sample,
    write_jsonl,
)

QA = ColumnMapping(inputs=["question"], reference="answer")


def run(
    data: bytes | io.RawIOBase,
    fmt: Format = "csv",
    mapping: ColumnMapping = QA,
    **limits: object,
) -> tuple[list[CanonicalRow], ParseOutcome]:
    stream = io.BytesIO(data) if isinstance(data, bytes) else data
    parsed = parse(stream, fmt=fmt, mapping=mapping, limits=IngestLimits.model_validate(limits))
    rows = list(parsed)
    return rows, parsed.outcome


def reasons(outcome: ParseOutcome) -> list[tuple[int, str]]:
    return [(bad.line, bad.reason) for bad in outcome.bad_rows]


# --- encoding and whole-file failures -------------------------------------------------------


def test_utf8_bom_is_accepted_and_not_part_of_the_first_column() -> None:
    rows, outcome = run(b"\xef\xbb\xbfquestion,answer\nWhat?,42\n")
    assert not outcome.failed
    assert rows[0]["inputs"] == {"question": "What?"}
    assert rows[0]["reference"] == "42"


def test_latin1_file_fails_with_offset_line_and_utf8_hint() -> None:
    data = "question,answer\nok,1\ncaf\xe9,2\n".encode("latin-1")
    _, outcome = run(data)
    assert outcome.failed
    reason = outcome.failure_reason or ""
    offset = data.index(b"\xe9")
    assert "not valid UTF-8" in reason
    assert f"offset {offset}" in reason
    assert "line 3" in reason
    assert "re-save the file as UTF-8" in reason


def test_multibyte_text_across_read_chunks_parses_and_a_late_bad_byte_is_located() -> None:
    data = ("question,answer\n" + "".join(f"é{i}€,ü\n" for i in range(20_000))).encode()
    rows, outcome = run(data)  # > 3 read chunks: characters are split across chunk edges
    assert not outcome.failed
    assert rows[-1] == {"row": 19_999, "line": 20_001, "inputs": {"question": "é19999€"}, "reference": "ü"}
    cut = data.index(b"\n", 100_000) + 1
    _, outcome = run(data[:cut] + b"\xff" + data[cut:])
    line = data[:cut].count(b"\n") + 1
    assert f"offset {cut} (line {line})" in (outcome.failure_reason or "")


def test_binary_file_fails_clearly() -> None:
    _, outcome = run(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert outcome.failed
    assert "binary" in (outcome.failure_reason or "")


def test_empty_file_fails_with_no_data_rows() -> None:
    _, outcome = run(b"")
    assert outcome.failed
    assert "no data rows" in (outcome.failure_reason or "")


def test_header_only_fails_with_no_data_rows() -> None:
    _, outcome = run(b"question,answer\n")
    assert outcome.failed
    assert "no data rows" in (outcome.failure_reason or "")


def test_missing_mapped_column_fails_naming_it_and_the_available_ones() -> None:
    _, outcome = run(b"prompt,answer\nhi,1\n")
    reason = outcome.failure_reason or ""
    assert outcome.failed
    assert "'question'" in reason
    assert "available columns: 'prompt', 'answer'" in reason


def test_file_above_byte_limit_fails_naming_the_limit() -> None:
    data = b"question,answer\n" + b"q,a\n" * 100_000
    _, outcome = run(data, max_bytes=100_000)
    reason = outcome.failure_reason or ""
    assert outcome.failed
    assert "limit exceeded" in reason
    assert "max_bytes=100000" in reason
    assert outcome.bytes_read < len(data)  # stopped early, did not read everything


def test_too_many_rows_fails_naming_the_limit() -> None:
    _, outcome = run(b"question,answer\n" + b"q,a\n" * 11, max_rows=10)
    assert outcome.failed
    assert "max_rows=10" in (outcome.failure_reason or "")


# --- CSV ------------------------------------------------------------------------------------


def test_csv_ragged_row_is_bad_with_its_line_number() -> None:
    rows, outcome = run(
        b"question,answer\na,1\nb,2,extra\nc,3\n", bad_row_policy="skip_bad_rows", max_bad_fraction=0.5
    )
    assert [r["inputs"]["question"] for r in rows] == ["a", "c"]
    assert outcome.rows_bad == 1
    assert reasons(outcome)[0][0] == 3
    assert "3 fields but the header has 2" in reasons(outcome)[0][1]


def test_csv_unbalanced_quote_at_eof_is_reported() -> None:
    _, outcome = run(b'question,answer\na,1\n"b,2\nc,3\n')
    assert outcome.failed
    assert outcome.rows_bad == 1
    line, reason = reasons(outcome)[0]
    assert line == 3
    assert "unbalanced quote" in reason


def test_semicolon_dialect_is_sniffed() -> None:
    rows, outcome = run(b"question;answer\nWhat is 1,5 + 1?;2,5\n")
    assert not outcome.failed
    assert rows[0]["inputs"] == {"question": "What is 1,5 + 1?"}
    assert rows[0]["reference"] == "2,5"


def test_tab_dialect_is_sniffed() -> None:
    rows, outcome = run(b"question\tanswer\na, b\tc\n")
    assert not outcome.failed
    assert rows[0]["reference"] == "c"


def test_quoted_newline_in_field_keeps_later_line_numbers_right() -> None:
    data = b'question,answer\n"two\nlines",1\nnext,2\nbad,3,x\n'
    rows, outcome = run(data, bad_row_policy="skip_bad_rows", max_bad_fraction=0.5)
    assert rows[0]["inputs"]["question"] == "two\nlines"
    assert rows[0]["line"] == 2
    assert rows[1]["line"] == 4
    assert reasons(outcome)[0][0] == 5


def test_blank_csv_lines_are_skipped() -> None:
    rows, outcome = run(b"question,answer\n\na,1\n\n")
    assert not outcome.failed
    assert len(rows) == 1
    assert rows[0]["line"] == 3


# --- JSONL ----------------------------------------------------------------------------------


def test_jsonl_broken_line_in_the_middle_is_reported_others_ok() -> None:
    data = (
        b'{"question": "a", "answer": 1}\n\n{"question": "b", "answer": \n{"question": "c", "answer": "x"}\n'
    )
    rows, outcome = run(data, "jsonl", bad_row_policy="skip_bad_rows", max_bad_fraction=0.5)
    assert not outcome.failed
    assert [(r["line"], r["reference"]) for r in rows] == [(1, "1"), (4, "x")]
    line, reason = reasons(outcome)[0]
    assert line == 3
    assert reason.startswith("invalid JSON:")


def test_jsonl_non_object_line_is_bad() -> None:
    rows, outcome = run(
        b'{"question": "a", "answer": "b"}\n[1, 2]\n',
        "jsonl",
        bad_row_policy="skip_bad_rows",
        max_bad_fraction=0.5,
    )
    assert len(rows) == 1
    assert reasons(outcome) == [(2, "expected a JSON object per line, got an array")]


def test_jsonl_missing_field_is_bad_and_values_are_coerced_to_text() -> None:
    data = b'{"question": {"a": [1]}, "answer": 3.5}\n{"answer": "x"}\n'
    rows, outcome = run(data, "jsonl", bad_row_policy="skip_bad_rows", max_bad_fraction=0.5)
    assert rows[0]["inputs"] == {"question": '{"a": [1]}'}
    assert rows[0]["reference"] == "3.5"
    assert reasons(outcome) == [(2, "missing field 'question'")]


# --- size caps and policies -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_row_above_size_cap_is_bad(fmt: Format) -> None:
    big = "x" * 5000
    if fmt == "csv":
        data = f"question,answer\nsmall,1\n{big},2\nsmall,3\n".encode()
    else:
        data = "\n".join(json.dumps({"question": q, "answer": "1"}) for q in ["s", big, "s"]).encode()
    rows, outcome = run(data, fmt, max_row_bytes=1000, bad_row_policy="skip_bad_rows", max_bad_fraction=0.5)
    assert len(rows) == 2
    assert outcome.rows_bad == 1
    line, reason = reasons(outcome)[0]
    assert line == (3 if fmt == "csv" else 2)
    assert "max_row_bytes" in reason


def test_oversized_line_inside_a_quoted_field_fails_only_that_row() -> None:
    data = b'question,answer\n"start\n' + b"x" * 5000 + b'\nend",1\nok,2\n'
    rows, outcome = run(data, max_row_bytes=1000, bad_row_policy="skip_bad_rows", max_bad_fraction=0.5)
    assert [(r["line"], r["reference"]) for r in rows] == [(5, "2")]
    assert reasons(outcome)[0][0] == 2


def test_field_above_char_cap_is_bad() -> None:
    _, outcome = run(b"question,answer\nabcdef,1\nabc,2\n", max_field_chars=5)
    assert outcome.rows_bad == 1
    assert "max_field_chars=5" in reasons(outcome)[0][1]


def test_reject_policy_fails_the_file_and_stops_yielding_rows() -> None:
    rows, outcome = run(b"question,answer\na,1\nb,2,x\nc,3\nd,4,y\n")
    assert outcome.failed
    assert "2 bad row(s)" in (outcome.failure_reason or "")
    assert "skip_bad_rows" in (outcome.failure_reason or "")
    assert [r["inputs"]["question"] for r in rows] == ["a"]  # nothing after the first bad row
    assert outcome.rows_ok == 2
    assert len(outcome.bad_rows) == 2


def test_skip_policy_honours_max_bad_fraction() -> None:
    data = b"question,answer\n" + b"ok,1\n" * 9 + b"bad,1,x\n"  # 10% bad
    rows, outcome = run(data, bad_row_policy="skip_bad_rows", max_bad_fraction=0.1)
    assert not outcome.failed
    assert len(rows) == 9
    _, outcome = run(data, bad_row_policy="skip_bad_rows", max_bad_fraction=0.05)
    assert outcome.failed
    assert "too many bad rows" in (outcome.failure_reason or "")


def test_bad_rows_reported_are_capped_but_all_counted() -> None:
    data = b"question,answer\n" + b"ok,1\n" + b"bad,1,x\n" * 50
    _, outcome = run(data, bad_row_policy="skip_bad_rows", max_bad_fraction=1.0, max_bad_rows_reported=3)
    assert outcome.rows_bad == 50
    assert len(outcome.bad_rows) == 3


# --- canonical writer -------------------------------------------------------------------------


def test_write_jsonl_writes_one_utf8_line_per_row() -> None:
    rows, _ = run("question,answer\nÉté ?,oui\n".encode())
    sink = io.BytesIO()
    assert write_jsonl(rows, sink) == 1
    line = sink.getvalue()
    assert line.endswith(b"\n")
    assert "Été".encode() in line
    assert json.loads(line) == {"row": 0, "line": 2, "inputs": {"question": "Été ?"}, "reference": "oui"}


# --- splits and sampling ----------------------------------------------------------------------


def test_splits_are_deterministic_and_independent_of_order() -> None:
    keys = [f"row-{i}" for i in range(500)]
    first = {k: assign_split(k, 7, SplitProportions()) for k in keys}
    shuffled = keys[:]
    random.Random(1).shuffle(shuffled)
    assert {k: assign_split(k, 7, SplitProportions()) for k in shuffled} == first
    assert {k: assign_split(k, 8, SplitProportions()) for k in keys} != first


def test_split_proportions_are_roughly_honoured() -> None:
    shares = SplitProportions(train=0.7, validation=0.1, test=0.2)
    counts = Counter(assign_split(f"k{i}", 3, shares) for i in range(10_000))
    assert abs(counts["train"] / 10_000 - 0.7) < 0.02
    assert abs(counts["validation"] / 10_000 - 0.1) < 0.02
    assert abs(counts["test"] / 10_000 - 0.2) < 0.02


def test_zero_share_split_is_never_assigned_and_bad_proportions_are_refused() -> None:
    shares = SplitProportions(train=0.8, validation=0.2, test=0.0)
    assert {assign_split(f"k{i}", 1, shares) for i in range(2000)} == {"train", "validation"}
    with pytest.raises(ValidationError):
        SplitProportions(train=0.5, validation=0.2, test=0.2)
    with pytest.raises(ValidationError):
        SplitProportions(train=1.2, validation=-0.2, test=0.0)


def test_sample_is_seeded_order_independent_and_bounded() -> None:
    keys = [f"row-{i}" for i in range(1000)]
    picked = sample(keys, 10, seed=1)
    assert len(picked) == 10
    assert sample(iter(keys), 10, seed=1) == picked
    assert sorted(sample(reversed(keys), 10, seed=1)) == sorted(picked)
    assert sample(keys, 10, seed=2) != picked
    assert sample(keys[:5], 10, seed=1) == keys[:5]


def test_sample_keys_canonical_rows_by_content() -> None:
    rows, _ = run(b"question,answer\n" + b"".join(f"q{i},{i}\n".encode() for i in range(50)))
    picked = sample(rows, 5, seed=4)
    assert len(picked) == 5
    assert [row_key(r) for r in picked] == [row_key(r) for r in sample(rows, 5, seed=4)]


# --- statistics -------------------------------------------------------------------------------


def test_stats_accumulate_lengths_splits_and_reference_spread() -> None:
    rows, _ = run(b"question,answer\nab,A\n,B\nabcd,A\n")
    acc = StatsAccumulator()
    for row in rows:
        acc.add(row, split=assign_split(row_key(row), 0))
    result = acc.result()
    assert result.rows == 3
    assert sum(result.rows_per_split.values()) == 3
    field = result.inputs["question"]
    assert (field.min_chars, field.max_chars, field.mean_chars, field.empty) == (0, 4, 2.0, 1)
    assert result.reference is not None
    assert result.reference.distinct == 2
    assert [(v.value, v.count) for v in result.reference.top] == [("A", 2), ("B", 1)]
    assert result.total_chars == 9
    json.dumps(result.model_dump(mode="json"))


def test_stats_distinct_becomes_many_above_the_cap() -> None:
    acc = StatsAccumulator(distinct_cap=5)
    for i in range(10):
        acc.add(CanonicalRow(row=i, line=i + 2, inputs={"q": "x"}, reference=str(i)))
    reference = acc.result().reference
    assert reference is not None
    assert reference.distinct == "many"
    assert reference.top == []


# --- memory ---------------------------------------------------------------------------------


class GeneratedCsv(io.RawIOBase):
    """A read-only stream producing a large CSV from a generator, never holding the whole file."""

    def __init__(self, rows: int) -> None:
        self._chunks = self._generate(rows)
        self._buffer = b""

    @staticmethod
    def _generate(rows: int) -> Iterator[bytes]:
        yield b"question,answer\n"
        block = b"".join(b"what is %d plus one?,%d\n" % (i, i + 1) for i in range(1000))
        for _ in range(rows // 1000):
            yield block  # the same bytes object each time: the test itself allocates nearly nothing

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        cut = len(self._buffer) if size < 0 else size
        data, self._buffer = self._buffer[:cut], self._buffer[cut:]
        return data


def test_parsing_200k_rows_keeps_memory_flat() -> None:
    tracemalloc.start()
    try:
        parsed = parse(GeneratedCsv(200_000), fmt="csv", mapping=QA, limits=IngestLimits(max_rows=200_000))
        outcome = parsed.consume()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not outcome.failed
    assert outcome.rows_ok == 200_000
    assert peak < 5 * 1024 * 1024


def test_split_lines_are_read_a_chunk_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from promptopt.datasets import rows

    data = b'{"a": 1}\n{"b": "two"}\n\n{"c": 3}\n' + b"x" * 40 + b"\nlast"
    for chunk in (1, 3, 7, 64, 1 << 20):
        monkeypatch.setattr(rows, "_READ_CHUNK", chunk)
        assert list(rows._lines(io.BytesIO(data))) == data.split(b"\n")
    monkeypatch.setattr(rows, "_READ_CHUNK", 4)
    assert list(rows._lines(io.BytesIO(b"a\nb\n"))) == [b"a", b"b"]
    assert list(rows._lines(io.BytesIO(b""))) == []
