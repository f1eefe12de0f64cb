"""Local parity for internal triggers: signed uploads through the verifying proxy, finalized events
from the storage bridge, Pub/Sub push subscriptions from the wiring, all against the emulators."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cloudevents.http import from_http

from promptopt import clients, config, signed_urls
from promptopt.local import wiring
from promptopt.local.dev_signer import write_dev_signing_key
from promptopt.local.ports import accepts_connections, free_port
from promptopt.local.process import ManagedProcess, http_probe, start_all, stop_all
from promptopt.local.signed_url_proxy import READY_PATH
from promptopt.local.storage_bridge import FINALIZED, RetryPolicy, StorageBridge, deliver_finalized
from promptopt.manifest import FunctionSpec
from promptopt.signed_urls import signed_put_url

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


# -- helpers -------------------------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A tiny HTTP endpoint standing in for a function: records what arrives, answers `status(...)`."""

    status: Callable[[Received, int], int] = lambda received, attempt: 204
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def attempts_for(self, key: str, value: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.headers.get(key) == value]

    def events(self) -> list[Received]:
        with self.lock:
            return list(self.requests)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    recorder = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received = Received({k.lower(): v for k, v in self.headers.items()}, body)
            with recorder.lock:
                recorder.requests.append(received)
                attempt = sum(
                    1 for r in recorder.requests if r.headers.get("ce-id") == received.headers.get("ce-id")
                )
            self.send_response(recorder.status(received, attempt))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}/"
    yield recorder
    server.shutdown()
    server.server_close()


def wait_until(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def xml_code(response: httpx.Response) -> str | None:
    return ET.fromstring(response.content).findtext("Code")  # noqa: S314 - our own proxy's answer


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def storage_url(emulator_env: dict[str, str]) -> str:
    url = os.environ.get("STORAGE_EMULATOR_HOST")
    if not url:
        pytest.skip("this session reuses emulators without a storage emulator")
    return url


@pytest.fixture
def bucket(storage_url: str) -> str:
    """A fresh bucket per test, so counts of objects and events are this test's own."""
    name = "parity-" + uuid.uuid4().hex[:12]
    clients.storage_client().create_bucket(name)
    return name


@pytest.fixture(scope="module")
def proxy(storage_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The signed-URL proxy as the stack runs it (its own process, its own dev key)."""
    state = tmp_path_factory.mktemp("proxy")
    key = state / "signing-key.json"
    write_dev_signing_key(key, os.environ.get("GOOGLE_CLOUD_PROJECT", "promptopt-test"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "promptopt.local.signed_url_proxy", "--port", str(port)]
    argv += ["--emulator", storage_url, "--key-file", str(key)]
    proc = ManagedProcess(
        "storage proxy", argv, log_path=state / "proxy.log", probe=http_probe(url + READY_PATH)
    )
    start_all([proc], 30)
    yield url, key
    stop_all([proc])


@pytest.fixture
def signing(proxy: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """signed_put_url signs with the proxy's dev key and names the proxy, as functions do in the stack."""
    url, key = proxy
    monkeypatch.setenv("PROMPTOPT_SIGNING_KEY_FILE", str(key))
    monkeypatch.setenv("PROMPTOPT_SIGNED_URL_ENDPOINT", url)
    config.reset()
    signed_urls.reset()
    yield url
    config.reset()
    signed_urls.reset()


def sign(
    bucket: str, name: str, *, content_type: str = "text/csv", max_bytes: int = 10 * 2**20, ttl_s: int = 300
) -> Any:
    return signed_put_url(
        bucket=bucket, object_name=name, content_type=content_type, max_bytes=max_bytes, ttl_s=ttl_s
    )


# -- signed uploads ------------------------------------------------------------------------------


def test_a_signed_upload_of_a_real_file_lands_in_the_emulator(
    signing: str, bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "questions.csv"
    with source.open("w", encoding="utf-8") as out:  # ~3 MB: many reads of the streamed body
        out.write("question,answer\n")
        for i in range(60_000):
            out.write(f"What is {i} plus {i}?,{2 * i}\n")
    name = "tenants/t1/drop/questions (v2).csv"
    upload = sign(bucket, name)
    assert upload.url.startswith(signing + "/")

    with source.open("rb") as body:
        response = httpx.put(upload.url, content=body, headers=upload.headers, timeout=60)

    assert response.status_code == 200, response.text
    blob = clients.storage_client().bucket(bucket).get_blob(name)
    assert blob is not None
    assert (blob.content_type, blob.size) == ("text/csv", source.stat().st_size)
    assert response.headers["x-goog-generation"] == str(blob.generation)
    assert blob.download_as_bytes() == source.read_bytes()


@pytest.mark.parametrize("content_type", ["application/x-ndjson", "application/json"])
def test_a_bundled_dataset_is_stored_byte_for_byte(signing: str, bucket: str, content_type: str) -> None:
    # The emulator's media upload would parse an application/json body; the proxy must not use it.
    source = ROOT / "shared" / "datasets" / "gsm8k" / "test-300.jsonl"
    if not source.is_file():
        pytest.skip("the bundled datasets are not in this checkout")
    upload = sign(bucket, "tenants/t1/drop/gsm8k.jsonl", content_type=content_type)
    with source.open("rb") as body:
        assert httpx.put(upload.url, content=body, headers=upload.headers).status_code == 200
    blob = clients.storage_client().bucket(bucket).get_blob("tenants/t1/drop/gsm8k.jsonl")
    assert blob is not None
    assert blob.content_type == content_type
    assert blob.download_as_bytes() == source.read_bytes()


def test_an_empty_body_is_a_valid_upload(signing: str, bucket: str) -> None:
    upload = sign(bucket, "empty.csv")
    assert httpx.put(upload.url, content=b"", headers=upload.headers).status_code == 200
    assert clients.storage_client().bucket(bucket).get_blob("empty.csv").size == 0  # type: ignore[union-attr]


def test_refused_uploads_leave_nothing_behind(signing: str, bucket: str) -> None:
    storage = clients.storage_client().bucket(bucket)
    upload = sign(bucket, "small.csv", max_bytes=10)

    too_large = httpx.put(upload.url, content=b"x" * 11, headers=upload.headers)
    assert (too_large.status_code, xml_code(too_large)) == (400, "EntityTooLarge")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the proxy must count as it streams
        yield b"12345"
        yield b"678901"

    streamed = httpx.put(upload.url, content=chunks(), headers=upload.headers)
    assert (streamed.status_code, xml_code(streamed)) == (400, "EntityTooLarge")

    other_type = httpx.put(
        upload.url, content=b"{}", headers={**upload.headers, "Content-Type": "application/json"}
    )
    assert (other_type.status_code, xml_code(other_type)) == (403, "SignatureDoesNotMatch")

    other_object = httpx.put(
        upload.url.replace("small.csv", "other.csv"), content=b"1", headers=upload.headers
    )
    assert (other_object.status_code, xml_code(other_object)) == (403, "SignatureDoesNotMatch")

    unsigned = httpx.put(upload.url.split("?")[0], content=b"1", headers=upload.headers)
    assert unsigned.status_code == 403

    assert httpx.get(upload.url).status_code == 405
    assert list(storage.list_blobs()) == []


def test_an_expired_url_is_refused(signing: str, bucket: str) -> None:
    upload = sign(bucket, "late.csv", ttl_s=1)
    time.sleep(max(0.0, (upload.expires_at.timestamp() - time.time())) + 1.1)
    response = httpx.put(upload.url, content=b"a,b\n", headers=upload.headers)
    assert (response.status_code, xml_code(response)) == (400, "ExpiredToken")
    assert clients.storage_client().bucket(bucket).get_blob("late.csv") is None


def test_a_signed_url_writes_once(signing: str, bucket: str) -> None:
    # A second PUT must never replace a file that may already be ingested (GCS: 412, the URL is
    # signed with x-goog-if-generation-match: 0; the emulator ignores it, so the proxy enforces it).
    upload = sign(bucket, "tenants/t1/datasets/ds_x/v1/source.csv")
    first = httpx.put(upload.url, content=b"question,answer\n" + b"q,a\n" * 1000, headers=upload.headers)
    assert first.status_code == 200, first.text
    blob = clients.storage_client().bucket(bucket).get_blob("tenants/t1/datasets/ds_x/v1/source.csv")
    assert blob is not None
    again = httpx.put(upload.url, content=b"question,answer\nx,y\n", headers=upload.headers)
    assert (again.status_code, xml_code(again)) == (412, "PreconditionFailed")
    after = clients.storage_client().bucket(bucket).get_blob("tenants/t1/datasets/ds_x/v1/source.csv")
    assert after is not None
    assert (after.generation, after.size) == (blob.generation, blob.size)
    # Leaving the precondition out breaks the signature: it is a signed header.
    unsigned = {k: v for k, v in upload.headers.items() if k != "x-goog-if-generation-match"}
    stripped = httpx.put(upload.url, content=b"question,answer\nx,y\n", headers=unsigned)
    assert stripped.status_code == 403


def test_concurrent_puts_of_one_url_store_one_object(signing: str, bucket: str) -> None:
    upload = sign(bucket, "race.csv")
    answers: list[int] = []

    def put(i: int) -> None:
        answers.append(
            httpx.put(upload.url, content=f"a,b\n{i},{i}\n".encode(), headers=upload.headers).status_code
        )

    threads = [threading.Thread(target=put, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == [200] + [412] * 4


def test_a_missing_bucket_is_reported_as_gcs_does(signing: str, storage_url: str) -> None:
    upload = sign("no-such-bucket-" + uuid.uuid4().hex[:8], "a.csv")
    response = httpx.put(upload.url, content=b"a\n", headers=upload.headers)
    assert (response.status_code, xml_code(response)) == (404, "NoSuchBucket")


# -- finalized events ----------------------------------------------------------------------------


def test_deliver_finalized_posts_one_binary_mode_cloudevent(receiver: Receiver) -> None:
    obj = {"name": "a/b.csv", "bucket": "bkt", "generation": 17, "metageneration": 1, "size": 3, "acl": []}
    assert deliver_finalized(receiver.url, "bkt", obj) == 204
    [got] = receiver.events()
    event = from_http(got.headers, got.body)  # the CloudEvents SDK, as functions-framework reads it
    assert event["type"] == FINALIZED
    assert event["source"] == "//storage.googleapis.com/projects/_/buckets/bkt"
    assert event["subject"] == "objects/a/b.csv"
    assert event.data == {
        "name": "a/b.csv",
        "bucket": "bkt",
        "generation": "17",
        "metageneration": "1",
        "size": "3",
    }


def test_the_bridge_delivers_each_new_generation_once(
    storage_url: str, bucket: str, receiver: Receiver, signing: str
) -> None:
    storage = clients.storage_client().bucket(bucket)
    storage.blob("before.csv").upload_from_string("old\n")  # the baseline: never replayed
    bridge = StorageBridge(storage_url, {bucket: [receiver.url]}, interval_s=0.05)
    with bridge.running_in_thread():
        drop = storage.blob("tenants/t1/drop/qa.csv")
        drop.upload_from_string("q,a\n1,2\n", content_type="text/csv")  # a bucket drop
        wait_until(lambda: len(receiver.events()) == 1)
        drop.reload()
        [first] = receiver.events()
        assert first.headers["ce-type"] == FINALIZED
        assert first.headers["ce-subject"] == "objects/tenants/t1/drop/qa.csv"
        assert first.headers["ce-source"] == f"//storage.googleapis.com/projects/_/buckets/{bucket}"
        assert first.headers["ce-specversion"] == "1.0"
        assert first.headers["ce-time"]
        data = first.json
        assert data["bucket"] == bucket
        assert data["name"] == "tenants/t1/drop/qa.csv"
        assert data["generation"] == str(drop.generation)
        assert (data["metageneration"], data["size"]) == ("1", "8")
        assert data["contentType"] == "text/csv"
        assert data["md5Hash"] == drop.md5_hash
        assert "timeCreated" in data
        assert "acl" not in data

        drop.upload_from_string("q,a\n1,2\n3,4\n", content_type="text/csv")  # a new generation
        upload = sign(bucket, "tenants/t1/datasets/api.csv")  # and an upload through a signed URL
        assert httpx.put(upload.url, content=b"x,y\n", headers=upload.headers).status_code == 200
        wait_until(lambda: len(receiver.events()) == 3)
        time.sleep(0.5)  # ten more polls: nothing is delivered twice

    events = receiver.events()
    assert len(events) == 3
    assert len({e.headers["ce-id"] for e in events}) == 3
    assert sorted(e.json["name"] for e in events) == [
        "tenants/t1/datasets/api.csv",
        "tenants/t1/drop/qa.csv",
        "tenants/t1/drop/qa.csv",
    ]
    assert "before.csv" not in {e.json["name"] for e in events}
    assert bridge.delivered == 3


def test_a_failing_function_is_retried_then_given_up(
    storage_url: str, bucket: str, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    # flaky.csv fails twice then succeeds; broken.csv always fails.
    receiver.status = lambda got, attempt: 500 if got.json["name"] == "broken.csv" or attempt < 3 else 204
    policy = RetryPolicy(max_attempts=4, initial_backoff_s=0.05, max_backoff_s=0.2)
    bridge = StorageBridge(storage_url, {bucket: [receiver.url]}, interval_s=0.05, retry=policy)
    storage = clients.storage_client().bucket(bucket)
    with caplog.at_level(logging.ERROR, logger="promptopt.local.storage_bridge"), bridge.running_in_thread():
        storage.blob("flaky.csv").upload_from_string("1\n")
        storage.blob("broken.csv").upload_from_string("2\n")
        wait_until(lambda: bridge.delivered == 1 and bridge.failed == 1)

    by_name: dict[str, list[Received]] = {}
    for event in receiver.events():
        by_name.setdefault(event.json["name"], []).append(event)
    assert len(by_name["flaky.csv"]) == 3  # two 500s, then the 204
    assert len({e.headers["ce-id"] for e in by_name["flaky.csv"]}) == 1  # a retry is the same event
    assert len(by_name["broken.csv"]) == policy.max_attempts
    assert any("gave up" in r.getMessage() and "broken.csv" in r.getMessage() for r in caplog.records)


def test_an_unreachable_function_counts_as_a_failed_delivery(storage_url: str, bucket: str) -> None:
    policy = RetryPolicy(max_attempts=2, initial_backoff_s=0.05)
    bridge = StorageBridge(
        storage_url, {bucket: [f"http://127.0.0.1:{free_port()}/"]}, interval_s=0.05, retry=policy
    )
    with bridge.running_in_thread():
        clients.storage_client().bucket(bucket).blob("x.csv").upload_from_string("1\n")
        wait_until(lambda: bridge.failed == 1)
    assert bridge.delivered == 0


# -- Pub/Sub push wiring -------------------------------------------------------------------------


def test_wiring_pushes_a_topic_to_its_function(emulator_env: dict[str, str], receiver: Receiver) -> None:
    host = os.environ.get("PUBSUB_EMULATOR_HOST")
    if not host:
        pytest.skip("this session reuses emulators without a Pub/Sub emulator")
    project = os.environ["GOOGLE_CLOUD_PROJECT"]
    name = "listener_" + uuid.uuid4().hex[:8]
    spec = FunctionSpec.model_validate(
        {
            "name": name,
            "description": "test listener",
            "trigger": {"type": "pubsub", "topic": "batch-completed"},
            "auth": {"mode": "internal"},
            "dependencies": [],
        }
    )
    plan = wiring.plan([spec], project=project)
    urls = {name: receiver.url.rstrip("/")}
    wiring.apply(plan, [spec], urls, pubsub_host=host, storage_url=None)
    wiring.apply(plan, [spec], urls, pubsub_host=host, storage_url=None)  # idempotent

    marker = uuid.uuid4().hex  # other tests may publish to the same topic meanwhile
    published = httpx.post(
        f"http://{host}/v1/{plan.topics['batch-completed']}:publish",
        json={"messages": [{"data": "eyJydW4iOiAxfQ==", "attributes": {"marker": marker}}]},
    )
    assert published.status_code == 200

    def mine() -> list[dict[str, Any]]:
        return [e.json for e in receiver.events() if marker in e.body.decode()]

    wait_until(lambda: len(mine()) == 1)
    push = mine()[0]
    assert push["subscription"] == f"projects/{project}/subscriptions/{spec.deploy_name}-push"
    assert push["message"]["data"] == "eyJydW4iOiAxfQ=="
    subscription = httpx.get(f"http://{host}/v1/{push['subscription']}").json()
    assert subscription["deadLetterPolicy"]["deadLetterTopic"] == plan.dead_letter_topics["batch-completed"]
    assert subscription["deadLetterPolicy"]["maxDeliveryAttempts"] == wiring.MAX_DELIVERY_ATTEMPTS


def test_the_proxy_with_its_bridge_stops_cleanly(
    storage_url: str, bucket: str, receiver: Receiver, proxy: tuple[str, Path], tmp_path: Path
) -> None:
    _, key = proxy
    port = free_port()
    argv = [sys.executable, "-m", "promptopt.local.signed_url_proxy", "--port", str(port)]
    argv += ["--emulator", storage_url, "--key-file", str(key), "--bridge-target", f"{bucket}={receiver.url}"]
    log_path = tmp_path / "proxy.log"
    proc = ManagedProcess(
        "storage proxy", argv, log_path=log_path, probe=http_probe(f"http://127.0.0.1:{port}{READY_PATH}")
    )
    start_all([proc], 30)
    try:
        clients.storage_client().bucket(bucket).blob("ping.csv").upload_from_string("1\n")
        wait_until(lambda: len(receiver.events()) == 1)  # the bridge runs inside the proxy process
    finally:
        started = time.monotonic()
        stop_all([proc])
    assert time.monotonic() - started < 3  # SIGTERM is enough: no SIGKILL after the grace period
    assert not accepts_connections("127.0.0.1", port)
    assert "Traceback" not in log_path.read_text(encoding="utf-8")
