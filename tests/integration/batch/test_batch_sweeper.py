"""`sweep_stuck`: a job whose step was lost for good is driven again, or failed with a reason."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from promptopt.batch import completion, paths, sweeper
from promptopt.batch.state import now
from tests.integration.batch.conftest import Batch

pytestmark = pytest.mark.integration

LEASE = timedelta(minutes=15)
PROMPT = {"system_prompt": "Answer briefly.", "output_prompt": "Q: {question}"}


def body(n: int = 12, **extra: Any) -> dict[str, Any]:
    rows = [{"inputs": {"question": f"what is {i} plus 2?"}, "reference": str(i + 2)} for i in range(n)]
    return {**PROMPT, "rows": rows, "chunk_size": 5, **extra}


def sweeps(batch: Batch, count: int, **kw: Any) -> list[sweeper.SweepReport]:
    """`count` sweeps, each a lease after the one before (the first only observes)."""
    start = now()
    return [
        sweeper.sweep_stuck(
            now=start + i * (LEASE + timedelta(seconds=1)), lease=LEASE, tenant=batch.tenant, **kw
        )
        for i in range(count)
    ]


def test_a_chunk_task_lost_for_good_is_enqueued_again(batch: Batch) -> None:
    job = batch.started(body())
    job_id = job["job_id"]
    first = batch.infra.tasks(job_id)
    batch.run(job_id, tasks=first[:-1])  # the last chunk's task died on its last attempt
    observed, redriven = sweeps(batch, 2)
    assert observed.redriven == []
    assert redriven.redriven == [job_id]
    again = [t for t in batch.infra.tasks(job_id) if t.name not in {f.name for f in first}]
    assert len(again) == 1  # only the chunk that is not done
    batch.run(job_id, tasks=again)
    assert batch.get(job_id)["status"] == "completed"


def test_a_job_that_never_progresses_fails_with_a_reason(batch: Batch) -> None:
    job = batch.started(body())
    job_id = job["job_id"]
    reports = sweeps(batch, 4, max_tries=2)  # observe, re-drive, re-drive, fail
    assert [r.redriven for r in reports] == [[], [job_id], [job_id], []]
    assert reports[-1].failed == [job_id]
    failed = batch.get(job_id)
    assert (failed["status"], failed["error"]["code"]) == ("failed", "stuck")
    assert failed["finished_at"] is not None


def test_progress_resets_the_clock(batch: Batch) -> None:
    job = batch.started(body())
    job_id = job["job_id"]
    tasks = batch.infra.tasks(job_id)
    start = now()
    assert sweeper.sweep_stuck(now=start, lease=LEASE, tenant=batch.tenant).redriven == []
    batch.run(job_id, tasks=tasks[:1])  # a chunk finished: progress
    later = start + LEASE + timedelta(seconds=1)
    assert sweeper.sweep_stuck(now=later, lease=LEASE, tenant=batch.tenant).redriven == []


def test_all_chunks_done_but_the_completion_step_lost_is_taken(
    batch: Batch, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = batch.started(body(metrics=[{"name": "numeric"}]), path="/api/v1/inference/evaluate")
    job_id = job["job_id"]
    real = completion.maybe_complete
    monkeypatch.setattr(completion, "maybe_complete", lambda **kw: False)  # it dies every time
    batch.run(job_id)
    monkeypatch.setattr(completion, "maybe_complete", real)
    assert batch.get(job_id)["status"] == "running"
    sweeps(batch, 2)
    assert batch.get(job_id)["status"] == "evaluating"
    (message,) = batch.infra.pull("batch-completed", job_id)
    assert batch.push(message).status_code == 200
    assert batch.get(job_id)["status"] == "completed"


def test_an_evaluation_whose_message_was_lost_is_published_again(batch: Batch) -> None:
    job = batch.started(body(metrics=[{"name": "numeric"}]), path="/api/v1/inference/evaluate")
    job_id = job["job_id"]
    batch.run(job_id)
    assert len(batch.infra.pull("batch-completed", job_id)) == 1  # acknowledged, then lost
    sweeps(batch, 2)
    messages = batch.infra.pull("batch-completed", job_id)
    assert len(messages) == 2
    assert batch.push(messages[-1]).status_code == 200
    done = batch.get(job_id)
    assert (done["status"], done["evaluation"]["status"]) == ("completed", "completed")


def test_an_evaluation_that_never_runs_fails_the_job(batch: Batch) -> None:
    job = batch.started(body(metrics=[{"name": "numeric"}]), path="/api/v1/inference/evaluate")
    job_id = job["job_id"]
    batch.run(job_id)
    sweeps(batch, 3, max_tries=1)  # observe, re-publish, fail (nobody consumes the messages)
    failed = batch.get(job_id)
    assert (failed["status"], failed["evaluation"]["status"]) == ("failed", "failed")
    assert failed["evaluation"]["error"]["code"] == "stuck"
    job_ref = paths.job_ref(batch.tenant, job_id)
    assert (paths.marker_ref(job_ref, sweeper.MARKER).get().to_dict() or {})["fingerprint"] == "failed"
