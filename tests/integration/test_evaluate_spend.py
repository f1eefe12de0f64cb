"""POST /api/v1/evaluate's model-backed metrics count as synchronous usage: recorded per model in
GET /api/v1/usage and the month's spend, and refused with 402 when they could pass the spending cap.
The simulator is priced here so its calls cost money."""

from __future__ import annotations

import json
from typing import Any

import pytest

from promptopt import config
from promptopt.llm import pricing
from promptopt.spend import caps
from tests.conftest import Api

pytestmark = pytest.mark.integration

PRICES = {"sim:default": {"input": 1000.0, "output": 2000.0}}  # dear, so a few calls cost dollars
QA = {
    "predictions": ["The capital of France is Paris", "Paris", "Berlin", "The capital of France is Paris"],
    "references": ["The capital of France is Paris"] * 4,
    "inputs": ["What is the capital of France?"] * 4,
}
METRICS = [
    {"name": "exact_match"},
    {"name": "embedding_similarity", "params": {"model": "sim:default"}},
    {"name": "llm_judge", "params": {"model": "sim:default", "max_tokens": 64}},
]


@pytest.fixture(autouse=True)
def priced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMPTOPT_DEFAULT_MODEL", raising=False)
    monkeypatch.setenv("PROMPTOPT_PRICES", json.dumps(PRICES))
    config.reset()
    pricing.reset()
    caps.forget()


def _evaluate(api: Api, tenant: str, metrics: list[dict[str, Any]] = METRICS) -> Any:
    return api.call(
        "evaluation_score",
        "POST",
        "/api/v1/evaluate",
        tenant=tenant,
        role="viewer",
        json={**QA, "metrics": metrics},
    )


def _usage(api: Api, tenant: str) -> dict[str, Any]:
    r = api.call("usage_get", "GET", "/api/v1/usage", tenant=tenant, role="viewer")
    assert r.status_code == 200, r.get_data(as_text=True)
    return dict(r.get_json())


def _spent(api: Api, tenant: str) -> float:
    r = api.call("spending_cap_get", "GET", "/api/v1/spending-cap", tenant=tenant, role="viewer")
    return float(r.get_json()["spent_usd"])


def test_usage_sums_equal_what_the_evaluation_reports(api: Api, tenant: str) -> None:
    assert _evaluate(api, tenant, [{"name": "exact_match"}]).status_code == 200  # no model: nothing recorded
    assert _usage(api, tenant)["totals"]["calls"] == 0
    results = [_evaluate(api, tenant) for _ in range(2)]
    assert all(r.status_code == 200 for r in results), results[0].get_data(as_text=True)
    judged = [m["usage"] for r in results for m in r.get_json()["metrics"] if m["name"] == "llm_judge"]
    assert [u["calls"] for u in judged] == [3, 3]  # the repeated row is judged once
    reported = [m["usage"] for r in results for m in r.get_json()["metrics"] if m["usage"]]
    cost = sum(r.get_json()["cost_usd"] for r in results)
    assert cost > 0

    report = _usage(api, tenant)
    totals = report["totals"]
    assert totals["calls"] == sum(u["calls"] for u in reported)
    assert totals["input_tokens"] == sum(u["input_tokens"] for u in reported)
    assert totals["output_tokens"] == sum(u["output_tokens"] for u in reported)
    assert totals["cost_usd"] == pytest.approx(cost)
    assert totals["cache_hits"] == 0  # identical rows are called once, never answered from a cache
    by_model = {m["model"]: m for m in report["by_model"]}
    for model in {u["model"] for u in reported}:
        mine = [u for u in reported if u["model"] == model]
        assert by_model[model]["calls"] == sum(u["calls"] for u in mine)
        assert by_model[model]["cost_usd"] == pytest.approx(sum(u["cost_usd"] for u in mine))
    assert [s["kind"] for s in report["by_source"]] == ["sync"]
    assert _spent(api, tenant) == pytest.approx(cost)  # the ledger the cap reads holds the same money


def test_the_cap_refuses_an_evaluation_that_could_pass_it(api: Api, tenant: str) -> None:
    first = _evaluate(api, tenant)
    assert first.status_code == 200, first.get_data(as_text=True)
    spent = first.get_json()["cost_usd"]
    # Room for what was spent, but not for another evaluation's upper bound (max_tokens out per row).
    cap = {"monthly_cap_usd": spent * 1.5}
    set_cap = api.call("spending_cap_set", "PUT", "/api/v1/spending-cap", tenant=tenant, json=cap)
    assert set_cap.status_code == 200
    refused = _evaluate(api, tenant)
    assert refused.status_code == 402, refused.get_data(as_text=True)
    problem = refused.get_json()
    assert problem["code"] == "spending_cap_exceeded"
    assert problem["extra"]["spent_usd"] == pytest.approx(spent)
    assert problem["extra"]["estimate_usd"] > spent * 0.5
    assert _spent(api, tenant) == pytest.approx(spent)  # nothing was called
    # Deterministic metrics cost nothing and stay available at the cap.
    assert _evaluate(api, tenant, [{"name": "exact_match"}]).status_code == 200
