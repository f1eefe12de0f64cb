"""Inline dataset files go to Cloud Storage over its JSON API (promptopt.storage_rest).

Against the storage emulator the object lands with its bytes and content type; against a server
that fails on cue (tests.scripted_server), transient answers are retried, a 412 means a replay
already stored it, and a refusal fails at once. Through the API, a write that fails answers a 503
problem and loses nothing: the same request, retried with its Idempotency-Key once Storage is
back, stores the file.
"""

from __future__ import annotations

import email
import json
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from promptopt import clients, storage_rest
from promptopt.config import settings
from tests.conftest import Api
from tests.integration.datasets.test_datasets_flow import CSV, MAPPING, source_name, version_of
from tests.scripted_server import scripted_fixture

pytestmark = pytest.mark.integration

UNAVAILABLE = (503, {"error": {"code": 503, "message": "backend unavailable"}})
STORED = (200, {"kind": "storage#object", "generation": "1"})


scripted = scripted_fixture("STORAGE_EMULATOR_HOST", lambda server: f"http://{server.host}")


@pytest.mark.parametrize("content", [b"q,a\n1,2\n", b"", b"\r\n--x--\r\n\xff\x00"])
def test_an_object_lands_with_its_bytes_and_content_type(datasets_bucket: str, content: bytes) -> None:
    clients.reset()
    name = f"rest/{uuid.uuid4().hex}/source.csv"
    assert storage_rest.create_object(datasets_bucket, name, content, content_type="text/csv", timeout_s=5)
    blob = clients.storage_client().bucket(datasets_bucket).get_blob(name)
    assert blob is not None
    assert blob.download_as_bytes() == content
    assert blob.content_type == "text/csv"


def test_the_write_is_create_only_and_transient_failures_are_retried(scripted: Any) -> None:
    server = scripted([UNAVAILABLE, (429, {}), STORED])
    name = "tenants/t1/datasets/ds_00000000000000000000/v1/source.csv"
    assert storage_rest.create_object("bkt", name, b"x,y\n", content_type="text/csv", timeout_s=10)
    assert len(server.seen) == 3
    for seen in server.seen:
        url = urlsplit(seen.path)
        assert (seen.method, url.path) == ("POST", "/upload/storage/v1/b/bkt/o")
        assert parse_qs(url.query) == {"uploadType": ["multipart"], "ifGenerationMatch": ["0"]}
        parts = email.message_from_bytes(
            f"Content-Type: {seen.headers['Content-Type']}\r\n\r\n".encode() + seen.body
        ).get_payload()
        assert json.loads(parts[0].get_payload()) == {"name": name, "contentType": "text/csv"}
        assert (parts[1].get_content_type(), parts[1].get_payload(decode=True)) == ("text/csv", b"x,y\n")


def test_an_object_that_exists_already_is_left_as_it_was(scripted: Any) -> None:
    server = scripted([(412, {"error": {"code": 412, "message": "conditionNotMet"}})])
    assert not storage_rest.create_object("bkt", "a.csv", b"1\n", content_type="text/csv", timeout_s=5)
    assert len(server.seen) == 1


def test_a_refused_write_fails_at_once_and_one_that_stays_down_by_the_deadline(scripted: Any) -> None:
    server = scripted([(403, {"error": {"code": 403, "message": "denied"}})])
    with pytest.raises(storage_rest.StorageError) as raised:
        storage_rest.create_object("bkt", "a.csv", b"1\n", content_type="text/csv", timeout_s=5)
    assert raised.value.status == 403
    assert len(server.seen) == 1

    server = scripted([UNAVAILABLE])
    started = time.monotonic()
    with pytest.raises(storage_rest.StorageError) as raised:
        storage_rest.create_object("bkt", "a.csv", b"1\n", content_type="text/csv", timeout_s=1.0)
    assert raised.value.status == 503
    assert time.monotonic() - started < 4
    assert len(server.seen) >= 2


def test_a_failed_inline_write_answers_503_and_the_retried_request_stores_the_file(
    api: Api, tenant: str, datasets_bucket: str, scripted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = clients.storage_session()[0]  # the real emulator, before the scripted one replaces it
    body = {"name": "sums", "format": "csv", "mapping": MAPPING, "content": CSV}
    key = {"Idempotency-Key": uuid.uuid4().hex}

    def create() -> Any:
        return api.call(
            "datasets_create",
            "POST",
            "/api/v1/datasets",
            tenant=tenant,
            role="editor",
            json=body,
            headers=key,
        )

    server = scripted([(403, {"error": {"code": 403, "message": "denied"}})])
    refused = create()
    assert refused.status_code == 503, refused.get_json()
    problem = refused.get_json()
    assert problem["code"] == "storage_unavailable"
    assert refused.headers["Retry-After"] == "5"
    assert len(server.seen) == 1

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator)
    clients.reset()
    created = create()
    assert created.status_code == 201, created.get_json()
    dataset_id = created.get_json()["dataset"]["dataset_id"]
    assert version_of(api, tenant, dataset_id, 1)["status"] == "pending"
    bucket = clients.storage_client().bucket(settings().datasets_bucket)
    blob = bucket.get_blob(source_name(created.get_json()))
    assert blob is not None
    assert blob.download_as_bytes() == CSV.encode()
