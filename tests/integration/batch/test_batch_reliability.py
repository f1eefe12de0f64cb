"""At-least-once delivery, crashes, rate limits and poisoned rows: the job still ends right.

Each test plays Cloud Tasks by hand (deliveries, retries with X-CloudTasks-TaskRetryCount) and
counts the calls that reach a fake model server, so "no wasted calls" is measured, not assumed.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from promptopt.batch import runner
from promptopt.llm import registry
from promptopt.llm.types import Completion, CompletionRequest
from tests.fakes.batch_faults import BUSY, POISON, FaultyOpenAI, FaultyVertex
from tests.integration.batch.conftest import MAX_ATTEMPTS, Batch

pytestmark = pytest.mark.integration

PROMPT = {"system_prompt": "Answer briefly.", "output_prompt": "Q: {question}"}


def rows(n: int, marker: str = "", every: int = 0) -> list[dict[str, Any]]:
    """n distinct rows; every `every`-th one carries `marker` in its text."""
    out = []
    for i in range(n):
        tag = f" {marker}" if every and i % every == 0 else ""
        out.append({"inputs": {"question": f"row {i}{tag}"}, "reference": "42"})
    return out


@pytest.fixture
def openai(monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultyOpenAI]:
    with FaultyOpenAI(reply="42", input_tokens=10, output_tokens=2) as server:
        monkeypatch.setenv("PROMPTOPT_OPENAI_BASE_URL", server.base_url)
        yield server


@pytest.fixture
def vertex(monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultyVertex]:
    with FaultyVertex(reply="42", input_tokens=10, output_tokens=2) as server:
        monkeypatch.setenv("PROMPTOPT_GEMINI_BASE_URL", server.url)
        yield server


def completed_messages(batch: Batch, job_id: str) -> list[dict[str, Any]]:
    return [
        json.loads(base64.b64decode(m["message"]["data"]))
        for m in batch.infra.pull("batch-completed", job_id)
    ]


def test_every_task_delivered_twice_costs_no_extra_call(batch: Batch, openai: FaultyOpenAI) -> None:
    job = batch.started({**PROMPT, "rows": rows(30), "model": "openai:gpt-test", "chunk_size": 7})
    batch.run(job["job_id"], times=2)
    done = batch.get(job["job_id"])
    assert done["status"] == "completed"
    assert done["progress"]["succeeded"] == 30
    assert openai.count == 30  # the second delivery of each chunk made no call
    assert done["usage"] == {
        "calls": 30,
        "judge_calls": 0,
        "input_tokens": 300,
        "output_tokens": 60,
        "cost_usd": 0.0,
    }
    assert len(batch.results(job["job_id"])) == 30
    assert len(completed_messages(batch, job["job_id"])) == 1


def test_a_crash_after_half_a_chunk_resumes_where_it_stopped(
    batch: Batch, openai: FaultyOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = batch.started(
        {**PROMPT, "rows": rows(10), "model": "openai:gpt-test", "concurrency": 1, "chunk_size": 10}
    )
    (task,) = batch.infra.tasks(job["job_id"])
    real = registry.provider("openai:gpt-test")

    class DiesAfterFive:
        model = real.model

        def __init__(self) -> None:
            self.calls = 0

        def complete(self, request: CompletionRequest) -> Completion:
            self.calls += 1
            if self.calls > 5:
                raise SystemExit("the instance was killed")  # not an Exception: nothing classifies it
            return real.complete(request)

    dying, provider = DiesAfterFive(), registry.provider
    monkeypatch.setattr(registry, "provider", lambda model_id: dying)
    with pytest.raises(SystemExit):
        runner.run_chunk(runner.Delivery(batch.tenant, job["job_id"], 0))
    half = batch.get(job["job_id"])
    assert (half["status"], half["progress"]["succeeded"], half["progress"]["pending"]) == ("running", 5, 5)
    monkeypatch.setattr(registry, "provider", provider)  # a fresh instance: the model answers again

    assert batch.deliver(task, retry=1).status_code == 200
    done = batch.get(job["job_id"])
    assert (done["status"], done["progress"]["succeeded"]) == ("completed", 10)
    assert openai.count == 10  # five before the crash, five after: none twice
    assert sorted(r["row"] for r in batch.results(job["job_id"])) == list(range(10))


def test_injected_429s_are_retried_through_the_queue_with_few_extra_calls(
    batch: Batch, vertex: FaultyVertex
) -> None:
    # Every fifth row is rate-limited once; the SDK does not retry (attempts=1), so the chunk
    # fails, the "queue" redelivers it, and only the rows still pending are called again.
    job = batch.started({**PROMPT, "rows": rows(100, BUSY, every=5), "model": "gemini:gemini-2.5-flash"})
    statuses = batch.run(job["job_id"])
    assert 503 in statuses
    done = batch.get(job["job_id"])
    assert done["status"] == "completed"
    assert done["progress"] == {"total": 100, "succeeded": 100, "failed": 0, "pending": 0, "cache_hits": 0}
    assert vertex.count <= 120, f"{vertex.count / 100:.2f} model calls per row"
    assert done["usage"]["calls"] == 100  # billed calls; the 429s were not billed
    assert done["usage"]["cost_usd"] > 0


def test_a_poisoned_row_fails_alone_and_does_not_block_its_chunk(batch: Batch, openai: FaultyOpenAI) -> None:
    body = {**PROMPT, "rows": rows(8, POISON, every=100), "model": "openai:gpt-test"}  # row 0 is poisoned
    job = batch.started(body)
    assert batch.run(job["job_id"]) == [200]
    done = batch.get(job["job_id"])
    assert done["status"] == "completed"
    assert (done["progress"]["succeeded"], done["progress"]["failed"]) == (7, 1)
    (failed,) = batch.results(job["job_id"], status="failed")
    assert failed["row"] == 0
    assert failed["error"]["code"] == "model_rejected_request"
    assert "HTTP 400" in failed["error"]["message"]
    assert failed["output"] is None
    assert openai.count == 8  # a permanent error is not retried


def test_the_last_attempt_records_rows_still_busy_as_failed(batch: Batch, vertex: FaultyVertex) -> None:
    vertex.busy_times = 1000  # busy for good
    job = batch.started({**PROMPT, "rows": rows(4, BUSY, every=2), "model": "gemini:gemini-2.5-flash"})
    (task,) = batch.infra.tasks(job["job_id"])
    first = batch.deliver(task, retry=0)
    assert first.status_code == 503
    assert first.headers["Retry-After"]
    assert batch.get(job["job_id"])["progress"]["pending"] == 2
    assert (
        batch.deliver(task, retry=MAX_ATTEMPTS - 1).status_code == 200
    )  # no dead-letter queue: we record it
    done = batch.get(job["job_id"])
    assert done["status"] == "completed"
    assert (done["progress"]["succeeded"], done["progress"]["failed"]) == (2, 2)
    codes = {r["error"]["code"] for r in batch.results(job["job_id"], status="failed")}
    assert codes == {"model_busy"}


def test_cancel_mid_job_stops_the_remaining_chunks(batch: Batch, openai: FaultyOpenAI) -> None:
    job = batch.started({**PROMPT, "rows": rows(40), "model": "openai:gpt-test", "chunk_size": 10})
    tasks = sorted(batch.infra.tasks(job["job_id"]), key=lambda t: t.name.rsplit("-", 2)[1])  # chunk order
    batch.run(job["job_id"], tasks=tasks[:2])
    assert batch.cancel(job["job_id"]).status_code == 200
    batch.run(job["job_id"], tasks=tasks[2:], times=2)
    done = batch.get(job["job_id"])
    assert done["status"] == "cancelled"
    assert (done["progress"]["succeeded"], done["progress"]["pending"]) == (20, 20)
    assert openai.count == 20
    assert len(batch.results(job["job_id"])) == 20  # partial results kept
    assert completed_messages(batch, job["job_id"]) == []  # nothing to evaluate after a cancel


def test_a_budget_reached_mid_job_stops_it_with_its_partial_results(
    batch: Batch, openai: FaultyOpenAI
) -> None:
    body = {
        **PROMPT,
        "rows": rows(60),
        "model": "openai:gpt-test",
        "chunk_size": 10,
        "budget": {"max_calls": 25},
    }
    job = batch.started(body)
    batch.run(job["job_id"])
    done = batch.get(job["job_id"])
    assert done["status"] == "budget_exhausted"
    assert done["stop_reason"] == "budget:max_calls"
    assert openai.count == 25
    assert (done["usage"]["calls"], done["progress"]["succeeded"], done["progress"]["pending"]) == (
        25,
        25,
        35,
    )
    assert len(batch.results(job["job_id"])) == 25
    assert completed_messages(batch, job["job_id"]) == [
        {"tenant": batch.tenant, "job_id": job["job_id"], "status": "budget_exhausted"}
    ]


def test_chunks_delivered_at_once_never_pass_max_calls_together(batch: Batch, openai: FaultyOpenAI) -> None:
    from concurrent.futures import ThreadPoolExecutor

    body = {
        **PROMPT,
        "rows": rows(60),
        "model": "openai:gpt-test",
        "chunk_size": 5,
        "budget": {"max_calls": 12},
    }
    job = batch.started(body)
    tasks = batch.infra.tasks(job["job_id"])
    app = batch.api.client("batch_chunk").application

    def deliver(task: Any) -> int:  # as Cloud Tasks does: all twelve chunks in flight at once
        request = task.http_request
        headers = {
            **dict(request.headers),
            "X-CloudTasks-TaskName": task.name.rsplit("/", 1)[1],
            "X-CloudTasks-TaskRetryCount": "0",
        }
        return int(app.test_client().post("/", data=request.body, headers=headers).status_code)

    with ThreadPoolExecutor(max_workers=len(tasks)) as pool:
        statuses = list(pool.map(deliver, tasks))
    assert statuses == [200] * len(tasks)
    done = batch.get(job["job_id"])
    assert done["status"] == "budget_exhausted"
    assert openai.count <= 12
    assert done["usage"]["calls"] == openai.count == done["progress"]["succeeded"]


def test_concurrent_chunks_asking_the_same_calls_make_them_once(batch: Batch, openai: FaultyOpenAI) -> None:
    from concurrent.futures import ThreadPoolExecutor

    openai.latency_s = 0.5  # long enough for both chunks to ask while the other's calls are in flight
    body = {**PROMPT, "rows": rows(8), "model": "openai:gpt-test", "chunk_size": 8}
    first, second = batch.started(body), batch.started({**body, "concurrency": 4})  # same calls, two jobs
    tasks = batch.infra.tasks(first["job_id"]) + batch.infra.tasks(second["job_id"])
    app = batch.api.client("batch_chunk").application

    def deliver(task: Any) -> int:
        request = task.http_request
        headers = {**dict(request.headers), "X-CloudTasks-TaskName": task.name.rsplit("/", 1)[1]}
        return int(app.test_client().post("/", data=request.body, headers=headers).status_code)

    with ThreadPoolExecutor(max_workers=2) as pool:
        assert list(pool.map(deliver, tasks)) == [200, 200]
    done = [batch.get(job["job_id"]) for job in (first, second)]
    assert openai.count == 8  # each distinct call once
    assert sum(d["usage"]["calls"] for d in done) == 8
    assert sum(d["progress"]["cache_hits"] for d in done) == 8
    assert all(d["progress"]["succeeded"] == 8 for d in done)
    results = [r for job in (first, second) for r in batch.results(job["job_id"])]
    assert len(results) == 16
    assert {r["output"] for r in results} == {"42"}


def test_a_token_budget_stops_the_job_at_chunk_granularity(batch: Batch, openai: FaultyOpenAI) -> None:
    body = {
        **PROMPT,
        "rows": rows(40),
        "model": "openai:gpt-test",
        "chunk_size": 10,
        "budget": {"max_tokens": 150},
    }
    job = batch.started(body)
    batch.run(job["job_id"])
    done = batch.get(job["job_id"])
    assert done["status"] == "budget_exhausted"
    assert done["stop_reason"] == "budget:max_tokens"
    assert openai.count == 20  # 12 tokens a call: the second chunk starts under 150 tokens, the third not


def test_batch_completed_delivered_three_times_evaluates_once(batch: Batch) -> None:
    body = {
        "system_prompt": "Let's think step by step. End with #### and the number.",
        "output_prompt": "Question: {question}",
        "rows": [
            {
                "inputs": {"question": f"Tom has {i} apples and buys {i + 2} more. How many?"},
                "reference": str(2 * i + 2),
            }
            for i in range(12)
        ],
        "metrics": [{"name": "numeric"}, {"name": "exact_match"}],
        "chunk_size": 5,
    }
    job = batch.started(body, path="/api/v1/inference/evaluate")
    assert (job["kind"], job["evaluation"]["status"]) == ("evaluation", "pending")
    batch.run(job["job_id"])
    assert batch.get(job["job_id"])["status"] == "evaluating"
    (message,) = batch.infra.pull("batch-completed", job["job_id"])
    assert [batch.push(message).status_code for _ in range(3)] == [200, 200, 200]

    done = batch.get(job["job_id"])
    assert done["status"] == "completed"
    evaluation = done["evaluation"]
    assert (evaluation["status"], evaluation["n"], evaluation["failed_rows"]) == ("completed", 12, 0)
    numeric = next(m for m in evaluation["metrics"] if m["name"] == "numeric")
    assert numeric["mean"] == 1.0
    assert numeric["n"] == 12
    assert 0 < numeric["ci_low"] < 1.0 == numeric["ci_high"]
    exact = next(m for m in evaluation["metrics"] if m["name"] == "exact_match")
    assert exact["mean"] == 0.0  # the answers carry their reasoning
    evaluated = batch.infra.pull("evaluation-completed", job["job_id"])
    assert len(evaluated) == 1  # one evaluation, however many deliveries


def test_failed_rows_score_zero_in_an_evaluation(batch: Batch, openai: FaultyOpenAI) -> None:
    body = {
        **PROMPT,
        "rows": rows(10, POISON, every=5),
        "model": "openai:gpt-test",
        "metrics": [{"name": "contains"}],
    }
    job = batch.started(body, path="/api/v1/inference/evaluate")
    batch.run(job["job_id"])
    (message,) = batch.infra.pull("batch-completed", job["job_id"])
    assert batch.push(message).status_code == 200
    evaluation = batch.get(job["job_id"])["evaluation"]
    assert (evaluation["n"], evaluation["failed_rows"]) == (10, 2)
    assert evaluation["metrics"][0]["mean"] == pytest.approx(0.8)
