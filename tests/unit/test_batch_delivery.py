"""What a Cloud Tasks request to the chunk function must look like."""

from __future__ import annotations

import json
from typing import Any

import flask
import pytest

from promptopt.batch import delivery
from promptopt.batch.runner import ChunkReport

app = flask.Flask(__name__)


def _parse(body: Any, headers: dict[str, str] | None = None) -> delivery.Delivery:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    with app.test_request_context("/", method="POST", data=data, headers=headers or {}):
        return delivery.parse(flask.request)


def test_a_task_names_its_chunk_and_the_headers_its_attempt() -> None:
    found = _parse(
        {"tenant": "t1", "job_id": "bj_1", "chunk": 4},
        {"X-CloudTasks-TaskRetryCount": "3", "X-CloudTasks-TaskExecutionCount": "2"},
    )
    assert found == delivery.Delivery("t1", "bj_1", 4, retry_count=3, execution_count=2)
    assert _parse({"tenant": "t1", "job_id": "bj_1", "chunk": 0}).retry_count == 0


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"not json", {}),
        ([1, 2], {}),
        ({"tenant": "t1", "chunk": 0}, {}),
        ({"tenant": "t1", "job_id": "bj_1", "chunk": -1}, {}),
        ({"tenant": "t1", "job_id": "bj_1", "chunk": True}, {}),
        ({"tenant": "t1", "job_id": "bj_1", "chunk": 0}, {"X-CloudTasks-TaskRetryCount": "x"}),
    ],
)
def test_anything_else_is_a_bad_task(body: Any, headers: dict[str, str]) -> None:
    with pytest.raises(delivery.BadTask):
        _parse(body, headers)


def test_replies_tell_the_queue_to_retry_only_pending_work() -> None:
    with app.app_context():
        done = delivery._reply(ChunkReport("done", calls=3))
        retry = delivery._reply(ChunkReport("retry", pending=2, retry_after_s=10))
    assert done.status_code == 200
    assert json.loads(done.get_data())["calls"] == 3
    assert (retry.status_code, retry.headers["Retry-After"]) == (503, "10")
