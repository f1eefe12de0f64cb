"""The hand-encoded Cloud Tasks requests are byte for byte what google-cloud-tasks would send."""

from __future__ import annotations

import pytest
from google.cloud import tasks_v2

from promptopt.tasks_grpc import HttpTask, encode_create, encode_get_queue

QUEUE = "projects/p/locations/europe-west1/queues/inference"


def _library(task: HttpTask) -> bytes:
    request: dict[str, object] = {
        "url": task.url,
        "http_method": tasks_v2.HttpMethod.POST,
        "headers": task.headers,
        "body": task.body,
    }
    if task.oidc_account:
        request["oidc_token"] = {"service_account_email": task.oidc_account, "audience": task.url}
    message = tasks_v2.CreateTaskRequest(
        parent=QUEUE,
        task={"name": task.name, "http_request": request, "dispatch_deadline": {"seconds": task.deadline_s}},
    )
    return tasks_v2.CreateTaskRequest.serialize(message)


@pytest.mark.parametrize(
    "task",
    [
        HttpTask(
            f"{QUEUE}/tasks/a-0",
            "https://fn.run.app/",
            b'{"chunk":0}',
            {"Content-Type": "application/json"},
            600,
        ),
        HttpTask(
            f"{QUEUE}/tasks/é-" + "x" * 300,  # non-ASCII, and lengths past one varint byte
            "https://europe-west1-p.cloudfunctions.net/promptopt-batch-chunk",
            b"{" + b'"rows": "' + b"\xe2\x82\xac" * 70_000 + b'"}',
            {"Content-Type": "application/json"},
            1800,
            oidc_account="tasks-invoker@p.iam.gserviceaccount.com",
        ),
        HttpTask(f"{QUEUE}/tasks/t", "http://127.0.0.1:8080/", b"", {}, 0),  # every default left out
    ],
    ids=["plain", "oidc-long", "defaults"],
)
def test_create_task_request_matches_the_library(task: HttpTask) -> None:
    assert encode_create(QUEUE, task) == _library(task)


def test_a_wrong_field_would_show() -> None:
    task = HttpTask(f"{QUEUE}/tasks/t", "https://x/", b"{}", {"Content-Type": "application/json"}, 600)
    assert encode_create(QUEUE, task) != _library(HttpTask(task.name, task.url, task.body, task.headers, 601))
    decoded = tasks_v2.CreateTaskRequest.deserialize(encode_create(QUEUE, task))
    assert decoded.task.http_request.http_method == tasks_v2.HttpMethod.POST
    assert decoded.task.dispatch_deadline.seconds == 600  # type: ignore[attr-defined]


def test_get_queue_request_matches_the_library() -> None:
    assert encode_get_queue(QUEUE) == tasks_v2.GetQueueRequest.serialize(tasks_v2.GetQueueRequest(name=QUEUE))
