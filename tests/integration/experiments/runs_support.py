"""Plays Cloud Tasks and Pub/Sub for experiment runs on the emulators.

Chunk tasks land in a real, paused Tasks emulator queue and Pub/Sub messages on real emulator
topics (with pull subscriptions); `Pump` delivers them to the functions in-process, as the
platform would, as often and in whatever order a test asks for.
"""

from __future__ import annotations

import base64
import json
import os
import random
import uuid
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest

from promptopt import clients
from tests.conftest import Api

LOCATION = "us-central1"
MAX_ATTEMPTS = 10
TOPICS = ("batch-completed", "evaluation-completed", "experiment-step", "experiment-alerts")
# Which function each topic is pushed to (experiment-alerts is for people; tests read it).
CONSUMERS = {
    "batch-completed": "batch_score",
    "evaluation-completed": "experiments_evaluated",
    "experiment-step": "experiments_step",
}


@dataclass
class RunInfra:
    """A held queue and the topics with pull subscriptions, shared by the run tests."""

    project: str
    queue: str
    topics: dict[str, str]
    subscriptions: dict[str, str]


def make_infra() -> RunInfra:
    """Create the queue (paused) and the topics."""
    from google.api_core import exceptions as gexc
    from google.cloud import pubsub_v1

    if "CLOUD_TASKS_EMULATOR_HOST" not in os.environ or "PUBSUB_EMULATOR_HOST" not in os.environ:
        pytest.skip("experiment runs need the Tasks and Pub/Sub emulators")
    project = os.environ["GOOGLE_CLOUD_PROJECT"]
    suffix = uuid.uuid4().hex[:8]
    queue = f"projects/{project}/locations/{LOCATION}/queues/runs-held-{suffix}"
    tasks = clients.tasks_client()
    tasks.create_queue(parent=f"projects/{project}/locations/{LOCATION}", queue={"name": queue})
    tasks.pause_queue(name=queue)
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    topics, subscriptions = {}, {}
    for name in TOPICS:
        topic = f"projects/{project}/topics/{name}-{suffix}"
        subscription = f"projects/{project}/subscriptions/{name}-{suffix}-test"
        try:
            publisher.create_topic(name=topic)
            subscriber.create_subscription(name=subscription, topic=topic)
        except gexc.AlreadyExists:
            pass
        topics[name], subscriptions[name] = topic, subscription
    subscriber.close()
    return RunInfra(project=project, queue=queue, topics=topics, subscriptions=subscriptions)


def configure(infra: RunInfra, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point every function at the held queue and the test topics; only local models."""
    monkeypatch.setenv("PROMPTOPT_QUEUES", json.dumps({"inference": infra.queue}))
    monkeypatch.setenv("PROMPTOPT_TOPICS", json.dumps(infra.topics))
    monkeypatch.setenv(
        "PROMPTOPT_FUNCTION_URLS", json.dumps({"batch_chunk": "http://127.0.0.1:9/batch-chunk"})
    )
    monkeypatch.setenv(
        "PROMPTOPT_TASKS_SERVICE_ACCOUNT", "tasks-invoker@promptopt-test.iam.gserviceaccount.com"
    )
    monkeypatch.setenv("PROMPTOPT_FORBID_REAL_MODELS", "1")
    monkeypatch.setenv("PROMPTOPT_BATCH_MAX_ATTEMPTS", str(MAX_ATTEMPTS))
    monkeypatch.delenv("PROMPTOPT_DEFAULT_MODEL", raising=False)
    monkeypatch.delenv("PROMPTOPT_PRICES", raising=False)


@dataclass
class Pump:
    """Delivers what the platform would: chunk tasks, then messages to their consumers."""

    api: Api
    infra: RunInfra
    duplicate: bool = False  # deliver every message twice
    together: bool = False  # with duplicate: both deliveries at once, on two threads
    duplicate_tasks: bool = False  # deliver every chunk task twice, both at once, on two threads
    shuffle: random.Random | None = None  # deliver each round's messages in a random order
    drop: Callable[[str, dict[str, Any]], bool] | None = None  # lose a message (a crash before ack)
    delivered: dict[str, int] = field(default_factory=dict)
    done_tasks: set[str] = field(default_factory=set)  # the emulator cannot delete tasks
    redeliver: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # answered 5xx
    failures: int = 0

    def _tasks(self) -> list[Any]:
        found = clients.tasks_client().list_tasks(parent=self.infra.queue)
        return [t for t in found if t.name not in self.done_tasks]

    def _deliver_task(self, task: Any) -> None:
        request = task.http_request
        for attempt in range(MAX_ATTEMPTS):
            headers = dict(request.headers)
            headers.update({
                "X-CloudTasks-QueueName": self.infra.queue.rsplit("/", 1)[1],
                "X-CloudTasks-TaskName": task.name.rsplit("/", 1)[1],
                "X-CloudTasks-TaskRetryCount": str(attempt),
                "X-CloudTasks-TaskExecutionCount": str(attempt),
            })  # fmt: skip
            response = self.api.client("batch_chunk").post("/", data=request.body, headers=headers)
            if response.status_code == 200:
                break
            assert response.status_code == 503, response.get_data(as_text=True)
        self.done_tasks.add(task.name)

    def pull(self, topic: str) -> list[dict[str, Any]]:
        """Every message waiting on `topic`, as push envelopes (acknowledged on the subscription)."""
        from google.cloud import pubsub_v1

        subscriber = pubsub_v1.SubscriberClient()
        envelopes: list[dict[str, Any]] = []
        try:
            while True:
                with warnings.catch_warnings():  # deprecated, but the emulator then answers at once
                    warnings.simplefilter("ignore", DeprecationWarning)
                    response = subscriber.pull(
                        subscription=self.infra.subscriptions[topic],
                        max_messages=100,
                        timeout=5,
                        return_immediately=True,
                    )
                if not response.received_messages:
                    return envelopes
                for received in response.received_messages:
                    envelopes.append({
                        "message": {
                            "data": base64.b64encode(received.message.data).decode(),
                            "messageId": received.message.message_id,
                            "attributes": dict(received.message.attributes),
                        },
                        "subscription": self.infra.subscriptions[topic],
                    })  # fmt: skip
                subscriber.acknowledge(
                    subscription=self.infra.subscriptions[topic],
                    ack_ids=[m.ack_id for m in response.received_messages],
                )
        finally:
            subscriber.close()

    def tasks(self) -> int:
        """Deliver every waiting chunk task (and no message); returns how many."""
        found = self._tasks()
        for task in found:
            if self.duplicate_tasks:
                with ThreadPoolExecutor(max_workers=2) as pool:
                    list(pool.map(self._deliver_task, [task, task]))
            else:
                self._deliver_task(task)
        return len(found)

    def round(self) -> int:
        """Deliver every waiting task, then every waiting message; returns how many things moved."""
        moved = self.tasks()
        batch, self.redeliver = self.redeliver, []  # Pub/Sub pushes a failed message again
        for topic in CONSUMERS:
            batch += [(topic, envelope) for envelope in self.pull(topic)]
        if self.shuffle is not None:
            self.shuffle.shuffle(batch)
        for topic, envelope in batch:
            payload = json.loads(base64.b64decode(envelope["message"]["data"]))
            if self.drop is not None and self.drop(topic, payload):
                continue
            if self.duplicate and self.together:
                with ThreadPoolExecutor(max_workers=2) as pool:
                    both = [f.result() for f in [pool.submit(self._push, topic, envelope) for _ in range(2)]]
                if any(r.status_code >= 500 for r in both):
                    self.failures += 1
                    self.redeliver.append((topic, envelope))
                else:
                    self.delivered[topic] = self.delivered.get(topic, 0) + 2
                moved += 1
                continue
            for _ in range(2 if self.duplicate else 1):
                response = self._push(topic, envelope)
                if response.status_code >= 500:  # the handler raised: not acknowledged
                    self.failures += 1
                    self.redeliver.append((topic, envelope))
                    break
                assert response.status_code in (200, 204), (topic, response.get_data(as_text=True))
                self.delivered[topic] = self.delivered.get(topic, 0) + 1
            moved += 1
        return moved

    def _push(self, topic: str, envelope: dict[str, Any]) -> Any:
        response = self.api.client(CONSUMERS[topic]).post("/", json=envelope)
        assert response.status_code in (200, 204) or response.status_code >= 500, (
            topic,
            response.get_data(as_text=True),
        )
        return response

    def settle(self, max_rounds: int = 200) -> int:
        """Rounds until nothing is left to deliver; returns the number of rounds."""
        for count in range(max_rounds):
            if self.round() == 0:
                return count
        raise AssertionError(f"still busy after {max_rounds} rounds")
