"""The real path: the Tasks emulator dispatches the job's tasks over HTTP to the chunk function.

The emulator (started through promptopt.local.tasks_emulator) follows each queue's retry policy
and keeps task names taken as Cloud Tasks does; this proves the wiring (URL, body, headers) and
the de-duplication the chunks' task names rely on, not the queue's rate limits.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server

from promptopt import clients, config, tasks_grpc
from promptopt.tasks_grpc import HttpTask, create_task
from tests.integration.batch.conftest import LOCATION, Batch, BatchInfra
from tests.support import load_app

pytestmark = pytest.mark.integration


@pytest.fixture
def chunk_server() -> Iterator[str]:
    server = make_server("127.0.0.1", 0, load_app("batch_chunk"), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}/"
    finally:
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture
def live_queue(batch_infra: BatchInfra, chunk_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    queue = f"projects/{batch_infra.project}/locations/{LOCATION}/queues/batch-live-{uuid.uuid4().hex[:8]}"
    tasks = clients.tasks_client()
    tasks.create_queue(parent=queue.rsplit("/queues/", 1)[0], queue={"name": queue})
    monkeypatch.setenv("PROMPTOPT_QUEUES", json.dumps({"inference": queue}))
    monkeypatch.setenv("PROMPTOPT_FUNCTION_URLS", json.dumps({"batch_chunk": chunk_server}))
    config.reset()
    yield queue
    tasks.pause_queue(name=queue)  # the emulator cannot delete queues' tasks; stop it dispatching


def test_the_emulator_delivers_every_chunk_and_the_job_completes(batch: Batch, live_queue: str) -> None:
    rows = [{"inputs": {"question": f"What is {i} + 1?"}} for i in range(12)]
    job = batch.started({"output_prompt": "Q: {question}", "rows": rows, "chunk_size": 4})
    deadline = time.monotonic() + 60
    while (current := batch.get(job["job_id"]))["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert current["status"] == "completed", current
    assert current["progress"]["succeeded"] == 12
    assert current["usage"]["calls"] == 12
    # The job turns completed just before its last chunk publishes: wait for the message.
    while not batch.infra.pull("batch-completed", job["job_id"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(batch.infra.pull("batch-completed", job["job_id"])) == 1


def test_a_hand_encoded_task_reads_back_as_sent(batch_infra: BatchInfra) -> None:
    """promptopt.tasks_grpc's CreateTask, read back through the generated client."""
    from google.cloud import tasks_v2

    name = f"{batch_infra.queue}/tasks/grpc-{uuid.uuid4().hex[:8]}"
    body = json.dumps({"tenant": "t", "job_id": "bj_x", "chunk": 0, "text": "é" * 200}).encode()
    sent = HttpTask(name, "http://127.0.0.1:9/chunk", body, {"Content-Type": "application/json"}, 900)
    assert create_task(batch_infra.queue, sent) is True
    request = {"parent": batch_infra.queue, "response_view": tasks_v2.Task.View.FULL}
    found = clients.tasks_client().list_tasks(request=request)
    (task,) = [t for t in found if t.name == name]
    assert (task.http_request.url, task.http_request.body) == (sent.url, body)
    assert task.http_request.http_method == tasks_v2.HttpMethod.POST
    assert dict(task.http_request.headers)["Content-Type"] == "application/json"


def test_tasks_errors_arrive_as_the_library_raises_them(batch_infra: BatchInfra) -> None:
    from google.api_core import exceptions

    missing = f"projects/{batch_infra.project}/locations/{LOCATION}/queues/absent-{uuid.uuid4().hex[:8]}"
    # NOT_FOUND, as Cloud Tasks answers (the bare emulator answered UNKNOWN), and the same
    # exception as the generated client raises.
    with pytest.raises(exceptions.NotFound) as library:
        clients.tasks_client().get_queue(name=missing, timeout=5)
    with pytest.raises(exceptions.NotFound) as ours:
        tasks_grpc.get_queue(missing, timeout_s=5)
    assert type(ours.value) is type(library.value)
    assert ours.value.code == library.value.code
    task = HttpTask(f"{missing}/tasks/t-1", "http://127.0.0.1:9/chunk", b"{}", {}, 900)
    with pytest.raises(exceptions.NotFound):
        create_task(missing, task)
    tasks_grpc.get_queue(batch_infra.queue, timeout_s=5)  # an existing queue reads fine


def test_a_task_name_stays_taken_after_its_task_ran(batch_infra: BatchInfra) -> None:
    """As in Cloud Tasks: a second create of a name answers AlreadyExists (create_task: False)
    while the task waits, and still after it ran; the chunks' task epochs exist for that reason.
    The bare emulator queued the duplicate."""
    from werkzeug.wrappers import Request, Response

    delivered: list[bytes] = []

    @Request.application
    def target(request: Request) -> Response:
        delivered.append(request.get_data())
        return Response("ok")

    server = make_server("127.0.0.1", 0, target, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    tasks = clients.tasks_client()
    queue = f"projects/{batch_infra.project}/locations/{LOCATION}/queues/names-{uuid.uuid4().hex[:8]}"
    tasks.create_queue(parent=queue.rsplit("/queues/", 1)[0], queue={"name": queue})
    try:
        name = f"{queue}/tasks/once"
        task = HttpTask(name, f"http://127.0.0.1:{server.port}/", b"first", {}, 900)
        assert create_task(queue, task) is True
        assert create_task(queue, HttpTask(name, task.url, b"second", {}, 900)) is False
        deadline = time.monotonic() + 30
        while name in [t.name for t in tasks.list_tasks(parent=queue)]:
            assert time.monotonic() < deadline, "the task was never dispatched"
            time.sleep(0.1)
        assert create_task(queue, HttpTask(name, task.url, b"third", {}, 900)) is False  # ran: still taken
        assert create_task(queue, HttpTask(f"{name}-2", task.url, b"fourth", {}, 900)) is True
        while len(delivered) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.3)  # a duplicate would have followed by now
        assert delivered == [b"first", b"fourth"]
    finally:
        tasks.pause_queue(name=queue)
        server.shutdown()
