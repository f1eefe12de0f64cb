"""No file makes ingest raise forever: every version ends ready or failed, whatever its bytes.

Deeply nested rows are bad rows with their line (the API's own nesting limit), an unforeseen
error while parsing fails the version with a reason, and a ready version's file is never replaced.
"""

from __future__ import annotations

import codecs
import importlib
import json
import random
from typing import Any

import pytest

from promptopt import json_depth
from tests.conftest import Api
from tests.integration.datasets.conftest import Ingest
from tests.integration.datasets.test_bad_input import ingest_inline
from tests.integration.datasets.test_datasets_flow import create, get, source_name

pytestmark = pytest.mark.integration
# The package re-exports the function `parse` under the module's name: fetch the module itself.
parse_module = importlib.import_module("promptopt.datasets.files.parsing")

GOOD = [{"question": f"what is {i} plus {i}?", "answer": str(2 * i)} for i in range(40)]


def jsonl(rows: list[Any]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def deep(levels: int) -> bytes:
    return b'{"question":' + b"[" * levels + b"]" * levels + b',"answer":"b"}'


def test_a_row_nested_100000_deep_is_a_bad_row_with_its_line(api: Api, tenant: str, ingest: Ingest) -> None:
    data = jsonl(GOOD[:20]) + deep(100_000) + b"\n" + jsonl(GOOD[20:])
    accepted = ingest_inline(
        api, tenant, ingest, data, "jsonl", bad_row_policy="skip_bad_rows", max_bad_fraction=0.1
    )
    assert accepted["status"] == "ready", accepted
    assert (accepted["rows_ok"], accepted["rows_bad"]) == (40, 1)
    (bad,) = accepted["bad_rows"]
    assert bad["line"] == 21
    assert f"deeper than {json_depth.MAX_DEPTH}" in bad["reason"]
    rejected = ingest_inline(api, tenant, ingest, data, "jsonl")
    assert rejected["status"] == "failed"
    assert [b["line"] for b in rejected["bad_rows"]] == [21]


def test_nesting_counts_against_max_bad_fraction(api: Api, tenant: str, ingest: Ingest) -> None:
    data = jsonl(GOOD[:5]) + b"\n".join(deep(5_000) for _ in range(5)) + b"\n"
    version = ingest_inline(
        api, tenant, ingest, data, "jsonl", bad_row_policy="skip_bad_rows", max_bad_fraction=0.1
    )
    assert (version["status"], version["rows_bad"]) == ("failed", 5)


def test_nesting_within_the_limit_is_kept(api: Api, tenant: str, ingest: Ingest) -> None:
    levels = json_depth.MAX_DEPTH - 1
    data = jsonl(GOOD[:3]) + deep(levels) + b"\n"
    version = ingest_inline(api, tenant, ingest, data, "jsonl")
    assert (version["status"], version["rows_ok"]) == ("ready", 4)


def test_an_unforeseen_parse_error_fails_the_version_with_a_reason(
    api: Api, tenant: str, ingest: Ingest, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise TypeError("a case nobody foresaw")

    monkeypatch.setattr(parse_module, "_canonical", broken)
    version = ingest_inline(api, tenant, ingest, jsonl(GOOD[:3]), "jsonl")
    assert version["status"] == "failed"
    assert version["failure"]["code"] == "invalid_file"
    assert "TypeError" in version["failure"]["reason"]


def test_a_ready_versions_file_written_again_changes_nothing(api: Api, tenant: str, ingest: Ingest) -> None:
    created = create(api, tenant)
    name = source_name(created)
    assert ingest.deliver(name) == 200
    dataset_id = created["dataset"]["dataset_id"]
    before = get(api, tenant, dataset_id)["versions"][0]
    assert before["status"] == "ready"
    ingest.put(name, b"question,answer\nx,y\n")  # someone with bucket access overwrites it
    assert ingest.deliver(name) == 200
    after = get(api, tenant, dataset_id)["versions"][0]
    assert after == before


# -- fuzz: a seeded generator of malformed files ---------------------------------------------------


def _mutations(rng: random.Random) -> list[tuple[str, bytes, str]]:
    base = jsonl(GOOD[:15])
    csv = b"question,answer\n" + b"".join(f"q{i},{i}\n".encode() for i in range(15))
    cases: list[tuple[str, bytes, str]] = [
        ("empty", b"", "jsonl"),
        ("empty csv", b"", "csv"),
        ("only a BOM", codecs.BOM_UTF8, "csv"),
        ("BOM then rows", codecs.BOM_UTF8 + base, "jsonl"),
        ("UTF-16 BOM", codecs.BOM_UTF16_LE + "question,answer\na,b\n".encode("utf-16-le"), "csv"),
        ("truncated UTF-8", base + "é".encode()[:1], "jsonl"),
        ("truncated UTF-8 mid file", csv[:30] + b"\xe2\x82" + csv[30:], "csv"),
        ("binary", bytes(rng.randrange(256) for _ in range(4096)), "csv"),
        ("binary jsonl", bytes(rng.randrange(256) for _ in range(4096)), "jsonl"),
        (
            "a huge line",
            base + b'{"question": "' + b"x" * (1024 * 1024 + 5) + b'", "answer": "1"}\n',
            "jsonl",
        ),
        ("a huge csv cell", csv + b"q," + b"y" * (1024 * 1024 + 5) + b"\n", "csv"),
        ("deep object", base + b'{"question":' + b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"}\n", "jsonl"),
        ("deep and unclosed", base + b"[" * 200_000 + b"\n", "jsonl"),
        (
            "wrong types",
            jsonl([{"question": [1, {"x": None}], "answer": 3.5}, {"question": True, "answer": None}]),
            "jsonl",
        ),
        ("not objects", b'[1,2]\n"text"\n42\nnull\n', "jsonl"),
        (
            "NaN and huge numbers",
            b'{"question": NaN, "answer": 1e999999}\n{"question": -Infinity, "answer": 1}\n',
            "jsonl",
        ),
        ("NUL bytes", csv.replace(b"q3", b"q\x003"), "csv"),
        ("quotes everywhere", b'question,answer\n"a""b",""""\n"unterminated,1\n', "csv"),
        ("lone CRs", csv.replace(b"\n", b"\r"), "csv"),
        ("only a header", b"question,answer\n", "csv"),
        ("surrogate escapes", b'{"question": "\\ud800", "answer": "\\udfff"}\n', "jsonl"),
    ]
    for i in range(8):  # random byte damage on a valid file
        data = bytearray(base if i % 2 else csv)
        for _ in range(rng.randrange(1, 20)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        cases.append((f"damaged {i}", bytes(data), "jsonl" if i % 2 else "csv"))
    return cases


@pytest.mark.parametrize("policy", ["reject_file", "skip_bad_rows"])
def test_fuzzed_files_always_end_ready_or_failed(api: Api, tenant: str, ingest: Ingest, policy: str) -> None:
    rng = random.Random(20260101 + len(policy))
    for label, data, fmt in _mutations(rng):
        version = ingest_inline(api, tenant, ingest, data, fmt, bad_row_policy=policy, max_bad_fraction=0.5)
        assert version["status"] in ("ready", "failed"), (label, version)
        if version["status"] == "failed":
            assert version["failure"]["reason"], label
