"""Datasets on the emulators: API functions in-process, the ingest function fed CloudEvents.

The storage emulator sends no notifications, so `Ingest.deliver` builds the "object finalized"
event Eventarc would send (binary mode, the object resource as data) and posts it to the ingest
function's app, as many times as a test wants it delivered.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from flask.testing import FlaskClient

from promptopt import clients, config
from promptopt.config import settings
from tests.support import load_app

FINALIZED = "google.cloud.storage.object.v1.finalized"


class Ingest:
    """Delivers finalized events for objects in the datasets bucket to the ingest function."""

    def __init__(self) -> None:
        self.client: FlaskClient = load_app("datasets_ingest").test_client()

    @property
    def bucket(self) -> Any:
        return clients.storage_client().bucket(settings().datasets_bucket)

    def event_for(self, name: str) -> dict[str, Any]:
        blob = self.bucket.get_blob(name)
        assert blob is not None, f"no object {name}"
        return {
            "bucket": blob.bucket.name,
            "name": blob.name,
            "generation": str(blob.generation),
            "metageneration": str(blob.metageneration or 1),
            "size": str(blob.size),
            "contentType": blob.content_type,
            "metadata": blob.metadata or {},
        }

    def deliver(self, data: dict[str, Any] | str) -> int:
        """Post one event (object resource, or an object name to look up); returns the HTTP status."""
        if isinstance(data, str):
            data = self.event_for(data)
        headers = {
            "ce-id": uuid.uuid4().hex,
            "ce-source": f"//storage.googleapis.com/projects/_/buckets/{data['bucket']}",
            "ce-type": FINALIZED,
            "ce-specversion": "1.0",
            "ce-subject": f"objects/{data['name']}",
            "Content-Type": "application/json",
        }
        response = self.client.post("/", data=json.dumps(data), headers=headers)
        return response.status_code

    def put(self, name: str, content: bytes, metadata: dict[str, str] | None = None) -> None:
        """Write an object straight into the bucket (a bucket drop, or a signed-URL upload's effect)."""
        blob = self.bucket.blob(name)
        if metadata:
            blob.metadata = metadata
        blob.upload_from_string(content)


@pytest.fixture(scope="session")
def datasets_bucket(emulator_env: dict[str, str]) -> str:
    """The datasets bucket in the storage emulator (created once)."""
    config.reset()
    name = settings().datasets_bucket
    bucket = clients.storage_client().bucket(name)
    if not bucket.exists():
        bucket.create()
    return name


@pytest.fixture
def ingest(datasets_bucket: str) -> Ingest:
    return Ingest()
