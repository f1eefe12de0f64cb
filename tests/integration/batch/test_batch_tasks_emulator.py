"""The real path: the Tasks emulator dispatches the job's tasks over HTTP to the chunk function.

The emulator sends one task at a time per queue, retries failures at once and keeps no names,
so this proves the wiring (URL, body, headers), not the queue's rate limits or de-duplication.
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
    # Cloud Tasks answers NOT_FOUND; the emulator UNKNOWN. Either way, the same exception as the client's.
    with pytest.raises(exceptions.GoogleAPICallError) as library:
        clients.tasks_client().get_queue(name=missing, timeout=5)
    with pytest.raises(exceptions.GoogleAPICallError) as ours:
        tasks_grpc.get_queue(missing, timeout_s=5)
    assert type(ours.value) is type(library.value)
    assert ours.value.code == library.value.code
    tasks_grpc.get_queue(batch_infra.queue, timeout_s=5)  # an existing queue reads fine
