"""Lazily created, process-wide GCP clients.

functions-framework serves requests from several threads, so creation is guarded by a lock;
nothing is created at import time (cold start) and `reset` drops them between tests.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from promptopt.config import settings

if TYPE_CHECKING:
    import grpc
    import requests
    from google.cloud import firestore
    from google.cloud.storage import Client as StorageClient
    from google.cloud.tasks_v2 import CloudTasksClient

_lock = threading.Lock()
_clients: dict[str, Any] = {}


def _get(name: str, factory: Any) -> Any:
    client = _clients.get(name)
    if client is None:
        with _lock:
            client = _clients.get(name)
            if client is None:
                client = factory()
                _clients[name] = client
    return client


def firestore_client() -> firestore.Client:
    """The Firestore client (honours FIRESTORE_EMULATOR_HOST)."""

    def make() -> firestore.Client:
        from google.cloud import firestore

        cfg = settings()
        return firestore.Client(project=cfg.project_id, database=cfg.firestore_database)

    return _get("firestore", make)


def storage_client() -> StorageClient:
    """The Cloud Storage client (honours STORAGE_EMULATOR_HOST)."""

    def make() -> StorageClient:
        from google.cloud.storage import Client

        return Client(project=settings().project_id)

    return _get("storage", make)


def _rest_session(emulator_base: str | None, cloud_base: str, scope: str) -> tuple[str, requests.Session]:
    """A REST API's base URL and an HTTP session for it.

    The emulator's, plain and without credentials, when `emulator_base` is set; otherwise the
    service's, with the default credentials.
    """
    import requests
    from requests.adapters import HTTPAdapter

    session: requests.Session
    if emulator_base:
        base, session = emulator_base.rstrip("/"), requests.Session()
        session.trust_env = False  # a local emulator: never through a proxy from the environment
    else:
        import google.auth
        from google.auth.transport.requests import AuthorizedSession

        credentials, _project = google.auth.default(scopes=[scope])
        base, session = cloud_base, AuthorizedSession(credentials)
    # Request threads share the session: keep a connection for each of several at once.
    session.mount(base, HTTPAdapter(pool_connections=1, pool_maxsize=32))
    return base, session


def pubsub_session() -> tuple[str, requests.Session]:
    """Pub/Sub's REST base URL and an HTTP session for it (see promptopt.pubsub_rest for why REST).

    PUBSUB_EMULATOR_HOST (`host:port`) points it at the emulator over plain HTTP.
    """

    def make() -> tuple[str, requests.Session]:
        import os

        emulator = os.environ.get("PUBSUB_EMULATOR_HOST")
        return _rest_session(
            f"http://{emulator}" if emulator else None,
            "https://pubsub.googleapis.com",
            "https://www.googleapis.com/auth/pubsub",
        )

    return _get("pubsub", make)


def storage_session() -> tuple[str, requests.Session]:
    """Cloud Storage's JSON API base URL and an HTTP session for it (see promptopt.storage_rest).

    STORAGE_EMULATOR_HOST (`http://host:port`, as google-cloud-storage reads it) points it at the
    emulator.
    """

    def make() -> tuple[str, requests.Session]:
        import os

        return _rest_session(
            os.environ.get("STORAGE_EMULATOR_HOST"),
            "https://storage.googleapis.com",
            "https://www.googleapis.com/auth/devstorage.read_write",
        )

    return _get("storage_rest", make)


def tasks_channel() -> grpc.Channel:
    """A gRPC channel to Cloud Tasks (CLOUD_TASKS_EMULATOR_HOST: the local emulator, unencrypted).

    The functions call Cloud Tasks through promptopt.tasks_grpc on this channel; in the cloud it
    carries the default credentials, as the generated client's channel does.
    """

    def make() -> grpc.Channel:
        import os

        import grpc

        emulator = os.environ.get("CLOUD_TASKS_EMULATOR_HOST")
        if emulator:
            return grpc.insecure_channel(emulator)
        from google.api_core import grpc_helpers

        return grpc_helpers.create_channel(
            "cloudtasks.googleapis.com:443",
            default_scopes=("https://www.googleapis.com/auth/cloud-platform",),
            default_host="cloudtasks.googleapis.com",
            # as the generated transport sets them: a task's body may be up to 1 MB
            options=[("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)],
        )

    return _get("tasks_channel", make)


def tasks_client() -> CloudTasksClient:
    """The generated Cloud Tasks client, for the local stack's wiring and the tests.

    The functions call Cloud Tasks through promptopt.tasks_grpc instead (cold start).
    CLOUD_TASKS_EMULATOR_HOST points it at the local emulator (gRPC).
    """

    def make() -> CloudTasksClient:
        import os

        from google.cloud import tasks_v2

        emulator = os.environ.get("CLOUD_TASKS_EMULATOR_HOST")
        if not emulator:
            return tasks_v2.CloudTasksClient()
        import grpc
        from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

        channel = grpc.insecure_channel(emulator)
        return tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))

    return _get("tasks", make)


def reset() -> None:
    """Drop every cached client (tests point them at fresh emulators)."""
    with _lock:
        _clients.clear()
