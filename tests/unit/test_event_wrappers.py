"""serve_task and serve_event: how a delivery is parsed, and when it is retried or acknowledged."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import flask
import pytest
from cloudevents.http import CloudEvent
from pydantic import BaseModel

from promptopt.batch.delivery import ChunkTask
from promptopt.http import Delivery, PermanentFailure, TaskAttempt, TaskOutcome, serve_event, serve_task

ROOT = Path(__file__).resolve().parents[2]
CHUNK_MAIN = str(ROOT / "functions" / "batch_chunk" / "main.py")
SCORE_MAIN = str(ROOT / "functions" / "batch_score" / "main.py")
INGEST_MAIN = str(ROOT / "functions" / "datasets_ingest" / "main.py")
app = flask.Flask(__name__)


def _task(body: Any, headers: dict[str, str] | None = None, method: str = "POST") -> tuple[int, Any, list]:
    seen: list[tuple[ChunkTask, TaskAttempt]] = []

    def handler(task: ChunkTask, attempt: TaskAttempt) -> TaskOutcome:
        seen.append((task, attempt))
        return (
            TaskOutcome({"status": "done"})
            if task.chunk != 9
            else TaskOutcome({}, retry=True, retry_after_s=10)
        )

    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    with app.test_request_context("/", method=method, data=data, headers=headers or {}):
        response = serve_task(flask.request, handler, model=ChunkTask, source=CHUNK_MAIN)
    return response.status_code, response, seen


def test_a_task_names_its_chunk_and_the_headers_its_attempt() -> None:
    status, _, seen = _task(
        {"tenant": "t1", "job_id": "bj_1", "chunk": 4},
        {
            "X-CloudTasks-TaskRetryCount": "3",
            "X-CloudTasks-TaskExecutionCount": "2",
            "X-CloudTasks-TaskName": "n",
        },
    )
    assert status == 200
    task, attempt = seen[0]
    assert (task.tenant, task.job_id, task.chunk) == ("t1", "bj_1", 4)
    assert attempt == TaskAttempt(name="n", retry_count=3, execution_count=2)


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"not json", {}),
        ([1, 2], {}),
        ({"tenant": "t1", "chunk": 0}, {}),
        ({"tenant": "t1", "job_id": "bj_1", "chunk": -1}, {}),
        ({"tenant": "t1", "job_id": "bj_1", "chunk": True}, {}),
        ({"tenant": "t1", "job_id": "bj_1", "chunk": "1"}, {}),
        ({"tenant": "t1", "job_id": "bj_1", "chunk": 0}, {"X-CloudTasks-TaskRetryCount": "x"}),
    ],
)
def test_anything_else_is_a_bad_task_that_is_not_retried(body: Any, headers: dict[str, str]) -> None:
    status, _, seen = _task(body, headers)
    assert (status, seen) == (400, [])


def test_pending_work_asks_the_queue_to_retry_later_and_probes_are_not_tasks() -> None:
    status, response, _ = _task({"tenant": "t1", "job_id": "bj_1", "chunk": 9})
    assert (status, response.headers["Retry-After"]) == (503, "10")
    assert _task({}, method="GET")[0] == 405


class Message(BaseModel):
    job_id: str


def _pubsub_event(payload: Any, *, age: timedelta = timedelta(0), raw: bytes | None = None) -> CloudEvent:
    data = raw if raw is not None else json.dumps(payload).encode()
    return CloudEvent(
        {
            "id": "ev-1",
            "type": "google.cloud.pubsub.topic.v1.messagePublished",
            "source": "//pubsub.googleapis.com/projects/p/topics/batch-completed",
            "time": (datetime.now(UTC) - age).isoformat(),
        },
        {"message": {"data": base64.b64encode(data).decode(), "messageId": "1"}},
    )


def test_a_pubsub_message_reaches_the_handler_parsed() -> None:
    seen: list[tuple[Message, Delivery]] = []
    serve_event(
        _pubsub_event({"job_id": "bj_1"}), lambda m, d: seen.append((m, d)), model=Message, source=SCORE_MAIN
    )
    assert seen[0][0] == Message(job_id="bj_1")
    assert seen[0][1].id == "ev-1"


@pytest.mark.parametrize("raw", [b"not json", b"[1]", json.dumps({"other": 1}).encode()])
def test_a_malformed_message_is_acknowledged_without_work(raw: bytes) -> None:
    seen: list[Any] = []
    serve_event(_pubsub_event(None, raw=raw), lambda m, d: seen.append(m), model=Message, source=SCORE_MAIN)
    assert seen == []  # returned normally: acknowledged


def test_a_transient_failure_propagates_so_the_message_is_redelivered() -> None:
    def handler(_m: Message, _d: Delivery) -> None:
        raise ConnectionError("firestore unavailable")

    with pytest.raises(ConnectionError):
        serve_event(_pubsub_event({"job_id": "bj_1"}), handler, model=Message, source=SCORE_MAIN)


def test_a_permanent_failure_is_acknowledged() -> None:
    def handler(_m: Message, _d: Delivery) -> None:
        raise PermanentFailure("the job's metrics cannot be computed")

    serve_event(_pubsub_event({"job_id": "bj_1"}), handler, model=Message, source=SCORE_MAIN)


def test_an_expired_event_records_its_end_and_is_acknowledged_without_work() -> None:
    seen: list[Any] = []
    expired: list[Message] = []
    serve_event(
        _pubsub_event({"job_id": "bj_1"}, age=timedelta(days=2)),
        lambda m, d: seen.append(m),
        model=Message,
        source=SCORE_MAIN,
        on_expired=lambda m, d: expired.append(m),
    )
    assert (seen, expired) == ([], [Message(job_id="bj_1")])


def test_a_storage_event_is_parsed_from_the_object_resource() -> None:
    from promptopt.datasets.ingest import FinalizedObject

    seen: list[FinalizedObject] = []
    event = CloudEvent(
        {"id": "e", "type": "google.cloud.storage.object.v1.finalized", "source": "//storage/b"},
        {"bucket": "b", "name": "t/x.csv", "generation": 17, "size": "12", "metadata": {"k": 1}},
    )
    serve_event(event, lambda o, d: seen.append(o), model=FinalizedObject, source=INGEST_MAIN)
    assert seen == [
        FinalizedObject(bucket="b", name="t/x.csv", generation="17", size=12, metadata={"k": "1"})
    ]


def _push(payload: Any, attempt: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "message": {"data": base64.b64encode(json.dumps(payload).encode()).decode(), "messageId": "9"},
        "subscription": "projects/p/subscriptions/s",
    }
    if attempt is not None:
        body["deliveryAttempt"] = attempt
    return body


@pytest.mark.parametrize(("attempt", "gives_up"), [(None, False), (3, False), (10, True), (11, True)])
def test_the_last_delivery_records_the_outcome_instead_of_failing_again(
    attempt: int | None, gives_up: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMPTOPT_MAX_DELIVERY_ATTEMPTS", "10")
    recorded: list[tuple[Message, int | None]] = []

    def handler(_m: Message, _d: Delivery) -> None:
        raise ConnectionError("still down")

    def give_up(m: Message, d: Delivery, error: Exception) -> None:
        assert isinstance(error, ConnectionError)
        recorded.append((m, d.attempt))

    with app.test_request_context("/", method="POST", json=_push({"job_id": "bj_1"}, attempt)):
        event = _pubsub_event({"job_id": "bj_1"})
        if gives_up:
            serve_event(event, handler, model=Message, source=SCORE_MAIN, on_give_up=give_up)
            assert recorded == [(Message(job_id="bj_1"), attempt)]
        else:
            with pytest.raises(ConnectionError):
                serve_event(event, handler, model=Message, source=SCORE_MAIN, on_give_up=give_up)
            assert recorded == []
