"""The bad-input matrix: every bad file ends as a failed version with a reason, nothing lost."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from promptopt import config
from tests.conftest import Api
from tests.integration.datasets.conftest import Ingest
from tests.integration.datasets.test_datasets_flow import MAPPING, get, source_name


def ingest_inline(
    api: Api, tenant: str, ingest: Ingest, data: bytes, fmt: str = "csv", **fields: Any
) -> dict[str, Any]:
    body = {
        "name": "bad",
        "format": fmt,
        "mapping": MAPPING,
        "content_base64": base64.b64encode(data).decode(),
        **fields,
    }
    response = api.call(
        "datasets_create", "POST", "/api/v1/datasets", tenant=tenant, role="editor", json=body
    )
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert ingest.deliver(source_name(created)) == 200
    return get(api, tenant, created["dataset"]["dataset_id"])["versions"][0]


CASES = {
    "empty file": (b"", "csv", "no data rows"),
    "binary file": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "csv", "looks binary"),
    "latin-1 file": ("question,answer\ncafé,1\n".encode("latin-1"), "csv", "not valid UTF-8"),
    "ragged csv": (b"question,answer\na,1\nb,2,extra\nc,3\n", "csv", "line 3"),
    "unbalanced quotes": (b'question,answer\n"a,1\nb,2\n', "csv", "quote"),
    "missing mapped column": (b"question,solution\na,1\n", "csv", "'answer'"),
    "jsonl broken line in the middle": (
        b'{"question": "a", "answer": "1"}\n{"question": "b", "answer": \n{"question": "c", "answer": "3"}\n',
        "jsonl",
        "line 2",
    ),
    "row above the size cap": (
        b"question,answer\n" + b"x" * (1024 * 1024 + 10) + b",1\nq,2\n",
        "csv",
        "bytes",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_file_fails_with_a_reason(api: Api, tenant: str, ingest: Ingest, case: str) -> None:
    data, fmt, expected = CASES[case]
    version = ingest_inline(api, tenant, ingest, data, fmt)
    assert version["status"] == "failed", version
    failure = version["failure"]
    assert failure["code"] == "invalid_file"
    assert expected in failure["reason"] + " ".join(b["reason"] for b in version["bad_rows"]), failure


def test_bad_rows_are_reported_with_lines_and_the_policy_can_accept_the_rest(
    api: Api, tenant: str, ingest: Ingest
) -> None:
    data = b"question,answer\na,1\nb,2,extra\nc,3\nd\n" + b"".join(b"q%d,%d\n" % (i, i) for i in range(40))
    rejected = ingest_inline(api, tenant, ingest, data)
    assert rejected["status"] == "failed"
    assert [b["line"] for b in rejected["bad_rows"]] == [3, 5]
    accepted = ingest_inline(api, tenant, ingest, data, bad_row_policy="skip_bad_rows", max_bad_fraction=0.1)
    assert accepted["status"] == "ready"
    assert (accepted["rows_ok"], accepted["rows_bad"]) == (42, 2)
    assert [b["line"] for b in accepted["bad_rows"]] == [3, 5]


@pytest.fixture
def small_file_limit(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setenv("PROMPTOPT_DATASET_MAX_BYTES", "1000")
    config.reset()
    yield 1000
    monkeypatch.delenv("PROMPTOPT_DATASET_MAX_BYTES")
    config.reset()


def test_file_above_the_size_limit_fails_naming_the_limit(
    api: Api, tenant: str, ingest: Ingest, small_file_limit: int
) -> None:
    data = b"question,answer\n" + b"".join(b"question %d,%d\n" % (i, i) for i in range(200))
    version = ingest_inline(api, tenant, ingest, data)
    assert version["status"] == "failed"
    assert version["failure"]["code"] == "file_too_large"
    assert str(small_file_limit) in version["failure"]["reason"]


def test_a_dropped_file_without_usable_columns_fails_visibly(api: Api, tenant: str, ingest: Ingest) -> None:
    name = f"tenants/{tenant}/drop/answers-only.csv"
    ingest.put(name, b"answer\n1\n2\n")
    ingest.deliver(name)
    dataset = api.call("datasets_list", "GET", "/api/v1/datasets", tenant=tenant).get_json()["items"][0]
    version = get(api, tenant, dataset["dataset_id"])["versions"][0]
    assert version["status"] == "failed"
    assert version["failure"]["code"] == "no_mapping"
    assert "inputs=" in version["failure"]["reason"]


def test_a_later_drop_with_metadata_repairs_the_mapping(api: Api, tenant: str, ingest: Ingest) -> None:
    name = f"tenants/{tenant}/drop/scores.csv"
    ingest.put(name, b"answer\n1\n")
    ingest.deliver(name)
    ingest.put(name, b"q,answer\nx,1\n", metadata={"inputs": "q", "reference": "answer"})
    ingest.deliver(name)
    dataset = api.call("datasets_list", "GET", "/api/v1/datasets", tenant=tenant).get_json()["items"][0]
    assert dataset["mapping"] == {"inputs": ["q"], "reference": "answer"}
    statuses = [v["status"] for v in get(api, tenant, dataset["dataset_id"])["versions"]]
    assert statuses == ["ready", "failed"]
