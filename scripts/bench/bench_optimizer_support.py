"""Pumps for scripts/bench/optimizer_durable.py: the tests' round-based Pump, timed, with chunk tasks
delivered serially, up to a queue's limit at once, or all at once; and PushPump, which delivers as
the platform does, as soon as there is something to deliver."""

from __future__ import annotations

import base64
import contextlib
import functools
import threading
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


class PushPump:
    """Delivers as the platform does, as soon as there is something to deliver.

    Chunk tasks: the queue runs and the Tasks emulator dispatches them over HTTP (to batch_chunk,
    served here by a threaded server) as it creates them, up to the queue's
    max_concurrent_dispatches at once, as Cloud Tasks does. Messages: a streaming pull per topic
    hands each message to its consumer as soon as it is published, while the publisher's handler
    may still be finishing, as a push subscription does (a 5xx is nacked and redelivered).

    Unlike `ConcurrentPump`, nothing waits for a round to end: a step's next delivery starts as
    soon as the write that caused it is made.
    """

    def __init__(self, api: Any, infra: Any) -> None:
        from werkzeug.serving import make_server

        from promptopt.local.ports import free_port

        self.api, self.infra = api, infra
        self.task_s = self.message_s = 0.0
        self._lock = threading.Lock()
        port = free_port()
        chunks = _Timed(self, api.client("batch_chunk").application)
        self._server = make_server("127.0.0.1", port, chunks, threaded=True)
        self.url = f"http://127.0.0.1:{port}/"
        self._serving = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._subscriber: Any = None
        self._streams: list[Any] = []

    def start(self) -> None:
        """Serve batch_chunk, let the queue dispatch, and open a streaming pull per topic."""
        from google.cloud import pubsub_v1

        from promptopt import clients

        self._serving.start()
        clients.tasks_client().resume_queue(name=self.infra.queue)
        self._subscriber = pubsub_v1.SubscriberClient()
        for topic, function in CONSUMERS.items():
            app = self.api.client(function).application
            callback = functools.partial(self._push, app, self.infra.subscriptions[topic])
            flow = pubsub_v1.types.FlowControl(max_messages=64)
            self._streams.append(
                self._subscriber.subscribe(self.infra.subscriptions[topic], callback, flow_control=flow)
            )

    def _push(self, app: Any, subscription: str, message: Any) -> None:
        envelope = {
            "message": {
                "data": base64.b64encode(message.data).decode(),
                "messageId": message.message_id,
                "attributes": dict(message.attributes),
            },
            "subscription": subscription,
        }
        started = time.perf_counter()
        response = app.test_client().post("/", json=envelope)
        with self._lock:
            self.message_s += time.perf_counter() - started
        if response.status_code in (200, 204):
            message.ack()
        else:
            message.nack()  # Pub/Sub pushes it again

    def stop(self) -> None:
        """Stop delivering (the queue is paused again; the emulator cannot delete its tasks)."""
        from promptopt import clients

        for stream in self._streams:
            stream.cancel()
        for stream in self._streams:
            with contextlib.suppress(Exception):  # a cancelled stream ends with its cancellation
                stream.result(timeout=5)
        if self._subscriber is not None:
            self._subscriber.close()
        clients.tasks_client().pause_queue(name=self.infra.queue)
        self._server.shutdown()


class _Timed:
    """A WSGI app that adds the time of each request to its pump's chunk-task time."""

    def __init__(self, pump: PushPump, app: Any) -> None:
        self.pump, self.app = pump, app

    def __call__(self, environ: Any, start_response: Any) -> Any:
        started = time.perf_counter()
        try:
            return list(self.app(environ, start_response))
        finally:
            with self.pump._lock:
                self.pump.task_s += time.perf_counter() - started
