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

from promptopt import clients, config
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
