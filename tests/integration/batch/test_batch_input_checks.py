"""Batch job bodies get the same door checks as the synchronous endpoints."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.batch.conftest import Batch

pytestmark = pytest.mark.integration

BASE: dict[str, Any] = {"output_prompt": "Q: {q}", "rows": [{"inputs": {"q": "2 + 3"}, "reference": "5"}]}


@pytest.mark.parametrize(
    "overrides",
    [
        {"response_schema": {"$ref": "http://127.0.0.1:9/x"}},
        {"response_schema": {"type": "object", "properties": {"a": {"$ref": "file:///etc/passwd"}}}},
        {"response_schema": {"type": "object", "properties": 5}},
        {"response_schema": {"type": "object", "properties": ["a"]}},
        {"response_schema": {"type": "array", "items": 5}},
        {"budget": {"max_calls": 2**63}},
        {"budget": {"max_tokens": 10**30}},
        {"budget": {"max_calls": "10"}},
        {"budget": {"max_cost_usd": 1e300}},
        {"temperature": "0.5"},
    ],
)
def test_bad_batch_bodies_are_400(batch: Batch, overrides: dict[str, Any]) -> None:
    for path in ("/api/v1/inference/batch", "/api/v1/inference/evaluate"):
        body = {**BASE, **overrides}
        if path.endswith("/evaluate"):
            body["metrics"] = [{"name": "exact_match"}]
        r = batch.create(body, path=path)
        assert r.status_code == 400, r.get_data(as_text=True)
        assert r.get_json()["code"] in {"validation_failed", "number_out_of_range"}


@pytest.mark.parametrize(
    "metric",
    [
        {"name": "regex", "params": {"pattern": "(a)\\1"}},
        {"name": "regex", "params": {"pattern": "a", "flags": "i"}},
        {"name": "json_schema", "params": {"schema": {"$ref": "http://127.0.0.1:9/x"}}},
        {"name": "numeric", "params": {"tolerance": float("nan")}},
    ],
)
def test_bad_metric_params_are_refused_before_a_job_exists(batch: Batch, metric: dict[str, Any]) -> None:
    raw = json.dumps({**BASE, "metrics": [metric]}, allow_nan=True)
    r = batch.api.call(
        "batch_evaluation_create",
        "POST",
        "/api/v1/inference/evaluate",
        tenant=batch.tenant,
        role="editor",
        data=raw,
        content_type="application/json",
    )
    assert r.status_code == 400, r.get_data(as_text=True)


def test_raw_nan_and_huge_integers_in_budgets_are_400(batch: Batch) -> None:
    for raw_budget in (
        '{"max_calls": 9223372036854775808}',
        '{"max_cost_usd": NaN}',
        '{"max_cost_usd": Infinity}',
    ):
        raw = json.dumps(BASE)[:-1] + f', "budget": {raw_budget}}}'
        r = batch.api.call(
            "batch_create",
            "POST",
            "/api/v1/inference/batch",
            tenant=batch.tenant,
            role="editor",
            data=raw,
            content_type="application/json",
        )
        assert (r.status_code, r.get_json()["code"]) == (400, "number_out_of_range")
