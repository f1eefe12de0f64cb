"""POST /api/v1/evaluate through the function's real app: pure scoring, no storage."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from promptopt import config, secrets
from promptopt.evaluation import wilson_interval
from promptopt.llm import gemini, openai_compat, pricing, registry
from tests.conftest import Api
from tests.fakes.model_servers import FakeVertex
from tests.support import ROOT

pytestmark = pytest.mark.integration

PATH = "/api/v1/evaluate"


@pytest.fixture(autouse=True)
def _models(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PROMPTOPT_FORBID_REAL_MODELS", "1")
    monkeypatch.delenv("PROMPTOPT_DEFAULT_MODEL", raising=False)
    monkeypatch.delenv("PROMPTOPT_PRICES", raising=False)
    monkeypatch.setenv("PROMPTOPT_GEMINI_ACCESS_TOKEN", "fake-token")
    monkeypatch.setenv("PROMPTOPT_GEMINI_RETRY_ATTEMPTS", "2")
    monkeypatch.setenv("PROMPTOPT_GEMINI_RETRY_INITIAL_DELAY_S", "0.01")
    monkeypatch.setenv("PROMPTOPT_GEMINI_RETRY_MAX_DELAY_S", "0.02")
    _reset()
    yield
    _reset()


def _reset() -> None:
    config.reset()
    registry.reset()
    gemini.reset()
    openai_compat.reset()
    secrets.reset()
    pricing.reset()


@pytest.fixture(scope="module")
def vertex() -> Iterator[FakeVertex]:
    with FakeVertex(
        reply='{"reason": "matches the reference", "score": 4}', input_tokens=50, output_tokens=10
    ) as server:
        yield server


def evaluate(api: Api, tenant: str | None, body: Any, role: str = "viewer", **kw: Any) -> Any:
    return api.call("evaluation_score", "POST", PATH, tenant=tenant, role=role, json=body, **kw)


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
    assert [row["scores"] for row in out["rows"]] == [
        {"exact_match": 1.0, "numeric": 1.0},
        {"exact_match": 0.0, "numeric": 1.0},
        {"exact_match": 0.0, "numeric": 0.0},
        {"exact_match": 0.0, "numeric": 1.0},
    ]
    assert [row["index"] for row in out["rows"]] == [0, 1, 2, 3]
    assert all(row["errors"] is None and row["reasons"] is None for row in out["rows"])
    assert (exact["errors"], exact["usage"], out["cost_usd"]) == (0, None, 0.0)  # no model was called


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
    assert out["code"] == "validation_failed"  # refused at the door, before any row is scored
    (error,) = out["errors"]
    assert error["loc"] == "body.metrics.0"


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


# Model-backed metrics ----------------------------------------------------------------------

QA = {
    "predictions": ["The capital of France is Paris", "Paris", "Berlin", "The capital of France is Paris"],
    "references": ["The capital of France is Paris"] * 4,
    "inputs": ["What is the capital of France?"] * 4,
}


def test_embedding_similarity_and_llm_judge_with_the_simulator(api: Api, tenant: str) -> None:
    metrics = [
        {"name": "embedding_similarity", "params": {"model": "sim:default"}},
        {"name": "llm_judge", "params": {"model": "sim:default", "rubric": "Same city?", "scale": "0-10"}},
    ]
    r = evaluate(api, tenant, {**QA, "metrics": metrics})  # a viewer may use the simulator
    assert r.status_code == 200, r.get_data(as_text=True)
    out = r.get_json()
    similarity, judge = out["metrics"]
    sim_scores = [row["scores"]["embedding_similarity"] for row in out["rows"]]
    judge_scores = [row["scores"]["llm_judge"] for row in out["rows"]]
    assert sim_scores[0] == pytest.approx(1.0)
    assert sim_scores[0] > sim_scores[1] > sim_scores[2]
    assert judge_scores[0] == judge_scores[3] == 1.0
    assert judge_scores[2] == 0.0
    assert 0.0 < judge_scores[1] < 1.0
    for summary in (similarity, judge):
        assert summary["n"] == 4
        assert 0.0 <= summary["ci_low"] <= summary["mean"] <= summary["ci_high"] <= 1.0
        assert summary["errors"] == 0
        assert summary["usage"]["simulated"] is True
        assert summary["usage"]["cost_usd"] == 0.0
    assert judge["usage"] == {
        "model": "sim:default",
        "calls": 3,  # the repeated row is judged once
        "input_tokens": judge["usage"]["input_tokens"],
        "output_tokens": judge["usage"]["output_tokens"],
        "cost_usd": 0.0,
        "simulated": True,
    }
    assert similarity["usage"]["calls"] == 1
    assert "simulated judge" in out["rows"][1]["reasons"]["llm_judge"]
    assert out["rows"][0]["errors"] is None
    assert out["cost_usd"] == 0.0


def test_the_default_model_is_the_deployments(api: Api, tenant: str) -> None:
    r = evaluate(api, tenant, {**QA, "metrics": [{"name": "llm_judge"}, {"name": "embedding_similarity"}]})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert [m["usage"]["model"] for m in r.get_json()["metrics"]] == ["sim:default", "sim:default"]


def test_a_real_model_needs_an_editor_and_reports_cost(
    api: Api, tenant: str, vertex: FakeVertex, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMPTOPT_GEMINI_BASE_URL", vertex.url)
    vertex.default = "ok"
    body = {
        **QA,
        "metrics": [
            {"name": "llm_judge", "params": {"model": "gemini:gemini-2.5-flash"}},
            {
                "name": "embedding_similarity",
                "params": {"model": "gemini:text-embedding-005", "threshold": 0.9},
            },
        ],
    }
    denied = problem(evaluate(api, tenant, body), 403)
    assert denied["code"] == "role_too_low"
    r = evaluate(api, tenant, body, role="editor")
    assert r.status_code == 200, r.get_data(as_text=True)
    out = r.get_json()
    judge, similarity = out["metrics"]
    assert judge["mean"] == 0.75  # the fake grades every row 4 on 1-5
    assert judge["usage"]["calls"] == 3
    assert judge["usage"]["cost_usd"] == pytest.approx(3 * (50 * 0.30 + 10 * 2.50) / 1e6)
    assert similarity["usage"]["model"] == "gemini:text-embedding-005"
    assert similarity["usage"]["simulated"] is False
    assert {row["scores"]["embedding_similarity"] for row in out["rows"]} <= {0.0, 1.0}
    assert out["cost_usd"] == pytest.approx(judge["usage"]["cost_usd"] + similarity["usage"]["cost_usd"])


def test_provider_failures_are_typed_errors_not_500s(
    api: Api, tenant: str, vertex: FakeVertex, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMPTOPT_GEMINI_BASE_URL", vertex.url)
    judge = {**QA, "metrics": [{"name": "llm_judge", "params": {"model": "gemini:gemini-2.5-flash"}}]}
    vertex.default = "503"
    try:
        r = evaluate(api, tenant, judge, role="editor")
        busy = problem(r, 503)
        assert busy["code"] == "model_busy"
        assert int(r.headers["Retry-After"]) > 0
        assert "llm_judge" in busy["detail"]
        vertex.default = "400"
        embed = {**QA, "metrics": [{"name": "embedding_similarity", "params": {"model": "gemini:x-embed"}}]}
        assert problem(evaluate(api, tenant, embed, role="editor"), 422)["code"] == "model_rejected_request"
    finally:
        vertex.default = "ok"
    monkeypatch.delenv("PROMPTOPT_GEMINI_BASE_URL")
    _reset()
    refused = problem(evaluate(api, tenant, judge, role="editor"), 503)
    assert refused["code"] == "model_not_configured"


def test_an_unusable_judge_answer_is_a_row_error(
    api: Api, tenant: str, vertex: FakeVertex, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMPTOPT_GEMINI_BASE_URL", vertex.url)
    vertex.reply = "I would rather not grade this."
    try:
        body = {"predictions": ["a"], "references": ["b"]}
        metrics = [{"name": "llm_judge", "params": {"model": "gemini:gemini-2.5-flash"}}]
        r = evaluate(api, tenant, {**body, "metrics": metrics}, role="editor")
    finally:
        vertex.reply = '{"reason": "matches the reference", "score": 4}'
    assert r.status_code == 200, r.get_data(as_text=True)
    out = r.get_json()
    assert (out["metrics"][0]["mean"], out["metrics"][0]["errors"]) == (0.0, 1)
    assert "unusable judge answer" in out["rows"][0]["errors"]["llm_judge"]


@pytest.mark.parametrize(
    ("metric", "status", "code"),
    [
        ({"name": "llm_judge", "params": {"model": "nope:x"}}, 400, "unknown_model"),
        ({"name": "llm_judge", "params": {"scale": "5-1"}}, 400, "invalid_metric_params"),
        ({"name": "llm_judge", "params": {"judge": "sim:x"}}, 400, "validation_failed"),
        ({"name": "embedding_similarity", "params": {"threshold": 3}}, 400, "invalid_metric_params"),
    ],
    ids=["unknown_provider", "bad_scale", "unknown_param", "bad_threshold"],
)
def test_bad_model_metric_params(
    api: Api, tenant: str, metric: dict[str, Any], status: int, code: str
) -> None:
    out = problem(evaluate(api, tenant, {**QA, "metrics": [metric]}), status)
    assert out["code"] == code


def test_the_judge_takes_a_bounded_number_of_rows(api: Api, tenant: str) -> None:
    rows = {"predictions": ["a"] * 101, "references": ["a"] * 101, "metrics": [{"name": "llm_judge"}]}
    out = problem(evaluate(api, tenant, rows), 400)
    assert out["code"] == "too_many_rows"
    rows["metrics"] = [{"name": "embedding_similarity"}]
    assert evaluate(api, tenant, rows).status_code == 200


def test_deterministic_and_sim_metrics_do_not_import_provider_sdks(emulator_env: dict[str, str]) -> None:
    # Deterministic metrics touch no storage; simulated model calls are recorded in usage
    # (Firestore) but never load a provider SDK.
    script = f"""
import sys
sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / "shared")!r}]
from tests.support import claims_header, load_app
app = load_app("evaluation_score")
body = {{"predictions": ["a b", "c"], "references": ["a b", "d"], "metrics": [{{"name": "exact_match"}}]}}
r = app.test_client().post({PATH!r}, json=body, headers=claims_header("t-x", "viewer"))
assert r.status_code == 200, r.get_data(as_text=True)
print([m for m in ("google.genai", "google.cloud.firestore", "httpx") if m in sys.modules])
body["metrics"] += [{{"name": "llm_judge"}}, {{"name": "embedding_similarity"}}]
r = app.test_client().post({PATH!r}, json=body, headers=claims_header("t-x", "viewer"))
assert r.status_code == 200, r.get_data(as_text=True)
print([m for m in ("google.genai", "httpx") if m in sys.modules])
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    printed = [line for line in done.stdout.splitlines() if line.startswith("[")]  # not the JSON logs
    assert printed == ["[]", "[]"]
