"""POST /api/v1/evaluate through the function's real app: pure scoring, no storage."""

from __future__ import annotations

from typing import Any

import pytest

from promptopt.evaluation import wilson_interval
from tests.conftest import Api

pytestmark = pytest.mark.integration

PATH = "/api/v1/evaluate"


def evaluate(api: Api, tenant: str | None, body: Any, role: str = "viewer", **kw: Any) -> Any:
    return api.call("evaluate", "POST", PATH, tenant=tenant, role=role, json=body, **kw)


def body(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "predictions": ["42.", "so 6 + 1 = 7 #### 7", "forty", "10"],
        "references": ["42", "#### 7", "41", "8"],
        "metrics": [{"name": "exact_match"}, {"name": "numeric", "params": {"tolerance": 2}}],
    }
    return {**base, **overrides}


def problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.get_data(as_text=True)
    assert r.content_type == "application/problem+json"
    return r.get_json()


def test_scores_means_and_intervals(api: Api, tenant: str) -> None:
    r = evaluate(api, tenant, body())
    assert r.status_code == 200, r.get_json()
    out = r.get_json()
    assert out["n"] == 4
    exact, numeric = out["metrics"]
    assert exact["name"] == "exact_match"
    assert (exact["mean"], exact["n"]) == (0.25, 4)  # only "42." (punctuation at the ends is ignored)
    assert (exact["ci_low"], exact["ci_high"]) == pytest.approx(wilson_interval(1, 4))
    assert numeric["name"] == "numeric"
    assert (numeric["mean"], numeric["n"]) == (0.75, 4)  # 42, 7 and 10~8 (tolerance 2); "forty" has none
    assert (numeric["ci_low"], numeric["ci_high"]) == pytest.approx(wilson_interval(3, 4))
    assert 0 < numeric["ci_low"] < numeric["mean"] < numeric["ci_high"] < 1
    assert out["rows"] == [
        {"index": 0, "scores": {"exact_match": 1.0, "numeric": 1.0}},
        {"index": 1, "scores": {"exact_match": 0.0, "numeric": 1.0}},
        {"index": 2, "scores": {"exact_match": 0.0, "numeric": 0.0}},
        {"index": 3, "scores": {"exact_match": 0.0, "numeric": 1.0}},
    ]


def test_rows_can_be_left_out(api: Api, tenant: str) -> None:
    out = evaluate(api, tenant, body(include_rows=False)).get_json()
    assert out["rows"] is None
    assert [m["mean"] for m in out["metrics"]] == [0.25, 0.75]


def test_reference_free_metrics_accept_null_references(api: Api, tenant: str) -> None:
    r = evaluate(
        api,
        tenant,
        {
            "predictions": ['{"a": 1}', "not json"],
            "references": [None, None],
            "metrics": [{"name": "json_valid"}, {"name": "regex", "params": {"pattern": r"^\{"}}],
            "inputs": ["q1", "q2"],
        },
    )
    assert r.status_code == 200, r.get_json()
    assert [m["mean"] for m in r.get_json()["metrics"]] == [0.5, 0.5]


@pytest.mark.parametrize(
    "overrides",
    [
        {"metrics": [{"name": "bleu"}]},
        {"metrics": []},
        {"metrics": [{"name": "exact_match"}] * 2},
        {"metrics": [{"name": f"m{i}"} for i in range(11)]},
        {"metrics": [{"name": "exact_match", "weight": 2}]},
        {"predictions": []},
        {"predictions": ["x"] * 5_001, "references": ["x"] * 5_001},
        {"predictions": ["x" * 20_001], "references": ["x"]},
        {"predictions": [1], "references": ["1"]},
        {"surprise": True},
    ],
    ids=[
        "unknown_metric",
        "no_metrics",
        "repeated_metric",
        "too_many_metrics",
        "unknown_metric_field",
        "no_rows",
        "too_many_rows",
        "text_too_long",
        "not_a_string",
        "unknown_field",
    ],
)
def test_invalid_bodies_are_400(api: Api, tenant: str, overrides: dict[str, Any]) -> None:
    out = problem(evaluate(api, tenant, body(**overrides)), 400)
    assert out["code"] == "validation_failed"
    assert out["errors"]


def test_unknown_metric_lists_the_available_ones(api: Api, tenant: str) -> None:
    out = problem(evaluate(api, tenant, body(metrics=[{"name": "bleu"}])), 400)
    (error,) = out["errors"]
    assert error["loc"] == "body.metrics.0.name"
    assert "exact_match" in error["msg"]
    assert "token_f1" in error["msg"]


@pytest.mark.parametrize(
    "overrides",
    [{"references": ["a"]}, {"inputs": ["only one"]}],
    ids=["references", "inputs"],
)
def test_length_mismatch(api: Api, tenant: str, overrides: dict[str, Any]) -> None:
    out = problem(evaluate(api, tenant, body(**overrides)), 400)
    assert out["code"] == "length_mismatch"


def test_null_reference_for_a_metric_that_reads_it(api: Api, tenant: str) -> None:
    out = problem(evaluate(api, tenant, body(references=["42", None, "41", "8"])), 400)
    assert out["code"] == "reference_required"
    assert out["extra"] == {"metric": "exact_match", "index": 1}


@pytest.mark.parametrize(
    "metric",
    [
        {"name": "regex", "params": {"pattern": "(unclosed"}},
        {"name": "regex"},
        {"name": "numeric", "params": {"tolerance": "wide"}},
        {"name": "json_schema", "params": {"schema": "not an object"}},
        {"name": "json_schema", "params": {"schema": {"type": "object", "required": 5}}},
    ],
    ids=["bad_regex", "no_pattern", "bad_tolerance", "schema_not_object", "malformed_schema"],
)
def test_bad_metric_params_are_400(api: Api, tenant: str, metric: dict[str, Any]) -> None:
    out = problem(evaluate(api, tenant, body(predictions=["{}"] * 4, metrics=[metric])), 400)
    assert out["code"] == "invalid_metric_params"
    assert out["extra"] == {"metric": metric["name"]}


@pytest.mark.parametrize("role", ["viewer", "editor", "admin"])
def test_every_role_may_evaluate(api: Api, tenant: str, role: str) -> None:
    assert evaluate(api, tenant, body(), role=role).status_code == 200


def test_missing_identity_is_401(api: Api) -> None:
    assert problem(evaluate(api, None, body()), 401)["code"] == "unauthenticated"


def test_body_too_large_is_413(api: Api, tenant: str) -> None:
    big = body(predictions=["x" * 20_000] * 60, references=["x"] * 60)  # ~1.2 MB > the 1 MiB cap
    assert problem(evaluate(api, tenant, big), 413)["code"] == "body_too_large"


def test_idempotency_key_is_ignored(api: Api, tenant: str) -> None:
    r = evaluate(api, tenant, body(), headers={"Idempotency-Key": "k-1"})
    again = evaluate(api, tenant, body(), headers={"Idempotency-Key": "k-1"})
    assert r.status_code == again.status_code == 200
    assert "Idempotent-Replayed" not in again.headers
