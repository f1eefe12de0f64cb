"""The running stack is wired as Terraform wires the cloud: env, topics, subscriptions, buckets,
signed uploads through the verifying proxy, and finalized events reaching the ingest function."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import hcl2
import httpx
import pytest

from promptopt import clients, config, signed_urls
from promptopt.local import wiring
from promptopt.local.stack import Stack
from promptopt.manifest import PubsubTrigger, SchedulerTrigger, StorageTrigger

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
WIRED = (
    "PROMPTOPT_TOPICS",
    "PROMPTOPT_QUEUES",
    "PROMPTOPT_FUNCTION_URLS",
    "PROMPTOPT_DATASETS_BUCKET",
    "PROMPTOPT_ARTIFACTS_BUCKET",
    "PROMPTOPT_SIGNED_URL_ENDPOINT",
    "PROMPTOPT_SIGNING_KEY_FILE",
)


def process_env(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def test_every_function_sees_the_platform_env(stack: Stack) -> None:
    if not Path("/proc/self/environ").exists():
        pytest.skip("needs /proc to read a child's environment")
    expected = stack.platform_env
    assert set(WIRED) <= set(expected)
    groups = stack.process_groups()
    for spec in stack.specs:
        env = process_env(groups[f"function {spec.name}"])
        assert {k: env.get(k) for k in WIRED} == {k: expected[k] for k in WIRED}, spec.name
    urls = json.loads(expected["PROMPTOPT_FUNCTION_URLS"])
    assert urls == stack.function_urls
    topics = json.loads(expected["PROMPTOPT_TOPICS"])
    consumed = {
        s.trigger.topic for s in stack.specs if isinstance(s.trigger, PubsubTrigger | SchedulerTrigger)
    }
    assert set(topics) == consumed | set(wiring.NOTIFICATION_TOPICS)
    assert all(v == f"projects/{stack.config.project}/topics/{k}" for k, v in topics.items())
    queues = json.loads(expected["PROMPTOPT_QUEUES"])
    assert queues["inference"] == f"projects/{stack.config.project}/locations/us-central1/queues/inference"
    assert Path(expected["PROMPTOPT_SIGNING_KEY_FILE"]).is_file()
    assert expected["PROMPTOPT_SIGNED_URL_ENDPOINT"] == stack.storage_proxy_url


def test_topics_subscriptions_and_buckets_exist(stack: Stack) -> None:
    project = stack.config.project
    pubsub = f"http://{stack.env['PUBSUB_EMULATOR_HOST']}/v1/projects/{project}"
    topics = {t["name"] for t in httpx.get(f"{pubsub}/topics", params={"pageSize": 1000}).json()["topics"]}
    for logical in wiring.topic_names(stack.specs):
        assert f"projects/{project}/topics/{logical}" in topics
        assert f"projects/{project}/topics/{logical}-dead-letter" in topics
    listed = httpx.get(f"{pubsub}/subscriptions", params={"pageSize": 1000}).json().get("subscriptions", [])
    subscriptions = {s["name"].rsplit("/", 1)[1]: s for s in listed}
    for spec in stack.specs:
        if isinstance(spec.trigger, PubsubTrigger | SchedulerTrigger):
            push = subscriptions[f"{spec.deploy_name}-push"]
            assert push["pushConfig"]["pushEndpoint"] == stack.function_urls[spec.name] + "/"
            assert push["topic"] == f"projects/{project}/topics/{spec.trigger.topic}"
            assert "deadLetterPolicy" in push

    storage = stack.env["STORAGE_EMULATOR_HOST"]
    listing = httpx.get(f"{storage}/storage/v1/b", params={"project": project}).json()
    names = {b["name"] for b in listing.get("items", [])}
    env = stack.platform_env
    assert {env["PROMPTOPT_DATASETS_BUCKET"], env["PROMPTOPT_ARTIFACTS_BUCKET"]} <= names


def test_platform_topics_and_queues_match_terraform() -> None:
    with (ROOT / "terraform" / "variables.tf").open(encoding="utf-8") as handle:
        variables = {k.strip('"'): v for block in hcl2.load(handle)["variable"] for k, v in block.items()}
    queues = [q.strip('"') for q in variables["queues"]["default"] if not q.startswith("__")]
    assert "topics" not in variables  # topics come from the manifests' consumers, here as there
    notifications = [t.strip('"') for t in variables["notification_topics"]["default"]]
    assert list(wiring.NOTIFICATION_TOPICS) == notifications
    assert list(wiring.PLATFORM_QUEUES) == queues


@pytest.fixture
def stack_signing(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This test process signs and stores as the stack's functions do."""
    for key, value in {**stack.env, **stack.platform_env}.items():
        monkeypatch.setenv(key, value)
    config.reset()
    clients.reset()
    signed_urls.reset()
    yield
    monkeypatch.undo()
    config.reset()
    clients.reset()
    signed_urls.reset()


def test_a_signed_upload_reaches_the_ingest_trigger(stack: Stack, stack_signing: None) -> None:
    watchers = [s.name for s in stack.specs if isinstance(s.trigger, StorageTrigger)]
    bucket = os.environ["PROMPTOPT_DATASETS_BUCKET"]
    name = f"e2e-wiring/{time.time_ns()}.txt"  # outside every tenant prefix: ingest ignores it (2xx)
    upload = signed_urls.signed_put_url(
        bucket=bucket, object_name=name, content_type="text/plain", max_bytes=64, ttl_s=60
    )
    assert upload.url.startswith(stack.storage_proxy_url)

    assert httpx.put(upload.url, content=b"too large" * 10, headers=upload.headers).status_code == 400
    response = httpx.put(upload.url, content=b"hello", headers=upload.headers)
    assert response.status_code == 200, response.text
    assert clients.storage_client().bucket(bucket).blob(name).download_as_bytes() == b"hello"

    if not watchers:
        return
    proxy_log = stack.state_dir / "logs" / "storage-proxy.log"
    delivered = f"delivered finalized gs://{bucket}/{name}#"
    deadline = time.monotonic() + 30
    while delivered not in proxy_log.read_text(encoding="utf-8", errors="replace"):
        assert time.monotonic() < deadline, f"no finalized event for {name} reached {watchers}"
        time.sleep(0.1)
