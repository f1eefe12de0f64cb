"""The CLI against the real function apps, in-process, on the emulators.

`LocalCloud` is an httpx transport the CLI's own client runs on (`main(argv, transport=...)`). It
plays the parts of Google Cloud around the functions:

- API Gateway: routes each request by the manifest's (method, path) to that function's app (through
  `httpx.WSGITransport`), turns the bearer token into the claims header, answers 401/404 itself;
- Cloud Storage: signed-URL PUTs go to the storage emulator;
- Eventarc, Cloud Tasks and Pub/Sub push: after each API request, "the cloud moves on" one step:
  new objects in the datasets bucket are delivered to the ingest function, one queued chunk task
  of a job (the tenant's own, or one an experiment run created) is delivered to the chunk function,
  or else the messages published so far are pushed to their subscribers: batch-completed to the
  scoring function, evaluation-completed to experiments_evaluated, experiment-step to
  experiments_step (topics as PROMPTOPT_TOPICS names them, as the local stack wires them).

Faults are the one thing it makes up: `fail_next` answers (or drops) the next request of a kind, to
exercise the CLI's retries and error messages.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from promptopt import clients, config, logs
from promptopt.cli import retries
from promptopt.cli.core import waiting
from promptopt.cli.main import main
from promptopt.config import settings
from promptopt.local.storage_bridge import finalized_event
from promptopt.manifest import load_manifest
from tests.integration.batch.conftest import BatchInfra, batch_infra, batch_settings  # noqa: F401
from tests.integration.datasets.conftest import datasets_bucket  # noqa: F401
from tests.support import claims_header, load_app, new_tenant

API_URL = "http://api.promptopt.test"
API_HOST = "api.promptopt.test"


@dataclass
class Recorded:
    """One request the CLI sent: to the API or to storage."""

    method: str
    host: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Fault:
    """What to do instead of (or after) the next request of a kind."""

    kind: str  # "api" | "storage"
    status: int | None = None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    error: Exception | None = None  # raised instead of answering (no answer reached the client)
    after: bool = False  # the request is handled, then its answer is lost (this status instead)


def _problem(status: int, code: str, detail: str) -> httpx.Response:
    body = {"type": "about:blank", "title": code, "status": status, "detail": detail, "code": code}
    return httpx.Response(status, json=body, headers={"Content-Type": "application/problem+json"})


class LocalCloud(httpx.BaseTransport):
    """The gateway, storage and the event plumbing around the function apps (see the module doc)."""

    def __init__(self, infra: BatchInfra) -> None:
        self.infra = infra
        self.logs = io.StringIO()
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self.tokens: dict[str, tuple[str, str]] = {}
        self.hold_events = 0  # API requests to let pass before the next background step
        self.hold_tasks = False  # a paused queue: chunk tasks are not delivered
        self.jobs: list[str] = []  # jobs created through the API (runs' jobs are found in the queue)
        self._routes = [
            (spec.http.method, spec.http.path_regex, spec.name, spec.auth.mode)
            for spec in load_manifest()
            if spec.is_http
        ]
        self._apps: dict[str, httpx.WSGITransport] = {}
        self._network = httpx.HTTPTransport()
        self._delivered: set[str] = set()
        self._seen_objects = {(b.name, b.generation) for b in self._bucket().list_blobs()}
        self._chunk = load_app("batch_chunk").test_client()
        self._ingest = load_app("datasets_ingest").test_client()
        self._subscribers = {
            topic: load_app(name).test_client()
            for topic, name in (
                ("batch-completed", "batch_score"),
                ("evaluation-completed", "experiments_evaluated"),
                ("experiment-step", "experiments_step"),
            )
        }
        self.delivered_messages: list[tuple[str, dict[str, Any]]] = []

    # -- what tests use ---------------------------------------------------------------------------

    def token(self, tenant: str, role: str = "admin") -> str:
        """A bearer token this gateway accepts for `tenant` with `role`."""
        token = f"tok-{uuid.uuid4().hex}"
        self.tokens[token] = (tenant, role)
        return token

    def fail_next(self, kind: str = "api", *faults: Fault | int) -> None:
        """Queue faults for the next requests of `kind` (a status, or a Fault)."""
        for fault in faults:
            self.faults.append(fault if isinstance(fault, Fault) else Fault(kind=kind, status=fault))

    def sent(self, method: str | None = None, host: str = API_HOST) -> list[Recorded]:
        """The recorded requests to `host`, optionally of one method."""
        return [r for r in self.requests if r.host == host and method in (None, r.method)]

    def storage_puts(self) -> list[Recorded]:
        """The uploads that went to storage."""
        return [r for r in self.requests if r.host != API_HOST]

    # -- the transport ----------------------------------------------------------------------------

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        kind = "api" if request.url.host == API_HOST else "storage"
        self.requests.append(
            Recorded(
                method=request.method,
                host=request.url.host,
                path=request.url.raw_path.decode().split("?", 1)[0],
                query=dict(parse_qsl(request.url.query.decode())),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
            )
        )
        fault = next((f for f in self.faults if f.kind == kind), None)
        if fault is not None:
            self.faults.remove(fault)
            if fault.error is not None:
                raise fault.error
            if not fault.after:
                assert fault.status is not None
                return httpx.Response(fault.status, content=fault.body, headers=fault.headers)
        if kind == "storage":
            response = self._network.handle_request(request)
            response.read()
        else:
            response = self._api(request, body)
            self._step()
        if fault is not None and fault.after:
            assert fault.status is not None
            return httpx.Response(fault.status, content=fault.body, headers=fault.headers)
        return response

    def _api(self, request: httpx.Request, body: bytes) -> httpx.Response:
        path = request.url.raw_path.decode().split("?", 1)[0]
        for method, regex, name, auth in self._routes:
            if regex.match(path) is None:
                continue
            if method != request.method:
                continue
            headers = {k: v for k, v in request.headers.items() if k.lower() not in ("authorization", "host")}
            if auth != "public":
                scheme, _, token = request.headers.get("authorization", "").partition(" ")
                if scheme.lower() != "bearer" or token not in self.tokens:
                    return _problem(401, "unauthenticated", "send Authorization: Bearer <token>")
                headers.update(claims_header(*self.tokens[token]))
            forwarded = httpx.Request(request.method, request.url, headers=headers, content=body)
            response = self._app(name).handle_request(forwarded)
            response.read()
            if name in ("batch_create", "batch_evaluation_create") and response.status_code == 202:
                self.jobs.append(response.json()["job_id"])
            return response
        return _problem(404, "not_found", f"no route for {request.method} {path}")

    def _app(self, name: str) -> httpx.WSGITransport:
        if name not in self._apps:
            self._apps[name] = httpx.WSGITransport(app=load_app(name))
        return self._apps[name]

    # -- the cloud moving on ------------------------------------------------------------------------

    def _step(self) -> None:
        """One step of background work: an ingestion, a chunk, or a scoring."""
        if self.hold_events:
            self.hold_events -= 1
            return
        if self._ingest_new_objects() or self._run_one_chunk():
            return
        self._push_completions()

    def _bucket(self) -> Any:
        return clients.storage_client().bucket(settings().datasets_bucket)

    def _ingest_new_objects(self) -> bool:
        tenants = {tenant for tenant, _ in self.tokens.values()}
        delivered = False
        for blob in self._bucket().list_blobs(prefix="tenants/"):
            if (blob.name, blob.generation) in self._seen_objects:
                continue
            self._seen_objects.add((blob.name, blob.generation))
            if blob.name.split("/")[1] not in tenants:
                continue
            resource = {
                "bucket": blob.bucket.name,
                "name": blob.name,
                "generation": str(blob.generation),
                "metageneration": str(blob.metageneration or 1),
                "size": str(blob.size),
                "contentType": blob.content_type,
                "metadata": blob.metadata or {},
            }
            headers, payload = finalized_event(blob.bucket.name, resource)
            assert self._ingest.post("/", data=payload, headers=headers).status_code == 200
            delivered = True
        return delivered

    def _tenants(self) -> set[str]:
        return {tenant for tenant, _ in self.tokens.values()}

    def _run_one_chunk(self) -> bool:
        """Deliver the oldest undelivered chunk task of one of this cloud's tenants."""
        if self.hold_tasks:
            return False
        tenants = self._tenants()
        for task in clients.tasks_client().list_tasks(parent=self.infra.queue):
            if task.name in self._delivered:
                continue
            request = task.http_request
            payload = json.loads(request.body)
            if payload.get("tenant") not in tenants:
                continue
            self._delivered.add(task.name)
            headers = {
                **dict(request.headers),
                "X-CloudTasks-QueueName": self.infra.queue.rsplit("/", 1)[1],
                "X-CloudTasks-TaskName": task.name.rsplit("/", 1)[1],
                "X-CloudTasks-TaskRetryCount": "0",
                "X-CloudTasks-TaskExecutionCount": "0",
            }
            answer = self._chunk.post("/", data=request.body, headers=headers)
            assert answer.status_code == 200, answer.get_data(as_text=True)
            return True
        return False

    def _push_completions(self) -> None:
        """Push every message published so far for this cloud's tenants to its topic's function."""
        tenants = self._tenants()
        for topic, subscriber in self._subscribers.items():
            for envelope, payload in _pull(self.infra.subscriptions[topic]):
                if payload.get("tenant") not in tenants:
                    continue
                self.delivered_messages.append((topic, payload))
                answer = subscriber.post("/", json=envelope)
                assert answer.status_code in (200, 204), answer.get_data(as_text=True)


def _pull(subscription: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Every message waiting on `subscription`, acknowledged, as (push envelope, payload)."""
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    found: list[tuple[dict[str, Any], dict[str, Any]]] = []
    try:
        while True:
            with warnings.catch_warnings():  # deprecated, but the emulator then answers at once
                warnings.simplefilter("ignore", DeprecationWarning)
                response = subscriber.pull(
                    subscription=subscription, max_messages=100, timeout=5, return_immediately=True
                )
            if not response.received_messages:
                return found
            for received in response.received_messages:
                envelope = {
                    "message": {
                        "data": base64.b64encode(received.message.data).decode(),
                        "messageId": received.message.message_id,
                        "attributes": dict(received.message.attributes),
                    },
                    "subscription": subscription,
                }
                found.append((envelope, json.loads(received.message.data)))
            subscriber.acknowledge(
                subscription=subscription, ack_ids=[m.ack_id for m in response.received_messages]
            )
    finally:
        subscriber.close()


@dataclass
class Cli:
    """Runs `promptopt` against the local cloud as one tenant; returns (exit code, stdout, stderr)."""

    cloud: LocalCloud
    tenant: str
    capsys: pytest.CaptureFixture[str]
    role: str = "admin"
    token: str | None = None

    def __call__(self, *argv: str, token: str | None = "") -> tuple[int, str, str]:
        self.capsys.readouterr()
        bearer = self.token if token == "" else token
        options = ["--api-url", API_URL] + (["--token", bearer] if bearer else [])
        code = main([*options, *argv], transport=self.cloud)
        out, err = self.capsys.readouterr()
        return code, out, err

    def json(self, *argv: str) -> Any:
        code, out, err = self("--json", *argv)
        assert code == 0, err
        return json.loads(out)

    def posts(self) -> list[Recorded]:
        return self.cloud.sent("POST")


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PROMPTOPT_API_URL", "PROMPTOPT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(retries, "RETRY_BACKOFF_S", (0.0,))
    monkeypatch.setattr(waiting, "POLL_INTERVALS_S", (0.0,))


RUN_TOPICS = ("experiment-step", "experiment-alerts")


@pytest.fixture(scope="session")
def run_topics(batch_infra: BatchInfra) -> BatchInfra:  # noqa: F811
    """The topics experiment runs publish to, beside the batch ones, each with a pull subscription."""
    from google.api_core import exceptions as gexc
    from google.cloud import pubsub_v1

    suffix = batch_infra.queue.rsplit("-", 1)[1]
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    for name in RUN_TOPICS:
        topic = f"projects/{batch_infra.project}/topics/{name}-{suffix}"
        subscription = f"projects/{batch_infra.project}/subscriptions/{name}-{suffix}-test"
        try:
            publisher.create_topic(name=topic)
            subscriber.create_subscription(name=subscription, topic=topic)
        except gexc.AlreadyExists:
            pass
        batch_infra.topics[name], batch_infra.subscriptions[name] = topic, subscription
    subscriber.close()
    return batch_infra


@pytest.fixture
def cloud(
    run_topics: BatchInfra,
    datasets_bucket: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[LocalCloud]:
    """The local cloud; the functions' JSON logs go to `cloud.logs`, not the CLI's stdout."""
    monkeypatch.setenv("PROMPTOPT_TOPICS", json.dumps(run_topics.topics))
    config.reset()
    local = LocalCloud(run_topics)
    logs.configure()
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
    streams = [h.setStream(local.logs) for h in handlers]
    yield local
    for handler, stream in zip(handlers, streams, strict=True):
        if stream is not None:
            handler.setStream(stream)


@pytest.fixture
def cli(cloud: LocalCloud, capsys: pytest.CaptureFixture[str]) -> Cli:
    tenant = new_tenant()
    return Cli(cloud, tenant, capsys, token=cloud.token(tenant, "admin"))
