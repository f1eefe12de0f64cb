"""llm_judge in batch evaluation jobs: each answered row is judged in its chunk, once.

The judge's calls count in the job's usage, a judge failure on one row is that row's recorded
error (the job still finishes), and re-delivered chunks and messages judge and count nothing twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.batch_faults import BUSY, POISON, FaultyOpenAI
from tests.integration.batch.conftest import Batch

pytestmark = pytest.mark.integration

EVALUATE = "/api/v1/inference/evaluate"
PROMPT = {"system_prompt": "Answer with the colour only.", "output_prompt": "What colour is {thing}?"}
THINGS = {"grass": "green", "the sky": "blue", "snow": "white", "coal": "black", "a banana": "yellow"}


def body(**overrides: Any) -> dict[str, Any]:
    return {
        **PROMPT,
        "model": "sim:default",
        "rows": [{"inputs": {"thing": t}, "reference": ref} for t, ref in THINGS.items()],
        "metrics": [{"name": "llm_judge", "params": {"model": "sim:default"}}, {"name": "contains"}],
        "chunk_size": 2,
        **overrides,
    }


def scored(batch: Batch, job_id: str, *, pushes: int = 1) -> dict[str, Any]:
    (message,) = batch.infra.pull("batch-completed", job_id)
    assert [batch.push(message).status_code for _ in range(pushes)] == [200] * pushes
    return batch.get(job_id)


@pytest.fixture
def judge(monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultyOpenAI]:
    """A judge grading 5 of 5; it refuses POISON rows and answers BUSY rows 429 past the client's retries."""
    verdict = json.dumps({"reason": "states the reference's colour", "score": 5})
    with FaultyOpenAI(reply=verdict, input_tokens=30, output_tokens=9, busy_times=3) as server:
        monkeypatch.setenv("PROMPTOPT_OPENAI_BASE_URL", server.base_url)
        yield server


def test_an_evaluation_job_with_llm_judge_scores_every_row_once(batch: Batch) -> None:
    job = batch.started(body(), path=EVALUATE)
    batch.run(job["job_id"], times=2)  # every chunk delivered twice: the second makes no call
    done = scored(batch, job["job_id"], pushes=2)
    assert done["status"] == "completed", done
    evaluation = done["evaluation"]
    judged = next(m for m in evaluation["metrics"] if m["name"] == "llm_judge")
    assert judged["n"] == len(THINGS)
    assert 0.0 <= judged["ci_low"] <= judged["mean"] <= judged["ci_high"] <= 1.0
    assert judged["errors"] == 0
    assert judged["usage"]["calls"] == len(THINGS)
    assert judged["usage"]["model"] == "sim:default"
    assert judged["usage"]["simulated"] is True
    usage = done["usage"]
    assert (usage["calls"], usage["judge_calls"]) == (2 * len(THINGS), len(THINGS))  # task + judge
    assert usage["input_tokens"] >= judged["usage"]["input_tokens"] > 0
    results = batch.results(job["job_id"])
    assert all(r["judge"]["llm_judge"]["reason"].startswith("[simulated judge]") for r in results)
    scores = batch.api.call(
        "batch_scores", "GET", f"/api/v1/inference/batch/{job['job_id']}/scores", tenant=batch.tenant,
        role="viewer",
    ).get_json()  # fmt: skip
    per_row = next(m for m in scores["metrics"] if m["name"] == "llm_judge")
    assert per_row["rows"] == list(range(len(THINGS)))
    assert per_row["values"] == [r["judge"]["llm_judge"]["score"] for r in results]
    assert per_row["params"]["model"] == "sim:default"
    assert (per_row["judge_errors"], per_row["judge_error_count"]) == ([], 0)


def test_the_judge_model_defaults_to_the_deployments_and_is_pinned(batch: Batch) -> None:
    job = batch.started(body(metrics=[{"name": "llm_judge"}]), path=EVALUATE)
    batch.run(job["job_id"])
    done = scored(batch, job["job_id"])
    assert done["evaluation"]["metrics"][0]["usage"]["model"] == "sim:default"


def test_an_unknown_judge_model_or_bad_params_are_refused_before_anything_runs(batch: Batch) -> None:
    unknown = batch.create(
        body(metrics=[{"name": "llm_judge", "params": {"model": "nope:x"}}]), path=EVALUATE
    )
    assert unknown.status_code == 400
    assert unknown.get_json()["code"] == "unknown_model"
    scale = batch.create(body(metrics=[{"name": "llm_judge", "params": {"scale": "5-1"}}]), path=EVALUATE)
    assert scale.status_code == 400
    assert scale.get_json()["code"] == "invalid_metric_params"


def test_a_judge_error_on_one_row_is_recorded_and_the_job_finishes(batch: Batch, judge: FaultyOpenAI) -> None:
    rows = [{"inputs": {"thing": t}, "reference": ref} for t, ref in THINGS.items()]
    rows[1]["inputs"]["thing"] += f" {POISON}"  # the judge refuses this row (400)
    rows[3]["inputs"]["thing"] += f" {BUSY}"  # the judge is busy once (429): retried through the queue
    metrics = [{"name": "llm_judge", "params": {"model": "openai:gpt-judge"}}]
    job = batch.started(body(rows=rows, metrics=metrics), path=EVALUATE)
    statuses = batch.run(job["job_id"])
    assert 503 in statuses  # the busy judge sent its chunk back to the queue
    done = scored(batch, job["job_id"])
    assert done["status"] == "completed", done
    judged = done["evaluation"]["metrics"][0]
    assert (judged["n"], judged["errors"]) == (len(THINGS), 1)
    assert judged["mean"] == pytest.approx((len(THINGS) - 1) / len(THINGS))  # the refused row scores 0
    results = {r["row"]: r for r in batch.results(job["job_id"])}
    assert results[1]["status"] == "succeeded"  # the answer stands; only its grade is missing
    verdict = results[1]["judge"]["llm_judge"]
    assert verdict["score"] == 0.0
    assert verdict["error"]["code"] == "model_rejected_request"
    assert results[3]["judge"]["llm_judge"]["score"] == 1.0
    # Every judge request reached the judge; each row's verdict counted once (the 429 cost nothing).
    assert done["usage"]["judge_calls"] == len(THINGS)
    assert judged["usage"]["input_tokens"] == 30 * (len(THINGS) - 1)
    # The scores name the row whose grading failed, with the judge's error, beside its score of 0.
    scores = scores_of(batch, job["job_id"])
    assert scores["values"][1] == 0.0
    assert scores["judge_error_count"] == 1
    (error,) = scores["judge_errors"]
    assert (error["row"], error["code"]) == (1, "model_rejected_request")
    assert error["message"] == verdict["error"]["message"][:300]
    # A job scored before its scores document listed them: read from the results' verdicts instead.
    from google.cloud.firestore import DELETE_FIELD

    from promptopt.batch import paths

    stored = paths.job_ref(batch.tenant, job["job_id"]).collection("scores").document("llm_judge")
    stored.update({"judge_errors": DELETE_FIELD, "judge_error_count": DELETE_FIELD})
    assert scores_of(batch, job["job_id"]) == scores


def scores_of(batch: Batch, job_id: str, metric: str = "llm_judge") -> dict[str, Any]:
    r = batch.api.call(
        "batch_scores", "GET", f"/api/v1/inference/batch/{job_id}/scores", tenant=batch.tenant, role="viewer"
    )
    assert r.status_code == 200, r.get_data(as_text=True)
    return dict(next(m for m in r.get_json()["metrics"] if m["name"] == metric))


def test_embedding_similarity_is_graded_in_the_chunk_with_one_request_per_chunk(batch: Batch) -> None:
    metrics = [{"name": "embedding_similarity", "params": {"threshold": 0.5}}, {"name": "contains"}]
    job = batch.started(body(metrics=metrics), path=EVALUATE)
    batch.run(job["job_id"], times=2)
    done = scored(batch, job["job_id"], pushes=2)
    assert done["status"] == "completed", done
    embedded = next(m for m in done["evaluation"]["metrics"] if m["name"] == "embedding_similarity")
    assert (embedded["n"], embedded["errors"]) == (len(THINGS), 0)
    assert embedded["usage"]["calls"] == done["chunks"] == 3  # one request per chunk, however many rows
    assert embedded["usage"]["model"].startswith("sim:")
    assert done["usage"]["judge_calls"] == 3
    assert done["usage"]["calls"] == len(THINGS) + 3
    results = batch.results(job["job_id"])
    assert {r["judge"]["embedding_similarity"]["score"] for r in results} <= {0.0, 1.0}  # the threshold
    bad = batch.create(
        body(metrics=[{"name": "embedding_similarity", "params": {"threshold": 2}}]), path=EVALUATE
    )
    assert bad.status_code == 400
