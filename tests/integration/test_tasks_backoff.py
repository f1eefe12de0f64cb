"""The local Tasks emulator backs failed tasks off per the queue's retry config and gives them up,
and dispatches up to the queue's max_concurrent_dispatches at once, as Cloud Tasks does.

gcloud-tasks-emulator alone re-dispatches a failed task ten times a second (193 deliveries of one
task to a 503 target in 20 s; 4,217 for 100 tasks), logging a line or two each time. Only the Tasks
emulator runs here, with short backoffs so the test takes seconds; the bounds are loose on purpose.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.cloud import tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

from promptopt.local.emulators import Emulators
from promptopt.local.task_retry import RetryConfig

pytestmark = pytest.mark.integration

PROJECT = "promptopt-backoff"
GIVE_UP = RetryConfig(
    max_attempts=3, max_retry_duration_s=0, min_backoff_s=0.3, max_backoff_s=1, max_doublings=1
)
BACK_OFF = RetryConfig(
    max_attempts=-1, max_retry_duration_s=0, min_backoff_s=1, max_backoff_s=1, max_doublings=0
)


class FailingTarget:
    """An HTTP target answering `status` and recording each delivery's task name and retry count.

    Each delivery takes `delay_s`; `most_at_once` is the most deliveries it had in flight together.
    """

    def __init__(self, status: int, delay_s: float = 0.0) -> None:
        self.deliveries: list[tuple[str, str]] = []
        self.in_flight = self.most_at_once = 0
        lock = threading.Lock()
        target = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    target.in_flight += 1
                    target.most_at_once = max(target.most_at_once, target.in_flight)
                time.sleep(delay_s)
                with lock:
                    target.in_flight -= 1
                target.deliveries.append(
                    (self.headers["X-CloudTasks-TaskName"], self.headers["X-CloudTasks-TaskRetryCount"])
                )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def per_task(self) -> Counter[str]:
        return Counter(name for name, _ in self.deliveries)


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulators]:
    with Emulators(
        which=("tasks",),
        project=PROJECT,
        queues=["give-up", "back-off", "default", "concurrent"],
        retry={"give-up": GIVE_UP, "back-off": BACK_OFF},
        dispatch={"concurrent": 4},
    ) as running:
        yield running


@pytest.fixture(scope="module")
def client(emulator: Emulators) -> tasks_v2.CloudTasksClient:
    channel = grpc.insecure_channel(emulator.env["CLOUD_TASKS_EMULATOR_HOST"])
    return tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))


def enqueue(client: tasks_v2.CloudTasksClient, queue: str, url: str, count: int) -> str:
    parent = f"projects/{PROJECT}/locations/us-central1/queues/{queue}"
    for i in range(count):
        task = {
            "name": f"{parent}/tasks/t{i}",
            "http_request": {"url": url, "http_method": "POST", "body": b"{}"},
        }
        client.create_task(parent=parent, task=task)
    return parent


def test_a_failing_task_is_attempted_max_attempts_times_then_deleted(
    client: tasks_v2.CloudTasksClient,
) -> None:
    target = FailingTarget(503)
    parent = enqueue(client, "give-up", target.url, 5)
    deadline = time.monotonic() + 20
    while len(target.deliveries) < 15 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.5)  # longer than the last backoff: a fourth attempt would have come by now
    assert target.per_task() == {f"t{i}": 3 for i in range(5)}
    assert sorted({count for _, count in target.deliveries}) == ["0", "1", "2"]
    assert list(client.list_tasks(parent=parent).tasks) == []


def test_failed_deliveries_follow_the_backoff(client: tasks_v2.CloudTasksClient, emulator: Emulators) -> None:
    target = FailingTarget(500)
    enqueue(client, "back-off", target.url, 10)
    time.sleep(3.0)
    attempts = target.per_task()
    # 1 s apart: about 3 each in 3 s. Without backoff each task got about 30.
    assert len(attempts) == 10
    assert max(attempts.values()) <= 6, attempts
    log = emulator.state_dir / "logs" / "tasks-emulator.log"
    lines = log.read_text(encoding="utf-8").splitlines()
    assert sum("failed with status 500" in line for line in lines) <= 10, "failed deliveries flood the log"


def test_a_queue_without_a_config_gets_the_api_defaults(client: tasks_v2.CloudTasksClient) -> None:
    target = FailingTarget(503)
    enqueue(client, "default", target.url, 1)
    time.sleep(2.0)
    # 0.1 s doubling: attempts at 0, 0.1, 0.3, 0.7, 1.5 s; unthrottled it would be about 20.
    assert 3 <= len(target.deliveries) <= 8, target.deliveries


def test_a_queue_dispatches_up_to_its_max_concurrent_dispatches_at_once(
    client: tasks_v2.CloudTasksClient,
) -> None:
    target = FailingTarget(200, delay_s=0.5)
    parent = enqueue(client, "concurrent", target.url, 10)
    started = time.monotonic()
    deadline = started + 20
    while len(target.deliveries) < 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    assert target.per_task() == {f"t{i}": 1 for i in range(10)}  # each once: none dispatched twice
    assert target.most_at_once == 4
    assert elapsed < 3.0, elapsed  # three waves of 0.5 s; one at a time would take 5 s
    assert list(client.list_tasks(parent=parent).tasks) == []
