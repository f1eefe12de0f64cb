"""A pump for scripts/bench/optimizer_durable.py: the test "
"Pump, timed, with chunk tasks delivered serially, up to a queue's limit at once, or all at once."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from tests.integration.experiments.runs_support import CONSUMERS, MAX_ATTEMPTS, Pump


@dataclass
class ConcurrentPump(Pump):
    """Pump that times its chunk deliveries and message "
    "deliveries; a round's tasks go `at_once` at a time (None: all of them)."""

    at_once: int | None = 1
    messages_at_once: bool = False  # push a topic's waiting messages concurrently, as Pub/Sub does
    task_s: float = 0.0
    message_s: float = 0.0

    def _deliver_task(self, task: Any) -> None:
        request = task.http_request
        client = self.api.client("batch_chunk").application.test_client()  # one client per thread
        for attempt in range(MAX_ATTEMPTS):
            headers = dict(request.headers)
            headers.update({
                "X-CloudTasks-QueueName": self.infra.queue.rsplit("/", 1)[1],
                "X-CloudTasks-TaskName": task.name.rsplit("/", 1)[1],
                "X-CloudTasks-TaskRetryCount": str(attempt),
                "X-CloudTasks-TaskExecutionCount": str(attempt),
            })  # fmt: skip
            response = client.post("/", data=request.body, headers=headers)
            if response.status_code == 200:
                break
        self.done_tasks.add(task.name)

    def round(self) -> int:
        """Deliver every waiting task (`at_once` at a time), then every waiting message."""
        started = time.perf_counter()
        tasks = self._tasks()
        workers = len(tasks) if self.at_once is None else min(self.at_once, len(tasks))
        if workers > 1:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(self._deliver_task, tasks))
        else:
            for task in tasks:
                self._deliver_task(task)
        self.task_s += time.perf_counter() - started
        started = time.perf_counter()
        moved = len(tasks)
        for topic in CONSUMERS:
            envelopes = self.pull(topic)
            app = self.api.client(CONSUMERS[topic]).application

            def push(envelope: dict[str, Any], app: Any = app, topic: str = topic) -> None:
                response = app.test_client().post("/", json=envelope)  # one client per thread
                assert response.status_code in (200, 204), (topic, response.get_data(as_text=True))

            if self.messages_at_once and len(envelopes) > 1:
                with ThreadPoolExecutor(max_workers=len(envelopes)) as pool:
                    list(pool.map(push, envelopes))
            else:
                for envelope in envelopes:
                    push(envelope)
            moved += len(envelopes)
        self.message_s += time.perf_counter() - started
        return moved
