"""Every state change that Pub/Sub must announce survives Pub/Sub being down (the outbox), and a
job can be cancelled in any state that is not final, evaluating included.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from promptopt import clients, outbox
from promptopt.batch import evaluation_step, events
from tests.integration.batch.conftest import Batch

pytestmark = pytest.mark.integration

UNREACHABLE = "127.0.0.1:9"  # nothing listens on the discard port: Pub/Sub is "down"


def evaluation_body(n: int = 12) -> dict[str, Any]:
    return {
        "system_prompt": "Let's think step by step. End with #### and the number.",
        "output_prompt": "Question: {question}",
        "rows": [
            {"inputs": {"question": f"Tom has {i} apples and buys 2 more?"}, "reference": str(i + 2)}
            for i in range(n)
        ],
        "metrics": [{"name": "numeric"}],
        "chunk_size": 5,
    }


@pytest.fixture
def pubsub_down(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """`down()` points the publisher at a closed port; `up()` (or the end of the test) restores it."""
    real = os.environ["PUBSUB_EMULATOR_HOST"]
    monkeypatch.setattr(outbox, "INLINE_TIMEOUT_S", 1.0)

    class Switch:
        def down(self) -> None:
            os.environ["PUBSUB_EMULATOR_HOST"] = UNREACHABLE
            clients.reset()

        def up(self) -> None:
            os.environ["PUBSUB_EMULATOR_HOST"] = real
            clients.reset()

    switch = Switch()
    yield switch
    switch.up()


def later() -> datetime:
    return datetime.now(UTC) + outbox.GRACE + timedelta(minutes=30)


def test_batch_completed_survives_pubsub_down_and_is_redriven(batch: Batch, pubsub_down: Any) -> None:
    job = batch.started(evaluation_body(), path="/api/v1/inference/evaluate")
    job_id = job["job_id"]
    tasks = batch.infra.tasks(job_id)
    batch.run(job_id, tasks=tasks[:-1])
    pubsub_down.down()
    batch.run(job_id, tasks=tasks[-1:])  # the last chunk finishes while Pub/Sub is unavailable
    assert batch.get(job_id)["status"] == "evaluating"
    message = events.completed(batch.tenant, job_id, "evaluating")
    assert outbox.pending(message)  # recorded with the state change, not lost
    assert outbox.redrive_outbox(now=later(), timeout_s=1.0).failed >= 1  # still down: still due
    assert outbox.pending(message)

    pubsub_down.up()
    outbox.redrive_outbox(now=later(), limit=500)
    assert not outbox.pending(message)
    (envelope,) = batch.infra.pull("batch-completed", job_id)
    assert batch.push(envelope).status_code == 200
    done = batch.get(job_id)
    assert (done["status"], done["evaluation"]["status"]) == ("completed", "completed")
    assert len(batch.infra.pull("evaluation-completed", job_id)) == 1


def test_evaluation_completed_survives_pubsub_down(batch: Batch, pubsub_down: Any) -> None:
    job = batch.started(evaluation_body(4), path="/api/v1/inference/evaluate")
    job_id = job["job_id"]
    batch.run(job_id)
    (envelope,) = batch.infra.pull("batch-completed", job_id)
    pubsub_down.down()
    assert batch.push(envelope).status_code == 200
    assert batch.get(job_id)["status"] == "completed"
    message = events.evaluated(batch.tenant, job_id, "completed")
    assert outbox.pending(message)
    pubsub_down.up()
    outbox.redrive_outbox(now=later(), limit=500)
    assert not outbox.pending(message)
    assert len(batch.infra.pull("evaluation-completed", job_id)) == 1


def test_an_evaluating_job_can_be_cancelled_and_is_never_scored(batch: Batch) -> None:
    job = batch.started(evaluation_body(), path="/api/v1/inference/evaluate")
    job_id = job["job_id"]
    batch.run(job_id)
    assert batch.get(job_id)["status"] == "evaluating"
    cancelled = batch.cancel(job_id)
    assert cancelled.status_code == 200, cancelled.get_data(as_text=True)
    body = cancelled.get_json()
    assert (body["status"], body["evaluation"]["status"]) == ("cancelled", "not_run")
    (envelope,) = batch.infra.pull("batch-completed", job_id)
    assert batch.push(envelope).status_code == 200
    after = batch.get(job_id)
    assert (after["status"], after["evaluation"]["status"]) == ("cancelled", "not_run")
    assert after["evaluation"]["metrics"] == []


def test_a_cancel_while_scoring_wins_over_the_evaluation(
    batch: Batch, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = batch.started(evaluation_body(), path="/api/v1/inference/evaluate")
    job_id = job["job_id"]
    batch.run(job_id)
    score = evaluation_step._score

    def cancel_then_score(ref: Any, data: dict[str, Any], rows: Any = None) -> Any:
        assert batch.cancel(job_id).status_code == 200  # the user cancels while the step scores
        return score(ref, data, rows)

    monkeypatch.setattr(evaluation_step, "_score", cancel_then_score)
    (envelope,) = batch.infra.pull("batch-completed", job_id)
    assert batch.push(envelope).status_code == 200
    after = batch.get(job_id)
    assert (after["status"], after["evaluation"]["status"]) == ("cancelled", "not_run")
    assert batch.infra.pull("evaluation-completed", job_id) == []


def test_a_cancelled_evaluation_job_says_its_evaluation_did_not_run(batch: Batch) -> None:
    job = batch.started(evaluation_body(), path="/api/v1/inference/evaluate")
    body = batch.cancel(job["job_id"]).get_json()
    assert (body["status"], body["evaluation"]["status"]) == ("cancelled", "not_run")
    assert batch.get(job["job_id"])["evaluation"]["status"] == "not_run"
