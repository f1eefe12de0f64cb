"""Batch jobs on the emulators: tasks land in a real (paused) Tasks emulator queue, and the tests
deliver them to the chunk function in-process, as Cloud Tasks would (same body, same headers),
as many times as they like; Pub/Sub messages land on a real emulator topic and are pushed to the
evaluation function by hand, again as often as a test wants.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from promptopt import clients, config
from promptopt.llm import gemini, openai_compat, pricing, registry
from tests.conftest import Api

LOCATION = "us-central1"
MAX_ATTEMPTS = 10


@dataclass
class BatchInfra:
    """The emulator resources batch tests share: a held queue and the two topics."""

    project: str
    queue: str
    topics: dict[str, str]
    subscriptions: dict[str, str]
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def tasks(self, job_id: str) -> list[Any]:
        """The job's tasks in the queue, in creation order."""
        found = clients.tasks_client().list_tasks(parent=self.queue)
        return [t for t in found if f"-{job_id}-" in t.name.rsplit("/", 1)[1]]

    def pull(self, topic: str, job_id: str) -> list[dict[str, Any]]:
        """Every message published on `topic` about `job_id` so far (as push envelopes)."""
        from google.cloud import pubsub_v1

        subscriber = pubsub_v1.SubscriberClient()
        try:
            while True:
                with warnings.catch_warnings():  # deprecated, but the emulator then answers at once
                    warnings.simplefilter("ignore", DeprecationWarning)
                    response = subscriber.pull(
                        subscription=self.subscriptions[topic],
                        max_messages=100,
                        timeout=5,
                        return_immediately=True,
                    )
                if not response.received_messages:
                    break
                for received in response.received_messages:
                    payload = json.loads(received.message.data)
                    envelope = {
                        "message": {
                            "data": base64.b64encode(received.message.data).decode(),
                            "messageId": received.message.message_id,
                            "attributes": dict(received.message.attributes),
                        },
                        "subscription": self.subscriptions[topic],
                    }
                    self.messages.setdefault(f"{topic}/{payload['job_id']}", []).append(envelope)
                subscriber.acknowledge(
                    subscription=self.subscriptions[topic],
                    ack_ids=[m.ack_id for m in response.received_messages],
                )
        finally:
            subscriber.close()
        return self.messages.get(f"{topic}/{job_id}", [])


@pytest.fixture(scope="session")
def batch_infra(emulator_env: dict[str, str]) -> BatchInfra:
    """A paused queue (tasks stay listed until a test delivers them) and topics with pull subscriptions."""
    from google.api_core import exceptions as gexc
    from google.cloud import pubsub_v1

    if "CLOUD_TASKS_EMULATOR_HOST" not in os.environ or "PUBSUB_EMULATOR_HOST" not in os.environ:
        pytest.skip("batch tests need the Tasks and Pub/Sub emulators")
    project = os.environ["GOOGLE_CLOUD_PROJECT"]
    suffix = uuid.uuid4().hex[:8]
    queue = f"projects/{project}/locations/{LOCATION}/queues/batch-held-{suffix}"
    tasks = clients.tasks_client()
    tasks.create_queue(parent=f"projects/{project}/locations/{LOCATION}", queue={"name": queue})
    tasks.pause_queue(name=queue)
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    topics, subscriptions = {}, {}
    for name in ("batch-completed", "evaluation-completed"):
        topic = f"projects/{project}/topics/{name}-{suffix}"
        subscription = f"projects/{project}/subscriptions/{name}-{suffix}-test"
        try:
            publisher.create_topic(name=topic)
            subscriber.create_subscription(name=subscription, topic=topic)
        except gexc.AlreadyExists:
            pass
        topics[name], subscriptions[name] = topic, subscription
    subscriber.close()
    return BatchInfra(project=project, queue=queue, topics=topics, subscriptions=subscriptions)


def _reset_models() -> None:
    registry.reset()
    gemini.reset()
    openai_compat.reset()
    pricing.reset()


@pytest.fixture(autouse=True)
def batch_settings(batch_infra: BatchInfra, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Point the batch code at the test queue and topics; only local model endpoints are allowed."""
    monkeypatch.setenv("PROMPTOPT_QUEUES", json.dumps({"inference": batch_infra.queue}))
    monkeypatch.setenv("PROMPTOPT_TOPICS", json.dumps(batch_infra.topics))
    # Nothing listens here: the queue is paused and tests deliver tasks themselves.
    monkeypatch.setenv(
        "PROMPTOPT_FUNCTION_URLS", json.dumps({"batch_chunk": "http://127.0.0.1:9/batch-chunk"})
    )
    monkeypatch.setenv(
        "PROMPTOPT_TASKS_SERVICE_ACCOUNT", "tasks-invoker@promptopt-test.iam.gserviceaccount.com"
    )
    monkeypatch.setenv("PROMPTOPT_FORBID_REAL_MODELS", "1")
    monkeypatch.setenv("PROMPTOPT_BATCH_MAX_ATTEMPTS", str(MAX_ATTEMPTS))
    monkeypatch.setenv("PROMPTOPT_SECRET_OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("PROMPTOPT_GEMINI_ACCESS_TOKEN", "fake-token")
    monkeypatch.setenv("PROMPTOPT_GEMINI_RETRY_ATTEMPTS", "1")  # 429s reach the queue, not SDK retries
    monkeypatch.delenv("PROMPTOPT_DEFAULT_MODEL", raising=False)
    monkeypatch.delenv("PROMPTOPT_PRICES", raising=False)
    config.reset()
    _reset_models()
    yield
    config.reset()
    _reset_models()


@dataclass
class Batch:
    """Calls the batch endpoints and plays Cloud Tasks and Pub/Sub for them."""

    api: Api
    infra: BatchInfra
    tenant: str

    def create(self, body: dict[str, Any], *, path: str = "/api/v1/inference/batch", **kw: Any) -> Any:
        function = "batch_evaluation_create" if path.endswith("/evaluate") else "batch_create"
        return self.api.call(function, "POST", path, tenant=self.tenant, role="editor", json=body, **kw)

    def started(self, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
        response = self.create(body, **kw)
        assert response.status_code == 202, response.get_data(as_text=True)
        job: dict[str, Any] = response.get_json()
        return job

    def get(self, job_id: str) -> dict[str, Any]:
        response = self.api.call(
            "batch_get",
            "GET",
            f"/api/v1/inference/batch/{job_id}",
            tenant=self.tenant,
            role="viewer",
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        job: dict[str, Any] = response.get_json()
        return job

    def cancel(self, job_id: str) -> Any:
        return self.api.call(
            "batch_cancel", "POST", f"/api/v1/inference/batch/{job_id}/cancel", tenant=self.tenant,
            role="editor",
        )  # fmt: skip

    def results(self, job_id: str, **query: Any) -> list[dict[str, Any]]:
        rows, token = [], None
        while True:
            params = {**query, "page_size": 7, **({"page_token": token} if token else {})}
            response = self.api.call(
                "batch_results", "GET", f"/api/v1/inference/batch/{job_id}/results",
                tenant=self.tenant, role="viewer", query_string=params,
            )  # fmt: skip
            assert response.status_code == 200, response.get_data(as_text=True)
            page = response.get_json()
            rows += page["items"]
            token = page["next_page_token"]
            if not token:
                return rows

    def deliver(self, task: Any, *, retry: int = 0, body: bytes | None = None) -> Any:
        """One delivery of a task, with the body (or `body`) and headers Cloud Tasks sends."""
        request = task.http_request
        headers = dict(request.headers)
        headers.update({
            "X-CloudTasks-QueueName": self.infra.queue.rsplit("/", 1)[1],
            "X-CloudTasks-TaskName": task.name.rsplit("/", 1)[1],
            "X-CloudTasks-TaskRetryCount": str(retry),
            "X-CloudTasks-TaskExecutionCount": str(retry),
        })  # fmt: skip
        return self.api.client("batch_chunk").post("/", data=body or request.body, headers=headers)

    def run(self, job_id: str, *, times: int = 1, tasks: list[Any] | None = None) -> list[int]:
        """Deliver each task until it succeeds (retrying 503s as the queue would), `times` times over."""
        statuses = []
        for task in tasks if tasks is not None else self.infra.tasks(job_id):
            for _ in range(times):
                for attempt in range(MAX_ATTEMPTS):
                    response = self.deliver(task, retry=attempt)
                    statuses.append(response.status_code)
                    if response.status_code == 200:
                        break
                    assert response.status_code == 503, response.get_data(as_text=True)
        return statuses

    def push(self, envelope: dict[str, Any]) -> Any:
        """One push delivery of a Pub/Sub message to the evaluation function."""
        return self.api.client("batch_score").post("/", json=envelope)


@pytest.fixture
def batch(api: Api, batch_infra: BatchInfra, tenant: str) -> Batch:
    return Batch(api=api, infra=batch_infra, tenant=tenant)
